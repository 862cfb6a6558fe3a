/**
 * PostgreSQL backend. Defence in depth behind the guard: every agent statement runs
 * in its own transaction (READ ONLY unless the server was started with
 * --allow-writes) with SET LOCAL statement_timeout, over the extended protocol (one
 * statement, parameters bound by the server). A SELECT is read through a cursor,
 * FETCH rowLimit + 1, so the row cap never rewrites the query and the server stops
 * producing rows past the cap. Read transactions always end in ROLLBACK.
 */
import pg from 'pg';
import { ToolError } from '../shared/tool.ts';
import { timeoutMessage, type DbBackend, type Limits, type Param, type QueryResult } from './backend.ts';
import type { GuardedSql } from './guard.ts';

const QUERY_CANCELED = '57014';

/**
 * Force the extended query protocol (Parse/Bind/Execute): the server refuses more than
 * one statement there. pg supports `queryMode`; @types/pg does not declare it.
 */
function extended<T extends pg.QueryConfig<Param[]>>(config: T): T {
  return { ...config, queryMode: 'extended' };
}

/** "users" → "users", "audit.events" → "audit"."events" (for to_regclass). */
function quoteKey(key: string): string {
  return key
    .split('.')
    .map((p) => `"${p.replace(/"/g, '""')}"`)
    .join('.');
}

/** PostgreSQL through a small pool; one transaction per statement. */
export class PostgresBackend implements DbBackend {
  private readonly pool: pg.Pool;

  constructor(
    url: string,
    private readonly limits: Limits,
    log: (msg: string) => void,
  ) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: 2,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
      // Client-side backstop in case the server never answers (statement_timeout is the real limit).
      query_timeout: limits.statementTimeoutMs + 5000,
      allowExitOnIdle: true,
      application_name: 'bugbot-mcp-db',
    });
    // An idle connection dropped by the server must not crash the process.
    this.pool.on('error', (err) => log(`idle connection error: ${err.message}`));
  }

  private async inTransaction<T>(write: boolean, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query(write ? 'BEGIN READ WRITE' : 'BEGIN READ ONLY');
      await client.query(`SET LOCAL statement_timeout = ${Math.trunc(this.limits.statementTimeoutMs)}`);
      const out = await fn(client);
      await client.query(write ? 'COMMIT' : 'ROLLBACK');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      const e = err as Error & { code?: string };
      if (e.code === QUERY_CANCELED) throw new ToolError(timeoutMessage(this.limits.statementTimeoutMs));
      if (e.code) throw new ToolError(`database error: ${e.message}`);
      throw err;
    } finally {
      client.release(broken);
    }
  }

  run(q: GuardedSql, params: Param[]): Promise<QueryResult> {
    const cap = this.limits.rowLimit;
    if (q.kind !== 'select') {
      return this.inTransaction(true, async (c) => {
        const r = await c.query(extended<pg.QueryArrayConfig<Param[]>>({ text: q.sql, values: params, rowMode: 'array' }));
        return { columns: r.fields.map((f) => f.name), rows: r.rows.slice(0, cap), truncated: r.rows.length > cap, changes: r.rowCount ?? 0 };
      });
    }
    return this.inTransaction(false, async (c) => {
      // The guard proved q.sql is one SELECT without a trailing semicolon.
      await c.query(extended({ text: `DECLARE bugbot_rows NO SCROLL CURSOR FOR ${q.sql}`, values: params }));
      const r = await c.query({ text: `FETCH FORWARD ${cap + 1} FROM bugbot_rows`, rowMode: 'array' });
      return { columns: r.fields.map((f) => f.name), rows: r.rows.slice(0, cap), truncated: r.rows.length > cap };
    });
  }

  columnTypes(tables: string[]): Promise<Map<string, Map<string, string>>> {
    return this.inTransaction(false, async (c) => {
      const r = await c.query<{ k: string; col: string; type: string }>(
        `SELECT t.k, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type
           FROM unnest($1::text[]) AS t(k)
           JOIN pg_catalog.pg_attribute a ON a.attrelid = to_regclass(t.k) AND a.attnum > 0 AND NOT a.attisdropped`,
        [tables.map(quoteKey)],
      );
      const out = new Map(tables.map((t) => [t, new Map<string, string>()]));
      const byQuoted = new Map(tables.map((t) => [quoteKey(t), t]));
      for (const row of r.rows) out.get(byQuoted.get(row.k)!)?.set(row.col, row.type);
      return out;
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
