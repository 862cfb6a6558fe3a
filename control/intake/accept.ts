/**
 * Where one event goes, inside a batch transaction: a duplicate, an occurrence of
 * the open ticket with its fingerprint, a resolved alert (on the ticket its firing
 * went to), a regression of a fixed ticket, a count against a dropped/failed one, or a new settling ticket.
 *
 * A Batch keeps what one transaction already knows: the newest ticket of each
 * fingerprint, and occurrence counters summed per ticket and written once at the
 * end. An alert storm on one error is then one ticket update per commit, not one
 * per event.
 */
import type { BugbotConfig } from '../config.ts';
import type { Store, TicketRef } from '../queue/store.ts';
import type { Classification, TicketState, TriggerEvent } from '../types.ts';
import { FIXED_STATES, OPEN_STATES } from '../types.ts';
import { classifyText, type ClassifyResult } from './classify.ts';

export type AcceptStatus = 'created' | 'merged' | 'regression' | 'resolved' | 'duplicate';

export interface AcceptResult {
  sourceEventId: string;
  status: AcceptStatus;
  fingerprint: string;
  ticketId: number | null;
  /** The ticket's state after this event. */
  state: TicketState | null;
  /** Why, when the ticket was triaged right away (reports by people) or not acted on. */
  reason: string | null;
  /** A person's report joined a ticket whose fix is already out: they are told it (Intake.whenReporterJoinsFixed). */
  joinedFixed?: true;
}

export interface Prepared {
  e: TriggerEvent;
  fingerprint: string;
  fpJson: string;
  /** How the event itself was fingerprinted (FingerprintParts.method). */
  method?: string;
}

/** The longest a report is held for its fuller account (AcceptOptions.holdSeconds); settleDue relies on it. */
export const MAX_HOLD_SECONDS = 300;

export interface AcceptOptions {
  /** Classifications decided before accept (e.g. by the model classifier), by sourceEventId. */
  classifications?: Map<string, ClassifyResult>;
  /**
   * A one-time value of the request (a Mailgun token, a Grafana signature), used up in
   * the transaction that stores its events: a request refused or failed before the
   * commit can be retried as sent; one stored cannot be replayed.
   */
  nonce?: Nonce;
  /**
   * A person's new report waits this long before triage instead of none (a Slack mention,
   * until its thread is read: Intake.threadRead decides it then). The deadline is stored,
   * so a report whose thread never comes is decided on what it has.
   */
  holdSeconds?: number;
  /**
   * What the holder needs to finish a report it holds (a Slack mention: where its thread
   * is, to read it and answer there), stored with the ticket the report opens until the
   * holder releases it (Store.releaseHeldReport): a stop or a crash before then leaves it
   * for the next start. For a batch of one report.
   */
  holdNote?: { source: string; note: Record<string, unknown> };
}

export interface Nonce {
  scope: string;
  value: string;
  keepSeconds: number;
}

/** The request's one-time value was already used: nothing of it was stored. */
export class ReplayError extends Error {
  constructor(readonly nonce: Nonce) {
    super(`replayed request: this ${nonce.scope} was already used`);
  }
}

interface Pending {
  count: number;
  users: number;
  firstSeen: string;
  lastSeen: string;
  deadline: string | null;
  /** The ticket is queued: once its counters are written, its severity and priority follow them. */
  queued: boolean;
}

export class Batch {
  readonly now: Date;
  readonly nowIso: string;
  private readonly refs = new Map<string, TicketRef | null>();
  private readonly pending = new Map<number, Pending>();
  /** Tickets an alert resolution of this batch went to: when it was last seen, and its results to word. */
  private readonly resolutions = new Map<number, { at: string; results: AcceptResult[] }>();
  /** Deferred tickets that occurred in this batch: decided again once it is finished, with their results to word. */
  private readonly redecide = new Map<number, { fingerprint: string; results: AcceptResult[] }>();

  constructor(
    private readonly store: Store,
    /** Called for a queued ticket whose counters were just written. */
    private readonly onQueuedGrowth: (ticketId: number) => void = () => {},
  ) {
    this.now = store.now();
    this.nowIso = this.now.toISOString();
  }

  /** The newest ticket of a fingerprint (it alone decides where a new event goes). */
  ref(fingerprint: string): TicketRef | null {
    let r = this.refs.get(fingerprint);
    if (r === undefined) {
      r = this.store.newestTicketRef(fingerprint) ?? null;
      this.refs.set(fingerprint, r);
    }
    return r;
  }

  /** Forget a cached ticket whose state this batch changed. */
  forget(fingerprint: string): void {
    this.refs.delete(fingerprint);
  }

  occur(ticketId: number, e: TriggerEvent, deadline: string | null, queued = false): void {
    const p = this.pending.get(ticketId);
    if (!p) {
      this.pending.set(ticketId, { count: e.count, users: e.users ?? 0, firstSeen: e.firstSeen, lastSeen: e.lastSeen, deadline, queued });
      return;
    }
    p.queued ||= queued;
    p.count += e.count;
    p.users = Math.max(p.users, e.users ?? 0);
    if (e.firstSeen < p.firstSeen) p.firstSeen = e.firstSeen;
    if (e.lastSeen > p.lastSeen) p.lastSeen = e.lastSeen;
    if (deadline !== null) p.deadline = deadline;
  }

  /** Write one ticket's summed counters now (before something reads them). */
  settle(ticketId: number): void {
    const p = this.pending.get(ticketId);
    if (!p) return;
    this.pending.delete(ticketId);
    this.store.addOccurrences(ticketId, p, this.nowIso);
    if (p.queued) this.onQueuedGrowth(ticketId);
  }

  /**
   * An alert of the ticket resolved: once this batch's occurrences are written (finish),
   * the ticket is marked resolved if none of its alerts still fires. Once per ticket and
   * batch, not per resolution: a storm of resolutions would read the ticket's events once
   * for each of them.
   */
  resolveLater(ticketId: number, at: string, result?: AcceptResult): void {
    const r = this.resolutions.get(ticketId) ?? { at, results: [] };
    if (at > r.at) r.at = at;
    if (result) r.results.push(result);
    this.resolutions.set(ticketId, r);
  }

  /**
   * A deferred ticket occurred: triage decides it again when the batch is finished, on all
   * of the batch's occurrences, once, not once per event (a storm on a deferred ticket, or
   * on those a cascade holds, would write its counters and its decision per event).
   */
  decideLater(ticketId: number, fingerprint: string, result: AcceptResult): void {
    const r = this.redecide.get(ticketId) ?? { fingerprint, results: [] };
    r.results.push(result);
    this.redecide.set(ticketId, r);
  }

  finish(decide: (ticketId: number, batch: Batch) => { state: TicketState; reason: string }): void {
    for (const id of [...this.pending.keys()]) this.settle(id);
    for (const [id, r] of this.redecide) {
      const d = decide(id, this);
      this.forget(r.fingerprint);
      for (const result of r.results) Object.assign(result, { state: d.state, reason: d.reason });
    }
    this.redecide.clear();
    for (const [id, r] of this.resolutions) {
      const quiet = !this.store.alertStillFiring(id);
      if (quiet) this.store.markAlertResolved(id, r.at, this.nowIso);
      // One pod's alert resolving says nothing of the other pods' on the same ticket.
      for (const result of r.results) result.reason = quiet ? 'alert resolved' : 'alert resolved; other alerts of this ticket still fire';
    }
    this.resolutions.clear();
  }
}

export interface AcceptContext {
  store: Store;
  config: BugbotConfig;
  /** Triage a ticket now (inside the transaction). */
  decide(ticketId: number, batch: Batch): { state: TicketState; reason: string };
}

export function acceptOne(ctx: AcceptContext, batch: Batch, p: Prepared, opts: AcceptOptions): AcceptResult {
  const { store, config } = ctx;
  const { e, fingerprint } = p;
  const base = { sourceEventId: e.sourceEventId, fingerprint };
  const alert = e.source === 'grafana' || e.source === 'alertmanager';
  // Received again: its key is kept alive (retention goes by the last time it came). An
  // alert's firing event again means it fires (again): its ticket is no longer resolved;
  // its resolution again, after such a repeat, resolves it again when nothing else fires.
  const duplicate = (): AcceptResult => {
    store.touchEvent(e.source, e.sourceEventId, batch.nowIso);
    if (alert && e.status === 'resolved') {
      const ticketId = store.ticketOfEvent(e.source, e.sourceEventId);
      if (typeof ticketId === 'number') batch.resolveLater(ticketId, e.lastSeen);
    } else if (alert) {
      store.clearAlertResolvedByEvent(e.source, e.sourceEventId, batch.nowIso);
    }
    return { ...base, status: 'duplicate', ticketId: null, state: null, reason: 'event already received' };
  };

  if (e.status === 'resolved') {
    if (store.eventExists(e.source, e.sourceEventId)) return duplicate();
    // The ticket is the one its firing event went to (the same key without ":resolved",
    // triggers/alerts.ts). Grafana resolves with other annotations than it fired with
    // (none, only __dashboardUid__, "[no value]" for the figure), so the resolution's own
    // fingerprint finds the alert's ticket only by chance: it is the fallback for an
    // alert whose firing was never received (or is past retention).
    // The alert's own key, or the newest of its recurrences after a fix (AFTER_FIX).
    const firing = alert && e.sourceEventId.endsWith(RESOLVED) ? store.firingAlertEvent(e.source, e.sourceEventId.slice(0, -RESOLVED.length), AFTER_FIX) : undefined;
    const byText = firing ? undefined : batch.ref(fingerprint);
    const target = firing ?? (byText ? { ticketId: byText.id, fingerprint, state: byText.state as TicketState } : undefined);
    // Stored as the resolution of the firing it ends (Store.alertStillFiring pairs them by key).
    const resolution = firing && e.sourceEventId !== `${firing.key}${RESOLVED}` ? { ...e, sourceEventId: `${firing.key}${RESOLVED}` } : e;
    store.insertEvent(resolution, target?.fingerprint ?? fingerprint, target?.ticketId ?? null, batch.nowIso);
    if (!target) return { ...base, status: 'resolved', ticketId: null, state: null, reason: 'resolved alert with no ticket' };
    // Worded when the batch is finished (Batch.resolveLater).
    const result: AcceptResult = { ...base, fingerprint: target.fingerprint, status: 'resolved', ticketId: target.ticketId, state: target.state, reason: 'alert resolved' };
    batch.resolveLater(target.ticketId, e.lastSeen, result);
    return result;
  }

  const ref = batch.ref(fingerprint);
  const state = ref?.state as TicketState | undefined;

  // The hot path (an alert storm on a known error): the insert doubles as the
  // idempotency check, so it comes before anything else is written.
  if (ref && state && OPEN_STATES.includes(state)) {
    if (store.insertEvent(e, fingerprint, ref.id, batch.nowIso) === null) {
      // Another pod's alert that kept firing through the fix this ticket is the regression
      // of: its key is the fixed ticket's, and its re-sends are this ticket's from now on,
      // under the key per fix the first recurring alert got (below), once.
      const owner = alert && !e.sourceEventId.includes(AFTER_FIX) ? store.ticketOfEvent(e.source, e.sourceEventId) : null;
      if (typeof owner === 'number' && owner !== ref.id && store.getTicketRow(ref.id)?.regression_of === owner) {
        duplicate();
        return acceptOne(ctx, batch, { ...p, e: { ...e, sourceEventId: `${e.sourceEventId}${AFTER_FIX}${owner}` } }, opts);
      }
      // An alert held in a cascade that still fires past the grace period after its head's
      // fix went live (regressed since or not): the fix did not stop it, it recurs
      // (Intake.decide lets it go), once per fix, as a fixed ticket's alert does below.
      if (alert && state === 'deferred' && !e.sourceEventId.includes(AFTER_FIX)) {
        const headId = store.cascadeHeadOf(ref.id);
        const head = headId === null ? undefined : store.getTicketRow(headId);
        if (head && (FIXED_STATES.includes(head.state as TicketState) || head.state === 'regressed') && pastGrace(config, head, e)) {
          duplicate();
          return acceptOne(ctx, batch, { ...p, e: { ...e, sourceEventId: `${e.sourceEventId}${AFTER_FIX}${head.id}` } }, opts);
        }
      }
      return duplicate();
    }
    // A person's report settling is one held for its thread (any other is triaged at once):
    // Intake.threadRead decides it, or its hold's end; what joins it meanwhile waits too.
    const held = state === 'settling' && ref.human === 1;
    batch.occur(ref.id, e, state === 'settling' && !held ? nextDeadline(config, batch.now, ref) : null, state === 'queued');
    if (e.human) {
      store.addReporter(ref.id, e.reporter);
      store.audit(ref.id, actorOf(e), 'merged-report', e.title);
    }
    if (state === 'settling' && e.human && !held) {
      const d = ctx.decide(ref.id, batch);
      batch.forget(fingerprint);
      return { ...base, status: 'merged', ticketId: ref.id, state: d.state, reason: d.reason };
    }
    if (state === 'deferred') {
      // Worded when the batch is finished (Batch.decideLater).
      const result: AcceptResult = { ...base, status: 'merged', ticketId: ref.id, state, reason: ref.triage_reason };
      batch.decideLater(ref.id, fingerprint, result);
      return result;
    }
    return { ...base, status: 'merged', ticketId: ref.id, state, reason: ref.triage_reason };
  }

  if (store.eventExists(e.source, e.sourceEventId)) {
    // Alertmanager and Grafana send a firing alert again (their repeat interval) under the
    // key it first had: a duplicate, unless its ticket was fixed since and it still fires
    // past the grace period. Then the fix did not stop it: it recurs, under a key of its own
    // per fix (so once per fix).
    if (!alert || !ref || !state || !FIXED_STATES.includes(state) || !pastGrace(config, ref, e)) return duplicate();
    duplicate();
    return acceptOne(ctx, batch, { ...p, e: { ...e, sourceEventId: `${e.sourceEventId}${AFTER_FIX}${ref.id}` } }, opts);
  }

  let regressionOf: number | null = null;
  // Pushed with no time: its fix is a pull request not merged yet (dispatcher/pr-watch.ts).
  const awaitingMerge = ref !== null && state === 'pushed' && !ref.pushed_at;
  if (ref && state && FIXED_STATES.includes(state) && (ref.pushed_at || awaitingMerge)) {
    const pushedMs = ref.pushed_at ? Date.parse(ref.pushed_at) : batch.now.getTime();
    if (awaitingMerge || !pastGrace(config, ref, e)) {
      // Still the old code (deploy lag, or a fix not merged yet): count it against the fix, open nothing.
      if (store.insertEvent(e, fingerprint, ref.id, batch.nowIso) === null) return duplicate();
      batch.occur(ref.id, e, null);
      const reason = awaitingMerge ? 'seen while its fix waits in a pull request not merged yet' : 'seen within the grace period after the fix';
      if (e.human) {
        // A person who reports it now hears of the fix, as its other reporters did.
        store.addReporter(ref.id, e.reporter);
        store.audit(ref.id, actorOf(e), 'merged-report', e.title);
        return { ...base, status: 'merged', ticketId: ref.id, state, reason, ...(e.reporter ? { joinedFixed: true as const } : {}) };
      }
      return { ...base, status: 'merged', ticketId: ref.id, state, reason };
    }
    if (batch.now.getTime() - pushedMs <= config.triage.regressionWindowDays * 86_400_000) regressionOf = ref.id;
  }

  if (regressionOf === null && !e.human && ref && (state === 'dropped' || state === 'failed')) {
    // Known and already decided (ignored, or the bot gave up): count it, reopen nothing.
    store.insertEvent(e, fingerprint, ref.id, batch.nowIso);
    batch.occur(ref.id, e, null);
    return { ...base, status: 'merged', ticketId: ref.id, state, reason: ref.triage_reason };
  }

  // A Slack report's title is its message's first line: classified once, not twice ("thanks!"
  // twice over read as a bug, the acknowledgement rule being for one line).
  const head = e.title.replace(/…$/, '');
  const text = head && e.message.startsWith(head) ? e.message : `${e.title}\n${e.message}`;
  const cls = e.kind === 'report' ? (opts.classifications?.get(e.sourceEventId) ?? classifyText(text)) : undefined;
  // A mention that quotes no error ("thanks!" or "still broken?" under the fixed thread)
  // says nothing of the error coming back: the fix stands, and the new ticket is its own.
  if (p.method === 'report-thread') regressionOf = null;
  const settleMs = config.intake.settleSeconds * 1000;
  const holdMs = e.human && opts.holdSeconds ? Math.min(opts.holdSeconds, MAX_HOLD_SECONDS) * 1000 : 0;
  const settleNow = !holdMs && (e.human || settleMs === 0);
  const ticketId = store.insertTicket({
    fingerprint,
    fingerprintJson: p.fpJson,
    event: e,
    state: 'settling',
    settleDeadline: settleNow ? batch.nowIso : new Date(batch.now.getTime() + (holdMs || settleMs)).toISOString(),
    settleCap: new Date(batch.now.getTime() + (holdMs || config.intake.settleCapSeconds * 1000)).toISOString(),
    regressionOf,
    classification: (cls?.classification ?? null) as Classification | null,
    classifyReason: cls?.reason ?? null,
  });
  batch.forget(fingerprint);
  store.insertEvent(e, fingerprint, ticketId, batch.nowIso);
  if (holdMs && opts.holdNote) store.holdReport(ticketId, opts.holdNote.source, opts.holdNote.note);
  store.audit(ticketId, actorOf(e), 'created', `${e.source}: ${e.title}`);
  if (regressionOf !== null) {
    store.setState(regressionOf, 'regressed');
    store.audit(regressionOf, 'intake', 'regressed', `recurred as ticket ${ticketId}`);
    store.audit(ticketId, 'intake', 'regression', `regression of ticket ${regressionOf}`);
  }
  const status = regressionOf !== null ? 'regression' : 'created';
  if (!settleNow) return { ...base, status, ticketId, state: 'settling', reason: null };
  const d = ctx.decide(ticketId, batch);
  return { ...base, status, ticketId, state: d.state, reason: d.reason };
}

const RESOLVED = ':resolved';
/** The key of an alert that still fires after its ticket's fix: `<its key>:after-fix-<ticket>`. */
const AFTER_FIX = ':after-fix-';

/** Seen after the fix's grace period (the old code's deploy lag) was over. */
function pastGrace(config: BugbotConfig, ref: TicketRef, e: TriggerEvent): boolean {
  return ref.pushed_at !== null && Date.parse(e.lastSeen) > Date.parse(ref.pushed_at) + config.triage.regressionGraceSeconds * 1000;
}

/** A settling ticket's new deadline: now + settle, never past its cap. */
function nextDeadline(config: BugbotConfig, now: Date, t: TicketRef): string {
  const next = now.getTime() + config.intake.settleSeconds * 1000;
  const cap = t.settle_cap ? Date.parse(t.settle_cap) : next;
  // No window sets a cap further ahead than this: one that lies beyond was set before the
  // wall clock was stepped back (NTP, a resumed VM), and an error recurring since would hold
  // the ticket for the step's length as well. Its window has been open since before the
  // step: it is over (as Intake.settleDue takes a deadline beyond any window).
  if (cap > now.getTime() + (Math.max(config.intake.settleCapSeconds, MAX_HOLD_SECONDS) + 5) * 1000) return now.toISOString();
  return new Date(Math.min(next, cap)).toISOString();
}

export function actorOf(e: TriggerEvent): string {
  return e.reporter ? `${e.reporter.kind}:${e.reporter.id}` : e.source;
}
