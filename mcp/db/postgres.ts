/**
 * PostgreSQL backend. Defence in depth behind the guard: every agent statement runs
 * in its own transaction (READ ONLY unless the server was started with
 * --allow-writes) with SET LOCAL statement_timeout and standard_conforming_strings,
 * over the extended protocol (one statement, parameters bound by the server). A SELECT
 * is read through a cursor, FETCH rowLimit + 1, so the row cap never rewrites the query
 * and the server stops producing rows past the cap; columns that can be long come
 * cut to maxCellBytes by the server (see run()). Read transactions always end in ROLLBACK.
 */
import type { Duplex } from 'node:stream';
import pg from 'pg';
import { ToolError } from '../shared/tool.ts';
import { CutCell, timeoutMessage, type DbBackend, type Limits, type Param, type QueryResult } from './backend.ts';
import type { GuardedSql } from './guard.ts';

const QUERY_CANCELED = '57014';

/**
 * Types whose text is short whatever the value (numbers, booleans, dates and times,
 * uuid...): read as they are, so pg gives numbers and booleans as such. Every other
 * type (text, json, arrays, bytea, records, domains...) can hold hundreds of megabytes.
 */
const BOUNDED_TYPES = new Set([
  16, // bool
  18, // char
  19, // name
  20, // int8
  21, // int2
  23, // int4
  26, // oid
  700, // float4
  701, // float8
  790, // money
  1082, // date
  1083, // time
  1114, // timestamp
  1184, // timestamptz
  1186, // interval
  1266, // timetz
  1700, // numeric (at most about 150 KB of digits)
  2950, // uuid
  650, // cidr
  869, // inet
  829, // macaddr
  774, // macaddr8
]);

/** A reply the driver could not read: the connection is ended with it, and the call fails with its message. */
class DriverError extends Error {}

/**
 * An exception while reading the server's reply (pg-protocol turning a value of more than
 * 512 MB, in a row or an error message, into one string: ERR_STRING_TOO_LONG) is thrown
 * from the socket's data handler, where nothing catches it: the process died. Caught here,
 * it ends that connection instead, so the query waiting on it fails and the pool drops
 * the client; and a client's error event while it is checked out (the pool listens only
 * to idle ones) is logged rather than left unhandled.
 */
function containDriverErrors(client: pg.Client, log: (msg: string) => void): void {
  client.on('error', (err) => log(`connection error: ${err.message}`));
  const stream = (client as unknown as { connection?: { stream?: Duplex } }).connection?.stream;
  if (!stream) return;
  for (const listener of stream.listeners('data') as Array<(chunk: Buffer) => void>) {
    stream.removeListener('data', listener);
    stream.on('data', (chunk: Buffer) => {
      try {
        listener.call(stream, chunk);
      } catch (err) {
        log(`could not read the database's reply: ${(err as Error).stack ?? String(err)}`);
        stream.destroy(new DriverError(`the database's reply could not be read (${(err as Error).message}); the query was abandoned`));
      }
    });
  }
}

/**
 * The query as a subquery whose long columns the server cuts to `max` characters, each
 * with its length in bytes appended as an extra column (how long the whole value was).
 * OFFSET 0 keeps the planner from inlining the query into the wrapper (which would
 * copy each column's expression into both references). The newline ends a trailing -- comment.
 */
function cutQuery(sql: string, wide: boolean[], max: number): string {
  const col = (k: number) => `bugbot_q.c${k + 1}`;
  const out = wide.map((w, k) => (w ? `left(${col(k)}::text, ${max})` : col(k)));
  wide.forEach((w, k) => {
    if (w) out.push(`octet_length(${col(k)}::text)`);
  });
  const names = wide.map((_, k) => `c${k + 1}`).join(', ');
  return `SELECT ${out.join(', ')} FROM (SELECT * FROM (${sql}\n) bugbot_q OFFSET 0) bugbot_q(${names})`;
}

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
    this.pool.on('connect', (client) => containDriverErrors(client, log));
  }

  private async inTransaction<T>(write: boolean, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query(write ? 'BEGIN READ WRITE' : 'BEGIN READ ONLY');
      // The guard read the statement with standard_conforming_strings on (PostgreSQL's
      // default); a role or database set to off would read '\' as an open string, and
      // text the guard took for a literal as a column list. bytea_output: long columns
      // come as text (run()), bytea as \x hex whatever the role says.
      await client.query(
        `SET LOCAL statement_timeout = ${Math.trunc(this.limits.statementTimeoutMs)}; ` +
          'SET LOCAL standard_conforming_strings = on; SET LOCAL bytea_output = hex',
      );
      const out = await fn(client);
      await client.query(write ? 'COMMIT' : 'ROLLBACK');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      const e = err as Error & { code?: string };
      if (e instanceof DriverError) throw new ToolError(e.message);
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
    const max = this.limits.maxCellBytes;
    return this.inTransaction(false, async (c) => {
      // The guard proved q.sql is one SELECT without a trailing semicolon.
      await c.query(extended({ text: `DECLARE bugbot_rows NO SCROLL CURSOR FOR ${q.sql}`, values: params }));
      // Its columns, before it runs: FETCH 0 at the start returns no row, only their names and types.
      const shape = await c.query({ text: 'FETCH FORWARD 0 FROM bugbot_rows', rowMode: 'array' });
      // A cell is cut by the server, not after it arrived: one value of 585 MB (built
      // by a few nested replace() within the timeout) was all sent, and past 512 MB the
      // driver could not make it a string. Columns of bounded types are read as they are.
      const wide = shape.fields.map((f) => !BOUNDED_TYPES.has(f.dataTypeID));
      if (wide.some(Boolean)) {
        await c.query('CLOSE bugbot_rows');
        await c.query(extended({ text: `DECLARE bugbot_rows NO SCROLL CURSOR FOR ${cutQuery(q.sql, wide, max)}`, values: params }));
      }
      const r = await c.query({ text: `FETCH FORWARD ${cap + 1} FROM bugbot_rows`, rowMode: 'array' });
      const rows = (r.rows as unknown[][]).slice(0, cap).map((row) => {
        let extra = wide.length;
        return wide.map((w, k) => {
          if (!w) return row[k];
          const bytes = row[extra++] as number | null;
          return bytes !== null && bytes > max ? new CutCell(row[k] as string, bytes) : row[k];
        });
      });
      return { columns: shape.fields.map((f) => f.name), rows, truncated: r.rows.length > cap };
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
