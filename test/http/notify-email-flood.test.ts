/**
 * The "fixed" email to many reporters, against a real SMTP server (`smtp-server`): a report
 * flood (one error, thousands of customers writing in) ends in one fix told to each of them.
 * Review findings: every mail opened its own connection at the same moment (600 at once for
 * 600 reporters: mail providers refuse past a few, the host runs short of sockets); every
 * outbox row held the whole ticket with all its reporters (quadratic: 600 MB of outbox for
 * 2,000 reporters); many retries waiting at once warned of a memory leak; and a mail sent
 * again after a crash had a Message-ID of its own, so it reached the reporter as a second mail.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { createApp } from '../../control/app.ts';
import type { BugbotConfig } from '../../control/config.ts';
import { Intake } from '../../control/intake/index.ts';
import { createLogger, silentLogger, type Logger } from '../../control/log.ts';
import { Notifier, SMTP_CONNECTIONS } from '../../control/notify/index.ts';
import { notificationsForTicket } from '../../control/queue/notifications.ts';
import { Store } from '../../control/queue/store.ts';
import type { Ticket } from '../../control/types.ts';
import { createRedactor } from '../../lib/redact.ts';
import { fixtureText, tempDir, testConfig } from '../support/helpers.ts';
import { TestSmtpServer } from '../support/smtp.ts';

const SMTP_USER = 'bugbot-mailer';
const SMTP_PASS = 'smtp-flood-secret';
const SHA = '3f786850e387550fdab836ed7e6dc881de23001b';
/** Customers who wrote in about the same error, besides the first report's sender. */
const CUSTOMERS = 60;

function captureLog(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }), lines };
}

async function smtpServer(t: TestContext): Promise<{ smtp: TestSmtpServer; port: number }> {
  const smtp = new TestSmtpServer({ user: SMTP_USER, pass: SMTP_PASS });
  const port = await smtp.listen();
  t.after(() => smtp.close());
  return { smtp, port };
}

function mailConfig(t: TestContext, port: number, retryDelaysSeconds = [0.1]): BugbotConfig {
  return testConfig(
    tempDir(t, 'bugbot-notify-flood-'),
    { intake: { settleSeconds: 0 }, notify: { email: { host: '127.0.0.1', port, from: 'bugbot <bugbot@shop.test>', requireTLS: false, retryDelaysSeconds } } },
    { BUGBOT_SMTP_USER: SMTP_USER, BUGBOT_SMTP_PASSWORD: SMTP_PASS },
  );
}

/** A ticket filed by the raw-email trigger, joined by `customers` more email reporters; the store and the ticket as it is now. */
async function flooded(t: TestContext, config: BugbotConfig, customers = CUSTOMERS): Promise<{ store: Store; ticket: Ticket }> {
  const store = new Store(join(config.home, 'bugbot.db'));
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) });
  const app = createApp({ config, store, intake, logger: silentLogger });
  const eml = `In-Reply-To: <loop-4f50f20e@xxx.mailgun.org>\r\n${fixtureText('mailgun', 'reply_outlook_quoted.eml')}`;
  const res = await app.request('/triggers/email/raw', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: eml });
  assert.equal(res.status, 200, await res.clone().text());
  const id = ((await res.json()) as { results: { ticket: number }[] }).results[0]!.ticket;
  for (let i = 0; i < customers; i++) {
    const address = `customer-${i}@flood.test`;
    store.addReporter(id, { kind: 'email', id: address, address, thread: `<report-${i}@flood.test>`, subject: 'Checkout is broken' });
  }
  return { store, ticket: store.getTicket(id)! };
}

/** Who got mail, and how many each. */
function recipients(smtp: TestSmtpServer): Map<string, number> {
  const count = new Map<string, number>();
  for (const d of smtp.delivered) for (const r of d.rcptTo) count.set(r, (count.get(r) ?? 0) + 1);
  return count;
}

describe('a fix told to a flood of email reporters', () => {
  it('goes to the SMTP server on at most 3 connections at once (Exchange Online takes no more), and tells each reporter once', async (t) => {
    const { smtp, port } = await smtpServer(t);
    const config = mailConfig(t, port);
    const { store, ticket } = await flooded(t, config);
    const { logger, lines } = captureLog();
    const notifier = new Notifier({ config, store, logger });
    t.after(() => notifier.close());
    await notifier.notify({ kind: 'fixed', ticket, commit: SHA, branch: 'staging' });
    assert.equal(smtp.delivered.length, CUSTOMERS + 1, lines.filter((l) => !l.includes('"msg":"notified"')).join('\n'));
    assert.ok(smtp.peakOpen <= 3, `${smtp.peakOpen} connections at once`);
    const told = recipients(smtp);
    assert.equal(told.size, CUSTOMERS + 1);
    assert.ok([...told.values()].every((n) => n === 1), 'each reporter once');
    assert.deepEqual(new Set(notificationsForTicket(store, ticket.id).map((r) => r.state)), new Set(['sent']));
  });

  it("keeps each outbox row small: the ticket by id and title, not everyone's addresses nor the report's text", async (t) => {
    const { port } = await smtpServer(t);
    const config = mailConfig(t, port);
    const { store, ticket } = await flooded(t, config);
    const notifier = new Notifier({ config, store, logger: silentLogger });
    t.after(() => notifier.close());
    await notifier.notify({ kind: 'fixed', ticket, commit: SHA, branch: 'staging' });
    const rows = notificationsForTicket(store, ticket.id);
    assert.equal(rows.length, CUSTOMERS + 1);
    for (const row of rows) {
      assert.ok(!row.notice_json.includes('flood.test') && !row.notice_json.includes(ticket.message), row.notice_json.slice(0, 300));
      assert.deepEqual(JSON.parse(row.notice_json), { kind: 'fixed', ticket: { id: ticket.id, title: ticket.title }, commit: SHA, branch: 'staging' });
    }
  });

  it('a stop ends the wait for a connection: those mails stay in the outbox and go out at the next start, once each', async (t) => {
    const { smtp, port } = await smtpServer(t);
    const config = mailConfig(t, port);
    const { store, ticket } = await flooded(t, config);
    const { logger, lines } = captureLog();
    const first = new Notifier({ config, store, logger });
    const sending = first.notify({ kind: 'fixed', ticket, commit: SHA, branch: 'staging' });
    await first.close();
    await sending;
    // The mails already being sent finish; none that waited starts after the stop.
    assert.equal(smtp.delivered.length, SMTP_CONNECTIONS, lines.join('\n'));
    const rows = notificationsForTicket(store, ticket.id);
    assert.equal(rows.filter((r) => r.state === 'sent').length, SMTP_CONNECTIONS);
    const waiting = rows.filter((r) => r.state === 'pending');
    assert.equal(waiting.length, CUSTOMERS + 1 - SMTP_CONNECTIONS, 'kept for the next start, not failed');
    assert.ok(waiting.every((r) => r.attempts === 0 && r.last_error === 'ESTOPPED'), JSON.stringify(waiting[0]));

    const second = new Notifier({ config, store, logger });
    t.after(() => second.close());
    smtp.peakOpen = 0;
    await second.resume();
    assert.equal(smtp.delivered.length, CUSTOMERS + 1, lines.join('\n'));
    assert.ok(smtp.peakOpen <= 3, `${smtp.peakOpen} connections at once`);
    assert.ok([...recipients(smtp).values()].every((n) => n === 1), 'each reporter once');
    assert.deepEqual(new Set(notificationsForTicket(store, ticket.id).map((r) => r.state)), new Set(['sent']));
    // Threaded under each reporter's own message, as a first send would be.
    const mail = smtp.delivered.find((d) => d.rcptTo.includes('customer-42@flood.test'));
    assert.equal(mail?.mail.inReplyTo, '<report-42@flood.test>');
  });

  it('many mails waiting to be tried again at once are no memory leak to warn of', async (t) => {
    const { smtp, port } = await smtpServer(t);
    const config = mailConfig(t, port, [1.5]);
    const { store, ticket } = await flooded(t, config, 20);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    t.after(() => process.off('warning', onWarning));
    const notifier = new Notifier({ config, store, logger: silentLogger });
    t.after(() => notifier.close());
    // The server is busy: the first 15 mails are refused for now and wait to be tried again together.
    smtp.temporaryRefusals = 15;
    await notifier.notify({ kind: 'fixed', ticket, commit: SHA, branch: 'staging' });
    assert.equal(smtp.delivered.length, 21);
    assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
  });
});

describe('a mail sent again after a crash (between the server taking it and the outbox marking it sent)', () => {
  it('is the same message: one Message-ID, on the domain of notify.email.from, whoever the reporter', async (t) => {
    const { smtp, port } = await smtpServer(t);
    const config = mailConfig(t, port);
    const { store, ticket } = await flooded(t, config, 1);
    const notice = { kind: 'fixed' as const, ticket, commit: SHA, branch: 'staging' };
    const first = new Notifier({ config, store, logger: silentLogger });
    await first.notify(notice);
    await first.close();
    assert.equal(smtp.delivered.length, 2);
    const ids = smtp.delivered.map((d) => d.mail.messageId);
    for (const id of ids) assert.match(id ?? '', /^<bugbot\.[0-9a-f]{32}@shop\.test>$/);
    assert.notEqual(ids[0], ids[1], 'one id per reporter');

    // What a crash right after the send leaves: the rows still pending. A row written by an
    // earlier version holds the whole ticket in its notice; it is sent the same way.
    const rows = notificationsForTicket(store, ticket.id);
    store.stmt("UPDATE notifications SET state = 'pending', finished_at = NULL WHERE id = ?").run(rows[0]!.id);
    store.stmt("UPDATE notifications SET state = 'pending', finished_at = NULL, notice_json = ? WHERE id = ?").run(JSON.stringify(notice), rows[1]!.id);
    const next = new Notifier({ config, store, logger: silentLogger });
    t.after(() => next.close());
    await next.resume();
    assert.equal(smtp.delivered.length, 4);
    const again = smtp.delivered.slice(2);
    for (const [i, first] of smtp.delivered.slice(0, 2).entries()) {
      const resent = again.find((d) => d.rcptTo[0] === first.rcptTo[0]);
      assert.equal(resent?.mail.messageId, first.mail.messageId, `${first.rcptTo[0]}: the same message (${i})`);
      assert.equal(resent?.mail.inReplyTo, first.mail.inReplyTo);
    }
  });
});
