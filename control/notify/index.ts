/**
 * Notifications: tell the people who reported a ticket what became of it.
 *
 * - Slack reporters get a reply in their thread: fixed (commit or pull request),
 *   failed (the reason), or a fix awaiting approval with Approve / Skip buttons.
 *   Approval requests for tickets no Slack thread reported go to
 *   `notify.slack.approvalsChannel` when one is set.
 * - Email reporters get one SMTP reply, threaded under their message, and only when
 *   the fix is pushed ("fixed and live"): never for a failure or a pending approval.
 *
 * Every send is independent: a failure is logged and the others still go out; nothing
 * throws out of notify(). Emails go to the SMTP server SMTP_CONNECTIONS at a time, the others
 * waiting their turn. An email the server could not take for now (unreachable, or a
 * temporary 4xx refusal) is tried again after notify.email.retryDelaysSeconds, a Slack
 * reply after the rate limit's Retry-After; stopping the server ends the waiting (and the
 * outbox keeps such a message, and an email still waiting its turn, for the next start).
 *
 * With a store, every message is recorded in the outbox (control/queue/notifications.ts)
 * before it is sent: the same notice to the same reporter goes out once, and a message a
 * stop or a crash left unsent goes out at the next start (resume()). See
 * docs/notifications.md.
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { configuredRedactor, type BugbotConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { OutcomeRow } from '../outcomes/archive.ts';
import { deferNotification, finishNotification, keepUntoldFix, latestNotice, pendingNotifications, recordNotification, type NotificationRow } from '../queue/notifications.ts';
import type { Store } from '../queue/store.ts';
import { slackTrouble } from '../triggers/slack-thread.ts';
import type { Ticket, TicketNotice } from '../types.ts';
import { EmailNotifier, fixedReply, replyMessageId } from './email.ts';
import type { MessageOptions } from './format.ts';
import { parseSlackThread, rateLimited, SlackNotifier, slackMessage, type SlackTarget } from './slack.ts';

export interface NotifierDeps {
  config: BugbotConfig;
  logger: Logger;
  /** The outbox: record each message before sending it (dedupe, and nothing lost to a stop). */
  store?: Store;
  /** Redaction for a failure's reason (default: the config's, as intake redacts). */
  redact?: (text: string) => string;
}

/**
 * How many emails go to the SMTP server at once, each on a connection of its own. A fix told
 * to thousands of reporters opened a connection for every one of them at the same moment:
 * mail providers refuse past a few from one login (Exchange Online takes 3 and answers the
 * rest "432 4.3.2 concurrent connections limit exceeded"), and the host ran short of sockets.
 */
export const SMTP_CONNECTIONS = 3;

/** An email that still waited for a connection when bugbot stopped: never tried, it stays in the outbox for the next start. */
class Stopped extends Error {
  readonly code = 'ESTOPPED';
  constructor() {
    super('bugbot stopped before the message was sent');
  }
}

/** One message of a notice: to whom (recorded with it), how to send it, how to say why it failed. */
interface Job {
  to: Record<string, unknown>;
  run: (tries: { n: number }) => Promise<unknown>;
  why: (err: unknown) => string;
  /**
   * Whether a failure a stop cut short leaves the message pending for the next start: an
   * email waiting to be tried again after a transient refusal, a Slack reply waiting out a rate limit.
   */
  deferrable: (err: unknown) => boolean;
  /**
   * Whether a failure that outlasted its retries leaves the message pending for the next
   * start all the same: one its recipient has no part in (the server out of reach longer
   * than the retries wait, bugbot's own login or TLS settings refused). Marked failed, it
   * was lost for good, though the operator would fix the settings and restart.
   */
  keep?: (err: unknown) => boolean;
}

/** Sends each notice to the ticket's reporters over Slack and email, as configured. */
export class Notifier {
  private readonly slack: SlackNotifier | undefined;
  private readonly email: EmailNotifier | undefined;
  private readonly from: string | undefined;
  private readonly approvalsChannel: string | undefined;
  private readonly messages: MessageOptions;
  private readonly logger: Logger;
  private readonly store: Store | undefined;
  private readonly pending = new Set<Promise<void>>();
  private readonly retryDelaysMs: number[];
  /** Aborted by close(): retries waiting for their turn give up. */
  private readonly closing = new AbortController();
  /** Emails being sent now (at most SMTP_CONNECTIONS), and those waiting for one of them to end, first come first served. */
  private smtpBusy = 0;
  private readonly smtpWaiting: Array<{ go: () => void; stop: (err: Error) => void }> = [];
  private readonly redact: (text: string) => string;
  /** This machine's folders a reason may name, longest first, and what a reporter reads instead. */
  private readonly paths: Array<[string, string]>;

  constructor(deps: NotifierDeps) {
    const { config } = deps;
    const n = config.notify;
    this.logger = deps.logger;
    this.store = deps.store;
    // Every retry waiting out its delay listens for the stop: thousands in a flood of
    // reporters while the mail server refuses for now, which is no leak to warn of.
    setMaxListeners(0, this.closing.signal);
    // Emails still waiting for a connection are not sent once bugbot stops (the outbox keeps them).
    this.closing.signal.addEventListener('abort', () => {
      for (const w of this.smtpWaiting.splice(0)) w.stop(new Stopped());
    });
    this.redact = deps.redact ?? configuredRedactor(config).text;
    const paths: Array<[string, string]> = [
      [resolve(config.home), '<bugbot home>'],
      [resolve(config.target.repo), '<repository>'],
      [resolve(tmpdir()), '<tmp>'],
    ];
    this.paths = paths.filter(([p]) => p.length > 1).sort((a, b) => b[0].length - a[0].length);
    const slackCfg = config.triggers.slack;
    this.messages = {
      stagingBranch: config.target.stagingBranch,
      ...(n.commitUrl ? { commitUrl: n.commitUrl } : {}),
      // Clicks arrive through the Slack trigger and act only for its approvers.
      buttons: slackCfg.enabled && slackCfg.approvers.length > 0,
    };
    const token = config.secrets.get(config.triggers.slack.botTokenEnv);
    if (n.slack.enabled && token) this.slack = new SlackNotifier({ token, apiUrl: config.triggers.slack.apiUrl, logger: deps.logger });
    this.approvalsChannel = n.slack.approvalsChannel;
    this.retryDelaysMs = n.email.retryDelaysSeconds.map((s) => s * 1000);
    if (n.email.host && n.email.from) {
      const user = config.secrets.get(n.email.userEnv);
      const pass = config.secrets.get(n.email.passwordEnv);
      this.email = new EmailNotifier({
        host: n.email.host,
        port: n.email.port,
        secure: n.email.secure,
        requireTLS: n.email.requireTLS,
        ...(user && pass ? { auth: { user, pass } } : {}),
      });
      this.from = n.email.from;
    }
  }

  private hidePaths(text: string): string {
    return this.paths.reduce((s, [path, name]) => s.split(path).join(name), text);
  }

  /** Which channels are configured (for the start banner and tests). */
  get channels(): { slack: boolean; email: boolean } {
    return { slack: this.slack !== undefined, email: this.email !== undefined };
  }

  /** Send a notice to every reporter it concerns. Resolves when all sends are done; never rejects. */
  notify(notice: TicketNotice): Promise<void> {
    // A failure's reason can quote git's or the model endpoint's error text (a remote's URL
    // with its credentials): redacted before the outbox records it and a thread shows it.
    // It can also name this machine's folders (a ticket folder it could not make, a
    // worktree): reporters read what went wrong, not where bugbot keeps its files.
    const told = notice.reason === undefined ? notice : { ...notice, reason: this.hidePaths(this.redact(notice.reason)) };
    return this.track(told, () => this.send(told));
  }

  /**
   * A person reported a ticket whose fix is already out (and they were added to its
   * reporters): they get its last "fixed" notice, as the others did (who are not told
   * twice: the outbox knows them), also when it went to nobody then (keepUntoldFix).
   * Nothing when no fix was ever noticed, or without an outbox.
   */
  tellLatecomers(ticketId: number): Promise<void> {
    const store = this.store;
    const ticket = store?.getTicket(ticketId);
    const last = store && latestNotice(store, ticketId, 'fixed');
    if (!ticket || !last) return Promise.resolve();
    return this.notify({ ...(JSON.parse(last) as TicketNotice), ticket });
  }

  /**
   * Send what the outbox holds unsent: messages a stop cut short (waiting to try an
   * email again) or a crash left in flight. Call once at start; resolves when they are done.
   */
  resume(): Promise<void> {
    const store = this.store;
    if (!store) return Promise.resolve();
    const byNotice = new Map<string, NotificationRow[]>();
    let messages = 0;
    for (const row of pendingNotifications(store)) {
      const rows = byNotice.get(row.notice_json);
      if (rows) rows.push(row);
      else byNotice.set(row.notice_json, [row]);
      messages++;
    }
    if (byNotice.size) this.logger.info('sending notifications left unsent', { messages });
    return Promise.all(
      [...byNotice].map(([json, rows]) => {
        const kept = JSON.parse(json) as TicketNotice;
        // The outbox keeps the ticket by id and title (outboxNotice): the reporters are the
        // ticket's now. Its list only grows, so each row's reporter is still at the position
        // the row names.
        const notice = { ...kept, ticket: store.getTicket(kept.ticket.id) ?? kept.ticket };
        return this.track(notice, () => this.send(notice, rows));
      }),
    ).then(() => undefined);
  }

  private track(notice: TicketNotice, send: () => Promise<void>): Promise<void> {
    const work = send().catch((err: unknown) =>
      this.logger.error('notification failed', { ticket: notice.ticket.id, kind: notice.kind, error: (err as Error).message }),
    );
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
    return work;
  }

  /**
   * Wait for notifications in flight (retries waiting stop, and emails waiting for a
   * connection are not sent: the outbox keeps both), then close the SMTP transport. Idempotent.
   */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.pending]);
    this.email?.close();
  }

  /** Run an email send, again after each retry delay while it fails for a transient reason. */
  private async retrying<T>(run: () => Promise<T>, fields: Record<string, unknown>, tries: { n: number }): Promise<T> {
    let last: unknown;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.smtpTry(run, tries);
      } catch (err) {
        // Stopped while it waited for a connection: the last refusal, if any, stands.
        if (err instanceof Stopped) throw last ?? err;
        last = err;
        const delay = this.retryDelaysMs[attempt];
        if (delay === undefined || !transientSmtp(err) || this.closing.signal.aborted) throw err;
        this.logger.warn('notification not sent yet; trying again', { ...fields, error: smtpErrorText(err), attempt: attempt + 1, retryInSeconds: delay / 1000 });
        // close() aborts the wait, and the last error stands.
        await sleep(delay, undefined, { signal: this.closing.signal }).catch(() => undefined);
        if (this.closing.signal.aborted) throw err;
      }
    }
  }

  /** One try of an email, once one of the SMTP_CONNECTIONS is free; rejects with Stopped when bugbot stops first. */
  private async smtpTry<T>(run: () => Promise<T>, tries: { n: number }): Promise<T> {
    if (this.closing.signal.aborted) throw new Stopped();
    if (this.smtpBusy < SMTP_CONNECTIONS) this.smtpBusy++;
    // The send that ends hands its connection over (smtpBusy stays as it is).
    else await new Promise<void>((go, stop) => this.smtpWaiting.push({ go, stop }));
    try {
      tries.n++;
      return await run();
    } finally {
      const next = this.smtpWaiting.shift();
      if (next) next.go();
      else this.smtpBusy--;
    }
  }

  /**
   * Send a notice's messages. With the outbox: record each first and skip those recorded
   * before; `resumed` (rows left pending) sends those messages only, already recorded.
   */
  private async send(notice: TicketNotice, resumed?: NotificationRow[]): Promise<void> {
    const store = this.store;
    const work: Array<{ job: Job; id?: number }> = [];
    const jobs = this.jobs(notice);
    const kept = outboxNotice(notice);
    if (store && !resumed && notice.kind === 'fixed' && jobs.length === 0) {
      // Nobody to tell now; a person whose report joins the fixed ticket later is told this.
      keepUntoldFix(store, { ticketId: notice.ticket.id, dedupeKey: dedupeKey(notice, {}), notice: kept });
    }
    const rowOf = new Map(resumed?.map((r) => [r.target_json, r.id]));
    for (const job of jobs) {
      if (!store) {
        work.push({ job });
        continue;
      }
      const target = JSON.stringify(job.to);
      let id: number | undefined;
      try {
        id = resumed
          ? rowOf.get(target)
          : recordNotification(store, { ticketId: notice.ticket.id, kind: notice.kind, dedupeKey: dedupeKey(notice, job.to), notice: kept, target: job.to });
      } catch (err) {
        // The outbox could not take it (a full disk): sent unrecorded rather than never, since
        // nothing else keeps it (a run's end the database refused is recorded without its notice).
        this.logger.warn('could not record a notification in the outbox; sending it unrecorded', { ticket: notice.ticket.id, kind: notice.kind, ...job.to, error: (err as Error).message });
        work.push({ job });
        continue;
      }
      if (id !== undefined) work.push({ job, id });
      else if (!resumed) this.logger.debug('already notified', { ticket: notice.ticket.id, kind: notice.kind, ...job.to });
    }
    // Pending rows whose message this configuration no longer sends (a channel turned off).
    const sending = new Set(work.map((w) => w.id));
    for (const row of resumed ?? []) {
      if (!sending.has(row.id)) finishNotification(store!, row.id, 'failed', 0, 'no longer sent: its channel is not configured');
    }

    const tries = work.map(() => ({ n: 0 }));
    const results = await Promise.allSettled(work.map((w, i) => w.job.run(tries[i]!)));
    results.forEach((r, i) => {
      const { job, id } = work[i]!;
      const fields = { ticket: notice.ticket.id, kind: notice.kind, ...job.to };
      if (r.status === 'fulfilled') {
        this.logger.info('notified', fields);
        if (id !== undefined) finishNotification(store!, id, 'sent', tries[i]!.n);
        return;
      }
      const error = job.why(r.reason);
      if (id !== undefined && this.closing.signal.aborted && job.deferrable(r.reason)) {
        // Stopped while it waited to try again: the next start sends it.
        deferNotification(store!, id, tries[i]!.n, error);
        this.logger.warn('notification not sent yet; it goes out at the next start', { ...fields, error });
        return;
      }
      if (id !== undefined && job.keep?.(r.reason)) {
        deferNotification(store!, id, tries[i]!.n, error);
        this.logger.warn(`notification not sent: kept in the outbox, it goes out at the next start (check ${job.to.via === 'email' ? 'notify.email and the SMTP server' : "the Slack bot token and Slack's status"}, then restart bugbot)`, { ...fields, error });
        return;
      }
      this.logger.warn('notification not sent', { ...fields, error });
      if (id !== undefined) finishNotification(store!, id, 'failed', tries[i]!.n, error);
    });
  }

  /** The messages a notice calls for: Slack thread replies (or the approvals channel), email replies. */
  private jobs(notice: TicketNotice): Job[] {
    const { ticket } = notice;
    const jobs: Job[] = [];

    const threads = new Map<string, SlackTarget>();
    for (const r of ticket.reporters) {
      const target = r.kind === 'slack' ? parseSlackThread(r.thread) : undefined;
      if (target) threads.set(`${target.channel}:${target.threadTs}`, target);
    }
    if (notice.kind === 'awaiting_approval' && threads.size === 0 && this.approvalsChannel) {
      threads.set(this.approvalsChannel, { channel: this.approvalsChannel });
    }
    if (threads.size && this.slack) {
      const slack = this.slack;
      const message = slackMessage(notice, this.messages);
      for (const target of threads.values()) {
        jobs.push({
          to: { via: 'slack', channel: target.channel, threadTs: target.threadTs },
          run: (tries) => {
            tries.n++;
            return slack.post(target, message, this.closing.signal);
          },
          why: slackErrorText,
          // Stopped while it waited out a rate limit or Slack's trouble of the moment.
          deferrable: (err) => rateLimited(err) || slackTrouble(err),
          keep: (err) => slackTrouble(err) || ownSlackTrouble(err),
        });
      }
    } else if (threads.size) {
      this.logger.debug('slack notifications are off (notify.slack.enabled, or no bot token): not telling the slack thread', { ticket: ticket.id });
    }

    // Email only once the fix is pushed: the reporter hears nothing before it is live.
    if (notice.kind === 'fixed' && this.email && this.from) {
      const email = this.email;
      // One mail per address, in reply to the first report it sent: a person who wrote twice
      // (or replied "thanks!" to an earlier notice, a report of its own) is told once; the
      // key's reporter position then stays that first report's, so the outbox knows them.
      const sent = new Set<string>();
      ticket.reporters.forEach((r, i) => {
        const mail = fixedReply(notice, r, { ...this.messages, from: this.from! });
        if (!mail || sent.has(mail.to.toLowerCase())) return;
        sent.add(mail.to.toLowerCase());
        // The log names the reporter by position, never by address.
        const to = { via: 'email', reporter: i };
        const reply = { ...mail, messageId: replyMessageId(dedupeKey(notice, to), this.from!) };
        jobs.push({
          to,
          run: (tries) => this.retrying(() => email.send(reply), { ticket: ticket.id, kind: notice.kind, ...to }, tries),
          why: smtpErrorText,
          deferrable: (err) => err instanceof Stopped || transientSmtp(err),
          keep: (err) => transientSmtp(err) || ownSmtpTrouble(err),
        });
      });
    }
    return jobs;
  }
}

/**
 * A notice as the outbox keeps it: what its messages say, and the ticket by id and title
 * only. The whole ticket in every row (its reporters, its report's text of up to 100,000
 * characters) made a fix told to thousands of reporters quadratic: 600 MB of outbox for
 * 2,000 of them. A message sent again (resume()) reads the reporters from the ticket.
 */
function outboxNotice(notice: TicketNotice): unknown {
  return { ...notice, ticket: { id: notice.ticket.id, title: notice.ticket.title } };
}

/**
 * One key per notice and reporter: what it says (kind, commit, pull request, reason, and
 * for an approval request the run its buttons act on) and to whom.
 */
function dedupeKey(notice: TicketNotice, to: Record<string, unknown>): string {
  const parts = [notice.ticket.id, notice.kind, notice.commit ?? '', notice.prUrl ?? '', notice.reason ?? '', JSON.stringify(to)];
  // Only when set: the keys of other notices stay as they were.
  if (notice.run !== undefined) parts.push(`run ${notice.run}`);
  const what = parts.join('\n');
  return createHash('sha256').update(what).digest('hex');
}

/**
 * nodemailer's codes for a server that could not be reached or dropped the connection, and
 * any 4xx reply: worth another try. Anything else (5xx, TLS or login refused) is not.
 */
function transientSmtp(err: unknown): boolean {
  const e = err as { code?: unknown; responseCode?: unknown };
  if (typeof e?.responseCode === 'number') return e.responseCode >= 400 && e.responseCode < 500;
  return typeof e?.code === 'string' && ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNREFUSED', 'ECONNRESET'].includes(e.code);
}

/**
 * The notice a finished run calls for (Dispatcher's onRunFinished): pushed → fixed with
 * the commit now on staging; awaiting_approval → the approval request; failed or
 * needs_human → failed with the reason. Other states (requeued) tell nobody anything.
 */
export function noticeForRun(
  row: Pick<OutcomeRow, 'state' | 'reason' | 'commit' | 'branch' | 'pushed_to'> & { run_id?: number; pr_url?: string | null },
  ticket: Ticket,
): TicketNotice | undefined {
  const commit = row.commit ?? undefined;
  switch (row.state) {
    case 'pushed':
      // An approval: the pull request it opened (and the bot branch), as Approvals words it.
      if (row.pr_url) return { kind: 'fixed', ticket, ...(commit ? { commit } : {}), prUrl: row.pr_url, ...(row.branch ? { branch: row.branch } : {}) };
      return { kind: 'fixed', ticket, ...(commit ? { commit } : {}), ...(row.pushed_to ? { branch: row.pushed_to } : {}) };
    case 'awaiting_approval':
      return { kind: 'awaiting_approval', ticket, ...(commit ? { commit } : {}), ...(row.branch ? { branch: row.branch } : {}), ...(row.run_id ? { run: row.run_id } : {}) };
    case 'failed':
    case 'needs_human':
      return { kind: 'failed', ticket, reason: row.reason };
    default:
      return undefined;
  }
}

/** Slack's error code (e.g. channel_not_found) when it gave one, else the message. */
function slackErrorText(err: unknown): string {
  const e = err as { data?: { error?: unknown }; message?: unknown };
  if (typeof e?.data?.error === 'string') return e.data.error;
  return typeof e?.message === 'string' ? e.message : String(err);
}

/**
 * nodemailer's error code and the SMTP reply code (e.g. "EENVELOPE 550"), not its
 * message: server replies quote the recipient's address, which the log never holds.
 */
/**
 * The SMTP server refused bugbot's own settings, not the message: its login (EAUTH; 530,
 * 534, 535, 538 are the authentication replies of RFC 4954) or the TLS it asked for.
 */
function ownSmtpTrouble(err: unknown): boolean {
  const e = err as { code?: unknown; responseCode?: unknown };
  if (typeof e?.code === 'string' && ['EAUTH', 'ENOAUTH', 'ETLS'].includes(e.code)) return true;
  return typeof e?.responseCode === 'number' && [530, 534, 535, 538].includes(e.responseCode);
}

/** Slack refused the bot token itself (revoked, the app removed), not the message. */
function ownSlackTrouble(err: unknown): boolean {
  const e = err as { data?: { error?: unknown } } | null;
  return typeof e?.data?.error === 'string' && ['invalid_auth', 'not_authed', 'token_revoked', 'token_expired', 'account_inactive'].includes(e.data.error);
}

function smtpErrorText(err: unknown): string {
  const e = err as { code?: unknown; responseCode?: unknown };
  const parts = [typeof e?.code === 'string' ? e.code : 'error', typeof e?.responseCode === 'number' ? String(e.responseCode) : ''];
  return parts.filter(Boolean).join(' ');
}
