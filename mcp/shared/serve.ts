/**
 * Running an MCP server over stdio: stdout belongs to the protocol, logs go to
 * stderr. SIGINT, SIGTERM and stdin closing (the Claude Code session ended) run
 * the server's cleanup (close the browser, the database pool) with a hard-exit timer
 * so a stuck cleanup never leaves an orphan process.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

export function stderrLog(name: string): (msg: string) => void {
  return (msg) => process.stderr.write(`[${name}] ${msg}\n`);
}

export function createServer(name: string, version: string, instructions?: string): McpServer {
  return new McpServer({ name, version }, instructions ? { instructions } : {});
}

export async function serveStdio(
  server: McpServer,
  opts: { name: string; cleanup?: () => Promise<void> | void; hardExitMs?: number },
): Promise<void> {
  const log = stderrLog(opts.name);
  let closing = false;
  const shutdown = (why: string) => {
    if (closing) return;
    closing = true;
    log(`shutting down (${why})`);
    const timer = setTimeout(() => process.exit(1), opts.hardExitMs ?? 5000);
    timer.unref();
    Promise.resolve()
      .then(() => opts.cleanup?.())
      .then(() => server.close())
      .then(
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
  await server.connect(new StdioServerTransport());
  log('ready on stdio');
}
