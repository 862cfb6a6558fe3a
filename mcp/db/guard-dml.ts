/**
 * INSERT / UPDATE / DELETE, reachable only when the server was started with
 * `--allow-writes`: the target is an allowed table, every column written or read
 * is allowed, INSERT names its columns, UPDATE and DELETE need a WHERE clause, and
 * ON CONFLICT, multi-column SET and DEFAULT VALUES are refused.
 */
import type { DeleteStmt, InsertStmt, Node, RangeVar, ReturningClause, UpdateStmt, WithClause } from 'libpg-query';
import { checkExpr } from './guard-expr.ts';
import { checkWith, tableRel } from './guard-select.ts';
import { GuardError, kindOf, newLevel, registerRel, type GuardCtx, type Level, type Rel } from './guard-scope.ts';

interface Dml {
  returningClause?: ReturningClause;
  withClause?: WithClause;
}

function target(ctx: GuardCtx, rv: RangeVar | undefined, level: Level): Rel {
  if (!rv) throw new GuardError('statement without a target table');
  const rel = tableRel(ctx, rv, level, { cteOk: false });
  registerRel(ctx, rel);
  return rel;
}

function writtenColumn(rel: Rel, node: Node): void {
  if (!('ResTarget' in node)) throw new GuardError(`unexpected ${kindOf(node)} in the column list`);
  const t = node.ResTarget;
  if (t.indirection) throw new GuardError(`assigning to a field or element of ${t.name} is not supported; assign the whole column`);
  if (!t.name || !rel.columns.has(t.name)) {
    const why = t.name && rel.table?.sensitive.has(t.name) ? 'is sensitive' : 'is not an allowed column';
    throw new GuardError(`column ${rel.table?.key}.${t.name} ${why}. Allowed columns of ${rel.table?.key}: ${[...rel.columns].join(', ')}`);
  }
}

function returning(ctx: GuardCtx, stmt: Dml, level: Level): void {
  if (stmt.returningClause?.options?.length) throw new GuardError('RETURNING WITH (OLD / NEW ...) is not supported');
  for (const t of stmt.returningClause?.exprs ?? []) {
    if (!('ResTarget' in t)) throw new GuardError(`unexpected ${kindOf(t)} in RETURNING`);
    checkExpr(ctx, t.ResTarget.val, level);
  }
}

function withLevel(ctx: GuardCtx, stmt: Dml): Level {
  const level = newLevel(undefined);
  if (stmt.withClause) checkWith(ctx, stmt.withClause, level);
  return level;
}

/** INSERT INTO allowed (columns) VALUES / SELECT [RETURNING]. */
export function checkInsert(ctx: GuardCtx, s: InsertStmt): void {
  const level = withLevel(ctx, s);
  const rel = target(ctx, s.relation, level);
  if (!s.cols?.length) throw new GuardError(`INSERT must list its columns: INSERT INTO ${rel.table?.key} (col, ...) VALUES (...)`);
  for (const c of s.cols) writtenColumn(rel, c);
  if (s.onConflictClause) throw new GuardError('INSERT ... ON CONFLICT is not supported');
  if (s.override && s.override !== 'OVERRIDING_NOT_SET') throw new GuardError('OVERRIDING ... VALUE is not allowed');
  if (!s.selectStmt || !('SelectStmt' in s.selectStmt)) throw new GuardError('INSERT needs VALUES or a SELECT');
  const sel = s.selectStmt.SelectStmt;
  if (sel.valuesLists) {
    // Plain VALUES rows only: a trailing ORDER BY, LIMIT or OFFSET (or anything else the
    // parser hangs on the VALUES) would hold expressions the row check below never sees.
    const extra = Object.keys(sel).filter((k) => k !== 'valuesLists' && k !== 'op' && k !== 'limitOption');
    if (extra.length || sel.op !== 'SETOP_NONE' || sel.limitOption !== 'LIMIT_OPTION_DEFAULT') {
      throw new GuardError('INSERT ... VALUES takes its rows only (no ORDER BY, LIMIT, OFFSET or WITH on the VALUES); use INSERT ... SELECT for more');
    }
    // VALUES rows cannot see the target table; DEFAULT is allowed there.
    for (const row of sel.valuesLists) checkExpr(ctx, row, level, { allowDefault: true });
  } else {
    ctx.subquery(sel, level);
  }
  returning(ctx, s, newLevel(level, [rel]));
}

/** UPDATE allowed SET allowed = ... WHERE ... [RETURNING]. */
export function checkUpdate(ctx: GuardCtx, s: UpdateStmt): void {
  const level = withLevel(ctx, s);
  const rel = target(ctx, s.relation, level);
  if (s.fromClause?.length) throw new GuardError('UPDATE ... FROM is not supported; use a subquery in WHERE');
  if (!s.whereClause) throw new GuardError('UPDATE without WHERE is not allowed: it would change every row');
  const scope = newLevel(level, [rel]);
  for (const t of s.targetList ?? []) {
    writtenColumn(rel, t);
    if ('ResTarget' in t) {
      if (t.ResTarget.val && 'MultiAssignRef' in t.ResTarget.val) throw new GuardError('SET (a, b) = (...) is not supported; assign columns one by one');
      checkExpr(ctx, t.ResTarget.val, scope, { allowDefault: true });
    }
  }
  checkExpr(ctx, s.whereClause, scope);
  returning(ctx, s, scope);
}

/** DELETE FROM allowed WHERE ... [RETURNING]. */
export function checkDelete(ctx: GuardCtx, s: DeleteStmt): void {
  const level = withLevel(ctx, s);
  const rel = target(ctx, s.relation, level);
  if (s.usingClause?.length) throw new GuardError('DELETE ... USING is not supported; use a subquery in WHERE');
  if (!s.whereClause) throw new GuardError('DELETE without WHERE is not allowed: it would remove every row');
  const scope = newLevel(level, [rel]);
  checkExpr(ctx, s.whereClause, scope);
  returning(ctx, s, scope);
}
