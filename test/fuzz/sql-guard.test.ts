// Property-based tests of the db MCP server's SQL guard, mcp/db/guard.ts (issue 7, fuzzing).
// Statements are assembled from grammar pieces whose verdict is known (an allowed column
// of the table in scope, a sensitive or unlisted one, a forbidden function or cast, a
// write, a second statement), then decorated with comments, case and quoting. Properties:
// a statement with any forbidden piece is refused; whatever is accepted, checked again
// against PostgreSQL's own parse tree, reads only allowlisted names; refusal is always a
// GuardError (a value the tool returns), never another exception.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadModule, parseSync } from 'libpg-query';
import { dbSettingsSchema } from '../../lib/mcp/db-settings.ts';
import { checkSql, GuardError } from '../../mcp/db/guard.ts';
import { buildPolicy, type Policy } from '../../mcp/db/policy.ts';
import { hostileText, RUNS } from './arbitraries.ts';

const TABLES: Record<string, { allowed: string[]; sensitive: string[] }> = {
  users: { allowed: ['id', 'email', 'name', 'created_at'], sensitive: ['password_hash', 'api_token'] },
  orders: { allowed: ['id', 'user_id', 'total_cents', 'status', 'created_at'], sensitive: ['card_number'] },
  'audit.events': { allowed: ['id', 'kind'], sensitive: [] },
};
const settings = dbSettingsSchema.parse({
  tables: Object.fromEntries(Object.entries(TABLES).map(([t, c]) => [t, c.allowed])),
  sensitive: Object.fromEntries(Object.entries(TABLES).map(([t, c]) => [t, c.sensitive])),
});
const readOnly = buildPolicy(settings, false);
const writable = buildPolicy(settings, true);

const ALL_ALLOWED = new Set(Object.values(TABLES).flatMap((t) => t.allowed));
/** Output names the generator gives derived columns; never a table column's name. */
const ALIASES = ['a1', 'a2'];
const CTE = 'c1';
/** Columns no table allows: sensitive ones, system columns, unknown names. */
const FORBIDDEN_COLUMNS = new Set([...Object.values(TABLES).flatMap((t) => t.sensitive), 'ctid', 'xmin', 'tableoid', 'ssn', 'ID']);

/** A piece of SQL and whether the guard must refuse any statement that contains it. */
interface Piece {
  sql: string;
  bad: boolean;
}
const good = (sql: string): Piece => ({ sql, bad: false });
const bad = (sql: string): Piece => ({ sql, bad: true });
const join = (sep: string, ...ps: Piece[]): Piece => ({ sql: ps.map((p) => p.sql).join(sep), bad: ps.some((p) => p.bad) });

const tableName = fc.constantFrom(...Object.keys(TABLES));
const unknownTable = fc.constantFrom('secrets', 'pg_shadow', 'public.users', 'information_schema.columns', 'pg_catalog.pg_authid', 'audit.users');

/** A column of `table` as the query names it, qualified by `q` when given. */
function column(table: string, q: string | undefined): fc.Arbitrary<Piece> {
  const t = TABLES[table]!;
  const others = [...ALL_ALLOWED].filter((c) => !t.allowed.includes(c));
  const qual = (c: string) => (q ? `${q}.${c}` : c);
  // Allowed columns weigh most, so whole statements of allowed pieces are common too.
  const options: Array<fc.Arbitrary<Piece>> = [
    ...Array.from({ length: 8 }, () => fc.constantFrom(...t.allowed).map((c) => good(qual(c)))),
    fc.constantFrom(...t.allowed).map((c) => good(qual(`"${c}"`))),
    fc.constant(good(qual('U&"\\0069d"'))),
    fc.constantFrom('ctid', 'xmin', 'tableoid', 'ssn', '"ID"').map((c) => bad(qual(c))),
    fc.constant(bad(qual('*'))),
  ];
  if (t.sensitive.length > 0) {
    options.push(fc.constantFrom(...t.sensitive).map((c) => bad(qual(c))));
    options.push(fc.constantFrom(...t.sensitive).map((c) => bad(qual(`"${c}"`))));
    options.push(fc.constantFrom(...t.sensitive).map((c) => bad(qual(`U&"${c.replace('a', '\\0061')}"`))));
    if (q) options.push(fc.constantFrom(...t.sensitive).map((c) => bad(`(${q}).${c}`)));
  }
  if (others.length > 0) options.push(fc.constantFrom(...others).map((c) => bad(qual(c))));
  if (q) options.push(fc.constant(bad(q)));
  return fc.oneof(...options);
}

/** An expression over one column: functions, casts, operators; some of them forbidden. */
function expr(col: fc.Arbitrary<Piece>): fc.Arbitrary<Piece> {
  return fc.tuple(col, fc.nat(20)).map(([c, n]) => {
    const k = n > 13 ? 0 : n;
    const wrap: Array<(s: string) => Piece> = [
      (s) => good(s),
      (s) => good(`lower(${s}::text)`),
      (s) => good(`${s}::text`),
      (s) => good(`count(${s})`),
      (s) => good(`coalesce(${s}::text, 'x')`),
      (s) => good(`md5(${s}::text)`),
      (s) => good(`CASE WHEN ${s} IS NULL THEN 1 ELSE 0 END`),
      (s) => bad(`pg_sleep(length(${s}::text))`),
      (s) => bad(`current_setting(${s}::text)`),
      (s) => bad(`row_to_json(${s})`),
      (s) => bad(`${s}::regclass`),
      (s) => bad(`pg_catalog.pg_read_file(${s}::text)`),
      (s) => bad(`set_config('a', ${s}::text, false)`),
      (s) => bad(`public.lower(${s}::text)`),
    ];
    const w = wrap[k]!(c.sql);
    // count(*) counts rows and reads no column: allowed, unlike a bare * (found exploring, seed 1325830089).
    if (c.sql === '*' && w.sql === 'count(*)') return good('count(*)');
    return { sql: w.sql, bad: w.bad || c.bad };
  });
}

/** A WHERE condition: comparisons, IS NULL, LIKE, or an EXISTS subquery on another table. */
function condition(table: string, q: string | undefined): fc.Arbitrary<Piece> {
  const c = column(table, q);
  return fc.oneof(
    c.map((x) => join(' ', x, good('= $1'))),
    c.map((x) => join(' ', x, good('IS NOT NULL'))),
    c.map((x) => join(' ', good('lower('), x, good("::text) LIKE 'a%'"))),
    fc.tuple(tableName, column(table, q)).chain(([t2, x]) =>
      column(t2, undefined).map((inner) => join(' ', x, good('IN (SELECT'), inner, good(`FROM ${t2} w)`))),
    ),
    fc.tuple(tableName, fc.boolean()).chain(([t2, outer]) =>
      column(t2, 's').map((x) => join(' ', good(`EXISTS (SELECT 1 FROM ${t2} s WHERE`), x, good(outer && q ? `IS NOT NULL AND s.id = ${q}.id)` : 'IS NOT NULL)'))),
    ),
  );
}

/** `(SELECT col FROM t2 v LIMIT 1)` in a select list. */
const scalarSubquery: fc.Arbitrary<Piece> = tableName.chain((t2) => expr(column(t2, 'v')).map((c) => join(' ', good('(SELECT'), c, good(`FROM ${t2} v LIMIT 1)`))));

/** A SELECT whose verdict is known from its pieces. */
const select: fc.Arbitrary<Piece> = fc.oneof(
  // SELECT cols FROM t [alias] [WHERE] [ORDER BY] [LIMIT]
  fc.tuple(tableName, fc.constantFrom(undefined, 't')).chain(([t, q]) =>
    fc
      .tuple(fc.array(expr(column(t, q)), { minLength: 1, maxLength: 3 }), fc.option(scalarSubquery), fc.option(condition(t, q)), fc.option(column(t, q)), fc.boolean())
      .map(([cols, sub, where, order, limit]) =>
        join(
          ' ',
          good('SELECT'),
          join(', ', ...cols, ...(sub ? [sub] : [])),
          good(`FROM ${t}${q ? ` ${q}` : ''}`),
          ...(where ? [good('WHERE'), where] : []),
          ...(order ? [good('ORDER BY'), order] : []),
          ...(limit ? [good('LIMIT 5')] : []),
        ),
      ),
  ),
  // A join, every column qualified.
  fc.tuple(tableName, tableName).chain(([t1, t2]) =>
    fc.tuple(expr(column(t1, 'j1')), expr(column(t2, 'j2')), column(t2, 'j2')).map(([a, b, on]) =>
      join(' ', good('SELECT'), a, good(','), b, good(`FROM ${t1} j1 JOIN ${t2} j2 ON j1.id =`), on),
    ),
  ),
  // A CTE and a derived table: the outer query sees only the names given inside.
  fc.tuple(tableName, fc.boolean()).chain(([t, cte]) =>
    column(t, undefined).map((c) =>
      cte
        ? join(' ', good(`WITH ${CTE} AS (SELECT`), c, good(`AS ${ALIASES[0]} FROM ${t}) SELECT ${ALIASES[0]} FROM ${CTE}`))
        : join(' ', good('SELECT d.' + ALIASES[0] + ' FROM (SELECT'), c, good(`AS ${ALIASES[0]} FROM ${t}) d`)),
    ),
  ),
  // UNION of two tables.
  fc.tuple(tableName, tableName).chain(([t1, t2]) =>
    fc.tuple(column(t1, undefined), column(t2, undefined)).map(([a, b]) => join(' ', good('SELECT'), a, good(`FROM ${t1} UNION ALL SELECT`), b, good(`FROM ${t2}`))),
  ),
  // A table that is not allowed at all.
  unknownTable.map((t) => bad(`SELECT id FROM ${t}`)),
);

/** Statements that write, change the session or escape SELECT: never accepted read-only. */
const write: fc.Arbitrary<Piece> = fc.oneof(
  fc.tuple(tableName, fc.nat()).map(([t, i]) => bad(`INSERT INTO ${t} (${TABLES[t]!.allowed[i % TABLES[t]!.allowed.length]}) VALUES ($1)`)),
  fc.tuple(tableName, fc.nat()).map(([t, i]) => bad(`UPDATE ${t} SET ${TABLES[t]!.allowed[i % TABLES[t]!.allowed.length]} = $1 WHERE id = $2`)),
  tableName.map((t) => bad(`DELETE FROM ${t} WHERE id = $1`)),
  fc.constantFrom(
    'DROP TABLE users', 'TRUNCATE orders', 'COPY users TO STDOUT', "COPY (SELECT 1) TO PROGRAM 'id'", 'GRANT ALL ON users TO PUBLIC',
    'SET statement_timeout = 0', 'BEGIN', 'CREATE TABLE t AS SELECT id FROM users', 'SELECT id INTO stolen FROM users',
    'SELECT id FROM users FOR UPDATE', 'WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING id) SELECT id FROM d',
    'DO $$ BEGIN DELETE FROM users; END $$', 'EXPLAIN ANALYZE DELETE FROM users', 'CALL p()', 'VACUUM users', 'LISTEN x', "NOTIFY x, 'y'",
    'PREPARE p AS DELETE FROM users', 'LOCK TABLE users', 'ALTER TABLE users ADD COLUMN x int', 'REFRESH MATERIALIZED VIEW v',
  ).map(bad),
);

/** Comments, whitespace and keyword case the guard must see through exactly as PostgreSQL does. */
const decorate = (p: Piece): fc.Arbitrary<Piece> =>
  fc
    .tuple(
      fc.constantFrom('', '/* x */ ', '-- lead\n', '/* a /* nested */ b */ ', '\n\t '),
      fc.constantFrom('', ' ', ';', ' ; ', ' -- tail', ' /* ; DROP TABLE users */'),
      fc.oneof({ weight: 5, arbitrary: fc.constant('') }, fc.constantFrom('; DROP TABLE users', '; SELECT 1', ';;')),
      fc.boolean(),
    )
    .map(([lead, tail, second, lower]) => ({
      sql: lead + (lower ? p.sql.replace(/\b(SELECT|FROM|WHERE|ORDER BY|LIMIT|JOIN|ON|UNION ALL|WITH|AS|EXISTS|IS NOT NULL)\b/g, (k) => k.toLowerCase()) : p.sql) + tail + second,
      // A second statement counts unless the tail's line comment swallows it.
      bad: p.bad || (second !== '' && second !== ';;' && !tail.includes('--')),
    }));

/** Everything PostgreSQL says the statement names: relations, column references, functions. */
function namesIn(sql: string): { stmt: string; relations: string[]; columns: string[][]; stars: number; functions: string[] } {
  const tree = parseSync(sql);
  const out = { stmt: Object.keys(tree.stmts?.[0]?.stmt ?? {})[0] ?? '', relations: [] as string[], columns: [] as string[][], stars: 0, functions: [] as string[] };
  const strs = (list: unknown): string[] => ((list as Array<{ String?: { sval: string } }> | undefined) ?? []).map((n) => n.String?.sval ?? '*');
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (n.RangeVar) {
      const rv = n.RangeVar as { schemaname?: string; relname: string };
      out.relations.push(rv.schemaname ? `${rv.schemaname}.${rv.relname}` : rv.relname);
    }
    if (n.ColumnRef) {
      const fields = (n.ColumnRef as { fields: unknown[] }).fields;
      if (fields.some((f) => f !== null && typeof f === 'object' && 'A_Star' in f)) out.stars++;
      out.columns.push(strs(fields));
    }
    if (n.FuncCall) out.functions.push(strs((n.FuncCall as { funcname: unknown }).funcname).join('.'));
    for (const v of Object.values(n)) walk(v);
  };
  walk(tree.stmts);
  return out;
}

/** The independent check of an accepted read-only statement against the parse tree. */
function assertReadsOnlyAllowed(sql: string, policy: Policy): void {
  const n = namesIn(sql);
  assert.equal(n.stmt, 'SelectStmt', `accepted a ${n.stmt}: ${sql}`);
  assert.equal(n.stars, 0, `accepted a * : ${sql}`);
  for (const r of n.relations) assert.ok(policy.tables.has(r) || r === CTE, `accepted table ${r}: ${sql}`);
  const qualifiers = new Set(['t', 's', 'v', 'w', 'j1', 'j2', 'd', ...n.relations.map((r) => r.split('.').pop()!)]);
  for (const fields of n.columns) {
    const name = fields[fields.length - 1]!;
    assert.ok(!FORBIDDEN_COLUMNS.has(name), `accepted column ${fields.join('.')}: ${sql}`);
    assert.ok(ALL_ALLOWED.has(name) || ALIASES.includes(name), `accepted ${fields.join('.')}, not an allowed column: ${sql}`);
    assert.ok(fields.slice(0, -1).every((q) => qualifiers.has(q) || q === 'audit'), `accepted qualifier in ${fields.join('.')}: ${sql}`);
  }
  for (const f of n.functions) assert.ok(policy.functions.has(f) || f === 'pg_catalog.like_escape', `accepted function ${f}: ${sql}`);
}

/** checkSql's outcome: refusal is a value (a GuardError); anything else thrown fails the test. */
async function verdict(sql: string, policy: Policy): Promise<{ ok: true; sql: string; kind: string } | { ok: false; message: string }> {
  try {
    const g = await checkSql(sql, policy);
    return { ok: true, sql: g.sql, kind: g.kind };
  } catch (err) {
    assert.ok(err instanceof GuardError, `checkSql threw ${String(err)} for ${JSON.stringify(sql)}`);
    assert.ok(err.message.length > 0);
    return { ok: false, message: err.message };
  }
}

describe('sql guard (fuzz)', () => {
  it('refuses every read-only statement with a forbidden piece, accepts the others, and what it accepts reads only allowed names', async () => {
    await loadModule();
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: select }, { weight: 1, arbitrary: write }).chain(decorate), async (p) => {
        const v = await verdict(p.sql, readOnly);
        if (p.bad) assert.ok(!v.ok, `accepted a statement with a forbidden piece: ${p.sql}`);
        // And the guard stays usable: a statement of allowed pieces only is accepted.
        else assert.ok(v.ok, `refused a statement of allowed pieces: ${p.sql}: ${v.ok ? '' : v.message}`);
        if (v.ok) {
          accepted++;
          assert.equal(v.kind, 'select');
          assert.ok(p.sql.includes(v.sql.trim()), 'the statement returned is the one given');
          assertReadsOnlyAllowed(v.sql, readOnly);
        } else refused++;
      }),
      { numRuns: RUNS.pure },
    );
    // Both verdicts must occur, or the property above checked nothing.
    assert.ok(accepted > 20 && refused > 20, `accepted ${accepted}, refused ${refused}`);
  });

  it('with --allow-writes: writes of allowed columns pass; sensitive columns, unlisted tables and unguarded writes do not', async () => {
    await loadModule();
    const writeStmt = tableName.chain((t) =>
      fc.tuple(column(t, undefined), column(t, undefined), fc.nat(4)).map(([c, w, k]) => {
        const target = c.sql.replace(/^"|"$/g, '');
        const setCol = c.bad || c.sql.includes('.') || c.sql.startsWith('U&') ? c : good(target);
        return [
          join(' ', good(`INSERT INTO ${t} (`), setCol, good(') VALUES ($1)')),
          join(' ', good(`UPDATE ${t} SET`), setCol, good('= $1 WHERE'), w, good('= $2')),
          join(' ', good(`DELETE FROM ${t} WHERE`), w, good('= $1')),
          bad(`UPDATE ${t} SET id = $1`),
          bad(`DELETE FROM ${t}`),
        ][k]!;
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(writeStmt, unknownTable.map((t) => bad(`DELETE FROM ${t} WHERE id = $1`))).chain(decorate), async (p) => {
        const v = await verdict(p.sql, writable);
        if (p.bad) assert.ok(!v.ok, `accepted: ${p.sql}`);
        if (v.ok) {
          const n = namesIn(v.sql);
          assert.ok(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'SelectStmt'].includes(n.stmt), n.stmt);
          assert.equal(n.stars, 0);
          for (const fields of n.columns) assert.ok(!FORBIDDEN_COLUMNS.has(fields[fields.length - 1]!), `accepted ${fields.join('.')}: ${v.sql}`);
        }
      }),
      { numRuns: RUNS.pure },
    );
  });

  it('any text, token soup or garbage → accepted only when the parse tree reads allowed names, refused with a GuardError otherwise', async () => {
    await loadModule();
    const token = fc.constantFrom(
      'SELECT', 'FROM', 'WHERE', 'users', 'orders', 'audit.events', 'id', 'email', 'password_hash', 'card_number', '*', ',', '(', ')', ';',
      '$$', "'", '"', '/*', '*/', '--', '\n', 'U&', '::', 'regclass', 'UNION', 'WITH', 'AS', 'x', '1', '$1', 'pg_sleep', 'lower', 'OR', '=',
      'INSERT', 'INTO', 'VALUES', 'DELETE', 'E\'\\\'', '\\', 'LATERAL', 'ROW', 'TABLE', 'ONLY', '@', '#', 'ARRAY[', ']',
    );
    const soup = fc.array(token, { maxLength: 14 }).map((ts) => ts.join(' '));
    await fc.assert(
      fc.asyncProperty(fc.oneof(soup, hostileText, fc.string({ unit: 'binary', maxLength: 60 })), async (sql) => {
        const v = await verdict(sql, readOnly);
        if (v.ok) assertReadsOnlyAllowed(v.sql, readOnly);
      }),
      { numRuns: RUNS.pure },
    );
  });
});
