/**
 * The db MCP server without a transport: tests connect a client in-process, main.ts
 * binds it to stdio. Writes exist only when the caller passes allowWrites (the
 * harness's --allow-writes flag); nothing in the settings can turn them on.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { DbSettings } from '../../lib/mcp/db-settings.ts';
import { createServer } from '../shared/serve.ts';
import { registerTools } from '../shared/tool.ts';
import type { DbBackend, DbCtx } from './backend.ts';
import { buildPolicy, restrictToExisting, type Policy } from './policy.ts';
import { PostgresBackend } from './postgres.ts';
import { SqliteBackend } from './sqlite.ts';
import { dbTools } from './tools/index.ts';

export interface DbServerOptions {
  settings: DbSettings;
  /** The harness's --allow-writes flag. */
  allowWrites: boolean;
  /** PostgreSQL connection URL (a secret: from the environment, never the settings file). */
  url?: string;
  /** SQLite file, already resolved to a path. */
  sqlitePath?: string;
  log?: (msg: string) => void;
}

export interface DbServer {
  server: McpServer;
  /** Close the pool or the SQLite worker, then the server; idempotent. */
  close: () => Promise<void>;
}

const INSTRUCTIONS =
  'Read-only access to the application database for debugging. Call db_describe first to see the tables and columns ' +
  'you may use; db_query runs one PostgreSQL-syntax statement using only those columns.';

/** Build the db server and its backend from validated settings. */
export function createDbServer(opts: DbServerOptions): DbServer {
  const { settings, allowWrites } = opts;
  const log = opts.log ?? (() => {});
  const limits = { rowLimit: settings.rowLimit, statementTimeoutMs: settings.statementTimeoutMs, maxCellBytes: settings.maxCellBytes };
  let backend: DbBackend;
  if (settings.driver === 'sqlite') {
    if (!opts.sqlitePath) throw new Error('db server: driver "sqlite" needs a database file (sqlitePath)');
    backend = new SqliteBackend(opts.sqlitePath, allowWrites, limits, log);
  } else {
    if (!opts.url) throw new Error('db server: driver "postgres" needs a connection URL');
    backend = new PostgresBackend(opts.url, limits, log);
  }
  const policy = buildPolicy(settings, allowWrites);
  let verified: Promise<Policy> | undefined;
  const verifiedPolicy = (): Promise<Policy> => {
    if (!verified) {
      const p = backend.columnTypes([...policy.tables.keys()]).then((types) => restrictToExisting(policy, types));
      // A failed check (database down) is retried by the next call.
      p.catch(() => {
        if (verified === p) verified = undefined;
      });
      verified = p;
    }
    return verified;
  };
  const ctx: DbCtx = { policy, verifiedPolicy, backend, settings };
  const server = createServer('bugbot-db', '0.1.0', INSTRUCTIONS);
  registerTools(server, dbTools(allowWrites), ctx, log);
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await backend.close();
      await server.close();
    })());
  return { server, close };
}
