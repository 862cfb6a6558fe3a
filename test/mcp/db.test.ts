// The db MCP server end to end: a real MCP client spawns `mcp/db/main.ts` over stdio
// against a real PostgreSQL (test/support/postgres.ts), and in-process against a real
// SQLite file. Sensitive columns hold CANARY- values; no response may ever contain one.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import Database from 'better-sqlite3';
import { dbSettingsSchema, type DbSettings } from '../../lib/mcp/db-settings.ts';
import { CutCell } from '../../mcp/db/backend.ts';
import { createDbServer } from '../../mcp/db/server.ts';
import { SqliteBackend } from '../../mcp/db/sqlite.ts';
import { repoRoot, tempDir } from '../support/helpers.ts';
import { startPostgres, type TestPostgres } from '../support/postgres.ts';

const SCHEMA = `
  CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, name text, plan text, created_at timestamptz NOT NULL DEFAULT now(),
                      password_hash text NOT NULL, api_token text);
  CREATE TABLE orders (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users, total_cents int NOT NULL, status text NOT NULL,
                       card_number text, created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE events (id serial PRIMARY KEY, user_id int, kind text NOT NULL);
  CREATE TABLE secrets (id serial PRIMARY KEY, value text NOT NULL);
  INSERT INTO users (email, name, plan, password_hash, api_token)
    SELECT 'user' || i || '@example.com', 'User ' || i, CASE WHEN i % 3 = 0 THEN 'enterprise' ELSE 'free' END, 'CANARY-PW-' || i, 'CANARY-TOKEN-' || i
    FROM generate_series(1, 20) i;
  INSERT INTO orders (user_id, total_cents, status, card_number)
    SELECT 1 + i % 20, i * 100, CASE WHEN i % 4 = 0 THEN 'refunded' ELSE 'paid' END, 'CANARY-CARD-' || i FROM generate_series(1, 60) i;
  INSERT INTO events (user_id, kind) SELECT 1 + i % 20, 'click' FROM generate_series(1, 3000) i;
  INSERT INTO secrets (value) VALUES ('CANARY-SECRET-ROW');`;

const SETTINGS = {
  urlEnv: 'TEST_DB_URL',
  writeUrlEnv: 'TEST_DB_WRITE_URL',
  tables: {
    // to_json is not a column of users: listing it must not turn u.to_json into to_json(u).
    users: ['id', 'email', 'name', 'plan', 'created_at', 'to_json'],
    orders: ['id', 'user_id', 'total_cents', 'status', 'created_at'],
    events: ['id', 'user_id', 'kind'],
  },
  sensitive: { users: ['password_hash', 'api_token'], orders: ['card_number'] },
  statementTimeoutMs: 1000,
  rowLimit: 50,
  maxCellBytes: 200,
};

/** [sql, ...fragments the refusal must contain]: the offending part, and for columns what is allowed. */
const ATTACKS: Array<[string, ...string[]]> = [
  ['COMMIT; DROP TABLE users', 'one statement', 'DROP'],
  ['SELECT id FROM users; DELETE FROM orders', 'one statement', 'DELETE'],
  ['SELECT id FROM users /* */ ; TRUNCATE orders', 'one statement', 'TRUNCATE'],
  ['-- just a comment\nDROP TABLE users', 'DROP is not allowed'],
  ['/* harmless */ DELETE FROM orders WHERE true', 'DELETE is not allowed'],
  ['SELECT * FROM users', '*', 'users(id, email, name, plan, created_at)'],
  ['SELECT u.* FROM users u', '*'],
  ['SELECT "password_hash" FROM users', 'password_hash', 'sensitive', 'Allowed columns: users(id, email, name, plan, created_at)'],
  ['SELECT U&"api\\005Ftoken" FROM users', 'api_token', 'sensitive'],
  ['SELECT id FROM users WHERE password_hash LIKE $1', 'password_hash', 'Allowed columns'],
  ['SELECT id FROM users ORDER BY api_token', 'api_token'],
  ['SELECT (SELECT max(card_number) FROM orders) AS c FROM users', 'card_number', 'orders(id, user_id'],
  ['SELECT count(*) FILTER (WHERE card_number IS NOT NULL) FROM orders', 'card_number'],
  ['SELECT u FROM users u', 'whole row'],
  ['SELECT u.to_json FROM users u', 'u.to_json', 'users(id, email, name, plan, created_at)'],
  ['SELECT email FROM users AS u(id, email)', 'column alias lists'],
  ['SELECT o.id FROM orders o JOIN users u USING (api_token)', 'USING (api_token)'],
  ['SELECT id FROM users NATURAL JOIN orders', 'NATURAL JOIN'],
  ['SELECT id FROM users u, LATERAL (SELECT u.password_hash) x', 'LATERAL'],
  ['SELECT value FROM secrets', 'table secrets is not allowed', 'Allowed tables: users, orders, events'],
  ['SELECT usename, passwd FROM pg_shadow', 'table pg_shadow'],
  ['SELECT table_name, column_name FROM information_schema.columns', 'information_schema.columns'],
  ['WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d', 'writable CTEs'],
  ['WITH u AS (UPDATE users SET email = $1 RETURNING id) SELECT id FROM u', 'writable CTEs'],
  ['WITH x AS (SELECT password_hash AS h FROM users) SELECT h FROM x', 'password_hash'],
  ['SELECT id FROM users FOR UPDATE', 'FOR UPDATE'],
  ['SELECT id INTO stolen FROM users', 'INTO'],
  ['SELECT pg_sleep(30)', 'pg_sleep()', 'Allowed functions:'],
  ["SELECT set_config('statement_timeout', '0', false)", 'set_config()'],
  ["SELECT nextval('orders_id_seq')", 'nextval()'],
  ["SELECT dblink_exec('dbname=bugbot', 'DROP TABLE users')", 'dblink_exec()'],
  ["SELECT t.id FROM dblink('dbname=bugbot', 'SELECT password_hash FROM users') AS t(id text)", 'functions in FROM'],
  ["SELECT query_to_xml('select * from users', true, true, '')", 'query_to_xml()'],
  ["SELECT pg_read_file('/etc/passwd')", 'pg_read_file()'],
  ['SELECT public.lower(email) FROM users', 'public.lower'],
  ["SELECT 'users'::regclass", 'regclass'],
  ['COPY users TO STDOUT', 'COPY'],
  ["COPY (SELECT 1) TO PROGRAM 'touch /tmp/bugbot-pwned'", 'COPY'],
  ['DO $$ BEGIN DELETE FROM orders; END $$', 'DO is not allowed'],
  ['SET statement_timeout = 0', 'SET is not allowed'],
  ['BEGIN READ WRITE', 'transaction control'],
  ['EXPLAIN ANALYZE DELETE FROM orders', 'EXPLAIN'],
  ['CREATE TABLE stolen AS SELECT id FROM users', 'CREATE TABLE AS'],
  ['GRANT ALL ON users TO PUBLIC', 'GRANT'],
  ['ALTER ROLE bugbot_ro SUPERUSER', 'ALTER ROLE'],
  ['SELECT [password_hash] FROM users', 'syntax error'],
];

/** Every response text seen, for the canary check at the end. */
const seen: string[] = [];

interface Reply {
  text: string;
  isError: boolean;
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<Reply> {
  const r = await client.callTool({ name, arguments: args });
  const text = (r.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n');
  seen.push(text);
  return { text, isError: r.isError === true };
}

function rows(reply: Reply): { columns: string[]; rows: unknown[][]; truncated: boolean } {
  assert.ok(!reply.isError, reply.text);
  return JSON.parse(reply.text.slice(reply.text.indexOf('\n') + 1)) as { columns: string[]; rows: unknown[][]; truncated: boolean };
}

const clients: Client[] = [];

async function spawnServer(settingsPath: string, env: Record<string, string>, flags: string[] = []): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', join(repoRoot, 'mcp/db/main.ts'), '--settings', settingsPath, ...flags],
    cwd: repoRoot,
    env: { ...getDefaultEnvironment(), ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'db-test', version: '0.0.0' });
  await client.connect(transport).catch((err: Error) => assert.fail(`db server did not start: ${err.message}\n${stderr}`));
  clients.push(client);
  return client;
}

/** A fingerprint of every table, the role list and the schema, taken as superuser. */
async function dbState(pg: TestPostgres): Promise<string> {
  const parts: string[] = [];
  for (const t of ['users', 'orders', 'events', 'secrets']) {
    const r = await pg.admin(`SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t.id)) AS h FROM ${t} t`);
    parts.push(`${t}:${r.rows[0].n}:${r.rows[0].h}`);
  }
  const roles = await pg.admin('SELECT string_agg(rolname, \',\' ORDER BY rolname) AS r FROM pg_roles');
  const tables = await pg.admin("SELECT string_agg(tablename, ',' ORDER BY tablename) AS t FROM pg_tables WHERE schemaname = 'public'");
  return `${parts.join(' ')} roles=${roles.rows[0].r} tables=${tables.rows[0].t}`;
}

describe('db MCP server on PostgreSQL', () => {
  let pg: TestPostgres;
  let settingsPath: string;
  let ro: Client;
  let before0: string;
  let dir: string;

  before(async () => {
    pg = await startPostgres(undefined, { schemaSql: SCHEMA });
    dir = mkdtempSync(join(tmpdir(), 'bugbot-db-'));
    settingsPath = join(dir, 'db.json');
    writeFileSync(settingsPath, JSON.stringify(SETTINGS));
    before0 = await dbState(pg);
    ro = await spawnServer(settingsPath, { TEST_DB_URL: pg.readonlyUrl, TEST_DB_WRITE_URL: pg.adminUrl });
  });
  after(async () => {
    for (const c of clients.splice(0)) await c.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('lists db_query (read-only) and db_describe', async () => {
    const { tools } = await ro.listTools();
    const q = tools.find((t) => t.name === 'db_query');
    assert.equal(q?.annotations?.readOnlyHint, true);
    assert.ok(tools.some((t) => t.name === 'db_describe'));
  });

  test('db_describe lists only the allowed columns, with types', async () => {
    const r = await call(ro, 'db_describe');
    assert.ok(!r.isError, r.text);
    assert.match(r.text, /users: id integer, email text, name text, plan text, created_at timestamp with time zone, to_json \(not in the database\)/);
    assert.match(r.text, /at most 50 rows per query, 1000 ms/);
    for (const hidden of ['password_hash', 'api_token', 'card_number', 'secrets']) assert.ok(!r.text.includes(hidden), hidden);
  });

  test('allowlisted queries return rows', async () => {
    let r = rows(await call(ro, 'db_query', { sql: 'SELECT id, email FROM users WHERE id = $1', params: [3] }));
    assert.deepEqual(r.rows, [[3, 'user3@example.com']]);
    r = rows(await call(ro, 'db_query', {
      sql: `SELECT u.plan, count(*) AS n, sum(o.total_cents) AS total FROM users u JOIN orders o ON o.user_id = u.id
            WHERE o.status <> $1 GROUP BY u.plan ORDER BY n DESC`,
      params: ['refunded'],
    }));
    assert.deepEqual(r.columns, ['plan', 'n', 'total']);
    assert.equal(r.rows.length, 2);
    r = rows(await call(ro, 'db_query', {
      sql: 'WITH big AS (SELECT user_id FROM orders WHERE total_cents >= 5000) SELECT DISTINCT u.email FROM users u WHERE u.id IN (SELECT user_id FROM big) ORDER BY 1',
    }));
    assert.ok(r.rows.length > 0 && r.rows.length <= 20);
    // Nested comments: PostgreSQL reads this as SELECT email FROM users.
    r = rows(await call(ro, 'db_query', { sql: 'SELECT email /* /* */ , password_hash /* */ FROM users -- */ FROM users LIMIT 1' }));
    assert.deepEqual(r.columns, ['email']);
  });

  test('long cells are cut at maxCellBytes', async () => {
    const cell = rows(await call(ro, 'db_query', { sql: "SELECT string_agg(email, ',' ORDER BY id) FROM users" })).rows[0]?.[0];
    assert.match(String(cell), /^user1@example\.com,.*… \[cut: \d+ bytes, limit 200\]$/);
  });

  test('the row cap holds and says so', async () => {
    const reply = await call(ro, 'db_query', { sql: 'SELECT id FROM events ORDER BY id' });
    const r = rows(reply);
    assert.equal(r.rows.length, 50);
    assert.equal(r.truncated, true);
    assert.match(reply.text, /Row limit reached: showing the first 50 rows/);
    assert.deepEqual(r.rows.at(-1), [50]);
  });

  test('the statement timeout holds and the server keeps working', async () => {
    const t0 = Date.now();
    const r = await call(ro, 'db_query', { sql: 'SELECT count(*) FROM events a, events b, events c' });
    assert.ok(r.isError, r.text);
    assert.match(r.text, /1000 ms statement timeout/);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    assert.deepEqual(rows(await call(ro, 'db_query', { sql: 'SELECT count(*) FROM users' })).rows, [['20']]);
  });

  test('one deadline for the whole call: a query planned again to cut its long columns gets what is left of the timeout', async () => {
    // A constant folded at plan time (nested replace() on a literal): each DECLARE plans it.
    const folded = (chars: number) => {
      let e = `'${'x'.repeat(chars)}'`;
      for (let i = 0; i < 5; i++) e = `replace(${e}, 'x', 'xxxxxxxxxx')`;
      return e;
    };
    const planMs = async (chars: number) => {
      const r = await pg.admin(`EXPLAIN (SUMMARY ON, FORMAT JSON) SELECT length(${folded(chars)}) AS n`);
      return (r.rows[0]['QUERY PLAN'] as Array<{ 'Planning Time': number }>)[0]!['Planning Time'];
    };
    // About 250 ms of planning on this machine; the timeout 1.5 times the fastest of three
    // plans: two plans do not fit even when the machine is busy and measured slow (a plan
    // slower than the timeout alone fails the call too, as it should).
    const chars = Math.max(20, Math.min(2000, Math.round((100 * 250) / Math.max(1, await planMs(100)))));
    const timeout = Math.max(100, Math.ceil(1.5 * Math.min(await planMs(chars), await planMs(chars), await planMs(chars))));
    const path = join(dir, 'deadline.json');
    writeFileSync(path, JSON.stringify({ ...SETTINGS, statementTimeoutMs: timeout }));
    const client = await spawnServer(path, { TEST_DB_URL: pg.readonlyUrl });
    // u.email is text: the cursor is declared a second time, over the wrapper.
    const t0 = Date.now();
    const r = await call(client, 'db_query', { sql: `SELECT u.id, length(${folded(chars)}) AS n, u.email FROM users u WHERE u.id = 1` });
    const took = Date.now() - t0;
    assert.ok(r.isError, `planned twice in ${took} ms under a ${timeout} ms timeout: ${r.text.slice(0, 200)}`);
    assert.match(r.text, new RegExp(`query cancelled: it ran past the ${timeout} ms statement timeout`));
    assert.ok(took < timeout + 1000, `took ${took} ms under a ${timeout} ms timeout`);
    assert.deepEqual(rows(await call(client, 'db_query', { sql: 'SELECT u.id, u.email FROM users u WHERE u.id = 1' })).rows, [[1, 'user1@example.com']]);
  });

  test(`${ATTACKS.length} attack strings are refused by the guard, as the read-only role and as superuser`, async () => {
    assert.ok(ATTACKS.length >= 20);
    // As superuser only the guard and the READ ONLY transaction stand in the way.
    const su = await spawnServer(settingsPath, { TEST_DB_URL: pg.adminUrl });
    for (const client of [ro, su]) {
      for (const [sql, ...fragments] of ATTACKS) {
        const r = await call(client, 'db_query', { sql, params: sql.includes('$1') ? ['x'] : undefined });
        assert.ok(r.isError, `accepted: ${sql}\n${r.text}`);
        assert.match(r.text, /^rejected: /, sql);
        for (const f of fragments) assert.ok(r.text.includes(f), `${sql}\nexpected "${f}" in: ${r.text}`);
      }
    }
    assert.equal(await dbState(pg), before0, 'data, roles or tables changed');
  });

  test('writes need --allow-writes; settings cannot enable them', async () => {
    const insert = { sql: 'INSERT INTO orders (user_id, total_cents, status) VALUES ($1, $2, $3) RETURNING id, status', params: [1, 999, 'new'] };
    const refused = await call(ro, 'db_query', insert);
    assert.ok(refused.isError && /INSERT is not allowed: only SELECT is \(this server is read-only\)/.test(refused.text), refused.text);

    const rw = await spawnServer(settingsPath, { TEST_DB_WRITE_URL: pg.adminUrl }, ['--allow-writes']);
    const q = (await rw.listTools()).tools.find((t) => t.name === 'db_query');
    assert.equal(q?.annotations?.readOnlyHint, false);
    const ok = await call(rw, 'db_query', insert);
    assert.match(ok.text, /^INSERT: 1 row\(s\) changed/);
    assert.equal((await pg.admin("SELECT count(*)::int AS n FROM orders WHERE status = 'new'")).rows[0].n, 1);
    for (const sql of ["UPDATE users SET password_hash = 'x' WHERE id = 1", 'DROP TABLE orders', 'DELETE FROM orders']) {
      const r = await call(rw, 'db_query', { sql });
      assert.ok(r.isError, `accepted with --allow-writes: ${sql}`);
    }
    await pg.admin("DELETE FROM orders WHERE status = 'new'");
    assert.equal(await dbState(pg), before0);

    const badPath = join(dir, 'bad.json');
    writeFileSync(badPath, JSON.stringify({ ...SETTINGS, allowWrites: true }));
    await assert.rejects(spawnServer(badPath, { TEST_DB_URL: pg.readonlyUrl }), /allowWrites|did not start/);
  });

  test('no response ever contained a sensitive value', () => {
    assert.ok(seen.length > 50);
    for (const text of seen) assert.ok(!/CANARY-/.test(text), `leaked: ${text}`);
  });
});

/** A read-only db server on a SQLite file, and an MCP client connected to it in memory; both closed after the test. */
async function sqliteClient(t: TestContext, settings: DbSettings, file: string): Promise<Client> {
  const { server, close } = createDbServer({ settings, allowWrites: false, sqlitePath: file });
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'db-test', version: '0.0.0' });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  t.after(async () => {
    await client.close();
    await close();
  });
  return client;
}

describe('db MCP server on SQLite', () => {
  test('a real SQLite file: guarded, read-only, row cap and timeout enforced', async (t) => {
    const file = join(tempDir(t, 'bugbot-sqlite-'), 'app.db');
    const db = new Database(file);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, password_hash TEXT); CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT);');
    for (let i = 1; i <= 10; i++) db.prepare('INSERT INTO users VALUES (?, ?, ?)').run(i, `u${i}@example.com`, `CANARY-PW-${i}`);
    db.prepare("INSERT INTO events (kind) SELECT 'click' FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT i FROM n)").run();
    db.close();
    const hash = () => createHash('sha256').update(readFileSync(file)).digest('hex');
    const before = hash();

    const settings = dbSettingsSchema.parse({
      driver: 'sqlite',
      sqlitePath: file,
      tables: { users: ['id', 'email'], events: ['id', 'kind'] },
      sensitive: { users: ['password_hash'] },
      rowLimit: 25,
      statementTimeoutMs: 500,
    });
    const client = await sqliteClient(t, settings, file);

    assert.deepEqual(rows(await call(client, 'db_query', { sql: 'SELECT id, email FROM users WHERE id = $1', params: [2] })).rows, [[2, 'u2@example.com']]);
    assert.deepEqual(rows(await call(client, 'db_query', { sql: 'SELECT count(*) FROM users WHERE id > $2 AND email LIKE $1', params: ['u%', 7] })).rows, [[3]]);
    const describe = await call(client, 'db_describe');
    assert.match(describe.text, /users: id INTEGER, email TEXT/);

    for (const [sql, fragment] of [
      ['SELECT password_hash FROM users', 'Allowed columns: users(id, email)'],
      ['SELECT [password_hash] FROM users', 'parsed as PostgreSQL'],
      ['DELETE FROM users WHERE id = 1', 'read-only'],
      ['SELECT * FROM users', '*'],
    ]) {
      const r = await call(client, 'db_query', { sql });
      assert.ok(r.isError && r.text.includes(fragment!), `${sql}: ${r.text}`);
    }

    // PostgreSQL nests block comments and reads `SELECT email FROM users`; SQLite, given the
    // text verbatim, would read `SELECT email, password_hash FROM users`.
    const nested = rows(await call(client, 'db_query', { sql: 'SELECT email /* /* */ , password_hash /* */ FROM users -- */ FROM users' }));
    assert.deepEqual(nested.columns, ['email']);

    const capped = await call(client, 'db_query', { sql: 'SELECT id FROM events ORDER BY id' });
    assert.equal(rows(capped).rows.length, 25);
    assert.match(capped.text, /Row limit reached/);

    const t0 = Date.now();
    const slow = await call(client, 'db_query', { sql: 'SELECT count(*) FROM events a, events b, events c' });
    assert.ok(slow.isError && /500 ms statement timeout/.test(slow.text), slow.text);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    assert.deepEqual(rows(await call(client, 'db_query', { sql: 'SELECT count(*) FROM events' })).rows, [[2000]]);

    assert.equal(hash(), before, 'the SQLite file changed');
    for (const text of seen) assert.ok(!text.includes('CANARY-'), `leaked: ${text}`);
  });

  test("PostgreSQL's reserved words that SQLite reads as column names are refused: a hidden column named leading stays hidden", async (t) => {
    const file = join(tempDir(t, 'bugbot-sqlite-'), 'app.db');
    const db = new Database(file);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, leading TEXT, symmetric TEXT, variadic TEXT)');
    db.prepare("INSERT INTO users VALUES (1, 'u1@example.com', 'CANARY-LEADING', 'CANARY-SYM-2', 'CANARY-VARIADIC')").run();
    db.close();
    const settings = dbSettingsSchema.parse({
      driver: 'sqlite',
      sqlitePath: file,
      tables: { users: ['id', 'email'] },
      sensitive: { users: ['leading', 'symmetric', 'variadic'] },
    });
    const client = await sqliteClient(t, settings, file);
    for (const sql of [
      "SELECT u.id, TRIM(LEADING || '') AS x FROM users u",
      "SELECT u.id, concat(VARIADIC || '') AS x FROM users u",
      // A yes/no answer to a guess at the hidden value.
      "SELECT u.id FROM users u WHERE 'CANARY-SYM-2' BETWEEN SYMMETRIC || '' AND 'z'",
    ]) {
      const r = await call(client, 'db_query', { sql });
      assert.ok(r.isError, `accepted: ${sql}\n${r.text}`);
      assert.match(r.text, /PostgreSQL syntax SQLite does not have/, sql);
    }
    assert.deepEqual(rows(await call(client, 'db_query', { sql: 'SELECT u.id, u.email FROM users u' })).rows, [[1, 'u1@example.com']]);
    for (const text of seen) assert.ok(!text.includes('CANARY-'), `leaked: ${text}`);
  });

  test('names longer than 63 bytes are refused: PostgreSQL cuts them to 63, SQLite reads them whole (and finds the hidden column of that name)', async (t) => {
    const file = join(tempDir(t, 'bugbot-sqlite-'), 'app.db');
    // 72 bytes: not listed (settings names are at most 63 characters), so hidden.
    const hidden = 'legacy_password_hash_kept_for_the_old_login_flow_until_all_users_migrate';
    const cut = hidden.slice(0, 63);
    const db = new Database(file);
    db.exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, ${hidden} TEXT); CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)`);
    db.prepare("INSERT INTO users VALUES (1, 'u1@example.com', 'CANARY-LEGACY-1')").run();
    db.prepare("INSERT INTO orders VALUES (1, 'paid')").run();
    db.close();
    const settings = dbSettingsSchema.parse({ driver: 'sqlite', sqlitePath: file, tables: { users: ['id', 'email'], orders: ['id', 'status'] } });
    const client = await sqliteClient(t, settings, file);
    for (const sql of [
      // To the guard both names are `cut`, an output column of s; SQLite finds no such column
      // in s and reads the correlated u.<hidden> instead.
      `SELECT u.id, (SELECT ${hidden} FROM (SELECT o.status AS ${cut}x FROM orders o) s LIMIT 1) AS leak FROM users u`,
      // ORDER BY a select-list alias to the guard; the hidden column to SQLite.
      `SELECT u.email AS ${cut}x FROM users u ORDER BY ${hidden}`,
      `SELECT u.id, (SELECT "${hidden}" FROM (SELECT o.status AS "${cut}x" FROM orders o) s LIMIT 1) AS leak FROM users u`,
    ]) {
      const r = await call(client, 'db_query', { sql });
      assert.ok(r.isError, `accepted: ${sql}\n${r.text}`);
      assert.match(r.text, /longer than 63 bytes/, sql);
    }
    // A name of 63 bytes is fine.
    assert.deepEqual(rows(await call(client, 'db_query', { sql: `SELECT u.email AS ${cut} FROM users u ORDER BY ${cut}` })).rows, [['u1@example.com']]);
    for (const text of seen) assert.ok(!text.includes('CANARY-'), `leaked: ${text}`);
  });

  test('a WITH query name SQLite reads as another relation than PostgreSQL does is refused (by case, or a later query of the list)', async (t) => {
    const file = join(tempDir(t, 'bugbot-sqlite-'), 'app.db');
    const db = new Database(file);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, password_hash TEXT); CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)');
    db.prepare("INSERT INTO users VALUES (1, 'u1@example.com', 'CANARY-PW-1')").run();
    db.prepare("INSERT INTO orders VALUES (1, 'paid')").run();
    db.close();
    const settings = dbSettingsSchema.parse({
      driver: 'sqlite',
      sqlitePath: file,
      tables: { users: ['id', 'email'], orders: ['id', 'status'] },
      sensitive: { users: ['password_hash'] },
    });
    const client = await sqliteClient(t, settings, file);
    // To the guard (and PostgreSQL) `FROM x` reads the outer x, whose column password_hash is
    // o.id; SQLite reads the inner WITH query, finds no such column there and takes the
    // correlated u.password_hash.
    for (const [sql, fragment] of [
      [
        'WITH x AS (SELECT o.id AS password_hash FROM orders o) SELECT u.id, ' +
          '(WITH "X" AS (SELECT o2.id AS foo FROM orders o2) SELECT password_hash FROM x LIMIT 1) AS leak FROM users u',
        'compares names without case',
      ],
      [
        'WITH x AS (SELECT o.id AS password_hash FROM orders o) SELECT u.id, ' +
          '(WITH a AS (SELECT password_hash FROM x), x AS (SELECT o2.id AS foo FROM orders o2) SELECT a.password_hash FROM a LIMIT 1) AS leak FROM users u',
        'may read later ones of its list',
      ],
      ['WITH x AS (SELECT o.id FROM orders o), "X" AS (SELECT o2.status FROM orders o2) SELECT x.id FROM x', 'another query of this WITH list'],
    ] as const) {
      const r = await call(client, 'db_query', { sql });
      assert.ok(r.isError, `accepted: ${sql}\n${r.text}`);
      assert.ok(r.text.includes(fragment), `${sql}: ${r.text}`);
    }
    // WITH queries read in order, under their own names, still work.
    const ok = 'WITH a AS (SELECT o.id FROM orders o), b AS (SELECT a.id FROM a) SELECT u.email, (SELECT b.id FROM b LIMIT 1) AS n FROM users u';
    assert.deepEqual(rows(await call(client, 'db_query', { sql: ok })).rows, [['u1@example.com', 1]]);
    for (const text of seen) assert.ok(!text.includes('CANARY-'), `leaked: ${text}`);
  });

  test('long cells are cut by the SQLite worker, not after the whole value crossed into the server', async (t) => {
    const file = join(tempDir(t, 'bugbot-sqlite-'), 'app.db');
    const db = new Database(file);
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, raw BLOB)');
    db.prepare('INSERT INTO notes VALUES (?, ?, ?)').run(1, 'é'.repeat(60_000), Buffer.alloc(50_000, 0xab));
    db.prepare('INSERT INTO notes VALUES (?, ?, ?)').run(2, 'short', Buffer.from([0, 255]));
    db.close();
    const backend = new SqliteBackend(file, false, { rowLimit: 10, statementTimeoutMs: 5000, maxCellBytes: 100 }, () => {});
    t.after(() => backend.close());
    const r = await backend.run({ kind: 'select', sql: 'SELECT n.body, n.raw FROM notes n ORDER BY n.id' }, []);
    const [body, raw] = r.rows[0]!;
    assert.ok(body instanceof CutCell, `the worker sent ${String(body).length} characters whole`);
    assert.equal(body.bytes, 120_000);
    assert.ok(body.head.length <= 100 && body.head.startsWith('éé'), body.head);
    assert.ok(raw instanceof CutCell);
    assert.equal(raw.bytes, 2 + 100_000);
    assert.match(raw.head, /^\\x(ab){50}$/);
    assert.deepEqual(r.rows[1], ['short', Buffer.from([0, 255])]);
    // The model reads them as before: cut, with the whole value's size.
    const settings = dbSettingsSchema.parse({ driver: 'sqlite', sqlitePath: file, tables: { notes: ['id', 'body', 'raw'] }, maxCellBytes: 100 });
    const client = await sqliteClient(t, settings, file);
    const shown = rows(await call(client, 'db_query', { sql: 'SELECT n.body, n.raw FROM notes n WHERE n.id = 1' })).rows[0]!;
    assert.match(String(shown[0]), /^(é){50}… \[cut: 120000 bytes, limit 100\]$/);
    assert.match(String(shown[1]), /^\\x(ab){49}… \[cut: 100002 bytes, limit 100\]$/);
  });

  test('a reply carries at most 256 KB of cells: whole rows while they fit, and says it cut them', async (t) => {
    const file = join(tempDir(t, 'bugbot-sqlite-'), 'app.db');
    const db = new Database(file);
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
    for (let i = 1; i <= 200; i++) db.prepare('INSERT INTO notes VALUES (?, ?)').run(i, `${i}:`.padEnd(4000, 'x'));
    db.close();
    const settings = dbSettingsSchema.parse({ driver: 'sqlite', sqlitePath: file, tables: { notes: ['id', 'body'] }, rowLimit: 200 });
    const client = await sqliteClient(t, settings, file);
    const many = await call(client, 'db_query', { sql: 'SELECT n.id, n.body FROM notes n ORDER BY n.id' });
    const r = rows(many);
    assert.ok(r.rows.length > 10 && r.rows.length < 200, `${r.rows.length} rows`);
    assert.ok(Buffer.byteLength(many.text) < 300 * 1024, `${Buffer.byteLength(many.text)} bytes`);
    assert.equal(r.truncated, true);
    // The worker stopped reading at the row that passed the reply, as PostgreSQL's backend does.
    const read = Number(/^Reply size limit reached: showing the first (\d+) of at least (\d+) rows/.exec(many.text)?.[2]);
    assert.match(many.text, new RegExp(`^Reply size limit reached: showing the first ${r.rows.length} of`));
    assert.ok(read > r.rows.length && read < 200, `${read} rows read`);
    assert.deepEqual(r.rows.map((x) => x[0]), Array.from({ length: r.rows.length }, (_, i) => i + 1), 'whole rows, in order');
    // One row wider than the limit: it comes, its cells cut to share the room.
    const wide = await call(client, 'db_query', { sql: `SELECT ${Array(200).fill('n.body').join(', ')} FROM notes n WHERE n.id = 1` });
    assert.ok(Buffer.byteLength(wide.text) < 300 * 1024, `${Buffer.byteLength(wide.text)} bytes`);
    assert.equal(rows(wide).rows.length, 1);
    assert.match(String(rows(wide).rows[0]![0]), /^1:x+… \[cut: 4000 bytes/);
  });

  test('the worker reads rows only while the reply can hold them: a few hundred KB cross the pipe, not rowLimit rows', async (t) => {
    const file = join(tempDir(t, 'bugbot-sqlite-'), 'app.db');
    const db = new Database(file);
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
    for (let i = 1; i <= 400; i++) db.prepare('INSERT INTO notes VALUES (?, ?)').run(i, 'x'.repeat(5000));
    db.close();
    // The highest limits the settings allow: 10,000 rows of 1 MB cells.
    const limits = { rowLimit: 10_000, statementTimeoutMs: 5000, maxCellBytes: 1_000_000 };
    const backend = new SqliteBackend(file, false, limits, () => {});
    t.after(() => backend.close());
    const crossed = (r: { rows: unknown[][] }) => r.rows.flat().reduce((n: number, v) => n + (v instanceof CutCell ? v.head.length : String(v).length), 0);
    // 400 rows of ten 5,000-byte cells: all 20 MB crossed to the server for a reply of five.
    const cols = Array(10).fill('n.body').join(', ');
    const r = await backend.run({ kind: 'select', sql: `SELECT n.id, ${cols} FROM notes n ORDER BY n.id` }, []);
    assert.ok(crossed(r) < 2_000_000, `${crossed(r)} characters crossed the pipe`);
    assert.deepEqual(r.rows.map((row) => row[0]), [1, 2, 3, 4, 5, 6]);
    assert.equal(r.overflow, true);
    assert.equal(r.truncated, false);
    // A row far wider than a reply (200 cells of 5,000): its cells come cut to what the reply shows.
    const wide = await backend.run({ kind: 'select', sql: `SELECT ${Array(200).fill('n.body').join(', ')} FROM notes n WHERE n.id <= 3` }, []);
    assert.equal(wide.rows.length, 1);
    assert.equal(wide.overflow, true);
    for (const v of wide.rows[0]!) assert.ok(v instanceof CutCell && v.head.length === 655 && v.bytes === 5000, String(v));
    // Short rows still come all, up to the row limit.
    const ids = await backend.run({ kind: 'select', sql: 'SELECT n.id FROM notes n ORDER BY n.id' }, []);
    assert.equal(ids.rows.length, 400);
    assert.ok(!ids.overflow && !ids.truncated);

    // The model reads it as from PostgreSQL.
    const settings = dbSettingsSchema.parse({ driver: 'sqlite', sqlitePath: file, tables: { notes: ['id', 'body'] }, ...limits });
    const client = await sqliteClient(t, settings, file);
    const reply = await call(client, 'db_query', { sql: `SELECT n.id, ${cols} FROM notes n ORDER BY n.id` });
    assert.match(reply.text, /^Reply size limit reached: showing the first 5 of at least 6 rows \(256 KB of cells at most\)/);
    assert.deepEqual(rows(reply).rows[4], [5, ...Array(10).fill('x'.repeat(5000))]);

    // A write's RETURNING rows (--allow-writes) stop alike; every change is made, and counted.
    const rw = new SqliteBackend(file, true, limits, () => {});
    t.after(() => rw.close());
    const w = await rw.run({ kind: 'update', sql: `UPDATE notes SET body = body || 'y' WHERE id > 0 RETURNING id, ${cols.replaceAll('n.', '')}` }, []);
    assert.ok(crossed(w) < 2_000_000, `${crossed(w)} characters crossed the pipe`);
    assert.equal(w.rows.length, 6);
    assert.equal(w.changes, 400);
    const one = await rw.run({ kind: 'insert', sql: "INSERT INTO notes (id, body) VALUES (1000, 'n') RETURNING id, body" }, []);
    assert.deepEqual(one, { columns: ['id', 'body'], rows: [[1000, 'n']], truncated: false, overflow: false, changes: 1 });
    const check = new Database(file, { readonly: true });
    assert.equal(check.prepare("SELECT count(*) FROM notes WHERE body LIKE '%y'").pluck().get(), 400);
    check.close();
  });
});
