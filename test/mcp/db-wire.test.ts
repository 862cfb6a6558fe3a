// The db MCP server against what PostgreSQL sends it: the server process (mcp/db/main.ts,
// spawned over stdio) talks to a real PostgreSQL (test/support/postgres.ts) through a
// proxy here that counts the bytes of every reply, can corrupt one and can delay them. The read-only role
// has standard_conforming_strings off, as some older databases do. Sensitive columns hold
// CANARY- values; no response may contain one.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { repoRoot } from '../support/helpers.ts';
import { startPostgres, type TestPostgres } from '../support/postgres.ts';
import { cutQuery } from '../../mcp/db/postgres.ts';

const BIG = 5_000_000;
const SCHEMA = `
  CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, password_hash text NOT NULL);
  INSERT INTO users (email, password_hash) SELECT 'user' || i || '@example.com', 'CANARY-PW-' || i FROM generate_series(1, 5) i;
  CREATE TABLE notes (id int PRIMARY KEY, body text, flag boolean, n bigint, at timestamptz, meta jsonb, tags int[], code char(6));
  INSERT INTO notes VALUES (1, repeat('x', ${BIG}), true, 5, '2026-01-02T03:04:05Z', '{"a": 1}', '{1,2}', 'ab'),
                           (2, 'short', NULL, NULL, NULL, NULL, NULL, NULL);
  CREATE TABLE many (id int PRIMARY KEY);
  INSERT INTO many SELECT generate_series(1, 400);
  CREATE TABLE scratch (id int PRIMARY KEY, body text);
  INSERT INTO scratch SELECT i, 'b' FROM generate_series(1, 400) i;`;

const SETTINGS = {
  urlEnv: 'TEST_DB_URL',
  tables: { users: ['id', 'email'], notes: ['id', 'body', 'flag', 'n', 'at', 'meta', 'tags', 'code'] },
  sensitive: { users: ['password_hash'] },
  statementTimeoutMs: 5000,
  rowLimit: 50,
  maxCellBytes: 200,
};

interface Reply {
  text: string;
  isError: boolean;
}
const seen: string[] = [];

async function call(client: Client, sql: string): Promise<Reply> {
  const r = await client.callTool({ name: 'db_query', arguments: { sql } });
  const text = (r.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n');
  seen.push(text);
  return { text, isError: r.isError === true };
}

function rows(reply: Reply): { columns: string[]; rows: unknown[][] } {
  assert.ok(!reply.isError, reply.text);
  return JSON.parse(reply.text.slice(reply.text.indexOf('\n') + 1)) as { columns: string[]; rows: unknown[][] };
}

/**
 * A TCP proxy to PostgreSQL: counts the bytes it sends back; `poison()` replaces the next
 * reply with a malformed message; `delay(ms)` holds every reply that long.
 */
function proxy(port: number): Promise<{ port: number; received: () => number; poison: () => void; delay: (ms: number) => void; close: () => void }> {
  let received = 0;
  let poisoned = false;
  let delayMs = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      if (poisoned) {
        poisoned = false;
        // A DataRow that says it has one field and ends before the field's length:
        // pg-protocol throws reading past the buffer, from the socket's data handler.
        client.write(Buffer.from([0x44, 0, 0, 0, 6, 0, 1]));
        return;
      }
      received += d.length;
      if (delayMs) setTimeout(() => client.write(d), delayMs);
      else client.write(d);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        received: () => received,
        poison: () => (poisoned = true),
        delay: (ms) => (delayMs = ms),
        close: () => {
          for (const s of sockets) s.destroy();
          server.close();
        },
      }),
    ),
  );
}

describe('db MCP server: what PostgreSQL sends back', () => {
  let pg: TestPostgres;
  let wire: Awaited<ReturnType<typeof proxy>>;
  let client: Client;
  let dir: string;
  let stderr = '';
  const clients: Client[] = [];

  /** The server, with these settings, connected through the proxy (with --allow-writes: as the superuser). */
  async function spawn(settings: object, flags: string[] = []): Promise<Client> {
    const file = join(dir, `db-${clients.length}.json`);
    writeFileSync(file, JSON.stringify(settings));
    const viaProxy = (url: string) => url.replace(`:${pg.port}/`, `:${wire.port}/`);
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', join(repoRoot, 'mcp/db/main.ts'), '--settings', file, ...flags],
      cwd: repoRoot,
      env: { ...getDefaultEnvironment(), TEST_DB_URL: viaProxy(pg.readonlyUrl), TEST_DB_WRITE_URL: viaProxy(pg.adminUrl) },
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const c = new Client({ name: 'db-wire-test', version: '0.0.0' });
    await c.connect(transport);
    clients.push(c);
    return c;
  }

  before(async () => {
    pg = await startPostgres(undefined, { schemaSql: SCHEMA });
    await pg.admin('ALTER ROLE bugbot_ro SET standard_conforming_strings = off');
    wire = await proxy(pg.port);
    dir = mkdtempSync(join(tmpdir(), 'bugbot-db-wire-'));
    client = await spawn(SETTINGS);
  });
  after(async () => {
    for (const c of clients.splice(0)) await c.close();
    wire?.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a long cell is cut by the database: a few hundred bytes cross the wire, not the value; other types come as before', async () => {
    const before = wire.received();
    const r = rows(await call(client, 'SELECT n.id, n.body, n.flag, n.n, n.at, n.meta, n.tags, n.body AS again FROM notes n ORDER BY n.id'));
    const sent = wire.received() - before;
    assert.ok(sent < 20_000, `${sent} bytes came from the database for a ${BIG}-byte cell`);
    assert.deepEqual(r.columns, ['id', 'body', 'flag', 'n', 'at', 'meta', 'tags', 'again']);
    const cut = `${'x'.repeat(200)}… [cut: ${BIG} bytes, limit 200]`;
    assert.deepEqual(r.rows, [
      [1, cut, true, '5', '2026-01-02T03:04:05.000Z', '{"a": 1}', '{1,2}', cut],
      [2, 'short', null, null, null, null, null, 'short'],
    ]);
    // Values that fit, a trailing comment, parameters: the query reads as written.
    assert.deepEqual(rows(await call(client, 'SELECT n.body FROM notes n WHERE n.id = 2 -- the short one')).rows, [['short']]);
    assert.deepEqual(rows(await call(client, "SELECT count(*) AS n, string_agg(u.email, ',' ORDER BY u.id) AS e FROM users u")).rows[0]?.[0], '5');
  });

  test('a numeric value is cut by the database too: its text runs to 150 KB, repeated across columns and rows to gigabytes', async () => {
    const before = wire.received();
    const r = rows(await call(client, 'SELECT s.c, s.c AS again, u.id FROM (SELECT 10::numeric ^ 131071 AS c) s, users u ORDER BY u.id LIMIT 2'));
    const sent = wire.received() - before;
    assert.ok(sent < 20_000, `${sent} bytes came from the database for two rows of two 131 KB numbers`);
    assert.match(String(r.rows[0]?.[0]), /^10{199}… \[cut: 13\d{4} bytes, limit 200\]$/);
    assert.deepEqual(r.rows.map((row) => row[2]), [1, 2]);
    // Short numbers come as they did.
    assert.deepEqual(rows(await call(client, 'SELECT 1.50::numeric AS n')).rows, [['1.50']]);
  });

  test('with standard_conforming_strings off for the role, a backslash cannot turn a literal the guard read into columns', async () => {
    // Read with the setting off, '\' AS a, ' is one string and password_hash a column.
    const r = rows(await call(client, "SELECT '\\' AS a, ' AS b, password_hash AS c --'\nFROM users LIMIT 2"));
    assert.equal(r.columns.length, 2);
    assert.deepEqual(r.rows[0], ['\\', ' AS b, password_hash AS c --']);
  });

  test('a reply the driver cannot read fails the call, and the server keeps working', async () => {
    wire.poison();
    const r = await call(client, 'SELECT u.id FROM users u ORDER BY u.id LIMIT 1');
    assert.ok(r.isError, r.text);
    assert.match(r.text, /reply could not be read/);
    assert.deepEqual(rows(await call(client, 'SELECT u.id FROM users u ORDER BY u.id LIMIT 1')).rows, [[1]], stderr);
  });

  test('char(n) keeps its padding (and NULL) when long columns are cut', async () => {
    assert.deepEqual(rows(await call(client, 'SELECT n.id, n.code FROM notes n ORDER BY n.id')).rows, [
      [1, 'ab    '],
      [2, null],
    ]);
    // Inside an array the elements kept it already.
    assert.deepEqual(rows(await call(client, "SELECT ARRAY[n.code] AS a FROM notes n WHERE n.id = 1")).rows, [['{"ab    "}']]);
  });

  test('more long columns than PostgreSQL can measure: they still come cut by the database, the length only "more than"', async () => {
    // 1 + 840 long columns: with a length column each, 1682 > PostgreSQL's 1664.
    const sql = `SELECT n.body, ${Array(840).fill('n.meta').join(', ')} FROM notes n ORDER BY n.id`;
    const before = wire.received();
    const r = rows(await call(client, sql));
    const sent = wire.received() - before;
    assert.ok(sent < 100_000, `${sent} bytes came from the database`);
    assert.equal(r.columns.length, 841);
    assert.equal(r.rows[0]?.[0], `${'x'.repeat(200)}… [cut: more than 200 bytes, limit 200]`);
    assert.equal(r.rows[0]?.[840], '{"a": 1}');
    assert.deepEqual(r.rows[1]?.slice(0, 2), ['short', null]);
  });

  test('a long column is converted to text once, not once for the cut and again for its length', async () => {
    const { text, measured } = cutQuery('SELECT n.id, n.meta, n.tags, n.body FROM notes n', [23, 3802, 1007, 25], 200);
    assert.equal(measured, true);
    const plan = (await pg.admin(`EXPLAIN (VERBOSE, COSTS OFF) ${text}`)).rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
    // jsonb and int[] each made text once (text itself needs no conversion).
    assert.equal(plan.match(/::text/g)?.length, 2, plan);
  });

  test('the client-side backstop covers the whole call, not each round trip', async () => {
    // Statement timeout 100 ms: backstop at 5.1 s. Each reply held 1.5 s: no one round
    // trip passes it, the seven of a call (BEGIN ... ROLLBACK) together do.
    const slow = await spawn({ ...SETTINGS, statementTimeoutMs: 100 });
    assert.deepEqual(rows(await call(slow, 'SELECT n.id FROM notes n WHERE n.id = 2')).rows, [[2]]);
    wire.delay(1500);
    const t0 = Date.now();
    const r = await call(slow, 'SELECT n.id FROM notes n WHERE n.id = 2').finally(() => wire.delay(0));
    const took = Date.now() - t0;
    assert.ok(r.isError, r.text);
    assert.match(r.text, /did not answer within 5100 ms/);
    assert.ok(took < 7000, `took ${took} ms`);
    assert.deepEqual(rows(await call(slow, 'SELECT n.id FROM notes n WHERE n.id = 2')).rows, [[2]], stderr);
  });

  /** The server at the highest limits the settings allow (10,000 rows of 1 MB cells). */
  let high: Client | undefined;
  async function highest(): Promise<Client> {
    high ??= await spawn({ ...SETTINGS, tables: { ...SETTINGS.tables, many: ['id'] }, functions: ['repeat'], rowLimit: 10_000, maxCellBytes: 1_000_000 });
    return high;
  }

  test('rows are read only while the reply can hold them: a few hundred KB cross the wire, not rowLimit rows', async () => {
    // A reply shows 256 KB. The server read every row up to rowLimit first: here 400 rows
    // of 50 KB (20 MB); at these limits, gigabytes into its memory within the timeout.
    const cols = Array.from({ length: 10 }, (_, k) => `repeat('x', 5000) AS c${k}`).join(', ');
    const before = wire.received();
    const reply = await call(await highest(), `SELECT m.id, ${cols} FROM many m ORDER BY m.id`);
    const sent = wire.received() - before;
    assert.ok(sent < 2_000_000, `${sent} bytes came from the database for a reply of ${reply.text.length}`);
    // Five rows of 50 KB fit; the sixth does not, and what follows it was never read.
    assert.match(reply.text, /^Reply size limit reached: showing the first 5 of at least 6 rows \(256 KB of cells at most\)/);
    const r = rows(reply);
    assert.deepEqual(r.rows.map((row) => row[0]), [1, 2, 3, 4, 5]);
    assert.deepEqual(r.rows[4], [5, ...Array(10).fill('x'.repeat(5000))]);
    // Short rows still come all, up to the row limit; a NULL takes no room.
    assert.equal(rows(await call(await highest(), 'SELECT m.id FROM many m ORDER BY m.id')).rows.length, 400);
    assert.deepEqual(rows(await call(await highest(), 'SELECT n.id, n.meta, n.code FROM notes n ORDER BY n.id')).rows, [
      [1, '{"a": 1}', 'ab    '],
      [2, null, null],
    ]);
  });

  test('a row far wider than a reply comes cut to what the reply shows of it, and nothing after it is read', async () => {
    // 200 cells of 100 KB: 20 MB a row, all of which the server received (and 1,664 such
    // cells past 1.6 GB); the reply shows 655 bytes of each, the first row alone.
    const before = wire.received();
    const wide = await call(await highest(), `SELECT ${Array(200).fill('w.a').join(', ')} FROM (SELECT repeat('é', 50000) AS a) w, many m WHERE m.id <= 3`);
    const sent = wire.received() - before;
    assert.ok(sent < 2_000_000, `${sent} bytes came from the database for a reply of ${wide.text.length}`);
    assert.match(wide.text, /^Reply size limit reached: showing the first 1 of at least 1 rows/);
    const shown = rows(wide).rows;
    assert.equal(shown.length, 1);
    // As before: cut to share the room, by bytes, with the whole value's size.
    for (const v of shown[0]!) assert.equal(v, `${'é'.repeat(327)}\ufffd… [cut: 100000 bytes, limit 655]`);
  });

  test("a write's RETURNING rows come as a SELECT's: cut by the database, read only while the reply can hold them, with the count of rows changed", async () => {
    const writes = { ...SETTINGS, writeUrlEnv: 'TEST_DB_WRITE_URL', tables: { ...SETTINGS.tables, scratch: ['id', 'body'] }, functions: ['repeat'] };
    const rw = await spawn({ ...writes, rowLimit: 10_000, maxCellBytes: 1_000_000 }, ['--allow-writes']);
    // 400 rows of ten 5,000-byte cells: the server received all 20 MB (at these limits,
    // rowLimit rows of 1 MB cells, gigabytes) for a reply that shows five of them.
    const cols = Array.from({ length: 10 }, (_, k) => `s.body AS c${k}`).join(', ');
    let before = wire.received();
    const reply = await call(rw, `UPDATE scratch s SET body = repeat('x', 5000) WHERE s.id > 0 RETURNING s.id, ${cols}`);
    let sent = wire.received() - before;
    assert.ok(sent < 2_000_000, `${sent} bytes came from the database for a reply of ${reply.text.length}`);
    assert.match(reply.text, /^UPDATE: 400 row\(s\) changed\. Reply size limit reached: showing the first 5 of at least 6 rows \(256 KB of cells at most\)/);
    const r = rows(reply);
    assert.equal(r.columns.length, 11);
    assert.equal(r.rows.length, 5);
    for (const row of r.rows) assert.deepEqual(row.slice(1), Array(10).fill('x'.repeat(5000)));
    // The write itself ran to the end.
    assert.equal((await pg.admin("SELECT count(*)::int AS n FROM scratch WHERE body = repeat('x', 5000)")).rows[0].n, 400);

    // One cell of 5 MB: cut by the database to maxCellBytes, its size told.
    const capped = await spawn(writes, ['--allow-writes']);
    before = wire.received();
    const big = await call(capped, `UPDATE scratch s SET body = repeat('y', ${BIG}) WHERE s.id = 1 RETURNING s.id, s.body`);
    sent = wire.received() - before;
    assert.ok(sent < 20_000, `${sent} bytes came from the database for a ${BIG}-byte cell`);
    assert.deepEqual(rows(big).rows, [[1, `${'y'.repeat(200)}… [cut: ${BIG} bytes, limit 200]`]]);

    // Ordinary writes answer as before: the row cap, short rows, no RETURNING, an error.
    const many = await call(capped, "UPDATE scratch s SET body = 'b' WHERE s.id > 0 RETURNING s.id");
    assert.match(many.text, /^UPDATE: 400 row\(s\) changed\. Row limit reached: showing the first 50 rows/);
    assert.equal(rows(many).rows.length, 50);
    const one = await call(capped, "INSERT INTO scratch (id, body) VALUES (1000, 'n') RETURNING id, body, id > 5 AS big");
    assert.equal(one.text, 'INSERT: 1 row(s) changed. 1 row(s).\n{"columns":["id","body","big"],"rows":[[1000,"n",true]],"truncated":false}');
    const dup = await call(capped, "INSERT INTO scratch (id, body) VALUES (1000, 'again') RETURNING id");
    assert.ok(dup.isError && /duplicate key/.test(dup.text), dup.text);
    assert.equal((await call(capped, 'DELETE FROM scratch s WHERE s.id = 1000')).text, 'DELETE: 1 row(s) changed. 0 row(s).\n{"columns":[],"rows":[],"truncated":false}');
    assert.equal((await call(capped, 'DELETE FROM scratch s WHERE s.id = 1000 RETURNING s.id')).text, 'DELETE: 0 row(s) changed. 0 row(s).\n{"columns":["id"],"rows":[],"truncated":false}');
  });

  test('no response ever contained a sensitive value', () => {
    assert.ok(seen.length >= 5);
    for (const text of seen) assert.ok(!/CANARY-/.test(text), `leaked: ${text}`);
  });
});
