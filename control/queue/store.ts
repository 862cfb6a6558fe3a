/**
 * The SQLite store (better-sqlite3, WAL). Every SQL statement lives in a named
 * method here or in leases.ts; callers compose them inside `store.tx()`.
 *
 * Durability: WAL with synchronous=NORMAL survives a crash of the process (kill -9)
 * because a committed transaction is in the WAL file before COMMIT returns; FULL
 * also survives power loss. Webhooks are acknowledged only after their commit.
 */
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type {
  Classification,
  EventKind,
  Reporter,
  Severity,
  Ticket,
  TicketState,
  TriggerEvent,
  TriggerSource,
} from '../types.ts';
import { FIXED_STATES, OPEN_STATES } from '../types.ts';
import { migrate, SCHEMA_VERSION } from './migrations.ts';

export interface StoreOptions {
  durability?: 'normal' | 'full';
  /** Fake clock for tests. */
  now?: () => Date;
  /**
   * Open an existing database read-only (CLI commands that only read, on a home this user
   * cannot write: a read-only file system): nothing is made, set or migrated; one of
   * another schema version is refused. SQLite's WAL needs bugbot.db-shm beside it: one a
   * control plane (running, or killed) left there will do, none cannot be made (SQLITE_CANTOPEN).
   */
  readonly?: boolean;
}

export interface TicketRow {
  id: number;
  fingerprint: string;
  fingerprint_json: string;
  source: string;
  kind: string;
  service: string | null;
  title: string;
  message: string;
  stack: string | null;
  route: string | null;
  labels_json: string;
  state: string;
  severity: string;
  priority: number;
  count: number;
  users: number;
  human: number;
  claimed_by: string | null;
  /** Empty since migration 12: a ticket's reporters are rows of ticket_reporters (reportersOf). */
  reporters_json: string;
  classification: string | null;
  classify_reason: string | null;
  triage_decision: string | null;
  triage_reason: string | null;
  regression_of: number | null;
  first_seen: string;
  last_seen: string;
  settle_deadline: string | null;
  settle_cap: string | null;
  attempt: number;
  alert_resolved_at: string | null;
  pushed_at: string | null;
  created_at: string;
  updated_at: string;
}

/** How a ticket is linked to another (relatedTickets). */
export type TicketRelation = 'regression_of' | 'regressed_by' | 'cascade_of' | 'cascade_member';

export type TicketRef = Pick<TicketRow, 'id' | 'state' | 'settle_cap' | 'triage_reason' | 'pushed_at' | 'human'>;

export interface NewTicket {
  fingerprint: string;
  fingerprintJson: string;
  event: TriggerEvent;
  state: TicketState;
  settleDeadline: string | null;
  settleCap: string | null;
  regressionOf: number | null;
  classification: Classification | null;
  classifyReason: string | null;
}

export interface OccurrenceRow {
  at: string;
  count: number;
  source: string;
  event_id: number;
}

export class Store {
  readonly db: Database.Database;
  readonly now: () => Date;
  /** Set by refuseEvents: what storing or touching an event throws. */
  private eventsRefused: Error | null = null;

  constructor(path: string, opts: StoreOptions = {}) {
    this.now = opts.now ?? (() => new Date());
    if (opts.readonly) {
      this.db = new Database(path, { readonly: true, fileMustExist: true });
      try {
        this.db.pragma('busy_timeout = 5000');
        const v = this.db.pragma('user_version', { simple: true }) as number;
        if (v !== SCHEMA_VERSION) {
          throw Object.assign(
            new Error(
              v > SCHEMA_VERSION
                ? `${path} has schema version ${v}, newer than this bugbot's ${SCHEMA_VERSION}: a newer bugbot wrote it; run that version (or one at least as new) on this home`
                : `${path} has schema version ${v}, older than this bugbot's ${SCHEMA_VERSION}, and read-only it cannot be brought up to date: run a bugbot command that may write the home once (bugbot start)`,
            ),
            { code: v > SCHEMA_VERSION ? 'BUGBOT_SCHEMA_NEWER' : 'BUGBOT_SCHEMA_OLDER' },
          );
        }
      } catch (err) {
        this.db.close();
        throw err;
      }
      return;
    }
    // Private: reporters' addresses, report text and run logs live here. Only what this
    // makes (a new home, a new database; SQLite gives its WAL the database's mode).
    const fresh = path !== ':memory:' && !existsSync(path);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path);
    if (fresh) chmodSync(path, 0o600);
    // First: switching a new file to WAL and migrating it take the write lock, which
    // another process opening the same new home may hold for a moment.
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('foreign_keys = ON');
    try {
      migrate(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  nowIso(): string {
    return this.now().toISOString();
  }

  /** Run fn in one IMMEDIATE transaction (takes the write lock up front: no upgrade deadlocks). */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * From now on, storing an event (or touching one received again) throws `err`, rolling
   * back its transaction: the control plane found its database file deleted or replaced
   * (main.ts), and an event committed to the file it still has open would be acknowledged
   * and then lost. The rest of the store goes on as it was.
   */
  refuseEvents(err: Error): void {
    this.eventsRefused = err;
  }

  // ---- events ----------------------------------------------------------------

  /** Insert an event (an occurrence of ticketId); returns its id, or null when (source, source_event_id) was seen before. */
  insertEvent(e: TriggerEvent, fingerprint: string, ticketId: number | null, receivedAt = this.nowIso()): number | null {
    if (this.eventsRefused) throw this.eventsRefused;
    const r = this.stmt(
      `INSERT INTO events (source, source_event_id, received_at, kind, status, fingerprint, ticket_id, seen_at, count, event_json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, source_event_id) DO NOTHING`,
    ).run(
      e.source,
      e.sourceEventId,
      receivedAt,
      e.kind,
      e.status ?? 'firing',
      fingerprint,
      ticketId,
      e.lastSeen,
      e.count,
      JSON.stringify(e),
    );
    return r.changes ? Number(r.lastInsertRowid) : null;
  }

  eventExists(source: TriggerSource, sourceEventId: string): boolean {
    return Boolean(this.stmt('SELECT 1 FROM events WHERE source = ? AND source_event_id = ?').get(source, sourceEventId));
  }

  /** An event received again (a duplicate): retention keeps its key while it keeps coming. */
  touchEvent(source: TriggerSource, sourceEventId: string, at: string): void {
    if (this.eventsRefused) throw this.eventsRefused;
    this.stmt('UPDATE events SET last_received_at = ? WHERE source = ? AND source_event_id = ?').run(at, source, sourceEventId);
  }

  /**
   * Retention, one step of a walk by id: of the next `limit` events after id `after`, delete
   * those last received before `before`. Returns the last id looked at (the walk's next
   * `after`), or null at the end of the table.
   */
  deleteOldEvents(after: number, before: string, limit: number): { upTo: number | null; deleted: number } {
    const upTo = (this.stmt('SELECT MAX(id) AS id FROM (SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?)').get(after, limit) as { id: number | null }).id;
    if (upTo === null) return { upTo, deleted: 0 };
    const deleted = this.stmt('DELETE FROM events WHERE id > ? AND id <= ? AND COALESCE(last_received_at, received_at) < ?').run(after, upTo, before).changes;
    return { upTo, deleted };
  }

  countEvents(): number {
    return (this.stmt('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  }

  /** A stored event by its idempotency key: the ticket it went to and the event as stored (redacted). */
  eventBySourceId(source: TriggerSource, sourceEventId: string): { ticketId: number | null; event: TriggerEvent } | undefined {
    const row = this.stmt('SELECT ticket_id, event_json FROM events WHERE source = ? AND source_event_id = ?').get(source, sourceEventId) as
      | { ticket_id: number | null; event_json: string }
      | undefined;
    return row && { ticketId: row.ticket_id, event: JSON.parse(row.event_json) as TriggerEvent };
  }

  eventIdsBySource(source: TriggerSource): string[] {
    return (this.stmt('SELECT source_event_id AS id FROM events WHERE source = ?').all(source) as { id: string }[]).map((r) => r.id);
  }

  // ---- nonces (replay defence) -------------------------------------------------

  /** Record a one-time value; false when it was already used. Old ones are pruned. */
  useNonce(scope: string, value: string, keepSeconds: number): boolean {
    const now = this.now();
    this.stmt('DELETE FROM nonces WHERE scope = ? AND seen_at < ?').run(scope, new Date(now.getTime() - keepSeconds * 1000).toISOString());
    const r = this.stmt('INSERT INTO nonces (scope, value, seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(scope, value, now.toISOString());
    return r.changes === 1;
  }

  /** Whether a one-time value was used within the last `keepSeconds` (reads only). */
  nonceUsed(scope: string, value: string, keepSeconds: number): boolean {
    const since = new Date(this.now().getTime() - keepSeconds * 1000).toISOString();
    return this.stmt('SELECT 1 FROM nonces WHERE scope = ? AND value = ? AND seen_at >= ?').get(scope, value, since) !== undefined;
  }

  // ---- tickets -------------------------------------------------------------------

  insertTicket(t: NewTicket): number {
    const e = t.event;
    const now = this.nowIso();
    const r = this.stmt(
      `INSERT INTO tickets (fingerprint, fingerprint_json, source, kind, service, title, message, stack, route, labels_json,
         state, count, users, human, reporters_json, classification, classify_reason, regression_of,
         first_seen, last_seen, settle_deadline, settle_cap, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      t.fingerprint,
      t.fingerprintJson,
      e.source,
      e.kind,
      e.service ?? null,
      e.title,
      e.message,
      e.stack ?? null,
      e.route ?? null,
      JSON.stringify(e.labels),
      t.state,
      e.count,
      e.users ?? 0,
      e.human ? 1 : 0,
      '[]',
      t.classification,
      t.classifyReason,
      t.regressionOf,
      e.firstSeen,
      e.lastSeen,
      t.settleDeadline,
      t.settleCap,
      now,
      now,
    );
    const id = Number(r.lastInsertRowid);
    if (e.reporter) this.insertReporter(id, e.reporter);
    return id;
  }

  /** A reporter of the ticket, once per (kind, id, thread); false when it was one already. */
  private insertReporter(ticketId: number, reporter: Reporter): boolean {
    return (
      this.stmt(
        'INSERT INTO ticket_reporters (ticket_id, kind, reporter_id, thread, reporter_json) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ).run(ticketId, reporter.kind, reporter.id, reporter.thread ?? '', JSON.stringify(reporter)).changes === 1
    );
  }

  /** A ticket's reporters, first first. */
  reportersOf(ticketId: number): Reporter[] {
    return (this.stmt('SELECT reporter_json FROM ticket_reporters WHERE ticket_id = ? ORDER BY id').all(ticketId) as { reporter_json: string }[]).map(
      (r) => JSON.parse(r.reporter_json) as Reporter,
    );
  }

  /** The hot-path view of the newest ticket of a fingerprint. */
  /**
   * The newest open or fixed ticket a reporter's thread (a Slack `channel:ts`) already
   * reported to, if any, with how it was fingerprinted: a later mention in that thread
   * may be the same report (Intake.prepare decides).
   */
  ticketOfThread(kind: Reporter['kind'], thread: string): { fingerprint: string; method: string | undefined; state: TicketState; pushedAt: string | null } | undefined {
    const states = [...OPEN_STATES, ...FIXED_STATES];
    if (!thread) return undefined;
    const row = this.stmt(
      `SELECT t.fingerprint, t.fingerprint_json, t.state, t.pushed_at FROM ticket_reporters r INDEXED BY ticket_reporters_thread JOIN tickets t ON t.id = r.ticket_id
        WHERE r.kind = ? AND r.thread = ? AND r.thread != '' AND t.human = 1 AND t.state IN (${states.map(() => '?').join(', ')}) ORDER BY t.id DESC LIMIT 1`,
    ).get(kind, thread, ...states) as { fingerprint: string; fingerprint_json: string; state: TicketState; pushed_at: string | null } | undefined;
    if (!row) return undefined;
    let method: string | undefined;
    try {
      method = (JSON.parse(row.fingerprint_json) as { method?: string }).method;
    } catch {
      method = undefined;
    }
    return { fingerprint: row.fingerprint, method, state: row.state, pushedAt: row.pushed_at };
  }

  newestTicketRef(fingerprint: string): TicketRef | undefined {
    return this.stmt(
      'SELECT id, state, settle_cap, triage_reason, pushed_at, human FROM tickets WHERE fingerprint = ? ORDER BY id DESC LIMIT 1',
    ).get(fingerprint) as TicketRef | undefined;
  }

  /** Fold summed occurrences into a ticket's counters (and, while settling, its deadline). */
  addOccurrences(
    ticketId: number,
    o: { count: number; users: number; firstSeen: string; lastSeen: string; deadline: string | null },
    nowIso: string,
  ): void {
    this.stmt(
      // Firing again: whatever resolved it before no longer holds.
      `UPDATE tickets SET count = count + ?, users = MAX(users, ?),
         first_seen = MIN(first_seen, ?), last_seen = MAX(last_seen, ?),
         settle_deadline = COALESCE(?, settle_deadline), alert_resolved_at = NULL, updated_at = ?
       WHERE id = ?`,
    ).run(o.count, o.users, o.firstSeen, o.lastSeen, o.deadline, nowIso, ticketId);
  }

  /** A person joined an existing ticket: it becomes human-filed and keeps the reporter for replies. */
  addReporter(ticketId: number, reporter: Reporter | undefined): void {
    if (this.stmt('UPDATE tickets SET human = 1, updated_at = ? WHERE id = ?').run(this.nowIso(), ticketId).changes === 0) return;
    if (reporter) this.insertReporter(ticketId, reporter);
  }

  /** A queued ticket's severity and priority as its occurrences grow (its decision unchanged). */
  setSeverity(ticketId: number, severity: Severity, priority: number): void {
    this.stmt('UPDATE tickets SET severity = ?, priority = ?, updated_at = ? WHERE id = ?').run(severity, priority, this.nowIso(), ticketId);
  }

  setTriage(
    ticketId: number,
    state: TicketState,
    severity: Severity,
    priority: number,
    decision: string,
    reason: string,
  ): void {
    this.stmt(
      `UPDATE tickets SET state = ?, severity = ?, priority = ?, triage_decision = ?, triage_reason = ?,
         settle_deadline = NULL, updated_at = ? WHERE id = ?`,
    ).run(state, severity, priority, decision, reason, this.nowIso(), ticketId);
  }

  setState(ticketId: number, state: TicketState): void {
    this.stmt('UPDATE tickets SET state = ?, updated_at = ? WHERE id = ?').run(state, this.nowIso(), ticketId);
    // Held in a cascade is deferred: one a person moves on (a cancel) leaves it.
    if (state !== 'deferred') this.stmt('DELETE FROM cascade_members WHERE ticket_id = ?').run(ticketId);
  }

  /** A report's free-text classification, made again (on a fuller text). */
  setClassification(ticketId: number, classification: string, reason: string): void {
    this.stmt('UPDATE tickets SET classification = ?, classify_reason = ?, updated_at = ? WHERE id = ?').run(classification, reason, this.nowIso(), ticketId);
  }

  /** Replace a ticket's text (already redacted by the caller). */
  updateTicketText(ticketId: number, message: string): void {
    this.stmt('UPDATE tickets SET message = ?, updated_at = ? WHERE id = ?').run(message, this.nowIso(), ticketId);
  }

  setClaimedBy(ticketId: number, who: string | null): void {
    this.stmt('UPDATE tickets SET claimed_by = ?, updated_at = ? WHERE id = ?').run(who, this.nowIso(), ticketId);
  }

  /** Record that the alerts of this ticket resolved (alertStillFiring says whether all did). */
  markAlertResolved(ticketId: number, at: string, nowIso: string): void {
    this.stmt('UPDATE tickets SET alert_resolved_at = ?, updated_at = ? WHERE id = ?').run(at, nowIso, ticketId);
  }

  /**
   * The alert (firing) event a resolution belongs to, by its idempotency key, with its
   * ticket: Grafana often resolves with other annotations than it fired with, so the
   * resolution's own text cannot be trusted to find the ticket. With `laterPrefix`, the
   * newest of the key and the keys `<key><laterPrefix>...` (the alert's recurrences after a
   * fix, intake/accept.ts); `key` is the one found.
   */
  firingAlertEvent(
    source: TriggerSource,
    sourceEventId: string,
    laterPrefix?: string,
  ): { key: string; ticketId: number; fingerprint: string; state: TicketState } | undefined {
    // The prefix's keys as a range of the (source, source_event_id) index: its last
    // character one higher ends the range.
    const from = laterPrefix ? sourceEventId + laterPrefix : sourceEventId;
    const to = laterPrefix ? from.slice(0, -1) + String.fromCharCode(from.charCodeAt(from.length - 1) + 1) : sourceEventId;
    return this.stmt(
      `SELECT e.source_event_id AS key, e.ticket_id AS ticketId, t.fingerprint, t.state FROM events e JOIN tickets t ON t.id = e.ticket_id
       WHERE e.source = ? AND (e.source_event_id = ? OR (e.source_event_id > ? AND e.source_event_id < ?)) AND e.status = 'firing'
       ORDER BY e.id DESC LIMIT 1`,
    ).get(source, sourceEventId, from, to) as { key: string; ticketId: number; fingerprint: string; state: TicketState } | undefined;
  }

  /**
   * Whether an alert of this ticket still fires: a firing alert event with no resolution
   * (its key plus ":resolved", see triggers/alerts.ts) received since it was last received.
   * The newest are looked at first, those most likely still firing; a batch asks once per
   * ticket (intake/accept.ts Batch.resolveLater), not once per resolution.
   */
  alertStillFiring(ticketId: number): boolean {
    return (
      this.stmt(
        `SELECT 1 FROM events f
         WHERE f.ticket_id = ? AND f.status = 'firing' AND f.source IN ('grafana', 'alertmanager')
           AND NOT EXISTS (SELECT 1 FROM events r WHERE r.source = f.source AND r.source_event_id = f.source_event_id || ':resolved'
             AND COALESCE(r.last_received_at, r.received_at) >= COALESCE(f.last_received_at, f.received_at))
         ORDER BY f.seen_at DESC LIMIT 1`,
      ).get(ticketId) !== undefined
    );
  }

  /** An alert of this ticket fires again (its firing event received again): the ticket is no longer resolved. */
  clearAlertResolvedByEvent(source: TriggerSource, sourceEventId: string, nowIso: string): void {
    this.stmt(
      `UPDATE tickets SET alert_resolved_at = NULL, updated_at = ?
       WHERE alert_resolved_at IS NOT NULL AND id = (SELECT ticket_id FROM events WHERE source = ? AND source_event_id = ?)`,
    ).run(nowIso, source, sourceEventId);
  }

  /** The ticket an event went to, by its idempotency key (null: none; undefined: no such event). */
  ticketOfEvent(source: TriggerSource, sourceEventId: string): number | null | undefined {
    const row = this.stmt('SELECT ticket_id FROM events WHERE source = ? AND source_event_id = ?').get(source, sourceEventId) as { ticket_id: number | null } | undefined;
    return row?.ticket_id;
  }

  /**
   * A stack found for a ticket after it was stored (an alert's error lines from Loki,
   * already redacted): set only where the ticket still has none.
   */
  attachStack(ticketId: number, stack: string, nowIso: string): boolean {
    return this.stmt('UPDATE tickets SET stack = ?, updated_at = ? WHERE id = ? AND stack IS NULL').run(stack, nowIso, ticketId).changes === 1;
  }

  // ---- held reports (intake/accept.ts AcceptOptions.holdNote) ------------------------

  /** A report held for its fuller account: what its holder needs to finish it after a restart. */
  holdReport(ticketId: number, source: string, note: Record<string, unknown>): void {
    this.stmt('INSERT INTO held_reports (ticket_id, source, note_json) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(ticketId, source, JSON.stringify(note));
  }

  /** The ticket whose cascade `ticketId` is held in (intake.cascadeSeconds), or null. */
  cascadeHeadOf(ticketId: number): number | null {
    return (this.stmt('SELECT head_id FROM cascade_members WHERE ticket_id = ?').get(ticketId) as { head_id: number } | undefined)?.head_id ?? null;
  }

  /** Hold `ticketId` in `headId`'s cascade (and its own members with it), or let it go (null). */
  setCascadeHead(ticketId: number, headId: number | null): void {
    if (headId === null) {
      this.stmt('DELETE FROM cascade_members WHERE ticket_id = ?').run(ticketId);
      return;
    }
    this.stmt('INSERT INTO cascade_members (ticket_id, head_id) VALUES (?, ?) ON CONFLICT (ticket_id) DO UPDATE SET head_id = excluded.head_id').run(ticketId, headId);
    // A head that joins an earlier cascade brings its members: one head per cascade.
    this.stmt('UPDATE cascade_members SET head_id = ? WHERE head_id = ?').run(headId, ticketId);
  }

  /** The tickets held in `headId`'s cascade, by when their errors began. */
  cascadeMembers(headId: number, limit = 50): Array<Pick<TicketRow, 'id' | 'state' | 'severity' | 'source' | 'kind' | 'title' | 'message' | 'route' | 'count' | 'first_seen'>> {
    return this.stmt(
      `SELECT t.id, t.state, t.severity, t.source, t.kind, t.title, t.message, t.route, t.count, t.first_seen FROM cascade_members c JOIN tickets t ON t.id = c.ticket_id
        WHERE c.head_id = ? ORDER BY t.first_seen, t.id LIMIT ?`,
    ).all(headId, limit) as Array<Pick<TicketRow, 'id' | 'state' | 'severity' | 'source' | 'kind' | 'title' | 'message' | 'route' | 'count' | 'first_seen'>>;
  }

  /** The most severe ticket held in `headId`'s cascade (the oldest of those), however many it holds. */
  cascadeWorst(headId: number): { id: number; severity: string } | undefined {
    return this.stmt(
      `SELECT t.id, t.severity FROM cascade_members c JOIN tickets t ON t.id = c.ticket_id WHERE c.head_id = ? AND t.state = 'deferred'
        ORDER BY CASE t.severity WHEN 'critical' THEN 3 WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END DESC, t.id LIMIT 1`,
    ).get(headId) as { id: number; severity: string } | undefined;
  }

  /**
   * The ticket a cascade of `t`'s would be held in: the earliest machine-reported ticket
   * (not a person's, not a report) of the same service, itself in no cascade, whose errors
   * began at most `windowSeconds` before `t`'s (ties go to the older ticket), and that is
   * still to be worked on or under way.
   */
  cascadeHeadFor(t: Pick<TicketRow, 'id' | 'service' | 'first_seen'>, windowSeconds: number): TicketRow | undefined {
    if (t.service === null) return undefined;
    const from = new Date(Date.parse(t.first_seen) - windowSeconds * 1000).toISOString();
    return this.stmt(
      `SELECT * FROM tickets t INDEXED BY tickets_service_first_seen WHERE t.state IN ('settling', 'queued', 'running', 'awaiting_approval') AND t.service = ? AND t.id != ?
         AND t.human = 0 AND t.kind != 'report' AND t.first_seen >= ? AND (t.first_seen < ? OR (t.first_seen = ? AND t.id < ?))
         AND NOT EXISTS (SELECT 1 FROM cascade_members c WHERE c.ticket_id = t.id)
       ORDER BY t.first_seen, t.id LIMIT 1`,
    ).get(t.service, t.id, from, t.first_seen, t.first_seen, t.id) as TicketRow | undefined;
  }

  /**
   * Tickets held in a cascade whose head ended without a fix (dropped, deferred, failed,
   * handed to a person) and is claimed by no one: triage decides them on their own. A head
   * whose fix went live and regressed since lets go of none: what it still holds has not
   * recurred since that fix (a recurrence past its grace period is decided on its own).
   */
  cascadesReleased(limit: number, afterId = 0): number[] {
    return (
      this.stmt(
        `SELECT c.ticket_id FROM cascade_members c JOIN tickets h ON h.id = c.head_id JOIN tickets m ON m.id = c.ticket_id
          WHERE c.ticket_id > ? AND m.state = 'deferred' AND h.claimed_by IS NULL AND h.state NOT IN ('settling', 'queued', 'running', 'awaiting_approval', 'pushed', 'resolved', 'regressed') ORDER BY c.ticket_id LIMIT ?`,
      ).all(afterId, limit) as { ticket_id: number }[]
    ).map((r) => r.ticket_id);
  }

  /** The reports a source's holder has not finished (a stop or a crash came first), oldest first. */
  heldReports(source: string): Array<{ ticketId: number; note: Record<string, unknown> }> {
    return (this.stmt('SELECT ticket_id, note_json FROM held_reports WHERE source = ? ORDER BY ticket_id').all(source) as { ticket_id: number; note_json: string }[]).map(
      (r) => ({ ticketId: r.ticket_id, note: JSON.parse(r.note_json) as Record<string, unknown> }),
    );
  }

  /** The holder is done with a report (read and answered, or given up): no start finishes it again. */
  releaseHeldReport(ticketId: number): void {
    this.stmt('DELETE FROM held_reports WHERE ticket_id = ?').run(ticketId);
  }

  /** A held report still waiting (settling) waits until `deadline` again; false when it was decided already. */
  holdAgain(ticketId: number, deadline: string): boolean {
    return this.stmt(`UPDATE tickets SET settle_deadline = ?, updated_at = ? WHERE id = ? AND state = 'settling'`).run(deadline, this.nowIso(), ticketId).changes === 1;
  }

  // Both on the partial index of settling tickets (the planner would take tickets_state
  // and sort: milliseconds with many tickets settling, on every poke of the scheduler).
  /**
   * Settling tickets whose deadline has come; with `horizonIso`, also those whose deadline
   * lies past it, further ahead than any window sets one (the wall clock was stepped back).
   */
  dueSettling(nowIso: string, limit = 100, horizonIso?: string): TicketRow[] {
    const due = this.stmt(
      `SELECT * FROM tickets INDEXED BY tickets_settle WHERE state = 'settling' AND settle_deadline <= ? ORDER BY settle_deadline LIMIT ?`,
    ).all(nowIso, limit) as TicketRow[];
    if (horizonIso === undefined || due.length >= limit) return due;
    const beyond = this.stmt(
      `SELECT * FROM tickets INDEXED BY tickets_settle WHERE state = 'settling' AND settle_deadline > ? ORDER BY settle_deadline LIMIT ?`,
    ).all(horizonIso, limit - due.length) as TicketRow[];
    return [...due, ...beyond];
  }

  nextSettleDeadline(): string | null {
    const r = this.stmt(`SELECT MIN(settle_deadline) AS d FROM tickets INDEXED BY tickets_settle WHERE state = 'settling'`).get() as { d: string | null };
    return r.d;
  }

  getTicketRow(id: number): TicketRow | undefined {
    return this.stmt('SELECT * FROM tickets WHERE id = ?').get(id) as TicketRow | undefined;
  }

  getTicket(id: number): Ticket | undefined {
    const row = this.getTicketRow(id);
    return row ? toTicket(row, this.reportersOf(id)) : undefined;
  }

  listTickets(opts: { state?: TicketState; limit?: number; offset?: number } = {}): Ticket[] {
    const limit = opts.limit ?? 100;
    const offset = opts.offset ?? 0;
    const rows = opts.state
      ? this.stmt('SELECT * FROM tickets WHERE state = ? ORDER BY id DESC LIMIT ? OFFSET ?').all(opts.state, limit, offset)
      : this.stmt('SELECT * FROM tickets ORDER BY id DESC LIMIT ? OFFSET ?').all(limit, offset);
    return (rows as TicketRow[]).map((r) => toTicket(r, this.reportersOf(r.id)));
  }

  countByState(): Record<string, number> {
    const rows = this.stmt('SELECT state, COUNT(*) AS n FROM tickets GROUP BY state').all() as { state: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  occurrences(ticketId: number, limit = 500): OccurrenceRow[] {
    return this.stmt(
      // A resolution is recorded as an event of its ticket, but it is no occurrence of the error.
      `SELECT seen_at AS at, count, source, id AS event_id FROM events WHERE ticket_id = ? AND status = 'firing' ORDER BY seen_at DESC LIMIT ?`,
    ).all(ticketId, limit) as OccurrenceRow[];
  }

  /** Tickets linked to this one: the one it is a regression of, its regressions, the cascade it is held in, those held in its cascade. */
  relatedTickets(ticketId: number): { id: number; relation: TicketRelation; state: string }[] {
    const out: { id: number; relation: TicketRelation; state: string }[] = [];
    const row = this.getTicketRow(ticketId);
    if (row?.regression_of) {
      const prev = this.getTicketRow(row.regression_of);
      if (prev) out.push({ id: prev.id, relation: 'regression_of', state: prev.state });
    }
    for (const r of this.regressionsOf(ticketId)) out.push({ id: r.id, relation: 'regressed_by', state: r.state });
    const head = this.cascadeHeadOf(ticketId);
    const headRow = head === null ? undefined : this.getTicketRow(head);
    if (headRow) out.push({ id: headRow.id, relation: 'cascade_of', state: headRow.state });
    for (const m of this.cascadeMembers(ticketId)) out.push({ id: m.id, relation: 'cascade_member', state: m.state });
    return out;
  }

  /** The tickets intake opened as regressions of this one, oldest first (on tickets_regression, not a scan of every ticket). */
  regressionsOf(ticketId: number): { id: number; state: string; first_seen: string; created_at: string }[] {
    return this.stmt('SELECT id, state, first_seen, created_at FROM tickets WHERE regression_of = ? ORDER BY id').all(ticketId) as {
      id: number;
      state: string;
      first_seen: string;
      created_at: string;
    }[];
  }

  /** Other tickets of the same fingerprint (earlier or later ones), newest first. */
  ticketsWithFingerprint(fingerprint: string, exceptId: number, limit = 20): { id: number; state: string; created_at: string }[] {
    return this.stmt('SELECT id, state, created_at FROM tickets WHERE fingerprint = ? AND id != ? ORDER BY id DESC LIMIT ?').all(fingerprint, exceptId, limit) as {
      id: number;
      state: string;
      created_at: string;
    }[];
  }

  // ---- stage runs -------------------------------------------------------------------

  /** The per-stage numbers of a finished run (tokens, tool calls, cost, duration). */
  saveStages(runId: number, stages: Record<string, { tokens?: number; tool_calls?: number; cost_usd?: number; duration_s?: number; result?: string | null } | undefined>): void {
    const now = this.nowIso();
    for (const [stage, s] of Object.entries(stages)) {
      if (!s) continue;
      this.stmt(
        `INSERT INTO stage_runs (run_id, stage, state, started_at, finished_at, tokens, tool_calls, cost_usd, detail_json)
         VALUES (?, ?, 'finished', ?, ?, ?, ?, ?, ?)`,
      ).run(runId, stage, now, now, s.tokens ?? 0, s.tool_calls ?? 0, s.cost_usd ?? 0, JSON.stringify(s));
    }
  }

  stagesOf(runId: number): Array<{ stage: string; tokens: number; tool_calls: number; cost_usd: number; detail_json: string | null }> {
    return this.stmt('SELECT stage, tokens, tool_calls, cost_usd, detail_json FROM stage_runs WHERE run_id = ? ORDER BY id').all(runId) as Array<{
      stage: string;
      tokens: number;
      tool_calls: number;
      cost_usd: number;
      detail_json: string | null;
    }>;
  }

  // ---- audit -----------------------------------------------------------------------

  audit(ticketId: number | null, actor: string, action: string, detail?: string): void {
    this.stmt('INSERT INTO audit (ticket_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)').run(
      ticketId,
      this.nowIso(),
      actor,
      action,
      detail ?? null,
    );
  }

  auditTrail(ticketId: number): { at: string; actor: string; action: string; detail: string | null }[] {
    return this.stmt('SELECT at, actor, action, detail FROM audit WHERE ticket_id = ? ORDER BY id').all(ticketId) as {
      at: string;
      actor: string;
      action: string;
      detail: string | null;
    }[];
  }

  // ---- log-file offsets ---------------------------------------------------------------

  getOffset(path: string): { inode: number; offset: number; generation: number; fingerprint: string | null } | undefined {
    return this.stmt('SELECT inode, offset, generation, fingerprint FROM watch_offsets WHERE path = ?').get(path) as
      | { inode: number; offset: number; generation: number; fingerprint: string | null }
      | undefined;
  }

  setOffset(path: string, inode: number, offset: number, generation = 0, fingerprint?: string): void {
    this.stmt(
      'INSERT INTO watch_offsets (path, inode, offset, generation, fingerprint) VALUES (?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET inode = excluded.inode, offset = excluded.offset, generation = excluded.generation, fingerprint = excluded.fingerprint',
    ).run(path, inode, offset, generation, fingerprint ?? null);
  }

  // ---- prepared statement cache -----------------------------------------------------

  private readonly cache = new Map<string, Database.Statement>();

  stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }
}

/** A ticket as the rest of bugbot sees it, from its row and its reporters (Store.reportersOf). */
export function toTicket(r: TicketRow, reporters: Reporter[]): Ticket {
  return {
    id: r.id,
    fingerprint: r.fingerprint,
    source: r.source as TriggerSource,
    kind: r.kind as EventKind,
    service: r.service,
    title: r.title,
    message: r.message,
    stack: r.stack,
    route: r.route,
    labels: JSON.parse(r.labels_json) as Record<string, string>,
    state: r.state as TicketState,
    severity: r.severity as Severity,
    priority: r.priority,
    count: r.count,
    users: r.users,
    human: r.human === 1,
    claimedBy: r.claimed_by,
    reporter: reporters[0] ?? null,
    reporters,
    classification: r.classification as Classification | null,
    triageDecision: r.triage_decision,
    triageReason: r.triage_reason,
    regressionOf: r.regression_of,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    settleDeadline: r.settle_deadline,
    attempt: r.attempt,
    alertResolvedAt: r.alert_resolved_at,
    pushedAt: r.pushed_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
