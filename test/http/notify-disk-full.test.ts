/**
 * The notifications outbox on a full disk: a run's end is told all the same. The outbox
 * row could not be written (SQLITE_FULL), and the message was dropped before it was sent,
 * with nothing left anywhere to send it later (a run's end the database refused is
 * recorded later without its notice: pool.ts record()).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createApp } from '../../control/app.ts';
import { Intake } from '../../control/intake/index.ts';
import { createLogger } from '../../control/log.ts';
import { Notifier } from '../../control/notify/index.ts';
import { Store } from '../../control/queue/store.ts';
import { createRedactor } from '../../lib/redact.ts';
import { fixtureText, testConfig } from '../support/helpers.ts';
import { TestSmtpServer } from '../support/smtp.ts';
import { fillDisk, smallDisk } from '../support/tmpfs.ts';

test('a "fixed" notice on a full disk still reaches its reporter (the outbox could not record it)', async (t) => {
  const smtp = new TestSmtpServer({ user: 'mailer', pass: 'secret' });
  const port = await smtp.listen();
  t.after(() => smtp.close());
  const home = smallDisk(t, '2m');
  const config = testConfig(
    home,
    { intake: { settleSeconds: 0 }, notify: { email: { host: '127.0.0.1', port, from: 'bugbot <bugbot@shop.test>', requireTLS: false } } },
    { BUGBOT_SMTP_USER: 'mailer', BUGBOT_SMTP_PASSWORD: 'secret' },
  );
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) });
  const app = createApp({ config, store, intake, logger: createLogger({ write: () => {} }) });
  const eml = `In-Reply-To: <loop-4f50f20e@xxx.mailgun.org>\r\n${fixtureText('mailgun', 'reply_outlook_quoted.eml')}`;
  const res = await app.request('/triggers/email/raw', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: eml });
  assert.equal(res.status, 200, await res.clone().text());
  const ticket = store.getTicket(((await res.json()) as { results: { ticket: number }[] }).results[0]!.ticket)!;

  const lines: string[] = [];
  const notifier = new Notifier({ config, store, logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }) });
  t.after(() => notifier.close());
  fillDisk(home);
  assert.throws(() => store.audit(ticket.id, 'test', 'probe', 'x'.repeat(20_000)), /full/, 'the database is full');
  await notifier.notify({ kind: 'fixed', ticket, commit: '3f786850e387550fdab836ed7e6dc881de23001b', branch: 'staging' });
  assert.equal(smtp.delivered.length, 1, `the reporter is told: ${lines.join('\n')}`);
  assert.ok(lines.some((l) => /could not record/.test(l)), lines.join('\n'));
});
