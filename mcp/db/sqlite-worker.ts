/**
 * Child process that owns the SQLite connection (forked by sqlite.ts). better-sqlite3
 * runs a statement synchronously and cannot interrupt it, so the statement timeout
 * is enforced by the parent killing this process; a kill mid-statement is safe (a
 * read has nothing to undo, a write is rolled back from SQLite's journal).
 * Usage: sqlite-worker.ts <db file> ro|rw
 */
import Database from 'better-sqlite3';
import { MAX_REPLY_BYTES, replyCellShare } from './backend.ts';

export type WorkerJob = { sql: string; params: Record<string, unknown>; rowLimit: number; maxCellBytes: number } | { describe: string[] };

/** A cell longer than maxCellBytes, cut here: its head and the whole value's length in bytes (sqlite.ts makes it a CutCell). */
export interface WorkerCut {
  cut: string;
  bytes: number;
}
export type WorkerRequest = WorkerJob & { id: number };

export type WorkerReply =
  | { id: number; ok: true; columns: string[]; rows: unknown[][]; truncated: boolean; overflow?: boolean; changes?: number }
  | { id: number; ok: true; types: Array<[string, Array<[string, string]>]> }
  | { id: number; ok: false; error: string };

const [file, mode] = process.argv.slice(2);
const writable = mode === 'rw';
const db = new Database(file!, { readonly: !writable, fileMustExist: true });
// A second lock on writes: even a statement the guard missed cannot change the file.
if (!writable) db.pragma('query_only = ON');

function handle(req: WorkerRequest): WorkerReply {
  if ('describe' in req) {
    const types = req.describe.map((key): [string, Array<[string, string]>] => {
      const [schema, table] = key.includes('.') ? key.split('.', 2) : ['main', key];
      const rows = db.prepare('SELECT name, type FROM pragma_table_info(?, ?)').all(table, schema) as Array<{ name: string; type: string }>;
      return [key, rows.map((r) => [r.name, r.type || 'any'])];
    });
    return { id: req.id, ok: true, types };
  }
  const stmt = db.prepare(req.sql);
  if (!stmt.reader) {
    if (!writable) return { id: req.id, ok: false, error: 'only statements that return rows may run on a read-only database' };
    return { id: req.id, ok: true, columns: [], rows: [], truncated: false, changes: stmt.run(req.params).changes };
  }
  const columns = stmt.columns().map((c) => c.name);
  // Cells are cut here, as PostgreSQL cuts them, not after they crossed to the server:
  // nested replace() builds values of hundreds of megabytes within the timeout, and every
  // row of them went whole through the pipe into the server's memory.
  const max = req.maxCellBytes;
  const cutCell = (v: unknown, limit: number): unknown => {
    if (typeof v === 'string' && v.length > limit / 4) {
      const bytes = Buffer.byteLength(v);
      return bytes > limit ? ({ cut: v.slice(0, limit), bytes } satisfies WorkerCut) : v;
    }
    if (v instanceof Uint8Array && 2 + 2 * v.length > limit) {
      // As the server shows a blob: \x and two hex digits a byte.
      return { cut: `\\x${Buffer.from(v.subarray(0, Math.ceil(limit / 2))).toString('hex')}`, bytes: 2 + 2 * v.length } satisfies WorkerCut;
    }
    return v;
  };
  // The least a cell adds to the reply (JSON, each cell cut to maxCellBytes), as PostgreSQL's
  // backend counts it: reading stops once the rows pass MAX_REPLY_BYTES, so it must not overstate.
  const replyBytes = (v: unknown): number => {
    if (typeof v === 'string') return Math.min(Buffer.byteLength(v), max);
    if (typeof v === 'number') return String(v).length;
    if (v instanceof Uint8Array) return Math.min(2 + 2 * v.length, max);
    if (v && typeof v === 'object') return Math.min(Buffer.byteLength((v as WorkerCut).cut), max);
    return 4;
  };
  const rows: unknown[][] = [];
  let truncated = false;
  let overflow = false;
  let used = 0;
  // iterate() steps one row at a time, so rows past the cap are never produced. Nor rows
  // past a full reply: it shows 256 KB (db-query.ts fitRows), and up to rowLimit rows of
  // maxCellBytes cells crossed the pipe first (10,000 rows of ten 1 MB cells: 100 GB).
  for (const raw of stmt.raw(true).iterate(req.params) as IterableIterator<unknown[]>) {
    if (rows.length === req.rowLimit) {
      truncated = true;
      break;
    }
    let row = raw.map((v) => cutCell(v, max));
    const bytes = row.reduce((n: number, v) => n + replyBytes(v), 0);
    // A row wider than a reply is shown only as its first, each cell cut to its share:
    // send no more of it (2,000 columns of 1 MB were 2 GB through the pipe).
    if (bytes > MAX_REPLY_BYTES) row = raw.map((v) => cutCell(v, Math.min(max, replyCellShare(raw.length))));
    rows.push(row);
    used += bytes;
    // Nothing after this row can be in the reply: stop reading (how many follow is not known).
    if (used > MAX_REPLY_BYTES) {
      overflow = true;
      break;
    }
  }
  // A write's RETURNING rows: SQLite made every change at the first step, so reading
  // stopped early left none undone; changes() counts them.
  const changes = stmt.readonly ? undefined : (db.prepare('SELECT changes()').pluck().get() as number);
  return { id: req.id, ok: true, columns, rows, truncated, overflow, changes };
}

process.on('message', (req: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = handle(req);
  } catch (err) {
    reply = { id: req.id, ok: false, error: (err as Error).message };
  }
  process.send!(reply);
});
process.on('disconnect', () => {
  db.close();
  process.exit(0);
});
process.send!({ ready: true });
