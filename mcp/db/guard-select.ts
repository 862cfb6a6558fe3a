/**
 * SELECT statements: WITH, FROM (tables, subqueries, joins), then every clause's
 * expressions against the relations in scope. FROM items the guard cannot reason
 * about exactly (LATERAL, functions, TABLESAMPLE, NATURAL joins, join aliases) are
 * refused with a message saying so.
 */
import type { ColumnRef, JoinExpr, Node, RangeVar, SelectStmt, WithClause } from 'libpg-query';
import { checkExpr, checkOperator, checkSortBy, checkWindow } from './guard-expr.ts';
import { outputNames, renamed } from './guard-names.ts';
import { findCte, GuardError, kindOf, newLevel, registerRel, statementName, strings, type GuardCtx, type Level, type Rel } from './guard-scope.ts';

interface FromResult {
  rels: Rel[];
  merged: Set<string>;
}

/** A base table (or CTE reference) in FROM; also the target of INSERT / UPDATE / DELETE. */
export function tableRel(ctx: GuardCtx, rv: RangeVar, level: Level, opts: { cteOk: boolean }): Rel {
  if (rv.catalogname) throw new GuardError(`cross-database reference ${rv.catalogname}.${rv.schemaname}.${rv.relname} is not allowed`);
  if (rv.alias?.colnames) {
    // `users AS u(a, b)` renames columns by position: an allowed name could then read any column.
    throw new GuardError(`column alias lists on a table (${rv.alias.aliasname}(${strings(rv.alias.colnames).join(', ')})) are not allowed`);
  }
  const name = rv.relname ?? '';
  const refname = rv.alias?.aliasname ?? name;
  const cte = opts.cteOk && !rv.schemaname ? findCte(level, name) : undefined;
  if (cte) return { refname, id: cte.id, aliased: !!rv.alias, columns: cte.columns };
  const key = rv.schemaname ? `${rv.schemaname}.${name}` : name;
  const table = ctx.policy.tables.get(key);
  if (!table) {
    const allowed = [...ctx.policy.tables.keys()].join(', ') || '(none configured)';
    throw new GuardError(`table ${key} is not allowed. Allowed tables: ${allowed}`);
  }
  return { refname, id: `table:${key}`, table, schema: rv.schemaname, aliased: !!rv.alias, columns: table.columns };
}

/** WITH: CTEs must be SELECTs; each sees the earlier ones (all of them under RECURSIVE). */
export function checkWith(ctx: GuardCtx, w: WithClause, level: Level): void {
  const ctes = (w.ctes ?? []).map((n) => {
    if (!('CommonTableExpr' in n)) throw new GuardError(`unexpected ${kindOf(n)} in WITH`);
    const c = n.CommonTableExpr;
    const q = c.ctequery;
    if (!q || !('SelectStmt' in q)) {
      throw new GuardError(`WITH ${c.ctename} AS (${statementName(q)}): a CTE may only be a SELECT (writable CTEs are not allowed)`);
    }
    if (c.search_clause || c.cycle_clause) throw new GuardError(`WITH ${c.ctename}: SEARCH and CYCLE clauses are not supported`);
    const cte = { id: `cte:${ctx.nextId()}`, columns: renamed(outputNames(q.SelectStmt), c.aliascolnames) };
    return { name: c.ctename ?? '', stmt: q.SelectStmt, cte };
  });
  for (const c of ctes) {
    const key = c.name.toLowerCase();
    if (level.withNames.has(key)) throw new GuardError(`WITH ${c.name}: another query of this WITH list has that name (names are compared without case)`);
    level.withNames.set(key, c.name);
  }
  if (w.recursive) for (const c of ctes) level.ctes.set(c.name, c.cte);
  for (const c of ctes) {
    ctx.subquery(c.stmt, level);
    level.ctes.set(c.name, c.cte);
  }
}

function checkJoin(ctx: GuardCtx, j: JoinExpr, level: Level): FromResult {
  if (j.isNatural) throw new GuardError('NATURAL JOIN is not allowed: it joins on every common column, allowed or not; use JOIN ... ON');
  if (j.alias || j.join_using_alias) throw new GuardError('an alias on a JOIN is not allowed; alias the tables instead');
  if (!j.larg || !j.rarg) throw new GuardError('JOIN without two sides');
  const left = checkFromItem(ctx, j.larg, level);
  const right = checkFromItem(ctx, j.rarg, level);
  const merged = new Set([...left.merged, ...right.merged]);
  for (const col of strings(j.usingClause)) {
    for (const side of [left, right]) {
      const hits = side.rels.filter((r) => r.columns.has(col));
      if (hits.length !== 1 && !side.merged.has(col)) {
        const tables = side.rels.map((r) => r.table?.key ?? r.refname ?? 'subquery').join(', ');
        throw new GuardError(`USING (${col}): ${col} must be an allowed column of exactly one table on each side (${tables})`);
      }
    }
    merged.add(col);
  }
  // ON sees only the two sides of this join (and outer queries), as in PostgreSQL.
  const on: Level = { parent: level.parent, ctes: level.ctes, withNames: level.withNames, rels: [...left.rels, ...right.rels], merged };
  checkExpr(ctx, j.quals, on);
  return { rels: on.rels, merged };
}

function checkFromItem(ctx: GuardCtx, node: Node, level: Level): FromResult {
  if ('RangeVar' in node) {
    const rel = tableRel(ctx, node.RangeVar, level, { cteOk: true });
    registerRel(ctx, rel);
    return { rels: [rel], merged: new Set() };
  }
  if ('JoinExpr' in node) return checkJoin(ctx, node.JoinExpr, level);
  if ('RangeSubselect' in node) {
    const r = node.RangeSubselect;
    if (r.lateral) throw new GuardError('LATERAL subqueries are not supported; use a join or a correlated subquery');
    if (!r.subquery || !('SelectStmt' in r.subquery)) throw new GuardError('a subquery in FROM must be a SELECT');
    // A non-LATERAL subquery cannot see its siblings in FROM, only CTEs and outer queries.
    const shadow: Level = { parent: level.parent, ctes: level.ctes, withNames: level.withNames, rels: [], merged: new Set() };
    const names = ctx.subquery(r.subquery.SelectStmt, shadow);
    const rel: Rel = { refname: r.alias?.aliasname, id: `sub:${ctx.nextId()}`, aliased: true, columns: renamed(names, r.alias?.colnames) };
    registerRel(ctx, rel);
    return { rels: [rel], merged: new Set() };
  }
  const what: Record<string, string> = {
    RangeFunction: 'functions in FROM (generate_series, unnest, ...)',
    RangeTableSample: 'TABLESAMPLE',
    RangeTableFunc: 'XMLTABLE',
    JsonTable: 'JSON_TABLE',
  };
  throw new GuardError(`${what[kindOf(node)] ?? kindOf(node)} in FROM is not supported; FROM may list allowed tables, subqueries and joins`);
}

function isBareName(n: Node | undefined): n is { ColumnRef: ColumnRef } {
  return !!n && 'ColumnRef' in n && (n.ColumnRef.fields ?? []).length === 1 && 'String' in n.ColumnRef.fields![0]!;
}

/** Check a SELECT whose outer level is `parent`; returns its output column names. */
export function checkSelect(ctx: GuardCtx, s: SelectStmt, parent: Level | undefined): Array<string | undefined> {
  if (s.intoClause) throw new GuardError('SELECT ... INTO creates a table and is not allowed');
  if (s.lockingClause) throw new GuardError('locking clauses (FOR UPDATE / FOR SHARE) are not allowed');
  const level = newLevel(parent);
  if (s.withClause) checkWith(ctx, s.withClause, level);
  if (s.op && s.op !== 'SETOP_NONE') {
    if (!s.larg || !s.rarg) throw new GuardError(`${s.op} without two sides`);
    const names = checkSelect(ctx, s.larg, level);
    checkSelect(ctx, s.rarg, level);
    // PostgreSQL resolves ORDER BY of a UNION only against its output columns.
    for (const n of s.sortClause ?? []) {
      const sort = 'SortBy' in n ? n.SortBy : undefined;
      const target = sort?.node;
      const ok = target && ('A_Const' in target || (isBareName(target) && names.includes(strings(target.ColumnRef.fields)[0])));
      if (!ok) throw new GuardError('ORDER BY of a UNION / INTERSECT / EXCEPT may only name its output columns or positions');
      if (sort?.useOp) checkOperator(strings(sort.useOp));
    }
    checkExpr(ctx, s.limitCount, level);
    checkExpr(ctx, s.limitOffset, level);
    return names;
  }
  for (const row of s.valuesLists ?? []) checkExpr(ctx, row, level);
  for (const item of s.fromClause ?? []) {
    const r = checkFromItem(ctx, item, level);
    level.rels.push(...r.rels);
    for (const m of r.merged) level.merged.add(m);
  }
  const aliases = new Set<string>();
  for (const t of s.targetList ?? []) {
    if (!('ResTarget' in t)) throw new GuardError(`unexpected ${kindOf(t)} in the select list`);
    checkExpr(ctx, t.ResTarget.val, level);
    if (t.ResTarget.name) aliases.add(t.ResTarget.name);
  }
  checkExpr(ctx, s.whereClause, level);
  for (const g of s.groupClause ?? []) {
    try {
      checkExpr(ctx, g, level);
    } catch (err) {
      // PostgreSQL resolves a GROUP BY name against table columns before select-list aliases.
      if (!(err instanceof GuardError) || !isBareName(g) || !aliases.has(strings(g.ColumnRef.fields)[0]!)) throw err;
      throw new GuardError(`${err.message}. GROUP BY cannot name a select-list alias here: use its position (GROUP BY 1) or repeat the expression`);
    }
  }
  checkExpr(ctx, s.havingClause, level);
  for (const w of s.windowClause ?? []) {
    if (!('WindowDef' in w)) throw new GuardError(`unexpected ${kindOf(w)} in WINDOW`);
    checkWindow(ctx, w.WindowDef, level);
  }
  // ORDER BY and DISTINCT ON prefer output names (SQL92 rule): a bare name equal to an
  // explicit `AS` alias reads that select-list entry, which was checked above.
  const isAlias = (n: Node | undefined) => isBareName(n) && aliases.has(strings(n.ColumnRef.fields)[0]!);
  for (const d of s.distinctClause ?? []) if (Object.keys(d).length > 0 && !isAlias(d)) checkExpr(ctx, d, level);
  for (const n of s.sortClause ?? []) {
    if (!('SortBy' in n) || !isAlias(n.SortBy.node)) checkSortBy(ctx, n, level);
    else if (n.SortBy.useOp) checkOperator(strings(n.SortBy.useOp));
  }
  checkExpr(ctx, s.limitCount, level);
  checkExpr(ctx, s.limitOffset, level);
  return outputNames(s);
}
