/**
 * Expressions: every node type is on an allowlist, every column reference resolves
 * to an allowed column, every function, operator and cast type is allowed, and
 * subqueries are checked as nested levels. An unknown node type is refused.
 */
import type { Node, SortBy, WindowDef } from 'libpg-query';
import { ALLOWED_OPERATORS, ALLOWED_TYPES } from './policy.ts';
import { collectRels, describeRels, GuardError, kindOf, resolveColumn, strings, type GuardCtx, type Level } from './guard-scope.ts';

export interface ExprOpts {
  /** `DEFAULT` is an expression only in INSERT VALUES and UPDATE SET. */
  allowDefault?: boolean;
}

/** Strip an optional `pg_catalog.` schema; any other schema is refused. */
function builtinName(names: string[], what: string): string {
  const [a, b, ...rest] = names;
  if (b === undefined && a !== undefined) return a;
  if (a === 'pg_catalog' && b !== undefined && rest.length === 0) return b;
  throw new GuardError(`${what} ${names.join('.')} is not allowed: only built-ins, without a schema other than pg_catalog`);
}

/** Operators: built-in symbols only, optionally in OPERATOR(pg_catalog.x) form. */
export function checkOperator(names: string[]): void {
  const op = builtinName(names, 'operator');
  if (!ALLOWED_OPERATORS.has(op)) {
    throw new GuardError(`operator ${op} is not allowed. Allowed operators: ${[...ALLOWED_OPERATORS].join(' ')}`);
  }
}

function checkFunction(ctx: GuardCtx, names: string[]): void {
  const fn = builtinName(names, 'function');
  if (!ctx.policy.functions.has(fn)) {
    throw new GuardError(`function ${fn}() is not allowed. Allowed functions: ${[...ctx.policy.functions].sort().join(', ')}`);
  }
}

/** An ORDER BY item (also inside aggregates and windows), resolved against input columns. */
export function checkSortBy(ctx: GuardCtx, node: Node, level: Level): SortBy {
  if (!('SortBy' in node)) throw new GuardError(`unexpected ${kindOf(node)} in ORDER BY`);
  const s = node.SortBy;
  if (s.useOp) checkOperator(strings(s.useOp));
  checkExpr(ctx, s.node, level);
  return s;
}

/** A window definition: PARTITION BY, ORDER BY and frame offsets. */
export function checkWindow(ctx: GuardCtx, w: WindowDef, level: Level): void {
  for (const e of w.partitionClause ?? []) checkExpr(ctx, e, level);
  for (const s of w.orderClause ?? []) checkSortBy(ctx, s, level);
  checkExpr(ctx, w.startOffset, level);
  checkExpr(ctx, w.endOffset, level);
}

function checkExprs(ctx: GuardCtx, nodes: Node[] | undefined, level: Level, opts: ExprOpts = {}): void {
  for (const n of nodes ?? []) checkExpr(ctx, n, level, opts);
}

/** Check one expression tree (undefined is fine: an absent clause). */
export function checkExpr(ctx: GuardCtx, node: Node | undefined, level: Level, opts: ExprOpts = {}): void {
  if (!node) return;
  const sub = (n: Node | undefined) => checkExpr(ctx, n, level, opts);
  const subs = (ns: Node[] | undefined) => checkExprs(ctx, ns, level, opts);
  if ('ColumnRef' in node) {
    const fields = node.ColumnRef.fields ?? [];
    if (fields.some((f) => 'A_Star' in f)) throw starError(level);
    resolveColumn(level, strings(fields));
  } else if ('A_Const' in node || 'ParamRef' in node) {
    // Literals and $n: nothing to resolve.
  } else if ('SQLValueFunction' in node) {
    // SQLite reads USER, CURRENT_ROLE, LOCALTIME ... as column names: a hidden column so
    // named would be read. The three both databases mean the same by are kept.
    if (!CLOCK_FUNCTIONS.has(node.SQLValueFunction.op ?? '')) {
      throw new GuardError('only CURRENT_DATE, CURRENT_TIME and CURRENT_TIMESTAMP are allowed of the SQL value functions (no USER, CURRENT_ROLE, LOCALTIME ...)');
    }
  } else if ('A_Expr' in node) {
    const e = node.A_Expr;
    if (e.kind !== 'AEXPR_BETWEEN' && e.kind !== 'AEXPR_NOT_BETWEEN' && e.kind !== 'AEXPR_BETWEEN_SYM' && e.kind !== 'AEXPR_NOT_BETWEEN_SYM') {
      checkOperator(strings(e.name));
    }
    sub(e.lexpr);
    sub(e.rexpr);
  } else if ('BoolExpr' in node) subs(node.BoolExpr.args);
  else if ('NullTest' in node) sub(node.NullTest.arg);
  else if ('BooleanTest' in node) sub(node.BooleanTest.arg);
  else if ('List' in node) subs(node.List.items);
  else if ('CoalesceExpr' in node) subs(node.CoalesceExpr.args);
  else if ('MinMaxExpr' in node) subs(node.MinMaxExpr.args);
  else if ('A_ArrayExpr' in node) subs(node.A_ArrayExpr.elements);
  else if ('RowExpr' in node) subs(node.RowExpr.args);
  else if ('GroupingFunc' in node) subs(node.GroupingFunc.args);
  else if ('GroupingSet' in node) subs(node.GroupingSet.content);
  else if ('NamedArgExpr' in node) sub(node.NamedArgExpr.arg);
  else if ('CollateClause' in node) sub(node.CollateClause.arg);
  else if ('CaseExpr' in node) {
    const c = node.CaseExpr;
    sub(c.arg);
    for (const w of c.args ?? []) {
      if (!('CaseWhen' in w)) throw new GuardError(`unexpected ${kindOf(w)} in CASE`);
      sub(w.CaseWhen.expr);
      sub(w.CaseWhen.result);
    }
    sub(c.defresult);
  } else if ('TypeCast' in node) {
    const names = strings(node.TypeCast.typeName?.names);
    // A typed literal (`date '2024-01-01'`, type before value): SQLite reads `text 'x'` as
    // the column text aliased x. CAST(... AS type) and ...::type mean the same to both.
    const typeAt = node.TypeCast.typeName?.location ?? -1;
    if (typeAt >= 0 && typeAt < location(node.TypeCast.arg)) {
      throw new GuardError(`write CAST('...' AS ${names.at(-1)}) instead of the typed literal ${names.at(-1)} '...'`);
    }
    const type = builtinName(names, 'type');
    if (!ALLOWED_TYPES.has(type)) throw new GuardError(`cast to ${names.join('.')} is not allowed. Allowed types: ${[...ALLOWED_TYPES].join(', ')}`);
    sub(node.TypeCast.arg);
  } else if ('FuncCall' in node) {
    const f = node.FuncCall;
    checkFunction(ctx, strings(f.funcname));
    subs(f.args);
    for (const s of f.agg_order ?? []) checkSortBy(ctx, s, level);
    sub(f.agg_filter);
    if (f.over) checkWindow(ctx, f.over, level);
  } else if ('A_Indirection' in node) {
    sub(node.A_Indirection.arg);
    for (const i of node.A_Indirection.indirection ?? []) {
      if ('A_Star' in i) throw starError(level);
      if ('A_Indices' in i) {
        sub(i.A_Indices.lidx);
        sub(i.A_Indices.uidx);
      } else if ('String' in i) {
        // PostgreSQL reads (x).f as the call f(x) for any one-argument function f: none of
        // the function checks would see it. Composite fields are not worth that.
        throw new GuardError(`field selection (...).${i.String.sval ?? ''} is not allowed: PostgreSQL may read it as a call of the function ${i.String.sval ?? ''}(); select the column itself`);
      } else throw new GuardError(`unexpected ${kindOf(i)} in a field or subscript`);
    }
  } else if ('SubLink' in node) {
    const s = node.SubLink;
    if (s.operName) checkOperator(strings(s.operName));
    sub(s.testexpr);
    if (!s.subselect || !('SelectStmt' in s.subselect)) throw new GuardError('a subquery must be a SELECT');
    ctx.subquery(s.subselect.SelectStmt, level);
  } else if ('SetToDefault' in node && opts.allowDefault) {
    // DEFAULT in INSERT VALUES / UPDATE SET.
  } else if ('A_Star' in node) {
    throw starError(level);
  } else {
    throw new GuardError(`${kindOf(node)} is not supported by the SQL guard; rewrite the query with plain expressions`);
  }
}

function starError(level: Level): GuardError {
  return new GuardError(`* is not allowed (SELECT *, t.*, (row).*): name the columns you need. Allowed columns: ${describeRels(collectRels(level))}`);
}

/** The SQL value functions both PostgreSQL and SQLite read as the clock. */
const CLOCK_FUNCTIONS = new Set(['SVFOP_CURRENT_DATE', 'SVFOP_CURRENT_TIME', 'SVFOP_CURRENT_TIME_N', 'SVFOP_CURRENT_TIMESTAMP', 'SVFOP_CURRENT_TIMESTAMP_N']);

/** Where an expression starts in the query (bytes), -1 when the parser gave none. */
function location(node: Node | undefined): number {
  if (!node) return -1;
  const inner = Object.values(node)[0] as { location?: number } | undefined;
  return typeof inner?.location === 'number' ? inner.location : -1;
}
