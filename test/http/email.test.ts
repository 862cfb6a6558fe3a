// The email routes over HTTP: Mailgun's retry schedule against the signature window, the
// email routes' own body limit, and mails attached to a Mailgun route post.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { MAX_MIME_LINES } from '../../control/triggers/email.ts';
import { buildTestApp, FakeClock, fixtureJson, postJson } from '../support/helpers.ts';

const KEY = 'mailgun-signing-key';
const ROUTE = '/triggers/email/mailgun';

/** The route capture's string fields (the HTTP layer hands attachments over as files). */
function routeFields(): Record<string, string> {
  const all = fixtureJson<Record<string, unknown>>('mailgun', 'inbound_route_parsed_form_fields.json');
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** A form signed with `timestamp` and `token`; `files` are file parts such as attachment-1. */
function signedForm(fields: Record<string, string>, timestamp: number, token: string, files: Record<string, File> = {}): FormData {
  const form = new FormData();
  const signature = createHmac('sha256', KEY).update(`${timestamp}${token}`).digest('hex');
  for (const [k, v] of Object.entries({ ...fields, timestamp: String(timestamp), token, signature })) form.set(k, v);
  for (const [k, f] of Object.entries(files)) form.set(k, f);
  return form;
}

const message = async (res: Response) => ((await res.json()) as { error: { message: string } }).error.message;

/** A body sent in chunks with no Content-Length, as a chunked upload arrives. */
function chunked(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(at, at + 64 * 1024));
      at += 64 * 1024;
    },
  });
}

/** An RFC 5322 message of about `size` bytes: a short report with a base64 screenshot attached. */
function emlWithScreenshot(size: number): string {
  const png = Buffer.alloc(Math.floor((size * 3) / 4), 7).toString('base64').replace(/.{76}/g, '$&\r\n');
  return [
    'From: Ana <ana@example.com>',
    'To: bugs@example.com',
    'Subject: Checkout broken (screenshot attached)',
    'Message-ID: <shot1@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="s1"',
    '',
    '--s1',
    'Content-Type: text/plain',
    '',
    'The checkout is blank, see the screenshot.',
    '--s1',
    'Content-Type: image/png; name="shot.png"',
    'Content-Disposition: attachment; filename="shot.png"',
    'Content-Transfer-Encoding: base64',
    '',
    png,
    '--s1--',
    '',
  ].join('\r\n');
}

test("Mailgun's retries get in: the same timestamp, token and signature 10 minutes to 8 hours later are accepted (they were 401 past 300 s)", async (t) => {
  const clock = new FakeClock();
  const { app, store } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY }, clock });
  const sent = Math.floor(clock.now().getTime() / 1000);

  // The first POST fails before the message is stored (a form missing its sender stands in
  // for any failure: a restart, a full disk); Mailgun retries it unchanged.
  const noSender = routeFields();
  delete noSender['sender'];
  const broken = await app.request(ROUTE, { method: 'POST', body: signedForm(noSender, sent, 'tok-retry') });
  assert.equal(broken.status, 400);
  for (const wait of [10 * 60, 10 * 60, 15 * 60, 30 * 60, 3600, 2 * 3600]) {
    clock.advance(wait);
    const again = await app.request(ROUTE, { method: 'POST', body: signedForm(noSender, sent, 'tok-retry') });
    assert.equal(again.status, 400, `retry after ${wait}s reaches the parser: ${await again.clone().text()}`);
  }
  clock.advance(4 * 3600); // the last retry, 8 hours after the first POST
  const last = await app.request(ROUTE, { method: 'POST', body: signedForm(routeFields(), sent, 'tok-retry') });
  assert.equal(last.status, 200, await last.clone().text());
  assert.equal(store.countEvents(), 1);
});

test('Mailgun: a timestamp past the window or too far ahead is 401 naming the limit; a used token stays refused for as long as its signature is accepted', async (t) => {
  const clock = new FakeClock();
  const { app, store, config } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY }, clock });
  const window = config.triggers.email.toleranceSeconds;
  assert.equal(window, 32400);
  const now = Math.floor(clock.now().getTime() / 1000);

  const stale = await app.request(ROUTE, { method: 'POST', body: signedForm(routeFields(), now - window - 1, 'tok-stale') });
  assert.equal(stale.status, 401);
  assert.match(await message(stale), /older than the 32400s window \(triggers\.email\.toleranceSeconds\)/);
  const ahead = await app.request(ROUTE, { method: 'POST', body: signedForm(routeFields(), now + 301, 'tok-ahead') });
  assert.equal(ahead.status, 401);
  assert.match(await message(ahead), /in the future, over the 300s allowed for clock skew/);
  assert.equal(store.countEvents(), 0);

  // Signed 300 s ahead (clock skew), its signature holds for window + skew from now.
  const ok = await app.request(ROUTE, { method: 'POST', body: signedForm(routeFields(), now + 300, 'tok-used') });
  assert.equal(ok.status, 200, await ok.clone().text());
  clock.advance(window + 300);
  const replay = await app.request(ROUTE, { method: 'POST', body: signedForm(routeFields(), now + 300, 'tok-used') });
  assert.equal(replay.status, 401);
  assert.match(await message(replay), /already used/);
});

test('email routes take a report with a screenshot (2 MB, over server.maxBodyBytes); other routes keep the global limit', async (t) => {
  const { app, store, config } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY, BUGBOT_EMAIL_TOKEN: 'mail-token' } });
  assert.equal(config.server.maxBodyBytes, 1024 * 1024);
  assert.equal(config.triggers.email.maxBodyBytes, 25 * 1024 * 1024);
  const now = Math.floor(Date.now() / 1000);

  // Mailgun's parsed route posts attachments as file parts; they are not read.
  const screenshot = new File([new Uint8Array(2 * 1024 * 1024).fill(7)], 'shot.png', { type: 'image/png' });
  const form = signedForm({ ...routeFields(), 'attachment-count': '1' }, now, 'tok-shot', { 'attachment-1': screenshot });
  const mailgun = await app.request(ROUTE, { method: 'POST', body: form });
  assert.equal(mailgun.status, 200, await mailgun.clone().text());

  const eml = Buffer.from(emlWithScreenshot(2 * 1024 * 1024));
  const headers = { authorization: 'Bearer mail-token', 'content-type': 'message/rfc822' };
  const declared = await app.request('/triggers/email/raw', { method: 'POST', body: eml, headers: { ...headers, 'content-length': String(eml.length) } });
  assert.equal(declared.status, 200, await declared.clone().text());
  const streamed = await app.request('/triggers/email/raw', { method: 'POST', body: chunked(eml), headers, duplex: 'half' } as RequestInit);
  assert.equal(streamed.status, 200, await streamed.clone().text());
  assert.equal(store.listTickets().find((x) => x.title.startsWith('Checkout broken'))?.message, 'The checkout is blank, see the screenshot.');

  const big = JSON.stringify({ title: 'x', message: 'y'.repeat(1024 * 1024) });
  const api = await postJson(app, '/api/tickets', big);
  assert.equal(api.status, 413);
  assert.match(await message(api), /exceeds 1048576 bytes \(server\.maxBodyBytes\)/);
  const apiStreamed = await app.request('/api/tickets', { method: 'POST', body: chunked(Buffer.from(big)), headers: { 'content-type': 'application/json' }, duplex: 'half' } as RequestInit);
  assert.equal(apiStreamed.status, 413);
  assert.match(await message(apiStreamed), /\(server\.maxBodyBytes\)/);
});

test('email routes refuse a body over triggers.email.maxBodyBytes with 413 naming it, declared or chunked', async (t) => {
  const limit = 3 * 1024 * 1024;
  const { app, store } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY, BUGBOT_EMAIL_TOKEN: 'mail-token' }, flags: { triggers: { email: { maxBodyBytes: limit } } } });
  const eml = Buffer.from(emlWithScreenshot(limit + 1024));
  const headers = { authorization: 'Bearer mail-token', 'content-type': 'message/rfc822' };
  const declared = await app.request('/triggers/email/raw', { method: 'POST', body: eml, headers: { ...headers, 'content-length': String(eml.length) } });
  assert.equal(declared.status, 413);
  assert.match(await message(declared), new RegExp(`exceeds ${limit} bytes \\(triggers\\.email\\.maxBodyBytes\\)`));
  const streamed = await app.request('/triggers/email/raw', { method: 'POST', body: chunked(eml), headers, duplex: 'half' } as RequestInit);
  assert.equal(streamed.status, 413);
  assert.match(await message(streamed), /\(triggers\.email\.maxBodyBytes\)/);

  const now = Math.floor(Date.now() / 1000);
  const huge = new File([new Uint8Array(limit + 1)], 'video.mp4', { type: 'video/mp4' });
  const mailgun = await app.request(ROUTE, { method: 'POST', body: signedForm(routeFields(), now, 'tok-huge', { 'attachment-1': huge }) });
  assert.equal(mailgun.status, 413);
  assert.match(await message(mailgun), /\(triggers\.email\.maxBodyBytes\)/);
  assert.equal(store.countEvents(), 0);
});

// Review finding: a 24 MB urlencoded body of millions of empty fields, unsigned, took seconds
// and a gigabyte to parse before the signature (one of its fields) could be checked.
test('Mailgun: a form of more fields than a Mailgun route posts is refused before it is parsed, urlencoded or multipart', async (t) => {
  const { app, store } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY } });
  const many = Array.from({ length: 20_000 }, (_, i) => `k${i}=`).join('&');
  const urlencoded = await app.request(ROUTE, { method: 'POST', body: many, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(urlencoded.status, 413);
  assert.match(await message(urlencoded), /^the form has \d+ fields, over the 500 a Mailgun route posts at most$/);
  const form = new FormData();
  for (let i = 0; i < 600; i++) form.append(`k${i}`, '');
  const multipart = await app.request(ROUTE, { method: 'POST', body: form });
  assert.equal(multipart.status, 413);
  assert.equal(store.countEvents(), 0);
  // A real route's form still goes through.
  const now = Math.floor(Date.now() / 1000);
  assert.equal((await app.request(ROUTE, { method: 'POST', body: signedForm(routeFields(), now, 'tok-fields') })).status, 200);
});

test("Mailgun: a mail attached to a forward (attachment-1, message/rfc822) is read into the report; the forwarder's note alone was filed before", async (t) => {
  const { app, store } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY } });
  const customer = ['From: Customer <customer@shop.test>', 'Subject: Checkout broken', 'Date: Mon, 02 Mar 2026 10:00:00 +0000', '', 'Checkout shows a blank page after "Pay".', ''].join('\r\n');
  const fields = { ...routeFields(), subject: 'Fwd: Checkout broken', 'body-plain': 'FYI, see the attached mail\r\n', 'stripped-text': 'FYI, see the attached mail', 'attachment-count': '2' };
  const files = {
    'attachment-1': new File([customer], 'Checkout broken.eml', { type: 'message/rfc822' }),
    'attachment-2': new File([new Uint8Array(1000)], 'shot.png', { type: 'image/png' }),
  };
  const res = await app.request(ROUTE, { method: 'POST', body: signedForm(fields, Math.floor(Date.now() / 1000), 'tok-fwd', files) });
  assert.equal(res.status, 200, await res.clone().text());
  const [ticket] = store.listTickets();
  assert.match(ticket!.message, /^FYI, see the attached mail\n\n---------- Forwarded message ----------\n/);
  assert.match(ticket!.message, /Subject: Checkout broken\n\nCheckout shows a blank page after "Pay"\.$/);
});

// Review finding: each attached mail was parsed whatever its lines (postal-mime spends about
// 10 µs a line of a text part on the event loop every route shares).
test('Mailgun: attached mails of more lines than bugbot parses, together, are 413 naming the limit; nothing is stored', async (t) => {
  const { app, store } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY } });
  const half = ['From: Customer <customer@shop.test>', 'Subject: Log', '', ...Array.from({ length: MAX_MIME_LINES / 2 + 10 }, () => 'a'), ''].join('\r\n');
  const files = {
    'attachment-1': new File([half], 'one.eml', { type: 'message/rfc822' }),
    'attachment-2': new File([half], 'two.eml', { type: 'message/rfc822' }),
  };
  const res = await app.request(ROUTE, { method: 'POST', body: signedForm({ ...routeFields(), subject: 'Fwd: logs' }, Math.floor(Date.now() / 1000), 'tok-lines', files) });
  assert.equal(res.status, 413);
  assert.match(await message(res), new RegExp(`^the attached mails have more than ${MAX_MIME_LINES} lines`));
  assert.equal(store.countEvents(), 0);
});

// Mailgun posts again for 8 hours on any answer but 200 and 406: a bounce or a mail with no
// text of its own, refused with a 400, came back six more times.
test('Mailgun: a bounce or a mail of nothing but quotes is refused with 406 (not sent again), naming why; nothing stored', async (t) => {
  const { app, store } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY } });
  const now = Math.floor(Date.now() / 1000);
  const bounce = await app.request(ROUTE, { method: 'POST', body: signedForm({ ...routeFields(), sender: '' }, now, 'tok-bounce') });
  assert.equal(bounce.status, 406);
  assert.deepEqual(((await bounce.clone().json()) as { error: { code: string } }).error.code, 'not_acceptable');
  assert.match(await message(bounce), /"sender" is empty or no email address: a delivery status notification \(a bounce\)/);
  const quotes = await app.request(ROUTE, { method: 'POST', body: signedForm({ ...routeFields(), subject: 'Re: Test', 'stripped-text': '', 'body-plain': '> only a quote\r\n' }, now, 'tok-quotes') });
  assert.equal(quotes.status, 406);
  assert.match(await message(quotes), /"body-plain" has no text/);
  // A form without its fields is malformed, as before.
  const fields = routeFields();
  delete fields['sender'];
  const malformed = await app.request(ROUTE, { method: 'POST', body: signedForm(fields, now, 'tok-malformed') });
  assert.equal(malformed.status, 400);
  assert.equal(store.countEvents(), 0);
});
