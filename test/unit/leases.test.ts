import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Intake } from '../../control/intake/index.ts';
import { createRedactor } from '../../lib/redact.ts';
import { activeRuns, cancelTicket, claimNext, finishRun, heartbeat, reclaimRuns } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { FakeClock, tempDir, testConfig } from '../support/helpers.ts';

function queued(t: TestContext, n: number) {
  const home = tempDir(t);
  const clock = new FakeClock();
  const config = testConfig(home, { intake: { settleSeconds: 0 } });
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const at = clock.now().toISOString();
  for (let i = 0; i < n; i++) {
    intake.accept([
      {
        source: 'manual',
        kind: 'error',
        title: `bug ${i}`,
        message: `Error: distinct failure number ${'abcdefghij'[i]}`,
        labels: i === 1 ? { severity: 'critical' } : {},
        count: 1,
        firstSeen: at,
        lastSeen: at,
        human: true,
        sourceEventId: `m-${i}`,
      },
    ]);
  }
  return { store, clock, home };
}

test('claims go by priority, one ticket per claim, never twice', (t) => {
  const { store } = queued(t, 3);
  const first = claimNext(store, 1, 4101, 60)!;
  assert.equal(first.ticket.title, 'bug 1', 'the critical one first');
  const second = claimNext(store, 2, 4102, 60)!;
  const third = claimNext(store, 3, 4103, 60)!;
  assert.equal(claimNext(store, 4, 4104, 60), undefined);
  assert.equal(new Set([first.ticket.id, second.ticket.id, third.ticket.id]).size, 3);
  assert.equal(activeRuns(store).length, 3);
  assert.equal(store.getTicket(first.ticket.id)!.attempt, 1);
});

test('heartbeats extend the lease; an expired lease requeues with attempt + 1, then fails at the limit', (t) => {
  const { store, clock } = queued(t, 1);
  const c1 = claimNext(store, 1, null, 60)!;
  clock.advance(50);
  assert.equal(heartbeat(store, c1.run.id, 60, 'research'), true);
  clock.advance(50);
  assert.deepEqual(reclaimRuns(store, { maxAttempts: 2, onlyExpired: true, reason: 'lease expired' }), [], 'still leased');
  clock.advance(20);
  const lost = reclaimRuns(store, { maxAttempts: 2, onlyExpired: true, reason: 'lease expired' });
  assert.equal(lost.length, 1);
  assert.equal(lost[0]!.ticketState, 'queued');
  assert.equal(heartbeat(store, c1.run.id, 60), false, 'a lost run cannot heartbeat back to life');

  const c2 = claimNext(store, 1, null, 60)!;
  assert.equal(c2.ticket.id, c1.ticket.id);
  assert.equal(c2.run.attempt, 2);
  clock.advance(61);
  const lost2 = reclaimRuns(store, { maxAttempts: 2, onlyExpired: true, reason: 'lease expired' });
  assert.equal(lost2[0]!.ticketState, 'failed');
  const ticket = store.getTicket(c1.ticket.id)!;
  assert.equal(ticket.state, 'failed');
  assert.ok(store.auditTrail(ticket.id).some((a) => a.action === 'failed' && /attempt 2 of 2/.test(a.detail ?? '')));
});

test('reconciler on start treats every running run as orphaned', (t) => {
  const { store, home, clock } = queued(t, 2);
  claimNext(store, 1, null, 600);
  claimNext(store, 2, null, 600);
  store.close();
  const restarted = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => restarted.close());
  const out = reclaimRuns(restarted, { maxAttempts: 3, onlyExpired: false, reason: 'control plane restarted' });
  assert.equal(out.length, 2);
  assert.equal(activeRuns(restarted).length, 0);
  assert.equal(restarted.countByState().queued, 2);
});

test('finishing a run moves the ticket and records when it was pushed', (t) => {
  const { store } = queued(t, 1);
  const c = claimNext(store, 1, null, 60)!;
  finishRun(store, c.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'tests passed' });
  const ticket = store.getTicket(c.ticket.id)!;
  assert.equal(ticket.state, 'pushed');
  assert.ok(ticket.pushedAt);
  // Finishing twice is a no-op, not a second transition.
  finishRun(store, c.run.id, { ticketState: 'failed', outcome: 'failed', reason: 'late' });
  assert.equal(store.getTicket(c.ticket.id)!.state, 'pushed');
});

test('a cancel that came after the run pushed: the push stands (ticket pushed, run finished), and only then', (t) => {
  const { store } = queued(t, 2);
  const a = claimNext(store, 1, 4101, 60)!;
  assert.deepEqual(cancelTicket(store, a.ticket.id, 'cli'), { was: 'running', now: 'failed' });
  finishRun(store, a.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed to staging' });
  assert.equal(store.getTicket(a.ticket.id)!.state, 'failed', 'without overCancel the cancel stands');
  finishRun(store, a.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed to staging (it had pushed before the cancel took effect)' }, { overCancel: true });
  assert.equal(store.getTicket(a.ticket.id)!.state, 'pushed');
  assert.ok(store.getTicket(a.ticket.id)!.pushedAt);
  const run = store.stmt('SELECT state, outcome FROM runs WHERE id = ?').get(a.run.id) as { state: string; outcome: string };
  assert.deepEqual(run, { state: 'finished', outcome: 'clean' });
});

test("the queue's hot paths read their own index, not the table: the settle scheduler's two queries, a nonce prune", (t) => {
  const store = new Store(join(tempDir(t), 'bugbot.db'));
  t.after(() => store.close());
  // The statements the store runs, as it runs them, and SQLite's plan for each.
  const seen: string[] = [];
  const prepare = store.stmt.bind(store);
  store.stmt = (sql: string) => (seen.push(sql), prepare(sql));
  store.dueSettling('2026-01-01T00:00:00.000Z');
  store.nextSettleDeadline();
  store.useNonce('grafana', 'sig-1', 300);
  const plan = (sql: string) =>
    (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(sql.match(/\?/g) ?? []).map(() => null)) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
  const settle = seen.filter((q) => q.includes('settle_deadline'));
  assert.equal(settle.length, 2);
  for (const q of settle) assert.match(plan(q), /USING (COVERING )?INDEX tickets_settle/, q);
  const prune = seen.find((q) => q.startsWith('DELETE FROM nonces'))!;
  assert.match(plan(prune), /USING INDEX nonces_seen/);
});

test('a new home and its database are private: the folder 0700, the database and its WAL 0600', (t) => {
  const home = join(tempDir(t), 'fresh', 'home');
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  store.audit(null, 'test', 'write', 'the WAL exists now');
  assert.equal(statSync(home).mode & 0o777, 0o700);
  assert.equal(statSync(dirname(home)).mode & 0o777, 0o700, 'every folder it made');
  for (const f of ['bugbot.db', 'bugbot.db-wal', 'bugbot.db-shm']) assert.equal(statSync(join(home, f)).mode & 0o777, 0o600, f);
});
