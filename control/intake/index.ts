/**
 * Intake: TriggerEvents in, tickets out. One transaction per accepted batch:
 * redact → fingerprint → idempotency check → join an open ticket (dedupe), open a
 * regression of a fixed one, or open a new ticket in its settle window. The settle
 * scheduler (settle.ts) triages tickets whose window has closed.
 */
import type { BugbotConfig } from '../config.ts';
import type { Store, TicketRef } from '../queue/store.ts';
import type { Classification, TicketState, TriggerEvent } from '../types.ts';
import { FIXED_STATES, OPEN_STATES } from '../types.ts';
import { classifyText, type ClassifyResult } from './classify.ts';
import { fingerprintEvent } from './fingerprint.ts';
import type { Redactor } from './redact.ts';
import { createTriage, type Triage } from './triage.ts';

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
}

export interface IntakeDeps {
  store: Store;
  config: BugbotConfig;
  redactor: Redactor;
}

interface Prepared {
  e: TriggerEvent;
  fingerprint: string;
  fpJson: string;
}

export interface AcceptOptions {
  /** Classifications decided before accept (e.g. by the model classifier), by sourceEventId. */
  classifications?: Map<string, ClassifyResult>;
}

export class Intake {
  readonly triage: Triage;
  private readonly store: Store;
  private readonly cfg: BugbotConfig;
  private readonly redactor: Redactor;

  constructor(deps: IntakeDeps) {
    this.store = deps.store;
    this.cfg = deps.config;
    this.redactor = deps.redactor;
    this.triage = createTriage(deps.config.triage);
  }

  /** Store a batch durably, now. When this returns, every event in it is committed. */
  accept(events: TriggerEvent[], opts: AcceptOptions = {}): AcceptResult[] {
    const prepared = this.prepare(events);
    return this.store.tx(() => prepared.map((p) => this.acceptOne(p, opts)));
  }

  /**
   * Group commit for HTTP handlers: batches arriving in the same turn of the event
   * loop share one transaction (one WAL write). Resolves only after the commit, so
   * the caller still acknowledges nothing that is not durable.
   */
  acceptQueued(events: TriggerEvent[], opts: AcceptOptions = {}): Promise<AcceptResult[]> {
    const prepared = this.prepare(events);
    return new Promise((resolve, reject) => {
      this.pending.push({ prepared, opts, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private pending: Array<{
    prepared: Prepared[];
    opts: AcceptOptions;
    resolve: (r: AcceptResult[]) => void;
    reject: (err: unknown) => void;
  }> = [];
  private flushScheduled = false;

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.flushScheduled = false;
    let results: AcceptResult[][];
    try {
      results = this.store.tx(() => batch.map((b) => b.prepared.map((p) => this.acceptOne(p, b.opts))));
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    batch.forEach((b, i) => b.resolve(results[i]!));
  }

  private prepare(events: TriggerEvent[]): Prepared[] {
    return events.map((raw) => {
      const e = this.redactor.event(raw);
      const fp = fingerprintEvent(e, { frames: this.cfg.intake.stackFrames });
      return { e, fingerprint: fp.fingerprint, fpJson: JSON.stringify(fp.parts) };
    });
  }

  private acceptOne({ e, fingerprint, fpJson }: Prepared, opts: AcceptOptions): AcceptResult {
    const store = this.store;
    const base = { sourceEventId: e.sourceEventId, fingerprint };
    const duplicate: AcceptResult = { ...base, status: 'duplicate', ticketId: null, state: null, reason: 'event already received' };
    const now = store.now();
    const nowIso = now.toISOString();
    const settleMs = this.cfg.intake.settleSeconds * 1000;

    // The hot path (an alert storm on a known error): the insert doubles as the
    // idempotency check, so it comes before anything else is written.
    const open = e.status === 'resolved' ? undefined : store.findTicketRef(fingerprint, OPEN_STATES);
    if (open) {
      if (store.insertEvent(e, fingerprint, open.id) === null) return duplicate;
      const deadline = open.state === 'settling' ? this.nextDeadline(now, open) : null;
      store.addOccurrence(open.id, e, deadline);
      if (e.human) {
        store.addReporter(open.id, e.reporter);
        store.audit(open.id, actorOf(e), 'merged-report', e.title);
      }
      let state = open.state as TicketState;
      let reason: string | null = open.triage_reason;
      if (state === 'deferred' || (state === 'settling' && e.human)) {
        ({ state, reason } = this.decide(open.id));
      }
      return { ...base, status: 'merged', ticketId: open.id, state, reason };
    }

    if (store.eventExists(e.source, e.sourceEventId)) return duplicate;

    if (e.status === 'resolved') {
      const ticketId = store.markAlertResolved(fingerprint, e.lastSeen);
      store.insertEvent(e, fingerprint, ticketId);
      return { ...base, status: 'resolved', ticketId, state: null, reason: ticketId ? 'alert resolved' : 'resolved alert with no ticket' };
    }

    const fixed = store.findTicketRef(fingerprint, FIXED_STATES);
    let regressionOf: number | null = null;
    if (fixed && fixed.pushed_at) {
      const pushedMs = Date.parse(fixed.pushed_at);
      const seenMs = Date.parse(e.lastSeen);
      const windowMs = this.cfg.triage.regressionWindowDays * 86_400_000;
      if (seenMs <= pushedMs + this.cfg.triage.regressionGraceSeconds * 1000) {
        // Still the old code (deploy lag): count it against the fix, open nothing.
        store.insertEvent(e, fingerprint, fixed.id);
        store.addOccurrence(fixed.id, e, null);
        return { ...base, status: 'merged', ticketId: fixed.id, state: fixed.state as TicketState, reason: 'seen within the grace period after the fix' };
      }
      if (now.getTime() - pushedMs <= windowMs) regressionOf = fixed.id;
    }

    const closed = regressionOf === null && !e.human ? store.findTicketRef(fingerprint, ['dropped', 'failed']) : undefined;
    if (closed) {
      // Known and already decided (ignored, or the bot gave up): count it, reopen nothing.
      store.insertEvent(e, fingerprint, closed.id);
      store.addOccurrence(closed.id, e, null);
      return { ...base, status: 'merged', ticketId: closed.id, state: closed.state as TicketState, reason: closed.triage_reason };
    }

    const cls = e.kind === 'report' ? (opts.classifications?.get(e.sourceEventId) ?? classifyText(`${e.title}\n${e.message}`)) : undefined;
    const settleNow = e.human || settleMs === 0;
    const capIso = new Date(now.getTime() + this.cfg.intake.settleCapSeconds * 1000).toISOString();
    const ticketId = store.insertTicket({
      fingerprint,
      fingerprintJson: fpJson,
      event: e,
      state: 'settling',
      settleDeadline: settleNow ? nowIso : new Date(now.getTime() + settleMs).toISOString(),
      settleCap: capIso,
      regressionOf,
      classification: (cls?.classification ?? null) as Classification | null,
      classifyReason: cls?.reason ?? null,
    });
    store.insertEvent(e, fingerprint, ticketId);
    store.audit(ticketId, actorOf(e), 'created', `${e.source}: ${e.title}`);
    if (regressionOf !== null) {
      store.setState(regressionOf, 'regressed');
      store.audit(regressionOf, 'intake', 'regressed', `recurred as ticket ${ticketId}`);
      store.audit(ticketId, 'intake', 'regression', `regression of ticket ${regressionOf}`);
    }
    let state: TicketState = 'settling';
    let reason: string | null = null;
    if (settleNow) ({ state, reason } = this.decide(ticketId));
    return { ...base, status: regressionOf !== null ? 'regression' : 'created', ticketId, state, reason };
  }

  /** A settling ticket's new deadline: now + settle, never past its cap. */
  private nextDeadline(now: Date, t: TicketRef): string {
    const next = now.getTime() + this.cfg.intake.settleSeconds * 1000;
    const cap = t.settle_cap ? Date.parse(t.settle_cap) : next;
    return new Date(Math.min(next, cap)).toISOString();
  }

  /** Run the triage gate on a ticket (inside the caller's transaction) and store the decision. */
  decide(ticketId: number): { state: TicketState; reason: string } {
    const t = this.store.getTicketRow(ticketId);
    if (!t) throw new Error(`ticket ${ticketId} vanished during triage`);
    const d = this.triage.decide({
      kind: t.kind as TriggerEvent['kind'],
      service: t.service,
      title: t.title,
      message: t.message,
      labels: JSON.parse(t.labels_json) as Record<string, string>,
      count: t.count,
      human: t.human === 1,
      claimedBy: t.claimed_by,
      classification: t.classification as Classification | null,
    });
    const state: TicketState = d.decision === 'queue' ? 'queued' : d.decision === 'drop' ? 'dropped' : 'deferred';
    const reason = t.classification && t.classify_reason && d.decision !== 'drop' ? `${d.reason}; report reads as a bug (${t.classify_reason})` : d.reason;
    this.store.setTriage(ticketId, state, d.severity, d.priority, d.decision, reason);
    this.store.audit(ticketId, 'triage', d.decision, reason);
    return { state, reason };
  }

  /** Triage every ticket whose settle window has closed. Returns how many were decided. */
  settleDue(): number {
    let n = 0;
    for (;;) {
      const due = this.store.dueSettling(this.store.nowIso(), 100);
      if (!due.length) return n;
      this.store.tx(() => {
        for (const t of due) {
          const fresh = this.store.getTicketRow(t.id);
          if (fresh?.state === 'settling') {
            this.decide(t.id);
            n++;
          }
        }
      });
    }
  }

  /**
   * Replace a report's text with a fuller account of it (a Slack mention's whole
   * thread), redacted. Fingerprint and triage decision stay as accepted.
   */
  enrichReport(ticketId: number, text: string): void {
    const redacted = this.redactor.text(text);
    this.store.tx(() => {
      this.store.updateTicketText(ticketId, redacted);
      this.store.audit(ticketId, 'intake', 'report-enriched', `text replaced (${redacted.length} chars)`);
    });
  }

  /** A person takes a ticket (the bot keeps off it) or gives it back (re-triaged). */
  claim(ticketId: number, who: string | null): { state: TicketState; reason: string } {
    return this.store.tx(() => {
      const t = this.store.getTicketRow(ticketId);
      if (!t) throw new Error(`no ticket ${ticketId}`);
      this.store.setClaimedBy(ticketId, who);
      this.store.audit(ticketId, who ?? 'cli', who ? 'claimed-by-person' : 'unclaimed');
      if (!OPEN_STATES.includes(t.state as TicketState) || t.state === 'running') {
        return { state: t.state as TicketState, reason: t.triage_reason ?? '' };
      }
      return this.decide(ticketId);
    });
  }
}

function actorOf(e: TriggerEvent): string {
  return e.reporter ? `${e.reporter.kind}:${e.reporter.id}` : e.source;
}
