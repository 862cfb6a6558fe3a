/**
 * Cascades (intake.cascadeSeconds), edge cases found in review: a claimed head whose fix
 * went live, members brought along by a head that joins an earlier cascade, ...
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderBrief } from '../../control/dispatcher/brief.ts';
import { cancelTicket, claimNext, finishRun } from '../../control/queue/leases.ts';
import { requeueTicket } from '../../control/queue/approvals.ts';
import { Store } from '../../control/queue/store.ts';
import type { TriggerEvent } from '../../control/types.ts';
import { cascadeSetup as setup } from '../support/cascade.ts';
import { repoRoot } from '../support/helpers.ts';

/** An Alertmanager alert that began at `at`: re-sent under the key it first had while it fires. */
const alertmanager = (at: string): Partial<TriggerEvent> => ({ source: 'alertmanager', sourceEventId: `fp-member:${at}`, firstSeen: at });

test('a held error that recurs after the fix of a head a person had claimed went live is decided on its own', (t) => {
  const { clock, store, intake, error, heldPair } = setup(t, { triage: { regressionGraceSeconds: 60 } });
  const { head, member } = heldPair();
  const run = claimNext(store, 1, 4001, 600)!;
  assert.equal(run.ticket.id, head);
  // A person takes the head while its run is under way (noted: the run goes on), and the run's fix goes live.
  intake.claim(head, 'alice');
  finishRun(store, run.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed to staging' });
  assert.equal(store.getTicket(head)!.state, 'pushed');
  clock.advance(120);
  error(2);
  assert.equal(store.getTicket(member)!.state, 'queued', 'the fix did not cure it: a bug of its own');
  assert.deepEqual(store.relatedTickets(member), []);
});

test('a head that joins an earlier cascade brings the severity of what it held: the earlier head, queued already, takes the worst', (t) => {
  const { clock, store, intake, error } = setup(t);
  const first = error(1).ticketId!;
  clock.advance(31);
  intake.settleDue();
  assert.deepEqual([store.getTicket(first)!.state, store.getTicket(first)!.severity], ['queued', 'high']);
  // 40 s after the first error, a second begins and keeps recurring (its window stays open)...
  clock.advance(9);
  const second = error(2).ticketId!;
  clock.advance(20);
  error(2);
  clock.advance(20);
  error(2);
  // ...and 50 s after it (90 s after the first: past the first's window) a critical one begins.
  clock.advance(10);
  const critical = error(3, { labels: { severity: 'critical' } }).ticketId!;
  clock.advance(10);
  error(2);
  clock.advance(21);
  intake.settleDue();
  assert.match(store.getTicket(critical)!.triageReason ?? '', new RegExp(`^held in the cascade of ticket ${second} `));
  clock.advance(10);
  intake.settleDue();
  // The second joins the first's cascade and brings the critical one with it.
  assert.equal(store.getTicket(second)!.state, 'deferred');
  assert.deepEqual(store.cascadeMembers(first).map((m) => m.id), [second, critical]);
  assert.equal(store.getTicket(first)!.severity, 'critical', 'the worst error held in its cascade is critical');
});

test("a held alert that keeps firing past the grace period after its head's fix went live is decided on its own", (t) => {
  const { clock, store, error, heldPair } = setup(t, { triage: { regressionGraceSeconds: 60 } });
  // Alertmanager's alert: re-sent (its repeat interval) under the key it first had while it fires.
  const { head, member, memberAt } = heldPair(alertmanager);
  const firing = () => error(2, alertmanager(memberAt));
  assert.equal(store.getTicket(member)!.state, 'deferred');
  const run = claimNext(store, 1, 4001, 600)!;
  assert.equal(run.ticket.id, head);
  finishRun(store, run.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed to staging' });
  clock.advance(30);
  assert.equal(firing().status, 'duplicate', 'within the grace period: the old code may still run');
  assert.equal(store.getTicket(member)!.state, 'deferred');
  clock.advance(120);
  const again = firing();
  assert.equal(again.state, 'queued', 'it fires on past the fix: the fix did not cure it');
  assert.equal(store.getTicket(member)!.state, 'queued');
  assert.equal(store.getTicket(member)!.count, 2);
  assert.equal(firing().status, 'duplicate', 'once per fix');
  assert.equal(store.getTicket(member)!.count, 2);
});

test('a held error cancelled (by another process) between the release scan and its transaction stays cancelled', (t) => {
  const { clock, store, intake, config, heldPair, endRun } = setup(t);
  const { head, member } = heldPair();
  assert.equal(endRun('failed'), head);
  // `bugbot cancel` in another process commits just after the scan read what to release.
  const other = new Store(join(config.home, 'bugbot.db'), { now: clock.now });
  t.after(() => other.close());
  const scan = store.cascadesReleased.bind(store);
  store.cascadesReleased = (limit: number, after?: number) => {
    const ids = scan(limit, after);
    if (ids.includes(member) && other.getTicketRow(member)!.state === 'deferred') cancelTicket(other, member, 'bob');
    return ids;
  };
  intake.settleDue();
  assert.equal(store.getTicket(member)!.state, 'dropped', "bob's cancel stands");
  assert.equal(intake.settleDue(), 0);
});

test("a head whose fix went live and then regressed lets go of nothing that has not recurred since the fix: each is decided when it recurs", (t) => {
  const { clock, store, intake, error, heldPair, endRun } = setup(t, { triage: { regressionGraceSeconds: 60 } });
  const { head, member } = heldPair();
  assert.equal(endRun('pushed'), head);
  // A week later the head's error comes back (a new change broke it again); the member's has not.
  clock.advance(7 * 86_400);
  const regression = error(1);
  assert.equal(regression.status, 'regression');
  assert.equal(store.getTicket(head)!.state, 'regressed');
  clock.advance(31);
  intake.settleDue();
  assert.equal(store.getTicket(member)!.state, 'deferred', 'not seen since the fix went live: no run for it');
  assert.equal(intake.settleDue(), 0, 'nothing to let go, nor to decide again at each pass');
  // It recurs: the fix did not cure it after all, and it is decided on its own.
  error(2);
  assert.equal(store.getTicket(member)!.state, 'queued');
  assert.equal(intake.settleDue(), 0);
});

test("a held alert that keeps firing after its head's fix went live and regressed is decided on its own", (t) => {
  const { clock, store, intake, error, heldPair, endRun } = setup(t, { triage: { regressionGraceSeconds: 60 } });
  const { member, memberAt } = heldPair(alertmanager);
  const firing = () => error(2, alertmanager(memberAt));
  endRun('pushed');
  clock.advance(3600);
  assert.equal(error(1).status, 'regression');
  clock.advance(31);
  intake.settleDue();
  assert.equal(store.getTicket(member)!.state, 'deferred');
  assert.equal(firing().state, 'queued', 'its alert fires on past the fix');
});

test("a held error that recurs after the fix of a head a person had claimed went live and regressed is decided on its own", (t) => {
  const { clock, store, intake, error, heldPair, endRun } = setup(t, { triage: { regressionGraceSeconds: 60 } });
  const { head, member } = heldPair();
  assert.equal(endRun('pushed'), head);
  // A person takes the fixed head to watch it (a claim outlives the fix).
  intake.claim(head, 'alice');
  clock.advance(3600);
  assert.equal(error(1).status, 'regression');
  assert.equal(store.getTicket(head)!.state, 'regressed');
  clock.advance(31);
  intake.settleDue();
  error(2);
  assert.equal(store.getTicket(member)!.state, 'queued', 'the fix did not cure it: a bug of its own');
});

test('a held error a person cancels leaves the cascade: requeued, it is not shown held', (t) => {
  const { store, heldPair } = setup(t);
  const { head, member } = heldPair();
  assert.equal(store.getTicket(member)!.state, 'deferred');
  cancelTicket(store, member, 'bob');
  assert.deepEqual(store.relatedTickets(member), [], 'no longer held');
  assert.deepEqual(store.relatedTickets(head), []);
  // bob meant another ticket: he asks for a run of this one, which is not "held in the cascade" of the head.
  assert.equal((requeueTicket(store, member, 'bob', 900) as { state: string }).state, 'queued');
  assert.deepEqual(store.relatedTickets(member), []);
  assert.deepEqual(store.cascadeMembers(head), []);
});

test('what a head held, moved into the earlier cascade it joins, names the ticket it is held in now', (t) => {
  const { clock, store, intake, error: report } = setup(t);
  const error = (n: string, over: Partial<TriggerEvent> = {}) => report(n, over).ticketId!;
  // b begins; c just after it, held in b's cascade while b keeps recurring; a began before
  // b, reported late (its first occurrence's time says so): b joins a's cascade, bringing c.
  const b = error('b');
  clock.advance(5);
  const c = error('c');
  clock.advance(15);
  error('b');
  clock.advance(16);
  intake.settleDue();
  assert.match(store.getTicket(c)!.triageReason ?? '', new RegExp(`^held in the cascade of ticket ${b} `));
  clock.advance(4);
  const early = new Date(clock.now().getTime() - 70_000).toISOString();
  const a = error('a', { firstSeen: early, lastSeen: early });
  clock.advance(11);
  intake.settleDue();
  clock.advance(20);
  intake.settleDue();
  assert.equal(store.getTicket(a)!.state, 'queued');
  assert.match(store.getTicket(b)!.triageReason ?? '', new RegExp(`^held in the cascade of ticket ${a} `));
  assert.match(store.getTicket(c)!.triageReason ?? '', new RegExp(`^held in the cascade of ticket ${a} `));
  assert.deepEqual(store.relatedTickets(c), [{ id: a, relation: 'cascade_of', state: 'queued' }]);
});

test('a head takes the worst severity of all it holds, past the first 50; the brief fences each held error as its own source', (t) => {
  const { clock, store, intake, error: report } = setup(t);
  const name = (i: number) => `${'abcdefghijklmnopqrstuvwxyz'[i % 26]}${'abcdefghijklmnopqrstuvwxyz'[Math.floor(i / 26)]}`;
  const error = (n: string, over: Partial<TriggerEvent> = {}) => report(n, over).ticketId!;
  const head = error('head');
  clock.advance(1);
  const held: number[] = [];
  for (let i = 0; i < 55; i++) held.push(error(`m${name(i)}`));
  const critical = error('crit', { labels: { severity: 'critical' } });
  const logged = error('logged', { source: 'logfile' });
  clock.advance(24);
  error('head');
  clock.advance(7);
  intake.settleDue();
  assert.equal(store.getTicket(critical)!.state, 'deferred');
  assert.equal(store.cascadeMembers(head, 1000).length, 57);
  clock.advance(30);
  intake.settleDue();
  const h = store.getTicket(head)!;
  assert.equal(h.state, 'queued');
  assert.equal(h.severity, 'critical', h.triageReason ?? '');
  const brief = renderBrief(join(repoRoot, 'prompts'), h, { cascade: store.cascadeMembers(head, 1000).filter((m) => m.id === logged) });
  assert.match(brief, new RegExp(`### Ticket ${logged}: <untrusted-data source="logfile">`));
  assert.match(brief, /<untrusted-data source="logfile">[\s\S]*Error: failure number logged in the pet lookup/);
});
