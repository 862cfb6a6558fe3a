/**
 * Notifications (issue 6). Real peers throughout: an SMTP server (`smtp-server`) that
 * nodemailer delivers to, a local HTTP server answering Slack's documented Web API
 * responses, real git for approvals. The reporter hears by email only once a fix is
 * pushed, threaded under their message; Slack threads hear about fixes, failures and
 * approval requests; a signed `block_actions` click from a configured approver merges
 * the fix, anyone else's (or an unsigned one) does nothing, and the clicker is told why.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Hono } from 'hono';
import { createApp } from '../../control/app.ts';
import type { BugbotConfig } from '../../control/config.ts';
import { Approvals } from '../../control/dispatcher/approvals.ts';
import { buildOutcomeRow } from '../../control/dispatcher/outcome.ts';
import { workspacePaths } from '../../control/dispatcher/workspace.ts';
import { Intake } from '../../control/intake/index.ts';
import { createLogger, silentLogger, type Logger } from '../../control/log.ts';
import { noticeForRun, Notifier } from '../../control/notify/index.ts';
import { SlackNotifier, slackMessage } from '../../control/notify/slack.ts';
import { startServer } from '../../control/main.ts';
import { claimNext, finishRun, pendingRunNotices, setRunProcess } from '../../control/queue/leases.ts';
import { notificationsForTicket, notificationSummaries } from '../../control/queue/notifications.ts';
import { Store } from '../../control/queue/store.ts';
import { createSlackTrigger, type SlackTrigger } from '../../control/triggers/slack.ts';
import type { TicketState } from '../../control/types.ts';
import { createRedactor } from '../../lib/redact.ts';
import { fixtureJson, fixtureText, tempDir, testConfig, waitFor } from '../support/helpers.ts';
import { mailHeader, TestSmtpServer } from '../support/smtp.ts';

const SIGNING_SECRET = 'notify-signing-secret';
const BOT_TOKEN = 'xoxb-notify-test';
// auth.test has no fixture; these ids are ours.
const BOT_USER = 'UBUGBOT01';
const BOT_ID = 'BBUGBOT01';
const APPROVER = 'U0APPROVER';
const STRANGER = 'U0STRANGER';
const APPROVALS_CHANNEL = 'C0APPROVALS';
/** chat.postMessage answers channel_not_found for this one (the documented error). */
const DEAD_CHANNEL = 'C0ARCHIVED';
const SMTP_USER = 'bugbot-mailer';
const SMTP_PASS = 'smtp-secret-never-logged';
const FROM = 'bugbot <bugbot@shop.test>';
/** The SMTP server refuses recipients at this domain (550). */
const BOUNCING = '@bounce.test';
const COMMIT_URL = 'https://git.shop.test/shop/commit/{commit}';

/** A Web API call's form fields; text and channel are '' when absent. */
type Params = Record<string, string | undefined> & { text: string; channel: string };

interface ApiCall {
  method: string;
  params: Params;
  authorization: string | undefined;
  response: Record<string, unknown>;
}

/** A local Slack Web API: the methods notifications and the buttons call, answered as documented. */
class SlackApi {
  readonly calls: ApiCall[] = [];
  /** chat.postMessage to these channels is refused with 429 and a Retry-After of 20 s (Slack's rate limit). */
  readonly rateLimited = new Set<string>();
  /**
   * Slack in trouble: chat.postMessage to a channel answers each of these in turn before it
   * takes the message: 'reset' drops the connection, '503' is an HTTP 503, anything else
   * Slack's error code (service_unavailable, internal_error).
   */
  readonly trouble = new Map<string, string[]>();
  private server: Server | undefined;
  private seq = 0;

  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (d: Buffer) => (raw += d.toString()));
      req.on('end', () => {
        const method = (req.url ?? '').replace(/^\/api\//, '');
        const params: Params = { text: '', channel: '', ...Object.fromEntries(new URLSearchParams(raw)) };
        const trouble = method === 'chat.postMessage' ? this.trouble.get(params.channel)?.shift() : undefined;
        if (trouble !== undefined) {
          const response = { ok: false, error: trouble === '503' ? 'service_unavailable' : trouble };
          this.calls.push({ method, params, authorization: req.headers.authorization, response });
          if (trouble === 'reset') req.socket.destroy();
          else res.writeHead(trouble === '503' ? 503 : 200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(response));
          return;
        }
        const limited = method === 'chat.postMessage' && this.rateLimited.has(params.channel);
        const response = limited ? { ok: false, error: 'ratelimited' } : this.answer(method, params);
        this.calls.push({ method, params, authorization: req.headers.authorization, response });
        res.writeHead(limited ? 429 : 200, { 'content-type': 'application/json; charset=utf-8', ...(limited ? { 'retry-after': '20' } : {}) });
        res.end(JSON.stringify(response));
      });
    });
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/`;
  }

  /** Shapes from https://docs.slack.dev/reference/methods/<method> ("Example response"). */
  private answer(method: string, p: Params): Record<string, unknown> {
    const ts = () => `1700000100.${String(++this.seq).padStart(6, '0')}`;
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://shop.slack.com/', team: 'Shop', user: 'bugbot', team_id: 'T0SHOP', user_id: BOT_USER, bot_id: BOT_ID };
      case 'chat.postMessage':
        if (p.channel === DEAD_CHANNEL) return { ok: false, error: 'channel_not_found' };
        return { ok: true, channel: p.channel, ts: ts(), message: { type: 'message', text: p.text, user: BOT_USER, bot_id: BOT_ID } };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: ts() };
      case 'chat.update':
        return { ok: true, channel: p.channel, ts: p.ts, text: p.text };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  of(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }
}

/** Log lines, to check what was (and was not) logged. */
function captureLog(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }), lines };
}

const SHA = '3f786850e387550fdab836ed7e6dc881de23001b';

const slackApi = new SlackApi();
/** What was posted to a channel (and thread). */
const postsTo = (channel: string, threadTs?: string) =>
  slackApi.of('chat.postMessage').filter((c) => c.params.channel === channel && (threadTs === undefined || c.params.thread_ts === threadTs));
const smtp = new TestSmtpServer({ user: SMTP_USER, pass: SMTP_PASS, refuseDomain: BOUNCING });
let apiUrl: string;
let smtpPort: number;

before(async () => {
  apiUrl = await slackApi.listen();
  smtpPort = await smtp.listen();
});

after(async () => {
  await slackApi.close();
  await smtp.close();
});

function notifyConfig(home: string, extra: Record<string, unknown> = {}): BugbotConfig {
  return testConfig(
    home,
    {
      intake: { settleSeconds: 0 },
      triggers: { slack: { apiUrl, fetchThread: false, approvers: [APPROVER] } },
      notify: {
        slack: { approvalsChannel: APPROVALS_CHANNEL },
        email: { host: '127.0.0.1', port: smtpPort, from: FROM, requireTLS: false },
        commitUrl: COMMIT_URL,
      },
      ...extra,
    },
    { SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_BOT_TOKEN: BOT_TOKEN, BUGBOT_SMTP_USER: SMTP_USER, BUGBOT_SMTP_PASSWORD: SMTP_PASS },
  );
}

/** A ticket filed by the raw-email trigger in a fresh store (its reporter is the email's sender), and the store. */
/**
 * The Outlook reply of the shared fixtures, as a reply: the capture has neither an
 * In-Reply-To header nor a "Re:" subject, without which its quoted block is kept as a new
 * mail's own text (and its quoted newsletter reads as noise).
 */
function outlookReply(): string {
  return `In-Reply-To: <loop-4f50f20e@xxx.mailgun.org>\r\n${fixtureText('mailgun', 'reply_outlook_quoted.eml')}`;
}

async function filed(t: TestContext, config: BugbotConfig) {
  const store = new Store(join(config.home, 'bugbot.db'));
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) });
  const app = createApp({ config, store, intake, logger: silentLogger });
  const res = await app.request('/triggers/email/raw', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: outlookReply() });
  assert.equal(res.status, 200);
  return { store, ticket: store.getTicket(((await res.json()) as { results: { ticket: number }[] }).results[0]!.ticket)! };
}

async function fixedTicket(t: TestContext, config: BugbotConfig) {
  return (await filed(t, config)).ticket;
}

describe('email: the "fixed" reply goes out only after a successful push', () => {
  it('files the reporter from POST /triggers/email/raw, mails nothing for failures or pending approvals, then one threaded reply', async (t) => {
    const home = tempDir(t, 'bugbot-notify-mail-');
    const config = notifyConfig(home);
    const store = new Store(join(home, 'bugbot.db'));
    t.after(() => store.close());
    const intake = new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) });
    const app = createApp({ config, store, intake, logger: silentLogger });

    // A real Gmail reply (shared fixture): Message-Id, "Subject: Re: Test", From xxx@gmail.com.
    const eml = fixtureText('mailgun', 'reply_gmail_quoted.eml');
    const res = await app.request('/triggers/email/raw', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: eml });
    assert.equal(res.status, 200, await res.clone().text());
    const ticketId = ((await res.json()) as { results: { ticket: number }[] }).results[0]!.ticket;
    const ticket = store.getTicket(ticketId)!;
    const messageId = '<CAKsfaBW4hj0Gek6TwbR3erng4P1y0CZzJ0d=pXtCNnYnbe7PLg@mail.gmail.com>';
    assert.deepEqual(ticket.reporters, [{ kind: 'email', id: 'xxx@gmail.com', address: 'xxx@gmail.com', thread: messageId, subject: 'Re: Test' }]);

    const { logger, lines } = captureLog();
    const notifier = new Notifier({ config, logger });
    t.after(() => notifier.close());
    assert.deepEqual(notifier.channels, { slack: true, email: true });
    const row = { reason: '', commit: null, branch: `bot/ticket-${ticketId}`, pushed_to: null };

    // Runs that did not push: the reporter's mailbox stays empty.
    for (const r of [
      { ...row, state: 'failed', reason: 'tests still fail after the fix' },
      { ...row, state: 'needs_human', reason: 'review asked for a person' },
      { ...row, state: 'awaiting_approval', commit: SHA },
    ]) {
      const notice = noticeForRun(r, ticket);
      assert.ok(notice);
      await notifier.notify(notice);
    }
    assert.equal(noticeForRun({ ...row, state: 'queued' }, ticket), undefined, 'a requeued run tells nobody');
    assert.equal(smtp.delivered.length, 0, 'no mail before the push');
    // The approval request had no Slack thread to go to: it went to the approvals channel.
    const request = slackApi.of('chat.postMessage').find((c) => c.params.channel === APPROVALS_CHANNEL && c.params.text.includes(`#${ticketId}`));
    assert.ok(request, 'approval request in notify.slack.approvalsChannel');
    assert.equal(request.params.thread_ts, undefined);

    // The push.
    const fixed = noticeForRun({ ...row, state: 'pushed', commit: SHA, pushed_to: 'staging' }, ticket);
    assert.deepEqual(fixed, { kind: 'fixed', ticket, commit: SHA, branch: 'staging' });
    await notifier.notify(fixed);
    assert.equal(smtp.delivered.length, 1);
    const [d] = smtp.delivered;
    assert.deepEqual(d!.rcptTo, ['xxx@gmail.com']);
    assert.equal(d!.mailFrom, 'bugbot@shop.test');
    assert.equal(d!.user, SMTP_USER, 'logged in with the configured credentials');
    assert.equal(d!.mail.inReplyTo, messageId);
    assert.equal(d!.mail.references, messageId);
    assert.equal(d!.mail.subject, 'Re: Test', 'no second "Re:"');
    assert.equal(d!.mail.from?.address, 'bugbot@shop.test');
    assert.deepEqual(d!.mail.to?.map((a) => a.address), ['xxx@gmail.com']);
    assert.equal(mailHeader(d!.mail, 'auto-submitted'), 'auto-replied');
    assert.match(d!.mail.text ?? '', /fixed and live: the fix is on staging, commit 3f78685 \(https:\/\/git\.shop\.test\/shop\/commit\/3f786850e387550fdab836ed7e6dc881de23001b\)/);
    assert.match(d!.mail.text ?? '', new RegExp(`Your report is tracked as ticket #${ticketId}\\.`));
    // The ticket's title is the first report's words: never in a reply to a reporter.
    assert.ok(!(d!.mail.text ?? '').includes(ticket.title), d!.mail.text);

    // Neither the address nor the SMTP password is ever logged.
    assert.ok(lines.some((l) => /"msg":"notified".*"via":"email"/.test(l)), lines.join('\n'));
    assert.ok(!lines.some((l) => l.includes('xxx@gmail.com') || l.includes(SMTP_PASS)), lines.join('\n'));
  });

  it('refuses to send without TLS by default (notify.email.requireTLS), logs it, and never throws', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-tls-'));
    config.notify.email.requireTLS = true;
    const ticket = await fixedTicket(t, config);
    const { logger, lines } = captureLog();
    const notifier = new Notifier({ config, logger });
    t.after(() => notifier.close());
    const before = smtp.delivered.length;
    await notifier.notify({ kind: 'fixed', ticket, commit: SHA });
    assert.equal(smtp.delivered.length, before, 'nothing delivered over plain text');
    assert.ok(lines.some((l) => /"msg":"notification not sent".*"via":"email"/.test(l)), lines.join('\n'));
  });
});

describe('a report that joins a ticket whose fix is already out', () => {
  // Review finding: a person whose report was merged into a fixed ticket (within the
  // regression grace period) was added to its reporters but never heard of the fix.
  it('is told of the fix as the first reporter was; nobody else is told twice', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-latecomer-'));
    const { store, ticket } = await filed(t, config);
    const notifier = new Notifier({ config, store, logger: silentLogger });
    t.after(() => notifier.close());
    const intake = new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) });
    const told: Array<Promise<void>> = [];
    intake.whenReporterJoinsFixed((id) => told.push(notifier.tellLatecomers(id)));
    const app = createApp({ config, store, intake, logger: silentLogger });
    const claim = claimNext(store, 1, null, 60)!;
    finishRun(store, claim.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed to staging' });
    const before = smtp.delivered.length;
    await notifier.notify({ kind: 'fixed', ticket: store.getTicket(ticket.id)!, commit: SHA, branch: 'staging' });
    assert.equal(smtp.delivered.length, before + 1, 'the first reporter is told');

    // Another customer writes in about the same error, a moment after the push.
    const raw = outlookReply().replace(/^From: me@example\.com$/m, 'From: bob@customer.test').replace(/^Subject: Test$/m, 'Subject: Test\r\nMessage-ID: <bob-1@customer.test>');
    const res = await app.request('/triggers/email/raw', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: raw });
    assert.equal(res.status, 200);
    const [r] = ((await res.json()) as { results: Array<{ status: string; ticket: number; reason: string }> }).results;
    assert.deepEqual([r!.status, r!.ticket, r!.reason], ['merged', ticket.id, 'seen within the grace period after the fix']);
    await Promise.all(told);
    assert.equal(smtp.delivered.length, before + 2, 'the newcomer is told, the first reporter not again');
    const mail = smtp.delivered.at(-1)!;
    assert.deepEqual(mail.rcptTo, ['bob@customer.test']);
    assert.equal(mail.mail.inReplyTo, '<bob-1@customer.test>', 'threaded under their own message');
    assert.match(mail.mail.text ?? '', /fixed and live: the fix is on staging, commit 3f78685/);

    // Review finding: bob writes again ("thanks!" in reply to the notice: a message of its
    // own) and was told of the same fix again, in reply to it. Once per person.
    const again = outlookReply().replace(/^From: me@example\.com$/m, 'From: Bob <BOB@customer.test>').replace(/^Subject: Test$/m, 'Subject: Re: Test\r\nMessage-ID: <bob-2@customer.test>\r\nIn-Reply-To: <bob-1@customer.test>');
    const res2 = await app.request('/triggers/email/raw', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: again });
    assert.equal(res2.status, 200);
    const [r2] = ((await res2.json()) as { results: Array<{ status: string; ticket: number }> }).results;
    assert.deepEqual([r2!.status, r2!.ticket], ['merged', ticket.id]);
    await Promise.all(told);
    assert.equal(smtp.delivered.length, before + 2, 'bob is not told twice');
  });

  // Review finding: a fix nobody could be told of (the ticket's only report was mail a
  // program sent, never answered; or one filed by hand, with no reporter) left no "fixed"
  // message in the outbox, and a person whose report joined the fixed ticket later was
  // told nothing at all: neither a new ticket nor the fix.
  it('is told of the fix even when nobody could be told before', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-latecomer-untold-'));
    const store = new Store(join(config.home, 'bugbot.db'));
    t.after(() => store.close());
    const intake = new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) });
    const notifier = new Notifier({ config, store, logger: silentLogger });
    t.after(() => notifier.close());
    const told: Array<Promise<void>> = [];
    intake.whenReporterJoinsFixed((id) => told.push(notifier.tellLatecomers(id)));
    const app = createApp({ config, store, intake, logger: silentLogger });
    const file = async (raw: string) => {
      const res = await app.request('/triggers/email/raw', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: raw });
      assert.equal(res.status, 200);
      return ((await res.json()) as { results: Array<{ status: string; ticket: number; reason: string }> }).results[0]!;
    };
    // The first report: a monitoring system's mail, filed but never answered.
    const first = await file(`Auto-Submitted: auto-generated\r\n${outlookReply()}`);
    assert.equal(first.status, 'created');
    assert.equal((store.getTicket(first.ticket)!.reporters[0] as { automatic?: boolean }).automatic, true);
    const claim = claimNext(store, 1, null, 60)!;
    finishRun(store, claim.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed to staging' });
    const before = smtp.delivered.length;
    await notifier.notify({ kind: 'fixed', ticket: store.getTicket(first.ticket)!, commit: SHA, branch: 'staging' });
    assert.equal(smtp.delivered.length, before, 'a program is never answered');

    // A customer writes in about the same error, a moment after the push.
    const raw = outlookReply().replace(/^From: me@example\.com$/m, 'From: bob@customer.test').replace(/^Subject: Test$/m, 'Subject: Test\r\nMessage-ID: <bob-2@customer.test>');
    const r = await file(raw);
    assert.deepEqual([r.status, r.ticket, r.reason], ['merged', first.ticket, 'seen within the grace period after the fix']);
    await Promise.all(told);
    assert.equal(smtp.delivered.length, before + 1, 'the customer is told of the fix');
    const mail = smtp.delivered.at(-1)!;
    assert.deepEqual(mail.rcptTo, ['bob@customer.test']);
    assert.equal(mail.mail.inReplyTo, '<bob-2@customer.test>');
    assert.match(mail.mail.text ?? '', /fixed and live: the fix is on staging, commit 3f78685/);
    // What the reporters were told lists the customer's mail only.
    assert.deepEqual(
      notificationSummaries(store, first.ticket).map((n) => [n.kind, n.to, n.state]),
      [['fixed', { via: 'email', reporter: 1 }, 'sent']],
    );
  });
});

describe('email: a busy server is tried again, a refusal is not', () => {
  it('a temporary 451 twice: the reply goes out on the third try, after the configured waits', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-retry-'));
    config.notify.email.retryDelaysSeconds = [0.2, 0.2, 0.2];
    const ticket = await fixedTicket(t, config);
    const { logger, lines } = captureLog();
    const notifier = new Notifier({ config, logger });
    t.after(() => notifier.close());
    const before = smtp.delivered.length;
    smtp.temporaryRefusals = 2;
    const started = Date.now();
    await notifier.notify({ kind: 'fixed', ticket, commit: SHA });
    assert.equal(smtp.delivered.length, before + 1, lines.join('\n'));
    assert.ok(Date.now() - started >= 400, 'it waited between tries');
    assert.equal(lines.filter((l) => /"msg":"notification not sent yet; trying again".*"error":"EENVELOPE 451"/.test(l)).length, 2, lines.join('\n'));
    assert.ok(lines.some((l) => /"msg":"notified".*"via":"email"/.test(l)));
    assert.ok(!lines.some((l) => l.includes(SMTP_PASS) || l.includes('@')), 'no password or address in the log');
  });

  it('gives up after the last wait; stopping the server ends a wait at once', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-giveup-'));
    config.notify.email.retryDelaysSeconds = [0.1];
    const ticket = await fixedTicket(t, config);
    const { logger, lines } = captureLog();
    const notifier = new Notifier({ config, logger });
    const before = smtp.delivered.length;
    smtp.temporaryRefusals = 5;
    await notifier.notify({ kind: 'fixed', ticket, commit: SHA });
    assert.equal(smtp.delivered.length, before);
    assert.ok(lines.some((l) => /"msg":"notification not sent".*"error":"EENVELOPE 451"/.test(l)), lines.join('\n'));

    // A long wait, cut short by close().
    config.notify.email.retryDelaysSeconds = [600];
    const waiting = new Notifier({ config, logger });
    smtp.temporaryRefusals = 5;
    const sent = waiting.notify({ kind: 'fixed', ticket, commit: SHA });
    await waitFor(() => lines.some((l) => /"retryInSeconds":600/.test(l)), 10_000, 'the first refusal');
    const started = Date.now();
    await waiting.close();
    await sent;
    assert.ok(Date.now() - started < 5_000, 'close() did not wait out the retry delay');
    smtp.temporaryRefusals = 0;
    await notifier.close();
  });

  it('a permanent refusal (550) is not tried again', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-bounce-'));
    config.notify.email.retryDelaysSeconds = [0.1, 0.1];
    const ticket = await fixedTicket(t, config);
    ticket.reporters = ticket.reporters.map((r) => ({ ...r, address: `someone${BOUNCING}`, id: `someone${BOUNCING}` }));
    const { logger, lines } = captureLog();
    const notifier = new Notifier({ config, logger });
    t.after(() => notifier.close());
    await notifier.notify({ kind: 'fixed', ticket, commit: SHA });
    assert.ok(!lines.some((l) => l.includes('trying again')), lines.join('\n'));
    assert.ok(lines.some((l) => /"msg":"notification not sent".*"550"/.test(l) || /"msg":"notification not sent".*550/.test(l)), lines.join('\n'));
  });
});

describe('the outbox: nothing lost to a stop, nothing sent twice', () => {
  it('a stop during the waits leaves the reply in the outbox; the next start sends it, once', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-outbox-'));
    config.notify.email.retryDelaysSeconds = [600];
    const { store, ticket } = await filed(t, config);
    const { logger, lines } = captureLog();
    const before = smtp.delivered.length;
    const first = new Notifier({ config, store, logger });
    smtp.temporaryRefusals = 1;
    const sending = first.notify({ kind: 'fixed', ticket, commit: SHA });
    await waitFor(() => lines.some((l) => /"retryInSeconds":600/.test(l)), 10_000, 'the first refusal');
    await first.close();
    await sending;
    assert.equal(smtp.delivered.length, before, 'nothing delivered yet');
    assert.ok(lines.some((l) => /"msg":"notification not sent yet; it goes out at the next start".*"EENVELOPE 451"/.test(l)), lines.join('\n'));
    let rows = notificationsForTicket(store, ticket.id);
    assert.deepEqual(rows.map((r) => [r.kind, r.state, r.attempts, r.last_error]), [['fixed', 'pending', 1, 'EENVELOPE 451']]);
    assert.ok(!rows[0]!.target_json.includes('@'), 'the row names the reporter by position');

    // The next start.
    const second = new Notifier({ config, store, logger });
    t.after(() => second.close());
    await second.resume();
    assert.equal(smtp.delivered.length, before + 1, lines.join('\n'));
    const reporter = ticket.reporters[0] as { address?: string };
    assert.ok(reporter.address, 'the ticket has an email reporter');
    assert.deepEqual(smtp.delivered.at(-1)!.rcptTo, [reporter.address], 'to the reporter');
    rows = notificationsForTicket(store, ticket.id);
    assert.deepEqual(rows.map((r) => [r.state, r.attempts]), [['sent', 2]]);
    // People see it: the ticket's API answer and its dashboard page say who was told what.
    const app = createApp({ config, store, intake: new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) }), logger: silentLogger });
    const detail = (await (await app.request(`/api/tickets/${ticket.id}`)).json()) as { notifications: Array<{ kind: string; to: { via: string }; state: string; attempts: number; error: string | null }> };
    assert.deepEqual(detail.notifications.map((n) => [n.kind, n.to.via, n.state, n.attempts, n.error]), [['fixed', 'email', 'sent', 2, null]]);
    assert.ok(!JSON.stringify(detail.notifications).includes('@'), 'no address in the summary');
    const html = await (await app.request(`/tickets/${ticket.id}`)).text();
    assert.match(html, /<h3>Reporters told<\/h3>/);
    assert.match(html, /fixed → email to reporter 1: <b>sent<\/b><span class="muted"> after 2 tries<\/span>/);

    // And the one after: nothing left to send, nothing sent again.
    const third = new Notifier({ config, store, logger });
    t.after(() => third.close());
    await third.resume();
    await third.notify({ kind: 'fixed', ticket, commit: SHA });
    assert.equal(smtp.delivered.length, before + 1, 'the same notice to the same reporter went out once');
  });

  // Review finding: a mail the SMTP server refused for bugbot's own login (535), or one it
  // could not take for longer than the retries wait, was marked failed for good: the
  // operator fixed the password and restarted, and the reporter was never told.
  it("a mail refused for bugbot's own SMTP login, or past its retries, stays in the outbox for the next start", async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-keep-'));
    config.notify.email.retryDelaysSeconds = [0.05];
    const { store, ticket } = await filed(t, config);
    const { logger, lines } = captureLog();
    const before = smtp.delivered.length;
    const wrongLogin = { ...config, secrets: { ...config.secrets, get: (name?: string) => (name === 'BUGBOT_SMTP_PASSWORD' ? 'not-the-password' : config.secrets.get(name)) } } as BugbotConfig;
    const first = new Notifier({ config: wrongLogin, store, logger });
    await first.notify({ kind: 'fixed', ticket, commit: SHA });
    await first.close();
    assert.equal(smtp.delivered.length, before);
    assert.deepEqual(notificationsForTicket(store, ticket.id).map((r) => [r.state, r.last_error]), [['pending', 'EAUTH 535']], lines.join('\n'));
    assert.ok(lines.some((l) => /"msg":"notification not sent: kept in the outbox, it goes out at the next start \(check notify\.email and the SMTP server/.test(l)), lines.join('\n'));

    // The server busy past every retry: kept too.
    const busy = new Notifier({ config, store, logger });
    smtp.temporaryRefusals = 5;
    await busy.resume();
    smtp.temporaryRefusals = 0;
    await busy.close();
    assert.deepEqual(notificationsForTicket(store, ticket.id).map((r) => [r.state, r.last_error]), [['pending', 'EENVELOPE 451']], lines.join('\n'));

    // Fixed, restarted: it goes out, once.
    const next = new Notifier({ config, store, logger });
    t.after(() => next.close());
    await next.resume();
    assert.equal(smtp.delivered.length, before + 1, lines.join('\n'));
    assert.deepEqual(notificationsForTicket(store, ticket.id).map((r) => r.state), ['sent']);
  });

  it('the same notice twice tells each reporter once; a refusal for good is recorded and not tried again at the next start', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-dedupe-'));
    config.notify.email.retryDelaysSeconds = [0.1];
    const { store, ticket } = await filed(t, config);
    const { logger } = captureLog();
    const notifier = new Notifier({ config, store, logger });
    t.after(() => notifier.close());
    // An approval request goes to the approvals channel (no Slack thread reported this ticket).
    const posts = slackApi.of('chat.postMessage').length;
    const request = { kind: 'awaiting_approval' as const, ticket, commit: SHA, branch: 'bot/ticket-1' };
    await notifier.notify(request);
    await notifier.notify(request);
    assert.equal(slackApi.of('chat.postMessage').length, posts + 1, 'one approval request');
    // A new commit is a new notice.
    await notifier.notify({ ...request, commit: 'b'.repeat(40) });
    assert.equal(slackApi.of('chat.postMessage').length, posts + 2);
    // So is another run's request for the same commit (its buttons act on that run).
    await notifier.notify({ ...request, run: 7 });
    await notifier.notify({ ...request, run: 8 });
    await notifier.notify({ ...request, run: 8 });
    assert.equal(slackApi.of('chat.postMessage').length, posts + 4);

    const bouncing = { ...ticket, reporters: ticket.reporters.map((r) => ({ ...r, address: `someone${BOUNCING}`, id: `someone${BOUNCING}` })) };
    const before = smtp.delivered.length;
    await notifier.notify({ kind: 'fixed', ticket: bouncing, commit: SHA });
    const failed = notificationsForTicket(store, ticket.id).filter((r) => r.kind === 'fixed');
    assert.deepEqual(failed.map((r) => [r.state, r.attempts]), [['failed', 1]]);
    assert.match(failed[0]!.last_error ?? '', /550/);
    const next = new Notifier({ config, store, logger });
    t.after(() => next.close());
    await next.resume();
    assert.equal(smtp.delivered.length, before, 'not tried again');
    assert.equal(notificationsForTicket(store, ticket.id).filter((r) => r.state === 'pending').length, 0);
  });
});

describe('the outbox: a stop during a wait on Slack\'s rate limit', () => {
  // Review finding: a stop (or `bugbot approve` exiting) while a thread reply waited out
  // Slack's rate limit marked the reply failed for good: the thread never heard, though an
  // email cut short the same way goes out at the next start.
  it('leaves the thread reply in the outbox; the next start sends it, once', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-ratelimit-'));
    const { store, ticket: filedTicket } = await filed(t, config);
    store.addReporter(filedTicket.id, { kind: 'slack', id: 'U0LIMIT', thread: 'C0LIMITED:1700000011.001100' });
    const ticket = store.getTicket(filedTicket.id)!;
    const { logger, lines } = captureLog();
    slackApi.rateLimited.add('C0LIMITED');
    t.after(() => slackApi.rateLimited.delete('C0LIMITED'));
    const first = new Notifier({ config, store, logger });
    const sending = first.notify({ kind: 'failed', ticket, reason: 'tests still fail after the fix' });
    await waitFor(() => postsTo('C0LIMITED').length > 0, 10_000, 'the rate-limited post');
    const started = Date.now();
    await first.close();
    await sending;
    assert.ok(Date.now() - started < 5_000, 'close() did not wait out the rate limit');
    assert.deepEqual(notificationsForTicket(store, ticket.id).map((r) => [r.kind, r.state]), [['failed', 'pending']], lines.join('\n'));

    // The next start: the rate limit is over.
    slackApi.rateLimited.delete('C0LIMITED');
    const before = postsTo('C0LIMITED').length;
    const second = new Notifier({ config, store, logger });
    t.after(() => second.close());
    await second.resume();
    const posts = postsTo('C0LIMITED', '1700000011.001100').slice(before);
    assert.equal(posts.length, 1, lines.join('\n'));
    assert.match(posts[0]!.params.text, /^Not fixed: .*tests still fail after the fix/);
    assert.deepEqual(notificationsForTicket(store, ticket.id).map((r) => r.state), ['sent']);
  });
});

// Review finding: a thread reply Slack could not take for the moment (a lost connection, a
// 503, service_unavailable) got the client's retries, seconds apart, and was then marked
// failed for good: a Slack incident of a minute and the reporter never heard of their fix.
describe('Slack: a message Slack cannot take for now is tried again', () => {
  const message = { text: 'Fixed: ticket #1 “cart total”: the fix is live on `staging`.' };

  it('after Slack trouble of each kind the message goes out on a later try; a refusal is not tried again', async (t) => {
    const { logger, lines } = captureLog();
    const slack = new SlackNotifier({ token: BOT_TOKEN, apiUrl, logger, retryDelaysMs: [20, 20, 20] });
    for (const [channel, trouble] of [
      ['C0TROUBLE1', ['service_unavailable', 'internal_error']],
      // The client's own quick retries (three calls a try) come first.
      ['C0TROUBLE2', ['503', '503', '503']],
      ['C0TROUBLE3', ['reset', 'reset', 'reset']],
    ] as const) {
      slackApi.trouble.set(channel, [...trouble]);
      t.after(() => slackApi.trouble.delete(channel));
      await slack.post({ channel, threadTs: '1700000031.000100' }, message);
      const calls = postsTo(channel, '1700000031.000100');
      assert.equal(calls.length, trouble.length + 1, `${channel}: ${lines.join('\n')}`);
      assert.equal(calls.filter((c) => c.response.ok).length, 1, `${channel}: posted once`);
    }
    assert.equal(lines.filter((l) => l.includes('"msg":"slack message not sent yet; trying again"')).length, 4, lines.join('\n'));
    assert.ok(!lines.join('\n').includes(BOT_TOKEN), 'the token is never logged');

    const before = postsTo(DEAD_CHANNEL).length;
    await assert.rejects(slack.post({ channel: DEAD_CHANNEL }, message), /channel_not_found/);
    assert.equal(postsTo(DEAD_CHANNEL).length - before, 1, 'a refusal for good is not tried again');

    slackApi.trouble.set('C0TROUBLE4', Array(10).fill('internal_error') as string[]);
    t.after(() => slackApi.trouble.delete('C0TROUBLE4'));
    await assert.rejects(slack.post({ channel: 'C0TROUBLE4' }, message), /internal_error/);
    assert.equal(postsTo('C0TROUBLE4').length, 4, 'bounded: the first try and one after each wait');
  });

  it('stopping ends a wait at once', async (t) => {
    const slack = new SlackNotifier({ token: BOT_TOKEN, apiUrl, logger: silentLogger, retryDelaysMs: [60_000] });
    slackApi.trouble.set('C0TROUBLE5', ['service_unavailable', 'service_unavailable']);
    t.after(() => slackApi.trouble.delete('C0TROUBLE5'));
    const stop = new AbortController();
    const sending = slack.post({ channel: 'C0TROUBLE5' }, message, stop.signal);
    await waitFor(() => postsTo('C0TROUBLE5').length > 0, 5_000, 'the first try');
    const started = Date.now();
    stop.abort();
    await assert.rejects(sending, /service_unavailable/);
    assert.ok(Date.now() - started < 1_000, 'the wait ended with the stop');
    assert.equal(postsTo('C0TROUBLE5').length, 1);
  });

  it('through the outbox: the reply Slack could not take at first is sent, and marked sent', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-trouble-'));
    const { store, ticket: filedTicket } = await filed(t, config);
    store.addReporter(filedTicket.id, { kind: 'slack', id: 'U0TROUBLE', thread: 'C0TROUBLE6:1700000036.003600' });
    const ticket = store.getTicket(filedTicket.id)!;
    slackApi.trouble.set('C0TROUBLE6', ['service_unavailable']);
    t.after(() => slackApi.trouble.delete('C0TROUBLE6'));
    const { logger, lines } = captureLog();
    const notifier = new Notifier({ config, store, logger });
    t.after(() => notifier.close());
    await notifier.notify({ kind: 'failed', ticket, reason: 'tests still fail after the fix' });
    const posts = postsTo('C0TROUBLE6', '1700000036.003600');
    assert.deepEqual(posts.map((c) => c.response.ok), [false, true], lines.join('\n'));
    assert.deepEqual(notificationsForTicket(store, ticket.id).map((r) => [r.kind, r.state]), [['failed', 'sent']], lines.join('\n'));
  });

  it('a stop while it waits to try again leaves it in the outbox for the next start', async (t) => {
    const config = notifyConfig(tempDir(t, 'bugbot-notify-trouble-stop-'));
    const { store, ticket: filedTicket } = await filed(t, config);
    store.addReporter(filedTicket.id, { kind: 'slack', id: 'U0TROUBLE', thread: 'C0TROUBLE7:1700000037.003700' });
    const ticket = store.getTicket(filedTicket.id)!;
    slackApi.trouble.set('C0TROUBLE7', ['service_unavailable']);
    t.after(() => slackApi.trouble.delete('C0TROUBLE7'));
    const { logger, lines } = captureLog();
    const notifier = new Notifier({ config, store, logger });
    const sending = notifier.notify({ kind: 'failed', ticket, reason: 'tests still fail after the fix' });
    await waitFor(() => postsTo('C0TROUBLE7').length > 0, 5_000, 'the first try');
    await notifier.close();
    await sending;
    assert.deepEqual(notificationsForTicket(store, ticket.id).map((r) => [r.kind, r.state]), [['failed', 'pending']], lines.join('\n'));
  });
});

describe('a run whose end its reporters never heard of (a crash came between)', () => {
  it('the next start tells them, once: a fix that landed, and a ticket the restart gave up on', async (t) => {
    const home = tempDir(t, 'bugbot-notify-untold-');
    const config = notifyConfig(home, { server: { port: 0 }, queue: { maxAttempts: 1 } });
    const store = new Store(join(home, 'bugbot.db'));
    const intake = new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) });
    const app = createApp({ config, store, intake, logger: silentLogger });
    const fileEmail = async () => {
      const res = await app.request('/triggers/email/raw', { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: outlookReply() });
      assert.equal(res.status, 200);
      return ((await res.json()) as { results: { ticket: number }[] }).results[0]!.ticket;
    };
    // A fix pushed, its end recorded, and the control plane killed before it told anyone:
    // what finishRun leaves (the notice with the end, in one transaction), and nothing more.
    const fixedId = await fileEmail();
    const { address } = store.getTicket(fixedId)!.reporters[0] as { address: string };
    store.addReporter(fixedId, { kind: 'slack', id: 'U0KATE', thread: 'C0SHOP09:1700000009.000900' });
    const landed = claimNext(store, 1, null, 60)!;
    const notice = { run_id: landed.run.id, state: 'pushed', reason: 'pushed to staging', commit: SHA, branch: `bot/ticket-${fixedId}`, pushed_to: 'staging' };
    assert.equal(finishRun(store, landed.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed to staging', notice }), 'finished');
    // Another ticket's worker was at its last attempt when the control plane died.
    const filedByHand = await app.request('/api/tickets', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Totals are wrong', message: 'RangeError: order total exceeds limit' }) });
    assert.equal(filedByHand.status, 201);
    const lostId = ((await filedByHand.json()) as { ticket: { id: number } }).ticket.id;
    store.addReporter(lostId, { kind: 'slack', id: 'U0LEO', thread: 'C0SHOP10:1700000010.001000' });
    const lostRun = claimNext(store, 1, null, 60)!;
    assert.equal(lostRun.ticket.id, lostId);
    store.close();

    const mails = smtp.delivered.length;
    const server = await startServer(config, silentLogger, () => undefined);
    let stopped = false;
    t.after(() => (stopped ? undefined : server.stop()));
    const fixedPost = await waitFor(() => postsTo('C0SHOP09', '1700000009.000900').find((c) => c.params.text.startsWith('Fixed')), 10_000, 'the fixed reply');
    assert.ok(fixedPost.params.text.includes(SHA.slice(0, 7)), fixedPost.params.text);
    const mail = await waitFor(() => smtp.delivered.slice(mails).find((m) => m.rcptTo.includes(address)), 10_000, 'the fixed email');
    assert.match(mail.mail.text ?? '', new RegExp(`fixed and live: the fix is on staging, commit ${SHA.slice(0, 7)}`));
    const failedPost = await waitFor(() => postsTo('C0SHOP10', '1700000010.001000').find((c) => c.params.text.startsWith('Not fixed')), 10_000, 'the failure');
    assert.match(failedPost.params.text, /the control plane restarted while the run was under way; attempt 1 of 1, giving up/);
    await server.stop();
    stopped = true;

    // Told: nothing left to tell, and the start after sends nothing again.
    const after = new Store(join(home, 'bugbot.db'));
    assert.deepEqual(pendingRunNotices(after), []);
    assert.equal(after.getTicket(lostRun.ticket.id)!.state, 'failed');
    after.close();
    const posts = slackApi.of('chat.postMessage').length;
    const delivered = smtp.delivered.length;
    const again = await startServer(config, silentLogger, () => undefined);
    await again.stop();
    assert.equal(slackApi.of('chat.postMessage').length, posts, 'no thread told twice');
    assert.equal(smtp.delivered.length, delivered, 'no second email');
  });
});

describe('Slack: thread replies and Approve / Skip buttons', () => {
  let home: string;
  let config: BugbotConfig;
  let store: Store;
  let notifier: Notifier;
  let slack: SlackTrigger;
  let app: Hono;
  let origin: string;
  let repo: string;
  const log = captureLog();
  const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  let n = 0;

  before(async () => {
    home = tempDir(undefined, 'bugbot-notify-slack-');
    // The target: a repository with a bare origin holding main and staging.
    origin = join(home, 'origin.git');
    repo = join(home, 'shop');
    mkdirSync(repo);
    git(home, 'init', '--quiet', '--bare', '--initial-branch=main', origin);
    git(repo, 'init', '--quiet', '--initial-branch=main');
    git(repo, 'config', 'user.name', 'Shop Dev');
    git(repo, 'config', 'user.email', 'dev@shop.test');
    writeFileSync(join(repo, 'checkout.js'), 'export const total = (cart) => cart.total;\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '--quiet', '-m', 'shop');
    git(repo, 'remote', 'add', 'origin', origin);
    git(repo, 'push', '--quiet', 'origin', 'main', 'main:staging');

    config = notifyConfig(join(home, 'home'), { target: { repo }, harness: { pushMode: 'approve' } });
    store = new Store(join(config.home, 'bugbot.db'));
    const intake = new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) });
    notifier = new Notifier({ config, logger: log.logger });
    const approvals = new Approvals({ config, store, logger: silentLogger, onNotice: (notice) => void notifier.notify(notice) });
    slack = createSlackTrigger({ config, store, intake, logger: log.logger, approvals });
    app = createApp({ config, store, intake, logger: silentLogger, slack });
    await slack.start();
  });

  after(async () => {
    await slack.stop();
    await notifier.close();
    store.close();
    if (!process.env.BUGBOT_KEEP_TMP) rmSync(home, { recursive: true, force: true });
  });

  function signed(body: string, opts: { ts?: number; secret?: string; contentType?: string } = {}) {
    const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
    return app.request('/slack/events', {
      method: 'POST',
      headers: {
        'content-type': opts.contentType ?? 'application/json',
        'x-slack-request-timestamp': ts,
        'x-slack-signature': 'v0=' + createHmac('sha256', opts.secret ?? SIGNING_SECRET).update(`v0:${ts}:${body}`).digest('hex'),
      },
      body,
    });
  }

  /** A person reports a bug by mentioning the bot in a thread; returns the ticket id. */
  async function mention(channel: string, threadTs: string, user: string): Promise<number> {
    const base = fixtureJson<Record<string, unknown>>('slack', 'event_callback_app_mention_in_thread_camunda_docs.json');
    // A different error each time (numbers and quoted values are masked in fingerprints).
    const word = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliett'][n]!;
    const text = `<@${BOT_USER}> checkout fails for every cart: TypeError: cart.${word}Total is not a function`;
    const body = JSON.stringify({ ...base, event_id: `EvNotify${++n}`, event: { ...(base.event as object), channel, thread_ts: threadTs, user, text } });
    const res = await signed(body);
    assert.equal(res.status, 200, await res.clone().text());
    const reply = (await res.json()) as { results: { status: string; ticket: number }[] };
    assert.equal(reply.results[0]!.status, 'created');
    return reply.results[0]!.ticket;
  }

  /** Run the queued ticket as the dispatcher does: claim, branch, finish in `state`; the row onRunFinished gets. */
  function run(ticketId: number, state: TicketState, o: { branch?: string; commit?: string; reason?: string } = {}) {
    const claim = claimNext(store, 1, null, 60);
    assert.equal(claim?.ticket.id, ticketId, 'the ticket just filed is the one claimed');
    const branch = o.branch ?? `bot/ticket-${ticketId}`;
    setRunProcess(store, claim.run.id, { branch });
    // What the worker records of its push (the commit an approval merges, and no other).
    if (o.commit) {
      const dir = workspacePaths(config, { id: ticketId }, claim.run).ticketDir;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'push.env'), `branch=${branch}\ncommit=${o.commit}\n`);
    }
    const reason = o.reason ?? (state === 'failed' ? 'tests failed' : 'review approved');
    const outcome = {
      state,
      outcome: state === 'failed' ? ('failed' as const) : ('clean' as const),
      reason,
      started: null,
      finished: null,
      stages: {},
      branch,
      commit: o.commit ?? null,
      pushed_to: state === 'pushed' ? config.target.stagingBranch : state === 'awaiting_approval' ? branch : null,
      diff: null,
      tests: { passed: null, failed: null },
      cost_usd: 0,
      denials: [],
    };
    finishRun(store, claim.run.id, { ticketState: state, outcome: outcome.outcome, reason });
    const ticket = store.getTicket(ticketId)!;
    return { row: buildOutcomeRow({ ticket, run: claim.run, outcome, state, reason, model: null }), ticket };
  }

  /** A fix waiting on its bot branch: one commit on top of main, pushed to origin. */
  function botBranch(ticketId: number): { branch: string; commit: string } {
    const branch = `bot/ticket-${ticketId}`;
    git(repo, 'checkout', '--quiet', '-b', branch, 'main');
    writeFileSync(join(repo, `fix-${ticketId}.js`), `export const fixed = ${ticketId};\n`);
    git(repo, 'add', '-A');
    git(repo, 'commit', '--quiet', '-m', `Fix ticket ${ticketId}`);
    git(repo, 'push', '--quiet', 'origin', branch);
    const commit = git(repo, 'rev-parse', 'HEAD');
    git(repo, 'checkout', '--quiet', 'main');
    return { branch, commit };
  }

  /** The approval request posted in a thread, and a block_actions click on one of its buttons. */
  async function approvalRequest(ticketId: number, channel: string, threadTs: string) {
    const { row, ticket } = run(ticketId, 'awaiting_approval', { commit: botBranch(ticketId).commit });
    await notifier.notify(noticeForRun(row, ticket)!);
    const posted = postsTo(channel, threadTs).find((c) => c.params.blocks?.includes('bugbot_approve'));
    assert.ok(posted, 'approval request in the thread');
    const messageTs = posted.response.ts as string;
    const blocks = JSON.parse(posted.params.blocks!) as Array<{ type: string; block_id?: string; elements?: Array<Record<string, unknown>> }>;
    const actions = blocks.find((b) => b.type === 'actions')!;
    /** The form Slack posts when `user` clicks the button `actionId` (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload). */
    const click = (user: string, actionId: string): string => {
      const base = fixtureJson<Record<string, Record<string, unknown>>>('slack', 'block_actions_button_in_thread_vercel_chat.json');
      const button = actions.elements!.find((e) => e.action_id === actionId)!;
      const payload = {
        ...base,
        user: { ...base.user, id: user },
        container: { ...base.container, channel_id: channel, message_ts: messageTs, thread_ts: threadTs },
        channel: { ...base.channel, id: channel },
        message: { ...base.message, user: BOT_USER, bot_id: BOT_ID, ts: messageTs, thread_ts: threadTs, text: posted.params.text, blocks },
        actions: [{ ...button, block_id: actions.block_id, action_ts: '1700000200.000001' }],
      };
      return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    };
    return { posted, blocks, messageTs, click };
  }

  it('replies in the reporter’s thread when the ticket is fixed (commit link) or failed (the reason, escaped)', async () => {
    const fixedId = await mention('C0SHOP01', '1700000001.000100', 'U0ALICE');
    const fixedRun = run(fixedId, 'pushed', { commit: SHA });
    await notifier.notify(noticeForRun(fixedRun.row, fixedRun.ticket)!);
    const fixed = postsTo('C0SHOP01', '1700000001.000100').find((c) => c.params.text.startsWith('Fixed'));
    assert.ok(fixed, 'fixed reply in the thread');
    assert.equal(fixed.authorization, `Bearer ${BOT_TOKEN}`);
    assert.equal(fixed.params.text, `Fixed: ticket #${fixedId} “${fixedRun.ticket.title}”: the fix is live on \`staging\` as commit <https://git.shop.test/shop/commit/${SHA}|\`3f78685\`>.`);

    const failedId = await mention('C0SHOP02', '1700000002.000200', 'U0BOB');
    const failedRun = run(failedId, 'failed', { reason: 'tests fail: <!channel> expected 3 > 2 & more' });
    await notifier.notify(noticeForRun(failedRun.row, failedRun.ticket)!);
    const failed = postsTo('C0SHOP02', '1700000002.000200').find((c) => c.params.text.startsWith('Not fixed'));
    assert.ok(failed, 'failed reply in the thread');
    // Untrusted text cannot ping the channel: Slack's control characters are escaped.
    assert.match(failed.params.text, /tests fail: &lt;!channel&gt; expected 3 &gt; 2 &amp; more\. A person needs to look at it\.$/);
    assert.equal(postsTo(APPROVALS_CHANNEL).filter((c) => c.params.text.includes(`#${failedId}`)).length, 0, 'only approval requests go to the approvals channel');
    // A reason quoting git's error (the remote's URL with its credentials) is redacted first.
    const token = 'ghp_R3dact3dN0tShownAnywhere0123456789';
    await notifier.notify({ kind: 'failed', ticket: failedRun.ticket, reason: `could not push: fatal: Authentication failed for 'https://bugbot:${token}@git.shop.test/shop.git/'` });
    const pushFailed = postsTo('C0SHOP02', '1700000002.000200').find((c) => c.params.text.includes('could not push'));
    assert.ok(pushFailed, 'the push failure is told');
    assert.ok(!pushFailed.params.text.includes(token), pushFailed.params.text);
    assert.match(pushFailed.params.text, /Authentication failed for 'https:\/\/\S*REDACTED\S*@git\.shop\.test\/shop\.git\//);
    // Review finding: a reason naming this machine's folders went to the thread as it was.
    await notifier.notify({ kind: 'failed', ticket: failedRun.ticket, reason: `could not prepare the ticket folder: EACCES: permission denied, mkdir '${config.home}/tickets/${failedId}'; ${config.target.repo} is not a git repository` });
    const folder = postsTo('C0SHOP02', '1700000002.000200').find((c) => c.params.text.includes('could not prepare'));
    assert.ok(folder, 'the failure is told');
    assert.ok(!folder.params.text.includes(config.home) && !folder.params.text.includes(config.target.repo), folder.params.text);
    assert.match(folder.params.text, new RegExp(`mkdir '&lt;bugbot home&gt;/tickets/${failedId}'; &lt;repository&gt; is not a git repository`));
  });

  it('one failed send stops none of the others', async () => {
    const id = await mention('C0SHOP03', '1700000003.000300', 'U0CAROL');
    for (const r of [
      { kind: 'slack' as const, id: 'U0DAVE', thread: `${DEAD_CHANNEL}:1700000004.000400` },
      { kind: 'email' as const, id: `erin${BOUNCING}`, address: `erin${BOUNCING}`, thread: '<r1@mail.test>', subject: 'Checkout broken' },
      { kind: 'email' as const, id: 'frank@shop-customer.test', address: 'frank@shop-customer.test', thread: '<r2@mail.test>', subject: 'Checkout broken' },
    ]) {
      store.addReporter(id, r);
    }
    const { row, ticket } = run(id, 'pushed', { commit: SHA });
    const before = smtp.delivered.length;
    const lines = log.lines.length;
    await notifier.notify(noticeForRun(row, ticket)!);
    assert.ok(postsTo('C0SHOP03', '1700000003.000300').some((c) => c.params.text.startsWith('Fixed')), 'the live thread heard');
    const mails = smtp.delivered.slice(before);
    assert.deepEqual(mails.map((m) => m.rcptTo), [['frank@shop-customer.test']], 'the good address got its mail');
    assert.equal(mails[0]!.mail.inReplyTo, '<r2@mail.test>');
    assert.equal(mails[0]!.mail.subject, 'Re: Checkout broken');
    const failures = log.lines.slice(lines).filter((l) => l.includes('"msg":"notification not sent"'));
    assert.equal(failures.length, 2, failures.join('\n'));
    assert.ok(failures.some((l) => l.includes('"channel":"C0ARCHIVED"') && l.includes('channel_not_found')));
    assert.ok(failures.some((l) => l.includes('"via":"email"') && l.includes('550') && !l.includes(BOUNCING)));
  });

  it('asks for approval in the thread with Approve / Skip buttons carrying the ticket id and the run', async () => {
    const id = await mention('C0SHOP05', '1700000005.000500', 'U0GRACE');
    const { posted, blocks } = await approvalRequest(id, 'C0SHOP05', '1700000005.000500');
    assert.match(posted.params.text, new RegExp(`^A fix for ticket #${id} .* is ready on \`bot/ticket-${id}\` \\(commit <https://git\\.shop\\.test/shop/commit/[0-9a-f]{40}\\|\`[0-9a-f]{7}\`>\\) and waits for approval\\.$`));
    const buttons = blocks.find((b) => b.type === 'actions')!.elements!;
    // The run too: a click on this request cannot approve a later run's fix.
    const runId = Number(String(buttons[0]!.value).split(':')[1]);
    assert.ok(Number.isSafeInteger(runId) && runId > 0, String(buttons[0]!.value));
    assert.deepEqual(
      buttons.map((b) => [b.type, b.action_id, b.value, (b.text as { text: string }).text]),
      [
        ['button', 'bugbot_approve', `${id}:${runId}`, 'Approve'],
        ['button', 'bugbot_skip', `${id}:${runId}`, 'Skip'],
      ],
    );
    assert.equal(postsTo(APPROVALS_CHANNEL).filter((c) => c.params.text.includes(`#${id} `)).length, 0, 'a ticket with a thread is asked there');
  });

  it('without any approver configured, the request names the dashboard and the CLI instead of buttons nobody could use', async () => {
    const id = await mention('C0SHOP09', '1700000009.000900', 'U0KARL');
    const { row, ticket } = run(id, 'awaiting_approval', { commit: SHA });
    const noApprovers = notifyConfig(join(home, 'no-approvers'), { triggers: { slack: { apiUrl, approvers: [] } } });
    const quiet = new Notifier({ config: noApprovers, logger: silentLogger });
    await quiet.notify(noticeForRun(row, ticket)!);
    await quiet.close();
    const posted = postsTo('C0SHOP09', '1700000009.000900').at(-1)!;
    assert.equal(posted.params.blocks, undefined);
    assert.match(posted.params.text, new RegExp(`waits for approval[.] Approve or skip it on the dashboard or with \`bugbot approve ${id}\` / \`bugbot skip ${id}\`[.]$`));
    assert.equal(slackMessage({ kind: 'awaiting_approval', ticket }, { stagingBranch: 'staging', buttons: true }).blocks?.length, 2);
  });

  it('a click from someone who is not an approver does nothing and tells them why; unsigned, forged or stale clicks get 401', async () => {
    const id = await mention('C0SHOP06', '1700000006.000600', 'U0HEIDI');
    const { click } = await approvalRequest(id, 'C0SHOP06', '1700000006.000600');
    const staging = git(origin, 'rev-parse', 'staging');
    const form = 'application/x-www-form-urlencoded';

    const res = await signed(click(STRANGER, 'bugbot_approve'), { contentType: form });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '', 'Slack wants an empty 200');
    const told = await waitFor(() => slackApi.of('chat.postEphemeral').find((c) => c.params.user === STRANGER), 5000, 'ephemeral answer');
    assert.equal(told.params.channel, 'C0SHOP06');
    assert.equal(told.params.thread_ts, '1700000006.000600');
    assert.match(told.params.text, new RegExp(`^Nothing done: <@${STRANGER}> is not an approver\\. Only the Slack users listed in \`triggers\\.slack\\.approvers\` can approve`));

    const calls = slackApi.calls.length;
    for (const bad of [
      await app.request('/slack/events', { method: 'POST', headers: { 'content-type': form }, body: click(APPROVER, 'bugbot_approve') }),
      await signed(click(APPROVER, 'bugbot_approve'), { contentType: form, secret: 'not-the-secret' }),
      await signed(click(APPROVER, 'bugbot_approve'), { contentType: form, ts: Math.floor(Date.now() / 1000) - 301 }),
    ]) {
      assert.equal(bad.status, 401);
      assert.match(((await bad.json()) as { error: { message: string } }).error.message, /X-Slack-Signature|stale request/);
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(slackApi.calls.length, calls, 'nothing was said or done for a refused request');
    assert.equal(store.getTicket(id)!.state, 'awaiting_approval');
    assert.equal(git(origin, 'rev-parse', 'staging'), staging, 'staging untouched');
    assert.ok(!store.auditTrail(id).some((a) => a.action.startsWith('approval')), 'no approval was started');
  });

  it('an approver’s click merges the fix into staging, replaces the buttons with the result, and the reporter hears', async () => {
    const id = await mention('C0SHOP07', '1700000007.000700', 'U0IVAN');
    store.addReporter(id, { kind: 'email', id: 'ivan@shop-customer.test', address: 'ivan@shop-customer.test', thread: '<ivan-1@mail.test>', subject: 'Checkout broken' });
    const mails = smtp.delivered.length;
    const { click, messageTs } = await approvalRequest(id, 'C0SHOP07', '1700000007.000700');
    assert.equal(smtp.delivered.length, mails, 'no mail while the fix waits for approval');

    const res = await signed(click(APPROVER, 'bugbot_approve'), { contentType: 'application/x-www-form-urlencoded' });
    assert.equal(res.status, 200);
    const updated = await waitFor(() => slackApi.of('chat.update').find((c) => c.params.ts === messageTs), 30_000, 'the request updated with the result');
    assert.equal(updated.params.channel, 'C0SHOP07');
    assert.match(updated.params.text, new RegExp(`^Approved by <@${APPROVER}>: merged bot/ticket-${id} into staging at [0-9a-f]{12}$`));
    assert.ok(!updated.params.blocks?.includes('bugbot_approve'), 'the buttons are gone');

    assert.equal(store.getTicket(id)!.state, 'pushed');
    assert.match(git(origin, 'log', '--format=%s', 'staging'), new RegExp(`Fix ticket ${id}`));
    assert.ok(store.auditTrail(id).some((a) => a.actor === `slack:${APPROVER}`), 'the approval is recorded as the Slack user');
    // The fix is live: the Slack thread and the email reporter hear.
    const commit = git(origin, 'rev-parse', 'staging');
    const fixed = await waitFor(() => postsTo('C0SHOP07', '1700000007.000700').find((c) => c.params.text.startsWith('Fixed')), 10_000, 'fixed reply');
    assert.ok(fixed.params.text.includes(commit.slice(0, 7)), fixed.params.text);
    const mail = await waitFor(() => smtp.delivered.slice(mails).find((m) => m.rcptTo.includes('ivan@shop-customer.test')), 10_000, 'the fixed email');
    assert.equal(mail.mail.inReplyTo, '<ivan-1@mail.test>');
    assert.match(mail.mail.text ?? '', new RegExp(`fixed and live: the fix is on staging, commit ${commit.slice(0, 7)}`));
  });

  it('an approver’s Skip drops the ticket and says so in place of the buttons', async () => {
    const id = await mention('C0SHOP08', '1700000008.000800', 'U0JUDY');
    const { click, messageTs } = await approvalRequest(id, 'C0SHOP08', '1700000008.000800');
    const res = await signed(click(APPROVER, 'bugbot_skip'), { contentType: 'application/x-www-form-urlencoded' });
    assert.equal(res.status, 200);
    const updated = await waitFor(() => slackApi.of('chat.update').find((c) => c.params.ts === messageTs), 10_000, 'the request updated');
    assert.match(updated.params.text, new RegExp(`^Skipped by <@${APPROVER}>: ticket ${id} skipped \\(awaiting_approval → dropped\\): skipped from Slack$`));
    assert.equal(store.getTicket(id)!.state, 'dropped');

    // The stale request's buttons are clicked again: nothing happens, the clicker is told why.
    const again = await signed(click(APPROVER, 'bugbot_approve'), { contentType: 'application/x-www-form-urlencoded' });
    assert.equal(again.status, 200);
    const told = await waitFor(
      () => slackApi.of('chat.postEphemeral').find((c) => c.params.user === APPROVER && c.params.text.includes(`ticket #${id}`)),
      10_000,
      'the refusal',
    );
    assert.match(told.params.text, new RegExp(`^Nothing done for ticket #${id}: `));
    assert.equal(store.getTicket(id)!.state, 'dropped');
  });
});
