// Property-based tests of the email triggers (issue 7, fuzzing): raw RFC 5322 messages at
// POST /triggers/email/raw (the MIME parser) and Mailgun's parsed-form route at
// POST /triggers/email/mailgun. Inputs are the shared .eml and form fixtures with random
// line and field mutations, and plain junk: no 5xx, a 4xx names the problem, forgeries 401.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { HttpError } from '../../control/http-error.ts';
import { parseMailgunForm, parseRawEmail } from '../../control/triggers/email.ts';
import { buildTestApp, fixtureJson, fixtureText } from '../support/helpers.ts';
import { assertNamesProblem, controlChars, cutSurrogate, expectNo5xx, hostileText, mutated, RUNS, unicodeText, type ErrorBody } from './arbitraries.ts';

const EMLS = ['reply_gmail_quoted.eml', 'reply_outlook_quoted.eml'].map((f) => fixtureText('mailgun', f));
const FORM = Object.fromEntries(
  Object.entries(fixtureJson<Record<string, unknown>>('mailgun', 'inbound_route_parsed_form_fields.json')).map(([k, v]) => [k, String(v)]),
);
const TOKEN = 'mail-token';
const KEY = 'mailgun-signing-key';

/** Every reason parseRawEmail gives for refusing a message; a 400 must be one of them. */
const RAW_REASONS = /^email is empty$|^email could not be parsed: |^input is not an email message: it has no header fields$|^email has no From address$|^email has no (text\/plain or text\/html body|text once quotes and signature are removed)$/;

/** One line-level change to a message. */
const lineOp = fc.oneof(
  fc.record({ op: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: hostileText }),
  fc.record({ op: fc.constant('replace' as const), at: fc.nat(), text: hostileText }),
  fc.record({ op: fc.constant('header' as const), name: fc.constantFrom('From', 'Content-Type', 'Content-Transfer-Encoding', 'Subject', 'Date', 'Message-Id', 'Reply-To', 'To', 'MIME-Version'), value: fc.oneof(hostileText, fc.constantFrom('multipart/mixed; boundary=', 'multipart/alternative; boundary="x"', 'text/plain; charset=utf-7', 'text/html; charset=x-unknown', 'base64', 'quoted-printable', '=?utf-8?B?8J+SpQ==?=', '=?x?Q?=ZZ?=', '<>', '"" <@>', 'a@b, c@d', 'undisclosed-recipients:;')) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('nest' as const), depth: fc.integer({ min: 1, max: 300 }) }),
  fc.record({ op: fc.constant('bytes' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
);
type LineOp = typeof lineOp extends fc.Arbitrary<infer T> ? T : never;

/** A multipart message nested `depth` levels, the text part at the bottom. */
function nestedMultipart(depth: number): string {
  let body = 'Content-Type: text/plain\r\n\r\nthe checkout page is blank\r\n';
  for (let i = depth; i > 0; i--) body = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${body}--b${i}--\r\n`;
  return `From: someone@example.com\r\nSubject: nested\r\n${body}`;
}

function applyLineOp(eml: string, o: LineOp): string {
  const lines = eml.split('\n');
  switch (o.op) {
    case 'drop':
      lines.splice(o.at % lines.length, 1);
      return lines.join('\n');
    case 'insert':
      lines.splice(o.at % (lines.length + 1), 0, o.text);
      return lines.join('\n');
    case 'replace':
      lines[o.at % lines.length] = o.text;
      return lines.join('\n');
    case 'header': {
      const i = lines.findIndex((l) => l.toLowerCase().startsWith(`${o.name.toLowerCase()}:`));
      if (i >= 0) lines[i] = `${o.name}: ${o.value}`;
      else lines.unshift(`${o.name}: ${o.value}`);
      return lines.join('\n');
    }
    case 'truncate':
      return eml.slice(0, o.at % (eml.length + 1));
    case 'nest':
      return nestedMultipart(o.depth);
    case 'bytes': {
      // Latin-1 so each byte stays one byte on the wire.
      const at = o.at % (eml.length + 1);
      return eml.slice(0, at) + Buffer.from(o.bytes).toString('latin1') + eml.slice(at);
    }
  }
}

const mutatedEml = fc.tuple(fc.constantFrom(...EMLS), fc.array(lineOp, { minLength: 1, maxLength: 3 })).map(([eml, ops]) => ops.reduce(applyLineOp, eml));

test('POST /triggers/email/raw: mutated messages → 200 or a 400 giving the reason', async (t) => {
  const { app, store } = buildTestApp(t, { env: { BUGBOT_EMAIL_TOKEN: TOKEN } });
  await fc.assert(
    fc.asyncProperty(mutatedEml, async (eml) => {
      const before = store.countEvents();
      const res = await app.request('/triggers/email/raw', { method: 'POST', body: Buffer.from(eml, 'latin1'), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'message/rfc822' } });
      const { status, body } = await expectNo5xx(res, 'raw email');
      if (status >= 400) {
        assert.equal(status, 400);
        assert.match((body as ErrorBody).error.message, RAW_REASONS);
        assert.equal(store.countEvents(), before, 'a refused message stores nothing');
      }
    }),
    { numRuns: RUNS.http },
  );
});

test('POST /triggers/email/raw without the bearer token → 401 whatever the body', async (t) => {
  const { app, store } = buildTestApp(t, { env: { BUGBOT_EMAIL_TOKEN: TOKEN } });
  const auth = fc.constantFrom(undefined, 'Bearer wrong', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`, `Bearer ${TOKEN}x`, TOKEN);
  await fc.assert(
    fc.asyncProperty(mutatedEml, auth, async (eml, authorization) => {
      const res = await app.request('/triggers/email/raw', { method: 'POST', body: eml, headers: { 'content-type': 'message/rfc822', ...(authorization ? { authorization } : {}) } });
      assert.equal(res.status, 401);
      assert.equal(store.countEvents(), 0);
    }),
    { numRuns: 50 },
  );
});

test('parseRawEmail: any bytes → an event or a 400, a title of at most 200 characters never cut inside one', async () => {
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 2_000 }),
    mutatedEml.map((s) => Buffer.from(s, 'latin1')),
    fc.tuple(unicodeText, controlChars).map(([subject, ctl]) => Buffer.from(`From: a@b.io\r\nSubject: ${'x'.repeat(198)}${subject}${ctl}\r\n\r\nbody ${subject}\r\n`)),
  );
  let accepted = 0;
  await fc.assert(
    fc.asyncProperty(input, async (bytes) => {
      let ev;
      try {
        ev = await parseRawEmail(bytes);
      } catch (err) {
        assert.ok(err instanceof HttpError && (err.status === 400 || err.status === 406), `not a 400 or 406: ${String(err)}`);
        assert.match(err.message, RAW_REASONS);
        return;
      }
      assert.ok([...ev.title].length <= 200, `title of ${[...ev.title].length} characters`);
      assert.ok(!cutSurrogate(ev.title, ''), 'title cut inside a character');
      assert.ok(ev.message.length > 0 && ev.reporter?.id.includes('@'), 'a report with a sender');
      // Deterministic but for the receive time a message without a Date gets.
      const { firstSeen: _f, lastSeen: _l, ...again } = await parseRawEmail(bytes);
      const { firstSeen: _f1, lastSeen: _l1, ...first } = ev;
      assert.deepEqual(again, first, 'deterministic (sourceEventId included)');
      accepted++;
    }),
    { numRuns: RUNS.pure },
  );
  // Refusing every message would pass every run above: the accepted events' checks must have run.
  assert.ok(accepted >= 50, `only ${accepted} of ${RUNS.pure} messages were parsed into an event`);
});

function form(fields: Record<string, string>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.set(k, v);
  return f;
}

const sign = (ts: string, token: string, key = KEY) => createHmac('sha256', key).update(ts + token).digest('hex');

/** The form fixture's fields with mutations; `message-headers` is mutated as the JSON it holds. */
const mutatedForm = fc.oneof(
  mutated(FORM).map((m) => ({ fields: m.value, paths: m.paths })),
  mutated(JSON.parse(FORM['message-headers']!) as unknown).map((m) => ({
    fields: { ...FORM, 'message-headers': JSON.stringify(m.value) } as unknown,
    paths: [['message-headers']],
  })),
  fc.constantFrom('sender', 'from', 'From', 'body-plain', 'stripped-text', 'subject', 'message-headers').chain((field) =>
    fc.oneof(hostileText, fc.constantFrom('', '<>', 'not an address', 'a@b', '"x" <y@z.io>', '[]', '[["From"]]', '--\nsig')).map((value) => ({
      fields: { ...FORM, [field]: value } as unknown,
      paths: [[field]],
    })),
  ),
);

test('POST /triggers/email/mailgun: signed mutated forms → 200, or a 400 (malformed) or 406 (a bounce, no text) naming the field', async (t) => {
  const { app, store } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY } });
  let n = 0;
  await fc.assert(
    fc.asyncProperty(mutatedForm, async ({ fields, paths }) => {
      // Only a flat object of strings can be a form; anything else is sent as its JSON.
      const flat: Record<string, string> = {};
      if (fields !== null && typeof fields === 'object' && !Array.isArray(fields)) {
        for (const [k, v] of Object.entries(fields)) flat[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
      const token = `tok-${n++}`;
      const ts = String(Math.floor(Date.now() / 1000));
      const before = store.countEvents();
      const res = await app.request('/triggers/email/mailgun', { method: 'POST', body: form({ ...flat, timestamp: ts, token, signature: sign(ts, token) }) });
      const { status, body } = await expectNo5xx(res, 'mailgun');
      assert.notEqual(status, 401, `a correctly signed form is admitted: ${JSON.stringify(body)}`);
      assertNamesProblem(status, body, paths, 'mailgun', ['sender', 'body-plain', 'stripped-text']);
      if (status >= 400) assert.equal(store.countEvents(), before, 'a refused form stores nothing');
    }),
    { numRuns: RUNS.http },
  );
});

test('POST /triggers/email/mailgun: unsigned, forged, stale and replayed forms → 401, nothing stored', async (t) => {
  const { app, store } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: KEY } });
  const how = fc.constantFrom('unsigned', 'wrong-key', 'other-token', 'stale', 'future', 'garbage', 'no-timestamp', 'replay');
  let n = 0;
  await fc.assert(
    fc.asyncProperty(how, hostileText, async (forgery, garbage) => {
      const token = `forge-${n++}`;
      const now = Math.floor(Date.now() / 1000);
      const ts = String(now);
      const fields: Record<string, string> = {
        unsigned: { ...FORM, timestamp: ts, token },
        'wrong-key': { ...FORM, timestamp: ts, token, signature: sign(ts, token, 'not-the-key') },
        'other-token': { ...FORM, timestamp: ts, token, signature: sign(ts, `${token}x`) },
        // Past the 9-hour window into the past; past the 300 s clock skew into the future.
        stale: { ...FORM, timestamp: String(now - 9 * 3600 - 60), token, signature: sign(String(now - 9 * 3600 - 60), token) },
        future: { ...FORM, timestamp: String(now + 3600), token, signature: sign(String(now + 3600), token) },
        garbage: { ...FORM, timestamp: ts, token, signature: garbage },
        'no-timestamp': { ...FORM, token, signature: sign('', token) },
        replay: { ...FORM, timestamp: ts, token, signature: sign(ts, token) },
      }[forgery]!;
      if (forgery === 'replay') {
        const first = await app.request('/triggers/email/mailgun', { method: 'POST', body: form(fields) });
        assert.equal(first.status, 200, await first.clone().text());
      }
      const before = store.countEvents();
      const res = await app.request('/triggers/email/mailgun', { method: 'POST', body: form(fields) });
      assert.equal(res.status, 401, `${forgery}: ${await res.clone().text()}`);
      assert.match(((await res.json()) as ErrorBody).error.message, /Mailgun|replayed/);
      assert.equal(store.countEvents(), before);
    }),
    { numRuns: 80 },
  );
});

test('parseMailgunForm: any fields → an event, or a 400 (malformed) or 406 (a bounce, no text) that names a form field', () => {
  const fields = fc.dictionary(
    fc.oneof(fc.constantFrom('sender', 'from', 'From', 'token', 'body-plain', 'stripped-text', 'subject', 'message-headers', 'recipient', 'Reply-To', 'Date'), fc.string({ maxLength: 8 })),
    fc.oneof(hostileText, fc.constantFrom('a@b.io', 'Dana <dana@example.org>', '[["Reply-To","x@y.io"]]', '[[1,2]]', '{}', 'Hello\n\n> quoted', '--')),
    { maxKeys: 8 },
  );
  // Random fields alone make a valid form about once in 500 runs: half the runs start from one.
  const valid = fc.record({ sender: fc.constantFrom('a@b.io', 'Dana <dana@example.org>'), token: fc.string({ minLength: 1, maxLength: 20 }), 'body-plain': hostileText });
  const forms = fc.oneof(fields, fc.tuple(fields, valid).map(([extra, base]) => ({ ...extra, ...base })));
  let accepted = 0;
  fc.assert(
    fc.property(forms, (f) => {
      let ev;
      try {
        ev = parseMailgunForm(f);
      } catch (err) {
        assert.ok(err instanceof HttpError && (err.status === 400 || err.status === 406), `not a 400 or 406: ${String(err)}`);
        assert.match(err.message, /^Mailgun form (field "[\w-]+"|has no "body-plain" or "stripped-text" field)/);
        return;
      }
      assert.ok(ev.message.length > 0 && ev.reporter?.id.includes('@') && ev.sourceEventId === f.token);
      accepted++;
    }),
    { numRuns: RUNS.pure },
  );
  assert.ok(accepted >= 50, `only ${accepted} of ${RUNS.pure} forms were parsed into an event`);
});
