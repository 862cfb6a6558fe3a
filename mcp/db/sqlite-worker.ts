/**
 * Child process that owns the SQLite connection (forked by sqlite.ts). better-sqlite3
 * runs a statement synchronously and cannot interrupt it, so the statement timeout
 * is enforced by the parent killing this process; a kill mid-statement is safe (a
 * read has nothing to undo, a write is rolled back from SQLite's journal).
 * Usage: sqlite-worker.ts <db file> ro|rw
 */
import Database from 'better-sqlite3';

export type WorkerJob = { sql: string; params: Record<string, unknown>; rowLimit: number; maxCellBytes: number } | { describe: string[] };

/** A cell longer than maxCellBytes, cut here: its head and the whole value's length in bytes (sqlite.ts makes it a CutCell). */
export interface WorkerCut {
  cut: string;
  bytes: number;
}
export type WorkerRequest = WorkerJob & { id: number };

export type WorkerReply =
  | { id: number; ok: true; columns: string[]; rows: unknown[][]; truncated: boolean; changes?: number }
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
  const cutCell = (v: unknown): unknown => {
    if (typeof v === 'string' && v.length > max / 4) {
      const bytes = Buffer.byteLength(v);
      return bytes > max ? ({ cut: v.slice(0, max), bytes } satisfies WorkerCut) : v;
    }
    if (v instanceof Uint8Array && 2 + 2 * v.length > max) {
      // As the server shows a blob: \x and two hex digits a byte.
      return { cut: `\\x${Buffer.from(v.subarray(0, Math.ceil(max / 2))).toString('hex')}`, bytes: 2 + 2 * v.length } satisfies WorkerCut;
    }
    return v;
  };
  const rows: unknown[][] = [];
  let truncated = false;
  // iterate() steps one row at a time, so rows past the cap are never produced.
  for (const row of stmt.raw(true).iterate(req.params) as IterableIterator<unknown[]>) {
    if (rows.length === req.rowLimit) {
      truncated = true;
      break;
    }
    rows.push(row.map(cutCell));
  }
  return { id: req.id, ok: true, columns, rows, truncated };
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
