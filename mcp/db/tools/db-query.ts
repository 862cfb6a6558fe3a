/**
 * db_query: one guarded SQL statement. Refusals (guard, timeout, database errors)
 * come back as isError results that say what was rejected and what is allowed.
 */
import { z } from 'zod';
import { defineTool, text, ToolError } from '../../shared/tool.ts';
import { CutCell, MAX_REPLY_BYTES, replyCellShare, type DbCtx, type QueryResult } from '../backend.ts';
import { checkSql, GuardError, type GuardedSql } from '../guard.ts';

const param = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** A cell as JSON can carry it, cut to maxBytes so one blob cannot flood the context. */
function cell(v: unknown, maxBytes: number): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' || typeof v === 'boolean') return v;
  const cut = (s: string, bytes: number | undefined) =>
    `${Buffer.from(s).subarray(0, maxBytes).toString()}… [cut: ${bytes ?? `more than ${maxBytes}`} bytes, limit ${maxBytes}]`;
  if (v instanceof CutCell) return cut(v.head, v.bytes);
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'bigint') s = v.toString();
  else if (v instanceof Date) s = Number.isNaN(v.getTime()) ? String(v) : v.toISOString();
  else if (v instanceof Uint8Array) s = `\\x${Buffer.from(v).toString('hex')}`;
  else s = JSON.stringify(v);
  const bytes = Buffer.byteLength(s);
  return bytes <= maxBytes ? s : cut(s, bytes);
}

/**
 * The rows that fit in MAX_REPLY_BYTES, whole rows only; at least the first, its cells cut to
 * share the room. A row the backend says overflows is never whole: its cells may have come cut.
 */
function fitRows(r: QueryResult, maxCellBytes: number): { rows: unknown[][]; cut: boolean } {
  const out: unknown[][] = [];
  let used = 0;
  for (const [i, row] of r.rows.entries()) {
    const cells = row.map((v) => cell(v, maxCellBytes));
    const bytes = Buffer.byteLength(JSON.stringify(cells));
    if (used + bytes > MAX_REPLY_BYTES || (r.overflow && i === r.rows.length - 1)) {
      if (!out.length) out.push(row.map((v) => cell(v, replyCellShare(row.length))));
      return { rows: out, cut: true };
    }
    out.push(cells);
    used += bytes;
  }
  return { rows: out, cut: false };
}

function summary(q: GuardedSql, r: QueryResult, rowLimit: number, shown: number, cut: boolean): string {
  const head = q.kind === 'select' ? '' : `${q.kind.toUpperCase()}: ${r.changes ?? 0} row(s) changed. `;
  if (cut) {
    return `${head}Reply size limit reached: showing the first ${shown} of ${r.overflow ? `at least ${r.rows.length}` : `${r.rows.length}${r.truncated ? '+' : ''}`} rows (${MAX_REPLY_BYTES / 1024} KB of cells at most). Select fewer or narrower columns, or fewer rows.`;
  }
  if (r.truncated) {
    return `${head}Row limit reached: showing the first ${rowLimit} rows; the query returns more. Add a LIMIT, a narrower WHERE or an aggregate to see the rest.`;
  }
  return `${head}${r.rows.length} row(s).`;
}

/** The db_query tool; its annotations tell the truth about the variant it runs in. */
export function dbQueryTool(allowWrites: boolean) {
  return defineTool({
    name: 'db_query',
    title: allowWrites ? 'Run SQL (writes enabled)' : 'Run a read-only SQL query',
    description:
      'Run one SQL statement against the application database to check what the data looks like while debugging. ' +
      (allowWrites
        ? 'SELECT, INSERT, UPDATE and DELETE on allowed columns are accepted (INSERT lists its columns; UPDATE/DELETE need WHERE). '
        : 'Read-only: only SELECT. ') +
      'Write PostgreSQL syntax (also when the database is SQLite). Name every column: SELECT * is refused, and only the ' +
      'tables and columns db_describe lists may appear anywhere (select list, WHERE, JOIN, ORDER BY, subqueries). ' +
      'Qualify references to an outer query with its alias. Only allowlisted functions; no DDL, COPY, DO, SET, ' +
      'transaction control or locking. Pass values as params and refer to them as $1, $2, ... ' +
      'Rows are capped and a statement timeout applies (see db_describe); the result says when rows were cut.',
    input: {
      sql: z.string().min(1).max(20_000).describe('exactly one statement, PostgreSQL syntax, e.g. SELECT id, status FROM orders WHERE user_id = $1'),
      params: z.array(param).max(100).optional().describe('values for $1, $2, ... in order'),
    },
    annotations: { readOnlyHint: !allowWrites, destructiveHint: allowWrites, idempotentHint: !allowWrites, openWorldHint: false },
    handler: async ({ sql, params }, ctx: DbCtx) => {
      let guarded: GuardedSql;
      try {
        guarded = await checkSql(sql, await ctx.verifiedPolicy());
      } catch (err) {
        if (err instanceof GuardError) throw new ToolError(`rejected: ${err.message}`);
        throw err;
      }
      const r = await ctx.backend.run(guarded, params ?? []);
      const { maxCellBytes, rowLimit } = ctx.settings;
      const { rows, cut } = fitRows(r, maxCellBytes);
      return text(`${summary(guarded, r, rowLimit, rows.length, cut)}\n${JSON.stringify({ columns: r.columns, rows, truncated: r.truncated || cut })}`);
    },
  });
}
