/**
 * Running an MCP server: stdout belongs to the protocol, logs go to stderr.
 *
 * Over stdio (the default) one session lives as long as the process. With
 * BUGBOT_MCP_SOCKET set, the server listens on that Unix socket instead and every
 * connection is a session of its own, built fresh by `create()`: the harness starts a
 * ticket's servers before its Claude Code sessions need them (harness/lib/mcp-host.mjs)
 * and each session reaches its server through a `socat` shim, so no session waits for
 * a server to start.
 *
 * SIGINT, SIGTERM and stdin closing (the session ended, or the host that started the
 * server is gone) run every session's cleanup (close the browser, the database pool)
 * with a hard-exit timer, so a stuck cleanup never leaves an orphan process.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { rmSync } from 'node:fs';
import { createServer as createListener, type Server, type Socket } from 'node:net';

export function stderrLog(name: string): (msg: string) => void {
  return (msg) => process.stderr.write(`[${name}] ${msg}\n`);
}

export function createServer(name: string, version: string, instructions?: string): McpServer {
  return new McpServer({ name, version }, instructions ? { instructions } : {});
}

/** One session: a server and what to release when it ends. */
export interface Session {
  server: McpServer;
  close?: () => Promise<void> | void;
}

export interface ServeOptions {
  name: string;
  /** Builds a session: once over stdio, once per connection on a socket. */
  create: () => Session;
  /** Listen on this Unix socket instead of stdio (default: BUGBOT_MCP_SOCKET). */
  socket?: string;
  hardExitMs?: number;
}

export async function serve(opts: ServeOptions): Promise<void> {
  const log = stderrLog(opts.name);
  const socket = opts.socket ?? process.env.BUGBOT_MCP_SOCKET;
  const sessions = new Set<Session>();
  let closing = false;
  const end = async (s: Session) => {
    if (!sessions.delete(s)) return;
    await s.close?.();
    await s.server.close();
  };
  const listener: Server | undefined = socket ? createListener(onConnection) : undefined;
  const shutdown = (why: string) => {
    if (closing) return;
    closing = true;
    log(`shutting down (${why})`);
    const timer = setTimeout(() => process.exit(1), opts.hardExitMs ?? 5000);
    timer.unref();
    listener?.close();
    Promise.all([...sessions].map(end)).then(
      () => process.exit(0),
      (err: unknown) => {
        log(`cleanup failed: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.stdin.once('end', () => shutdown('stdin closed'));
  process.stdin.once('close', () => shutdown('stdin closed'));

  if (!socket || !listener) {
    const session = opts.create();
    sessions.add(session);
    await session.server.connect(new StdioServerTransport());
    log('ready on stdio');
    return;
  }

  // Stdin carries nothing here; it is read only to see it end (the host is gone).
  process.stdin.resume();
  // A socket file left by a predecessor that was killed would refuse the listen.
  rmSync(socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(socket, () => resolve());
  });
  log(`ready on ${socket}`);

  function onConnection(conn: Socket): void {
    if (closing) {
      conn.destroy();
      return;
    }
    const session = opts.create();
    sessions.add(session);
    conn.on('error', (err) => log(`session connection: ${err.message}`));
    conn.once('close', () => {
      end(session).catch((err: unknown) => log(`session cleanup failed: ${String(err)}`));
    });
    session.server.connect(new StdioServerTransport(conn, conn)).catch((err: unknown) => {
      log(`session failed to start: ${String(err)}`);
      conn.destroy();
    });
  }
}
