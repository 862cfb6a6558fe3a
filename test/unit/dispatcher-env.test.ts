/**
 * Runs the machine could not host (harness_fail_env writes environment-failure): which are
 * given back how often, what the workers say while they pause, and when the requirements
 * are looked at again.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { Dispatcher } from '../../control/dispatcher/pool.ts';
import { silentLogger, type Logger } from '../../control/log.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { cancelTicket, claimNext } from '../../control/queue/leases.ts';
import { createApp } from '../../control/app.ts';
import { Intake } from '../../control/intake/index.ts';
import { createRedactor } from '../../lib/redact.ts';
import { blockedTicket, claimedRun, endWorker, fakeWorker, waitFor } from '../support/helpers.ts';

/** A run's end as its worker's trap leaves it after harness_fail_env REASON [FLAG lines]. */
function endedByMachine(dispatcher: Dispatcher, worker: ReturnType<typeof fakeWorker>, reason: string, flags: string[] = []): void {
  writeFileSync(join(worker.ws.ticketDir, 'environment-failure'), [reason, ...flags].join('\n') + '\n');
  writeFileSync(
    join(worker.ws.ticketDir, 'outcome.json'),
    JSON.stringify({ state: 'failed', outcome: 'failed', reason, started: null, finished: null, stages: {}, branch: 'bot/x', commit: null, pushed_to: null, diff: null, tests: null, cost_usd: 0, denials: [] }),
  );
  endWorker(dispatcher, worker, 1);
}

// Review finding: a revoked key (401) or an endpoint nothing listens at was given back
// three times per ticket and then counted, though no ticket can cause it: with the
// defaults, a key revoked overnight failed about eight tickets for good.
test('a failure no ticket can cause (counts: never) is given back however often, without using up the refunds of other machine failures', (t) => {
  const { home, config, store, ticket, run: first } = claimedRun(t, { queue: { maxAttempts: 1 } });
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger: silentLogger, pauseFirstMs: 1 });
  let run = first;
  for (let i = 1; i <= 6; i++) {
    endedByMachine(dispatcher, fakeWorker(home, ticket, run), 'research: model endpoint failed: Invalid API key · Fix external API key', ['counts: never']);
    assert.equal(store.getTicket(ticket.id)!.state, 'queued', `run ${i}: back in the queue`);
    assert.equal(store.getTicket(ticket.id)!.attempt, 0, `run ${i}: not counted`);
    assert.match(dispatcher.held() ?? '', i === 1 ? /^paused after a run the machine could not host \(research: / : new RegExp(`^paused after ${i} runs in a row the machine could not host`));
    run = claimNext(store, 1, null, 600)!.run;
  }
  const reason = (store.stmt('SELECT reason FROM runs WHERE ticket_id = ? ORDER BY id DESC LIMIT 1 OFFSET 1').get(ticket.id) as { reason: string }).reason;
  assert.equal(reason, 'research: model endpoint failed: Invalid API key · Fix external API key; no ticket can cause this: requeued (this attempt not counted, however often), and the workers pause');
  // A failure that may be the ticket's still gets its three refunds, then counts.
  for (let i = 1; i <= 3; i++) {
    endedByMachine(dispatcher, fakeWorker(home, ticket, run), 'research: model endpoint failed: API Error: 529 Overloaded');
    assert.equal(store.getTicket(ticket.id)!.state, 'queued', `bounded refund ${i}`);
    run = claimNext(store, 1, null, 600)!.run;
  }
  endedByMachine(dispatcher, fakeWorker(home, ticket, run), 'research: model endpoint failed: API Error: 529 Overloaded');
  assert.equal(store.getTicket(ticket.id)!.state, 'failed');
  const last = (store.stmt('SELECT reason FROM runs WHERE id = ?').get(run.id) as { reason: string }).reason;
  assert.match(last, /the machine could not host it 4 times for this ticket: attempt 1 of 1, giving up/);
});

// Review finding: a slot whose port another process holds (a second bugbot home with the
// same target.basePort, a dev server someone left running) failed each ticket it claimed,
// and after three refunds those failures counted: the top of the queue, claimed by that
// slot each time its pause ended while the other slots were busy, failed for good.
test("a slot's port taken by another process is never counted against the ticket, however often: only that slot pauses", (t) => {
  const { home, config, store, ticket, run: first } = claimedRun(t, { workers: 2, queue: { maxAttempts: 1 } });
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger: silentLogger, pauseFirstMs: 1 });
  const why = 'port 4101 (target.basePort + worker 1) is taken by another process: the dev server could not listen there, and the browser would reach that process instead';
  let run = first;
  for (let i = 1; i <= 6; i++) {
    endedByMachine(dispatcher, fakeWorker(home, ticket, run), why, ['scope: slot']);
    assert.deepEqual([store.getTicket(ticket.id)!.state, store.getTicket(ticket.id)!.attempt], ['queued', 0], `run ${i}: back in the queue, not counted`);
    run = claimNext(store, 1, null, 600)!.run;
  }
  const reason = (store.stmt('SELECT reason FROM runs WHERE ticket_id = ? ORDER BY id DESC LIMIT 1 OFFSET 1').get(ticket.id) as { reason: string }).reason;
  assert.equal(reason, `${why}; no ticket can cause this: requeued (this attempt not counted, however often), and this worker pauses`);
  assert.equal(dispatcher.held(), null, 'the other slot goes on claiming');
});

// Review finding: a slot paused on its own (its port held by another process) showed as an
// idle slot: held() speaks only when every slot pauses, and tickets waited with no word why.
test('a slot paused on its own is listed with why and until when: pausedSlots(), /api/workers, the dashboard', async (t) => {
  const { home, config, store, ticket, run } = claimedRun(t, { workers: 2 });
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger: silentLogger, pauseFirstMs: 60_000 });
  assert.deepEqual(dispatcher.pausedSlots(), []);
  const why = 'port 4101 (target.basePort + worker 1) is taken by another process: pid 4242, node server.js --token=sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789';
  endedByMachine(dispatcher, fakeWorker(home, ticket, run), why, ['scope: slot']);
  assert.equal(dispatcher.held(), null, 'the other slot goes on claiming');
  const paused = dispatcher.pausedSlots();
  assert.deepEqual(paused.map((p) => [p.worker, p.reason]), [[1, why]]);
  assert.ok(Date.parse(paused[0]!.until) > Date.now() + 50_000, paused[0]!.until);

  const intake = new Intake({ store, config, redactor: createRedactor() });
  const app = createApp({ config, store, intake, logger: silentLogger, dispatcher });
  const api = (await (await app.request('/api/workers')).json()) as { pausedSlots: Array<{ worker: number; reason: string }> };
  assert.deepEqual(api.pausedSlots.map((p) => p.worker), [1]);
  assert.match(api.pausedSlots[0]!.reason, /^port 4101 .* taken by another process/);
  assert.ok(!JSON.stringify(api).includes('sk-ant-api03'), 'a secret in the command line is scrubbed');
  const html = await (await app.request('/', { headers: { accept: 'text/html' } })).text();
  assert.match(html, /data-paused-slot="1">Worker 1 pauses until [^:]+:[^<]*port 4101 \(target\.basePort \+ worker 1\) is taken by another process/);
  assert.ok(!html.includes('sk-ant-api03'));
});

// Review finding: Claude Code removed under a running bugbot (an npm ci) failed runs while
// the requirements, looked at once a minute, still said nothing was missing.
test('after a run the machine could not host, the requirements are looked at afresh: at once, and before the first claim after the pause', async (t) => {
  const { home, config, store, ticket, run } = claimedRun(t);
  const asked: boolean[] = [];
  let missing: string | null = null;
  const dispatcher = new Dispatcher({
    config,
    store,
    archive: new OutcomeArchive(home),
    logger: silentLogger,
    pollMs: 10,
    pauseFirstMs: 400,
    held: (recheck) => {
      asked.push(recheck === true);
      return recheck ? missing : null;
    },
  });
  missing = 'claude (/opt/claude) not found (npm ci (Claude Code comes with bugbot), or set harness.claude)';
  endedByMachine(dispatcher, fakeWorker(home, ticket, run), 'research: could not start /opt/claude: spawn /opt/claude ENOENT');
  assert.deepEqual(asked, [true], 'looked at afresh when the run ended');
  assert.equal(dispatcher.held(), missing, 'what the workers lack is named, not only the pause');

  missing = null;
  asked.length = 0;
  // Nothing to claim after the pause (a claim would start a real worker).
  assert.equal(cancelTicket(store, ticket.id, 'test')?.now, 'dropped');
  dispatcher.start();
  t.after(() => dispatcher.stop(100));
  // Awaited by what was asked, not by the clock: a slow machine may poll less often.
  await waitFor(() => asked.includes(true), 30_000, 'the look afresh once the pause is over');
  assert.ok(asked.indexOf(true) > 2, `not looked at afresh on every poll of the pause: ${JSON.stringify(asked)}`);
  await sleep(200);
  assert.equal(asked.filter((r) => r).length, 1, 'looked at afresh once the pause is over');
});

// Review finding: the "workers hold" line was logged again whenever the pause's "trying
// again at" time, computed from two clocks, moved by a millisecond.
test('a pause is logged once, however often its "trying again at" time is computed again', async (t) => {
  const { home, config, store } = blockedTicket(t);
  const warned: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (msg, fields) => void warned.push(`${msg}: ${String(fields?.reason ?? '')}`), child: () => logger };
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger, pollMs: 1, pauseFirstMs: 60_000 });
  dispatcher.start();
  t.after(() => dispatcher.stop(100));
  // The pause is awaited; the window after it (about 1,500 polls) is for a second line that must not come.
  await waitFor(() => dispatcher.held(), 30_000, 'the pause');
  await sleep(1500);
  const holds = warned.filter((w) => w.startsWith('workers hold'));
  assert.equal(holds.length, 1, holds.join('\n'));
  assert.match(dispatcher.held() ?? '', /; trying again at \d{4}-\d\d-\d\dT/);
});

// Review finding: Claude Code's sandbox keeps read-only only the operator's files that exist
// (phases.ts guardOperatorHome): the dispatcher makes the missing ones before every run.
test("before a run, the missing start-up and git files of the user's home are made, so that the sandbox keeps them read-only", async (t) => {
  const { home, config, store } = blockedTicket(t, { workers: 1, harness: { minFreeDiskMb: 0 } });
  const operator = join(home, 'operator');
  mkdirSync(operator);
  const saved = process.env.HOME;
  process.env.HOME = operator;
  t.after(() => {
    process.env.HOME = saved;
  });
  const logged: string[] = [];
  const logger: Logger = { ...silentLogger, info: (msg: string) => void logged.push(msg), child: () => logger };
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger, pollMs: 20 });
  dispatcher.start();
  t.after(() => dispatcher.stop(100));
  // The launch itself fails (its ticket folder cannot be made); what comes before it is done.
  await waitFor(() => store.stmt('SELECT reason FROM runs WHERE reason IS NOT NULL').get(), 5_000, 'the launch');
  for (const rel of ['.gitconfig', '.config/git', '.bash_profile', '.ssh', '.local/bin']) assert.ok(existsSync(join(operator, rel)), rel);
  assert.ok(logged.some((m) => m.startsWith('made the missing start-up and git files')), logged.join('\n'));
});
