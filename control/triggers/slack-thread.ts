/**
 * A Slack `app_mention` as a report: the mention itself (stored before Slack is
 * acknowledged), the whole thread from `conversations.replies` as its transcript
 * (read after the ack), and the answer the bot posts back in the thread.
 *
 * Everything that comes from Slack is untrusted text: it is stored, redacted by
 * intake and shown to people, never interpolated into anything that runs.
 */
import { ErrorCode, type WebClient } from '@slack/web-api';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AcceptResult } from '../intake/index.ts';
import type { Ticket, TriggerEvent } from '../types.ts';

/** Cap on a report's text: a long thread keeps its opening message and its latest ones. */
export const MAX_REPORT_CHARS = 20_000;
/** One message never takes more than this share of the transcript. */
const MAX_MESSAGE_CHARS = MAX_REPORT_CHARS / 4;
/** conversations.replies pages read at most (200 messages each). */
const MAX_PAGES = 10;
/** A message's attachments read at most, and fields of each. */
const MAX_ATTACHMENTS = 20;
const TITLE_CHARS = 120;

/** The bot's own ids (from auth.test); unknown until Slack has answered. */
export interface BotIdentity {
  userId?: string;
  botId?: string;
}

/** The fields of an `app_mention` event_callback that this trigger uses. */
export interface Mention {
  /** The envelope's event_id: Slack's idempotency key, the same on every retry. */
  eventId: string;
  /** Absent on messages posted by apps. */
  user?: string;
  botId?: string;
  text: string;
  channel: string;
  ts: string;
  /** The thread to read and answer in: the mention's thread, or a new one under a top-level mention. */
  threadTs: string;
  team?: string;
}

export interface ThreadMessage {
  ts: string;
  user?: string;
  botId?: string;
  subtype?: string;
  text: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * The app_mention in an Events API envelope
 * (https://docs.slack.dev/reference/events/app_mention); undefined for any other
 * event, or for one missing the channel/ts a reply needs.
 */
export function parseMention(body: Record<string, unknown>): Mention | undefined {
  const e = body.event;
  const eventId = str(body.event_id);
  if (body.type !== 'event_callback' || !eventId || !isRecord(e) || e.type !== 'app_mention') return undefined;
  const channel = str(e.channel);
  const ts = str(e.ts);
  if (!channel || !ts) return undefined;
  return {
    eventId,
    user: str(e.user),
    botId: str(e.bot_id),
    text: typeof e.text === 'string' ? e.text : '',
    channel,
    ts,
    threadTs: str(e.thread_ts) ?? ts,
    team: str(e.team) ?? str(body.team_id),
  };
}

/** Posted by an app (ours or another's), or by the bot user itself: never a report. */
export function isFromBot(m: { user?: string; botId?: string; subtype?: string }, bot: BotIdentity): boolean {
  return m.botId !== undefined || m.subtype === 'bot_message' || m.user === undefined || (bot.userId !== undefined && m.user === bot.userId);
}

/** Posted by this bot (its user or its app): its own answers are no part of a report. */
function isOwnMessage(m: { user?: string; botId?: string; subtype?: string }, bot: BotIdentity): boolean {
  // Until Slack has said who the bot is, every app's message might be its own.
  if (bot.botId === undefined && bot.userId === undefined) return isFromBot(m, bot);
  return (bot.botId !== undefined && m.botId === bot.botId) || (bot.userId !== undefined && m.user === bot.userId);
}

/**
 * Remove the bot's own `<@U…>` mentions (Slack's user-mention syntax, optionally
 * `<@U…|name>`). Until the bot's id is known, only a leading mention goes: an
 * app_mention starts with the bot's handle far more often than with anyone else's.
 *
 * A label runs to the next `<` or `>` at most (Slack sends a literal `<` as `&lt;`), so
 * each `<@U…|` is tried over its own stretch of text only: `[^>]*` tried from every
 * `<@U…|` of a message full of them ran to the end each time (quadratic, seconds per
 * thread of such messages, on the event loop).
 */
export function stripBotMention(text: string, botUserId: string | undefined): string {
  const out = botUserId
    ? text.replace(/<@([A-Z0-9]+)(?:\|[^<>]*)?>/g, (whole, id: string) => (id === botUserId ? '' : whole))
    : text.replace(/^\s*<@[A-Z0-9]+(?:\|[^<>]*)?>/, '');
  return out.replace(/[ \t]{2,}/g, ' ').trim();
}

const SLACK_ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&amp;': '&' };

/**
 * Slack sends `&`, `<` and `>` that people typed as `&amp;`, `&lt;` and `&gt;`
 * (https://docs.slack.dev/messaging/formatting-message-text#escaping): decoded, once,
 * after the markup was read, so the report holds what was written ("Unexpected token <
 * in JSON", `() => x`), as an emailed report does.
 */
export function unescapeSlack(text: string): string {
  return text.replace(/&(?:lt|gt|amp);/g, (e) => SLACK_ENTITIES[e]!);
}

/** The report as first stored, from the mention alone (the thread is read after the ack). */
export function mentionEvent(m: Mention, bot: BotIdentity, now: Date): TriggerEvent {
  const text = unescapeSlack(stripBotMention(m.text, bot.userId)) || '(the bot was mentioned without any text)';
  const at = now.toISOString();
  const firstLine = text.split('\n', 1)[0]!.trim();
  return {
    source: 'slack',
    kind: 'report',
    title: clip(firstLine, TITLE_CHARS),
    message: clip(text, MAX_REPORT_CHARS),
    labels: { slack_channel: m.channel, slack_thread_ts: m.threadTs, ...(m.team ? { slack_team: m.team } : {}) },
    count: 1,
    firstSeen: at,
    lastSeen: at,
    // isFromBot() has already turned away mentions without a user.
    reporter: { kind: 'slack', id: m.user ?? 'unknown', thread: `${m.channel}:${m.threadTs}` },
    human: true,
    sourceEventId: m.eventId,
  };
}

/**
 * What a held mention's ticket keeps until the bot has answered (AcceptOptions.holdNote):
 * where to read its thread and answer. Not its text: the stored event has it, redacted.
 */
export function heldNote(m: Mention): Record<string, unknown> {
  return { eventId: m.eventId, user: m.user, channel: m.channel, ts: m.ts, threadTs: m.threadTs, team: m.team };
}

/** A held mention back from its note (heldNote) and its stored text; undefined for a note that is not one. */
export function mentionOfNote(note: Record<string, unknown>, text: string): Mention | undefined {
  const eventId = str(note.eventId);
  const channel = str(note.channel);
  const ts = str(note.ts);
  const threadTs = str(note.threadTs);
  if (!eventId || !channel || !ts || !threadTs) return undefined;
  return { eventId, user: str(note.user), text, channel, ts, threadTs, team: str(note.team) };
}

/**
 * Every message of a thread, oldest first, following `response_metadata.next_cursor`
 * (https://docs.slack.dev/reference/methods/conversations.replies). The loop never
 * trusts the server to end it: a repeated cursor or MAX_PAGES stops it.
 */
export async function fetchThread(client: WebClient, channel: string, threadTs: string): Promise<ThreadMessage[]> {
  const byTs = new Map<string, ThreadMessage>();
  const cursors = new Set<string>();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await client.conversations.replies({ channel, ts: threadTs, limit: 200, ...(cursor ? { cursor } : {}) });
    for (const m of r.messages ?? []) {
      if (!m.ts) continue;
      const subtype = (m as { subtype?: unknown }).subtype;
      byTs.set(m.ts, {
        ts: m.ts,
        user: m.user,
        botId: m.bot_id,
        subtype: typeof subtype === 'string' ? subtype : undefined,
        text: messageText(m),
      });
    }
    cursor = r.response_metadata?.next_cursor || undefined;
    if (!r.has_more || !cursor || cursors.has(cursor)) break;
    cursors.add(cursor);
  }
  return [...byTs.values()].sort((a, b) => Number(a.ts) - Number(b.ts));
}

/**
 * A message's words: its text, then those of its attachments
 * (https://docs.slack.dev/legacy/legacy-messaging/legacy-secondary-message-attachments).
 * Alerting apps (Alertmanager's and Grafana's Slack notifiers) post the alert as an
 * attachment's title and text, with no text of the message's own: without them, the alert
 * a thread is about read as an empty line. Link previews Slack added (`from_url`,
 * `is_app_unfurl`) are left out: the link is in the text already.
 */
function messageText(m: { text?: string; attachments?: unknown }): string {
  const parts = [m.text ?? ''];
  const attachments = Array.isArray(m.attachments) ? m.attachments.slice(0, MAX_ATTACHMENTS) : [];
  for (const a of attachments) {
    if (!isRecord(a) || a.from_url !== undefined || a.is_app_unfurl === true) continue;
    const fields = Array.isArray(a.fields) ? a.fields.slice(0, MAX_ATTACHMENTS).filter(isRecord) : [];
    const own = [
      str(a.pretext),
      str(a.title),
      str(a.text),
      ...fields.map((f) => (str(f.value) ? [str(f.title), str(f.value)].filter(Boolean).join(': ') : undefined)),
    ].filter((p): p is string => p !== undefined);
    // fallback: the plain-text summary Slack asks every attachment for, when it says nothing else.
    parts.push(...(own.length ? own : [str(a.fallback) ?? '']));
  }
  return parts.filter(Boolean).join('\n');
}

/**
 * The thread as the report: `<@U…>: text` lines, oldest first, the bot's own
 * messages left out and its mentions stripped. Other apps' messages stay (an alerting
 * app's post is often what the thread is about), under `<app:B…>`. The mention itself
 * is always in it (last, when Slack's answer does not include it). Capped at
 * MAX_REPORT_CHARS.
 */
export function formatThread(messages: ThreadMessage[], mention: Mention, bot: BotIdentity): { text: string; messages: number } {
  const people = messages.filter((m) => !isOwnMessage(m, bot));
  // Missing only when the thread outgrew the pages read: the mention is then the newest.
  if (!people.some((m) => m.ts === mention.ts)) people.push({ ts: mention.ts, user: mention.user, text: mention.text });
  const lines = people.map((m) => {
    // Without the bot's id only the mention's leading handle is known to be the bot.
    const text = unescapeSlack(bot.userId || m.ts === mention.ts ? stripBotMention(m.text, bot.userId) : m.text.trim());
    const who = m.user && !m.botId ? `<@${m.user}>` : m.botId ? `<app:${m.botId}>` : `<@${m.user ?? 'unknown'}>`;
    return clip(`${who}: ${text.replace(/\n/g, '\n  ')}`, MAX_MESSAGE_CHARS);
  });
  return { text: capLines(lines), messages: lines.length };
}

/** Keep the opening message (usually the problem) and as many of the latest (where the bot was asked) as fit. */
function capLines(lines: string[]): string {
  const all = lines.join('\n');
  if (all.length <= MAX_REPORT_CHARS) return all;
  const head = lines[0]!;
  const tail: string[] = [];
  let used = head.length + 64;
  for (let i = lines.length - 1; i >= 1; i--) {
    const line = lines[i]!;
    if (used + line.length + 1 > MAX_REPORT_CHARS) break;
    tail.unshift(line);
    used += line.length + 1;
  }
  return [head, `[… ${lines.length - 1 - tail.length} messages omitted …]`, ...tail].join('\n');
}

function clip(s: string, max: number): string {
  // Never between the two halves of a surrogate pair (an emoji at the limit).
  return s.length > max ? `${s.slice(0, max - 1).replace(/[\ud800-\udbff]$/, '')}…` : s;
}

/**
 * Slack's mrkdwn treats `&`, `<` and `>` as control characters; escaping exactly
 * those keeps stored text from turning into pings or links in the reply
 * (https://docs.slack.dev/messaging/formatting-message-text#escaping).
 */
export function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** What the bot answers in the thread: created, already tracked, or not acted on and why. */
export function replyText(result: AcceptResult, ticket: Ticket | undefined): string {
  const id = `#${result.ticketId}`;
  const reason = escapeMrkdwn(result.reason ?? 'no reason recorded');
  if (result.state === 'dropped' || result.state === 'deferred') {
    return `Not acting on this: ${reason} (ticket ${id}).`;
  }
  if (result.status === 'merged') {
    const n = ticket?.count ?? 1;
    return `This is already tracked as ticket ${id} (${n} ${n === 1 ? 'report' : 'reports'}, ${result.state}).`;
  }
  const regression = result.status === 'regression' && ticket?.regressionOf ? ` It looks like a regression of ticket #${ticket.regressionOf}.` : '';
  // Its thread could not be stored: triaged on the mention once its hold ends.
  if (result.state === 'settling') return `Thanks — I opened ticket ${id}; it is triaged shortly.${regression}`;
  return `Thanks — I opened ticket ${id} (${result.state}, ${reason}).${regression}`;
}

/**
 * Platform errors that are Slack's trouble of the moment, not a refusal of this call
 * (https://docs.slack.dev/reference/methods/chat.postMessage#errors).
 */
export const TRANSIENT_PLATFORM_ERRORS = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'ratelimited']);

/**
 * Slack could not take a call for now: out of reach (a refused or lost connection, a
 * timeout), an HTTP 5xx, or one of its transient platform errors. Neither a refusal
 * (channel_not_found, invalid_auth) nor a rate limit (withRateLimit's to wait out).
 */
export function slackTrouble(err: unknown): boolean {
  const e = err as { code?: unknown; statusCode?: unknown; data?: { error?: unknown } } | null;
  if (e?.code === ErrorCode.RequestError) return true;
  if (e?.code === ErrorCode.HTTPError) return typeof e.statusCode === 'number' && e.statusCode >= 500;
  return e?.code === ErrorCode.PlatformError && typeof e.data?.error === 'string' && TRANSIENT_PLATFORM_ERRORS.has(e.data.error);
}

/** The longest Retry-After waited for; a longer one fails the call at once. */
export const RATE_LIMIT_MAX_WAIT_S = 30;
const RATE_LIMIT_TRIES = 3;

/**
 * A Web API call from a client with `rejectRateLimitedCalls`, tried again after Slack's
 * Retry-After (up to RATE_LIMIT_MAX_WAIT_S, RATE_LIMIT_TRIES in all). An abort (a stop)
 * ends the wait, and the rate limit's error stands.
 */
export async function withRateLimit<T>(call: () => Promise<T>, signal: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const e = err as { code?: unknown; retryAfter?: unknown };
      const after = e?.code === ErrorCode.RateLimitedError && typeof e.retryAfter === 'number' ? e.retryAfter : NaN;
      if (!(after >= 0 && after <= RATE_LIMIT_MAX_WAIT_S) || attempt >= RATE_LIMIT_TRIES || signal.aborted) throw err;
      await sleep(Math.max(after, 1) * 1000, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) throw err;
    }
  }
}
