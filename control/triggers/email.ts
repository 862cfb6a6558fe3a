// The email trigger's input side: Mailgun route signature checks and turning a Mailgun
// parsed-form POST or a raw RFC 5322 message into a TriggerEvent. Pure functions; the
// HTTP routes, body limits and token-reuse checks live with the caller.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import PostalMime, { addressParser } from 'postal-mime';
import type { Address, Email } from 'postal-mime';
import { badRequest, unauthorized } from '../http-error.ts';
import type { TriggerEvent } from '../types.ts';
import { htmlToText, isForwardSubject, stripQuotedReply, tidyText } from './email-text.ts';

const MAX_TITLE = 200;

/**
 * Checks a Mailgun route/webhook signature: `signature` must be the hex HMAC-SHA256 of
 * `timestamp + token` under the signing key, and `timestamp` within `toleranceSeconds` of
 * `nowSeconds`. Throws `HttpError` 401 otherwise. Token reuse is the caller's check.
 */
export function verifyMailgunSignature(
  fields: { timestamp?: string; token?: string; signature?: string },
  signingKey: string,
  opts: { nowSeconds: number; toleranceSeconds: number },
): void {
  // An empty key would let anyone compute a valid signature: a configuration bug, not a 401.
  if (!signingKey) throw new Error('Mailgun signing key is empty');
  const { timestamp, token, signature } = fields;
  if (!timestamp) throw unauthorized('Mailgun signature check failed: missing field "timestamp"');
  if (!token) throw unauthorized('Mailgun signature check failed: missing field "token"');
  if (!signature) throw unauthorized('Mailgun signature check failed: missing field "signature"');
  if (!/^\d{1,12}$/.test(timestamp)) {
    throw unauthorized('Mailgun signature check failed: "timestamp" is not a Unix time in seconds');
  }

  // https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
  const expected = createHmac('sha256', signingKey).update(timestamp + token).digest();
  const given = /^[0-9a-f]{64}$/i.test(signature) ? Buffer.from(signature, 'hex') : Buffer.alloc(0);
  // timingSafeEqual throws on a length mismatch, and the length leaks nothing secret.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw unauthorized('Mailgun signature check failed: "signature" does not match (wrong signing key?)');
  }

  // The signed timestamp bounds how long a captured request can be replayed.
  const age = opts.nowSeconds - Number(timestamp);
  if (Math.abs(age) > opts.toleranceSeconds) {
    const when = age > 0 ? `${age}s old` : `${-age}s in the future`;
    throw unauthorized(`Mailgun signature check failed: "timestamp" is ${when}, over the ${opts.toleranceSeconds}s tolerance`);
  }
}

/**
 * Turns the fields of a Mailgun inbound route POST (parsed, not `message-url`/MIME) into a
 * report event. Uses Mailgun's `stripped-text` when present, else strips `body-plain`.
 * Throws `badRequest` naming the missing or invalid field.
 */
export function parseMailgunForm(fields: Record<string, string>): TriggerEvent {
  const header = mailgunHeaders(fields);
  // `sender` is the SMTP MAIL FROM. Bounces have an empty one (RFC 5321 §4.5.5); refusing
  // them keeps delivery-failure notices from becoming reports or looping replies.
  const sender = mailboxOf(fields['sender']);
  if (!sender) throw badRequest('Mailgun form field "sender" is missing or not an email address');
  const token = fields['token'];
  if (!token) throw badRequest('Mailgun form field "token" is missing');

  const stripped = fields['stripped-text'];
  const plain = fields['body-plain'];
  if (stripped === undefined && plain === undefined) {
    throw badRequest('Mailgun form has no "body-plain" or "stripped-text" field');
  }
  // Mailgun leaves stripped-text empty when it found nothing but quotes; our own pass
  // over body-plain then gets the final say. A forward's stripped-text is only the note
  // above the forwarded mail, which is the report: body-plain, its header block kept.
  const subject = fields['subject'] ?? header('subject') ?? '';
  const forward = isForwardSubject(subject);
  const message = (!forward && stripped && tidyText(stripped)) || (plain !== undefined ? stripQuotedReply(plain, { forward }) : stripped ? tidyText(stripped) : '');
  if (!message) throw badRequest('Mailgun form field "body-plain" has no text once quotes and signature are removed');

  const from = mailboxOf(fields['from'] ?? header('from'));
  return buildEvent({
    senderId: sender,
    replyAddress: replyAddress([mailboxOf(header('reply-to')), from, sender]),
    automatic: isAutomatic(header),
    references: header('references'),
    subject,
    message,
    messageId: header('message-id'),
    date: header('date'),
    to: fields['recipient'],
    // The message, not the delivery: the same mail delivered twice (two route addresses, a
    // resend) is one occurrence. The token stays the request's nonce.
    sourceEventId: messageEventId(sender, header('message-id')) ?? token,
  });
}

/**
 * Parses a raw RFC 5322 message (MIME multipart, quoted-printable, base64, charsets) into a
 * report event. Prefers the text/plain body, else the HTML one as text. `sourceEventId` is
 * the Message-ID with its sender (messageEventId), or the sha256 of the bytes without one. Throws `badRequest` for input
 * that is not a message, has no From or no text.
 */
export async function parseRawEmail(raw: string | Uint8Array): Promise<TriggerEvent> {
  if (raw.length === 0) throw badRequest('email is empty');
  let email: Email;
  try {
    email = await PostalMime.parse(raw);
  } catch (err) {
    throw badRequest(`email could not be parsed: ${err instanceof Error ? err.message : String(err)}`);
  }
  // postal-mime reads any text as headers; a message has at least one "name: value" field
  // (RFC 5322 §2.2), which a stray line of text does not.
  if (!email.headerLines.some((h) => h.line.includes(':'))) {
    throw badRequest('input is not an email message: it has no header fields');
  }
  const from = addressOf(email.from);
  if (!from) throw badRequest('email has no From address');
  const headers = new Map<string, string>();
  for (const h of email.headers) if (!headers.has(h.key.toLowerCase())) headers.set(h.key.toLowerCase(), h.value);
  if (isBounce((name) => headers.get(name), from)) throw badRequest('email is a delivery status notification (a bounce), not a report');

  // An empty text/plain part beside a real HTML one happens, so try each in turn.
  const bodies = [() => email.text, () => (email.html === undefined ? undefined : htmlToText(email.html))];
  let message = '';
  const forward = isForwardSubject(email.subject ?? '');
  for (const body of bodies) {
    const text = body();
    if (text !== undefined) message = stripQuotedReply(text, { forward });
    if (message) break;
  }
  if (!message) {
    const problem = email.text === undefined && email.html === undefined ? 'no text/plain or text/html body' : 'no text once quotes and signature are removed';
    throw badRequest(`email has ${problem}`);
  }

  const messageId = email.messageId?.trim() || undefined;
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  return buildEvent({
    senderId: from,
    replyAddress: replyAddress([addressOf(email.replyTo?.[0]), from]),
    automatic: isAutomatic((name) => headers.get(name)),
    references: email.references,
    subject: email.subject ?? '',
    message,
    messageId,
    date: email.date,
    to: email.deliveredTo ?? addressOf(email.to?.[0]),
    sourceEventId: messageEventId(from, messageId) ?? createHash('sha256').update(bytes).digest('hex'),
  });
}

/**
 * Mailgun posts each header both as its own field ("From", "Message-Id") and, all of them
 * in order, as the JSON string `message-headers`: [[name, value], ...]. The JSON wins;
 * names are case-insensitive (RFC 5322 §1.2.2).
 */
function mailgunHeaders(fields: Record<string, string>): (name: string) => string | undefined {
  const headers = new Map<string, string>();
  const json = fields['message-headers'];
  if (json !== undefined) {
    let pairs: unknown;
    try {
      pairs = JSON.parse(json);
    } catch {
      pairs = undefined;
    }
    if (!Array.isArray(pairs)) throw badRequest('Mailgun form field "message-headers" is not a JSON array of [name, value] pairs');
    for (const pair of pairs) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw badRequest('Mailgun form field "message-headers" is not a JSON array of [name, value] pairs');
      }
      if (!headers.has(pair[0].toLowerCase())) headers.set(pair[0].toLowerCase(), pair[1]);
    }
  }
  for (const [name, value] of Object.entries(fields)) {
    if (!headers.has(name.toLowerCase())) headers.set(name.toLowerCase(), value);
  }
  return (name) => headers.get(name);
}

/** The first mailbox address in a header value such as `James <james@example.org>`. */
/**
 * A message's id across deliveries: its Message-ID with its sender (a Message-ID is the
 * sender's to choose, so another sender's mail reusing it is another message).
 */
function messageEventId(from: string, messageId: string | undefined): string | undefined {
  const id = messageId?.trim();
  return id ? `msg:${createHash('sha256').update(`${from}\n${id}`).digest('hex')}` : undefined;
}

function mailboxOf(value: string | undefined): string | undefined {
  // The first entry with an address: `Doe, John <john@…>` (a comma left unquoted) parses
  // as a name "Doe" without one, then the mailbox.
  if (!value) return undefined;
  for (const a of addressParser(value)) {
    const addr = addressOf(a);
    if (addr) return addr;
  }
  return undefined;
}

/** A mailbox's address, or a group's first member's; lower-cased to key the reporter. */
function addressOf(address: Address | undefined): string | undefined {
  const mailbox = address?.group ? address.group[0] : address;
  const addr = mailbox?.address?.trim().toLowerCase();
  return addr && /^[^\s@]+@[^\s@]+$/.test(addr) ? addr : undefined;
}

/**
 * Where a reply may go: the first candidate that is a plain address (RFC 5322 dot-atom
 * parts). A quoted local part ("x,victim"@corp.test) comes out of the parsers without its
 * quotes, and a mailer reading that back may split it into other recipients: such a
 * sender gets no reply rather than a reply somewhere else.
 */
function replyAddress(candidates: Array<string | undefined>): string | undefined {
  return candidates.find((a) => a !== undefined && PLAIN_ADDRESS.test(a));
}
const PLAIN_ADDRESS = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/;

/**
 * The message ids of a References header (`<id@host>` each), the last 20 of them: enough to
 * thread a reply, bounded however long the thread (or the header a sender made up).
 */
function threadOf(references: string | undefined): string | undefined {
  const ids = references?.match(/<[^<>\s]{1,250}>/g);
  return ids?.length ? ids.slice(-20).join(' ') : undefined;
}

/**
 * Mail a program sent (RFC 3834 §2: Auto-Submitted other than "no"; Precedence bulk, list
 * or junk; a mailing list's List-Id): filed like any report, never answered, so a reply
 * cannot start a loop with an autoresponder or go to a whole list.
 */
function isAutomatic(header: (name: string) => string | undefined): boolean {
  const submitted = header('auto-submitted')?.trim().toLowerCase();
  if (submitted && !/^no\b/.test(submitted)) return true;
  if (/^\s*(bulk|list|junk|auto_reply)\b/i.test(header('precedence') ?? '')) return true;
  // Vacation responders that set neither (Exchange's, older ones).
  if (header('x-autoreply') !== undefined || header('x-autorespond') !== undefined || header('x-auto-response-suppress') !== undefined) return true;
  return header('list-id') !== undefined;
}

/**
 * A delivery status notification (a bounce): an empty envelope sender (Return-Path: <>),
 * a multipart/report body, or a mail system's own address. Not a report, and never to be
 * answered: the bounce of one of bugbot's own replies would loop.
 */
function isBounce(header: (name: string) => string | undefined, from: string): boolean {
  if (/^\s*<\s*>\s*$/.test(header('return-path') ?? '')) return true;
  if (/^\s*multipart\/report\b/i.test(header('content-type') ?? '')) return true;
  return /^(?:mailer-daemon|postmaster)@/i.test(from);
}

/** One line, reply/forward prefixes dropped ("Re: Fwd: AW:" …), at most MAX_TITLE characters. */
function titleOf(subject: string): string {
  const line = subject
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^((re|fwd?|aw|wg)(\[\d+\])?: ?)+/i, '');
  if (!line) return '(no subject)';
  const chars = [...line]; // code points, so an emoji is never cut in half
  return chars.length > MAX_TITLE ? `${chars.slice(0, MAX_TITLE - 1).join('')}…` : line;
}

/** The message's Date, unless missing, unparseable or in the future (sender-controlled). */
function seenAt(date: string | undefined): string {
  const now = Date.now();
  const t = date ? Date.parse(date) : NaN;
  return new Date(Number.isNaN(t) || t > now ? now : t).toISOString();
}

function buildEvent(p: {
  senderId: string;
  replyAddress: string | undefined;
  automatic: boolean;
  references: string | undefined;
  subject: string;
  message: string;
  messageId: string | undefined;
  date: string | undefined;
  to: string | undefined;
  sourceEventId: string;
}): TriggerEvent {
  const seen = seenAt(p.date);
  const subject = p.subject.replace(/\s+/g, ' ').trim();
  return {
    source: 'email',
    kind: 'report',
    title: titleOf(subject),
    message: p.message,
    labels: p.to ? { to: p.to } : {},
    count: 1,
    firstSeen: seen,
    lastSeen: seen,
    reporter: {
      kind: 'email',
      id: p.senderId,
      ...(p.replyAddress ? { address: p.replyAddress } : {}),
      ...(p.messageId ? { thread: p.messageId } : {}),
      ...(subject ? { subject } : {}),
      ...(p.automatic ? { automatic: true as const } : {}),
      ...(threadOf(p.references) ? { references: threadOf(p.references) } : {}),
    },
    human: true,
    sourceEventId: p.sourceEventId,
  };
}
