/**
 * PostgreSQL backend. Defence in depth behind the guard: every agent statement runs
 * in its own transaction (READ ONLY unless the server was started with
 * --allow-writes) with SET LOCAL statement_timeout and standard_conforming_strings,
 * over the extended protocol (one statement, parameters bound by the server). A SELECT
 * is read through a cursor, a few rows a FETCH up to rowLimit + 1, so the row cap never
 * rewrites the query, the server stops producing rows past the cap, and reading stops
 * once the reply (MAX_REPLY_BYTES) can hold no more; columns that can be long come cut to
 * maxCellBytes by the server, and a row's to what a reply shows of it (see run()). A
 * write's RETURNING rows are read alike, a few at a time, from a portal (see write()).
 * Read transactions always end in ROLLBACK.
 */
import type { Duplex } from 'node:stream';
import pg from 'pg';
import { ToolError } from '../shared/tool.ts';
import { CutCell, MAX_REPLY_BYTES, replyCellShare, timeoutMessage, type DbBackend, type Limits, type Param, type QueryResult } from './backend.ts';
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
 * The most one FETCH may bring at worst (its rows counted at their widest): a reply holds
 * MAX_REPLY_BYTES of cells, so rows are fetched a few at a time and reading stops once the
 * reply can take no more, rather than all rowLimit of them (10,000 rows of hundreds of
 * columns of maxCellBytes each are terabytes).
 */
const FETCH_BYTES = 1024 * 1024;

/** a + b + ... as a balanced tree: a chain of 1664 would nest as deep in the parser and planner. */
function sumOf(terms: string[]): string {
  if (!terms.length) return '0';
  if (terms.length === 1) return terms[0]!;
  const half = terms.length >> 1;
  return `(${sumOf(terms.slice(0, half))} + ${sumOf(terms.slice(half))})`;
}

/**
 * How the long columns of cutQuery's rows come: `measured`, each followed (after the
 * query's columns) by its length in bytes; else cut to one character more than kept, so a
 * cut one shows it was longer. `fits` (a last column, when there is room for it) says the
 * row's long cells, each as a reply would show it (maxCellBytes at most), total at most
 * MAX_REPLY_BYTES. When they do not, they come cut to replyCellShare: such a row is never
 * in a reply whole, only as its first row, its cells cut to that (otherwise one row of 1664
 * cells of 1 MB was sent whole). Without room for `fits`, every row comes so.
 */
export interface Cut {
  text: string;
  measured: boolean;
  fits: boolean;
  /** A write's: each row ends (after `fits`) with how many rows the write returned in all. */
  counted: boolean;
}

/**
 * The query as a subquery whose long columns (`wide`) the server cuts, each with its length
 * in bytes appended as an extra column (how long the whole value was), then whether the
 * row's long cells fit a reply (see Cut). A long column is made text once, in the inner level;
 * OFFSET 0 keeps the planner from merging the levels (which would convert it again for each
 * reference, and add the row's size up again for each cell). When the extra columns would
 * pass PostgreSQL's 1664, no lengths are added (`measured` false), and past that no `fits`.
 * The newline ends a trailing -- comment.
 *
 * `write`: sql is an INSERT / UPDATE / DELETE ... RETURNING, read as a data-modifying WITH
 * query (`WITH bugbot_w AS (<write>) SELECT ... FROM bugbot_w`): it runs once and to the
 * end whatever the outer query reads, and its rows come cut as a SELECT's do. The command
 * tag's count is then the outer SELECT's, so each row also carries the write's own (last
 * column, `counted`); the caller must leave room for it (at most 1663 columns).
 */
export function cutQuery(sql: string, types: number[], max: number, write = false): Cut {
  const wide = types.map((t) => !BOUNDED_TYPES.has(t));
  const longs = wide.filter(Boolean).length;
  const count = write ? 1 : 0;
  const measured = types.length + longs + 1 + count <= MAX_COLUMNS;
  const fits = types.length + 1 + count <= MAX_COLUMNS;
  const share = Math.min(max, replyCellShare(types.length));
  const plus = measured ? 0 : 1;
  const inner = types.map((t, k) => {
    const c = `bugbot_q.c${k + 1}`;
    return `${!wide[k] ? c : t === BPCHAR ? `textin(bpcharout(${c}))` : `${c}::text`} AS s${k + 1}`;
  });
  const s = (k: number) => `bugbot_s.s${k + 1}`;
  const m = (k: number) => `bugbot_m.s${k + 1}`;
  const middle = types.map((_, k) => (wide[k] ? `left(${s(k)}, ${(fits ? max : share) + plus})` : s(k)) + ` AS s${k + 1}`);
  const out = types.map((_, k) => (wide[k] && fits ? `CASE WHEN bugbot_m.fits THEN ${m(k)} ELSE left(${m(k)}, ${share + plus}) END` : m(k)));
  if (measured) {
    wide.forEach((w, k) => {
      if (!w) return;
      middle.push(`octet_length(${s(k)}) AS n${k + 1}`);
      out.push(`bugbot_m.n${k + 1}`);
    });
  }
  if (fits) {
    // least() skips a NULL (least(NULL, 5) is 5): coalesce first.
    const sizes = types.flatMap((_, k) => (wide[k] ? [`least(coalesce(octet_length(${s(k)}), 0), ${max})`] : []));
    middle.push(`${sumOf(sizes)} <= ${MAX_REPLY_BYTES} AS fits`);
    out.push('bugbot_m.fits');
  }
  if (write) out.push('(SELECT count(*) FROM bugbot_w)');
  const names = types.map((_, k) => `c${k + 1}`).join(', ');
  return {
    text:
      `${write ? `WITH bugbot_w AS (${sql}\n) ` : ''}SELECT ${out.join(', ')} FROM (SELECT ${middle.join(', ')} FROM ` +
      `(SELECT ${inner.join(', ')} FROM ${write ? 'bugbot_w' : `(${sql}\n)`} bugbot_q(${names}) OFFSET 0) bugbot_s OFFSET 0) bugbot_m`,
    measured,
    fits,
    counted: write,
  };
}

/**
 * The least a value adds to a reply (cells are JSON there, a string cut to maxCellBytes):
 * reading stops once the rows' total passes MAX_REPLY_BYTES, so it must not overstate.
 */
function replyBytes(v: unknown, max: number): number {
  if (v instanceof CutCell) return Math.min(Buffer.byteLength(v.head), max);
  if (typeof v === 'string') return Math.min(Buffer.byteLength(v), max);
  if (typeof v === 'number') return String(v).length;
  return 4; // null, true, a Date's ISO text (24)
}

/**
 * Force the extended query protocol (Parse/Bind/Execute): the server refuses more than
 * one statement there. pg supports `queryMode`; @types/pg does not declare it.
 */
function extended<T extends pg.QueryConfig<Param[]>>(config: T): T {
  return { ...config, queryMode: 'extended' };
}

/** The messages Describe and Portal send through pg's connection (pg-cursor sends the same). */
interface Wire {
  parse(m: { text: string }): void;
  bind(m: { values: Array<string | null> }): void;
  describe(m: { type: 'S' | 'P'; name: string }): void;
  execute(m: { portal: string; rows: number }): void;
  flush(): void;
  sync(): void;
}

/**
 * The columns a statement returns, from the server's description of it (Parse, Describe,
 * Sync): nothing runs. pg has no call for it; this is what it hands the connection (a
 * Submittable) and the messages it passes back. `fields` stays empty for a statement that
 * returns no rows.
 */
class Describe implements pg.Submittable {
  fields: Array<{ name: string; dataTypeID: number }> = [];
  readonly done: Promise<void>;
  private settle!: (err?: Error) => void;

  constructor(private readonly text: string) {
    this.done = new Promise((resolve, reject) => (this.settle = (err) => (err ? reject(err) : resolve())));
  }

  submit(connection: pg.Connection): void {
    const wire = connection as unknown as Wire;
    wire.parse({ text: this.text });
    wire.describe({ type: 'S', name: '' });
    wire.sync();
  }

  handleRowDescription(msg: { fields: Array<{ name: string; dataTypeID: number }> }): void {
    this.fields = msg.fields;
  }

  handleReadyForQuery(): void {
    this.settle();
  }

  /** A server error comes before the ReadyForQuery of the Sync already sent; a dead connection's alone. */
  handleError(err: Error): void {
    this.settle(err);
  }
}

/**
 * One statement's rows a batch at a time, by the extended protocol's Execute with a row
 * count, as FETCH reads a cursor: DECLARE CURSOR refuses a write, and a query with one in
 * WITH ("DECLARE CURSOR must not contain data-modifying statements in WITH"). PostgreSQL
 * runs such a portal to the end at its first Execute (the write is done whatever is read)
 * and keeps its rows, sending only as many as each Execute asks for. close() drops the
 * rest; until it resolves the connection runs nothing else.
 */
class Portal implements pg.Submittable {
  private wire?: Wire;
  private want = 0;
  private parsers: Array<(v: string) => unknown> = [];
  private batch: unknown[][] = [];
  private waiting?: { resolve: (rows: unknown[][]) => void; reject: (err: Error) => void };
  private synced = false;
  private done = false;
  private failed?: Error;
  private readonly closed: Promise<void>;
  private onClosed!: () => void;

  constructor(
    private readonly text: string,
    private readonly values: Param[],
  ) {
    this.closed = new Promise((resolve) => (this.onClosed = resolve));
  }

  submit(connection: pg.Connection): void {
    this.wire = connection as unknown as Wire;
    this.wire.parse({ text: this.text });
    // As pg binds these values (String(true) is 'true'; parameters are text).
    this.wire.bind({ values: this.values.map((v) => (v === null ? null : String(v))) });
    this.wire.describe({ type: 'P', name: '' });
    // Closed before pg sent it: end it at once, or the connection waits for a Sync forever.
    if (this.synced) this.wire.sync();
    else if (this.waiting) this.execute();
  }

  /** The next rows, at most `want` of them; fewer once the portal is at its end. */
  read(want: number): Promise<unknown[][]> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.done) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.want = want;
      if (this.wire) this.execute();
    });
  }

  /** Ends the portal (rows not read are never sent); resolves once the connection is free. */
  close(): Promise<void> {
    if (!this.failed && !this.done) this.sync();
    return this.closed;
  }

  private execute(): void {
    this.wire!.execute({ portal: '', rows: this.want });
    this.wire!.flush();
  }

  private sync(): void {
    if (this.synced) return;
    this.synced = true;
    this.wire?.sync();
  }

  private answer(): void {
    const rows = this.batch;
    this.batch = [];
    this.waiting?.resolve(rows);
    this.waiting = undefined;
  }

  handleRowDescription(msg: { fields: Array<{ dataTypeID: number }> }): void {
    this.parsers = msg.fields.map((f) => pg.types.getTypeParser(f.dataTypeID, 'text') as (v: string) => unknown);
  }

  handleDataRow(msg: { fields: Array<string | null> }): void {
    this.batch.push(msg.fields.map((v, k) => (v === null ? null : this.parsers[k]!(v))));
  }

  handlePortalSuspended(): void {
    this.answer();
  }

  handleCommandComplete(): void {
    this.done = true;
    this.sync();
  }

  handleReadyForQuery(): void {
    this.done = true;
    this.answer();
    this.onClosed();
  }

  handleError(err: Error): void {
    // The server skips what follows an error up to a Sync: send it (a dead connection needs none).
    if (err instanceof pg.DatabaseError) this.sync();
    this.failed = err;
    this.waiting?.reject(err);
    this.waiting = undefined;
    this.onClosed();
  }
}

/**
 * Rows from `fetch` (a few at a time: the cursor's FETCH, the portal's Execute) up to
 * rowLimit + 1, or until the reply can hold no more: the row that passes MAX_REPLY_BYTES,
 * or one whose long cells came cut to its share (see Cut), is the last read. `count`: a
 * write's count of rows (cutQuery's `counted`).
 */
async function readRows(
  fetch: (want: number) => Promise<unknown[][]>,
  types: number[],
  cut: Cut | undefined,
  cap: number,
  max: number,
): Promise<{ rows: unknown[][]; truncated: boolean; overflow: boolean; count: number }> {
  const wide = types.map((t) => !BOUNDED_TYPES.has(t));
  // At worst: about 100 bytes of text for a short type, a long cell 4 bytes a character
  // (UTF-8), but a row's long cells together at most MAX_REPLY_BYTES of characters (or
  // all cut to replyCellShare), plus each field's 4-byte length (and a write's count).
  const longs = wide.filter(Boolean).length;
  const widest = (types.length - longs) * 104 + (longs ? longs * 20 + 4 * Math.min(longs * (max + 1), MAX_REPLY_BYTES) : 0) + (cut?.counted ? 30 : 0);
  const batch = Math.max(1, Math.floor(FETCH_BYTES / widest));
  const rows: unknown[][] = [];
  let used = 0;
  let overflow = false;
  let count = 0;
  while (!overflow && rows.length <= cap) {
    const want = Math.min(batch, cap + 1 - rows.length);
    const fetched = await fetch(want);
    for (const raw of fetched) {
      // pg gives count(*) (bigint) as a string.
      if (cut?.counted) count = Number(raw.pop());
      const fits = !cut || (cut.fits ? raw[raw.length - 1] === true : false);
      // A cell cut to less than maxCellBytes (its row too wide): more than `limit` characters.
      const limit = fits ? max : Math.min(max, replyCellShare(types.length));
      let extra = wide.length;
      let shortened = false;
      const row = wide.map((w, k) => {
        const v = raw[k];
        if (!w) return v;
        if (cut?.measured) {
          // Cut by the server iff it came shorter than it is: left() keeps a prefix.
          const bytes = raw[extra++] as number | null;
          return bytes !== null && bytes > Buffer.byteLength(v as string) ? new CutCell(v as string, bytes) : v;
        }
        // Cut to limit + 1 characters: more than limit of them, the value was cut (its length unknown).
        if (typeof v === 'string' && [...v].length > limit) {
          shortened = true;
          return new CutCell(v);
        }
        return v;
      });
      rows.push(row);
      used += row.reduce((n: number, v) => n + replyBytes(v, max), 0);
      // Nothing after this row can be in the reply: stop reading (the rest of this batch is dropped).
      if ((cut && (cut.fits ? !fits : shortened)) || used > MAX_REPLY_BYTES) {
        overflow = true;
        break;
      }
    }
    if (fetched.length < want) break;
  }
  const truncated = rows.length > cap;
  return { rows: rows.slice(0, cap), truncated, overflow: overflow && !truncated, count };
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
   * can take time (a query is planned by each DECLARE, run by the FETCHes), and fails as the
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
    const max = this.limits.maxCellBytes;
    if (q.kind !== 'select') return this.inTransaction(true, (c, within) => this.write(c, within, q.sql, params));
    return this.inTransaction(false, async (c, within) => {
      // The guard proved q.sql is one SELECT without a trailing semicolon.
      await c.query(extended({ text: `DECLARE bugbot_rows NO SCROLL CURSOR FOR ${q.sql}`, values: params }));
      // Its columns, before it runs: FETCH 0 at the start returns no row, only their names and types.
      const shape = await c.query({ text: 'FETCH FORWARD 0 FROM bugbot_rows', rowMode: 'array' });
      // A cell is cut by the server, not after it arrived: one value of 585 MB (built
      // by a few nested replace() within the timeout) was all sent, and past 512 MB the
      // driver could not make it a string. Columns of bounded types are read as they are.
      const types = shape.fields.map((f) => f.dataTypeID);
      let cut: Cut | undefined;
      if (types.some((t) => !BOUNDED_TYPES.has(t))) {
        await c.query('CLOSE bugbot_rows');
        cut = cutQuery(q.sql, types, max);
        // Planned again: under what is left of the one timeout, not a second one.
        await within();
        await c.query(extended({ text: `DECLARE bugbot_rows NO SCROLL CURSOR FOR ${cut.text}`, values: params }));
      }
      const fetch = async (want: number) => {
        await within();
        return (await c.query({ text: `FETCH FORWARD ${want} FROM bugbot_rows`, rowMode: 'array' })).rows as unknown[][];
      };
      const { rows, truncated, overflow } = await readRows(fetch, types, cut, cap, max);
      return { columns: shape.fields.map((f) => f.name), rows, truncated, overflow };
    });
  }

  /**
   * INSERT / UPDATE / DELETE. One with RETURNING is run as cutQuery's WITH query, through a
   * Portal, so its rows come as a SELECT's: long cells cut by the server, read a few at a
   * time up to rowLimit + 1 or a full reply. Otherwise every returned row came whole (400
   * rows of ten 50 KB cells: 200 MB into the server's memory for a 256 KB reply; a DELETE's
   * RETURNING id, every deleted row's). Its columns are learned first from the server's
   * description of the statement, which runs nothing.
   */
  private async write(c: pg.PoolClient, within: () => Promise<void>, sql: string, params: Param[]): Promise<QueryResult> {
    const shape = c.query(new Describe(sql));
    await shape.done;
    if (!shape.fields.length) {
      const r = await c.query(extended<pg.QueryArrayConfig<Param[]>>({ text: sql, values: params, rowMode: 'array' }));
      return { columns: [], rows: [], truncated: false, changes: r.rowCount ?? 0 };
    }
    const types = shape.fields.map((f) => f.dataTypeID);
    if (types.length >= MAX_COLUMNS) {
      throw new ToolError(`RETURNING lists ${types.length} columns: at most ${MAX_COLUMNS - 1} come back (with the count of rows changed). Nothing was written.`);
    }
    const cut = cutQuery(sql, types, this.limits.maxCellBytes, true);
    await within();
    const portal = c.query(new Portal(cut.text, params));
    try {
      const { rows, truncated, overflow, count } = await readRows((want) => portal.read(want), types, cut, this.limits.rowLimit, this.limits.maxCellBytes);
      return { columns: shape.fields.map((f) => f.name), rows, truncated, overflow, changes: count };
    } finally {
      await portal.close();
    }
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
