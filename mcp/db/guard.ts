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
 * The estimate follows it column by column: a column's size is its expression's nodes,
 * a reference counting as the size of the column it names in a query that can be inlined
 * (a WITH query not declared MATERIALIZED, a subquery without grouping, aggregates,
 * DISTINCT, LIMIT or OFFSET, or a UNION ALL of them, its columns its branches' together);
 * the statement's size is its largest query's. WITH names resolve as PostgreSQL resolves
 * them: the nearest enclosing definition. It overestimates (a WITH query read twice is
 * not inlined) rather than under.
 */
export const MAX_INLINED_SIZE = 100_000;

type Node = Record<string, unknown>;
/** A query's output columns as the planner would inline them: size by name, and the largest. */
interface Cols {
  byName: Map<string, number>;
  most: number;
  /** Sizes by position (what column aliases rename). */
  order: number[];
  /** Output names by position (a set operation's columns are named by its first branch). */
  names: Array<string | undefined>;
}
interface Cte {
  body: Node;
  inline: boolean;
  /** The names its body sees: its own WITH list and those around it. */
  scope: Array<Map<string, Cte>>;
  /** WITH name(a, b) AS ...: its columns renamed by position. */
  names: Array<string | undefined>;
  cols?: Cols;
}
const FLAT: Cols = { byName: new Map(), most: 1, order: [], names: [] };

/** Columns renamed by position (WITH name(a, b), FROM (...) alias(a, b)); unnamed ones keep their names. */
function renamed(cols: Cols, names: Array<string | undefined>): Cols {
  if (!names.length) return cols;
  const byName = new Map(cols.byName);
  names.forEach((n, k) => {
    if (n !== undefined) byName.set(n, cols.order[k] ?? cols.most);
  });
  return { ...cols, byName, names: cols.order.map((_, k) => names[k] ?? cols.names[k]) };
}

/** A FROM item's JOIN conditions (ON), nested joins included. */
function joinQuals(f: unknown): unknown[] {
  const j = (f as { JoinExpr?: { larg?: unknown; rarg?: unknown; quals?: unknown } }).JoinExpr;
  return j ? [j.quals, ...joinQuals(j.larg), ...joinQuals(j.rarg)] : [];
}
const AGGREGATES = /^(count|sum|avg|min|max|array_agg|string_agg|json_agg|jsonb_agg|json_object_agg|jsonb_object_agg|bool_and|bool_or|every|bit_and|bit_or|stddev.*|var.*|percentile_.*|mode|xmlagg)$/;

export function inlinedSize(stmt: unknown): number {
  let worst = 1;
  const sval = (n: unknown) => (n as { String?: { sval?: string } }).String?.sval;

  const scored = new Set<Node>();
  const query = (sel: Node, scope: Array<Map<string, Cte>>, outer: Array<Map<string, Cols>> = []): Cols => {
    scored.add(sel);
    // The WITH list first: a set operation carries it on its own node.
    const frame = new Map<string, Cte>();
    const inner = [frame, ...scope];
    for (const c of ((sel.withClause as { ctes?: unknown[] } | undefined)?.ctes ?? []) as Array<{ CommonTableExpr?: Node }>) {
      const e = c.CommonTableExpr;
      const body = (e?.ctequery as { SelectStmt?: Node } | undefined)?.SelectStmt;
      if (!e || typeof e.ctename !== 'string' || !body) continue;
      const names = ((e.aliascolnames as unknown[]) ?? []).map(sval);
      frame.set(e.ctename, { body, inline: e.ctematerialized !== 'CTEMaterializeAlways', scope: inner, names });
    }
    if (sel.op && sel.op !== 'SETOP_NONE') {
      const l = query(sel.larg as Node, inner, outer);
      const r = query(sel.rarg as Node, inner, outer);
      worst = Math.max(worst, cost(sel, ['larg', 'rarg', 'withClause'], inner, outer, new Map()));
      // PostgreSQL flattens a UNION ALL read from FROM into an append of its branches, and
      // a reference to one of its columns becomes that column's expression in every branch
      // it can pull up: a column is as large as its branches' together (twelve nested
      // levels of three references each, 2 KB of SQL, planned for 100 s in 10 GB). A branch
      // it cannot pull up is read as a plain relation.
      const side = (b: Node, c: Cols, k: number) => (pullable(b) ? (c.order[k] ?? c.most) : 1);
      const order = l.order.map((_, k) => side(sel.larg as Node, l, k) + side(sel.rarg as Node, r, k));
      const byName = new Map<string, number>();
      l.names.forEach((n, k) => {
        if (n !== undefined) byName.set(n, Math.max(byName.get(n) ?? 0, order[k]!));
      });
      return { byName, most: Math.max(1, ...order), order, names: l.names };
    }
    // What each FROM item (by its alias) offers when referenced.
    const items = new Map<string, Cols>();
    const from = (f: unknown): void => {
      const n = f as {
        RangeSubselect?: { subquery?: { SelectStmt?: Node }; alias?: { aliasname?: string; colnames?: unknown[] }; lateral?: boolean };
        RangeVar?: { relname?: string; schemaname?: string; alias?: { aliasname?: string; colnames?: unknown[] } };
        JoinExpr?: { larg?: unknown; rarg?: unknown; quals?: unknown };
      };
      if (n.RangeSubselect?.subquery?.SelectStmt) {
        const sub = n.RangeSubselect.subquery.SelectStmt;
        const cols = query(sub, inner, n.RangeSubselect.lateral ? [items, ...outer] : outer);
        const named = renamed(cols, (n.RangeSubselect.alias?.colnames ?? []).map(sval));
        items.set(n.RangeSubselect.alias?.aliasname ?? '', pullable(sub) ? named : FLAT);
      } else if (n.RangeVar?.relname) {
        const name = n.RangeVar.relname;
        const cte = n.RangeVar.schemaname ? undefined : inner.find((m) => m.has(name))?.get(name);
        let cols = FLAT;
        if (cte) {
          if (!cte.cols) {
            cte.cols = FLAT; // a recursive WITH query reads itself
            cte.cols = renamed(query(cte.body, cte.scope), cte.names);
          }
          if (cte.inline && pullable(cte.body)) cols = renamed(cte.cols, (n.RangeVar.alias?.colnames ?? []).map(sval));
        }
        items.set(n.RangeVar.alias?.aliasname ?? name, cols);
      } else if (n.JoinExpr) {
        from(n.JoinExpr.larg);
        from(n.JoinExpr.rarg);
      }
    };
    for (const f of (sel.fromClause as unknown[]) ?? []) from(f);
    const levels = [items, ...outer];
    const out = new Map<string, number>();
    const order: number[] = [];
    const names: Array<string | undefined> = [];
    let most = 1;
    const rows = sel.valuesLists as Array<{ List?: { items?: unknown[] } }> | undefined;
    if (rows) {
      // VALUES: its columns by position (named by the alias that reads it).
      for (const row of rows) {
        (row.List?.items ?? []).forEach((cell, k) => {
          const size = Math.max(1, cost(cell, [], inner, outer, items));
          order[k] = Math.max(order[k] ?? 1, size);
          most = Math.max(most, size);
        });
      }
    }
    for (const t of (sel.targetList as Array<{ ResTarget?: { name?: string; val?: unknown } }>) ?? []) {
      const size = Math.max(1, cost(t.ResTarget?.val, [], inner, levels.slice(1), items));
      order.push(size);
      most = Math.max(most, size);
      const fields = (t.ResTarget?.val as { ColumnRef?: { fields?: unknown[] } } | undefined)?.ColumnRef?.fields;
      const name = t.ResTarget?.name ?? (fields ? sval(fields[fields.length - 1]) : undefined);
      names.push(name);
      if (name !== undefined) out.set(name, Math.max(out.get(name) ?? 0, size));
    }
    // The query's own size: every expression it holds (select list, WHERE, JOIN conditions,
    // VALUES, LIMIT, ORDER BY ...), the subqueries in them scored as they go.
    let all = order.reduce((a, b) => a + b, 0);
    all += cost(sel, ['targetList', 'fromClause', 'withClause', 'valuesLists'], inner, outer, items);
    for (const f of (sel.fromClause as unknown[]) ?? []) all += cost(joinQuals(f), [], inner, outer, items);
    worst = Math.max(worst, all);
    return { byName: out, most, order, names };
  };

  /** The nodes of an expression, a column reference counting as the size of what it names, a subquery as its largest column. */
  const cost = (expr: unknown, skip: readonly string[], scope: Array<Map<string, Cte>>, outer: Array<Map<string, Cols>>, items: Map<string, Cols>): number => {
    const levels = [items, ...outer];
    let total = 0;
    const visit = (key: string, v: unknown) => {
      if (key === 'ColumnRef') total += ref(levels, ((v as { fields?: unknown[] }).fields ?? []) as unknown[]);
      else if (key === 'SubLink' || key === 'SelectStmt') {
        const sub = key === 'SelectStmt' ? (v as Node) : (v as { subselect?: { SelectStmt?: Node } }).subselect?.SelectStmt;
        // A subquery in an expression is copied with it, and sees the queries around it.
        if (sub) total += query(sub, scope, levels).most;
        else total += 1;
        if (key === 'SubLink') total += cost((v as { testexpr?: unknown }).testexpr, [], scope, outer, items);
      } else if (/^[A-Z]/.test(key)) total += 1;
    };
    if (expr && typeof expr === 'object' && !Array.isArray(expr) && skip.length) {
      for (const [k, x] of Object.entries(expr as Node)) if (!skip.includes(k)) walk(x, visit, ['ColumnRef', 'SubLink', 'SelectStmt']);
    } else {
      walk(expr, visit, ['ColumnRef', 'SubLink', 'SelectStmt']);
    }
    return total;
  };

  /** A column reference's size: the column it names, in this query's FROM or, correlated, an enclosing one's. */
  const ref = (levels: Array<Map<string, Cols>>, fields: unknown[]): number => {
    const names = fields.map(sval);
    const col = names[names.length - 1];
    if (names.length >= 2 && names[0] !== undefined) {
      for (const items of levels) {
        const cols = items.get(names[0]);
        if (cols) return col !== undefined ? (cols.byName.get(col) ?? cols.most) : cols.most;
      }
      return 1;
    }
    // Unqualified: the first level that has a column of that name; else the largest it could be.
    for (const items of levels) {
      let found = 0;
      for (const cols of items.values()) found = Math.max(found, col !== undefined ? (cols.byName.get(col) ?? 0) : 0);
      if (found) return found;
    }
    let most = 1;
    for (const items of levels) for (const cols of items.values()) most = Math.max(most, cols.most);
    return most;
  };

  /** Whether PostgreSQL can pull a query up into the one that reads it (its columns then inline). */
  const pullable = (sel: Node): boolean => {
    // UNION ALL becomes an append of its branches (unless LIMIT / OFFSET hold it together);
    // UNION, INTERSECT and EXCEPT are planned on their own.
    if (sel.op && sel.op !== 'SETOP_NONE') return sel.op === 'SETOP_UNION' && sel.all === true && !sel.limitCount && !sel.limitOffset;
    if (sel.groupClause || sel.havingClause || sel.distinctClause || sel.limitCount || sel.limitOffset || sel.windowClause) return false;
    let aggregate = false;
    walk(sel.targetList, (key, v) => {
      if (key !== 'FuncCall') return;
      const f = v as { funcname?: unknown[]; agg_star?: boolean; over?: unknown };
      const name = sval(f.funcname?.[f.funcname.length - 1]);
      if (f.agg_star || f.over || (name !== undefined && AGGREGATES.test(name))) aggregate = true;
    });
    return !aggregate;
  };

  // A write is read as the query it holds: its WITH list, what it reads, its expressions.
  const top = (stmt as Record<string, Node | undefined> | undefined) ?? {};
  const ins = top.InsertStmt;
  const upd = top.UpdateStmt;
  const del = top.DeleteStmt;
  const root: Node | undefined = top.SelectStmt
    ? top.SelectStmt
    : ins
      ? { withClause: ins.withClause, fromClause: ins.selectStmt ? [{ RangeSubselect: { subquery: ins.selectStmt } }] : [], targetList: ins.returningList ?? [] }
      : upd
        ? { withClause: upd.withClause, fromClause: upd.fromClause ?? [], targetList: [...((upd.targetList as unknown[]) ?? []), ...((upd.returningList as unknown[]) ?? [])], whereClause: upd.whereClause }
        : del
          ? { withClause: del.withClause, fromClause: del.usingClause ?? [], targetList: del.returningList ?? [], whereClause: del.whereClause }
          : undefined;
  if (root) query(root, []);
  // Anything the walk above did not reach (a place this estimate does not know) is scored
  // on its own: never left out.
  walk(top, (key, v) => {
    if (key === 'SelectStmt' && !scored.has(v as Node)) query(v as Node, []);
  });
  return worst;
}

/** Visit every keyed value of a parse tree (iteratively: trees can be deep); `stopAt` keys are visited but not entered. */
function walk(root: unknown, visit: (key: string, value: unknown) => void, stopAt: readonly string[] = []): void {
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v as Node)) {
        visit(k, x);
        if (!stopAt.includes(k)) stack.push(x);
      }
    }
  }
}
