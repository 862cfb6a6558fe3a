/**
 * Slack mentions grouped by their thread (intake/fingerprint.ts 'report-thread',
 * Intake.inThread): what a later mention in a thread does to the thread's ticket, open or
 * fixed. Review findings: "thanks!" under a fixed thread marked the fix regressed and
 * started another run; the error pasted under "can you fix this?" opened a second ticket
 * while the first ran; "thanks!" itself read as a bug.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Intake } from '../../control/intake/index.ts';
import { claimNext, finishRun } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { mentionEvent } from '../../control/triggers/slack-thread.ts';
import { createRedactor } from '../../lib/redact.ts';
import { FakeClock, tempDir, testConfig } from '../support/helpers.ts';

const ERROR = "TypeError: Cannot read properties of undefined (reading 'owner') at petCard (src/pets.ts:42)";

function setup(t: TestContext) {
  const home = tempDir(t);
  const clock = new FakeClock();
  const config = testConfig(home, { triage: { regressionGraceSeconds: 600 } });
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor({ salt: 's' }) });
  let n = 0;
  /** A mention in thread `thread` of channel C1, as the Slack trigger files it. */
  const say = (thread: string, text: string) => {
    n++;
    const e = mentionEvent({ eventId: `Ev${n}`, user: 'U0ALICE', text: `<@UBOT> ${text}`, channel: 'C1', ts: `${thread}${String(n).padStart(4, '0')}`, threadTs: thread }, { userId: 'UBOT' }, store.now());
    return intake.accept([e])[0]!;
  };
  const push = (ticketId: number) => {
    const c = claimNext(store, 1, null, 600)!;
    assert.equal(c.ticket.id, ticketId);
    finishRun(store, c.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed to staging' });
  };
  return { clock, store, intake, say, push };
}

test('a thank-you is noise, not a bug: the title (the first line) is not read twice', (t) => {
  const { store, say } = setup(t);
  for (const words of ['thanks!', 'Thank you', 'thx']) {
    const r = say(`10${words.length}.0`, words);
    assert.equal(r.state, 'dropped', `${words}: ${r.reason}`);
    assert.equal(store.getTicket(r.ticketId!)!.classification, 'noise', words);
  }
});

test('"thanks!" or "still broken?" under a fixed thread is no regression: the fix stands, the mention is its own ticket', (t) => {
  const { clock, store, say, push } = setup(t);
  const first = say('1.0', 'the pet list page shows nothing, can you fix this?');
  push(first.ticketId!);
  clock.advance(3600);
  const thanks = say('1.0', 'thanks!');
  assert.equal(thanks.status, 'created');
  assert.equal(thanks.state, 'dropped', thanks.reason ?? '');
  const again = say('1.0', 'still broken for me?');
  assert.notEqual(again.status, 'regression');
  assert.equal(store.getTicket(first.ticketId!)!.state, 'pushed', 'the fix is not marked regressed');
  for (const r of [thanks, again]) assert.equal(store.getTicket(r.ticketId!)!.regressionOf, null);
});

test('the error quoted under a fixed thread is no recurrence of it either, when the thread first quoted it', (t) => {
  const { clock, store, say, push } = setup(t);
  const first = say('2.0', `the pet page crashes:\n${ERROR}`);
  push(first.ticketId!);
  clock.advance(3600);
  const later = say('2.0', 'it is still happening');
  assert.notEqual(later.status, 'regression');
  assert.notEqual(later.ticketId, first.ticketId);
  assert.equal(store.getTicket(first.ticketId!)!.state, 'pushed');
  // The error itself, reported again after the fix, is still a regression of it.
  const error = say('3.0', ERROR);
  assert.equal(error.status, 'regression');
  assert.equal(store.getTicket(error.ticketId!)!.regressionOf, first.ticketId);
});

test('within the grace period a follow-up joins the fixed ticket (its reporter is told of the fix)', (t) => {
  const { clock, say, push } = setup(t);
  const first = say('4.0', 'the pet list page shows nothing, can you fix this?');
  push(first.ticketId!);
  clock.advance(60);
  const r = say('4.0', 'is it live?');
  assert.equal(r.status, 'merged');
  assert.equal(r.ticketId, first.ticketId);
});

test('a follow-up in the thread of a fix that waits in a pull request not merged yet joins its ticket, however late', (t) => {
  const { clock, store, say, push } = setup(t);
  const first = say('4.5', `the pet page crashes:\n${ERROR}`);
  push(first.ticketId!);
  // What an approval that opened a pull request leaves (queue/approvals.ts): pushed, not live.
  store.stmt('UPDATE tickets SET pushed_at = NULL WHERE id = ?').run(first.ticketId!);
  clock.advance(3 * 86_400);
  const r = say('4.5', 'it is still happening');
  assert.deepEqual([r.status, r.ticketId], ['merged', first.ticketId]);
});

test('the error pasted under "can you fix this?" joins the thread\'s running ticket; a second error in the thread is its own', (t) => {
  const { store, say } = setup(t);
  const first = say('5.0', 'checkout is broken for me, can you fix this?');
  assert.equal(claimNext(store, 1, null, 600)!.ticket.id, first.ticketId);
  const error = say('5.0', `here is the error I get:\n${ERROR}`);
  assert.equal(error.status, 'merged');
  assert.equal(error.ticketId, first.ticketId);
  const other = say('6.0', `search fails:\nRangeError: Invalid time value at formatDate (src/dates.ts:14)`);
  const second = say('6.0', `and also:\n${ERROR}`);
  assert.notEqual(second.ticketId, other.ticketId, 'two errors, two tickets');
});

test('two mentions of one thread in one batch (one transaction) make one ticket, as they would one after the other', (t) => {
  const { store, intake } = setup(t);
  const mention = (n: number, text: string) =>
    mentionEvent({ eventId: `EvB${n}`, user: 'U0ALICE', text: `<@UBOT> ${text}`, channel: 'C1', ts: `7.000${n}`, threadTs: '7.0' }, { userId: 'UBOT' }, store.now());
  const [a, b] = intake.acceptMany([
    { events: [mention(1, 'checkout is broken for me, can you fix this?')], opts: {} },
    { events: [mention(2, `here is the error I get:\n${ERROR}`)], opts: {} },
  ]) as Array<Array<{ ticketId: number | null; status: string }>>;
  assert.equal(a![0]!.status, 'created');
  assert.equal(b![0]!.status, 'merged');
  assert.equal(b![0]!.ticketId, a![0]!.ticketId);
});
