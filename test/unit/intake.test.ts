import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test, type TestContext } from 'node:test';
import { Intake } from '../../control/intake/index.ts';
import { createRedactor } from '../../lib/redact.ts';
import { SettleScheduler } from '../../control/intake/settle.ts';
import { silentLogger } from '../../control/log.ts';
import { finishRun, claimNext } from '../../control/queue/leases.ts';
import { SCHEMA_VERSION } from '../../control/queue/migrations.ts';
import { Store } from '../../control/queue/store.ts';
import type { TriggerEvent } from '../../control/types.ts';
import { mentionEvent } from '../../control/triggers/slack-thread.ts';
import type { ConfigFile } from '../../control/config.ts';
import { alertEvent, FakeClock, tempDir, testConfig } from '../support/helpers.ts';

const execFileAsync = promisify(execFile);

function setup(t: TestContext, flags: ConfigFile = {}) {
  const home = tempDir(t);
  const clock = new FakeClock();
  const config = testConfig(home, flags);
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor({ salt: 's' }) });
  return { home, clock, config, store, intake };
}

const alert = alertEvent;

// Review finding (clock jumps): a settle deadline is a time on the wall clock; stepped back
// ten minutes (NTP, a resumed VM), a ticket with a 30 s window waited out the step too.
test('a settle deadline further ahead than any window sets (the clock stepped back) is due now; one within a window is not', (t) => {
  const { intake, store, clock } = setup(t, { intake: { settleSeconds: 30 } });
  const [before] = intake.accept([alert()]);
  clock.advance(-600);
  const [after] = intake.accept([alertEvent({ title: 'TypeError: other is undefined', message: 'TypeError: other is undefined' })]);
  assert.notEqual(before!.ticketId, after!.ticketId);
  clock.advance(1);
  assert.equal(intake.settleDue(), 1, 'the one set before the step');
  assert.equal(store.getTicket(before!.ticketId!)!.state, 'queued');
  assert.equal(store.getTicket(after!.ticketId!)!.state, 'settling', 'the one set after it waits its 30 s');
  clock.advance(30);
  assert.equal(intake.settleDue(), 1);
});

// Review finding (clock jumps): the settle cap is a time on the wall clock too; stepped back
// an hour, an error recurring every 20 s reset its 30 s window for the hour as well, and
// reached the queue after 65 minutes instead of the cap's 5.
test('a settle cap further ahead than any window sets (the clock stepped back) still ends the window of an error that keeps recurring', (t) => {
  // Both errors begin at the step's instant: no cascade holds the second in the first's.
  const { intake, store, clock } = setup(t, { intake: { settleSeconds: 30, settleCapSeconds: 300, cascadeSeconds: 0 } });
  const [first] = intake.accept([alert()]);
  const id = first!.ticketId!;
  // Stepped back an hour; the error recurs 20 s later.
  clock.advance(-3600 + 20);
  intake.accept([alert()]);
  assert.equal(intake.settleDue(), 1, 'its window is over');
  assert.equal(store.getTicket(id)!.state, 'queued');
  // Without a step, a recurring error is held up to its cap, not beyond.
  const [other] = intake.accept([alertEvent({ title: 'TypeError: other is undefined', message: 'TypeError: other is undefined' })]);
  for (let s = 0; s < 280; s += 20) {
    clock.advance(20);
    intake.accept([alertEvent({ title: 'TypeError: other is undefined', message: 'TypeError: other is undefined' })]);
    assert.equal(intake.settleDue(), 0, `${s + 20} s in`);
  }
  clock.advance(20);
  assert.equal(intake.settleDue(), 1, 'at its cap');
  assert.equal(store.getTicket(other!.ticketId!)!.state, 'queued');
});

test('1,000 alerts for one error with different ids → one ticket with count 1,000; another error → a second ticket', (t) => {
  const { intake, store } = setup(t);
  const events: TriggerEvent[] = [];
  for (let i = 0; i < 1000; i++) {
    const id = 1000 + i * 7;
    events.push(
      alert({
        route: `GET /api/pets/${id}`,
        message: `TypeError: Cannot read properties of undefined (reading "owner") for pet ${id} request 7f3a${i.toString(16)}e2`,
      }),
    );
  }
  events.push(alert({ message: 'RangeError: Maximum call stack size exceeded', route: 'POST /api/orders' }));
  intake.accept(events);
  const tickets = store.listTickets();
  assert.equal(tickets.length, 2);
  const pets = tickets.find((x) => x.route?.startsWith('GET'))!;
  assert.equal(pets.count, 1000);
  assert.equal(store.occurrences(pets.id, 2000).length, 1000);
});

test('settle window: stored deadline, reset per occurrence, capped; the ticket is triaged when it closes', (t) => {
  const { intake, store, clock } = setup(t, { intake: { settleSeconds: 30, settleCapSeconds: 60 } });
  const [first] = intake.accept([alert()]);
  assert.equal(first!.status, 'created');
  assert.equal(first!.state, 'settling');
  const id = first!.ticketId!;
  assert.equal(store.getTicket(id)!.settleDeadline, '2026-11-21T10:00:30.000Z');

  clock.advance(20);
  intake.accept([alert()]); // resets to now + 30
  assert.equal(store.getTicket(id)!.settleDeadline, '2026-11-21T10:00:50.000Z');
  clock.advance(25);
  intake.accept([alert()]); // would be 10:01:15, capped at first + 60 = 10:01:00
  assert.equal(store.getTicket(id)!.settleDeadline, '2026-11-21T10:01:00.000Z');

  assert.equal(intake.settleDue(), 0, 'not due yet');
  clock.advance(16);
  assert.equal(intake.settleDue(), 1);
  const ticket = store.getTicket(id)!;
  assert.equal(ticket.count, 3);
  assert.equal(ticket.state, 'queued');
  assert.match(ticket.triageReason!, /severity high/);
});

// Review finding: the due list is read outside the transaction that settles, and the
// writer thread (another connection) may commit an occurrence in between that moves the
// deadline; the ticket was triaged early all the same.
test('a ticket whose deadline moved after it was found due is not settled early', (t) => {
  const { intake, store, clock } = setup(t);
  const [first] = intake.accept([alert()]);
  const id = first!.ticketId!;
  clock.advance(31);
  // Found due; then, before the settling transaction, an occurrence moves the deadline.
  const due = store.dueSettling(store.nowIso(), 100);
  assert.deepEqual(due.map((d) => d.id), [id]);
  intake.accept([alert()]);
  const dueSettling = store.dueSettling.bind(store);
  let calls = 0;
  store.dueSettling = (now: string, limit: number) => (calls++ === 0 ? due : dueSettling(now, limit));
  assert.equal(intake.settleDue(), 0);
  assert.equal(store.getTicket(id)!.state, 'settling');
  clock.advance(31);
  assert.equal(intake.settleDue(), 1, 'due at its new deadline');
});

test('settle deadlines survive a restart of the store', (t) => {
  const { intake, store, clock, config, home } = setup(t);
  const [r] = intake.accept([alert()]);
  store.close();
  const reopened = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => reopened.close());
  const intake2 = new Intake({ store: reopened, config, redactor: createRedactor() });
  clock.advance(31);
  const scheduler = new SettleScheduler({ store: reopened, intake: intake2, logger: silentLogger });
  assert.equal(scheduler.tick(), 1);
  assert.equal(reopened.getTicket(r!.ticketId!)!.state, 'queued');
});

test('triage: ignore rules drop, low severity defers until occurrences raise it', (t) => {
  const { intake, store, clock } = setup(t, {
    triage: { ignore: [{ pattern: 'ECONNRESET.*stripe', reason: 'third-party outage' }] },
  });
  const [ignored] = intake.accept([alert({ message: 'Error: read ECONNRESET api.stripe.com', route: 'POST /pay' })]);
  const [quiet] = intake.accept([alert({ message: 'Slow thumbnail render', title: 'thumbnail', route: 'GET /thumbs/1' })]);
  clock.advance(31);
  intake.settleDue();
  const dropped = store.getTicket(ignored!.ticketId!)!;
  assert.equal(dropped.state, 'dropped');
  assert.match(dropped.triageReason!, /third-party outage/);
  const deferred = store.getTicket(quiet!.ticketId!)!;
  assert.equal(deferred.state, 'deferred');
  assert.match(deferred.triageReason!, /below the minimum medium/);
  // Two more occurrences: count 3 reaches the medium threshold, re-triaged at once.
  intake.accept([alert({ message: 'Slow thumbnail render', title: 'thumbnail', route: 'GET /thumbs/2' })]);
  const [third] = intake.accept([alert({ message: 'Slow thumbnail render', title: 'thumbnail', route: 'GET /thumbs/3' })]);
  assert.equal(third!.status, 'merged');
  assert.equal(third!.state, 'queued');
  // A dropped fingerprint recurring stays dropped, counted.
  const [again] = intake.accept([alert({ message: 'Error: read ECONNRESET api.stripe.com', route: 'POST /pay' })]);
  assert.equal(again!.ticketId, ignored!.ticketId);
  assert.equal(again!.state, 'dropped');
});

test('dedupe against open tickets, then a recurrence after the fix is a linked regression', (t) => {
  const { intake, store, clock, config } = setup(t);
  const [a] = intake.accept([alert()]);
  clock.advance(31);
  intake.settleDue();
  const [dup] = intake.accept([alert({ route: 'GET /api/pets/77' })]);
  assert.equal(dup!.status, 'merged');
  assert.equal(dup!.ticketId, a!.ticketId);

  const claim = claimNext(store, 1, 4101, 60)!;
  assert.equal(claim.ticket.id, a!.ticketId);
  finishRun(store, claim.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'fixed' });

  // Within the grace period after the push: old code still deployed, no regression.
  clock.advance(60);
  const [lag] = intake.accept([alert({ firstSeen: clock.now().toISOString(), lastSeen: clock.now().toISOString() })]);
  assert.equal(lag!.status, 'merged');
  assert.equal(store.getTicket(a!.ticketId!)!.state, 'pushed');

  clock.advance(config.triage.regressionGraceSeconds + 60);
  const [reg] = intake.accept([alert({ firstSeen: clock.now().toISOString(), lastSeen: clock.now().toISOString() })]);
  assert.equal(reg!.status, 'regression');
  assert.notEqual(reg!.ticketId, a!.ticketId);
  assert.equal(store.getTicket(reg!.ticketId!)!.regressionOf, a!.ticketId);
  assert.equal(store.getTicket(a!.ticketId!)!.state, 'regressed');
  assert.deepEqual(store.relatedTickets(a!.ticketId!), [{ id: reg!.ticketId, relation: 'regressed_by', state: 'settling' }]);
});

// Review finding: an alert that kept firing through its fix was only ever re-sent under its
// first key (Alertmanager's and Grafana's repeat interval), a duplicate: the fix that did
// not stop it counted as held, and no ticket took the error up again.
test('an alert still firing past the fix\'s grace period is a regression, once per fix; its resolution then ends the new ticket\'s alert', (t) => {
  const { intake, store, clock, config } = setup(t);
  const now = () => clock.now().toISOString();
  const [a] = intake.accept([alert({ sourceEventId: 'fp9:start', lastSeen: now() })]);
  clock.advance(31);
  intake.settleDue();
  const claim = claimNext(store, 1, 4101, 60)!;
  finishRun(store, claim.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'fixed' });

  // Re-sent within the grace period: the old code may still run; a duplicate.
  clock.advance(60);
  const [lag] = intake.accept([alert({ sourceEventId: 'fp9:start', lastSeen: now() })]);
  assert.deepEqual([lag!.status, store.getTicket(a!.ticketId!)!.state], ['duplicate', 'pushed']);

  // Re-sent after it (the repeat interval): the fix did not stop it.
  clock.advance(config.triage.regressionGraceSeconds + 60);
  const [again] = intake.accept([alert({ sourceEventId: 'fp9:start', lastSeen: now() })]);
  assert.equal(again!.status, 'regression');
  assert.equal(store.getTicket(again!.ticketId!)!.regressionOf, a!.ticketId);
  assert.equal(store.getTicket(a!.ticketId!)!.state, 'regressed');
  const tickets = store.listTickets().length;

  // And again: once per fix.
  clock.advance(4 * 3600);
  const [repeat] = intake.accept([alert({ sourceEventId: 'fp9:start', lastSeen: now() })]);
  assert.equal(repeat!.status, 'duplicate');
  assert.equal(store.listTickets().length, tickets);

  // Its resolution goes to the new ticket, and ends that ticket's alert.
  const [r] = intake.accept([alert({ sourceEventId: 'fp9:start:resolved', status: 'resolved', lastSeen: now() })]);
  assert.deepEqual([r!.status, r!.ticketId, r!.reason], ['resolved', again!.ticketId, 'alert resolved']);
  assert.equal(store.getTicket(again!.ticketId!)!.alertResolvedAt, now());
});

// Review finding: two pods' alerts for one error (two keys) both firing through its fix:
// the first one re-sent past the grace opened the regression, the second's re-sends were
// duplicates of its key on the fixed ticket, never counted on the regression, and its
// resolution ended nothing there.
test("a second alert key firing through the fix joins the regression its first key opened, and its resolution counts there", (t) => {
  const { intake, store, clock, config } = setup(t);
  const now = () => clock.now().toISOString();
  const [a] = intake.accept([alert({ sourceEventId: 'pod-a:start', lastSeen: now() }), alert({ sourceEventId: 'pod-b:start', lastSeen: now() })]);
  clock.advance(31);
  intake.settleDue();
  const claim = claimNext(store, 1, 4101, 60)!;
  finishRun(store, claim.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'fixed' });

  clock.advance(config.triage.regressionGraceSeconds + 60);
  const [first] = intake.accept([alert({ sourceEventId: 'pod-a:start', lastSeen: now() })]);
  assert.equal(first!.status, 'regression');
  const reg = first!.ticketId!;
  const count = store.getTicket(reg)!.count;

  const [second] = intake.accept([alert({ sourceEventId: 'pod-b:start', lastSeen: now() })]);
  assert.deepEqual([second!.status, second!.ticketId], ['merged', reg], 'pod b counts on the regression');
  assert.equal(store.getTicket(reg)!.count, count + 1);
  const [again] = intake.accept([alert({ sourceEventId: 'pod-b:start', lastSeen: now() })]);
  assert.equal(again!.status, 'duplicate', 'once per fix, as the first key');
  assert.equal(store.getTicket(reg)!.count, count + 1);
  assert.equal(store.getTicket(a!.ticketId!)!.state, 'regressed');

  // Pod a resolves: pod b still fires on the regression. Then pod b resolves: it is quiet.
  const [ra] = intake.accept([alert({ sourceEventId: 'pod-a:start:resolved', status: 'resolved', lastSeen: now() })]);
  assert.deepEqual([ra!.ticketId, ra!.reason], [reg, 'alert resolved; other alerts of this ticket still fire']);
  const [rb] = intake.accept([alert({ sourceEventId: 'pod-b:start:resolved', status: 'resolved', lastSeen: now() })]);
  assert.deepEqual([rb!.ticketId, rb!.reason], [reg, 'alert resolved']);
  assert.equal(store.getTicket(reg)!.alertResolvedAt, now());
});

test('a person wins: their report joins the bot ticket and gets it acted on; a claim keeps the bot off', (t) => {
  const { intake, store, clock } = setup(t);
  const [bot] = intake.accept([alert({ message: 'Slow thumbnail render', title: 'thumbnail', route: 'GET /thumbs/1' })]);
  clock.advance(31);
  intake.settleDue();
  assert.equal(store.getTicket(bot!.ticketId!)!.state, 'deferred');
  const [human] = intake.accept([
    alert({
      source: 'manual',
      human: true,
      message: 'Slow thumbnail render',
      title: 'thumbnail',
      route: 'GET /thumbs/9',
      reporter: { kind: 'email', id: 'ann@example.com', address: 'ann@example.com' },
    }),
  ]);
  assert.equal(human!.ticketId, bot!.ticketId);
  assert.equal(human!.state, 'queued');
  const ticket = store.getTicket(bot!.ticketId!)!;
  assert.equal(ticket.human, true);
  assert.equal(ticket.reporters.length, 1);

  const r = intake.claim(ticket.id, 'alice');
  assert.equal(r.state, 'deferred');
  assert.match(r.reason, /claimed by alice/);
  assert.equal(claimNext(store, 1, null, 60), undefined, 'a claimed ticket is never dispatched');
  assert.equal(intake.claim(ticket.id, 'bob', { forced: true }).state, 'deferred');
  assert.equal(intake.claim(ticket.id, 'carol', { release: true, forced: true }).state, 'queued');
  // The history says who did what (a release or a takeover too).
  const history = store.auditTrail(ticket.id).map((a) => [a.actor, a.action, a.detail]);
  assert.deepEqual(history.filter(([, action]) => action === 'claimed-by-person' || action === 'unclaimed'), [
    ['alice', 'claimed-by-person', null],
    ['bob', 'claimed-by-person', "over alice's claim"],
    ['carol', 'unclaimed', "over bob's claim"],
  ]);
});

// Review finding: every occurrence of a claimed (or otherwise deferred) ticket decided it
// again and wrote a row to its trail: a claimed alert storm grew the audit table without
// end, and the ticket page read it all.
test('a deferred ticket decided again at each occurrence records the decision once', (t) => {
  const { intake, store, clock } = setup(t);
  const [first] = intake.accept([alert()]);
  clock.advance(31);
  intake.settleDue();
  const id = first!.ticketId!;
  assert.equal(intake.claim(id, 'alice').state, 'deferred');
  const trail = () => store.auditTrail(id).filter((a) => a.actor === 'triage').length;
  const before = trail();
  const results = intake.accept(Array.from({ length: 100 }, () => alert()));
  assert.ok(results.every((r) => r.status === 'merged' && r.state === 'deferred' && /claimed by alice/.test(r.reason ?? '')));
  assert.equal(store.getTicket(id)!.count, 101);
  assert.equal(trail(), before, 'no triage row per occurrence');
  // A decision that changes is recorded.
  intake.claim(id, 'alice', { release: true });
  assert.equal(trail(), before + 1);
});

test('a held report is triaged when its thread is read, on the thread; one whose thread never comes, at its hold\'s end', (t) => {
  const { intake, store, clock } = setup(t, { intake: { settleSeconds: 0 } });
  const report = (id: string, message: string) =>
    alert({ source: 'slack', kind: 'report', human: true, title: message, message, sourceEventId: id, reporter: { kind: 'slack', id: 'U1', thread: `C1:${id}` } });
  const [a] = intake.accept([report('m1', 'what is going on here?')], { holdSeconds: 90 });
  assert.equal(a!.state, 'settling', 'held, even with no settle window');
  const decided = intake.threadRead(a!.ticketId!, '<@U2>: TypeError: Cannot read properties of undefined (reading "total")\n<@U1>: what is going on here?');
  assert.equal(decided.state, 'queued');
  assert.equal(store.getTicket(a!.ticketId!)!.classification, 'bug');
  // Read again later (decided by then): the text is kept, the decision and classification stand.
  intake.threadRead(a!.ticketId!, 'thanks!');
  assert.deepEqual([store.getTicket(a!.ticketId!)!.state, store.getTicket(a!.ticketId!)!.classification], ['queued', 'bug']);

  const [b] = intake.accept([report('m2', 'checkout shows a blank page for everyone')], { holdSeconds: 90 });
  clock.advance(60);
  assert.equal(intake.settleDue(), 0);
  clock.advance(31);
  assert.equal(intake.settleDue(), 1, 'decided on the mention once the hold is over');
  assert.equal(store.getTicket(b!.ticketId!)!.state, 'queued');
});

// Review finding: a second mention in the thread (or any person's report of the same
// thing) while the first waited for its thread decided the ticket at once, on the mention
// alone ("what is going on here?": dropped as a question), and moved its deadline to the
// settle window's: the thread read after it changed nothing.
test('a report joining a held report leaves it waiting for its thread', (t) => {
  const { intake, store, clock } = setup(t, { intake: { settleSeconds: 0 } });
  const mention = (eventId: string, user: string, ts: string, text: string) =>
    mentionEvent({ eventId, user, text: `<@UBOT> ${text}`, channel: 'C1', ts, threadTs: '1700000000.000100' }, { userId: 'UBOT' }, clock.now());
  const [a] = intake.accept([mention('Ev1', 'U1', '1700000001.000100', 'what is going on here?')], { holdSeconds: 90 });
  const [b] = intake.accept([mention('Ev2', 'U2', '1700000002.000100', 'hello??')], { holdSeconds: 90 });
  assert.deepEqual([b!.status, b!.ticketId, b!.state], ['merged', a!.ticketId, 'settling']);
  clock.advance(1);
  assert.equal(intake.settleDue(), 0, 'still held');
  const decided = intake.threadRead(a!.ticketId!, '<@U3>: TypeError: Cannot read properties of undefined (reading "total")\n<@U1>: what is going on here?\n<@U2>: hello??');
  assert.equal(decided.state, 'queued');
  assert.equal(store.getTicket(a!.ticketId!)!.classification, 'bug');
  assert.equal(store.getTicket(a!.ticketId!)!.reporters.length, 2);
});

// Review finding: a held report kept nothing of what its holder needed, so a Slack mention
// held when bugbot was stopped or killed was triaged on the mention alone when its hold
// ended, its thread never read and nobody answered (test/http/slack.test.ts).
test("a held report keeps its holder's note with the ticket it opens until the holder releases it; a restart holds it again while it waits", (t) => {
  const { intake, store, clock } = setup(t, { intake: { settleSeconds: 0 } });
  const mention = (eventId: string, user: string, ts: string, text: string) =>
    mentionEvent({ eventId, user, text: `<@UBOT> ${text}`, channel: 'C1', ts, threadTs: '1700000000.000100' }, { userId: 'UBOT' }, clock.now());
  const holdNote = (ts: string) => ({ source: 'slack', note: { channel: 'C1', ts } });
  const [a] = intake.accept([mention('Ev1', 'U1', '1700000001.000100', 'what is going on here?')], { holdSeconds: 90, holdNote: holdNote('1') });
  // Joining it, or not held: no note of their own.
  const [b] = intake.accept([mention('Ev2', 'U2', '1700000002.000100', 'hello??')], { holdSeconds: 90, holdNote: holdNote('2') });
  assert.equal(b!.ticketId, a!.ticketId);
  const [c] = intake.accept([alert({ source: 'slack', kind: 'report', human: true, title: 'the cart page 500s', message: 'the cart page 500s', sourceEventId: 'Ev3' })], { holdNote: holdNote('3') });
  assert.notEqual(c!.ticketId, a!.ticketId);
  assert.deepEqual(store.heldReports('slack'), [{ ticketId: a!.ticketId, note: { channel: 'C1', ts: '1' } }]);
  assert.deepEqual(store.heldReports('email'), []);

  // A start after its hold ended: it waits again, from then.
  clock.advance(600);
  assert.equal(store.holdAgain(a!.ticketId!, new Date(clock.now().getTime() + 90_000).toISOString()), true);
  assert.equal(intake.settleDue(), 0, 'held again');
  assert.equal(intake.threadRead(a!.ticketId!, '<@U3>: TypeError: Cannot read properties of undefined (reading "total")\n<@U1>: what is going on here?').state, 'queued');
  assert.equal(store.holdAgain(a!.ticketId!, clock.now().toISOString()), false, 'decided: not held again');
  assert.equal(store.heldReports('slack').length, 1, 'kept until its reporter is answered');
  store.releaseHeldReport(a!.ticketId!);
  assert.deepEqual(store.heldReports('slack'), []);
});

test('migration 14 gives a database of schema 13 its held reports, none', (t) => {
  const { home, store } = setup(t);
  store.db.exec('DROP TABLE held_reports; PRAGMA user_version = 13;');
  store.close();
  const again = new Store(join(home, 'bugbot.db'));
  t.after(() => again.close());
  assert.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(SCHEMA_VERSION, 17);
  assert.deepEqual(again.heldReports('slack'), []);
});

test('free-text reports are classified; a feature request is not acted on, with the reason', (t) => {
  const { intake } = setup(t);
  const [r] = intake.accept([
    alert({
      source: 'slack',
      kind: 'report',
      human: true,
      title: 'idea',
      message: 'Feature request: it would be great to have dark mode on the dashboard',
      route: undefined,
    }),
  ]);
  assert.equal(r!.state, 'dropped');
  assert.equal(r!.reason, 'classified as feature, not a bug (asks for something new, asks for a capability)', 'and what it read');
  const [bug] = intake.accept([
    alert({ source: 'slack', kind: 'report', human: true, title: 'checkout broken', message: 'Checkout fails with a 500 since the deploy', route: undefined }),
  ]);
  assert.equal(bug!.state, 'queued');
});

// Review finding: every decision on a classified report said it "reads as a bug", a
// question claimed by a person too; and a dropped one never said what it read.
test('a report that reads as a question is not said to read as a bug when a claim defers it', (t) => {
  const { intake, store } = setup(t, { intake: { settleSeconds: 0 } });
  const [a] = intake.accept(
    [alert({ source: 'slack', kind: 'report', human: true, title: 'what is going on here?', message: 'what is going on here?', route: undefined, reporter: { kind: 'slack', id: 'U1', thread: 'C1:1.1' } })],
    { holdSeconds: 90 },
  );
  assert.equal(store.getTicket(a!.ticketId!)!.classification, 'question');
  const claimed = intake.claim(a!.ticketId!, 'alice');
  assert.deepEqual(claimed, { state: 'deferred', reason: 'claimed by alice: a person is on it' });
  assert.equal(intake.claim(a!.ticketId!, 'alice', { release: true }).reason, 'classified as question, not a bug (asks a question)');
});

test('secrets and emails are redacted before anything is stored', (t) => {
  const { intake, store } = setup(t);
  intake.accept([
    alert({
      message: 'login failed for bob@example.com password=hunter2 token ghp_abcdefghijklmnopqrstuvwxyz123456',
      labels: { db: 'postgres://admin:s3cret@db:5432/app' },
    }),
  ]);
  const row = store.db.prepare('SELECT event_json FROM events').get() as { event_json: string };
  const ticket = store.listTickets()[0]!;
  for (const text of [row.event_json, ticket.message, JSON.stringify(ticket.labels)]) {
    assert.doesNotMatch(text, /hunter2|bob@example\.com|ghp_abc|s3cret/);
  }
  assert.match(ticket.message, /<email:[0-9a-f]{12}>/);
});

test('the default ignore rule ^Watchdog$ drops the alerting heartbeat (^ and $ are a line\'s ends in service, title, message)', (t) => {
  const { intake, store, clock } = setup(t);
  const heartbeat = (service?: string) => alert({ service, title: 'Watchdog', message: 'Watchdog', labels: { alertname: 'Watchdog' }, route: undefined });
  intake.accept([heartbeat(undefined), heartbeat('prometheus')]);
  clock.advance(31);
  intake.settleDue();
  const tickets = store.listTickets();
  assert.equal(tickets.length, 2);
  for (const tk of tickets) {
    assert.equal(tk.state, 'dropped', tk.triageReason ?? '');
    assert.match(tk.triageReason ?? '', /^ignored: alerting heartbeat/);
  }
});

test('claiming or releasing a ticket that awaits approval or needs a person keeps its state (triage does not decide those)', (t) => {
  const { intake, store, clock } = setup(t);
  for (const state of ['awaiting_approval', 'needs_human'] as const) {
    const [r] = intake.accept([alert({ message: `Error: ${state} broke`, title: state })]);
    clock.advance(31);
    intake.settleDue();
    store.setState(r!.ticketId!, state);
    assert.equal(intake.claim(r!.ticketId!, 'alice').state, state);
    assert.equal(intake.claim(r!.ticketId!, 'alice', { release: true }).state, state);
    assert.equal(store.getTicket(r!.ticketId!)!.state, state);
  }
});

test('a person reporting a just-fixed error (within the grace period) is recorded as its reporter, to hear what becomes of the fix', (t) => {
  const { intake, store, clock } = setup(t);
  const [r] = intake.accept([alert()]);
  clock.advance(31);
  intake.settleDue();
  store.db.prepare("UPDATE tickets SET state = 'pushed', pushed_at = ? WHERE id = ?").run(store.nowIso(), r!.ticketId);
  clock.advance(60);
  const at = store.nowIso();
  const [m] = intake.accept([alert({ source: 'slack', human: true, firstSeen: at, lastSeen: at, reporter: { kind: 'slack', id: 'U1', thread: 'C1:1.1' } })]);
  assert.equal(m!.reason, 'seen within the grace period after the fix');
  assert.equal(store.listTickets().length, 1, 'no new ticket');
  assert.equal(store.getTicket(r!.ticketId!)!.reporters.length, 1);
});

test('a resolved alert is no occurrence; firing again clears the resolution, even in the same batch', (t) => {
  const { intake, store } = setup(t);
  const [r] = intake.accept([alert({ sourceEventId: 'a:1' })]);
  const id = r!.ticketId!;
  intake.accept([alert({ sourceEventId: 'a:1:resolved', status: 'resolved', lastSeen: '2026-11-21T10:01:00.000Z' })]);
  assert.equal(store.getTicket(id)!.count, 1);
  assert.equal(store.occurrences(id).length, 1, 'the resolution is not drawn as an occurrence');
  assert.ok(store.getTicket(id)!.alertResolvedAt);
  intake.accept([alert({ sourceEventId: 'a:2' })]);
  assert.equal(store.getTicket(id)!.alertResolvedAt, null, 'firing again');
  // Firing, then resolved, in one batch: resolved it stays (a:2 resolved first).
  intake.accept([alert({ sourceEventId: 'a:2:resolved', status: 'resolved', lastSeen: '2026-11-21T10:04:00.000Z' })]);
  intake.accept([alert({ sourceEventId: 'a:3' }), alert({ sourceEventId: 'a:3:resolved', status: 'resolved', lastSeen: '2026-11-21T10:05:00.000Z' })]);
  assert.equal(store.getTicket(id)!.alertResolvedAt, '2026-11-21T10:05:00.000Z');
});

// Review finding: one alert resolving marked a ticket resolved that other alerts (other
// pods) still fired on, and their repeats, duplicates, never cleared it.
test('a ticket is resolved only when every alert on it has resolved; any of them firing again, a repeat too, reopens it', (t) => {
  const { intake, store, clock } = setup(t);
  const [a] = intake.accept([alert({ sourceEventId: 'pod-a:1', labels: { instance: 'pod-a' } }), alert({ sourceEventId: 'pod-b:1', labels: { instance: 'pod-b' } })]);
  const id = a!.ticketId!;
  assert.equal(store.listTickets().length, 1);
  clock.advance(60);
  const [r] = intake.accept([alert({ sourceEventId: 'pod-a:1:resolved', status: 'resolved', lastSeen: '2026-11-21T10:01:00.000Z' })]);
  assert.deepEqual([r!.ticketId, r!.reason], [id, 'alert resolved; other alerts of this ticket still fire']);
  assert.equal(store.getTicket(id)!.alertResolvedAt, null, 'pod-b still fires');
  clock.advance(60);
  const [repeat] = intake.accept([alert({ sourceEventId: 'pod-b:1', labels: { instance: 'pod-b' } })]);
  assert.equal(repeat!.status, 'duplicate');
  assert.equal(store.getTicket(id)!.alertResolvedAt, null);
  clock.advance(60);
  intake.accept([alert({ sourceEventId: 'pod-b:1:resolved', status: 'resolved', lastSeen: '2026-11-21T10:03:00.000Z' })]);
  assert.equal(store.getTicket(id)!.alertResolvedAt, '2026-11-21T10:03:00.000Z', 'every alert resolved');
  // pod-b fires again with the same startsAt (Alertmanager resends it so after a flap): a
  // duplicate event, but the ticket is open again, until that alert resolves once more.
  clock.advance(60);
  assert.equal(intake.accept([alert({ sourceEventId: 'pod-b:1', labels: { instance: 'pod-b' } })])[0]!.status, 'duplicate');
  assert.equal(store.getTicket(id)!.alertResolvedAt, null, 'a repeated firing reopens it');
  clock.advance(60);
  intake.accept([alert({ sourceEventId: 'pod-a:1:resolved', status: 'resolved' })]);
  assert.equal(store.getTicket(id)!.alertResolvedAt, null, "pod-a's resolution again says nothing of pod-b");
  intake.accept([alert({ sourceEventId: 'pod-b:1:resolved', status: 'resolved', lastSeen: '2026-11-21T10:06:00.000Z' })]);
  assert.equal(store.getTicket(id)!.alertResolvedAt, '2026-11-21T10:06:00.000Z');
  // A new alert (another pod) firing clears it as well.
  intake.accept([alert({ sourceEventId: 'pod-c:1', labels: { instance: 'pod-c' } })]);
  assert.equal(store.getTicket(id)!.alertResolvedAt, null);
});

// Review finding: the resolution was matched by a fingerprint of its own annotations, and
// Grafana resolves with other ones ({}, only __dashboardUid__/__panelId__, the figure
// rendered as "[no value]"): the resolution found no ticket, or another one.
test("a resolution goes to its firing event's ticket, whatever text it resolves with; the text decides only when no firing was seen", (t) => {
  const { intake, store } = setup(t);
  const [f] = intake.accept([alert({ sourceEventId: 'fp1:start', message: 'Checkout error rate is 7.31% (threshold 5%)', route: undefined, labels: { alertname: 'CheckoutErrors' } })]);
  const [r] = intake.accept([
    alert({ sourceEventId: 'fp1:start:resolved', status: 'resolved', message: 'CheckoutErrors', title: 'CheckoutErrors', route: undefined, labels: { alertname: 'CheckoutErrors' }, lastSeen: '2026-11-21T10:04:00.000Z' }),
  ]);
  assert.deepEqual([r!.ticketId, r!.fingerprint, r!.reason], [f!.ticketId, f!.fingerprint, 'alert resolved']);
  assert.equal(store.getTicket(f!.ticketId!)!.alertResolvedAt, '2026-11-21T10:04:00.000Z');
  // No firing event with its key (fired before retention, say): found by its text.
  const [old] = intake.accept([alert({ sourceEventId: 'elsewhere:resolved', status: 'resolved' })]);
  const pets = intake.accept([alert()])[0]!;
  assert.equal(pets.status, 'created', 'a new error');
  assert.equal(old!.ticketId, null, 'no ticket yet');
  const [later] = intake.accept([alert({ sourceEventId: 'gone:resolved', status: 'resolved' })]);
  assert.equal(later!.ticketId, pets.ticketId);
});

test('four processes opening one new home at once all get the migrated store (bugbot start and bugbot watch on a fresh home)', async (t) => {
  const open = `import { Store } from ${JSON.stringify(join(import.meta.dirname, '../../control/queue/store.ts'))}; new Store(process.argv[1]).close(); console.log('ok');`;
  for (let round = 0; round < 4; round++) {
    const path = join(tempDir(t), 'bugbot.db');
    const runs = Array.from({ length: 4 }, () => execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', open, path]).then((r) => r.stdout.trim(), (e: Error) => e.message));
    assert.deepEqual(await Promise.all(runs), ['ok', 'ok', 'ok', 'ok'], `round ${round}`);
  }
});

test('event times are stored in one format and within reason: unreadable, years-old or future times become now; first never after last', (t) => {
  const { intake, store, clock } = setup(t);
  const now = clock.now().toISOString();
  const cases: Array<[string, string, string, string]> = [
    // firstSeen, lastSeen → stored first, last
    ['+058859-05-16T16:00:00.000Z', '2026-11-21T09:59:00Z', '2026-11-21T09:59:00.000Z', '2026-11-21T09:59:00.000Z'],
    ['not a time', 'also not', now, now],
    ['2019-01-01T00:00:00Z', '2026-11-21T09:00:00+01:00', '2026-11-21T08:00:00.000Z', '2026-11-21T08:00:00.000Z'],
    ['2026-11-21T09:30:00.000Z', '2030-01-01T00:00:00Z', '2026-11-21T09:30:00.000Z', now],
  ];
  for (const [i, [first, last, wantFirst, wantLast]] of cases.entries()) {
    const [r] = intake.accept([alert({ message: `Error: case ${'abcd'[i]} failed`, firstSeen: first, lastSeen: last })]);
    const tk = store.getTicket(r!.ticketId!)!;
    assert.deepEqual([tk.firstSeen, tk.lastSeen], [wantFirst, wantLast], `case ${i}`);
  }
});

test('a queued ticket\'s severity and priority follow its occurrences and reporters (raised, never lowered); the decision stands', (t) => {
  const { intake, store, clock } = setup(t);
  const widget = (o: Partial<TriggerEvent> = {}) => alert({ title: 'Widget render failed', message: 'Widget render failed', labels: { severity: 'warning' }, ...o });
  const [r] = intake.accept([widget()]);
  clock.advance(31);
  intake.settleDue();
  const id = r!.ticketId!;
  const before = store.getTicket(id)!;
  assert.deepEqual([before.state, before.severity], ['queued', 'medium']);
  intake.accept(Array.from({ length: 600 }, () => widget()));
  const grown = store.getTicket(id)!;
  assert.deepEqual([grown.state, grown.count, grown.severity], ['queued', 601, 'critical']);
  assert.ok(grown.priority > before.priority);
  assert.match(store.auditTrail(id).at(-1)!.detail ?? '', /^medium → critical \(601 occurrences \(>= 500\)\)/);
  // A person reports it too: people before volume.
  const at = store.nowIso();
  intake.accept([widget({ source: 'slack', human: true, firstSeen: at, lastSeen: at, reporter: { kind: 'slack', id: 'U1', thread: 'C1:1.1' } })]);
  const reported = store.getTicket(id)!;
  assert.equal(reported.priority - grown.priority >= 500, true, `${grown.priority} → ${reported.priority}`);
  assert.equal(reported.state, 'queued');
});

// Review finding: each resolution read the ticket's events to see whether another alert
// still fired: 8,000 resolutions on one ticket took 5 s inside one transaction.
test('a batch of resolutions asks once per ticket whether its alerts still fire, and words every reply', (t) => {
  const { store, intake } = setup(t);
  intake.accept(Array.from({ length: 200 }, (_, i) => alert({ sourceEventId: `pod${i}:s` })));
  let asked = 0;
  const still = store.alertStillFiring.bind(store);
  store.alertStillFiring = (id: number) => (asked++, still(id));
  const some = intake.accept(Array.from({ length: 150 }, (_, i) => alert({ sourceEventId: `pod${i}:s:resolved`, status: 'resolved', lastSeen: '2026-11-21T10:05:00.000Z' })));
  assert.equal(asked, 1);
  assert.ok(some.every((r) => r.reason === 'alert resolved; other alerts of this ticket still fire'), some[0]!.reason ?? '');
  const rest = intake.accept(Array.from({ length: 50 }, (_, i) => alert({ sourceEventId: `pod${150 + i}:s:resolved`, status: 'resolved', lastSeen: '2026-11-21T10:06:00.000Z' })));
  assert.equal(asked, 2);
  assert.ok(rest.every((r) => r.reason === 'alert resolved'));
  assert.notEqual(store.getTicket(rest[0]!.ticketId!)!.alertResolvedAt, null, 'all of its alerts resolved');
});
