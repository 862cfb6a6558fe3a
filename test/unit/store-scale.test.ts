/**
 * Review finding (a year-old home: 50,000 tickets): the ticket pages and the state lists
 * read the tickets table whole. A state's page, newest first, sorted every ticket of the
 * state (USE TEMP B-TREE: 4 ms a page of 15,000 dropped tickets, 85 ms at offset 10,000),
 * and a ticket's regressions (the ticket page, `bugbot ticket`, /api/tickets/:id, the
 * 24-hour re-check of every pushed run) scanned every ticket (15 ms each). Asserted on
 * SQLite's plan for the statements as the store runs them, not on a time.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Intake } from '../../control/intake/index.ts';
import { claimNext } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { OutcomeArchive, type OutcomeRow } from '../../control/outcomes/archive.ts';
import { recheckRegressions } from '../../control/outcomes/regression.ts';
import { createRedactor } from '../../lib/redact.ts';
import { alertEvent, tempDir, testConfig } from '../support/helpers.ts';

/** A store that records the SQL it prepares, and SQLite's plan for a statement. */
function watched(t: TestContext) {
  const home = tempDir(t);
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const seen: string[] = [];
  const prepare = store.stmt.bind(store);
  store.stmt = (sql: string) => (seen.push(sql), prepare(sql));
  const plan = (sql: string) =>
    (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(sql.match(/\?/g) ?? []).map(() => null)) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
  return { home, store, seen, plan };
}

test("a state's tickets, newest first, are read in index order: no sort of the whole state", (t) => {
  const { store, seen, plan } = watched(t);
  store.listTickets({ state: 'dropped', limit: 50, offset: 100 });
  const q = seen.find((s) => s.startsWith('SELECT * FROM tickets WHERE state = ?'))!;
  assert.ok(q, 'listTickets ran its by-state query');
  assert.match(plan(q), /USING INDEX tickets_state_id/, q);
  assert.doesNotMatch(plan(q), /TEMP B-TREE/, 'a sort reads every ticket of the state for one page');
});

test("the dispatcher's claim keeps its own index (priority order), without a sort", (t) => {
  const { store, seen, plan } = watched(t);
  claimNext(store, 1, null, 60);
  const q = seen.find((s) => s.includes("state = 'queued' AND claimed_by IS NULL"))!;
  assert.match(plan(q), /USING INDEX tickets_state \(/, q);
  assert.doesNotMatch(plan(q), /TEMP B-TREE/);
});

test("a ticket's regressions are found by index: the ticket page and the 24-hour re-check scan no table", (t) => {
  const { home, store, seen, plan } = watched(t);
  store.relatedTickets(1);
  // A pushed run of this database's (the re-check reads only those), three days ago.
  new Intake({ store, config: testConfig(home, { intake: { settleSeconds: 0 } }), redactor: createRedactor() }).accept([alertEvent()]);
  const { run, ticket } = claimNext(store, 1, null, 60)!;
  const archive = new OutcomeArchive(home);
  const finished = run.started_at;
  archive.append({
    run_id: run.id, ticket_id: ticket.id, fingerprint: ticket.fingerprint, trigger_source: 'grafana', service: null, started: finished, finished, trigger_to_push_s: 60,
    stages: {}, outcome: 'clean', state: 'pushed', reason: 'pushed', branch: null, commit: null, pushed_to: 'origin/staging', diff: null,
    tests: { passed: null, failed: null }, cost_usd: 0, model: null, attempt: 1, worker: 1, denials: [], regressions_detected_24h: null, revision: 1,
  } satisfies OutcomeRow);
  assert.equal(recheckRegressions(store, archive, new Date(Date.parse(finished) + 3 * 86_400_000), new Date(0)).length, 1);
  const qs = seen.filter((s) => s.includes('regression_of = ?'));
  assert.ok(qs.length >= 1, 'the regressions were asked for');
  for (const q of qs) {
    assert.match(plan(q), /USING INDEX tickets_regression/, q);
    assert.doesNotMatch(plan(q), /SCAN tickets/, q);
  }
});
