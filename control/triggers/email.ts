// The email trigger's input side: Mailgun route signature checks and turning a Mailgun
// parsed-form POST or a raw RFC 5322 message into a TriggerEvent. Pure functions but for
// the MIME parsing, done on the parser thread (email-parse.ts); the HTTP routes, body
// limits and token-reuse checks live with the caller.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { addressParser, decodeWords } from 'postal-mime';
import type { Address, Email } from 'postal-mime';
import { badRequest, HttpError, notAcceptable, unauthorized } from '../http-error.ts';
import type { TriggerEvent } from '../types.ts';
import { parseMime } from './email-parse.ts';
import { htmlToText, mailKind, stripQuotedReply, tidyText, type MailKind } from './email-text.ts';

const MAX_TITLE = 200;
const MAX_SUBJECT = 998;

/**
 * How far in the future a Mailgun timestamp may be: clock skew between Mailgun and this
 * host. Only the past needs a long window (Mailgun's retries resend the first timestamp).
 */
export const MAILGUN_CLOCK_SKEW_SECONDS = 300;

/**
 * Checks a Mailgun route/webhook signature: `signature` must be the hex HMAC-SHA256 of
 * `timestamp + token` under the signing key, and `timestamp` at most `toleranceSeconds`
 * before `nowSeconds` and at most `skewSeconds` (default MAILGUN_CLOCK_SKEW_SECONDS) after
 * it. Throws `HttpError` 401 otherwise. Token reuse is the caller's check; it must keep
 * used tokens for `toleranceSeconds + skewSeconds`, as long as their signature is accepted.
 */
export function verifyMailgunSignature(
  fields: { timestamp?: string; token?: string; signature?: string },
  signingKey: string,
  opts: { nowSeconds: number; toleranceSeconds: number; skewSeconds?: number },
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

  // Mailgun retries a route POST that failed for up to 8 hours, resending the first
  // timestamp, token and signature, so the window into the past is long; the token, used
  // up with the stored message, is what stops a replay inside it.
  // https://documentation.mailgun.com/docs/mailgun/user-manual/receive-forward-store/receive-http
  const age = opts.nowSeconds - Number(timestamp);
  const skew = opts.skewSeconds ?? MAILGUN_CLOCK_SKEW_SECONDS;
  if (age > opts.toleranceSeconds) {
    throw unauthorized(
      `Mailgun signature check failed: "timestamp" is ${age}s old, older than the ${opts.toleranceSeconds}s window (triggers.email.toleranceSeconds)`,
    );
  }
  if (-age > skew) {
    throw unauthorized(`Mailgun signature check failed: "timestamp" is ${-age}s in the future, over the ${skew}s allowed for clock skew`);
  }
}

/**
 * Turns the fields of a Mailgun inbound route POST (parsed, not `message-url`/MIME) into a
 * report event. A reply's text is Mailgun's `stripped-text` when present, else body-plain
 * stripped here; a new mail's or a forward's is body-plain, only its signature removed.
 * `forwarded` are the rendered texts of attached messages (forwardedMessageText), appended.
 * Throws `badRequest` naming the missing or invalid field, `notAcceptable` (406: Mailgun
 * does not send it again) for a bounce or a mail with no text of its own.
 */
export function parseMailgunForm(fields: Record<string, string>, forwarded: string[] = []): TriggerEvent {
  const header = mailgunHeaders(fields);
  // `sender` is the SMTP MAIL FROM. Bounces have an empty one (RFC 5321 §4.5.5); refusing
  // them keeps delivery-failure notices from becoming reports or looping replies.
  if (fields['sender'] === undefined) throw badRequest('Mailgun form field "sender" is missing');
  const sender = mailboxOf(fields['sender']);
  if (!sender) throw notAcceptable('Mailgun form field "sender" is empty or no email address: a delivery status notification (a bounce), not a report');
  const token = fields['token'];
  if (!token) throw badRequest('Mailgun form field "token" is missing');

  const stripped = fields['stripped-text'];
  const plain = fields['body-plain'];
  if (stripped === undefined && plain === undefined && forwarded.length === 0) {
    throw badRequest('Mailgun form has no "body-plain" or "stripped-text" field');
  }
  // Mailgun strips every mail as a reply (quoted lines, header blocks), so its
  // stripped-text serves replies only, as our own stripping does on the raw route; it is
  // empty when Mailgun found nothing but quotes, and body-plain then gets the final say.
  // A forward's stripped-text is only the note above the forwarded mail.
  const subject = fields['subject'] ?? header('subject') ?? '';
  const kind = mailKind(subject, header('in-reply-to') !== undefined || header('references') !== undefined);
  const own = (kind === 'reply' && stripped && tidyText(stripped)) || (plain !== undefined ? stripQuotedReply(plain, { kind }) : stripped ? tidyText(stripped) : '');
  const message = withForwarded(own, forwarded);
  if (!message) throw notAcceptable('Mailgun form field "body-plain" has no text once quotes and signature are removed');

  const from = mailboxOf(fields['from'] ?? header('from'));
  // As the raw route refuses them: a notice whose envelope sender is not empty (a forwarder
  // or a mail system that sets its own) was filed and answered, its From a mailer-daemon.
  const bounce = isBounceHeader(header) ? 'message-headers' : isMailSystem(sender) ? 'sender' : from && isMailSystem(from) ? 'from' : undefined;
  if (bounce) throw notAcceptable(`Mailgun form field "${bounce}" shows a delivery status notification (a bounce), not a report`);
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

/** How long parsing one request's mails may take (triggers.email.parseTimeoutSeconds); see email-parse.ts. */
export interface MimeLimits {
  timeoutSeconds?: number;
}

/**
 * Parses a raw RFC 5322 message (MIME multipart, quoted-printable, base64, charsets) into a
 * report event. Prefers the text/plain body, else the HTML one as text, and appends the
 * text of attached messages (a forward as attachment). `sourceEventId` is the Message-ID
 * with its sender (messageEventId), or the sha256 of the bytes without one. Throws
 * `badRequest` for input that is not a message, has no From or no text; a 413 for one over
 * MAX_MIME_LINES, or whose parsing (on the parser thread) ran past its time or memory.
 */
export async function parseRawEmail(raw: string | Uint8Array, limits: MimeLimits = {}): Promise<TriggerEvent> {
  if (raw.length === 0) throw badRequest('email is empty');
  if (mimeLines(raw) > MAX_MIME_LINES) throw tooManyLines('the email has');
  const [parsed] = await parseMime([raw], { options: PARSE_OPTIONS, attached: MAX_ATTACHED_MESSAGES, timeoutSeconds: limits.timeoutSeconds, what: 'the email' });
  if (!parsed || 'error' in parsed) throw badRequest(`email could not be parsed: ${parsed?.error ?? 'no result'}`);
  const { email } = parsed;
  // postal-mime reads any text as headers; a message has at least one "name: value" field
  // (RFC 5322 §2.2), which a stray line of text does not.
  if (!email.headerLines.some((h) => h.line.includes(':'))) {
    throw badRequest('input is not an email message: it has no header fields');
  }
  const from = addressOf(email.from);
  if (!from) throw badRequest('email has no From address');
  const headers = new Map<string, string>();
  for (const h of email.headers) if (!headers.has(h.key.toLowerCase())) headers.set(h.key.toLowerCase(), h.value);
  if (isBounceHeader((name) => headers.get(name)) || isMailSystem(from)) throw badRequest('email is a delivery status notification (a bounce), not a report');

  const kind = mailKind(email.subject ?? '', headers.has('in-reply-to') || headers.has('references'));
  const forwarded: string[] = [];
  for (const a of parsed.attached) {
    const text = a && forwardedText(a);
    if (text) forwarded.push(text);
  }
  const message = withForwarded(bodyText(email, kind), forwarded);
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
 * Lines of a message postal-mime is given at most. It keeps each line of a part that is
 * not base64 as a Blob part, which costs Node 20 about 10 µs a line, more as they grow:
 * 24 MB of short lines took minutes (then on the event loop every route shares) and ended
 * in an out-of-memory crash. Counted before the parser thread (email-parse.ts) gets the
 * mail, whose time and heap limits bound what is left. A 25 MB mail of base64 attachments
 * (76 characters a line) has about 340,000.
 */
export const MAX_MIME_LINES = 400_000;

/**
 * Inline message/rfc822 parts parsed in place: one level, as a forwarded mail sits in its
 * forward. Each level parses its message again (postal-mime's default of 10 made a 1.2 MB
 * mail take two minutes); a deeper one comes out as an attachment, read as an attached mail.
 */
const PARSE_OPTIONS = { maxRfc822NestingDepth: 1 };

/** Line breaks in a message, counted up to one past MAX_MIME_LINES. */
export function mimeLines(raw: string | Uint8Array): number {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  let n = 0;
  for (let at = bytes.indexOf(10); at !== -1 && n <= MAX_MIME_LINES; at = bytes.indexOf(10, at + 1)) n++;
  return n;
}

/** The 413 for a message (or the messages of one request) over MAX_MIME_LINES. */
export function tooManyLines(what: 'the email has' | 'the attached mails have'): HttpError {
  return new HttpError(413, 'payload_too_large', `${what} more than ${MAX_MIME_LINES} lines, more than bugbot parses (a 25 MB mail of attachments has about 340000)`);
}

/**
 * Attached messages read per mail. Each is parsed in full, so a body of many tiny ones
 * would cost many parses; a forward carries one, a digest a handful.
 */
export const MAX_ATTACHED_MESSAGES = 10;

/**
 * The sender's text of a message: text/plain, else the HTML as text (an empty text/plain
 * part beside a real HTML one happens), stripped as its kind needs.
 */
function bodyText(email: Email, kind: MailKind): string {
  const bodies = [() => email.text, () => (email.html === undefined ? undefined : htmlToText(email.html, { keepQuotes: kind !== 'reply' }))];
  for (const body of bodies) {
    const text = body();
    const message = text === undefined ? '' : stripQuotedReply(text, { kind });
    if (message) return message;
  }
  return '';
}

/**
 * An attached message (a mail forwarded as an attachment, `message/rfc822`) as text for
 * the report: a forward marker, its From, Date and Subject, then its whole text, quotes
 * included (the forwarded mail is the report). Undefined when it cannot be parsed or holds
 * neither text nor subject. Its own attachments are not read.
 */
export async function forwardedMessageText(raw: Uint8Array, limits: MimeLimits = {}): Promise<string | undefined> {
  return (await forwardedMessageTexts([raw], limits))[0];
}

/**
 * forwardedMessageText of each of `raws`, parsed as one request: one time limit for all of
 * them, as MAX_MIME_LINES is one budget (a 413 when they run past it).
 */
export async function forwardedMessageTexts(raws: Uint8Array[], limits: MimeLimits = {}): Promise<Array<string | undefined>> {
  if (!raws.length) return [];
  const parsed = await parseMime(raws, { options: PARSE_OPTIONS, attached: 0, timeoutSeconds: limits.timeoutSeconds, what: 'the attached mails' });
  return parsed.map((p) => ('email' in p ? forwardedText(p.email) : undefined));
}

/** forwardedMessageText of a parsed message. */
function forwardedText(email: Email): string | undefined {
  const text = tidyText(email.text ?? (email.html === undefined ? '' : htmlToText(email.html, { keepQuotes: true })));
  const subject = email.subject?.replace(/\s+/g, ' ').trim();
  if (!text && !subject) return undefined;
  // As the mail showed them: From with its RFC 2047 encoded words decoded, Date as written.
  const header = (name: string) => email.headers.find((h) => h.key.toLowerCase() === name)?.value.replace(/\s+/g, ' ').trim();
  const from = header('from');
  const fields = [['From', from && decodeWords(from)], ['Date', header('date')], ['Subject', subject]].filter((f) => f[1]).map(([name, value]) => `${name}: ${value}`);
  return tidyText(['---------- Forwarded message ----------', ...fields, '', text].join('\n'));
}

/** The sender's own text with the forwarded messages after it. */
function withForwarded(own: string, forwarded: string[]): string {
  return [own, ...forwarded].filter(Boolean).join('\n\n');
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

/**
 * A message's id across deliveries: its Message-ID with its sender (a Message-ID is the
 * sender's to choose, so another sender's mail reusing it is another message).
 */
function messageEventId(from: string, messageId: string | undefined): string | undefined {
  const id = messageId?.trim();
  return id ? `msg:${createHash('sha256').update(`${from}\n${id}`).digest('hex')}` : undefined;
}

/**
 * Characters of an address field read for its first mailbox: an address is at most 254
 * (addressOf) and a display name a few encoded words, whatever length a sender gives the field.
 */
const MAX_ADDRESS_FIELD = 4_000;

/** The first mailbox address in a header value such as `James <james@example.org>`. */
function mailboxOf(value: string | undefined): string | undefined {
  // The first entry with an address: `Doe, John <john@…>` (a comma left unquoted) parses
  // as a name "Doe" without one, then the mailbox.
  if (!value) return undefined;
  // Only the value's start is parsed: addressParser takes time growing with the square of
  // a value full of group openings (1 MB of "a:" or "From: a" lines: seconds, on the thread
  // every webhook waits on), and the first mailbox sits well inside it.
  for (const a of addressParser(value.slice(0, MAX_ADDRESS_FIELD))) {
    const addr = addressOf(a);
    if (addr) return addr;
  }
  return undefined;
}

/**
 * A mailbox's address, or a group's first member's; lower-cased to key the reporter. At
 * most 254 characters (RFC 5321 §4.5.3.1.3's path less its brackets): the reporter's id and
 * the `to` label are stored with every report.
 */
function addressOf(address: Address | undefined): string | undefined {
  const mailbox = address?.group ? address.group[0] : address;
  const addr = mailbox?.address?.trim().toLowerCase();
  return addr && addr.length <= 254 && /^[^\s@]+@[^\s@]+$/.test(addr) ? addr : undefined;
}

/**
 * Where a reply may go: the first candidate that is a plain address (RFC 5322 dot-atom
 * parts). A quoted local part ("x,victim"@corp.test) comes out of the parsers without its
 * quotes, and a mailer reading that back may split it into other recipients: such a
 * sender gets no reply rather than a reply somewhere else. A no-reply address (a
 * monitoring system's, a notification's) before one ends the search: its sender asked for
 * none, and the reply would only bounce.
 */
function replyAddress(candidates: Array<string | undefined>): string | undefined {
  for (const a of candidates) {
    if (a === undefined) continue;
    if (NO_REPLY.test(a)) return undefined;
    if (PLAIN_ADDRESS.test(a)) return a;
  }
  return undefined;
}
const NO_REPLY = /^(?:no-?reply|do-?not-?reply)(?:[+._-][^@]*)?@/i;
const PLAIN_ADDRESS = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/;

/**
 * The Message-ID a reply's In-Reply-To names: one `<id@host>`, bounded as threadOf's ids. A
 * comment or a second id after it, a line break an encoded word smuggled in, made the
 * reply's In-Reply-To a header no client threads on.
 */
function msgIdOf(messageId: string | undefined): string | undefined {
  const id = messageId?.match(/<[^<>\s]{1,250}>/)?.[0];
  if (id) return id;
  // Without brackets (some mailers write them so): the id alone, bracketed.
  const bare = messageId?.trim();
  return bare && /^[^<>\s]{1,250}$/.test(bare) ? `<${bare}>` : undefined;
}

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
 * A delivery status notification (a bounce) by its headers: an empty envelope sender
 * (Return-Path: <>) or a multipart/report body; or (isMailSystem) sent by a mail system.
 * Not a report, and never to be answered: the bounce of one of bugbot's own replies would loop.
 */
function isBounceHeader(header: (name: string) => string | undefined): boolean {
  if (/^\s*<\s*>\s*$/.test(header('return-path') ?? '')) return true;
  return /^\s*multipart\/report\b/i.test(header('content-type') ?? '');
}

/** A mail system's own address (RFC 5321 §4.5.1 postmaster, and the bounces' MAILER-DAEMON). */
function isMailSystem(address: string): boolean {
  return /^(?:mailer-daemon|postmaster)@/i.test(address);
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

/**
 * How much of a mail's text becomes the report: a pasted log can run to megabytes (the
 * route takes 25 MB for attachments), and all of it would be stored and handed to the agent.
 */
export const MAX_REPORT_CHARS = 100_000;

/** The report's text, cut at MAX_REPORT_CHARS (at a line end where one is near) and said so. */
function reportText(text: string): string {
  if (text.length <= MAX_REPORT_CHARS) return text;
  const nl = text.lastIndexOf('\n', MAX_REPORT_CHARS);
  const end = nl > MAX_REPORT_CHARS * 0.9 ? nl : MAX_REPORT_CHARS;
  return `${text.slice(0, end)}\n[… the mail's text goes on for ${text.length - end} more characters, left out]`;
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
  const thread = msgIdOf(p.messageId);
  const to = mailboxOf(p.to);
  // Never the address the mail came in at: a reply there is filed as a report of its own.
  const address = p.replyAddress === to ? undefined : p.replyAddress;
  return {
    source: 'email',
    kind: 'report',
    title: titleOf(subject),
    message: reportText(p.message),
    labels: to ? { to } : {},
    count: 1,
    firstSeen: seen,
    lastSeen: seen,
    reporter: {
      kind: 'email',
      id: p.senderId,
      ...(address ? { address } : {}),
      ...(thread ? { thread } : {}),
      // Kept for the reply's subject only; one past a header line's 998 characters (RFC 5322
      // §2.1.1) is no subject a client threads on, and would be stored with every report.
      ...(subject && subject.length <= MAX_SUBJECT ? { subject } : {}),
      ...(p.automatic ? { automatic: true as const } : {}),
      ...(threadOf(p.references) ? { references: threadOf(p.references) } : {}),
    },
    human: true,
    sourceEventId: p.sourceEventId,
  };
}
