/**
 * One control plane per home. A second `bugbot start` of a live home used to reconcile
 * the first one's running runs as lost (failing or requeueing them) before its listen
 * failed with EADDRINUSE, or, on another port, run beside it and take over its
 * server.json. It must refuse before changing anything; a kill -9 of the first must not
 * leave a lock behind that refuses the next start.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { claimNext, runsForTicket } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { repoRoot, tempDir, waitFor } from '../support/helpers.ts';
import { startBugbot } from '../support/process.ts';

// Workers hold without model credentials: nothing of A's claims or runs on its own.
const noModel = { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '', ANTHROPIC_BASE_URL: '' };

/**
 * GET's status on a connection of its own. spawnSync blocks this test's event loop for as
 * long as a second start runs, past the server's keep-alive: fetch's pooled connection
 * from the POST may be closing just as it is reused ("other side closed", seen under load).
 */
function status(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

function start(configPath: string, port: number, cwd: string) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, 'start', '--port', String(port)], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ...noModel, BUGBOT_LOG_LEVEL: 'warn' },
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a second start of a live home refuses before changing anything; a kill -9 leaves no stale lock', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1, intake: { settleSeconds: 0 } }));
  const a = await startBugbot(t, { configPath, cwd: dir, env: noModel });
  const port = Number(new URL(a.url).port);
  const infoPath = join(home, 'server.json');
  await waitFor(() => existsSync(infoPath), 10_000, 'server.json');
  const info = readFileSync(infoPath, 'utf8');
  const infoMtime = statSync(infoPath).mtimeMs;
  assert.equal((JSON.parse(info) as { pid: number }).pid, a.proc.pid);

  // A ticket mid-run, as A's worker would hold it.
  const filed = await fetch(`${a.url}/api/tickets`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Checkout shows a blank page', message: 'TypeError: cart is undefined' }),
  });
  assert.equal(filed.status, 201, await filed.clone().text());
  const id = ((await filed.json()) as { ticket: { id: number } }).ticket.id;
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  await waitFor(() => store.getTicket(id)?.state === 'queued', 10_000, 'the ticket to be queued');
  const claim = claimNext(store, 1, null, 600);
  assert.equal(claim?.ticket.id, id);

  for (const p of [0, port]) {
    const b = start(configPath, p, dir);
    assert.equal(b.code, 2, `--port ${p}: ${b.stdout}${b.stderr}`);
    assert.equal(
      b.stderr,
      `bugbot: already running for home ${home} (pid ${a.proc.pid}, ${a.url}); stop it first, or give this one another --home\n`,
      `--port ${p}: one line, no stack trace, no reconcile`,
    );
    assert.equal(b.stdout, '', 'no banner');
    assert.equal(readFileSync(infoPath, 'utf8'), info, `--port ${p}: A's server.json is untouched`);
    assert.equal(statSync(infoPath).mtimeMs, infoMtime);
    assert.equal(await status(`${a.url}/healthz`), 200, 'A still answers');
    const [run] = runsForTicket(store, id);
    assert.equal(run?.state, 'running', `--port ${p}: A's run is not reconciled as lost`);
    assert.equal(store.getTicket(id)?.state, 'running');
  }

  // kill -9: the OS drops A's lock with the process, and the next start takes the home.
  a.proc.kill('SIGKILL');
  assert.equal((await a.exited).signal, 'SIGKILL');
  const c = await startBugbot(t, { configPath, cwd: dir, env: noModel });
  await waitFor(() => readFileSync(infoPath, 'utf8').includes(`"pid":${c.proc.pid}`), 10_000, "C's server.json");
  assert.equal((await fetch(`${c.url}/healthz`)).status, 200);
  // C reconciled what A left: the run A's kill orphaned.
  const [run] = runsForTicket(store, id);
  assert.equal(run?.state, 'lost');
  assert.match(run?.reason ?? '', /control plane restarted/);
  c.proc.kill('SIGTERM');
  assert.equal((await c.exited).code, 0);
  assert.equal(existsSync(infoPath), false, 'C removes the server.json it wrote');
});

test('a port taken by another program: one line and exit 2, and the home is free again', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home }));
  const other = createServer();
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  t.after(() => other.close());
  const port = (other.address() as { port: number }).port;

  const b = start(configPath, port, dir);
  assert.equal(b.code, 2, b.stdout + b.stderr);
  assert.match(b.stderr, new RegExp(`^bugbot: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use \\(give this one another --port\\)\n$`, 'm'));
  assert.doesNotMatch(b.stderr, /^\s+at /m, 'no stack trace');
  assert.equal(existsSync(join(home, 'server.json')), false);

  const c = await startBugbot(t, { configPath, cwd: dir });
  c.proc.kill('SIGTERM');
  assert.equal((await c.exited).code, 0);
});
