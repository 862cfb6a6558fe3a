/**
 * Review finding: Requeue carried no run, so a Requeue clicked on a page (or typed from a
 * message) of an earlier run threw away a newer run's fix waiting for approval; Approve
 * and Skip were already refused there. Now it names the run the person saw, from the
 * backend, the API, the dashboard's form and the CLI alike; so does the dashboard's Cancel.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createApp } from '../../control/app.ts';
import { Approvals } from '../../control/dispatcher/approvals.ts';
import { Intake } from '../../control/intake/index.ts';
import { silentLogger } from '../../control/log.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { approvalsForTicket } from '../../control/queue/approvals.ts';
import { Store } from '../../control/queue/store.ts';
import { createRedactor } from '../../lib/redact.ts';
import { fileTicket, finishAwaiting } from '../support/approval.ts';
import { cookieOf, csrfOf, postJson, tempDir, testConfig } from '../support/helpers.ts';

function setup(t: TestContext) {
  const home = tempDir(t, 'bugbot-requeue-');
  const config = testConfig(home, { intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' } });
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const approvals = new Approvals({ config, store, logger: silentLogger, archive: new OutcomeArchive(home) });
  const app = createApp({ config, store, intake, logger: silentLogger, approvals });
  /** A ticket whose first run's fix was requeued and whose second run's fix waits now. */
  const twoFixes = (title: string) => {
    const id = fileTicket(intake, title, `Error: ${title}`);
    const first = finishAwaiting({ store, config, ticketId: id });
    assert.equal(approvals.requeue(id, 'alice').ok, true);
    const second = finishAwaiting({ store, config, ticketId: id });
    assert.ok(second.run.id > first.run.id);
    return { id, first: first.run.id, second: second.run.id };
  };
  return { config, store, intake, approvals, app, twoFixes };
}

const requeues = (store: Store, id: number) => approvalsForTicket(store, id).filter((a) => a.action === 'requeue').length;

test("a requeue naming an earlier run is refused, naming the newer one: the newer fix still waits", (t) => {
  const { store, approvals, twoFixes } = setup(t);
  const { id, first, second } = twoFixes('Stale requeue');
  const stale = approvals.requeue(id, 'bob', { run: first });
  assert.equal(stale.ok, false);
  assert.equal(stale.failure, 'state');
  assert.match(stale.message, new RegExp(`^ticket ${id}'s latest run is run ${second}, not run ${first} that the requeue named`));
  assert.equal(store.getTicket(id)!.state, 'awaiting_approval', 'the newer fix still waits');
  assert.equal(requeues(store, id), 1, 'no decision recorded');
  // A run the ticket never had (a typo in --run) is said to be so.
  assert.match(approvals.requeue(id, 'bob', { run: second + 100 }).message, new RegExp(`^ticket ${id} has no run ${second + 100} \\(its latest run is run ${second}\\)$`));
  const r = approvals.requeue(id, 'bob', { run: second });
  assert.equal(r.ok, true, r.message);
  assert.equal(store.getTicket(id)!.state, 'queued');
});

test('without a run (an older client) a requeue goes ahead as before', (t) => {
  const { store, approvals, twoFixes } = setup(t);
  const { id } = twoFixes('Plain requeue');
  assert.equal(approvals.requeue(id, 'bob').ok, true);
  assert.equal(store.getTicket(id)!.state, 'queued');
});

test('API: POST /requeue with {"run": N} is a 409 naming the newer run once the ticket ran again; {} and the current run go ahead', async (t) => {
  const { store, app, twoFixes } = setup(t);
  const other = twoFixes('API requeue without a run');
  const { id, first, second } = twoFixes('API requeue');
  assert.equal((await postJson(app, `/api/tickets/${id}/requeue`, { run: 'latest' })).status, 400);
  const stale = await postJson(app, `/api/tickets/${id}/requeue`, { run: first });
  assert.equal(stale.status, 409);
  const body = (await stale.json()) as { ok: boolean; state: string; error: { code: string; message: string } };
  assert.deepEqual([body.ok, body.state, body.error.code], [false, 'awaiting_approval', 'state']);
  assert.match(body.error.message, new RegExp(`latest run is run ${second}, not run ${first}`));
  assert.equal(store.getTicket(id)!.state, 'awaiting_approval');
  const ok = await postJson(app, `/api/tickets/${id}/requeue`, { run: second });
  assert.equal(ok.status, 200);
  assert.equal(store.getTicket(id)!.state, 'queued');

  assert.equal((await postJson(app, `/api/tickets/${other.id}/requeue`, {})).status, 200, 'no run named: as before');
});

/**
 * A ticket page open on a fix waiting for approval (its `action` form naming the run shown),
 * then a requeue by someone else and a newer fix waiting: `post(run)` clicks that form.
 */
async function staleForm(t: TestContext, action: 'requeue' | 'cancel') {
  const { config, store, intake, approvals, app } = setup(t);
  const id = fileTicket(intake, `Dashboard ${action}`, `Error: dashboard ${action}`);
  const { run } = finishAwaiting({ store, config, ticketId: id });
  const first = await app.request(`http://localhost/tickets/${id}`, { headers: { accept: 'text/html' } });
  const session = cookieOf(first)!;
  const html = await first.text();
  const shown = new RegExp(`<form method="post" action="/approvals/${id}/${action}"[^>]*>(.*?)</form>`, 's').exec(html)?.[1];
  assert.ok(shown, `a ${action} button`);
  assert.match(shown, new RegExp(`<input type="hidden" name="run" value="${run.id}"/?>`), 'the form names the run shown');
  // While the page stays open, someone else requeues and a newer fix comes to wait.
  assert.equal(approvals.requeue(id, 'alice').ok, true);
  const newer = finishAwaiting({ store, config, ticketId: id });
  const post = (runId: number) =>
    app.request(`http://localhost/approvals/${id}/${action}`, {
      method: 'POST',
      headers: { cookie: `bugbot_session=${session}`, origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrfOf(html)!, return_to: `/tickets/${id}`, run: String(runId) }).toString(),
    });
  const page = async () => (await app.request(`http://localhost/tickets/${id}`, { headers: { cookie: `bugbot_session=${session}` } })).text();
  return { store, id, run: run.id, newer: newer.run.id, post, page };
}

test("dashboard: the Requeue form carries the run the page showed; posted once the ticket ran again, it throws nothing away", async (t) => {
  const { store, id, run, newer, post, page } = await staleForm(t, 'requeue');
  assert.equal((await post(run)).status, 303);
  assert.equal(store.getTicket(id)!.state, 'awaiting_approval', "the newer run's fix still waits");
  assert.match(await page(), new RegExp(`latest run is run ${newer}, not run ${run} that the requeue named`));
});

// Review finding: Cancel drops a fix waiting for approval as Skip does, but carried no run:
// a stale page's Cancel dropped the newer run's fix nobody had looked at.
test("dashboard: the Cancel form carries the run the page showed; posted once the ticket ran again, the newer fix still waits", async (t) => {
  const { store, id, run, newer, post, page } = await staleForm(t, 'cancel');
  assert.equal((await post(run)).status, 303);
  assert.equal(store.getTicket(id)!.state, 'awaiting_approval', "the newer run's fix still waits");
  assert.ok(!store.auditTrail(id).some((a) => a.action === 'cancelled'), 'nothing cancelled');
  assert.match(await page(), new RegExp(`latest run is run ${newer}, not run ${run} that the page showed`));
  // Naming the run it waits with, the cancel goes ahead.
  assert.equal((await post(newer)).status, 303);
  assert.equal(store.getTicket(id)!.state, 'dropped');
});
