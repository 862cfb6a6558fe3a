// Mails are parsed on a thread of their own (control/triggers/email-parse.ts): a mail that
// takes seconds to parse leaves the other routes answering, and one that takes longer than
// triggers.email.parseTimeoutSeconds is refused without stalling the mails behind it.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_MIME_LINES } from '../../control/triggers/email.ts';
import { buildTestApp } from '../support/helpers.ts';

const RAW = '/triggers/email/raw';
const HEADERS = { authorization: 'Bearer mail-token', 'content-type': 'message/rfc822' };
const KEY = 'mailgun-signing-key';

/** Just under MAX_MIME_LINES lines of one character: seconds for postal-mime (a Blob part a line). */
function slowMail(subject = 'Log'): string {
  return ['From: Customer <customer@shop.test>', `Subject: ${subject}`, '', ...Array.from({ length: MAX_MIME_LINES - 100 }, () => 'a'), ''].join('\r\n');
}

const okMail = (subject: string) => ['From: Ann <ann@shop.test>', `Subject: ${subject}`, `Message-ID: <${subject.replace(/\W/g, '')}@shop.test>`, '', 'The checkout is blank.', ''].join('\r\n');

const message = async (res: Response) => ((await res.json()) as { error: { message: string } }).error.message;

function signedForm(fields: Record<string, string>, token: string, files: Record<string, File> = {}): FormData {
  const timestamp = Math.floor(Date.now() / 1000);
  const form = new FormData();
  const signature = createHmac('sha256', KEY).update(`${timestamp}${token}`).digest('hex');
  for (const [k, v] of Object.entries({ ...fields, timestamp: String(timestamp), token, signature })) form.set(k, v);
  for (const [k, f] of Object.entries(files)) form.set(k, f);
  return form;
}

const mailgunFields = { sender: 'ann@shop.test', from: 'Ann <ann@shop.test>', subject: 'Fwd: logs', 'body-plain': 'FYI, the log attached', recipient: 'bugs@bugbot.test' };

test('a mail whose parsing runs past triggers.email.parseTimeoutSeconds is 413 naming it, nothing is stored, and a mail sent beside it waits at most about that long', async (t) => {
  const { app, store } = buildTestApp(t, { env: { BUGBOT_EMAIL_TOKEN: 'mail-token' }, flags: { triggers: { email: { parseTimeoutSeconds: 0.5 } } } });
  // The thread is up (the limit is the parse's, not the thread's start).
  assert.equal((await app.request(RAW, { method: 'POST', body: okMail('warm up'), headers: HEADERS })).status, 200);

  const sent = performance.now();
  const slow = app.request(RAW, { method: 'POST', body: slowMail(), headers: HEADERS });
  await sleep(10);
  const beside = Promise.resolve(app.request(RAW, { method: 'POST', body: okMail('Checkout blank'), headers: HEADERS })).then((res) => ({ res, ms: performance.now() - sent }));
  const refused = await slow;
  assert.equal(refused.status, 413);
  assert.equal(await message(refused), 'the email took more than 0.5 s to parse, longer than bugbot parses a mail (triggers.email.parseTimeoutSeconds)');
  const { res, ms } = await beside;
  assert.equal(res.status, 200, await res.clone().text());
  // The slow one alone would take seconds; the one beside it waits for the limit and a new thread.
  assert.ok(ms < 3000, `the mail beside the slow one was answered after ${Math.round(ms)} ms`);
  assert.equal(store.countEvents(), 2);
  assert.ok(!store.listTickets().some((x) => x.title === 'Log'));
  // The next mail goes to a fresh thread.
  assert.equal((await app.request(RAW, { method: 'POST', body: okMail('after'), headers: HEADERS })).status, 200);
});

test('Mailgun: attached mails whose parsing runs past the limit are 413, nothing is stored and the token is not used up', async (t) => {
  const { app, store } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY }, flags: { triggers: { email: { parseTimeoutSeconds: 0.5 } } } });
  const files = { 'attachment-1': new File([slowMail('the log')], 'log.eml', { type: 'message/rfc822' }) };
  const res = await app.request('/triggers/email/mailgun', { method: 'POST', body: signedForm(mailgunFields, 'tok-slow', files) });
  assert.equal(res.status, 413);
  assert.match(await message(res), /^the attached mails took more than 0\.5 s to parse, longer than bugbot parses a mail \(triggers\.email\.parseTimeoutSeconds\)$/);
  assert.equal(store.countEvents(), 0);
  // Mailgun's retry (same token) gets in once the mail can be read.
  const retry = await app.request('/triggers/email/mailgun', { method: 'POST', body: signedForm(mailgunFields, 'tok-slow') });
  assert.equal(retry.status, 200, await retry.clone().text());
  assert.equal(store.countEvents(), 1);
});

// Last in this file: the parser thread is one per process (email-parse.ts), and on a
// loaded machine the first small mail on a thread that has just parsed this one (400,000
// lines, a heap of hundreds of MB left to collect) took more than the 0.5 s limit the
// tests above set: their warm-up mail was refused with a 413. Run first, they parse their
// small mails on threads that never parsed a large one.
//
// Review finding: within the line budget, one mail of short lines blocked the event loop
// every route shares for about 5 s (12–30 s when an attached mail was parsed again), and
// alert webhooks timed out meanwhile.
test('a mail that takes seconds to parse leaves /healthz answering within 2 s all along', async (t) => {
  const { app } = buildTestApp(t, { env: { BUGBOT_EMAIL_TOKEN: 'mail-token' } });
  let done = false;
  const post = Promise.resolve(app.request(RAW, { method: 'POST', body: slowMail(), headers: HEADERS })).finally(() => (done = true));
  let asked = 0;
  let worst = 0;
  while (!done) {
    // From before the wait: a timer that fires late (the event loop was busy) counts.
    const before = performance.now();
    await sleep(50);
    const health = await app.request('/healthz');
    assert.equal(health.status, 200);
    worst = Math.max(worst, performance.now() - before - 50);
    asked++;
  }
  const res = await post;
  // Within the default time limit on most machines, past it on a slow one: either way not a 5xx.
  assert.ok(res.status === 200 || res.status === 413, `${res.status}: ${await res.clone().text()}`);
  // The parse on this thread held /healthz for its whole length (about 5 s, longer on a slower
  // machine); storing the parsed mail here takes up to about 200 ms on a loaded one.
  assert.ok(worst < 2000, `/healthz waited ${Math.round(worst)} ms while a mail was parsed`);
  assert.ok(asked >= 3, `the parse outlasted several health checks (${asked})`);
});
