/**
 * Durability: `kill -9` of `bugbot start` during a 20-second alert storm, then a
 * restart. Every event that got a 2xx must be in the database afterwards.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../support/helpers.ts';
import { startBugbot, type BugbotProcess } from '../support/process.ts';

const STORM_MS = 20_000;
const CONCURRENCY = 16;

const stormFp = (n: number) => n.toString(16).padStart(16, '0');

function alertBody(n: number): string {
  return JSON.stringify({
    version: '4',
    status: 'firing',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'Storm', service: `svc-${n % 5}` },
        annotations: { message: `TypeError: request ${n} failed for order ${n * 31}` },
        startsAt: new Date(Date.UTC(2026, 10, 21, 10, 0, 0) + n).toISOString(),
        // Alertmanager's own form (16 hex digits), which is kept as sent (other text is hashed).
        fingerprint: stormFp(n),
      },
    ],
  });
}

test('kill -9 during an alert storm loses no acknowledged event', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home: join(dir, 'home'), intake: { settleSeconds: 2 } }));
  let bugbot: BugbotProcess = await startBugbot(t, { configPath });

  const acked = new Set<string>();
  let next = 0;
  let failures = 0;
  let killed = false;
  let restarted = false;
  const start = Date.now();
  const killAt = start + 6_000 + Math.random() * 6_000;

  const worker = async () => {
    while (Date.now() - start < STORM_MS) {
      const n = next++;
      const url = bugbot.url;
      try {
        const res = await fetch(`${url}/triggers/grafana`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: alertBody(n),
          signal: AbortSignal.timeout(5_000),
        });
        if (res.ok) acked.add(`${stormFp(n)}:${new Date(Date.UTC(2026, 10, 21, 10, 0, 0) + n).toISOString()}`);
        else failures++;
        await res.arrayBuffer();
      } catch {
        failures++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };

  const chaos = (async () => {
    while (Date.now() < killAt) await new Promise((r) => setTimeout(r, 50));
    const before = acked.size;
    bugbot.proc.kill('SIGKILL');
    const exit = await bugbot.exited;
    assert.equal(exit.signal, 'SIGKILL');
    killed = true;
    assert.ok(before > 50, `storm was running before the kill (${before} acked)`);
    bugbot = await startBugbot(t, { configPath });
    restarted = true;
  })();

  await Promise.all([...Array.from({ length: CONCURRENCY }, worker), chaos]);
  assert.ok(killed && restarted, 'the control plane was killed and restarted during the storm');
  assert.ok(failures > 0, 'some requests failed while the control plane was down');

  bugbot.proc.kill('SIGTERM');
  await bugbot.exited;
  const db = new Database(join(dir, 'home', 'bugbot.db'), { readonly: true });
  t.after(() => db.close());
  const stored = new Set(
    (db.prepare(`SELECT source_event_id AS id FROM events WHERE source = 'alertmanager'`).all() as { id: string }[]).map((r) => r.id),
  );
  t.diagnostic(`acked ${acked.size}, failed ${failures}, stored ${stored.size}`);
  const lost = [...acked].filter((id) => !stored.has(id));
  assert.deepEqual(lost.slice(0, 10), [], `${lost.length} acknowledged events were lost`);
  assert.ok(acked.size > 200, `storm sent a meaningful load (${acked.size} acked)`);
  const integrity = db.pragma('integrity_check', { simple: true });
  assert.equal(integrity, 'ok');
});
