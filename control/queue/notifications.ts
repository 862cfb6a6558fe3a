/**
 * The notifications outbox (control/notify): every message to a reporter is recorded
 * before it is sent and marked once it went out or was refused for good, so a stop or a
 * crash between the two leaves it `pending` and the next start sends it. A message
 * already recorded for the same notice and reporter is not recorded (nor sent) again.
 * Sending is at least once: a crash after the send and before the mark sends it twice.
 */
import type { Store } from './store.ts';

export interface NotificationRow {
  id: number;
  ticket_id: number;
  kind: string;
  dedupe_key: string;
  notice_json: string;
  target_json: string;
  /** none: a "fixed" notice nobody could be told of, kept for later reporters (keepUntoldFix); never listed. */
  state: 'pending' | 'sent' | 'failed' | 'none';
  attempts: number;
  last_error: string | null;
  created_at: string;
  finished_at: string | null;
}

/**
 * Record a message about to be sent; undefined when the same one was recorded before.
 * `notice`: what the message says, as Notifier keeps it (the ticket by id and title).
 */
export function recordNotification(
  store: Store,
  n: { ticketId: number; kind: string; dedupeKey: string; notice: unknown; target: unknown },
): number | undefined {
  const r = store
    .stmt(
      `INSERT OR IGNORE INTO notifications (ticket_id, kind, dedupe_key, notice_json, target_json, state, created_at)
       VALUES (?, ?, ?, ?, ?, 'pending', ?)`,
    )
    .run(n.ticketId, n.kind, n.dedupeKey, JSON.stringify(n.notice), JSON.stringify(n.target), store.nowIso());
  return r.changes === 1 ? Number(r.lastInsertRowid) : undefined;
}

/**
 * Keep a "fixed" notice that went to nobody (no reporter could be answered: a ticket filed
 * by hand, mail a program sent, a channel that is off): the outbox knows the fix all the
 * same, and a person whose report joins the fixed ticket later is told it
 * (Notifier.tellLatecomers). Not a message: never sent, and not among what reporters were told.
 */
export function keepUntoldFix(store: Store, n: { ticketId: number; dedupeKey: string; notice: unknown }): void {
  store
    .stmt(
      `INSERT OR IGNORE INTO notifications (ticket_id, kind, dedupe_key, notice_json, target_json, state, created_at, finished_at)
       VALUES (?, 'fixed', ?, ?, '{}', 'none', ?, ?)`,
    )
    .run(n.ticketId, n.dedupeKey, JSON.stringify(n.notice), store.nowIso(), store.nowIso());
}

/** Sent, or refused for good (with why). */
export function finishNotification(store: Store, id: number, state: 'sent' | 'failed', attempts: number, error?: string): void {
  store
    .stmt('UPDATE notifications SET state = ?, attempts = attempts + ?, last_error = ?, finished_at = ? WHERE id = ?')
    .run(state, attempts, error ?? null, store.nowIso(), id);
}

/** Tried and not sent yet (a stop cut its waits short): stays pending for the next start. */
export function deferNotification(store: Store, id: number, attempts: number, error: string): void {
  store.stmt('UPDATE notifications SET attempts = attempts + ?, last_error = ? WHERE id = ?').run(attempts, error, id);
}

export function pendingNotifications(store: Store): NotificationRow[] {
  return store.stmt(`SELECT * FROM notifications WHERE state = 'pending' ORDER BY id`).all() as NotificationRow[];
}

export function notificationsForTicket(store: Store, ticketId: number): NotificationRow[] {
  return store.stmt('SELECT * FROM notifications WHERE ticket_id = ? ORDER BY id').all(ticketId) as NotificationRow[];
}

/** The notice of a ticket's latest message of `kind` (one row, however many reporters were told). */
export function latestNotice(store: Store, ticketId: number, kind: string): string | undefined {
  const row = store.stmt('SELECT notice_json FROM notifications WHERE ticket_id = ? AND kind = ? ORDER BY id DESC LIMIT 1').get(ticketId, kind) as { notice_json: string } | undefined;
  return row?.notice_json;
}

/** What a ticket's reporters were told, for the API and the dashboard: without the notice (the ticket it carried). */
export interface NotificationSummary {
  kind: string;
  /** slack (channel, thread) or email (the reporter's position on the ticket). */
  to: Record<string, unknown>;
  state: NotificationRow['state'];
  attempts: number;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
}

/**
 * How many of a ticket's messages the API, `bugbot ticket --json` and the ticket page read:
 * the latest. A fix told to thousands of reporters (an email flood) is thousands of rows;
 * notificationCounts says how many there are.
 */
export const NOTIFICATIONS_LISTED = 200;

/** The ticket's latest `limit` messages, oldest first; the notice (the ticket it carried) is not read. */
export function notificationSummaries(store: Store, ticketId: number, limit = NOTIFICATIONS_LISTED): NotificationSummary[] {
  const rows = store
    .stmt(
      `SELECT kind, target_json, state, attempts, last_error, created_at, finished_at FROM notifications
       WHERE ticket_id = ? AND state <> 'none' ORDER BY id DESC LIMIT ?`,
    )
    .all(ticketId, limit) as Pick<NotificationRow, 'kind' | 'target_json' | 'state' | 'attempts' | 'last_error' | 'created_at' | 'finished_at'>[];
  return rows.reverse().map((r) => ({
    kind: r.kind,
    to: JSON.parse(r.target_json) as Record<string, unknown>,
    state: r.state,
    attempts: r.attempts,
    error: r.last_error,
    createdAt: r.created_at,
    finishedAt: r.finished_at,
  }));
}

/** How many messages a ticket's reporters were sent in all, and by state (what notificationSummaries leaves out counted). */
export interface NotificationCounts {
  total: number;
  pending: number;
  sent: number;
  failed: number;
}

export function notificationCounts(store: Store, ticketId: number): NotificationCounts {
  const rows = store
    .stmt(`SELECT state, COUNT(*) AS n FROM notifications WHERE ticket_id = ? AND state <> 'none' GROUP BY state`)
    .all(ticketId) as { state: string; n: number }[];
  const counts: NotificationCounts = { total: 0, pending: 0, sent: 0, failed: 0 };
  for (const r of rows) {
    counts.total += r.n;
    if (r.state === 'pending' || r.state === 'sent' || r.state === 'failed') counts[r.state] += r.n;
  }
  return counts;
}

/** Who a message went to, as people read it: a Slack channel or thread, an email reporter by position. */
export function recipientText(to: Record<string, unknown>): string {
  if (to.via === 'slack') return `Slack ${String(to.channel)}${to.threadTs ? ' thread' : ''}`;
  if (to.via === 'email') return `email to reporter ${Number(to.reporter) + 1}`;
  return String(to.via);
}
