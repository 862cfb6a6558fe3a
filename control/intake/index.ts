/**
 * Intake: TriggerEvents in, tickets out. Events are redacted and fingerprinted
 * outside the transaction, then placed (accept.ts) in one IMMEDIATE transaction per
 * batch. The settle scheduler (settle.ts) triages tickets whose window has closed.
 */
import type { BugbotConfig } from '../config.ts';
import type { Store, TicketRow } from '../queue/store.ts';
import { classifyText } from './classify.ts';
import { FIXED_STATES, OPEN_STATES, severityRank, type Classification, type Severity, type TicketState, type TriggerEvent } from '../types.ts';
import { acceptOne, Batch, MAX_HOLD_SECONDS, ReplayError, type AcceptOptions, type AcceptResult, type Prepared } from './accept.ts';
import { fingerprintEvent } from './fingerprint.ts';
import { redactEvent } from './redact-event.ts';
import type { Redactor } from '../../lib/redact.ts';
import { createTriage, priorityOf, type Triage } from './triage.ts';
import type { IntakeWriter } from './writer.ts';

export type { AcceptOptions, AcceptResult, AcceptStatus, Nonce } from './accept.ts';
export { ReplayError } from './accept.ts';

export interface IntakeDeps {
  store: Store;
  config: BugbotConfig;
  redactor: Redactor;
}

/** States whose ticket triage (re)decides: a claim or its release goes back through it. */
const TRIAGED_STATES: readonly TicketState[] = ['settling', 'queued', 'deferred'];
/** A cascade's head in these is still to be worked on, or under way: what joins it waits for it. */
const CASCADE_HEAD_STATES: readonly string[] = ['settling', 'queued', 'running', 'awaiting_approval'];

const MAX_BATCH = 256;
/** How far an event's time may lie from this clock: back (an old log read late), ahead (skew). */
const MAX_AGE_MS = 366 * 86_400_000;
const MAX_AHEAD_MS = 5 * 60_000;

function saneTime(iso: string, now: number): string {
  const t = Date.parse(iso);
  return new Date(Number.isFinite(t) && t >= now - MAX_AGE_MS && t <= now + MAX_AHEAD_MS ? t : now).toISOString();
}
const MAX_BATCH_DELAY_MS = 2;

interface Queued {
  prepared: Prepared[];
  opts: AcceptOptions;
  resolve: (r: AcceptResult[]) => void;
  reject: (err: unknown) => void;
}

export class Intake {
  readonly triage: Triage;
  private readonly store: Store;
  private readonly cfg: BugbotConfig;
  private readonly redactor: Redactor;
  private pending: Queued[] = [];
  private flushScheduled = false;
  private batchStarted = 0;
  private lastSize = 0;
  private writerThread: IntakeWriter | null = null;

  constructor(deps: IntakeDeps) {
    this.store = deps.store;
    this.cfg = deps.config;
    this.redactor = deps.redactor;
    this.triage = createTriage(deps.config.triage);
  }

  /** Redaction as intake applies it to every stored text (for text on its way elsewhere first). */
  redactText(text: string): string {
    return this.redactor.text(text);
  }

  /**
   * Commit acceptQueued's requests on a writer thread (writer.ts) with its own connection
   * to this store's file; everything else intake does stays on this thread.
   */
  useWriter(writer: IntakeWriter): void {
    this.writerThread = writer;
  }

  /** The writer thread, when acceptQueued uses one. */
  get writer(): IntakeWriter | null {
    return this.writerThread;
  }

  private joinedFixed?: (ticketId: number) => void;

  /**
   * Called (after the commit) for each report by a person that joined a ticket whose fix
   * is already out (within the regression grace period): the control plane tells them.
   */
  whenReporterJoinsFixed(fn: (ticketId: number) => void): void {
    this.joinedFixed = fn;
  }

  private told(results: AcceptResult[]): AcceptResult[] {
    for (const r of results) if (r.joinedFixed && r.ticketId !== null) this.joinedFixed?.(r.ticketId);
    return results;
  }

  /** Store a batch durably, now. When this returns, every event in it is committed. */
  accept(events: TriggerEvent[], opts: AcceptOptions = {}): AcceptResult[] {
    const [result] = this.commit([{ prepared: this.prepare(events), opts }]);
    if (result instanceof ReplayError) throw result;
    return this.told(result!);
  }

  /**
   * Group commit for HTTP handlers: batches arriving in the same turn of the event
   * loop share one transaction (one WAL write); on the writer thread when there is one
   * (its batches: what arrived while it committed the last). Resolves only after the
   * commit, so the caller still acknowledges nothing that is not durable.
   */
  acceptQueued(events: TriggerEvent[], opts: AcceptOptions = {}): Promise<AcceptResult[]> {
    if (this.writerThread) return this.writerThread.submit(events, opts).then((r) => this.told(r));
    const prepared = this.prepare(events);
    return new Promise<AcceptResult[]>((resolve, reject) => {
      this.pending.push({ prepared, opts, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        this.batchStarted = performance.now();
        this.lastSize = 0;
        setImmediate(() => this.maybeFlush());
      }
    }).then((r) => this.told(r));
  }

  /**
   * Commit now, or wait one more turn of the event loop while more requests keep
   * arriving (an alert storm): a commit costs about as much as tens of events, so
   * bigger batches mean more events per second. Bounded in size and delay.
   */
  private maybeFlush(): void {
    const size = this.pending.length;
    const growing = size > this.lastSize;
    this.lastSize = size;
    if (growing && size < MAX_BATCH && performance.now() - this.batchStarted < MAX_BATCH_DELAY_MS) {
      setImmediate(() => this.maybeFlush());
      return;
    }
    this.flush();
  }

  private flush(): void {
    const queued = this.pending;
    this.pending = [];
    this.flushScheduled = false;
    let results: Array<AcceptResult[] | ReplayError>;
    try {
      results = this.commit(queued);
    } catch (err) {
      for (const q of queued) q.reject(err);
      return;
    }
    queued.forEach((q, i) => {
      const r = results[i]!;
      if (r instanceof ReplayError) q.reject(r);
      else q.resolve(r);
    });
  }

  /**
   * Several requests' events in one transaction (the writer thread's group commit): one
   * result list per request, or the ReplayError that refused it.
   */
  acceptMany(items: Array<{ events: TriggerEvent[]; opts: AcceptOptions }>): Array<AcceptResult[] | ReplayError> {
    return this.commit(items.map((it) => ({ prepared: this.prepare(it.events), opts: it.opts })));
  }

  private commit(items: Array<{ prepared: Prepared[]; opts: AcceptOptions }>): Array<AcceptResult[] | ReplayError> {
    const ctx = { store: this.store, config: this.cfg, decide: (id: number, batch: Batch) => this.decide(id, batch) };
    return this.store.tx(() => {
      const batch = new Batch(this.store, (id) => this.followGrowth(id));
      const out = items.map((it) => {
        const n = it.opts.nonce;
        if (n && !this.store.useNonce(n.scope, n.value, n.keepSeconds)) return new ReplayError(n);
        return it.prepared.map((p) => acceptOne(ctx, batch, this.inThread(p), it.opts));
      });
      batch.finish((id, b) => this.decide(id, b));
      return out;
    });
  }

  private prepare(events: TriggerEvent[]): Prepared[] {
    const now = this.store.now().getTime();
    return events.map((raw) => {
      const e = redactEvent(this.redactor, raw);
      // One format for every stored time (they are compared as strings), and none absurd:
      // a time that cannot be read, is years old or lies ahead of this clock becomes now.
      e.lastSeen = saneTime(e.lastSeen, now);
      e.firstSeen = saneTime(e.firstSeen, now);
      if (e.firstSeen > e.lastSeen) e.firstSeen = e.lastSeen;
      const fp = fingerprintEvent(e, { frames: this.cfg.intake.stackFrames });
      return { e, fingerprint: fp.fingerprint, fpJson: JSON.stringify(fp.parts), method: fp.parts.method };
    });
  }

  /**
   * The event with its thread's fingerprint where it has one (threadFingerprint), looked
   * up inside the transaction just before the event is stored: an earlier mention of the
   * same thread in the same batch has made its ticket by then.
   */
  private inThread(p: Prepared): Prepared {
    const fingerprint = this.threadFingerprint(p.e, p.method ?? '');
    return fingerprint && fingerprint !== p.fingerprint ? { ...p, fingerprint } : p;
  }

  /**
   * A later Slack mention in a thread that already reported a ticket is that report again
   * when either side knows no error: "any update?" under a mention that quoted the error,
   * or the error pasted under "can you fix this?". It joins the ticket while it is open,
   * and a fixed one within the grace period (its reporter is told of the fix); after that,
   * the mention is a report of its own (quoting no error, it is no recurrence of one, and
   * it must not take the error's fingerprint over from the fixed ticket). Two errors in one
   * thread stay two tickets.
   */
  private threadFingerprint(e: TriggerEvent, method: string): string | undefined {
    if (e.source !== 'slack' || e.kind !== 'report' || !e.reporter?.thread) return undefined;
    const t = this.store.ticketOfThread(e.reporter.kind, e.reporter.thread);
    if (!t || (method !== 'report-thread' && t.method !== 'report-thread')) return undefined;
    if (OPEN_STATES.includes(t.state)) return t.fingerprint;
    // Pushed with no time: a pull request not merged yet (pr-watch.ts), the fix not live.
    const graceEnds = t.state === 'pushed' && !t.pushedAt ? Infinity : t.pushedAt ? Date.parse(t.pushedAt) + this.cfg.triage.regressionGraceSeconds * 1000 : -Infinity;
    return Date.parse(e.lastSeen) <= graceEnds ? t.fingerprint : undefined;
  }

  /**
   * A queued ticket gained occurrences or a person's report: its severity (never lowered)
   * and priority follow its count and reporters, so the dispatcher takes the worst first.
   * The decision to act stands; a raise goes to its history.
   */
  private followGrowth(ticketId: number): void {
    const t = this.store.getTicketRow(ticketId);
    if (!t || t.state !== 'queued') return;
    const now = this.triage.severity({
      kind: t.kind as TriggerEvent['kind'],
      title: t.title,
      message: t.message,
      labels: JSON.parse(t.labels_json) as Record<string, string>,
      count: t.count,
    });
    const raised = severityRank(now.severity) > severityRank(t.severity as Severity);
    const severity = raised ? now.severity : (t.severity as Severity);
    const priority = priorityOf(severity, t.count, t.human === 1);
    if (!raised && priority === t.priority) return;
    this.store.setSeverity(ticketId, severity, priority);
    if (raised) this.store.audit(ticketId, 'triage', 'severity-raised', `${t.severity} → ${severity} (${now.why})`);
  }

  /** Run the triage gate on a ticket (inside the caller's transaction) and store the decision. */
  decide(ticketId: number, batch?: Batch): { state: TicketState; reason: string } {
    batch?.settle(ticketId);
    const t = this.store.getTicketRow(ticketId);
    if (!t) throw new Error(`ticket ${ticketId} vanished during triage`);
    const { head, linked } = this.cascadeHead(t);
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
      classifyReason: t.classify_reason,
      // A head is as urgent as the worst error held in its cascade.
      atLeast: head ? undefined : this.cascadeSeverity(t.id),
    });
    // An error to act on, of a cascade whose head is to be worked on: it waits for that fix.
    const held = d.decision === 'queue' && head ? head : undefined;
    const decision = held ? 'defer' : d.decision;
    const state: TicketState = decision === 'queue' ? 'queued' : decision === 'drop' ? 'dropped' : 'deferred';
    // A report that reads as something else is not called a bug: claimed, it is deferred, not dropped.
    const reason = held
      ? cascadeReason(t, held)
      : t.classification === 'bug' && t.classify_reason && d.decision !== 'drop'
        ? `${d.reason}; report reads as a bug (${t.classify_reason})`
        : d.reason;
    this.store.setTriage(ticketId, state, d.severity, d.priority, decision, reason);
    if (held) {
      // What it held comes along (setCascadeHead), worst severity and all.
      const brought = linked !== held.id ? this.cascadeSeverity(ticketId) : undefined;
      const moved = linked !== held.id ? this.store.cascadeMembers(ticketId, Number.MAX_SAFE_INTEGER) : [];
      if (linked !== held.id) this.store.setCascadeHead(ticketId, held.id);
      // Their reasons name the ticket they are held in now.
      for (const m of moved) {
        const row = m.state === 'deferred' ? this.store.getTicketRow(m.id) : undefined;
        if (row) this.store.setTriage(m.id, 'deferred', row.severity as Severity, row.priority, 'defer', cascadeReason(row, held));
      }
      this.raiseForCascade(held, d.severity, `ticket ${ticketId}, held in its cascade, is ${d.severity}`);
      if (brought) this.raiseForCascade(this.store.getTicketRow(held.id) ?? held, brought.severity, brought.why);
    } else if (linked !== null) this.store.setCascadeHead(ticketId, null);
    // A deferred ticket is decided again at every occurrence (a claimed one for as long as
    // the claim holds): the trail records a decision, not each time it was made again.
    if (state !== t.state || decision !== t.triage_decision || d.severity !== t.severity || (held?.id ?? null) !== linked) this.store.audit(ticketId, 'triage', decision, reason);
    return { state, reason };
  }

  /**
   * The ticket whose cascade `t` is held in (intake.cascadeSeconds), when `t` is an error a
   * machine reported for a service: the one it is held in while that one is worked on or
   * its fix is not live yet (or `t` has not recurred since it went live), else the earliest
   * ticket of the same service whose errors began at most cascadeSeconds before `t`'s and
   * that is to be worked on or under way. `linked`: the ticket it was held in before.
   */
  private cascadeHead(t: TicketRow): { head: TicketRow | undefined; linked: number | null } {
    const linked = this.store.cascadeHeadOf(t.id);
    const window = this.cfg.intake.cascadeSeconds;
    if (window === 0 || t.human === 1 || t.kind === 'report' || t.service === null) return { head: undefined, linked };
    const before = linked === null ? undefined : this.store.getTicketRow(linked);
    if (before && this.cascadeHolds(before, t)) return { head: before, linked };
    return { head: this.store.cascadeHeadFor(t, window), linked };
  }

  private cascadeHolds(head: TicketRow, t: TicketRow): boolean {
    const fixed = FIXED_STATES.includes(head.state as TicketState);
    // Its fix went live (and may have regressed since): what recurs past the grace period
    // was not cured by it, whoever claimed the head (a claim outlives the run it was made during).
    if ((fixed || head.state === 'regressed') && head.pushed_at) return Date.parse(t.last_seen) <= Date.parse(head.pushed_at) + this.cfg.triage.regressionGraceSeconds * 1000;
    // A person on the head is on its cascade too: the bot keeps off what it holds.
    if (CASCADE_HEAD_STATES.includes(head.state) || head.claimed_by !== null) return true;
    // Pushed with no time: a pull request not merged yet (pr-watch.ts), the fix not live.
    return fixed;
  }

  /** The worst severity of the tickets held in `headId`'s cascade, and which. */
  private cascadeSeverity(headId: number): { severity: Severity; why: string } | undefined {
    const m = this.store.cascadeWorst(headId);
    return m && { severity: m.severity as Severity, why: `ticket ${m.id}, held in its cascade, is ${m.severity}` };
  }

  /** A queued head takes on the severity of an error held in its cascade when it is worse. */
  private raiseForCascade(head: TicketRow, severity: Severity, why: string): void {
    if (head.state !== 'queued' || severityRank(severity) <= severityRank(head.severity as Severity)) return;
    this.store.setSeverity(head.id, severity, priorityOf(severity, head.count, head.human === 1));
    this.store.audit(head.id, 'triage', 'severity-raised', `${head.severity} → ${severity} (${why})`);
  }

  /** Triage every ticket whose settle window has closed. Returns how many were decided. */
  settleDue(): number {
    // Tickets held in a cascade whose head ended unfixed are decided on their own.
    let n = this.releaseCascades();
    // No window sets a deadline further ahead than this: one beyond it was set before the
    // wall clock was stepped back (NTP, a resumed VM), and would otherwise wait out the step.
    const horizon = () => new Date(this.store.now().getTime() + (Math.max(this.cfg.intake.settleSeconds, MAX_HOLD_SECONDS) + 5) * 1000).toISOString();
    for (;;) {
      const due = this.store.dueSettling(this.store.nowIso(), 100, horizon());
      if (!due.length) return n;
      let decided = 0;
      this.store.tx(() => {
        const now = this.store.nowIso();
        const beyond = horizon();
        for (const t of due) {
          const fresh = this.store.getTicketRow(t.id);
          // Read again inside the transaction: the writer thread (another connection) may
          // have committed an occurrence meanwhile, which moved the deadline.
          if (fresh?.state === 'settling' && fresh.settle_deadline !== null && (fresh.settle_deadline <= now || fresh.settle_deadline > beyond)) {
            this.decide(t.id);
            decided++;
          }
        }
      });
      n += decided;
      // Every one of them had its deadline moved: they are not due now.
      if (!decided) return n;
    }
  }

  private releaseCascades(): number {
    let n = 0;
    // Onwards from the last one seen: each is decided once a pass, even one that stays held.
    for (let after = 0; ; ) {
      const released = this.store.cascadesReleased(100, after);
      if (!released.length) return n;
      after = released[released.length - 1]!;
      this.store.tx(() => {
        // Read again inside the transaction: another connection (the writer thread, a
        // `bugbot cancel`) may have decided or dropped it since the scan.
        for (const id of released) {
          if (this.store.getTicketRow(id)?.state !== 'deferred') continue;
          this.decide(id);
          n++;
        }
      });
    }
  }

  /**
   * A held report's fuller account has been read (a Slack mention's whole thread; none
   * when it could not be): its text becomes that, redacted, classified again on it (a
   * question under a stack trace is a bug report), and the report is triaged now if it
   * still waits. Its fingerprint stays as accepted. Returns the ticket's state and reason.
   */
  threadRead(ticketId: number, text?: string): { state: TicketState; reason: string | null } {
    return this.store.tx(() => {
      if (text !== undefined) {
        const redacted = this.redactor.text(text);
        this.store.updateTicketText(ticketId, redacted);
        // Classified again only while it waits: a decided report keeps what it was decided on.
        if (this.store.getTicketRow(ticketId)?.state === 'settling') {
          const cls = classifyText(redacted);
          this.store.setClassification(ticketId, cls.classification, cls.reason);
        }
        this.store.audit(ticketId, 'intake', 'report-enriched', `text replaced (${redacted.length} chars)`);
      }
      const t = this.store.getTicketRow(ticketId);
      if (!t) throw new Error(`no ticket ${ticketId}`);
      if (t.state === 'settling') return this.decide(ticketId);
      return { state: t.state as TicketState, reason: t.triage_reason };
    });
  }

  /**
   * A person takes a ticket (the bot keeps off it) or gives it back (`release`: re-triaged).
   * `by` is who did it, for the history (and who holds it, when taken); `forced` when it
   * was someone else's claim.
   */
  claim(ticketId: number, by: string, opts: { release?: boolean; forced?: boolean } = {}): { state: TicketState; reason: string } {
    return this.store.tx(() => {
      const t = this.store.getTicketRow(ticketId);
      if (!t) throw new Error(`no ticket ${ticketId}`);
      this.store.setClaimedBy(ticketId, opts.release ? null : by);
      const over = opts.forced && t.claimed_by && t.claimed_by !== by ? `over ${t.claimed_by}'s claim` : undefined;
      this.store.audit(ticketId, by, opts.release ? 'unclaimed' : 'claimed-by-person', over);
      // Only tickets triage still decides go back through it: one running, awaiting
      // approval or needing a person keeps its state (a claim of those is noted, not acted on).
      if (!TRIAGED_STATES.includes(t.state as TicketState)) {
        return { state: t.state as TicketState, reason: t.triage_reason ?? '' };
      }
      return this.decide(ticketId);
    });
  }
}

function cascadeReason(t: TicketRow, head: TicketRow): string {
  const after = Math.max(0, Math.round((Date.parse(t.first_seen) - Date.parse(head.first_seen)) / 1000));
  return `held in the cascade of ticket ${head.id} (its errors in ${t.service} began ${after} s before this one's): one fix run for the cascade; decided on its own if it recurs once that fix is live, or if ticket ${head.id} ends unfixed`;
}
