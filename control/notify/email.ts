/**
 * Email side of notifications: one reply to the person who reported the bug, once
 * its fix is pushed ("fixed and live"), threaded under their message (RFC 5322
 * §3.6.4: In-Reply-To and References carry the original Message-ID) and sent through
 * the configured SMTP server with nodemailer.
 */
import { createTransport } from 'nodemailer';
import { addressParser } from 'postal-mime';
import type { Reporter, TicketNotice } from '../types.ts';
import { isWebUrl } from '../triggers/slack-approvals.ts';
import { commitRef, type MessageOptions } from './format.ts';

export interface SmtpOptions {
  host: string;
  port: number;
  /** TLS from the first byte (465); otherwise plain, upgraded by STARTTLS. */
  secure: boolean;
  /** Refuse to send unless STARTTLS succeeds (ignored when secure). */
  requireTLS: boolean;
  auth?: { user: string; pass: string };
}

/** The fields of one outgoing reply (nodemailer's message options). */
export interface MailReply {
  from: string;
  to: string;
  subject: string;
  text: string;
  inReplyTo?: string;
  references?: string;
  /** Set by the sender: the same for every time one outbox message is sent (replyMessageId). */
  messageId?: string;
  headers: Record<string, string>;
}

/** "Re: <subject>", without stacking a second "Re:" on a subject that has one. */
export function replySubject(subject: string | undefined, fallback: string): string {
  const s = (subject ?? '').replace(/\s+/g, ' ').trim();
  if (!s) return fallback;
  return /^re:/i.test(s) ? s : `Re: ${s}`;
}

/**
 * The "fixed and live" reply to an email reporter; undefined for any other notice (a
 * reporter hears by email only once the fix is pushed), without an address to answer,
 * or for mail a program sent.
 */
export function fixedReply(notice: TicketNotice, reporter: Reporter, opts: MessageOptions & { from: string }): MailReply | undefined {
  if (notice.kind !== 'fixed' || reporter.kind !== 'email' || reporter.automatic) return undefined;
  // Only the address intake found safe to answer (the trigger leaves it out otherwise).
  const to = reporter.address;
  if (!to?.includes('@') || isOwnAddress(to, opts.from)) return undefined;
  const t = notice.ticket;
  const ref = commitRef(notice.commit, opts.commitUrl);
  const commit = ref ? `commit ${ref.short}${ref.url ? ` (${ref.url})` : ''}` : undefined;
  const pr = notice.prUrl && isWebUrl(notice.prUrl) ? notice.prUrl : undefined;
  const text = [
    'Hello,',
    '',
    pr
      ? `The problem you reported is fixed: the fix has been pushed and is in a pull request, ${pr}${commit ? ` (${commit})` : ''}.`
      : `The problem you reported is fixed and live: the fix is on ${opts.stagingBranch}${commit ? `, ${commit}` : ''}.`,
    '',
    // The ticket's number only: its title is the first report's subject, and a report
    // merged into it may come from someone else (a customer must not read another's words).
    `Your report is tracked as ticket #${t.id}.`,
    '',
    'Thank you for the report.',
    '',
    '-- ',
    'bugbot',
    '',
  ].join('\n');
  return {
    from: opts.from,
    to,
    subject: replySubject(reporter.subject, `Fixed: ticket #${t.id}`),
    text,
    // References: the thread before their message, then their message (RFC 5322 §3.6.4).
    ...(reporter.thread ? { inReplyTo: reporter.thread, references: [reporter.references, reporter.thread].filter(Boolean).join(' ') } : {}),
    // RFC 3834: an automatic reply, so vacation responders do not answer it.
    headers: { 'Auto-Submitted': 'auto-replied' },
  };
}

/**
 * Whether `to` is the replies' own From address (notify.email.from, "bugbot <bot@…>" or
 * bare): a report "from" bugbot (spoofed, or its own reply come back) is not answered,
 * as the mailbox that gets the reply may be one that feeds the email trigger.
 */
function isOwnAddress(to: string, from: string): boolean {
  return addressParser(from).some((a) => a.address?.trim().toLowerCase() === to.trim().toLowerCase());
}

/**
 * The Message-ID of one outbox message (RFC 5322 §3.6.4), from its outbox key and the From
 * address's domain: the same every time that message is sent. One sent again (a crash after
 * the server took it and before the outbox marked it sent, a timeout after the server had
 * it) is then the same message, which mail systems such as Gmail show once, not a second
 * mail with an id of its own.
 */
export function replyMessageId(key: string, from: string): string {
  const domain = addressParser(from).find((a) => a.address?.includes('@'))?.address?.split('@').pop() || 'localhost';
  return `<bugbot.${key.slice(0, 32)}@${domain}>`;
}

/** Sends through one SMTP server; connections are opened per message and closed after. */
export class EmailNotifier {
  private readonly transport;

  constructor(opts: SmtpOptions) {
    this.transport = createTransport({
      host: opts.host,
      port: opts.port,
      secure: opts.secure,
      requireTLS: !opts.secure && opts.requireTLS,
      ...(opts.auth ? { auth: opts.auth } : {}),
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
      // nodemailer's own logger would print message headers (addresses); ours logs outcomes only.
      logger: false,
    });
  }

  /** Resolves once the server accepted the message; rejects when it refused or could not be reached. */
  async send(mail: MailReply): Promise<{ messageId: string }> {
    const info = await this.transport.sendMail(mail);
    return { messageId: info.messageId };
  }

  close(): void {
    this.transport.close();
  }
}
