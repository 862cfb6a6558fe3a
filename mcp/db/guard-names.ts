/**
 * The column names a subquery or CTE exposes, only where PostgreSQL and SQLite name
 * them alike: an explicit alias, or a column. Anything else (a function call, a cast:
 * PostgreSQL names `CAST(x.a AS text)` a, SQLite by its text) gets no name, so an outer
 * reference to it is refused rather than risk the guard and the database resolving the
 * name differently (to a hidden column of a table beside it).
 */
import type { Node, SelectStmt } from 'libpg-query';
import { strings } from './guard-scope.ts';

function exprName(node: Node | undefined): string | undefined {
  if (!node) return undefined;
  if ('ColumnRef' in node) {
    const last = node.ColumnRef.fields?.at(-1);
    return last && 'String' in last ? last.String.sval : undefined;
  }
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
