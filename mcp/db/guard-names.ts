/**
 * The column names a subquery or CTE exposes, as PostgreSQL names them
 * (FigureColname in parse_target.c), but only where that is certain: an explicit
 * alias, a column, a function call, COALESCE / GREATEST / LEAST / NULLIF and casts
 * of those. Anything else gets no name, so an outer reference to it is refused
 * rather than risk the guard and PostgreSQL resolving the name differently.
 */
import type { Node, SelectStmt } from 'libpg-query';
import { strings } from './guard-scope.ts';

function exprName(node: Node | undefined): string | undefined {
  if (!node) return undefined;
  if ('ColumnRef' in node) {
    const last = node.ColumnRef.fields?.at(-1);
    return last && 'String' in last ? last.String.sval : undefined;
  }
  if ('FuncCall' in node) return strings(node.FuncCall.funcname).at(-1);
  if ('TypeCast' in node) return exprName(node.TypeCast.arg);
  if ('CoalesceExpr' in node) return 'coalesce';
  if ('MinMaxExpr' in node) return node.MinMaxExpr.op === 'IS_GREATEST' ? 'greatest' : 'least';
  if ('A_Expr' in node && node.A_Expr.kind === 'AEXPR_NULLIF') return 'nullif';
  return undefined;
}

/** Output names of a SELECT (a set operation takes its leftmost branch's names). */
export function outputNames(stmt: SelectStmt): Array<string | undefined> {
  if (stmt.op && stmt.op !== 'SETOP_NONE') return stmt.larg ? outputNames(stmt.larg) : [];
  if (stmt.valuesLists) {
    const first = stmt.valuesLists[0];
    const width = first && 'List' in first ? (first.List.items?.length ?? 0) : 0;
    return Array.from({ length: width }, (_, i) => `column${i + 1}`);
  }
  return (stmt.targetList ?? []).map((t) => {
    if (!('ResTarget' in t)) return undefined;
    return t.ResTarget.name ?? exprName(t.ResTarget.val);
  });
}

/** Apply a column alias list (`AS s(a, b)`, `WITH c(a, b)`): it renames the first columns. */
export function renamed(names: Array<string | undefined>, aliases: Node[] | undefined): Set<string> {
  const out = [...names];
  strings(aliases).forEach((a, i) => (out[i] = a));
  return new Set(out.filter((n): n is string => n !== undefined));
}
