/**
 * The operator's lifecycle: a restart, a rollback to an older bugbot, a terminal closed
 * under a running `bugbot start`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION } from '../../control/queue/migrations.ts';
import { Store } from '../../control/queue/store.ts';
import { repoRoot, tempDir, waitFor } from '../support/helpers.ts';
import { spawnLogged, startBugbot } from '../support/process.ts';

const noModel = { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '', ANTHROPIC_BASE_URL: '' };

// Review finding: migrate() returned at once on a database whose user_version was past
// its last migration, so a bugbot rolled back after an upgrade served a schema it does
// not know (reporters moved to a table it never reads: nobody told of their fixes).
test('a database made by a newer bugbot is refused by name, never read as this schema', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const path = join(home, 'bugbot.db');
  new Store(path).close();
  const db = new Database(path);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();

  assert.throws(
    () => new Store(path),
    (err: Error) => err.message.includes(`schema version ${SCHEMA_VERSION + 1}`) && err.message.includes(`${SCHEMA_VERSION}`) && err.message.includes(path),
  );
  const after = new Database(path);
  t.after(() => after.close());
  assert.equal(after.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1, 'left as it was');

  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1 }));
  for (const args of [['start', '--port', '0'], ['tickets']]) {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, ...args], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, ...noModel, BUGBOT_LOG_LEVEL: 'warn' },
      timeout: 30_000,
    });
    assert.notEqual(r.status, 0, `${args[0]}: ${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout, /listening on/, `${args[0]}: never serves it`);
    assert.match(r.stderr, new RegExp(`^bugbot: .*schema version ${SCHEMA_VERSION + 1}.*newer`, 'm'), args[0]);
    assert.doesNotMatch(r.stderr, /^\s+at /m, `${args[0]}: one line, no stack trace`);
  }
});

// Review finding: `bugbot start` handled SIGINT and SIGTERM only. A SIGHUP (the terminal
// or SSH session it runs in closed, `systemctl reload` with a kill -HUP) killed it at
// once: workers left going with their runs recorded running, server.json left behind.
test('SIGHUP stops bugbot start as SIGTERM does', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1 }));
  const a = await startBugbot(t, { configPath, cwd: dir, env: noModel });
  assert.ok(existsSync(join(home, 'server.json')));
  a.proc.kill('SIGHUP');
  assert.deepEqual(await a.exited, { code: 0, signal: null }, a.output());
  assert.match(a.output(), /^stopping \(SIGHUP\)/m);
  assert.equal(existsSync(join(home, 'server.json')), false, 'the stop removed its server.json');
});

// Review finding: a client trickling its body held its connection for Node's default 300 s
// request timeout, and a stop's server.close() with it: the stop ran out its budget (60 s)
// and exited 1, leaving server.json and the lock behind.
test('a stop does not wait for a client that never finishes sending its body', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1 }));
  const a = await startBugbot(t, { configPath, cwd: dir, env: noModel });
  const { port } = new URL(a.url);
  const slow = connect(Number(port), '127.0.0.1');
  t.after(() => slow.destroy());
  slow.on('error', () => undefined);
  await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
  slow.write(`POST /triggers/grafana HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"version":"4",`);
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  a.proc.kill('SIGTERM');
  assert.deepEqual(await a.exited, { code: 0, signal: null }, a.output());
  assert.ok(Date.now() - started < 20_000, `stopped in ${Date.now() - started} ms`);
  assert.equal(existsSync(join(home, 'server.json')), false, 'the stop removed its server.json');
});

// Review finding: a stop's server.close() waits for every connection to end, and a client
// that kept sending on its keep-alive connection (Alertmanager in an alert storm) held
// it open: each SIGTERM under load ran out the whole stop budget (60 s), then exited 1
// with server.json left behind.
test('a stop under a steady stream of alerts on keep-alive connections ends at once, every 2xx stored', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1 }));
  const a = await startBugbot(t, { configPath, cwd: dir, env: noModel });
  const { hostname, port } = new URL(a.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  const post = (i: number) =>
    new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({
        version: '4',
        status: 'firing',
        alerts: [{ status: 'firing', startsAt: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, i)).toISOString(), labels: { alertname: 'PetErrors', service: 'petstore' }, annotations: { message: 'TypeError: owner is undefined' } }],
      });
      const req = request({ host: hostname, port, path: '/triggers/grafana', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
  let next = 0;
  let acked = 0;
  const clients = Array.from({ length: 4 }, async () => {
    for (;;) {
      try {
        if ((await post(next++)) === 200) acked++;
      } catch {
        return; // refused or cut: the server is going
      }
    }
  });
  // The stream is under way (an alert acknowledged) before the stop: a slow machine's first answer may take a while.
  await waitFor(() => acked > 0, 30_000, 'the first alert acknowledged');
  await new Promise((r) => setTimeout(r, 500));
  const stopAt = Date.now();
  a.proc.kill('SIGTERM');
  const exited = await a.exited;
  const took = Date.now() - stopAt;
  await Promise.all(clients);
  assert.deepEqual(exited, { code: 0, signal: null }, a.output());
  assert.ok(took < 15_000, `stopped in ${took} ms`);
  assert.equal(existsSync(join(home, 'server.json')), false);
  assert.ok(acked > 0);
  const db = new Database(join(home, 'bugbot.db'), { readonly: true });
  t.after(() => db.close());
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n, acked, 'each acknowledged alert is stored');
});

// Review finding: once SIGINT was handled with process.on (so a second Ctrl-C while it
// stops quits at once), a second Ctrl-C while it was still starting up did nothing: a
// start held up (Slack's API not answering: three tries of 10 s) could not be quit from
// its terminal at all. With process.once the second one had killed it.
test('a second Ctrl-C while bugbot start is still starting up quits at once', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  // A Slack API that takes the connection and never answers holds the start-up in slack.start().
  const silent = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const apiUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api/`;
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1, triggers: { slack: { apiUrl } } }));
  const env = { ...process.env, ...noModel, BUGBOT_LOG_LEVEL: 'warn', SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: 'secret' };
  const s = spawnLogged(t, process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, 'start', '--port', '0'], { env, cwd: dir });
  // It listens (server.json) before it connects to Slack, and prints its banner after.
  await waitFor(() => existsSync(join(home, 'server.json')), 20_000, 'server.json');
  await new Promise((r) => setTimeout(r, 300));
  assert.doesNotMatch(s.output(), /listening on/, 'still starting up');
  s.proc.kill('SIGINT');
  // Said at once, not once start-up is over (it printed nothing until then).
  await waitFor(() => /^SIGINT: stopping once it has started up \(Ctrl-C again quits now\)$/m.test(s.output()), 15_000, 'the first Ctrl-C answered');
  s.proc.kill('SIGINT');
  const exited = await Promise.race([s.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 15_000))]);
  assert.deepEqual(exited, { code: 130, signal: null }, s.output());
  assert.match(s.output(), /^quitting now/m, s.output());
});

// Review finding: after `rm home/bugbot.db*` under a running bugbot start, webhooks still got
// 200 "created", filings 201 and /healthz 200 while everything went into the unlinked file,
// gone at the next start; `bugbot enqueue` made a new bugbot.db beside the running server,
// and `bugbot status` said there was no home yet.
test('bugbot.db deleted under a running bugbot start: events refused with 503, never acknowledged; /healthz 503; the workers hold; the CLI names the server and makes no database; a restart takes events again', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1, intake: { settleSeconds: 0 } }));
  const env = { ...noModel, BUGBOT_LOG_LEVEL: 'error' };
  const a = await startBugbot(t, { configPath, cwd: dir, env });
  const file = (title: string) => fetch(`${a.url}/api/tickets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title }) });
  const alert = () =>
    fetch(`${a.url}/triggers/grafana`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        version: '4',
        status: 'firing',
        alerts: [{ status: 'firing', startsAt: '2026-11-21T10:00:00Z', labels: { alertname: 'PetErrors', service: 'petstore' }, annotations: { message: "TypeError: Cannot read properties of undefined (reading 'owner')" } }],
      }),
    });
  assert.equal((await file('Checkout is blank')).status, 201);

  for (const f of ['bugbot.db', 'bugbot.db-wal', 'bugbot.db-shm']) rmSync(join(home, f), { force: true });
  // Noticed on its own (a timer), and logged once.
  await waitFor(() => /database file gone/.test(a.output()), 10_000, 'the control plane to notice');
  assert.match(a.output(), new RegExp(`${join(home, 'bugbot.db').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} was deleted while this bugbot start ran.*restart bugbot start`));
  for (const res of [await alert(), await file('Cart is empty')]) {
    assert.equal(res.status, 503, res.url);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'database_gone');
    assert.match(body.error.message, /deleted or replaced while bugbot start ran: nothing can be stored until bugbot start is restarted; this request was not stored nor acknowledged: send it again later/);
  }
  const health = await fetch(`${a.url}/healthz`);
  assert.equal(health.status, 503);
  assert.equal(((await health.json()) as { ok: boolean; error: { code: string } }).error.code, 'database_gone');
  // (As the workers see it at their next poll.)
  await waitFor(async () => /bugbot\.db was deleted while this bugbot start ran/.test(((await (await fetch(`${a.url}/api/workers`)).json()) as { held: string | null }).held ?? ''), 10_000, 'the workers to hold');
  assert.equal(a.output().match(/database file gone/g)?.length, 1, 'one error, not one per request');

  // The CLI: the server is named, and nothing makes a database beside it.
  for (const args of [['status'], ['tickets'], ['enqueue', '-t', 'Search is slow']]) {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
    assert.equal(r.status, 2, `${args[0]}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^bugbot: bugbot start \\(pid ${a.proc.pid}, .*\\) runs on this home .* but its database file .*bugbot\\.db is gone: restart it`), args[0]);
  }
  assert.equal(existsSync(join(home, 'bugbot.db')), false, 'no new database beside the running server');

  a.proc.kill('SIGTERM');
  assert.deepEqual(await a.exited, { code: 0, signal: null }, a.output());
  // The restart opens a database at the path again: events are stored and kept.
  const b = await startBugbot(t, { configPath, cwd: dir, env });
  const again = await fetch(`${b.url}/api/tickets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Cart is empty' }) });
  assert.equal(again.status, 201);
  assert.equal((await fetch(`${b.url}/healthz`)).status, 200);
});
