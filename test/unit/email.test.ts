import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpError } from '../../control/http-error.ts';
import { fixedReply } from '../../control/notify/email.ts';
import { configSchema } from '../../control/config.ts';
import { forwardedMessageText, MAX_MIME_LINES, MAX_REPORT_CHARS, parseMailgunForm, parseRawEmail, verifyMailgunSignature } from '../../control/triggers/email.ts';
import { htmlToText, isForwardSubject, mailKind, stripQuotedReply } from '../../control/triggers/email-text.ts';
import { parseMime } from '../../control/triggers/email-parse.ts';
import PostalMime from 'postal-mime';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = resolve(repoRoot, '../shared/fixtures/mailgun');
if (!existsSync(fixtures)) throw new Error(`Mailgun fixtures not found at ${fixtures}`);
const fixture = (name: string) => readFileSync(resolve(fixtures, name));

interface Vector {
  signing_key: string;
  timestamp: string;
  token: string;
  signature: string;
  expected_valid: boolean;
}
const vectors = (JSON.parse(fixture('webhook_signature_vectors.json').toString('utf8')) as { vectors: Vector[] }).vectors;

/** The route form as the HTTP layer will hand it over: string fields only (no Received array, no attachments). */
function routeForm(): Record<string, string> {
  const all = JSON.parse(fixture('inbound_route_parsed_form_fields.json').toString('utf8')) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function rejects(status: number, pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof HttpError, `expected HttpError, got ${String(err)}`);
    assert.equal(err.status, status);
    assert.match(err.message, pattern);
    return true;
  };
}

const crlf = (lines: string[]) => lines.join('\r\n');

/** An email's event id: its Message-ID with its sender, so a second delivery is a duplicate and another sender's reuse is not. */
const msgId = (from: string, messageId: string) => `msg:${createHash('sha256').update(`${from}\n${messageId}`).digest('hex')}`;

describe('verifyMailgunSignature', () => {
  // The default window: Mailgun retries a failed route POST for 8 hours with its first timestamp.
  const tolerance = configSchema.parse({}).triggers.email.toleranceSeconds;

  for (const v of vectors) {
    it(`${v.expected_valid ? 'accepts' : 'rejects'} vector ${v.token.slice(0, 8)}…`, () => {
      const check = () =>
        verifyMailgunSignature(v, v.signing_key, { nowSeconds: Number(v.timestamp), toleranceSeconds: tolerance });
      if (v.expected_valid) check();
      else assert.throws(check, rejects(401, /"signature" does not match/));
    });
  }

  const good = vectors.find((v) => v.expected_valid)!;
  const at = (now: number) => () => verifyMailgunSignature(good, good.signing_key, { nowSeconds: now, toleranceSeconds: tolerance });

  it("accepts Mailgun's last retry (8 hours after the first POST, same timestamp) with the default window: retries were refused at 300 s", () => {
    assert.equal(tolerance, 9 * 3600);
    at(Number(good.timestamp) + 10 * 60)();
    at(Number(good.timestamp) + 8 * 3600 + 60)();
  });

  it('accepts a timestamp exactly at the window in the past, or at the 300 s clock skew in the future', () => {
    at(Number(good.timestamp) + tolerance)();
    at(Number(good.timestamp) - 300)();
  });

  it('rejects a timestamp older than the window, or further ahead than the clock skew, with 401 naming the limit', () => {
    assert.throws(at(Number(good.timestamp) + tolerance + 1), rejects(401, /32401s old, older than the 32400s window \(triggers\.email\.toleranceSeconds\)/));
    assert.throws(at(Number(good.timestamp) - 301), rejects(401, /301s in the future, over the 300s allowed for clock skew/));
    // The window into the past is not the one into the future.
    assert.throws(at(Number(good.timestamp) - 3600), rejects(401, /in the future/));
  });

  it('rejects the wrong key, a malformed signature and a non-numeric timestamp', () => {
    const now = { nowSeconds: Number(good.timestamp), toleranceSeconds: tolerance };
    assert.throws(() => verifyMailgunSignature(good, 'key-other', now), rejects(401, /does not match/));
    for (const signature of [good.signature.slice(2), `${good.signature.slice(0, 62)}zz`, `${good.signature}00`]) {
      assert.throws(() => verifyMailgunSignature({ ...good, signature }, good.signing_key, now), rejects(401, /does not match/));
    }
    assert.throws(
      () => verifyMailgunSignature({ ...good, timestamp: `${good.timestamp}.5` }, good.signing_key, now),
      rejects(401, /not a Unix time/),
    );
  });

  it('accepts an upper-case hex signature', () => {
    verifyMailgunSignature({ ...good, signature: good.signature.toUpperCase() }, good.signing_key, {
      nowSeconds: Number(good.timestamp),
      toleranceSeconds: tolerance,
    });
  });

  for (const field of ['timestamp', 'token', 'signature'] as const) {
    it(`rejects a missing ${field} with 401 naming it`, () => {
      const fields = { timestamp: good.timestamp, token: good.token, signature: good.signature, [field]: undefined };
      assert.throws(
        () => verifyMailgunSignature(fields, good.signing_key, { nowSeconds: Number(good.timestamp), toleranceSeconds: tolerance }),
        rejects(401, new RegExp(`missing field "${field}"`)),
      );
    });
  }

  it('refuses to run with an empty signing key', () => {
    assert.throws(() => verifyMailgunSignature(good, '', { nowSeconds: 0, toleranceSeconds: tolerance }), /signing key is empty/);
  });
});

describe('parseMailgunForm', () => {
  const expected = {
    source: 'email',
    kind: 'report',
    title: 'Test',
    // A new mail (no In-Reply-To or References, no "Re:"): its ">" lines are the sender's
    // own, so Mailgun's stripped-text (which drops them) is not used; the signature goes.
    message: 'bold text\n\nsome more bold text\n\nsome italic text\n\n> multiline\n> quoted\n> text',
    labels: { to: 'foo+bar@multimail.mailgun.org' },
    count: 1,
    firstSeen: '2013-04-16T00:20:12.000Z',
    lastSeen: '2013-04-16T00:20:12.000Z',
    reporter: {
      kind: 'email',
      id: 'james@opennorth.ca',
      address: 'james@opennorth.ca',
      thread: '<E102015D-F580-4316-81FA-7324838A3AE8@opennorth.ca>',
      subject: 'Test',
    },
    human: true,
    // The message (its Message-ID with its sender), not the delivery (the token).
    sourceEventId: msgId('james@opennorth.ca', '<E102015D-F580-4316-81FA-7324838A3AE8@opennorth.ca>'),
  };

  it('the same message delivered twice (another token) is one event; another sender reusing its Message-ID is another', () => {
    const again = parseMailgunForm({ ...routeForm(), token: 'another-token-of-a-second-delivery' });
    assert.equal(again.sourceEventId, parseMailgunForm(routeForm()).sourceEventId);
    const other = parseMailgunForm({ ...routeForm(), sender: 'mallory@example.net', from: 'Mallory <mallory@example.net>' });
    assert.notEqual(other.sourceEventId, again.sourceEventId);
  });

  it('reads a From whose display name holds an unquoted comma', () => {
    const ev = parseMailgunForm({ ...routeForm(), from: 'Doe, John <john@example.com>' });
    assert.equal(ev.reporter?.address, 'john@example.com');
  });

  it('turns the real route capture (JSON form) into a report event', () => {
    assert.deepEqual(parseMailgunForm(routeForm()), expected);
  });

  it("takes a forward's whole body, not Mailgun's stripped-text (only the note above the forwarded mail)", () => {
    const body = 'FYI, see below.\n\nFrom: Customer <c@example.com>\nSent: Monday\nTo: support@example.com\nSubject: Checkout broken\n\nCheckout shows a blank page.';
    const ev = parseMailgunForm({ ...routeForm(), subject: 'FW: Checkout broken', 'body-plain': body, 'stripped-text': 'FYI, see below.' });
    assert.match(ev.message, /Checkout shows a blank page\./);
  });

  it('a new mail keeps its pasted header block and "> " lines (not Mailgun\'s stripped-text); a reply uses stripped-text, as the raw route strips', () => {
    const body = 'Login fails:\r\n> TypeError: user is undefined\r\n\r\nFrom: Shop <noreply@shop.test>\r\nDate: Monday\r\nSubject: Reset\r\n\r\nthe reset mail\r\n\r\n-- \r\nOps';
    const fields: Record<string, string> = { ...routeForm(), subject: 'Login fails', 'body-plain': body, 'stripped-text': 'Login fails:' };
    const kept = 'Login fails:\n> TypeError: user is undefined\n\nFrom: Shop <noreply@shop.test>\nDate: Monday\nSubject: Reset\n\nthe reset mail';
    assert.equal(parseMailgunForm(fields).message, kept);
    assert.equal(parseMailgunForm({ ...fields, subject: 'RE: Login fails' }).message, 'Login fails:');
    const headers = JSON.parse(fields['message-headers']!) as [string, string][];
    headers.push(['In-Reply-To', '<t1@shop.test>']);
    assert.equal(parseMailgunForm({ ...fields, 'message-headers': JSON.stringify(headers) }).message, 'Login fails:');
  });

  it('appends the text of attached mails (a forward as attachment) after the note', () => {
    const forwarded = '---------- Forwarded message ----------\nFrom: C <c@shop.test>\n\nBlank page.';
    const fields = { ...routeForm(), subject: 'Fwd: Checkout', 'body-plain': 'FYI, see the attached mail\r\n', 'stripped-text': 'FYI, see the attached mail' };
    assert.equal(parseMailgunForm(fields, [forwarded]).message, `FYI, see the attached mail\n\n${forwarded}`);
    const bare = routeForm();
    delete bare['body-plain'];
    delete bare['stripped-text'];
    assert.equal(parseMailgunForm(bare, [forwarded]).message, forwarded);
  });

  it('gives the same event from the raw multipart/form-data capture', async () => {
    const capture = fixture('inbound_route_parsed_multipart_raw.txt').toString('latin1');
    const split = capture.indexOf('\r\n\r\n');
    const contentType = /^Content-Type: (.+)$/im.exec(capture.slice(0, split))![1]!;
    const form = await new Response(Buffer.from(capture.slice(split + 4), 'latin1'), {
      headers: { 'content-type': contentType },
    }).formData();
    const fields: Record<string, string> = {};
    for (const [name, value] of form) if (typeof value === 'string' && !(name in fields)) fields[name] = value;
    assert.deepEqual(parseMailgunForm(fields), expected);
  });

  it('strips body-plain itself when stripped-text is absent or empty', () => {
    for (const strippedText of [undefined, '']) {
      const form = routeForm();
      if (strippedText === undefined) delete form['stripped-text'];
      else form['stripped-text'] = strippedText;
      assert.equal(parseMailgunForm(form).message, expected.message);
    }
  });

  it('never carries the raw message, HTML or headers', () => {
    const json = JSON.stringify(parseMailgunForm(routeForm()));
    for (const leak of ['Signature block', '<b>', 'X-Mailgun', 'Received', 'attachment']) {
      assert.ok(!json.includes(leak), `event contains ${leak}`);
    }
  });

  it('uses Reply-To from message-headers for the reply address', () => {
    const form = routeForm();
    const headers = JSON.parse(form['message-headers']!) as [string, string][];
    headers.push(['Reply-To', 'Support Team <Help@Example.org>']);
    form['message-headers'] = JSON.stringify(headers);
    const event = parseMailgunForm(form);
    assert.equal(event.reporter?.address, 'help@example.org');
    assert.equal(event.reporter?.id, 'james@opennorth.ca');
  });

  it('files mail a program sent (RFC 3834) like any report, marked never to be answered', () => {
    for (const extra of [['Auto-Submitted', 'auto-replied'], ['Auto-Submitted', 'auto-generated; type=alert'], ['Precedence', 'bulk'], ['Precedence', 'list'], ['Precedence', 'auto_reply'], ['X-Autoreply', 'yes'], ['X-Auto-Response-Suppress', 'All'], ['List-Id', 'Shop users <users.shop.test>']]) {
      const form = routeForm();
      const headers = JSON.parse(form['message-headers']!) as [string, string][];
      headers.push(extra as [string, string]);
      form['message-headers'] = JSON.stringify(headers);
      const event = parseMailgunForm(form);
      assert.equal(event.reporter?.automatic, true, extra.join(': '));
      assert.equal(event.title, 'Test', 'still filed');
    }
    const form = routeForm();
    const headers = JSON.parse(form['message-headers']!) as [string, string][];
    headers.push(['Auto-Submitted', 'no']);
    form['message-headers'] = JSON.stringify(headers);
    assert.equal(parseMailgunForm(form).reporter?.automatic, undefined, 'Auto-Submitted: no is a person');
    assert.equal(parseMailgunForm(routeForm()).reporter?.automatic, undefined);
  });

  it('answers no no-reply address: a report from one is filed, and nobody is written to', () => {
    for (const [from, replyTo] of [
      ['GitHub <noreply@github.com>', undefined],
      ['Alerts <no-reply+prod@monitor.example>', undefined],
      ['DoNotReply@bank.example', undefined],
      ['Ana <ana@example.com>', 'do-not-reply@example.com'],
    ] as const) {
      const form: Record<string, string> = { ...routeForm(), from };
      const headers = (JSON.parse(form['message-headers']!) as [string, string][]).filter(([k]) => k !== 'From' && k !== 'Reply-To');
      headers.push(['From', from]);
      if (replyTo) headers.push(['Reply-To', replyTo]);
      form['message-headers'] = JSON.stringify(headers);
      const event = parseMailgunForm(form);
      assert.equal(event.reporter?.address, undefined, `${from} ${replyTo ?? ''}`);
      assert.ok(event.message.length > 0);
    }
    // Not every address that mentions it is one.
    const form = { ...routeForm(), from: 'Noreplyson <noreplyson@example.com>' };
    assert.equal(parseMailgunForm(form).reporter?.address, 'noreplyson@example.com');
  });

  it('answers only a plain address: a quoted local part (which a mailer could split) gets no reply address', () => {
    const form = routeForm();
    const headers = JSON.parse(form['message-headers']!) as [string, string][];
    headers.push(['Reply-To', '"x,victim1"@corp.test']);
    form['message-headers'] = JSON.stringify(headers);
    // The Reply-To is no plain address: the reply goes to From instead.
    assert.equal(parseMailgunForm(form).reporter?.address, 'james@opennorth.ca');
  });

  // A form without the field is malformed (400); an empty envelope sender is a bounce, which
  // Mailgun would post again for 8 hours on any refusal but a 406.
  it('rejects a missing sender with 400 and an empty one (a bounce) with 406, naming it', () => {
    const noSender = routeForm();
    delete noSender['sender'];
    assert.throws(() => parseMailgunForm(noSender), rejects(400, /"sender" is missing/));
    for (const sender of ['', '<>', 'not an address']) {
      assert.throws(() => parseMailgunForm({ ...routeForm(), sender }), rejects(406, /"sender" is empty or no email address: a delivery status notification/));
    }
  });

  // Review finding: only an empty sender was refused here; a mail system's notice whose
  // envelope sender a forwarder had set was filed, and the fix answered to MAILER-DAEMON.
  it('refuses a bounce as the raw route does (a multipart/report, a mail system as From or sender), naming the field, with 406', () => {
    const bounce = (fields: Record<string, string>, headers: [string, string][] = []) => {
      const form: Record<string, string> = { ...routeForm(), subject: 'Undelivered Mail Returned to Sender', ...fields };
      form['message-headers'] = JSON.stringify([...(JSON.parse(form['message-headers']!) as [string, string][]).filter(([k]) => k !== 'Content-Type'), ...headers]);
      return () => parseMailgunForm(form);
    };
    const dsn = /shows a delivery status notification \(a bounce\), not a report/;
    assert.throws(bounce({}, [['Content-Type', 'multipart/report; report-type=delivery-status; boundary="b"']]), rejects(406, /^Mailgun form field "message-headers" shows/));
    assert.throws(bounce({ from: 'Mail Delivery System <MAILER-DAEMON@mx.example.com>' }), rejects(406, /^Mailgun form field "from" shows/));
    assert.throws(bounce({ sender: 'postmaster@mx.example.com' }), rejects(406, dsn));
    assert.equal(parseMailgunForm(routeForm()).reporter?.address, 'james@opennorth.ca', 'a person still gets in');
  });

  it('rejects a form without a body with 400, and one with nothing but quotes with 406', () => {
    const form = routeForm();
    delete form['stripped-text'];
    delete form['body-plain'];
    assert.throws(() => parseMailgunForm(form), rejects(400, /"body-plain" or "stripped-text"/));
    form['body-plain'] = '> only a quote\r\n\r\n-- \r\nsig';
    assert.throws(() => parseMailgunForm({ ...form, subject: 'Re: Test' }), rejects(406, /"body-plain" has no text/));
    form['body-plain'] = '\r\n-- \r\nsig';
    assert.throws(() => parseMailgunForm(form), rejects(406, /"body-plain" has no text/));
  });

  it('rejects a missing token and malformed message-headers with 400', () => {
    const noToken = routeForm();
    delete noToken['token'];
    assert.throws(() => parseMailgunForm(noToken), rejects(400, /"token"/));
    for (const bad of ['{not json', '{"From": "x"}', '[["From"]]']) {
      assert.throws(() => parseMailgunForm({ ...routeForm(), 'message-headers': bad }), rejects(400, /"message-headers"/));
    }
  });

  it('titles an empty subject "(no subject)" and falls back to now without a Date', () => {
    const form = routeForm();
    form['subject'] = '  ';
    form['Subject'] = '';
    form['message-headers'] = '[]';
    delete form['Date'];
    const before = Date.now();
    const event = parseMailgunForm(form);
    assert.equal(event.title, '(no subject)');
    assert.equal(event.reporter?.subject, undefined);
    const seen = Date.parse(event.firstSeen);
    assert.ok(seen >= before && seen <= Date.now());
  });
});

describe('parseRawEmail', () => {
  it('cuts a report of megabytes (a pasted log: the route takes 25 MB) at MAX_REPORT_CHARS, at a line end, and says so', async () => {
    const line = 'ERROR 2026-11-21T10:00:00Z payment worker failed: timeout after 30000 ms\n';
    const body = line.repeat(Math.ceil((3 * MAX_REPORT_CHARS) / line.length));
    const event = await parseRawEmail(`From: Ann <ann@example.com>\r\nTo: support@example.com\r\nSubject: payments keep failing\r\nMessage-ID: <big@example.com>\r\n\r\n${body}`);
    assert.ok(event.message.length < MAX_REPORT_CHARS + 200, String(event.message.length));
    assert.match(event.message, /timeout after 30000 ms\n\[… the mail's text goes on for \d+ more characters, left out\]$/);
  });

  it('refuses a bounce (empty Return-Path, a multipart/report, a mail system sender): not a report, never answered', async () => {
    const mail = (headers: string, body = 'Delivery to the following recipient failed permanently.') =>
      `${headers}\r\nTo: support@example.com\r\nSubject: Delivery Status Notification (Failure)\r\nMessage-ID: <b1@mx.example.com>\r\n\r\n${body}\r\n`;
    for (const headers of [
      'From: Mail Delivery System <bounces@mx.example.com>\r\nReturn-Path: <>',
      'From: mailer-daemon@mx.example.com',
      'From: Postmaster <postmaster@mx.example.com>',
      'From: x@mx.example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"',
    ]) {
      await assert.rejects(parseRawEmail(mail(headers)), /a delivery status notification \(a bounce\), not a report/, headers);
    }
  });

  it('Gmail reply: keeps "Hello", drops the quote, threads on the Message-ID', async () => {
    const event = await parseRawEmail(fixture('reply_gmail_quoted.eml'));
    const messageId = '<CAKsfaBW4hj0Gek6TwbR3erng4P1y0CZzJ0d=pXtCNnYnbe7PLg@mail.gmail.com>';
    assert.deepEqual(event, {
      source: 'email',
      kind: 'report',
      title: 'Test',
      message: 'Hello',
      labels: { to: 'bob@example.com' },
      count: 1,
      firstSeen: '2012-04-02T16:21:52.000Z',
      lastSeen: '2012-04-02T16:21:52.000Z',
      reporter: { kind: 'email', id: 'xxx@gmail.com', address: 'xxx@gmail.com', thread: messageId, subject: 'Re: Test' },
      human: true,
      sourceEventId: msgId('xxx@gmail.com', messageId),
    });
  });

  it('marks an autoresponder or a mailing list message as never to be answered', async () => {
    const raw = fixture('reply_gmail_quoted.eml').toString('latin1');
    for (const header of ['Auto-Submitted: auto-replied', 'Precedence: junk', 'List-Id: <dev.lists.shop.test>']) {
      const event = await parseRawEmail(`${header}\r\n${raw}`);
      assert.equal(event.reporter?.automatic, true, header);
    }
    assert.equal((await parseRawEmail(raw)).reporter?.automatic, undefined);
  });

  it("the reply's References carry the thread before the report, then the report (RFC 5322 §3.6.4)", async () => {
    const raw = fixture('reply_gmail_quoted.eml').toString('latin1');
    const chained = `References: <first@shop.test>\r\n <second@shop.test> junk <${'x'.repeat(300)}@long>\r\n${raw}`;
    const event = await parseRawEmail(chained);
    assert.equal(event.reporter?.references, '<first@shop.test> <second@shop.test>', 'ids only, each of a sane length');
    const ticket = { id: 7, title: 'Checkout fails', reporters: [] } as unknown as Parameters<typeof fixedReply>[0]['ticket'];
    const reply = fixedReply({ kind: 'fixed', ticket }, event.reporter!, { stagingBranch: 'staging', buttons: false, from: 'bugbot@shop.test' });
    assert.equal(reply?.inReplyTo, event.reporter?.thread);
    assert.equal(reply?.references, `<first@shop.test> <second@shop.test> ${event.reporter?.thread}`);
    const form = routeForm();
    const headers = JSON.parse(form['message-headers']!) as [string, string][];
    headers.push(['References', '<a@b.test>']);
    form['message-headers'] = JSON.stringify(headers);
    assert.equal(parseMailgunForm(form).reporter?.references, '<a@b.test>');
    assert.equal((await parseRawEmail(raw)).reporter?.references, undefined);
  });

  // Review finding: the Message-ID was kept as written, so a comment after it, a second id
  // or a line break an encoded word decoded to went into the reply's In-Reply-To
  // ("<x@y> (comment)>"): a header no client threads on.
  it("threads the reply on the Message-ID's one <id>, whatever else its header holds", async () => {
    const ticket = { id: 7, title: 'Checkout fails', reporters: [] } as unknown as Parameters<typeof fixedReply>[0]['ticket'];
    const opts = { stagingBranch: 'staging', buttons: false, from: 'bugbot@shop.test' };
    const mail = (messageId: string) => crlf(['From: Ann <ann@example.com>', 'To: bugs@shop.test', 'Subject: Checkout fails', `Message-ID: ${messageId}`, '', 'The checkout is blank.']);
    for (const [header, thread] of [
      ['<m1@example.com> (added by the gateway)', '<m1@example.com>'],
      ['<m1@example.com> <m2@example.com>', '<m1@example.com>'],
      ['=?utf-8?Q?<m1@example.com>=0D=0ABcc:_victim@evil.test?=', '<m1@example.com>'],
      ['m1@example.com', '<m1@example.com>'],
      [`<${'x'.repeat(300)}@example.com>`, undefined],
    ] as const) {
      const event = await parseRawEmail(mail(header));
      assert.equal(event.reporter?.thread, thread, header);
      const reply = fixedReply({ kind: 'fixed', ticket }, event.reporter!, opts);
      assert.equal(reply?.inReplyTo, thread, header);
      assert.equal(reply?.references, thread, header);
    }
    const form = routeForm();
    const headers = (JSON.parse(form['message-headers']!) as [string, string][]).filter(([k]) => k !== 'Message-Id');
    form['message-headers'] = JSON.stringify([...headers, ['Message-Id', '<m1@example.com>\r\nBcc: victim@evil.test']]);
    delete form['Message-Id'];
    assert.equal(parseMailgunForm(form).reporter?.thread, '<m1@example.com>');
    // The event id still hashes the Message-ID as written: a redelivery stays a duplicate.
    assert.equal((await parseRawEmail(mail('<m1@example.com> (x)'))).sourceEventId, msgId('ann@example.com', '<m1@example.com> (x)'));
  });

  // Review finding: a subject, Message-ID or Delivered-To of megabytes was stored whole with
  // the reporter (and its labels) of every report, and the subject sent back in the reply.
  it('keeps no subject, thread or "to" label past what a header holds', async () => {
    const event = await parseRawEmail(
      crlf(['From: ann@example.com', `Subject: ${'s'.repeat(600_000)}`, `Message-ID: <${'m'.repeat(600_000)}@h>`, `Delivered-To: ${'d'.repeat(600_000)}@h`, '', 'body']),
    );
    assert.equal(event.title.length, 200);
    assert.equal(event.reporter?.subject, undefined);
    assert.equal(event.reporter?.thread, undefined);
    assert.deepEqual(event.labels, {});
    const ok = await parseRawEmail(crlf(['From: ann@example.com', `Subject: ${'s'.repeat(998)}`, '', 'body']));
    assert.equal(ok.reporter?.subject?.length, 998);
  });

  // Review finding: a Reply-To naming the address bugbot receives mail at (or a report "from"
  // bugbot's own address) was answered: the reply came back in as a report of its own.
  it('never answers the address the mail came in at, nor bugbot\'s own', async () => {
    const raw = await parseRawEmail(crlf(['From: ann@example.com', 'Reply-To: Bugs <Bugs@Shop.test>', 'To: bugs@shop.test', 'Subject: Checkout fails', '', 'The checkout is blank.']));
    assert.equal(raw.reporter?.id, 'ann@example.com');
    assert.equal(raw.reporter?.address, undefined);
    const form = routeForm();
    const headers = JSON.parse(form['message-headers']!) as [string, string][];
    form['message-headers'] = JSON.stringify([...headers, ['Reply-To', 'foo+bar@multimail.mailgun.org']]);
    assert.equal(parseMailgunForm(form).reporter?.address, undefined);

    const ticket = { id: 7, title: 'Checkout fails', reporters: [] } as unknown as Parameters<typeof fixedReply>[0]['ticket'];
    const own = { kind: 'email' as const, id: 'bugbot@shop.test', address: 'bugbot@shop.test', subject: 'Re: Checkout fails' };
    for (const from of ['bugbot@shop.test', 'Shop bugbot <BugBot@Shop.test>']) {
      assert.equal(fixedReply({ kind: 'fixed', ticket }, own, { stagingBranch: 'staging', from }), undefined, from);
    }
    assert.equal(fixedReply({ kind: 'fixed', ticket }, { ...own, address: 'ann@example.com' }, { stagingBranch: 'staging', from: 'Shop bugbot <bugbot@shop.test>' })?.to, 'ann@example.com');
  });

  it('the "fixed" reply skips mail a program sent and a reporter with no address to answer', async () => {
    const ticket = { id: 7, title: 'Checkout fails', reporters: [] } as unknown as Parameters<typeof fixedReply>[0]['ticket'];
    const opts = { stagingBranch: 'staging', buttons: false, from: 'bugbot@shop.test' };
    const person = { kind: 'email' as const, id: 'a@shop.test', address: 'a@shop.test', subject: 'Checkout fails' };
    assert.equal(fixedReply({ kind: 'fixed', ticket }, person, opts)?.to, 'a@shop.test');
    assert.equal(fixedReply({ kind: 'fixed', ticket }, { ...person, automatic: true }, opts), undefined);
    const { address: _none, ...unanswerable } = person;
    assert.equal(fixedReply({ kind: 'fixed', ticket }, unanswerable, opts), undefined);
  });

  it('a sender whose address has a quoted local part is filed, with no address to answer', async () => {
    const raw = fixture('reply_gmail_quoted.eml').toString('latin1').replace(/^From: .*$/m, 'From: "x,victim1"@corp.test');
    const event = await parseRawEmail(raw);
    assert.equal(event.reporter?.id, 'x,victim1@corp.test', 'the parser drops the quotes');
    assert.equal(event.reporter?.address, undefined, 'so no reply goes to what a mailer would read as two addresses');
  });

  it('Outlook reply: keeps "Hello"; no Message-ID or Date, so sha256 id and now', async () => {
    // The capture has neither In-Reply-To nor a "Re:" subject; the header says it is a reply.
    const raw = Buffer.concat([Buffer.from('In-Reply-To: <loop-4f50f20e@xxx.mailgun.org>\r\n'), fixture('reply_outlook_quoted.eml')]);
    const before = Date.now();
    const event = await parseRawEmail(raw);
    assert.equal(event.message, 'Hello');
    assert.equal(event.title, 'Test');
    assert.equal(event.reporter?.id, 'me@example.com');
    assert.equal(event.reporter?.thread, undefined);
    assert.equal(event.sourceEventId, createHash('sha256').update(raw).digest('hex'));
    assert.ok(Date.parse(event.firstSeen) >= before && Date.parse(event.firstSeen) <= Date.now());
    assert.ok(!JSON.stringify(event).includes('MsoNormal'));
    // A string and its UTF-8 bytes are the same message.
    assert.equal((await parseRawEmail(raw.toString('utf8'))).sourceEventId, event.sourceEventId);
  });

  it('decodes a base64 text/plain beside a quoted-printable HTML part', async () => {
    const plain = 'Die Seite stürzt beim Speichern ab — Fehler 500.\n\nOn Tue, Mar 3, 2026 at 9:00 AM, Bugbot <\nbugbot@example.com> wrote:\n> Ticket #12 was fixed.\n';
    const raw = crlf([
      'From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <Juergen@Example.DE>',
      'Reply-To: support-thread@example.de',
      'To: bugs@example.com',
      'Subject: =?UTF-8?B?UmU6IFNwZWljaGVybiBrYXB1dHQg8J+Qng==?=',
      'Date: Tue, 03 Mar 2026 10:15:00 +0100',
      'Message-ID: <abc123@example.de>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/alternative; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      ...(Buffer.from(plain, 'utf8').toString('base64').match(/.{1,76}/g) ?? []),
      '--b1',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      '<p>HTML version =E2=80=94 not used</p>',
      '--b1--',
      '',
    ]);
    const event = await parseRawEmail(raw);
    assert.equal(event.message, 'Die Seite stürzt beim Speichern ab — Fehler 500.');
    assert.equal(event.title, 'Speichern kaputt 🐞');
    assert.equal(event.reporter?.subject, 'Re: Speichern kaputt 🐞');
    assert.equal(event.reporter?.id, 'juergen@example.de');
    assert.equal(event.reporter?.address, 'support-thread@example.de');
    assert.equal(event.firstSeen, '2026-03-03T09:15:00.000Z');
    assert.equal(event.sourceEventId, msgId('juergen@example.de', '<abc123@example.de>'));
  });

  it("falls back to a quoted-printable latin-1 HTML body as text, a reply's blockquote dropped", async () => {
    const raw = crlf([
      'From: Ana <ana@example.com>',
      'Subject: Checkout broken',
      'Content-Type: text/html; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      'In-Reply-To: <q1@example.com>',
      '',
      '<html><head><style>p { color: red; }</style><title>x</title></head><body>',
      '<p>The checkout fails for M=FCnchen addresses &amp; shows &lt;blank&gt;:</p>',
      '<pre>TypeError: x is undefined\n    at pay (cart.js:1:2)</pre>',
      '<ul><li>step one</li><li>step two</li></ul>',
      '<div class=3D"gmail_quote">On Mon, Mar 2, 2026 at 1:00 PM, Bob &lt;bob@example.com&gt; wrote:<br>',
      '<blockquote>old <blockquote>older</blockquote> text</blockquote></div>',
      '<script>alert(1)</script></body></html>',
      '',
    ]);
    const event = await parseRawEmail(Buffer.from(raw, 'latin1'));
    assert.equal(
      event.message,
      'The checkout fails for München addresses & shows <blank>:\n\nTypeError: x is undefined\n    at pay (cart.js:1:2)\n\n- step one\n- step two',
    );
  });

  it('a forward with the customer\'s mail attached (message/rfc822) files the attached mail\'s text, marked as forwarded', async () => {
    const customer = crlf([
      'From: Customer <customer@shop.test>',
      'To: support@example.com',
      'Subject: Checkout broken',
      'Date: Mon, 02 Mar 2026 10:00:00 +0000',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Checkout shows a blank page after "Pay".',
      '> TypeError: Cannot read properties of undefined (reading \'total\')',
    ]);
    const raw = crlf([
      'From: Agent <agent@example.com>',
      'To: bugs@example.com',
      'Subject: Fwd: Checkout broken',
      'Message-ID: <fwd1@example.com>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="m1"',
      '',
      '--m1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'FYI, see the attached mail',
      '',
      '-- ',
      'Agent, Support',
      '--m1',
      'Content-Type: message/rfc822; name="Checkout broken.eml"',
      'Content-Disposition: attachment; filename="Checkout broken.eml"',
      '',
      customer,
      '--m1',
      'Content-Type: image/png; name="shot.png"',
      'Content-Disposition: attachment; filename="shot.png"',
      'Content-Transfer-Encoding: base64',
      '',
      'iVBORw0KGgo=',
      '--m1--',
      '',
    ]);
    const event = await parseRawEmail(raw);
    assert.equal(
      event.message,
      [
        'FYI, see the attached mail',
        '',
        '---------- Forwarded message ----------',
        'From: Customer <customer@shop.test>',
        'Date: Mon, 02 Mar 2026 10:00:00 +0000',
        'Subject: Checkout broken',
        '',
        'Checkout shows a blank page after "Pay".',
        "> TypeError: Cannot read properties of undefined (reading 'total')",
      ].join('\n'),
    );
    assert.equal(event.title, 'Checkout broken');
    assert.equal(event.reporter?.id, 'agent@example.com', 'the forwarder reported it');
    // The attached mail alone (no note above it) is a report too.
    const bare = raw.replace('FYI, see the attached mail\r\n\r\n-- \r\nAgent, Support', '');
    assert.match((await parseRawEmail(bare)).message, /^---------- Forwarded message ----------\nFrom: Customer[^]*blank page/);
  });

  it("an HTML-only Apple Mail forward keeps the forwarded mail in its blockquote ('Begin forwarded message')", async () => {
    const html = [
      '<html><body><div>FYI</div><div><br><div>Begin forwarded message:</div><br class=3D"Apple-interchange-newline">',
      '<blockquote type=3D"cite"><div><span><b>From: </b></span><span>Customer &lt;customer@shop.test&gt;</span></div>',
      '<div><span><b>Subject: </b></span><span>Checkout broken</span></div><br>',
      '<div>The checkout page is blank after I click &ldquo;Pay&rdquo;.</div></blockquote></div></body></html>',
    ].join('\r\n');
    const mail = (subject: string, extra: string[] = []) =>
      crlf(['From: Agent <agent@example.com>', `Subject: ${subject}`, ...extra, 'Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable', '', html, '']);
    const event = await parseRawEmail(mail('Fwd: Checkout broken'));
    assert.equal(event.message, 'FYI\n\nBegin forwarded message:\n\nFrom: Customer <customer@shop.test>\n\nSubject: Checkout broken\n\nThe checkout page is blank after I click “Pay”.');
    // A reply's blockquote is its quote: dropped.
    assert.equal((await parseRawEmail(mail('Re: Checkout broken', ['In-Reply-To: <x@shop.test>']))).message, 'FYI\n\nBegin forwarded message:');
  });

  it('a new mail (no In-Reply-To, References or reply subject) keeps a pasted From:/Date:/Subject: block and its "> " lines', async () => {
    const body = [
      'The invoice mail we send looks broken. It went out as:',
      '',
      'From: Shop <noreply@shop.test>',
      'Date: Mon, 2 Mar 2026 10:00',
      'To: customer@example.com',
      'Subject: Your invoice',
      '',
      'Dear {{ name }}, your invoice is attached.',
      '',
      'and the worker log says:',
      '> TypeError: Cannot read properties of undefined (reading \'name\')',
      '>     at render (mailer.js:12:5)',
    ].join('\n');
    const mail = (headers: string[]) => crlf(['From: Ops <ops@example.com>', ...headers, '', ...body.split('\n'), '', '-- ', 'Ops team']);
    assert.equal((await parseRawEmail(mail(['Subject: Invoice mail broken']))).message, body);
    // A reply (its headers or its subject say so) loses the quote, as before.
    for (const headers of [['Subject: Invoice mail broken', 'In-Reply-To: <a@shop.test>'], ['Subject: Invoice mail broken', 'References: <a@shop.test>'], ['Subject: AW: Invoice mail broken'], ['Subject: SV: Invoice mail broken']]) {
      assert.equal((await parseRawEmail(mail(headers))).message, 'The invoice mail we send looks broken. It went out as:', headers.join(' / '));
    }
  });

  it('a new HTML-only mail keeps its blockquote, and decodes named entities (&auml; &szlig; &eacute; &ntilde;)', async () => {
    const raw = crlf([
      'From: J\u00fcrgen <j@example.de>',
      'Subject: Fehler beim Speichern',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>Gr&uuml;&szlig;e, die Seite st&uuml;rzt ab &ndash; Caf&eacute; Espa&ntilde;a &euro;:</p><blockquote>Error: Stra&szlig;e is not valid</blockquote>',
      '',
    ]);
    assert.equal((await parseRawEmail(raw)).message, 'Grüße, die Seite stürzt ab – Café España €:\n\nError: Straße is not valid');
  });

  // Review finding: postal-mime keeps each line of a text part as a Blob part, about 10 µs a
  // line on the shared event loop: 24 MB of blank lines blocked it for minutes and crashed
  // the process out of memory; each inline message/rfc822 level parsed the rest again.
  it('refuses a message of more lines than it parses with 413, before parsing it', async () => {
    const mail = (lines: number) => Buffer.from(`From: ann@example.com\r\nSubject: log\r\n\r\n${'a\r\n'.repeat(lines)}`);
    const started = Date.now();
    await assert.rejects(parseRawEmail(mail(MAX_MIME_LINES)), rejects(413, new RegExp(`^the email has more than ${MAX_MIME_LINES} lines, more than bugbot parses`)));
    assert.ok(Date.now() - started < 1000, `refused in ${Date.now() - started} ms`);
    assert.equal((await parseRawEmail(crlf(['From: ann@example.com', 'Subject: log', '', 'a', 'b']))).message, 'a\nb');
  });

  it('parses one inline message/rfc822 level in place; a deeper one is read as an attached mail', async () => {
    let body = 'Content-Type: text/plain\r\n\r\nThe checkout page is blank.\r\n';
    for (let i = 3; i > 0; i--) body = `Content-Type: message/rfc822\r\n\r\nFrom: c${i}@shop.test\r\nSubject: level ${i}\r\n${body}`;
    const event = await parseRawEmail(`From: ann@example.com\r\nSubject: Fwd: nested\r\n${body}`);
    assert.match(event.message, /^-+\nFrom: +c1@shop\.test\nSubject: level 1\n\n---------- Forwarded message ----------\nFrom: c2@shop\.test\nSubject: level 2\n/);
    assert.match(event.message, /The checkout page is blank\.$/);
  });

  it('rejects garbage, empty and non-message input with 400', async () => {
    await assert.rejects(parseRawEmail(''), rejects(400, /empty/));
    await assert.rejects(parseRawEmail(new Uint8Array()), rejects(400, /empty/));
    await assert.rejects(parseRawEmail('just some words\nand more words'), rejects(400, /no header fields/));
    await assert.rejects(parseRawEmail(new Uint8Array([0, 1, 2, 255, 254, 10, 13])), rejects(400, /no header fields/));
    await assert.rejects(parseRawEmail('{"from": "a@b.c", "text": "hi"}'), rejects(400, /no From/));
  });

  it('rejects a message without From or without text with 400 naming the problem', async () => {
    await assert.rejects(parseRawEmail(crlf(['Subject: hi', '', 'body'])), rejects(400, /no From/));
    await assert.rejects(parseRawEmail(crlf(['From: undisclosed-recipients:;', '', 'body'])), rejects(400, /no From/));
    await assert.rejects(parseRawEmail(crlf(['From: a@example.com', 'Subject: hi', '', ''])), rejects(400, /no text\/plain or text\/html body/));
    await assert.rejects(
      parseRawEmail(crlf(['From: a@example.com', 'Subject: Re: hi', '', 'On Mon, Mar 2, 2026 at 1:00 PM, Bob wrote:', '> hi'])),
      rejects(400, /no text once quotes and signature are removed/),
    );
  });

  it('keeps the title to one line of at most 200 characters', async () => {
    const long = 'x'.repeat(300);
    const event = await parseRawEmail(crlf(['From: a@example.com', `Subject: Fwd: RE: ${long}`, '', 'body']));
    assert.equal(event.title, `${'x'.repeat(199)}…`);
    const folded = await parseRawEmail(crlf(['From: a@example.com', 'Subject: crash on', '\tlogin page', '', 'body']));
    assert.equal(folded.title, 'crash on login page');
  });
});

describe('stripQuotedReply', () => {
  it('cuts an "On … wrote:" header wrapped over two lines', () => {
    assert.equal(
      stripQuotedReply('The export is empty.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One\n<xxx@gmail.com> wrote:\n\nsomething unquoted'),
      'The export is empty.',
    );
  });

  it('cuts Outlook blocks: -----Original Message----- and From:/Sent:/To:/Subject:', () => {
    assert.equal(stripQuotedReply('Still broken.\r\n\r\n-----Original Message-----\r\nFrom: x\r\nold'), 'Still broken.');
    assert.equal(
      stripQuotedReply('Still broken.\n\n________________________________\nFrom: Bugbot <b@example.com>\nSent: Monday\nTo: me\nCc: you\nSubject: fixed\n\nold'),
      'Still broken.',
    );
  });

  it('keeps text between interleaved quotes and drops the quotes', () => {
    assert.equal(stripQuotedReply('> Which page?\nThe cart.\n> Which browser?\nFirefox 128.'), 'The cart.\nFirefox 128.');
  });

  it('drops "-- " signatures and mobile signatures', () => {
    assert.equal(stripQuotedReply('It hangs.\n\n-- \nJane Doe\nACME Corp'), 'It hangs.');
    assert.equal(stripQuotedReply('It hangs.\n\nSent from my iPhone'), 'It hangs.');
    assert.equal(stripQuotedReply('It hangs.\n\nGet Outlook for Android<https://aka.ms/ghei36>'), 'It hangs.');
  });

  it('keeps forwarded messages and the reporter\'s own text untouched', () => {
    const forward = 'FYI, customer report below.\n\n---------- Forwarded message ---------\nFrom: C <c@example.com>\nDate: Mon, Mar 2, 2026\nSubject: Bug\nTo: us\n\nThe app crashes on start.';
    assert.equal(stripQuotedReply(forward), forward);
    const own = 'On Monday the upload failed twice.\nError: 413 from /api/upload';
    assert.equal(stripQuotedReply(own), own);
  });

  it("keeps an Outlook forward's forwarded mail (its subject says it is one), with or without a note above it", () => {
    const block = 'From: Customer <c@example.com>\nSent: Monday, March 2, 2026 10:00 AM\nTo: support@example.com\nSubject: Checkout broken\n\nCheckout shows a blank page since this morning.';
    assert.ok(isForwardSubject('FW: Checkout broken') && isForwardSubject('Fwd: x') && isForwardSubject('WG: x') && !isForwardSubject('Re: x'));
    assert.equal(stripQuotedReply(`FYI, see below.\n\n________________________________\n${block}`, { kind: 'forward' }), `FYI, see below.\n\n________________________________\n${block}`);
    assert.equal(stripQuotedReply(block, { kind: 'forward' }), block);
    assert.equal(stripQuotedReply(`FYI, see below.\n\n________________________________\n${block}`), 'FYI, see below.', 'a reply: the block is its quote');
  });

  it("keeps a forward's forwarded mail when the forwarder's signature stands above it", () => {
    const forwarded = '---------- Forwarded message ---------\nFrom: C <c@example.com>\nDate: Mon, Mar 2, 2026\nSubject: Bug\n\nThe app crashes on start.';
    assert.equal(stripQuotedReply(`FYI\n\n-- \nAgent, Support\n\n${forwarded}`, { kind: 'forward' }), `FYI\n\n${forwarded}`);
    assert.equal(stripQuotedReply(`FYI\n\n${forwarded}\n\n-- \nC, ACME`, { kind: 'forward' }), `FYI\n\n${forwarded}`);
  });

  it('a new mail loses only its signature: no reply header or ">" line is looked for', () => {
    const text = 'Steps:\n> npm start\n> TypeError: x is undefined\n\nFrom: a@b.c\nSent: Monday\nSubject: x\n\nOn Mon, Apr 2, 2026 at 6:26 PM, Support <s@example.com> wrote:\n-----Original Message-----';
    assert.equal(stripQuotedReply(`${text}\n\n-- \nJane\n\nSent from my iPhone`, { kind: 'new' }), text);
  });

  it('tells a reply, a forward and a new mail apart by subject and threading headers', () => {
    assert.equal(mailKind('Checkout broken', false), 'new');
    assert.equal(mailKind('Checkout broken', true), 'reply');
    for (const s of ['Re: x', 'RE: x', 'AW: x', 'SV: x', 'Re[2]: x', 'Antw: x']) assert.equal(mailKind(s, false), 'reply', s);
    for (const s of ['Fwd: x', 'FW: x', 'WG: x']) assert.equal(mailKind(s, true), 'forward', s);
    assert.equal(mailKind('Regression in checkout', false), 'new', 'a word starting with "re" is no prefix');
  });

  it('keeps a reply written below the quote, or between its lines after the attribution', () => {
    assert.equal(stripQuotedReply('On Mon, Apr 2, 2026 at 6:26 PM, Support <s@example.com> wrote:\n> Does it still fail?\n\nYes, the export is still empty.'), 'Yes, the export is still empty.');
    assert.equal(
      stripQuotedReply('On Mon, Apr 2, 2026 at 6:26 PM, Support <s@example.com> wrote:\n> Which page?\nThe cart.\n> Which browser?\nFirefox 128.'),
      'The cart.\nFirefox 128.',
    );
  });
});

describe('linear time on hostile input', () => {
  it('handles megabyte bodies built to make regexes backtrack', () => {
    const started = Date.now();
    stripQuotedReply(`On ${'1,'.repeat(500_000)}`);
    stripQuotedReply(`On 1${' ,'.repeat(500_000)}x wrote:`);
    htmlToText(`${'<'.repeat(1_000_000)}>`);
    htmlToText('<style '.repeat(150_000));
    htmlToText('<!--'.repeat(250_000));
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started}ms`);
  });

  it('reads crafted megabyte address fields and texts in time in line with them', () => {
    // In a process of its own with a limit: a parser that takes the square of its input holds this thread.
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/support/crafted-text.ts', 'email'], { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.stdout, 'ok\n', `crafted mail fields did not finish within 20 s (${r.signal ?? `status ${r.status}`}): ${r.stderr}`);
    // The first mailbox is still found after a long display name and entries without one.
    const ev = parseMailgunForm({ ...routeForm(), from: `"${'x'.repeat(900)}", Doe, John <john@example.com>, ${'a:'.repeat(100_000)}` });
    assert.equal(ev.reporter?.address, 'john@example.com');
  });
});

describe('htmlToText', () => {
  it('decodes entities, keeps a literal "<" and drops comments', () => {
    assert.equal(htmlToText('a &lt; b &#x1F41E; &#0; &bogus; <!-- hidden --> 1 < 2 <br>next'), 'a < b 🐞 \uFFFD &bogus; 1 < 2\nnext');
  });

  it('decodes the Latin-1, Greek, symbol and typographic named entities of HTML mail', () => {
    assert.equal(
      htmlToText('&auml;&ouml;&uuml;&Auml;&Ouml;&Uuml;&szlig; &eacute;&egrave;&ecirc;&ccedil;&agrave; &ntilde;&Ntilde;&iexcl;&iquest; &oslash;&aring;&aelig;&AElig; &yuml;&thorn;&ETH;'),
      'äöüÄÖÜß éèêçà ñÑ¡¿ øåæÆ ÿþÐ',
    );
    assert.equal(htmlToText('&sbquo;x&lsquo; &bdquo;y&ldquo; &lsaquo;z&rsaquo; &OElig;&oelig;&Scaron;&scaron; &permil; &dagger; &times;&divide;&plusmn;&deg;&micro;&sup2;&frac12;'), '‚x‘ „y“ ‹z› ŒœŠš ‰ † ×÷±°µ²½');
    assert.equal(htmlToText('&alpha;&beta;&Omega;&sigmaf;&sigma; &rarr;&larr;&hArr; &le;&ge;&ne;&infin; &AMP;&LT;&GT;&QUOT;'), 'αβΩςσ →←⇔ ≤≥≠∞ &<>"');
    // Names are looked up as names, not as properties of an object.
    assert.equal(htmlToText('&constructor; &toString; &hasOwnProperty;'), '&constructor; &toString; &hasOwnProperty;');
  });
});

describe('forwardedMessageText', () => {
  it('renders an attached mail with a forward marker and its header fields; nothing for bytes that hold no mail', async () => {
    const eml = Buffer.from(crlf(['From: C <c@shop.test>', 'Subject: Checkout', '', 'Blank page.']));
    assert.equal(await forwardedMessageText(eml), '---------- Forwarded message ----------\nFrom: C <c@shop.test>\nSubject: Checkout\n\nBlank page.');
    const encoded = Buffer.from(crlf(['From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <j@shop.test>', 'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=', '', 'Hallo']));
    assert.equal(await forwardedMessageText(encoded), '---------- Forwarded message ----------\nFrom: Jürgen Müller <j@shop.test>\nSubject: Grüße\n\nHallo');
    assert.equal(await forwardedMessageText(new Uint8Array()), undefined);
  });
});

describe('parseMime (the parser thread)', () => {
  it('gives what postal-mime gives on this thread: the message whole (attachments too), and its attached mails parsed', async () => {
    const options = { maxRfc822NestingDepth: 1 };
    const customer = crlf(['From: Customer <customer@shop.test>', 'Subject: Checkout broken', 'Date: Mon, 02 Mar 2026 10:00:00 +0000', '', 'Blank page after "Pay".']);
    const forward = crlf([
      'From: Agent <agent@example.com>',
      'Subject: Fwd: Checkout broken',
      'Content-Type: multipart/mixed; boundary="m1"',
      '',
      '--m1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'FYI',
      '--m1',
      'Content-Type: message/rfc822; name="Checkout broken.eml"',
      'Content-Disposition: attachment; filename="Checkout broken.eml"',
      '',
      customer,
      '--m1',
      'Content-Type: image/png; name="shot.png"',
      'Content-Disposition: attachment; filename="shot.png"',
      'Content-Transfer-Encoding: base64',
      '',
      'iVBORw0KGgo=',
      '--m1--',
      '',
    ]);
    const raws = [fixture('reply_gmail_quoted.eml'), fixture('reply_outlook_quoted.eml'), forward];
    const parsed = await parseMime(raws, { options, attached: 10, what: 'the email' });
    const expected = await Promise.all(
      raws.map(async (raw) => {
        const email = await PostalMime.parse(raw, options);
        const mails = email.attachments.filter((a) => a.mimeType === 'message/rfc822');
        return { email, attached: await Promise.all(mails.map((a) => PostalMime.parse(a.content, options))) };
      }),
    );
    assert.deepEqual(parsed, expected);
    const fwd = parsed[2]!;
    assert.ok('email' in fwd && fwd.attached.length === 1 && fwd.email.attachments.some((a) => a.content instanceof ArrayBuffer && a.content.byteLength === 8));
  });
});
