/**
 * The disk holding BUGBOT_HOME fills up under a running `bugbot start` (a small tmpfs):
 * webhooks get 507 naming the problem instead of a 2xx for something not stored,
 * every event acknowledged before stays, the database passes its integrity check,
 * and once space is back the same server accepts again.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { fixtureJson, repoRoot, tempDir, waitFor } from '../support/helpers.ts';
import { startBugbot } from '../support/process.ts';
import { fillDisk, smallDisk } from '../support/tmpfs.ts';

const diskFp = (i: number) => `d15c${i.toString(16).padStart(12, '0')}`;

function alert(i: number): unknown {
  const body = fixtureJson<{ alerts: Array<Record<string, unknown>> }>('alertmanager', 'webhook_firing_zulip.json');
  const a = body.alerts[0]!;
  a.labels = { alertname: 'AppError', service: 'checkout', severity: 'critical', route: `/api/orders/${i}` };
  // Large distinct messages: the database grows fast.
  a.annotations = { summary: `Failure kind ${i}`, message: `Error: failure kind ${i} ${'x'.repeat(3000)} ${i.toString(36).repeat(200)}` };
  // Alertmanager's own form (16 hex digits), kept as sent (other text is hashed).
  a.fingerprint = diskFp(i);
  a.startsAt = new Date().toISOString();
  body.alerts = [a];
  return body;
}

test('BUGBOT_HOME on a full disk: 507 naming the problem, nothing acknowledged is lost, accepting again once space is back', { timeout: 120_000 }, async (t) => {
  const home = smallDisk(t, '6m');
  const configPath = join(tempDir(t), 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, intake: { settleSeconds: 3600, settleCapSeconds: 3600 }, workers: 1 }));
  const bugbot = await startBugbot(t, { configPath });

  // Leave about 400 KiB free.
  const filler = join(home, 'filler');
  const fs = statfsSync(home);
  const free = fs.bavail * fs.bsize;
  writeFileSync(filler, Buffer.alloc(Math.max(0, free - 400 * 1024)));

  const accepted: number[] = [];
  let refusal: { status: number; body: { error?: { code: string; message: string } }; retryAfter: string | null } | undefined;
  for (let i = 1; i <= 2000 && !refusal; i++) {
    const res = await fetch(`${bugbot.url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alert(i)) });
    const body = (await res.json()) as { error?: { code: string; message: string } };
    if (res.status === 200) accepted.push(i);
    else refusal = { status: res.status, body, retryAfter: res.headers.get('retry-after') };
  }
  assert.ok(refusal, 'the disk filled up');
  assert.ok(accepted.length > 5, `some alerts were stored first (${accepted.length})`);
  assert.equal(refusal.status, 507, JSON.stringify(refusal.body));
  assert.equal(refusal.body.error?.code, 'storage_full');
  assert.match(refusal.body.error?.message ?? '', /disk holding bugbot's home is full.*nothing was stored/);
  assert.equal(refusal.retryAfter, '30', 'a sender that reads Retry-After waits');

  // Still alive and readable while full (a restart would not free the disk), saying that
  // intake is refusing; not ready to take events.
  const health = await fetch(`${bugbot.url}/healthz`);
  assert.equal(health.status, 200);
  const healthBody = (await health.json()) as { intake: { ok: boolean; error?: { code: string } } };
  assert.equal(healthBody.intake.ok, false);
  assert.equal(healthBody.intake.error?.code, 'storage_full');
  const ready = await fetch(`${bugbot.url}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal(((await ready.json()) as { error: { code: string } }).error.code, 'storage_full');
  // As the operator sees it.
  const status = spawnSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, 'status'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /^control plane: running at .*\n {2}events are refused since \S+ \(storage_full\): could not store the request \(SQLITE_FULL\): the disk holding bugbot's home is full/m);
  const statusJson = spawnSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, 'status', '--json'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal((JSON.parse(statusJson.stdout) as { server: { refusing?: { code: string } } }).server.refusing?.code, 'storage_full');

  // Space back: the same process accepts again.
  rmSync(filler);
  const next = accepted.length + 1;
  const again = await fetch(`${bugbot.url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alert(next)) });
  assert.equal(again.status, 200, await again.text());
  assert.equal((await fetch(`${bugbot.url}/readyz`)).status, 200, 'ready again once an event is stored');
  assert.doesNotMatch(spawnSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, 'status'], { encoding: 'utf8', timeout: 30_000 }).stdout, /events are refused/);
  accepted.push(next);
  bugbot.proc.kill('SIGTERM');
  assert.equal((await bugbot.exited).code, 0, bugbot.output());

  const db = new Database(join(home, 'bugbot.db'), { readonly: true });
  t.after(() => db.close());
  assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  const stored = new Set((db.prepare(`SELECT source_event_id FROM events`).all() as { source_event_id: string }[]).map((r) => r.source_event_id.split(':')[0]));
  for (const i of accepted) assert.ok(stored.has(diskFp(i)), `acknowledged alert ${i} is stored`);
  assert.equal(stored.size, accepted.length, 'nothing refused was stored');
  const orphans = db.prepare('SELECT count(*) AS n FROM events e LEFT JOIN tickets t ON t.id = e.ticket_id WHERE t.id IS NULL').get() as { n: number };
  assert.equal(orphans.n, 0, 'every stored event belongs to a ticket: nothing half-written');
});

test('a log file on the full disk (bugbot start 2>>log): the control plane stays up, refuses with 507, and logs again once space is back', { timeout: 120_000 }, async (t) => {
  const disk = smallDisk(t, '6m');
  const home = join(disk, 'home');
  const logPath = join(disk, 'bugbot.log');
  const configPath = join(tempDir(t), 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, intake: { settleSeconds: 3600, settleCapSeconds: 3600 }, workers: 1 }));
  const logFd = openSync(logPath, 'a');
  const proc = spawn(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, 'start', '--port', '0'], {
    cwd: repoRoot,
    env: { ...process.env, BUGBOT_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', logFd],
  });
  closeSync(logFd);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  // Runs after smallDisk's unmount (hooks run in order), which falls back to a lazy one while this holds the log open.
  t.after(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGKILL');
    await exited;
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await waitFor(() => {
    if (proc.exitCode !== null) throw new Error(`bugbot start exited (${proc.exitCode}):\n${out}\n${readFileSync(logPath, 'utf8')}`);
    return /^watching: /m.test(out) ? /listening on (http:\/\/\S+)/.exec(out)?.[1] : undefined;
  }, 20_000, 'bugbot start listening');

  // Every byte taken: the refusals' log lines cannot be written either, once they are past
  // the log's last page (tmpfs allocates by the page; a line is about 150 bytes).
  const filler = fillDisk(disk);
  const died = (err: Error) => {
    throw new Error(`the control plane died on the full disk (exit code ${proc.exitCode}): ${err.message}`);
  };
  for (let i = 1; i <= 60; i++) {
    const res = await fetch(`${url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alert(i)) }).catch(died);
    assert.equal(res.status, 507, await res.text());
  }
  assert.equal((await fetch(`${url}/healthz`).catch(died)).status, 200);

  // Space back: the same process stores and logs again.
  rmSync(filler);
  const again = await fetch(`${url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alert(61)) });
  assert.equal(again.status, 200, await again.text());
  proc.kill('SIGTERM');
  assert.equal(await exited, 0, readFileSync(logPath, 'utf8'));
  assert.match(readFileSync(logPath, 'utf8'), /"msg":"shutting down"/, 'a line logged after the space came back');
});

test('bugbot start on a full disk says which disk and what to do, exit 1', { timeout: 60_000 }, (t) => {
  const home = smallDisk(t, '2m');
  const configPath = join(tempDir(t), 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home }));
  fillDisk(home);
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, 'start', '--port', '0'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /the disk holding bugbot's home is full \(free some space, then run this again\)/);
});
