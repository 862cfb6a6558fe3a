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
  if (!sql.trim()) throw new GuardError('no SQL statement given');
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
