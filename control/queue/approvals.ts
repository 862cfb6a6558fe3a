/**
 * People's decisions on finished fixes: approve (merge to staging or open a pull
 * request), skip, requeue. Each is one IMMEDIATE transaction that checks the ticket's
 * state and writes the decision, so the CLI and a running server can act on the same
 * database. An approval is claimed first (a `running` row; a unique index allows one
 * per ticket) and finished after the merge: two approvals never merge the same fix twice.
 */
import { processAlive, processGone, processIdentity } from '../process-identity.ts';
import { OPEN_STATES, type TicketState } from '../types.ts';
import { STOPPING_RUN, type RunNotice, type RunRow } from './leases.ts';
import type { Store, TicketRow } from './store.ts';

export type ApprovalStatus = 'running' | 'done' | 'conflict' | 'failed' | 'abandoned';

export interface ApprovalRow {
  id: number;
  ticket_id: number;
  run_id: number | null;
  actor: string;
  action: 'approve' | 'skip' | 'requeue';
  status: ApprovalStatus;
  target: string | null;
  commit_sha: string | null;
  pr_url: string | null;
  message: string | null;
  started_at: string;
  finished_at: string | null;
  /** The approving process (control/process-identity.ts), or null where it could not be told. */
  owner: string | null;
}

/** Why a decision was refused: no such ticket, a state that does not allow it, or an approval in flight. */
export interface Refusal {
  failure: 'not_found' | 'state' | 'busy';
  state: TicketState | null;
  message: string;
}

export interface ApprovalClaim {
  approval: ApprovalRow;
  run: RunRow;
  ticket: TicketRow;
}

export const APPROVABLE: readonly TicketState[] = ['awaiting_approval'];
export const SKIPPABLE: readonly TicketState[] = ['awaiting_approval', 'needs_human'];
/** `dropped` too: a cancel (or a skip) typed for the wrong ticket is undone by asking for a run. */
export const REQUEUEABLE: readonly TicketState[] = ['awaiting_approval', 'needs_human', 'failed', 'dropped'];

/**
 * An approval still `running` after this long belongs to a process that died mid-merge
 * and may be taken over, where its process cannot be told gone sooner. Longer than any
 * live one: merge.sh is killed after 10 minutes and the GitHub call after one.
 */
export const APPROVAL_STALE_SECONDS = 900;

/**
 * The approvals this process claimed and still works on. A claim of this process's that is
 * not among them was lost (what would have recorded its result failed: a full disk):
 * nothing will finish it, and alive as this process is, it would hold its ticket for good.
 */
const claimedHere = new Set<number>();

/** This process no longer works on approval `id`: finished, or what would have finished it failed. */
export function releaseApproval(id: number): void {
  claimedHere.delete(id);
}

function getApproval(store: Store, id: number): ApprovalRow {
  return store.stmt('SELECT * FROM approvals WHERE id = ?').get(id) as ApprovalRow;
}

/**
 * Why an approval in flight is given up, or null while it may still finish: its process
 * is gone (killed mid-merge), or, where that cannot be told, it is older than `staleSeconds`.
 * One whose process provably still runs is never given up by time: its merge has a time
 * limit of its own, and a wall clock stepped forward would otherwise start a second merge
 * beside it (and stop the first).
 */
export function approvalGiveUp(store: Store, row: ApprovalRow, staleSeconds: number): string | null {
  if (row.owner && processGone(row.owner)) {
    const pid = row.owner.split('/').at(-2);
    return `the approving process (pid ${pid}) stopped before it finished; whether the merge reached staging or not, approving again is safe (a fix already there merges as nothing new)`;
  }
  if (row.owner && processAlive(row.owner)) {
    if (row.owner !== processIdentity() || claimedHere.has(row.id)) return null;
    return 'this process stopped working on it without recording a result (the write failed); whether the merge reached staging or not, approving again is safe (a fix already there merges as nothing new)';
  }
  if (store.now().getTime() - Date.parse(row.started_at) < staleSeconds * 1000) return null;
  return `no result within ${staleSeconds} s (the approving process stopped)`;
}

/** Mark an approval in flight abandoned (see approvalGiveUp), with a line in the ticket's audit trail. */
export function abandonApproval(store: Store, row: ApprovalRow, message: string): void {
  store
    .stmt(`UPDATE approvals SET status = 'abandoned', message = ?, finished_at = ? WHERE id = ? AND status = 'running'`)
    .run(message, store.nowIso(), row.id);
  store.audit(row.ticket_id, row.actor, 'approval-abandoned', message);
}

/**
 * The approval in flight for a ticket, if any. One whose process died mid-merge is marked
 * abandoned so the ticket can be approved (or skipped, or requeued) again.
 */
function runningApproval(store: Store, ticketId: number, staleSeconds: number): ApprovalRow | undefined {
  const row = store.stmt(`SELECT * FROM approvals WHERE ticket_id = ? AND status = 'running'`).get(ticketId) as ApprovalRow | undefined;
  if (!row) return undefined;
  const why = approvalGiveUp(store, row, staleSeconds);
  if (why === null) return row;
  abandonApproval(store, row, why);
  return undefined;
}

function busy(row: ApprovalRow, state: TicketState): Refusal {
  return { failure: 'busy', state, message: `ticket ${row.ticket_id} is being approved by ${row.actor} (since ${row.started_at})` };
}

function notAllowed(t: TicketRow, what: string, allowed: readonly TicketState[]): Refusal {
  return {
    failure: 'state',
    state: t.state as TicketState,
    message: `ticket ${t.id} is ${t.state}: only a ticket that is ${allowed.join(' or ')} can be ${what}`,
  };
}

/** The newest run of a ticket that has a branch (the fix a person approves). */
export function latestRunWithBranch(store: Store, ticketId: number): RunRow | undefined {
  return store.stmt('SELECT * FROM runs WHERE ticket_id = ? AND branch IS NOT NULL ORDER BY id DESC LIMIT 1').get(ticketId) as
    | RunRow
    | undefined;
}

/** Whether run `runId` is one of the ticket's runs. */
function runOfTicket(store: Store, ticketId: number, runId: number): boolean {
  return store.stmt('SELECT 1 FROM runs WHERE id = ? AND ticket_id = ?').get(runId, ticketId) !== undefined;
}

/** Claim a ticket awaiting approval for one approver; a Refusal when it cannot be. */
export function beginApproval(
  store: Store,
  ticketId: number,
  actor: string,
  target: string,
  staleSeconds: number,
  expectedRun?: number,
): ApprovalClaim | Refusal {
  return store.tx(() => {
    const ticket = store.getTicketRow(ticketId);
    if (!ticket) return { failure: 'not_found', state: null, message: `no ticket ${ticketId}` } satisfies Refusal;
    const running = runningApproval(store, ticketId, staleSeconds);
    if (running) return busy(running, ticket.state as TicketState);
    if (!APPROVABLE.includes(ticket.state as TicketState)) return notAllowed(ticket, 'approved', APPROVABLE);
    const run = latestRunWithBranch(store, ticketId);
    if (!run) {
      return { failure: 'state', state: ticket.state as TicketState, message: `ticket ${ticketId} has no run with a branch to approve` } satisfies Refusal;
    }
    if (expectedRun !== undefined && run.id !== expectedRun) {
      const message = runOfTicket(store, ticketId, expectedRun)
        ? `ticket ${ticketId}'s fix is run ${run.id}'s now, not run ${expectedRun}'s that was approved: look at its diff and approve again`
        : `ticket ${ticketId} has no run ${expectedRun} (the fix waiting for approval is run ${run.id}'s)`;
      return { failure: 'state', state: ticket.state as TicketState, message } satisfies Refusal;
    }
    const r = store
      .stmt(
        `INSERT INTO approvals (ticket_id, run_id, actor, action, status, target, started_at, owner)
         VALUES (?, ?, ?, 'approve', 'running', ?, ?, ?)`,
      )
      .run(ticketId, run.id, actor, target, store.nowIso(), processIdentity());
    store.audit(ticketId, actor, 'approval-started', `${target}: ${run.branch}`);
    claimedHere.add(Number(r.lastInsertRowid));
    return { approval: getApproval(store, Number(r.lastInsertRowid)), run, ticket };
  });
}

/**
 * Record what an approval produced and move the ticket: `pushed` (pushed_at set) when it
 * merged or opened a pull request, `needs_human` on a conflict, unchanged when it failed
 * (it can be approved again). Returns the ticket's state afterwards.
 */
export function finishApproval(
  store: Store,
  approvalId: number,
  r: { status: 'done' | 'conflict' | 'failed'; message: string; commit?: string | null; prUrl?: string | null },
  /** A fix that went out: what its run's reporters are told, kept with the run until they were (see RunNotice). */
  notice?: RunNotice,
): TicketState {
  return store.tx(() => {
    const a = getApproval(store, approvalId);
    const now = store.nowIso();
    store
      .stmt('UPDATE approvals SET status = ?, message = ?, commit_sha = ?, pr_url = ?, finished_at = ? WHERE id = ?')
      .run(r.status, r.message, r.commit ?? null, r.prUrl ?? null, now, approvalId);
    if (r.status === 'done') {
      // The fix is out whatever happened to the ticket meanwhile (a cancel during the merge),
      // unless the ticket runs again (requeued after this approval was given up as stale):
      // then that run decides its state.
      const live = store.stmt(`SELECT 1 FROM runs WHERE ticket_id = ? AND state = 'running'`).get(a.ticket_id);
      // A pull request is not the fix live: pushed_at waits for its merge (dispatcher/pr-watch.ts),
      // and until then a recurrence counts against this ticket instead of opening a regression.
      if (!live) store.stmt(`UPDATE tickets SET state = 'pushed', pushed_at = ?, updated_at = ? WHERE id = ?`).run(r.prUrl ? null : now, now, a.ticket_id);
      if (notice) store.stmt('UPDATE runs SET notice = ? WHERE id = ?').run(JSON.stringify(notice), notice.run_id);
      store.audit(a.ticket_id, a.actor, 'approved', live ? `${r.message} (after the approval was given up; the ticket runs again)` : r.message);
    } else if (r.status === 'conflict') {
      store.stmt(`UPDATE tickets SET state = 'needs_human', updated_at = ? WHERE id = ? AND state = 'awaiting_approval'`).run(now, a.ticket_id);
      store.audit(a.ticket_id, a.actor, 'approval-conflict', r.message);
    } else {
      store.audit(a.ticket_id, a.actor, 'approval-failed', r.message);
    }
    return store.getTicketRow(a.ticket_id)!.state as TicketState;
  });
}

/** A decision other than approve: the ticket moves from one of `allowed` to `next`. */
function decide(
  store: Store,
  ticketId: number,
  actor: string,
  action: 'skip' | 'requeue',
  allowed: readonly TicketState[],
  next: TicketState,
  message: string | null,
  staleSeconds: number,
  expectedRun?: number,
): { was: TicketState; state: TicketState; runId: number | null } | Refusal {
  return store.tx(() => {
    const t = store.getTicketRow(ticketId);
    if (!t) return { failure: 'not_found', state: null, message: `no ticket ${ticketId}` } satisfies Refusal;
    const running = runningApproval(store, ticketId, staleSeconds);
    if (running) return busy(running, t.state as TicketState);
    if (!allowed.includes(t.state as TicketState)) return notAllowed(t, action === 'skip' ? 'skipped' : 'requeued', allowed);
    const live = store.stmt(`SELECT id, state FROM runs WHERE ticket_id = ? AND (state = 'running' OR (${STOPPING_RUN}))`).get(ticketId) as { id: number; state: string } | undefined;
    if (live) {
      const message =
        live.state === 'running'
          ? `ticket ${ticketId} still has a running worker (run ${live.id})`
          : `ticket ${ticketId}'s cancelled worker (run ${live.id}) is still stopping: try again in a few seconds (with no control plane up, after the next bugbot start)`;
      return { failure: 'busy', state: t.state as TicketState, message } satisfies Refusal;
    }
    const latest = store.stmt('SELECT id FROM runs WHERE ticket_id = ? ORDER BY id DESC LIMIT 1').get(ticketId) as { id: number } | undefined;
    if (expectedRun !== undefined && latest?.id !== expectedRun) {
      // A button or page of an earlier run (the ticket was requeued and ran again), or a run
      // the ticket never had (a typo in --run).
      const now = latest ? `run ${latest.id}` : 'none';
      const message = runOfTicket(store, ticketId, expectedRun)
        ? `ticket ${ticketId}'s latest run is ${now}, not run ${expectedRun} ${action === 'skip' ? 'that was skipped' : 'that the requeue named'}: look at it and decide again`
        : `ticket ${ticketId} has no run ${expectedRun} (its latest run is ${now})`;
      return { failure: 'state', state: t.state as TicketState, message } satisfies Refusal;
    }
    if (next === 'queued' && t.claimed_by) {
      // The dispatcher never takes a claimed ticket: queued, it would wait for ever.
      return { failure: 'state', state: t.state as TicketState, message: `ticket ${ticketId} is claimed by ${t.claimed_by}: release the claim first (bugbot claim ${ticketId} --release), or let them work on it` } satisfies Refusal;
    }
    if (next === 'queued') {
      // One ticket per error: a newer one (a person reported it again after this one
      // failed) carries it on, whatever became of it (its error's occurrences go to the
      // newest), and a second open one would have the same bug fixed twice. Only a dropped
      // newer ticket gives way; a dropped ticket gives way to any newer one.
      const newer = store
        .stmt(`SELECT id, state FROM tickets WHERE fingerprint = ? AND id > ?${t.state === 'dropped' ? '' : ` AND state <> 'dropped'`} ORDER BY id LIMIT 1`)
        .get(t.fingerprint, ticketId) as { id: number; state: string } | undefined;
      if (newer) {
        return { failure: 'state', state: t.state as TicketState, message: OPEN_STATES.includes(newer.state as TicketState)
            ? `ticket ${newer.id} (the same error, filed later) is open (${newer.state}): it carries this one on; requeue that one instead`
            : `ticket ${newer.id} (the same error, filed later; ${newer.state}) carries this one on: requeue that one instead` } satisfies Refusal;
      }
    }
    const now = store.nowIso();
    if (next === 'queued' && t.state === 'dropped') {
      // A person overrules the drop (triage's, a cancel's, a skip's): the brief says so, not
      // "classified as a question", and a later pass of triage does not drop it again for that.
      const reason = `requeued by ${actor}: a person asked for a run (it was dropped${t.triage_reason ? `: ${t.triage_reason}` : ''})`;
      store
        .stmt(`UPDATE tickets SET state = 'queued', attempt = 0, classification = 'bug', triage_reason = ?, updated_at = ? WHERE id = ?`)
        .run(reason, now, ticketId);
    } else if (next === 'queued') {
      // A person asked for another go: it gets the full attempt budget again.
      store.stmt(`UPDATE tickets SET state = 'queued', attempt = 0, updated_at = ? WHERE id = ?`).run(now, ticketId);
    } else {
      store.setState(ticketId, next);
    }
    const run = latestRunWithBranch(store, ticketId);
    store
      .stmt(
        `INSERT INTO approvals (ticket_id, run_id, actor, action, status, message, started_at, finished_at)
         VALUES (?, ?, ?, ?, 'done', ?, ?, ?)`,
      )
      .run(ticketId, run?.id ?? null, actor, action, message, now, now);
    const detail = `was ${t.state}${message ? `: ${message}` : ''}`;
    store.audit(ticketId, actor, action === 'skip' ? 'skipped' : 'requeued', detail);
    return { was: t.state as TicketState, state: next, runId: run?.id ?? null };
  });
}

/** awaiting_approval / needs_human → dropped; the reason goes to the audit trail and the decision row. */
export function skipTicket(store: Store, ticketId: number, actor: string, reason: string | null, staleSeconds: number, expectedRun?: number) {
  return decide(store, ticketId, actor, 'skip', SKIPPABLE, 'dropped', reason, staleSeconds, expectedRun);
}

/** awaiting_approval / needs_human / failed / dropped → queued, with the attempt count reset to 0. */
export function requeueTicket(store: Store, ticketId: number, actor: string, staleSeconds: number, expectedRun?: number) {
  return decide(store, ticketId, actor, 'requeue', REQUEUEABLE, 'queued', 'attempts reset', staleSeconds, expectedRun);
}

/** Every decision on a ticket, oldest first (the dashboard's ticket timeline). */
export function approvalsForTicket(store: Store, ticketId: number): ApprovalRow[] {
  return store.stmt('SELECT * FROM approvals WHERE ticket_id = ? ORDER BY id').all(ticketId) as ApprovalRow[];
}

export function isRefusal(x: object): x is Refusal {
  return 'failure' in x;
}
