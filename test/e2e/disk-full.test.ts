/**
 * The disk holding BUGBOT_HOME fills up under a running `bugbot start` (a small tmpfs):
 * webhooks get 507 naming the problem instead of a 2xx for something not stored,
 * every event acknowledged before stays, the database passes its integrity check,
 * and once space is back the same server accepts again.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { fixtureJson } from '../support/helpers.ts';
import { startBugbot } from '../support/process.ts';

function mountTmpfs(dir: string, size: string): void {
  if (process.getuid?.() !== 0) throw new Error('disk-full.test.ts mounts a tmpfs and must run as root (CI does)');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`could not mount a tmpfs at ${dir} (needs root and mount rights): ${(err as Error).message}`);
  }
}

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
  // Not tempDir(): its removal would run before the unmount (after-hooks run in order).
  const dir = mkdtempSync(join(tmpdir(), 'bugbot-diskfull-'));
  const home = join(dir, 'home');
  mkdirSync(home);
  mountTmpfs(home, '6m');
  t.after(() => {
    try {
      execFileSync('umount', [home], { stdio: 'ignore' });
    } catch {
      execFileSync('umount', ['-l', home], { stdio: 'ignore' });
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, intake: { settleSeconds: 3600, settleCapSeconds: 3600 }, workers: 1 }));
  const bugbot = await startBugbot(t, { configPath });

  // Leave about 400 KiB free.
  const filler = join(home, 'filler');
  const fs = statfsSync(home);
  const free = fs.bavail * fs.bsize;
  writeFileSync(filler, Buffer.alloc(Math.max(0, free - 400 * 1024)));

  const accepted: number[] = [];
  let refusal: { status: number; body: { error?: { code: string; message: string } } } | undefined;
  for (let i = 1; i <= 2000 && !refusal; i++) {
    const res = await fetch(`${bugbot.url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alert(i)) });
    const body = (await res.json()) as { error?: { code: string; message: string } };
    if (res.status === 200) accepted.push(i);
    else refusal = { status: res.status, body };
  }
  assert.ok(refusal, 'the disk filled up');
  assert.ok(accepted.length > 5, `some alerts were stored first (${accepted.length})`);
  assert.equal(refusal.status, 507, JSON.stringify(refusal.body));
  assert.equal(refusal.body.error?.code, 'storage_full');
  assert.match(refusal.body.error?.message ?? '', /disk holding bugbot's home is full.*nothing was stored/);

  // Still alive and readable while full.
  const health = await fetch(`${bugbot.url}/healthz`);
  assert.equal(health.status, 200);

  // Space back: the same process accepts again.
  rmSync(filler);
  const next = accepted.length + 1;
  const again = await fetch(`${bugbot.url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alert(next)) });
  assert.equal(again.status, 200, await again.text());
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
