import assert from 'node:assert/strict';
import { appendFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ColumnChart } from '../../control/dashboard/charts.tsx';
import { OutcomesCache } from '../../control/dashboard/data.ts';
import { dayOf, matches, perDay, withoutFuture } from '../../control/dashboard/outcome-stats.ts';
import { Intake } from '../../control/intake/index.ts';
import { claimNext, finishRun, setRunProcess } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { nextRevision, OutcomeArchive, type OutcomeRow } from '../../control/outcomes/archive.ts';
import { recheckRegressions } from '../../control/outcomes/regression.ts';
import { inWindow, parseSince, pushedAt, reportJson, summarize, summaryNotes } from '../../control/outcomes/summary.ts';
import { createRedactor } from '../../lib/redact.ts';
import { FakeClock, tempDir, testConfig } from '../support/helpers.ts';

function row(over: Partial<OutcomeRow>): OutcomeRow {
  return {
    run_id: 1, ticket_id: 1, fingerprint: 'f', trigger_source: 'grafana', service: 's',
    started: '2026-11-21T10:00:00.000Z', finished: '2026-11-21T10:10:00.000Z', trigger_to_push_s: 600,
    stages: { research: { tokens: 100, tool_calls: 2, cost_usd: 0.01, duration_s: 3 }, implement: { tokens: 300, tool_calls: 5, cost_usd: 0.03, duration_s: 9 } },
    outcome: 'clean', state: 'pushed', reason: 'pushed to staging', branch: 'b', commit: 'c', pushed_to: 'staging',
    diff: { files: 1, insertions: 1, deletions: 1 }, tests: { passed: 5, failed: 0 }, cost_usd: 0.04, model: null,
    attempt: 1, worker: 1, denials: [], regressions_detected_24h: null, revision: 1, ...over,
  };
}

test('summary: rates, median time to push, cost per ticket and per clean fix, tokens per stage', () => {
  const s = summarize([
    row({ run_id: 1, ticket_id: 1 }),
    row({ run_id: 2, ticket_id: 2, outcome: 'messy', trigger_to_push_s: 1200, cost_usd: 0.08 }),
    row({ run_id: 3, ticket_id: 3, outcome: 'failed', trigger_to_push_s: null, pushed_to: null, cost_usd: 0.02 }),
  ]);
  assert.equal(s.runs, 3);
  assert.deepEqual(s.rates, { clean: 0.333, messy: 0.333, failed: 0.333 });
  assert.equal(s.medianTriggerToPushS, 900);
  assert.equal(s.costPerTicketUsd, 0.0467);
  assert.equal(s.costPerCleanFixUsd, 0.14);
  assert.deepEqual(s.tokensPerStage, { research: 300, implement: 900 });
  assert.equal(parseSince('7d'), 7 * 86_400_000);
  assert.throws(() => parseSince('soon'), /duration like/);
  assert.throws(() => parseSince('0d'), /duration like/, 'an empty window is a mistake, not an empty report');
});

test('the archive keeps the latest revision; a torn last line is skipped', (t) => {
  const home = tempDir(t);
  const a = new OutcomeArchive(home);
  a.append(row({}));
  a.append(row({ revision: 2, regressions_detected_24h: false }));
  appendFileSync(join(home, 'outcomes.jsonl'), '{"run_id": 9, "tic');
  assert.equal(a.readAll().length, 2);
  assert.deepEqual(a.latest().map((r) => r.revision), [2]);
});

test('a row appended after a torn line stays whole; lines that are not rows are counted, not fatal', (t) => {
  const home = tempDir(t);
  const a = new OutcomeArchive(home);
  a.append(row({ run_id: 1 }));
  appendFileSync(join(home, 'outcomes.jsonl'), '{"run_id": 2, "ticket_id": 2, "fing');
  a.append(row({ run_id: 3, outcome: 'messy' }));
  appendFileSync(join(home, 'outcomes.jsonl'), 'null\n[1]\n"text"\n{"no_run_id": true}\n');
  a.append(row({ run_id: 4 }));
  const { rows, skipped } = a.read();
  assert.deepEqual(rows.map((r) => r.run_id), [1, 3, 4]);
  assert.equal(skipped, 5);
  assert.equal(summarize(a.latest()).messy, 1);
});

test('denials an older harness archived with the call input are read back reduced and redacted', (t) => {
  const home = tempDir(t);
  const old = { ...row({}), denials: [{ phase: 'implement', by: 'hook', tool: 'Write', reason: 'protected path', input: { file_path: '.env', content: 'STRIPE_SECRET_KEY=sk_live_51HqLyjWDarjtT1zdp7dcXYZabc\nDATABASE_URL=postgres://admin:hunter2@db/prod' } }] };
  appendFileSync(join(home, 'outcomes.jsonl'), JSON.stringify(old) + '\n');
  const [r] = new OutcomeArchive(home).readAll();
  assert.deepEqual(r!.denials, [{ phase: 'implement', by: 'hook', tool: 'Write', summary: '.env', reason: 'protected path' }]);
  assert.doesNotMatch(JSON.stringify(r), /hunter2|sk_live/);
});

// Review finding: after bugbot.db was deleted (or a backup restored) the new database's run 1
// was taken for a revision of the earlier database's run 1: that run's re-checked revision 2
// hid the new run's row from `bugbot outcomes` and the dashboard, and an approval of the new
// run appended a revision of the old one (its ticket, its cost, its fix).
test('a run whose number an earlier database gave too is a run of its own, found first by its number', (t) => {
  const a = new OutcomeArchive(tempDir(t));
  const old = row({ run_id: 1, ticket_id: 1, started: '2026-01-05T10:00:00.000Z', finished: '2026-01-05T10:10:00.000Z', cost_usd: 0.5 });
  a.append(old);
  a.append({ ...old, regressions_detected_24h: false, revision: 2 });
  const fresh = row({ run_id: 1, ticket_id: 3, state: 'awaiting_approval', started: '2026-11-21T10:00:00.000Z', cost_usd: 0.25 });
  a.append(fresh);
  // The same run archived twice (its end written, then written again by the next start's reconcile): one run, the later row.
  a.append({ ...fresh, reason: 'reconciled' });
  const latest = a.latest();
  assert.deepEqual(latest.map((r) => [r.run_id, r.ticket_id, r.revision]), [[1, 3, 1], [1, 1, 2]]);
  const found = latest.find((r) => r.run_id === 1)!;
  assert.equal(found.reason, 'reconciled');
  a.append({ ...found, state: 'pushed', approved_at: '2026-11-21T12:00:00.000Z', revision: nextRevision(found) });
  assert.deepEqual(a.latest().map((r) => [r.ticket_id, r.state, r.revision]), [[3, 'pushed', 2], [1, 'pushed', 2]]);
  const s = summarize(a.latest());
  assert.deepEqual([s.runs, s.tickets, s.costUsd], [2, 2, 0.75]);
});

test('ensure() creates an empty archive once and leaves an existing one alone', (t) => {
  const home = tempDir(t);
  const a = new OutcomeArchive(home);
  a.ensure();
  assert.deepEqual(a.read(), { rows: [], skipped: 0 });
  a.append(row({}));
  a.ensure();
  assert.equal(a.readAll().length, 1);
});

test('summary: a row without trigger_to_push_s or revision (the first fields rows had) is no NaN', () => {
  const bare = row({}) as Partial<OutcomeRow>;
  delete bare.trigger_to_push_s;
  delete bare.revision;
  const s = summarize([bare as OutcomeRow, row({ run_id: 2, trigger_to_push_s: 300 })]);
  assert.equal(s.medianTriggerToPushS, 300);
});

test('24 hours after a push the run is appended again with the regression flag', (t) => {
  const { clock, store, intake, archive, ev } = pushedFix(t);
  assert.deepEqual(recheckRegressions(store, archive), [], 'not a day old yet');
  clock.advance(3600);
  intake.accept([ev('b', 1)]); // the same error again, after the grace period: a regression
  clock.advance(86_400);
  const [again] = recheckRegressions(store, archive);
  assert.equal(again!.revision, 2);
  assert.equal(again!.regressions_detected_24h, true);
  assert.equal(again!.outcome, 'messy');
  assert.deepEqual(recheckRegressions(store, archive), [], 'checked once');
  assert.equal(archive.latest()[0]!.revision, 2);
});

/** A store, intake and archive with one fix pushed now (run 1 of ticket 1, archived), and the error's events. */
function pushedFix(t: TestContext, over: Partial<OutcomeRow> = {}) {
  const home = tempDir(t);
  const clock = new FakeClock(Date.parse('2026-11-21T10:00:00.000Z'));
  const config = testConfig(home, { intake: { settleSeconds: 0 } });
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const archive = new OutcomeArchive(home);
  const pushed = clock.now().getTime();
  /** The error, seen `hoursAfter` the push (received whenever it is accepted). */
  const ev = (id: string, hoursAfter: number, count = 1) => {
    const at = new Date(pushed + hoursAfter * 3_600_000).toISOString();
    return { source: 'logfile' as const, kind: 'error' as const, title: 'x', message: 'Error: boom in checkout', labels: {}, count, firstSeen: at, lastSeen: at, human: false, sourceEventId: id };
  };
  // Often enough to be acted on at once.
  const [a] = intake.accept([ev('a', 0, 500)]);
  const claim = claimNext(store, 1, null, 60)!;
  finishRun(store, claim.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed' });
  archive.append(row({ run_id: claim.run.id, ticket_id: a!.ticketId!, fingerprint: claim.ticket.fingerprint, finished: clock.now().toISOString(), ...over }));
  return { clock, store, intake, archive, ev, ticketId: a!.ticketId! };
}

test("a restored backup's run re-checked after another database's run of its number is one run, checked once, not a third run re-checked every pass", (t) => {
  // Run 1 of ticket 1 (this database, restored from a backup); after its row, the row of run
  // 1 that the database in between gave to another ticket.
  const { clock, store, archive } = pushedFix(t);
  archive.append(row({ run_id: 1, ticket_id: 9, fingerprint: 'the database in between', started: '2026-11-21T08:00:00.000Z', finished: '2026-11-21T08:10:00.000Z', cost_usd: 0.5 }));
  clock.advance(26 * 3600);
  assert.equal(recheckRegressions(store, archive, clock.now()).length, 1);
  assert.deepEqual(recheckRegressions(store, archive, clock.now()), [], 'checked once');
  assert.deepEqual(archive.latest().map((r) => [r.run_id, r.ticket_id, r.revision]), [[1, 1, 2], [1, 9, 1]]);
  const s = summarize(archive.latest());
  assert.deepEqual([s.runs, s.tickets, s.costUsd], [2, 2, 0.54]);
});

test('a recurrence within the 24 hours that reaches intake after the mark (an alert pipeline\'s waits) still counts: the flag waits for it (review: regression re-check)', (t) => {
  const { clock, store, intake, archive, ev, ticketId } = pushedFix(t);
  clock.advance(24 * 3600 + 600);
  assert.deepEqual(recheckRegressions(store, archive, clock.now()), [], 'ten minutes past the mark: a late occurrence may still be on its way');
  clock.advance(600);
  // Seen at 23 h 50 min, received at 24 h 20 min.
  const [late] = intake.accept([ev('late', 23 + 5 / 6)]);
  assert.equal(late!.status, 'regression');
  clock.advance(3600);
  const [row2] = recheckRegressions(store, archive, clock.now());
  assert.equal(row2!.regressions_detected_24h, true);
  assert.equal(row2!.outcome, 'messy');
  assert.match(row2!.reason, new RegExp(`regressed within 24 h \\(ticket ${late!.ticketId}\\)`));
  assert.notEqual(late!.ticketId, ticketId);
});

test('a control plane down at the 24-hour mark counts what recurred meanwhile once it has read it, not before (review: regression re-check)', (t) => {
  const { clock, store, intake, archive, ev } = pushedFix(t);
  // Down from 20 h to 30 h after the push; the error recurred at 22 h, in a log read again at the start.
  clock.advance(30 * 3600);
  const upSince = clock.now();
  assert.deepEqual(recheckRegressions(store, archive, clock.now(), upSince), [], 'just started: what came while it was down is still being read');
  clock.advance(5);
  assert.equal(intake.accept([ev('while-down', 22)])[0]!.status, 'regression');
  // A recurrence after the 24 hours is a regression of the ticket too, but not of the 24 hours.
  clock.advance(3600);
  const [checked] = recheckRegressions(store, archive, clock.now(), upSince);
  assert.equal(checked!.revision, 2);
  assert.equal(checked!.regressions_detected_24h, true, 'seen 22 h after the push, read 30 h after it');
  assert.deepEqual(recheckRegressions(store, archive, clock.now(), upSince), [], 'checked once');
});

test('the re-check\'s revision keeps the denials as the first row archived them: text clipped once is not clipped again (review: regression re-check)', (t) => {
  // Cut at a space: archived as 200 characters and "…", which a second clip took a word off.
  const denial = { phase: 'implement', by: 'hook', tool: 'Bash', summary: `x${'word '.repeat(60)}`, reason: `y${'no '.repeat(120)}` };
  const { clock, store, archive } = pushedFix(t, { denials: [denial] });
  const [first] = archive.readAll();
  clock.advance(26 * 3600);
  const [checked] = recheckRegressions(store, archive, clock.now());
  assert.equal(checked!.revision, 2);
  assert.equal(first!.denials[0]!.summary!.length, 201);
  assert.deepEqual(archive.latest()[0]!.denials, first!.denials);
});

test('a recurrence first seen after the 24 hours is no regression of them, however soon it was read', (t) => {
  const { clock, store, intake, archive, ev } = pushedFix(t);
  clock.advance(25 * 3600);
  assert.equal(intake.accept([ev('next-day', 24.5)])[0]!.status, 'regression');
  const [checked] = recheckRegressions(store, archive, clock.now());
  assert.equal(checked!.regressions_detected_24h, false);
  assert.equal(checked!.outcome, 'clean');
});

// Review finding: the archive outlives bugbot.db. Deleted (or a backup restored), the new
// database gives the old numbers again, and the re-check read an earlier database's pushed
// row against the regressions of whichever ticket now has its number: an unrelated ticket's
// regression made that old fix messy, "regressed within 24 h".
test("a row of an earlier database's run is not re-checked against the tickets this database gave its numbers to", (t) => {
  const home = tempDir(t);
  const clock = new FakeClock();
  const config = testConfig(home, { intake: { settleSeconds: 0 } });
  const archive = new OutcomeArchive(home);
  const t0 = clock.now().getTime();
  const at = (h: number) => new Date(t0 + h * 3_600_000).toISOString();
  // The new database: tickets 1 and 2 and their runs 1 and 2; both fixes pushed, both regress.
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const ev = (id: string, message: string) => ({ source: 'logfile' as const, kind: 'error' as const, title: 'x', message, labels: {}, count: 500, firstSeen: clock.now().toISOString(), lastSeen: clock.now().toISOString(), human: false, sourceEventId: id });
  clock.advance(3600);
  intake.accept([ev('a', 'Error: boom in checkout'), ev('b', 'TypeError: cart is undefined')]);
  for (let i = 0; i < 2; i++) finishRun(store, claimNext(store, 1, null, 60)!.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed' });
  // Run 2 was launched (its branch is named for the second of its claim); run 1 never was.
  setRunProcess(store, 2, { branch: 'bot/ticket-2-20261121T110000' });
  // What earlier databases archived under those numbers, all pushed, never re-checked: run 1
  // of ticket 1 for another error; runs 1 and 2 of these very errors, from before a backup
  // was restored (run 1 started before this run 1's claim, run 2 on another branch).
  const fp = (id: number) => store.getTicketRow(id)!.fingerprint;
  archive.append(row({ run_id: 1, ticket_id: 1, fingerprint: 'another error', started: at(1), finished: at(1) }));
  archive.append(row({ run_id: 1, ticket_id: 1, fingerprint: fp(1), started: at(-0.25), finished: at(0) }));
  archive.append(row({ run_id: 2, ticket_id: 2, fingerprint: fp(2), branch: 'bot/ticket-2-20261121T093000', started: at(1), finished: at(1) }));
  clock.advance(3600);
  const recurred = intake.accept([ev('a2', 'Error: boom in checkout'), ev('b2', 'TypeError: cart is undefined')]);
  assert.deepEqual(recurred.map((r) => r.status), ['regression', 'regression']);
  clock.advance(26 * 3600);

  assert.deepEqual(recheckRegressions(store, archive, clock.now()), [], "no row is of this database's runs");
  assert.ok(archive.latest().every((r) => r.regressions_detected_24h === null && r.outcome === 'clean'));
  // This database's own rows of those runs are re-checked as ever.
  archive.append(row({ run_id: 1, ticket_id: 1, fingerprint: fp(1), started: at(1), finished: at(1) }));
  archive.append(row({ run_id: 2, ticket_id: 2, fingerprint: fp(2), branch: 'bot/ticket-2-20261121T110000', started: at(1), finished: at(1) }));
  const checked = recheckRegressions(store, archive, clock.now());
  assert.deepEqual(checked.map((r) => [r.run_id, r.started, r.regressions_detected_24h]).sort(), [[1, at(1), true], [2, at(1), true]]);
});

test('per day: a day without a push or a clean fix has no median and no cost per clean fix, and its chart draws no mark (not a zero)', () => {
  const days = perDay([
    row({ run_id: 1, ticket_id: 1, finished: '2026-11-20T10:00:00.000Z', trigger_to_push_s: 600, cost_usd: 0.04 }),
    row({ run_id: 2, ticket_id: 2, finished: '2026-11-21T10:00:00.000Z', outcome: 'failed', state: 'failed', trigger_to_push_s: null, cost_usd: 0.02 }),
  ]);
  assert.deepEqual(
    days.map((d) => [d.day, d.medianPushS, d.costPerTicket, d.costPerCleanFix]),
    [
      ['2026-11-20', 600, 0.04, 0.04],
      ['2026-11-21', null, 0.02, null],
    ],
  );
  const svg = String(
    ColumnChart({
      id: 'c',
      title: 'push',
      mode: 'grouped',
      columns: days.map((d) => ({ label: d.day, values: { push: d.medianPushS } })),
      series: [{ key: 'push', label: 'push', cls: 's-a' }],
    }),
  );
  assert.match(svg, /<rect[^>]*data-label="2026-11-20"[^>]*data-value="600"/);
  assert.doesNotMatch(svg, /<rect[^>]*data-label="2026-11-21"/);
});

// Review finding: `bugbot outcomes --json` over a 400 MB archive (270,000 runs) died with
// "RangeError: Invalid string length": the whole report was one JSON.stringify, past the
// longest string V8 makes (512 MiB). It is printed a few hundred rows at a time now.
test('the --json report comes in pieces of a few hundred rows, together the text one JSON.stringify wrote', () => {
  const rows = Array.from({ length: 1201 }, (_, i) => row({ run_id: i + 1, reason: `pushed ${i}: "quoted"\nnext line` }));
  const report = { since: '7d', summary: summarize(rows), notes: summaryNotes(summarize(rows)), rows };
  const whole = JSON.stringify(report, null, 2);
  const pieces = [...reportJson(report)];
  assert.equal(pieces.join(''), whole);
  assert.equal(pieces.length, 3, '500 rows, 500 rows, then the last 201');
  assert.ok(Math.max(...pieces.map((p) => p.length)) < whole.length / 2);
  const none = { ...report, rows: [] };
  assert.deepEqual([...reportJson(none)], [JSON.stringify(none, null, 2)]);
});

test('a run interrupted by a restart and requeued counts apart, out of the rates: a ticket then fixed cleanly is 100 % clean (review finding 3)', () => {
  const interrupted = row({
    run_id: 1, outcome: 'failed', state: 'queued', trigger_to_push_s: null, pushed_to: null, cost_usd: 0.01,
    reason: 'stopped with the control plane mid-run; requeued (attempt 1 of 3)', finished: '2026-11-21T09:00:00.000Z',
  });
  const s = summarize([interrupted, row({ run_id: 2, finished: '2026-11-21T10:10:00.000Z' })]);
  assert.deepEqual([s.runs, s.clean, s.messy, s.failed, s.interrupted], [2, 1, 0, 0, 1]);
  assert.deepEqual(s.rates, { clean: 1, messy: 0, failed: 0 });
  assert.equal(s.costUsd, 0.05, 'what the interrupted run spent counts');
  assert.match(summaryNotes(s).join('\n'), /1 run\(s\) interrupted and requeued .*not in the rates/);
  // The dashboard's days agree: the day has one clean run and no failed one.
  assert.deepEqual(perDay([interrupted, row({ run_id: 2 })]).map((d) => [d.day, d.clean, d.failed]), [['2026-11-21', 1, 0]]);
  // A run that gave up (its last attempt) is failed.
  assert.equal(summarize([{ ...interrupted, state: 'failed' }]).failed, 1);
});

test('the summary counts the runs whose cost is unknown in part and says so (review finding 2)', () => {
  const killed = row({ run_id: 2, cost_usd: 0.01, cost_reported: false, stages: { research: { tokens: 100, tool_calls: 1, cost_usd: 0.01, cost_reported: true, duration_s: 1 }, implement: { tokens: 900, tool_calls: 4, cost_usd: 0, cost_reported: false, duration_s: 300, result: 'idle: no stream event for 300 s' } } });
  const s = summarize([row({ run_id: 1 }), killed]);
  assert.equal(s.costUnknownRuns, 1);
  assert.match(summaryNotes(s).join('\n'), /cost of 1 run\(s\) unknown in part: sessions stopped before reporting it/);
  assert.deepEqual(summaryNotes(summarize([row({ run_id: 1 })])), []);
});

test('a row dated after now is left out of the charts, which would end on its day and show nothing else (review finding 4)', () => {
  const now = Date.parse('2026-11-21T12:00:00.000Z');
  const rows = [row({ run_id: 1, finished: '2026-11-21T10:00:00.000Z' }), row({ run_id: 2, finished: '2027-12-25T10:00:00.000Z' })];
  const { rows: kept, future } = withoutFuture(rows, now);
  assert.equal(future, 1);
  assert.deepEqual(perDay(kept).map((d) => [d.day, d.clean]), [['2026-11-21', 1]]);
});

test('the archive is read in chunks: rows across a chunk end, multi-byte text and a torn last line read as before (review finding 5)', (t) => {
  const home = tempDir(t);
  const a = new OutcomeArchive(home, { redact: (s) => s });
  // About 2.5 MiB of rows, each with multi-byte characters: some cross the 1 MiB chunk ends.
  const reason = `pushed — ${'é✓'.repeat(3000)}`;
  for (let i = 1; i <= 250; i++) a.append(row({ run_id: i, reason }));
  appendFileSync(a.path, '{"run_id": 999, "tic');
  const { rows, skipped } = a.read();
  assert.equal(rows.length, 250);
  assert.ok(rows.every((r, i) => r.run_id === i + 1 && r.reason === reason));
  assert.equal(skipped, 1);
});

test('an archive past V8\'s longest string (512 MiB) is read, not refused: its rows are there (review finding 5)', (t) => {
  const home = tempDir(t);
  const a = new OutcomeArchive(home);
  a.append(row({ run_id: 1 }));
  // 600 MiB of one line that is not a row (a sparse file: no disk, no time), then a row.
  truncateSync(a.path, statSync(a.path).size + 600 * 2 ** 20);
  appendFileSync(a.path, '\n');
  a.append(row({ run_id: 2 }));
  const { rows, skipped } = a.read();
  assert.deepEqual(rows.map((r) => r.run_id), [1, 2]);
  assert.equal(skipped, 1);
});

test('a second read parses only the lines appended since the first; a torn line is read again once whole (review finding 5)', (t) => {
  const home = tempDir(t);
  let redactions = 0;
  const a = new OutcomeArchive(home, { redact: (s) => (redactions++, s) });
  for (let i = 1; i <= 50; i++) a.append(row({ run_id: i }));
  assert.equal(a.read().rows.length, 50);
  redactions = 0;
  assert.equal(a.read().rows.length, 50);
  assert.equal(redactions, 0, 'nothing new: nothing parsed');
  appendFileSync(a.path, JSON.stringify(row({ run_id: 51 })) + '\n{"run_id": 52, "ticket_id"');
  const before = redactions;
  const r = a.read();
  assert.deepEqual([r.rows.length, r.skipped], [51, 1]);
  assert.ok(redactions - before <= 4, `only the new lines were parsed (${redactions - before} redactions)`);
  appendFileSync(a.path, ': 52}\n');
  assert.deepEqual(a.read().rows.map((x) => x.run_id).slice(-2), [51, 52]);
  assert.equal(a.read().skipped, 0);
  // Another file in its place (cut shorter) is read from the start.
  writeFileSync(a.path, JSON.stringify(row({ run_id: 7 })) + '\n');
  assert.deepEqual(a.read().rows.map((x) => x.run_id), [7]);
  // Callers get their own array.
  a.read().rows.length = 0;
  assert.equal(a.read().rows.length, 1);
});

test('rows an older version wrote are read redacted: reason, stage results, approver, denials (review finding 6)', (t) => {
  const home = tempDir(t);
  const key = 'sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefgh';
  const old = {
    ...row({}),
    reason: `push failed: https://bot:${key}@git.example.com/shop.git rejected`,
    stages: { implement: { tokens: 1, tool_calls: 1, cost_usd: 0, duration_s: 1, result: `banned action attempted: curl -H "Authorization: Bearer ${key}"` } },
    approved_by: 'api:alice@corp.example',
    denials: [{ phase: 'implement', by: 'hook', tool: 'Bash', summary: `echo ${key}`, reason: 'protected' }],
  };
  appendFileSync(join(home, 'outcomes.jsonl'), JSON.stringify(old) + '\n');
  const [r] = new OutcomeArchive(home).readAll();
  const text = JSON.stringify(r);
  assert.ok(!text.includes(key.slice(0, 20)), text);
  assert.ok(!text.includes('alice@corp.example'), text);
  assert.match(r!.reason, /^push failed: https:\/\/\[REDACTED\]@git\.example\.com\/shop\.git rejected$/);
  assert.match(r!.approved_by!, /^api:<email:[0-9a-f]+>$/);
});

test('numbers in a hand-edited row are read as numbers: revision "10" beats "9", tokens "1200" add up (review finding 7)', (t) => {
  const home = tempDir(t);
  const raw = (over: Record<string, unknown>) => JSON.stringify({ ...row({}), ...over }) + '\n';
  appendFileSync(
    join(home, 'outcomes.jsonl'),
    raw({ revision: '10', reason: 'ten' }) +
      raw({ revision: '9', reason: 'nine' }) +
      raw({ run_id: 2, revision: 'x', stages: { research: { tokens: '1200', tool_calls: '3', cost_usd: 'a lot', duration_s: null, edits: '2' }, review: 'x' }, cost_usd: '0.5' }),
  );
  const a = new OutcomeArchive(home);
  const latest = a.latest();
  assert.equal(latest.find((r) => r.run_id === 1)!.reason, 'ten');
  const two = latest.find((r) => r.run_id === 2)!;
  assert.equal(two.revision, 1);
  assert.deepEqual(two.stages, { research: { tokens: 1200, tool_calls: 3, cost_usd: 0, duration_s: 0, edits: 2 } });
  assert.equal(two.cost_usd, 0.5);
  assert.deepEqual(summarize(latest).tokensPerStage, { research: 1300, implement: 300 });
  assert.equal(nextRevision(two), 2);
});

test('a hand-edited push time "600" is in the median, one past a number\'s range is none (no Infinity shown), a ticket "7" is ticket 7', (t) => {
  const home = tempDir(t);
  // 1e999 parses as Infinity: written by hand, as a string cannot hold it.
  const raw = (over: Record<string, unknown>) => JSON.stringify({ ...row({}), ...over }).replace('"INF"', '1e999') + '\n';
  appendFileSync(
    join(home, 'outcomes.jsonl'),
    raw({ run_id: 1, ticket_id: 7, trigger_to_push_s: 300 }) +
      raw({ run_id: 2, ticket_id: '7', trigger_to_push_s: '600' }) +
      raw({ run_id: 3, ticket_id: 8, trigger_to_push_s: 'INF' }),
  );
  const latest = new OutcomeArchive(home).latest();
  assert.deepEqual(latest.map((r) => [r.ticket_id, r.trigger_to_push_s]), [[7, 300], [7, 600], [8, null]]);
  const s = summarize(latest);
  assert.equal(s.medianTriggerToPushS, 450);
  assert.equal(s.tickets, 2);
  assert.equal(s.costPerTicketUsd, 0.06);
  assert.deepEqual(perDay(latest).map((d) => d.medianPushS), [450]);
});

test('a fix approved today out of a run finished eight days ago is in the last 7 days, on today, on the dashboard too (review finding 8)', () => {
  const now = Date.parse('2026-11-21T12:00:00.000Z');
  const day = 86_400_000;
  const approved = row({ run_id: 1, finished: new Date(now - 8 * day).toISOString(), approved_at: new Date(now - 3_600_000).toISOString(), revision: 2 });
  const old = row({ run_id: 2, finished: new Date(now - 8 * day).toISOString() });
  const week = inWindow([approved, old], now - 7 * day, now);
  assert.deepEqual(week.rows.map((r) => r.run_id), [1]);
  assert.equal(pushedAt(approved), approved.approved_at);
  assert.equal(dayOf(approved), '2026-11-21');
  assert.ok(matches(approved, { from: '2026-11-21', to: '2026-11-21' }));
  // An approval dated after now is in no window up to now, like a run finished then.
  assert.equal(inWindow([{ ...approved, approved_at: new Date(now + day).toISOString() }], now - 7 * day, now).future, 1);
});

test("a time written with an offset is on its UTC day in the dashboard's charts and filter, as --since counts it", () => {
  // 23:30 in New York on the 21st is 04:30 UTC on the 22nd.
  const r = row({ finished: '2026-11-21T23:30:00-05:00' });
  assert.equal(dayOf(r), '2026-11-22');
  assert.ok(matches(r, { from: '2026-11-22', to: '2026-11-22' }));
  assert.ok(!matches(r, { to: '2026-11-21' }));
  assert.deepEqual(perDay([r, row({ run_id: 2, finished: '2026-11-22T01:00:00+00:00' })]).map((d) => [d.day, d.clean]), [['2026-11-22', 2]]);
  assert.equal(inWindow([r], Date.parse('2026-11-22T00:00:00Z'), Date.parse('2026-11-23T00:00:00Z')).rows.length, 1);
  // Without an offset a time is UTC, as bugbot writes them; what is not a time is left as it is.
  assert.equal(dayOf(row({ finished: '2026-11-21T23:30:00' })), '2026-11-21');
  assert.equal(dayOf(row({ finished: 'yesterday' })), 'yesterday');
});

test("the dashboard's newest runs: the latest revision of the runs that finished last, again once the archive changes", (t) => {
  const archive = new OutcomeArchive(tempDir(t));
  const cache = new OutcomesCache(archive);
  assert.deepEqual(cache.newest(2), []);
  archive.append(row({ run_id: 1, finished: '2026-11-21T10:00:00.000Z' }));
  archive.append(row({ run_id: 2, finished: '2026-11-21T12:00:00.000Z' }));
  archive.append(row({ run_id: 3, finished: '2026-11-21T11:00:00.000Z' }));
  assert.deepEqual(cache.newest(2).map((r) => r.run_id), [2, 3]);
  assert.deepEqual(cache.newest(2).map((r) => r.run_id), [2, 3], 'asked again, the same');
  archive.append(row({ run_id: 4, finished: '2026-11-21T13:00:00.000Z' }));
  archive.append(row({ run_id: 2, finished: '2026-11-21T12:00:00.000Z', outcome: 'messy', revision: 2 }));
  assert.deepEqual(cache.newest(3).map((r) => [r.run_id, r.outcome]), [[4, 'clean'], [2, 'messy'], [3, 'clean']]);
});
