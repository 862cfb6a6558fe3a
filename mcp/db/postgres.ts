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
 * numeric is not among them: one value's text runs to 150 KB (10::numeric ^ 131071), and
 * a select list repeating one such constant sent gigabytes past maxCellBytes within the
 * timeout (200 columns of 200 rows: 5 GB, the server's heap past 1.7 GB when the backstop
 * abandoned it). pg gives numeric as a string either way.
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

/** char(n): its text keeps the padding (c::text trims it) and NULL stays NULL. */
const BPCHAR = 1042;

/** PostgreSQL's limit on a select list (MaxTupleAttributeNumber). */
const MAX_COLUMNS = 1664;

/**
 * The query as a subquery whose long columns (`wide`) the server cuts to `max` characters,
 * each with its length in bytes appended as an extra column (how long the whole value was).
 * A long column is made text once, in the inner level; OFFSET 0 keeps the planner from
 * merging the levels (which would convert it again for each reference). When the extra
 * columns would pass PostgreSQL's 1664, none are added (`measured` false): long columns
 * come cut to max + 1 characters, so a cut one shows it was longer, not by how much.
 * The newline ends a trailing -- comment.
 */
export function cutQuery(sql: string, types: number[], max: number): { text: string; measured: boolean } {
  const wide = types.map((t) => !BOUNDED_TYPES.has(t));
  const measured = types.length + wide.filter(Boolean).length <= MAX_COLUMNS;
  const inner = types.map((t, k) => {
    const c = `bugbot_q.c${k + 1}`;
    return `${!wide[k] ? c : t === BPCHAR ? `textin(bpcharout(${c}))` : `${c}::text`} AS s${k + 1}`;
  });
  const s = (k: number) => `bugbot_s.s${k + 1}`;
  const out = types.map((_, k) => (wide[k] ? `left(${s(k)}, ${measured ? max : max + 1})` : s(k)));
  if (measured) {
    wide.forEach((w, k) => {
      if (w) out.push(`octet_length(${s(k)})`);
    });
  }
  const names = types.map((_, k) => `c${k + 1}`).join(', ');
  return {
    text: `SELECT ${out.join(', ')} FROM (SELECT ${inner.join(', ')} FROM (${sql}\n) bugbot_q(${names}) OFFSET 0) bugbot_s`,
    measured,
  };
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
      allowExitOnIdle: true,
      application_name: 'bugbot-mcp-db',
    });
    // An idle connection dropped by the server must not crash the process.
    this.pool.on('error', (err) => log(`idle connection error: ${err.message}`));
    this.pool.on('connect', (client) => containDriverErrors(client, log));
  }

  /**
   * One call, one transaction, one deadline: statementTimeoutMs from the start. `within`
   * sets the statement timeout to what is left of it before each further statement that
   * can take time (a query is planned by each DECLARE, run by FETCH), and fails as the
   * timeout does when nothing is left. A client-side timer (the deadline + 5 s), for a
   * server that never answers, abandons the connection.
   */
  private async inTransaction<T>(write: boolean, fn: (c: pg.PoolClient, within: () => Promise<void>) => Promise<T>): Promise<T> {
    const ms = Math.trunc(this.limits.statementTimeoutMs);
    const client = await this.pool.connect();
    const deadline = Date.now() + ms;
    let broken = false;
    let abandoned = false;
    const noAnswer = `the database did not answer within ${ms + 5000} ms; the query was abandoned`;
    const backstop = setTimeout(() => {
      abandoned = true;
      (client as unknown as { connection?: { stream?: Duplex } }).connection?.stream?.destroy(new DriverError(noAnswer));
    }, ms + 5000);
    const within = async () => {
      const left = Math.trunc(deadline - Date.now());
      if (left < 1) throw new ToolError(timeoutMessage(ms));
      await client.query(`SET LOCAL statement_timeout = ${left}`);
    };
    try {
      await client.query(write ? 'BEGIN READ WRITE' : 'BEGIN READ ONLY');
      // The guard read the statement with standard_conforming_strings on (PostgreSQL's
      // default); a role or database set to off would read '\' as an open string, and
      // text the guard took for a literal as a column list. bytea_output: long columns
      // come as text (run()), bytea as \x hex whatever the role says.
      await client.query(`SET LOCAL statement_timeout = ${ms}; SET LOCAL standard_conforming_strings = on; SET LOCAL bytea_output = hex`);
      const out = await fn(client, within);
      await client.query(write ? 'COMMIT' : 'ROLLBACK');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      const e = err as Error & { code?: string };
      if (e instanceof DriverError) throw new ToolError(e.message);
      if (abandoned) throw new ToolError(noAnswer);
      if (e.code === QUERY_CANCELED) throw new ToolError(timeoutMessage(ms));
      if (e.code) throw new ToolError(`database error: ${e.message}`);
      throw err;
    } finally {
      clearTimeout(backstop);
      client.release(broken || abandoned);
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
    return this.inTransaction(false, async (c, within) => {
      // The guard proved q.sql is one SELECT without a trailing semicolon.
      await c.query(extended({ text: `DECLARE bugbot_rows NO SCROLL CURSOR FOR ${q.sql}`, values: params }));
      // Its columns, before it runs: FETCH 0 at the start returns no row, only their names and types.
      const shape = await c.query({ text: 'FETCH FORWARD 0 FROM bugbot_rows', rowMode: 'array' });
      // A cell is cut by the server, not after it arrived: one value of 585 MB (built
      // by a few nested replace() within the timeout) was all sent, and past 512 MB the
      // driver could not make it a string. Columns of bounded types are read as they are.
      const types = shape.fields.map((f) => f.dataTypeID);
      const wide = types.map((t) => !BOUNDED_TYPES.has(t));
      let measured = true;
      if (wide.some(Boolean)) {
        await c.query('CLOSE bugbot_rows');
        const cut = cutQuery(q.sql, types, max);
        measured = cut.measured;
        // Planned again: under what is left of the one timeout, not a second one.
        await within();
        await c.query(extended({ text: `DECLARE bugbot_rows NO SCROLL CURSOR FOR ${cut.text}`, values: params }));
      }
      await within();
      const r = await c.query({ text: `FETCH FORWARD ${cap + 1} FROM bugbot_rows`, rowMode: 'array' });
      const rows = (r.rows as unknown[][]).slice(0, cap).map((row) => {
        let extra = wide.length;
        return wide.map((w, k) => {
          const v = row[k];
          if (!w) return v;
          if (measured) {
            const bytes = row[extra++] as number | null;
            return bytes !== null && bytes > max ? new CutCell(v as string, bytes) : v;
          }
          // Cut to max + 1 characters: more than max of them, the value was cut (its length unknown).
          return typeof v === 'string' && [...v].length > max ? new CutCell(v) : v;
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
