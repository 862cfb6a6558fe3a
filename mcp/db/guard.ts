/**
 * The SQL guard: parses with PostgreSQL's own parser (libpg-query) and walks the
 * whole tree, so comments, quoting, dollar strings and nested comments mean to the
 * guard exactly what they mean to the server. One statement; a SELECT (or, with
 * `--allow-writes`, INSERT / UPDATE / DELETE); only allowed tables, columns,
 * functions, operators and casts. Anything it does not understand is refused.
 */
import { hasSqlDetails, loadModule, parseSync } from 'libpg-query';
import { checkDelete, checkInsert, checkUpdate } from './guard-dml.ts';
import { GuardError, statementName, type GuardCtx } from './guard-scope.ts';
import { checkSelect } from './guard-select.ts';
import type { Policy } from './policy.ts';

export { GuardError } from './guard-scope.ts';

export interface GuardedSql {
  kind: 'select' | 'insert' | 'update' | 'delete';
  /** The one statement as written, without the trailing semicolon. */
  sql: string;
}

let loaded: Promise<void> | undefined;

/** Parse and check one statement against the policy; throws GuardError when refused. */
export async function checkSql(sql: string, policy: Policy): Promise<GuardedSql> {
  try {
    return await check(sql, policy);
  } catch (err) {
    // A tree deeper than the checks can walk (SELECT 1 + 1 + ... thousands of times):
    // refused as such, not a crash with a stack trace in the log.
    if (err instanceof RangeError) throw new GuardError('the query is nested too deeply to check (thousands of operators or levels): simplify it');
    throw err;
  }
}

async function check(sql: string, policy: Policy): Promise<GuardedSql> {
  if (!sql.trim()) throw new GuardError('no SQL statement given');
  // The parser stops at a NUL; the server would be sent the whole text.
  if (sql.includes('\u0000')) throw new GuardError('the SQL text holds a NUL character: remove it');
  await (loaded ??= loadModule());
  let stmts;
  try {
    stmts = parseSync(sql).stmts ?? [];
  } catch (err) {
    const at = hasSqlDetails(err) ? ` at position ${err.sqlDetails!.cursorPosition}` : '';
    throw new GuardError(
      `SQL syntax error${at}: ${(err as Error).message}. Queries are parsed as PostgreSQL (also for SQLite databases): ` +
        'use double quotes for identifiers, single quotes for strings, $1, $2 ... for parameters',
    );
  }
  if (stmts.length === 0) throw new GuardError('no SQL statement given');
  if (stmts.length > 1) {
    throw new GuardError(`only one statement per call; got ${stmts.length}: ${stmts.map((s) => statementName(s.stmt)).join('; ')}`);
  }
  const raw = stmts[0]!;
  // The parser's offsets count UTF-8 bytes, not JavaScript characters: sliced as a string,
  // multibyte text before the statement would shift it, and the database would run other
  // text than the one checked here.
  const bytes = Buffer.from(sql, 'utf8');
  const start = raw.stmt_location ?? 0;
  const text = (raw.stmt_len ? bytes.subarray(start, start + raw.stmt_len) : bytes.subarray(start)).toString('utf8');
  if (!sameStatement(text, raw.stmt)) throw new GuardError('internal error: the statement cut from the query is not the one checked; nothing was run');
  const ctx: GuardCtx = {
    policy,
    refnames: new Map(),
    nextId: (() => {
      let n = 0;
      return () => ++n;
    })(),
    subquery: (stmt, parent) => checkSelect(ctx, stmt, parent),
  };
  const stmt = raw.stmt;
  const grows = inlinedSize(stmt);
  if (grows > MAX_INLINED_SIZE) {
    throw new GuardError(
      `query too complex: its subqueries and WITH queries, inlined by the planner, would repeat column expressions about ${grows.toExponential(1)} times ` +
        `(at most ${MAX_INLINED_SIZE}). Reference each column of a nested query fewer times, or write WITH name AS MATERIALIZED (...)`,
    );
  }
  let kind: GuardedSql['kind'];
  if (stmt && 'SelectStmt' in stmt) {
    checkSelect(ctx, stmt.SelectStmt, undefined);
    kind = 'select';
  } else if (policy.allowWrites && stmt && 'InsertStmt' in stmt) {
    checkInsert(ctx, stmt.InsertStmt);
    kind = 'insert';
  } else if (policy.allowWrites && stmt && 'UpdateStmt' in stmt) {
    checkUpdate(ctx, stmt.UpdateStmt);
    kind = 'update';
  } else if (policy.allowWrites && stmt && 'DeleteStmt' in stmt) {
    checkDelete(ctx, stmt.DeleteStmt);
    kind = 'delete';
  } else {
    const allowed = policy.allowWrites ? 'SELECT, INSERT, UPDATE and DELETE are' : 'only SELECT is (this server is read-only)';
    throw new GuardError(`${statementName(stmt)} is not allowed: ${allowed} allowed`);
  }
  return { kind, sql: text };
}

/** Whether `text` parses to exactly the statement `stmt` (positions aside): what runs is what was checked. */
function sameStatement(text: string, stmt: unknown): boolean {
  let again;
  try {
    again = parseSync(text).stmts ?? [];
  } catch {
    return false;
  }
  const shape = (v: unknown) => JSON.stringify(v, (k, x: unknown) => (k === 'location' || k === 'stmt_location' || k === 'stmt_len' ? undefined : x));
  return again.length === 1 && shape(again[0]!.stmt) === shape(stmt);
}

/**
 * How far the planner's inlining could multiply a statement's expressions. PostgreSQL
 * inlines a WITH query referenced once and pulls simple subqueries in FROM up into the
 * query that reads them: every reference to one of their columns becomes a copy of that
 * column's expression. Nested, the copies multiply (nine references a level, seven levels:
 * 4.8 million nodes, 19 s and 4 GB in the planner, which no statement timeout interrupts).
 * The estimate: a query's column references times the largest estimate among what its FROM
 * reads (a subquery, or a WITH query not declared MATERIALIZED), the largest over every
 * query in the statement. It overestimates (not every reference names a nested column)
 * and is cheap: linear in the tree.
 */
export const MAX_INLINED_SIZE = 100_000;

type Node = Record<string, unknown>;

export function inlinedSize(stmt: unknown): number {
  const ctes = new Map<string, { body: Node; materialized: boolean }>();
  const selects: Node[] = [];
  walk(stmt, (key, v) => {
    if (key === 'CommonTableExpr') {
      const c = v as { ctename?: string; ctequery?: { SelectStmt?: Node }; ctematerialized?: string };
      if (c.ctename && c.ctequery?.SelectStmt) ctes.set(c.ctename, { body: c.ctequery.SelectStmt, materialized: c.ctematerialized === 'CTEMaterializeAlways' });
    }
    if (key === 'SelectStmt') selects.push(v as Node);
  });
  const memo = new Map<Node, number>();
  const size = (sel: Node): number => {
    const known = memo.get(sel);
    if (known !== undefined) return known;
    memo.set(sel, 1); // a recursive WITH query reads itself
    let v: number;
    if (sel.op && sel.op !== 'SETOP_NONE') {
      v = Math.max(size(((sel.larg as Node) ?? {}) as Node), size(((sel.rarg as Node) ?? {}) as Node));
    } else {
      let refs = 0;
      for (const [k, x] of Object.entries(sel)) {
        if (k === 'fromClause' || k === 'withClause') continue;
        walk(x, (key) => {
          if (key === 'ColumnRef') refs++;
        }, 'SelectStmt');
      }
      let inner = 1;
      for (const f of (sel.fromClause as unknown[]) ?? []) inner = Math.max(inner, from(f));
      v = Math.max(1, refs) * inner;
    }
    memo.set(sel, v);
    return v;
  };
  const from = (f: unknown): number => {
    const n = f as { RangeSubselect?: { subquery?: { SelectStmt?: Node } }; RangeVar?: { relname?: string; schemaname?: string }; JoinExpr?: { larg?: unknown; rarg?: unknown } };
    if (n.RangeSubselect?.subquery?.SelectStmt) return size(n.RangeSubselect.subquery.SelectStmt);
    if (n.JoinExpr) return Math.max(from(n.JoinExpr.larg), from(n.JoinExpr.rarg));
    const cte = n.RangeVar && !n.RangeVar.schemaname && n.RangeVar.relname ? ctes.get(n.RangeVar.relname) : undefined;
    return cte && !cte.materialized ? size(cte.body) : 1;
  };
  let most = 1;
  for (const sel of selects) most = Math.max(most, size(sel));
  return most;
}

/** Visit every keyed value of a parse tree (iteratively: trees can be deep); `stopAt` keys are visited but not entered. */
function walk(root: unknown, visit: (key: string, value: unknown) => void, stopAt?: string): void {
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v as Node)) {
        visit(k, x);
        if (k !== stopAt) stack.push(x);
      }
    }
  }
}
