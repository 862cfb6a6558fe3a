/**
 * Runs and leases. A claim is one IMMEDIATE transaction: the highest-priority
 * queued ticket becomes `running` with a run row holding a lease. The worker
 * heartbeats; a lease that runs out (the worker or the control plane died) sends
 * the ticket back to `queued` with attempt + 1, or to `failed` past the limit.
 */
import { claimedReason, type TicketState } from '../types.ts';
import type { Store, TicketRow } from './store.ts';

export interface RunRow {
  id: number;
  ticket_id: number;
  attempt: number;
  worker_id: number;
  port: number | null;
  state: string;
  lease_until: string;
  heartbeat_at: string;
  pid: number | null;
  phase: string | null;
  branch: string | null;
  worktree: string | null;
  outcome: string | null;
  reason: string | null;
  started_at: string;
  finished_at: string | null;
  progress_json: string | null;
  /** When retention removed the run's folder (null: not yet). */
  folder_removed_at: string | null;
}

/**
 * What a run's end tells its reporters (control/notify's noticeForRun reads it): written
 * in the transaction that ends the run, cleared once the reporters' messages are in the
 * outbox (or, in approval mode, once the auto-approval rules have had their say). One
 * left set at start (a crash between the two) is acted on then: see pendingRunNotices.
 */
export interface RunNotice {
  run_id: number;
  state: string;
  reason: string;
  commit: string | null;
  branch: string | null;
  pushed_to: string | null;
  /** An approval that opened a pull request. */
  pr_url?: string | null;
}

export interface Claim {
  run: RunRow;
  ticket: TicketRow;
}

function leaseUntil(store: Store, leaseSeconds: number): string {
  return new Date(store.now().getTime() + leaseSeconds * 1000).toISOString();
}

/** Claim the next queued ticket for a worker, or undefined when the queue is empty. */
export function claimNext(store: Store, workerId: number, port: number | null, leaseSeconds: number): Claim | undefined {
  return store.tx(() => {
    const ticket = store
      .stmt(`SELECT * FROM tickets WHERE state = 'queued' AND claimed_by IS NULL ORDER BY priority DESC, id LIMIT 1`)
      .get() as TicketRow | undefined;
    if (!ticket) return undefined;
    const now = store.nowIso();
    const attempt = ticket.attempt + 1;
    store.stmt(`UPDATE tickets SET state = 'running', attempt = ?, updated_at = ? WHERE id = ?`).run(attempt, now, ticket.id);
    const r = store
      .stmt(
        `INSERT INTO runs (ticket_id, attempt, worker_id, port, state, lease_until, heartbeat_at, started_at)
         VALUES (?, ?, ?, ?, 'running', ?, ?, ?)`,
      )
      .run(ticket.id, attempt, workerId, port, leaseUntil(store, leaseSeconds), now, now);
    store.audit(ticket.id, `worker-${workerId}`, 'claimed', `attempt ${attempt}`);
    const run = store.stmt('SELECT * FROM runs WHERE id = ?').get(Number(r.lastInsertRowid)) as RunRow;
    return { run, ticket: { ...ticket, state: 'running', attempt } };
  });
}

/** Extend a live run's lease; false when the run is no longer running (cancelled, expired). */
export function heartbeat(store: Store, runId: number, leaseSeconds: number, phase?: string): boolean {
  const r = store
    .stmt(
      `UPDATE runs SET lease_until = ?, heartbeat_at = ?, phase = COALESCE(?, phase) WHERE id = ? AND state = 'running'`,
    )
    .run(leaseUntil(store, leaseSeconds), store.nowIso(), phase ?? null, runId);
  return r.changes === 1;
}

/** Record a running worker's live progress (phase, tokens and cost so far). */
export function setRunProgress(store: Store, runId: number, phase: string | null, progress: unknown): void {
  store.stmt('UPDATE runs SET phase = COALESCE(?, phase), progress_json = ? WHERE id = ?').run(phase, JSON.stringify(progress), runId);
}

export function setRunProcess(store: Store, runId: number, fields: { pid?: number; branch?: string; worktree?: string }): void {
  store
    .stmt('UPDATE runs SET pid = COALESCE(?, pid), branch = COALESCE(?, branch), worktree = COALESCE(?, worktree) WHERE id = ?')
    .run(fields.pid ?? null, fields.branch ?? null, fields.worktree ?? null, runId);
}

/**
 * Close a run and move its ticket to its next state, atomically. Returns what it did:
 * `finished` as asked; `cancelled` when the run had been cancelled (the cancel stands,
 * unless `overCancel`; the run's worker is over now); `none` when the run was no longer
 * running (reclaimed, finished before).
 */
export function finishRun(
  store: Store,
  runId: number,
  result: { ticketState: TicketState; outcome: string; reason: string; notice?: RunNotice },
  /**
   * overCancel: the run was cancelled after it had pushed: what it did stands over the
   * cancel. refund: a ticket going back to the queue gets this attempt back (the run said
   * nothing about it: the control plane stopped, the machine could not host it).
   */
  opts: { overCancel?: boolean; refund?: boolean } = {},
): 'finished' | 'cancelled' | 'none' {
  return store.tx(() => {
    const run = store.stmt('SELECT * FROM runs WHERE id = ?').get(runId) as RunRow | undefined;
    if (!run) return 'none';
    const now = store.nowIso();
    if (run.state === 'cancelled' && !opts.overCancel) {
      // The cancel stands (the ticket moved already); its worker has stopped now.
      store.stmt('UPDATE runs SET finished_at = COALESCE(finished_at, ?) WHERE id = ?').run(now, runId);
      return 'cancelled';
    }
    if (run.state !== 'running' && !(opts.overCancel && run.state === 'cancelled')) return 'none';
    store
      .stmt(`UPDATE runs SET state = 'finished', outcome = ?, reason = ?, finished_at = ?, notice = ? WHERE id = ?`)
      .run(result.outcome, result.reason, now, result.notice ? JSON.stringify(result.notice) : null, runId);
    const pushedAt = result.ticketState === 'pushed' ? now : null;
    store
      .stmt('UPDATE tickets SET state = ?, pushed_at = COALESCE(?, pushed_at), updated_at = ? WHERE id = ?')
      .run(result.ticketState, pushedAt, now, run.ticket_id);
    if (result.ticketState === 'queued' && opts.refund) store.stmt('UPDATE tickets SET attempt = MAX(attempt - 1, 0) WHERE id = ?').run(run.ticket_id);
    if (result.ticketState === 'queued') deferIfClaimed(store, run.ticket_id, now);
    store.audit(run.ticket_id, `worker-${run.worker_id}`, `run-${result.outcome}`, result.reason);
    return 'finished';
  });
}

/**
 * A ticket going back to the queue that a person claimed meanwhile is deferred instead,
 * as triage would decide it: the dispatcher never takes a claimed ticket, and `queued`
 * would say it waits for the bot when it waits for the claim's release.
 */
function deferIfClaimed(store: Store, ticketId: number, now: string): void {
  const t = store.getTicketRow(ticketId);
  if (t?.state !== 'queued' || !t.claimed_by) return;
  store.stmt(`UPDATE tickets SET state = 'deferred', triage_reason = ?, updated_at = ? WHERE id = ?`).run(claimedReason(t.claimed_by), now, ticketId);
}

/** Replace what a run's end has yet to tell (a better-worded reason); nothing once it was told. */
export function setRunNotice(store: Store, runId: number, notice: RunNotice): void {
  store.stmt('UPDATE runs SET notice = ? WHERE id = ? AND notice IS NOT NULL').run(JSON.stringify(notice), runId);
}

/** The run's reporters have been told (their messages are in the outbox) or need not be. */
export function clearRunNotice(store: Store, runId: number): void {
  store.stmt('UPDATE runs SET notice = NULL WHERE id = ? AND notice IS NOT NULL').run(runId);
}

/** Runs whose end has not been told yet (a crash came between the end and the telling), oldest first. */
export function pendingRunNotices(store: Store): Array<{ notice: RunNotice; ticketId: number }> {
  const rows = store.stmt('SELECT id, ticket_id, notice FROM runs WHERE notice IS NOT NULL ORDER BY id').all() as Array<{ id: number; ticket_id: number; notice: string }>;
  return rows.map((r) => ({ notice: JSON.parse(r.notice) as RunNotice, ticketId: r.ticket_id }));
}

/**
 * Return the tickets of dead runs to the queue. `onlyExpired` false treats every
 * running run as dead: used on start, when no worker of a previous process survives.
 * `keep`: runs known to be alive (the dispatcher's own workers), never reclaimed.
 */
export function reclaimRuns(
  store: Store,
  opts: { maxAttempts: number; onlyExpired: boolean; reason: string; keep?: ReadonlySet<number> },
): Array<{ run: RunRow; ticketState: TicketState }> {
  // Polled every few seconds: the write lock (which intake's writer wants) only when there is something to reclaim.
  if (opts.onlyExpired && !store.stmt(`SELECT 1 FROM runs WHERE state = 'running' AND lease_until < ? LIMIT 1`).get(store.nowIso())) return [];
  return store.tx(() => {
    const now = store.nowIso();
    const runs = (
      (opts.onlyExpired
        ? store.stmt(`SELECT * FROM runs WHERE state = 'running' AND lease_until < ?`).all(now)
        : store.stmt(`SELECT * FROM runs WHERE state = 'running'`).all()) as RunRow[]
    ).filter((r) => !opts.keep?.has(r.id));
    const out: Array<{ run: RunRow; ticketState: TicketState }> = [];
    for (const run of runs) {
      const ticketState: TicketState = run.attempt >= opts.maxAttempts ? 'failed' : 'queued';
      const reason = `${opts.reason} (attempt ${run.attempt} of ${opts.maxAttempts})`;
      // A ticket that failed for good is news for its reporters (the caller words it better: setRunNotice).
      const notice: RunNotice | null = ticketState === 'failed' ? { run_id: run.id, state: 'failed', reason, commit: null, branch: run.branch, pushed_to: null } : null;
      store
        .stmt(`UPDATE runs SET state = 'lost', outcome = 'failed', reason = ?, finished_at = ?, notice = ? WHERE id = ?`)
        .run(reason, now, notice ? JSON.stringify(notice) : null, run.id);
      store
        .stmt(`UPDATE tickets SET state = ?, updated_at = ? WHERE id = ? AND state = 'running'`)
        .run(ticketState, now, run.ticket_id);
      if (ticketState === 'queued') deferIfClaimed(store, run.ticket_id, now);
      store.audit(run.ticket_id, 'reconciler', ticketState === 'queued' ? 'requeued' : 'failed', reason);
      out.push({ run, ticketState });
    }
    return out;
  });
}

/**
 * Cancel a ticket. A running run is marked cancelled: its worker's next heartbeat
 * fails and the dispatcher stops it (from any process: the CLI needs no server). Until
 * its worker has stopped (finishRun, or the reconciler at the next start) the run keeps
 * no finished_at: see stoppingRuns. A ticket not yet running is dropped. Returns what
 * happened, or null if nothing could be.
 */
export function cancelTicket(store: Store, ticketId: number, by: string): { was: string; now: TicketState; refused?: string } | null {
  return store.tx(() => {
    const t = store.getTicketRow(ticketId);
    if (!t) return null;
    // A merge in flight finishes either way: saying "dropped" now would be untrue.
    const approving = store.stmt(`SELECT actor FROM approvals WHERE ticket_id = ? AND status = 'running'`).get(ticketId) as { actor: string } | undefined;
    if (approving) return { was: t.state, now: t.state as TicketState, refused: `ticket ${ticketId} is being approved by ${approving.actor} right now: nothing cancelled` };
    const now = store.nowIso();
    const reason = `cancelled by ${by}`;
    if (t.state === 'running') {
      store.stmt(`UPDATE runs SET state = 'cancelled', outcome = 'failed', reason = ? WHERE ticket_id = ? AND state = 'running'`).run(reason, ticketId);
      store.stmt(`UPDATE tickets SET state = 'failed', triage_reason = COALESCE(triage_reason, ''), updated_at = ? WHERE id = ?`).run(now, ticketId);
      store.audit(ticketId, by, 'cancelled', 'running run stopped');
      return { was: 'running', now: 'failed' as TicketState };
    }
    if (['settling', 'queued', 'deferred', 'awaiting_approval', 'needs_human'].includes(t.state)) {
      store.setState(ticketId, 'dropped');
      store.audit(ticketId, by, 'cancelled', `was ${t.state}`);
      return { was: t.state, now: 'dropped' as TicketState };
    }
    return null;
  });
}

export function cancelledReason(store: Store, runId: number): string | null {
  const r = store.stmt(`SELECT reason FROM runs WHERE id = ? AND state = 'cancelled'`).get(runId) as { reason: string } | undefined;
  return r?.reason ?? null;
}

/**
 * Runs cancelled whose worker has not been seen to stop: the worker may still be
 * running (cleaning up, or with no control plane up to stop it), so the ticket must not
 * run again yet, and the next start stops what is left of it (reconcile.ts).
 */
export const STOPPING_RUN = `state = 'cancelled' AND finished_at IS NULL`;

export function stoppingRuns(store: Store): RunRow[] {
  return store.stmt(`SELECT * FROM runs WHERE ${STOPPING_RUN} ORDER BY id`).all() as RunRow[];
}

export function activeRuns(store: Store): RunRow[] {
  return store.stmt(`SELECT * FROM runs WHERE state = 'running' ORDER BY worker_id`).all() as RunRow[];
}

/** runsEndedBefore's conditions (runs r joined to their tickets t; parameters: before, keepStates as JSON). */
const RUN_FOLDER_EXPIRED = `r.folder_removed_at IS NULL AND r.state != 'running' AND NOT (r.state = 'cancelled' AND r.finished_at IS NULL)
          AND COALESCE(r.finished_at, r.heartbeat_at) < ?
          AND t.state NOT IN (SELECT value FROM json_each(?)) AND NOT (t.state = 'pushed' AND t.pushed_at IS NULL) AND t.claimed_by IS NULL`;

/**
 * Finished runs ended before `before` (ISO time) whose folders retention has not removed yet, their
 * tickets in none of `keepStates`, not waiting for their pull request's merge (`pushed` with
 * no `pushed_at`: closed unmerged, it goes to a person) and claimed by no one (a person on
 * a ticket works from its runs' branches and logs). Runs already handled are not looked at again (a
 * partial index holds the others), so a pass costs the runs of its days, not every run
 * ever.
 */
export function runsEndedBefore(store: Store, before: string, keepStates: readonly TicketState[]): Array<Pick<RunRow, 'id' | 'ticket_id' | 'branch'>> {
  return store
    .stmt(`SELECT r.id, r.ticket_id, r.branch FROM runs r INDEXED BY runs_folder_kept JOIN tickets t ON t.id = r.ticket_id WHERE ${RUN_FOLDER_EXPIRED}`)
    .all(before, JSON.stringify(keepStates)) as Array<Pick<RunRow, 'id' | 'ticket_id' | 'branch'>>;
}

/** Whether run `runId` is still one of runsEndedBefore's: asked again right before what a pass removes of it (a person may have claimed its ticket since the pass began). */
export function runFolderExpired(store: Store, runId: number, before: string, keepStates: readonly TicketState[]): boolean {
  return store.stmt(`SELECT 1 FROM runs r JOIN tickets t ON t.id = r.ticket_id WHERE r.id = ? AND ${RUN_FOLDER_EXPIRED}`).get(runId, before, JSON.stringify(keepStates)) !== undefined;
}

/** Retention removed the run's folder (or found it gone): later passes skip the run. */
export function markRunFolderRemoved(store: Store, runId: number, at: string): void {
  store.stmt('UPDATE runs SET folder_removed_at = ? WHERE id = ?').run(at, runId);
}

export function runsForTicket(store: Store, ticketId: number): RunRow[] {
  return store.stmt('SELECT * FROM runs WHERE ticket_id = ? ORDER BY id').all(ticketId) as RunRow[];
}
