// The SQL guard alone (mcp/db/guard.ts): no database, PostgreSQL's parser only.
// The end-to-end attack run against a real server is test/mcp/db.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dbSettingsSchema } from '../../lib/mcp/db-settings.ts';
import { checkSql, GuardError } from '../../mcp/db/guard.ts';
import { buildPolicy, restrictToExisting } from '../../mcp/db/policy.ts';
import { toSqlite } from '../../mcp/db/sqlite-sql.ts';

const settings = dbSettingsSchema.parse({
  tables: {
    users: ['id', 'email', 'name', 'created_at'],
    orders: ['id', 'user_id', 'total_cents', 'status', 'created_at'],
    'audit.events': ['id', 'kind'],
  },
  sensitive: { users: ['password_hash', 'api_token'], orders: ['card_number'] },
  functions: ['md5'],
});
const readOnly = buildPolicy(settings, false);
const writable = buildPolicy(settings, true);

async function rejects(sql: string, ...fragments: Array<string | RegExp>): Promise<string> {
  const err = await checkSql(sql, readOnly).then(
    () => assert.fail(`guard accepted: ${sql}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof GuardError, `not a GuardError for ${sql}: ${String(err)}`);
  for (const f of fragments) assert.match(err.message, typeof f === 'string' ? new RegExp(f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : f, sql);
  return err.message;
}

describe('sql guard: accepted', () => {
  const ok = [
    'SELECT id, email FROM users',
    'select "id" from "users" where id = $1',
    'SELECT u.id, o.total_cents FROM users u JOIN orders o ON o.user_id = u.id WHERE u.email ILIKE $1 ORDER BY o.total_cents DESC LIMIT 5',
    'SELECT status, count(*) AS n FROM orders GROUP BY status HAVING count(*) > 1 ORDER BY n DESC',
    "SELECT date_trunc('day', created_at) AS day, sum(total_cents) FROM orders GROUP BY 1 ORDER BY day",
    'WITH big AS (SELECT user_id, total_cents FROM orders WHERE total_cents > 1000) SELECT b.user_id, u.email FROM big b JOIN users u ON u.id = b.user_id',
    'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT i FROM n',
    'SELECT id FROM users WHERE id IN (SELECT user_id FROM orders WHERE status = $1)',
    'SELECT id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)',
    'SELECT x.n FROM (SELECT count(*) AS n FROM orders) x',
    'SELECT n FROM (SELECT count(*) FROM orders) AS x(n)',
    'SELECT id FROM users UNION SELECT user_id FROM orders ORDER BY id',
    'SELECT o.id, row_number() OVER (PARTITION BY o.user_id ORDER BY o.created_at) FROM orders o',
    "SELECT CASE WHEN total_cents > 100 THEN 'big' ELSE 'small' END, coalesce(status, '?') FROM orders",
    'SELECT id::text, created_at::date FROM users WHERE email IS NOT NULL AND id BETWEEN 1 AND 10',
    'SELECT user_id FROM orders JOIN users ON users.id = orders.user_id',
    'SELECT id FROM orders JOIN (SELECT id AS user_id FROM users) u USING (user_id)',
    'SELECT id, kind FROM audit.events',
    'SELECT id FROM users /* , password_hash */ -- ; DROP TABLE users',
    'SELECT id FROM users /* nested /* comment */ ; DROP TABLE users; */',
    "SELECT $$; DROP TABLE users; $$ AS s",
    'SELECT DISTINCT ON (user_id) user_id, total_cents FROM orders ORDER BY user_id, total_cents DESC',
    'SELECT md5(email) FROM users',
  ];
  for (const sql of ok) test(sql, async () => void (await checkSql(sql, readOnly)));

  test('returns the one statement without leading comments or the semicolon', async () => {
    const g = await checkSql('  /* why */ SELECT id FROM users WHERE id = $1 OR email = $2 ; ', readOnly);
    assert.deepEqual(g, { kind: 'select', sql: 'SELECT id FROM users WHERE id = $1 OR email = $2 ' });
  });
});

describe('sql guard: rejected, naming the offending part', () => {
  const cases: Array<[string, ...string[]]> = [
    ['SELECT * FROM users', '*', 'users(id, email, name, created_at)'],
    ['SELECT u.* FROM users u', '*'],
    ['TABLE users', '*'],
    ['SELECT password_hash FROM users', 'password_hash', 'sensitive', 'Allowed columns: users(id, email, name, created_at)'],
    ['SELECT "password_hash" FROM users', 'password_hash', 'sensitive'],
    ['SELECT U&"p\\0061ssword_hash" FROM users', 'password_hash', 'sensitive'],
    ['SELECT "ID" FROM users', 'ID', 'not an allowed column'],
    ['SELECT u.api_token FROM users u', 'u.api_token', 'sensitive'],
    ['SELECT public.users.password_hash FROM public.users', 'table public.users is not allowed'],
    ['SELECT id FROM users WHERE password_hash LIKE $1', 'password_hash'],
    ['SELECT id FROM users ORDER BY password_hash', 'password_hash'],
    ['SELECT id FROM users GROUP BY id HAVING max(api_token) > $1', 'api_token'],
    ['SELECT count(*) FILTER (WHERE api_token IS NULL) FROM users', 'api_token'],
    ['SELECT id, rank() OVER (ORDER BY password_hash) FROM users', 'password_hash'],
    ['SELECT id FROM users WINDOW w AS (PARTITION BY api_token)', 'api_token'],
    ['SELECT lower(password_hash::text) FROM users', 'password_hash'],
    ['SELECT (SELECT max(card_number) FROM orders) AS c FROM users', 'card_number', 'orders('],
    ['SELECT id FROM users WHERE EXISTS (SELECT 1 FROM orders o WHERE o.card_number = $1)', 'o.card_number'],
    ['WITH x AS (SELECT password_hash AS h FROM users) SELECT h FROM x', 'password_hash'],
    ['SELECT id FROM users UNION SELECT card_number FROM orders', 'card_number'],
    ['SELECT u FROM users u', 'whole row'],
    ['SELECT (u).password_hash FROM users u', 'whole row'],
    ['SELECT password_hash(u) FROM users u', 'password_hash()'],
    ['SELECT email FROM users AS u(id, email)', 'column alias lists'],
    ['SELECT id FROM users NATURAL JOIN orders', 'NATURAL JOIN'],
    ['SELECT o.id FROM orders o JOIN users u USING (password_hash)', 'USING (password_hash)'],
    ['SELECT id FROM users, orders', 'ambiguous'],
    ['SELECT (SELECT secret FROM users LIMIT 1) FROM (SELECT 1 AS secret) s', 'secret'],
    ['SELECT s.x FROM (SELECT id AS x FROM users) s, (SELECT id AS y FROM orders) s', 'two different'],
    ['SELECT id FROM users u, LATERAL (SELECT u.password_hash) x', 'LATERAL'],
    ['SELECT g FROM generate_series(1, 10) g', 'functions in FROM'],
    ['SELECT id FROM users TABLESAMPLE SYSTEM (50)', 'TABLESAMPLE'],
    ['SELECT id FROM users FOR UPDATE', 'FOR UPDATE'],
    ['SELECT id INTO stolen FROM users', 'INTO'],
    ['COMMIT; DROP TABLE users', 'one statement', 'DROP'],
    ['SELECT id FROM users; DELETE FROM orders', 'one statement'],
    ['-- hi\nDROP TABLE users', 'DROP is not allowed'],
    ['/* x */ DELETE FROM users WHERE id = 1', 'DELETE is not allowed', 'read-only'],
    ['UPDATE users SET email = $1 WHERE id = 1', 'UPDATE is not allowed'],
    ['INSERT INTO users (email) VALUES ($1)', 'INSERT is not allowed'],
    ['TRUNCATE orders', 'TRUNCATE'],
    ['BEGIN', 'transaction control'],
    ['SET statement_timeout = 0', 'SET is not allowed'],
    ['COPY users TO STDOUT', 'COPY'],
    ["COPY (SELECT 1) TO PROGRAM 'id'", 'COPY'],
    ['DO $$ BEGIN DELETE FROM users; END $$', 'DO is not allowed'],
    ['EXPLAIN ANALYZE DELETE FROM users', 'EXPLAIN'],
    ['CREATE TABLE t AS SELECT id FROM users', 'CREATE TABLE AS'],
    ['GRANT ALL ON users TO PUBLIC', 'GRANT'],
    ['SELECT pg_sleep(10)', 'pg_sleep()', 'Allowed functions:'],
    ['SELECT pg_catalog.pg_sleep(10)', 'pg_sleep()'],
    ["SELECT set_config('statement_timeout', '0', false)", 'set_config()'],
    ["SELECT nextval('users_id_seq')", 'nextval()'],
    ["SELECT dblink_exec('host=x', 'DROP TABLE users')", 'dblink_exec()'],
    ["SELECT current_setting('data_directory')", 'current_setting()'],
    ["SELECT query_to_xml('select * from users', true, true, '')", 'query_to_xml()'],
    ["SELECT pg_read_file('/etc/passwd')", 'pg_read_file()'],
    ['SELECT public.lower(email) FROM users', 'public.lower'],
    ['SELECT usename, passwd FROM pg_shadow', 'table pg_shadow is not allowed', 'Allowed tables: users, orders, audit.events'],
    ['SELECT column_name FROM information_schema.columns', 'information_schema.columns'],
    ['SELECT id FROM secrets', 'table secrets'],
    ["SELECT 'users'::regclass", 'cast to regclass'],
    ['SELECT id FROM users WHERE email OPERATOR(public.===) $1', 'operator public.==='],
    ['SELECT [password_hash] FROM users', 'syntax error', 'PostgreSQL'],
    // (x).f is the call f(x) in PostgreSQL: ts_stat runs the SQL in its string.
    ["SELECT (CAST('SELECT CAST(password_hash AS tsvector) FROM users' AS text)).ts_stat", 'field selection', 'ts_stat()'],
    ['SELECT (CAST(1 AS float8)).pg_sleep', 'field selection', 'pg_sleep()'],
    ['SELECT `password_hash` FROM users', 'syntax error'],
    ['SELECT email FROM users GROUP BY e ORDER BY 1', 'column e'],
    [' ; -- nothing', 'no SQL statement'],
    ['', 'no SQL statement'],
  ];
  for (const [sql, ...fragments] of cases) test(sql || '(empty)', async () => void (await rejects(sql, ...fragments)));

  // PostgreSQL reads the table users in a (a WITH query sees only those before it), SQLite
  // the later WITH query users: the guard cannot check one reading and let the other run.
  test('a later CTE named like a table an earlier one reads is refused: the two databases would read different relations', async () => {
    await rejects('WITH a AS (SELECT password_hash FROM users), users AS (SELECT 1 AS password_hash) SELECT password_hash FROM a', 'FROM users', 'SQLite would read the WITH query users');
    await rejects('WITH a AS (SELECT password_hash FROM users) SELECT password_hash FROM a', 'password_hash', 'sensitive');
  });

  test('ORDER BY may use a select-list alias but GROUP BY may not (PostgreSQL prefers a table column there)', async () => {
    await checkSql('SELECT id AS password_hash FROM users ORDER BY password_hash', readOnly);
    await rejects('SELECT count(*), id AS password_hash FROM users GROUP BY password_hash', 'password_hash', 'sensitive', 'GROUP BY 1');
    await checkSql('SELECT status, user_id, count(*) FROM orders GROUP BY GROUPING SETS ((status, user_id), status, ())', readOnly);
  });
});

describe('sql guard: what the planner would make of it', () => {
  test('nested queries whose inlining would multiply expressions past the bound are refused; MATERIALIZED ones are not', async () => {
    const terms = (t: string, n: number) => Array(n).fill(`${t}.id`).join(' + ');
    // Each level references the one below it 8 times: 8^6 copies once the planner inlines them
    // (seven levels of nine took 19 s and 4 GB of the database's memory, past any timeout).
    let ctes = 'WITH l0 AS (SELECT o.id FROM orders o)';
    for (let i = 1; i <= 6; i++) ctes += `, l${i} AS (SELECT ${terms(`l${i - 1}`, 8)} AS id FROM l${i - 1})`;
    await rejects(`${ctes} SELECT l6.id FROM l6`, 'query too complex', 'MATERIALIZED');
    let nested = 'SELECT o.id FROM orders o';
    for (let i = 1; i <= 7; i++) nested = `SELECT ${terms(`x${i}`, 8)} AS id FROM (${nested}) x${i}`;
    await rejects(nested, 'query too complex');
    await checkSql(`${ctes.replace(/ AS \(/g, ' AS MATERIALIZED (')} SELECT l6.id FROM l6`, readOnly);
    // Too deep to walk: refused as such (it overflowed the stack, logged as a crash).
    await rejects(`SELECT ${Array(5000).fill('1').join(' + ')}`, 'nested too deeply');
    // The parser stops at a NUL; the server would be sent all of it.
    await rejects('SELECT id FROM users\u0000 WHERE id = 1', 'NUL');
    await checkSql(
      "WITH recent AS (SELECT o.id, o.user_id, o.status FROM orders o WHERE o.status <> 'x') SELECT r.status, count(*) FROM recent r JOIN users u ON u.id = r.user_id GROUP BY r.status ORDER BY r.status",
      readOnly,
    );
    // Counted column by column: many columns passed through many levels are no copies at all.
    const cols = (a: string) => Array.from({ length: 50 }, (_, i) => `${a}.${i % 2 ? 'status' : 'id'} AS c${i}`).join(', ');
    const pass = (a: string) => Array.from({ length: 50 }, (_, i) => `${a}.c${i} AS c${i}`).join(', ');
    await checkSql(`SELECT ${pass('b')} FROM (SELECT ${pass('a')} FROM (SELECT ${cols('o')} FROM orders o) a) b`, readOnly);
    await checkSql(`WITH s1 AS (SELECT ${cols('o')} FROM orders o), s2 AS (SELECT ${pass('s1')} FROM s1), s3 AS (SELECT ${pass('s2')} FROM s2) SELECT ${pass('s3')} FROM s3`, readOnly);
    // Names resolve to the nearest definition: decoys of the same names elsewhere change nothing.
    const decoys = Array.from({ length: 7 }, (_, i) => `l${i} AS (SELECT 1 AS id)`).join(', ');
    await rejects(`${ctes} SELECT l6.id, (WITH ${decoys} SELECT 1) AS z FROM l6`, 'query too complex');
    // Wherever the chain hides: behind a set operation, renamed columns, a correlated
    // subquery in the select list, VALUES, LIMIT.
    let renamedChain = 'WITH l0(v) AS (SELECT o.id FROM orders o)';
    let correlated = 'WITH l0 AS (SELECT o.id FROM orders o)';
    for (let i = 1; i <= 6; i++) {
      renamedChain += `, l${i}(v) AS (SELECT ${Array(8).fill('v').join(' + ')} FROM l${i - 1})`;
      correlated += `, l${i} AS (SELECT (SELECT ${terms(`l${i - 1}`, 8)}) AS id FROM l${i - 1})`;
    }
    await rejects(`${ctes} SELECT l6.id FROM l6 UNION ALL SELECT 1`, 'query too complex');
    await rejects(`${renamedChain} SELECT l6.v FROM l6`, 'query too complex');
    await rejects(`${correlated} SELECT l6.id FROM l6`, 'query too complex');
    await rejects(`SELECT v.x FROM (VALUES ((${ctes} SELECT max(l6.id) FROM l6))) v(x)`, 'query too complex');
    await rejects(`SELECT o.id FROM orders o LIMIT (${ctes} SELECT max(l6.id) FROM l6)`, 'query too complex');
    // A subquery the planner cannot pull up (an aggregate, OFFSET) is planned on its own: no copies.
    await checkSql(`SELECT ${terms('x', 8)} AS id FROM (SELECT count(*) AS id FROM (${nested}) y) x`.replace(nested, 'SELECT o.id FROM orders o'), readOnly);
  });

  test('a UNION ALL in FROM is flattened into its branches: a chain through it multiplies like any other', async () => {
    // Each level reads the UNION ALL of the level below and one more table, three references
    // a column: the planner copies each level's expressions into every branch. Twelve levels
    // (2 KB) were estimated at 21 and planned for 100 s, the server growing to 10 GB.
    const chain = (levels: number, op = 'UNION ALL') => {
      let q = 'SELECT o.id AS c0, o.id AS c1, o.id AS c2 FROM orders o';
      for (let i = 0; i < levels; i++) {
        const s = `s${i}`;
        q =
          `SELECT ${s}.c0 + ${s}.c1 + ${s}.c2 AS c0, ${s}.c1 + ${s}.c2 + ${s}.c0 AS c1, ${s}.c2 + ${s}.c0 + ${s}.c1 AS c2 ` +
          `FROM (${q} ${op} SELECT x${i}.id AS c0, x${i}.id AS c1, x${i}.id AS c2 FROM orders x${i}) ${s}`;
      }
      return `SELECT count(z.c0) AS n FROM (${q}) z`;
    };
    await rejects(chain(12), 'query too complex');
    await rejects(`WITH c AS (${chain(12).replace('SELECT count(z.c0) AS n FROM (', '').replace(/\) z$/, '')}) SELECT c.c0 FROM c`, 'query too complex');
    // A few levels, a plain UNION ALL of tables, and UNION (planned on its own, not flattened) stay allowed.
    await checkSql(chain(4), readOnly);
    await checkSql(chain(12, 'UNION'), readOnly);
    await checkSql('SELECT a.x, a.x + 1 AS y FROM (SELECT o.id AS x FROM orders o UNION ALL SELECT o2.user_id FROM orders o2 UNION ALL SELECT u.id FROM users u) a', readOnly);
  });
});

describe('sql guard: write variant', () => {
  test('allowed columns of allowed tables can be written', async () => {
    for (const sql of [
      "INSERT INTO orders (user_id, total_cents, status) VALUES ($1, 100, 'new') RETURNING id",
      "UPDATE orders SET status = 'paid', total_cents = DEFAULT WHERE id = $1",
      'DELETE FROM orders WHERE id = $1 RETURNING id, status',
      'INSERT INTO orders (user_id, status) SELECT id, $1 FROM users WHERE email = $2',
    ]) {
      assert.equal((await checkSql(sql, writable)).kind, sql.split(' ')[0]!.toLowerCase());
    }
  });

  test('sensitive and unlisted columns, DDL and unguarded writes stay refused', async () => {
    const cases: Array<[string, string]> = [
      ["UPDATE users SET password_hash = 'x' WHERE id = 1", 'password_hash is sensitive'],
      ["INSERT INTO orders (card_number) VALUES ('4111')", 'card_number is sensitive'],
      ['INSERT INTO orders VALUES (1)', 'must list its columns'],
      ["UPDATE orders SET status = 'x'", 'without WHERE'],
      ['DELETE FROM orders', 'without WHERE'],
      ['DELETE FROM orders WHERE card_number = $1', 'card_number'],
      ['UPDATE orders SET status = $1 WHERE id = 1 RETURNING *', '*'],
      ['DELETE FROM secrets WHERE id = 1', 'table secrets'],
      ['DROP TABLE orders', 'DROP is not allowed'],
      ["INSERT INTO orders (status) VALUES ('x') ON CONFLICT DO NOTHING", 'ON CONFLICT'],
      ['WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING id) SELECT id FROM d', 'writable CTEs'],
      // Clauses hung on the VALUES: their subqueries were never checked (a hidden column read through a cast error).
      ["INSERT INTO orders (user_id, total_cents, status) VALUES (1, 1, 'x') ORDER BY (SELECT CAST(password_hash AS int) FROM users LIMIT 1)", 'VALUES takes its rows only'],
      ["INSERT INTO orders (status) VALUES ('x') LIMIT (SELECT count(*) FROM secrets)", 'VALUES takes its rows only'],
      ["INSERT INTO orders (status) VALUES ('x') OFFSET (SELECT length(card_number) FROM orders LIMIT 1)", 'VALUES takes its rows only'],
      ["INSERT INTO orders (status) VALUES ('x') UNION VALUES ((SELECT password_hash FROM users LIMIT 1))", 'password_hash'],
    ];
    for (const [sql, fragment] of cases) {
      await assert.rejects(checkSql(sql, writable), (e: Error) => e instanceof GuardError && e.message.includes(fragment), sql);
    }
  });
});

describe('guard policy and SQLite translation', () => {
  test('a listed column the database lacks is refused (t.to_json would call to_json(t))', async () => {
    const p = buildPolicy(dbSettingsSchema.parse({ tables: { users: ['id', 'to_json'] } }), false);
    const verified = restrictToExisting(p, new Map([['users', new Map([['id', 'integer']])]]));
    await checkSql('SELECT u.to_json FROM users u', p);
    await assert.rejects(checkSql('SELECT u.to_json FROM users u', verified), /u\.to_json is not an allowed column/);
  });

  test('SQLite gets PostgreSQL\'s reading: nested comments cannot hide a column', async () => {
    // PostgreSQL nests block comments, SQLite does not: run verbatim, SQLite would also select password_hash.
    const sql = 'SELECT email /* /* */ , password_hash /* */ FROM users -- */ FROM users';
    const g = await checkSql(sql, readOnly);
    assert.equal((await toSqlite(g.sql, [])).sql.replace(/\s+/g, ' '), 'SELECT email FROM users');
  });

  test('SQLite: $n becomes ?n; PostgreSQL-only string syntax is refused', async () => {
    assert.deepEqual(await toSqlite("SELECT id FROM users WHERE email = $2 AND id = $1 AND name <> 'a''$1'", [7, true]), {
      sql: "SELECT id FROM users WHERE email = ?2 AND id = ?1 AND name <> 'a''$1'",
      bind: { '1': 7, '2': 1 },
    });
    for (const lit of ["E'\\' , password_hash , '''", "U&'x'", '$$x$$', "B'1'"]) {
      await assert.rejects(toSqlite(`SELECT ${lit} FROM users`, []), /PostgreSQL-only/, lit);
    }
    await assert.rejects(toSqlite('SELECT id FROM users WHERE id = $2', [1]), /uses \$2 but only 1 params/);
    // A subscript around a string's quotes: PostgreSQL sees a constant, SQLite the quoted
    // names '] and [x' around a live password_hash.
    await assert.rejects(toSqlite("SELECT u.id['], password_hash [x'] FROM users u", []), /subscripts are PostgreSQL-only/);
    // PostgreSQL's keywords, which SQLite would read as a (hidden) column named true, false or unknown.
    assert.equal((await toSqlite('SELECT u.id, true AS t, FALSE FROM users u WHERE u.id IS NOT TRUE', [])).sql, 'SELECT u.id, 1 AS t, 0 FROM users u WHERE u.id IS NOT 1');
    await assert.rejects(toSqlite('SELECT u.id FROM users u WHERE CAST($1 AS text) IS UNKNOWN', ['guess']), /IS \[NOT\] UNKNOWN is PostgreSQL-only/);
    assert.equal((await toSqlite('SELECT u."true" FROM users u', [])).sql, 'SELECT u."true" FROM users u', 'a quoted name stays a name');
    assert.equal((await toSqlite('SELECT u.id AS true, u.unknown FROM users u', [])).sql, 'SELECT u.id AS true, u.unknown FROM users u', 'after AS or a dot they are names');
    // PostgreSQL's reserved words SQLite does not know: to SQLite, columns of those names.
    for (const sql of [
      "SELECT u.id, TRIM(LEADING || '') AS x FROM users u",
      "SELECT u.id, TRIM(trailing || '') AS x FROM users u",
      "SELECT u.id, TRIM(BOTH || '') AS x FROM users u",
      "SELECT u.id FROM users u WHERE 'x' BETWEEN SYMMETRIC || '' AND 'z'",
      "SELECT u.id FROM users u WHERE 'x' BETWEEN ASYMMETRIC || '' AND 'z'",
      "SELECT u.id, concat(VARIADIC || '') AS x FROM users u",
      "SELECT u.id FROM users u WHERE u.email ILIKE 'a%'",
    ]) {
      await checkSql(sql, readOnly);
      await assert.rejects(toSqlite(sql, []), /PostgreSQL syntax SQLite does not have \(it would read a column named (leading|trailing|both|symmetric|asymmetric|variadic|ilike)\)/, sql);
    }
    // Keywords SQLite shares, and reserved words as names (after AS or a dot), stay.
    assert.equal(
      (await toSqlite("SELECT u.leading AS both, CAST(u.id AS text) FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.email LIKE 'a%' AND o.id IS NOT NULL ORDER BY 1 LIMIT 2", [])).sql,
      "SELECT u.leading AS both, CAST(u.id AS text) FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.email LIKE 'a%' AND o.id IS NOT NULL ORDER BY 1 LIMIT 2",
    );
  });

  test('multibyte text does not shift what runs: offsets are bytes (the statement checked is the statement cut)', async () => {
    // Cut as a string, 36 two-byte characters before an empty statement moved the cut 36
    // characters in: the guard checked the SELECT with its string, the database got the string's text.
    const sql = `/*${'é'.repeat(36)}*/;SELECT id FROM users WHERE email = 'SELECT id, password_hash FROM users --'`;
    const g = await checkSql(sql, readOnly);
    assert.equal(g.sql, "SELECT id FROM users WHERE email = 'SELECT id, password_hash FROM users --'");
    // The SQLite translation cuts bytes too: after an é, a refused literal was let through.
    await assert.rejects(toSqlite("SELECT'é',E'\\' ,password_hash FROM users,(SELECT 1 AS e) s --'", []), /PostgreSQL-only/);
    assert.equal((await toSqlite("SELECT 'é' AS a, email FROM users", [])).sql, "SELECT 'é' AS a, email FROM users");
  });

  test('what SQLite reads otherwise than PostgreSQL is refused: USER and friends, typed literals, names differing only by case, derived names', async () => {
    // SQLite reads these as the columns user, current_role, text ... of the table.
    await rejects('SELECT id, user AS u FROM users', 'CURRENT_TIMESTAMP are allowed');
    await rejects('SELECT id FROM users WHERE current_role = $1', 'CURRENT_TIMESTAMP are allowed');
    await rejects('SELECT id, localtimestamp FROM users', 'CURRENT_TIMESTAMP are allowed');
    await rejects("SELECT id, text 'x' FROM users", "CAST('...' AS text)");
    await rejects("SELECT id FROM orders WHERE created_at > date '2026-01-01'", "CAST('...' AS date)");
    await checkSql("SELECT id, current_timestamp, CAST('2026-01-01' AS date), '1'::int FROM orders WHERE created_at < current_date", readOnly);
    // "U" and u: two relations to PostgreSQL, one to SQLite.
    await rejects('SELECT u2.id, (SELECT "U".email FROM users u WHERE u.id = u2.id) AS pw FROM users u2, (SELECT 1 AS email) "U"', 'compared without case');
    // PostgreSQL names CAST(x.a AS text) a, SQLite by its text: an outer password_hash
    // would go past the subquery to the table beside it.
    await rejects('SELECT password_hash FROM (SELECT CAST(x.password_hash AS text) FROM (SELECT 1 AS password_hash) x) s, users', 'password_hash is sensitive');
    await rejects('SELECT n FROM (SELECT count(id) FROM orders) s', 'not an allowed column');
    await checkSql('SELECT n FROM (SELECT count(id) AS n FROM orders) s', readOnly);
  });
});

describe('db settings', () => {
  test('{} parses to safe defaults', () => {
    const s = dbSettingsSchema.parse(undefined);
    assert.equal(s.driver, 'postgres');
    assert.equal(s.urlEnv, 'BUGBOT_DB_READONLY_URL');
    assert.deepEqual(s.tables, {});
    assert.equal(s.rowLimit, 200);
    assert.equal(s.statementTimeoutMs, 5000);
  });

  test('a column both allowed and sensitive, a forbidden function and an unknown key are config errors', () => {
    const r = dbSettingsSchema.safeParse({ tables: { users: ['id', 'password_hash'] }, sensitive: { users: ['password_hash'] }, functions: ['pg_sleep'] });
    assert.ok(!r.success);
    const text = r.error.issues.map((i) => i.message).join('\n');
    assert.match(text, /users\.password_hash is listed in both/);
    assert.match(text, /pg_sleep can never be allowed/);
    assert.ok(!dbSettingsSchema.safeParse({ allowWrites: true }).success, 'settings cannot switch writes on');
    // Functions that run SQL given as text (ts_stat('SELECT password_hash FROM users')) or change the server's state.
    for (const fn of ['ts_stat', 'ts_rewrite', 'pg_logical_slot_peek_changes', 'pg_promote', 'pg_stat_get_activity', 'pg_try_advisory_lock', 'pg_signal_backend', 'pg_switch_wal']) {
      assert.ok(!dbSettingsSchema.safeParse({ functions: [fn] }).success, `${fn} can be listed`);
    }
    assert.ok(dbSettingsSchema.safeParse({ functions: ['to_tsvector', 'initcap'] }).success, 'harmless ones still can');
  });
});
