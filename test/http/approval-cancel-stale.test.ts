/**
 * Review finding: the dashboard's Cancel carried no run. On a fix waiting for approval it
 * drops the ticket as Skip does, so a Cancel clicked on a page of an earlier run (someone
 * requeued the ticket meanwhile and a newer fix came to wait) dropped that newer fix, which
 * nobody had looked at; Skip, Approve and Requeue are refused there.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createApp } from '../../control/app.ts';
import { Approvals } from '../../control/dispatcher/approvals.ts';
import { Intake } from '../../control/intake/index.ts';
import { silentLogger } from '../../control/log.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { Store } from '../../control/queue/store.ts';
import { createRedactor } from '../../lib/redact.ts';
import { fileTicket, finishAwaiting } from '../support/approval.ts';
import { cookieOf, csrfOf, tempDir, testConfig } from '../support/helpers.ts';

test("dashboard: the Cancel form carries the run the page showed; posted once the ticket ran again, the newer fix still waits", async (t) => {
  const home = tempDir(t, 'bugbot-cancel-stale-');
  const config = testConfig(home, { intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' } });
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const approvals = new Approvals({ config, store, logger: silentLogger, archive: new OutcomeArchive(home) });
  const app = createApp({ config, store, intake, logger: silentLogger, approvals });

  const id = fileTicket(intake, 'Dashboard cancel', 'Error: dashboard cancel');
  const { run } = finishAwaiting({ store, config, ticketId: id });
  const first = await app.request(`http://localhost/tickets/${id}`, { headers: { accept: 'text/html' } });
  const session = cookieOf(first)!;
  const html = await first.text();
  const cancelForm = new RegExp(`<form method="post" action="/approvals/${id}/cancel"[^>]*>(.*?)</form>`, 's').exec(html)?.[1];
  assert.ok(cancelForm, 'a Cancel button');
  assert.match(cancelForm, new RegExp(`<input type="hidden" name="run" value="${run.id}"/?>`), 'the form names the run shown');

  // While the page stays open, someone else requeues and a newer fix comes to wait.
  assert.equal(approvals.requeue(id, 'alice').ok, true);
  const newer = finishAwaiting({ store, config, ticketId: id });
  const post = (runId: number) =>
    app.request(`http://localhost/approvals/${id}/cancel`, {
      method: 'POST',
      headers: { cookie: `bugbot_session=${session}`, origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrfOf(html)!, return_to: `/tickets/${id}`, run: String(runId) }).toString(),
    });
  assert.equal((await post(run.id)).status, 303);
  assert.equal(store.getTicket(id)!.state, 'awaiting_approval', "the newer run's fix still waits");
  assert.ok(!store.auditTrail(id).some((a) => a.action === 'cancelled'), 'nothing cancelled');
  const after = await (await app.request(`http://localhost/tickets/${id}`, { headers: { cookie: `bugbot_session=${session}` } })).text();
  assert.match(after, new RegExp(`latest run is run ${newer.run.id}, not run ${run.id} that the page showed`));

  // Naming the run it waits with, the cancel goes ahead.
  assert.equal((await post(newer.run.id)).status, 303);
  assert.equal(store.getTicket(id)!.state, 'dropped');
});
