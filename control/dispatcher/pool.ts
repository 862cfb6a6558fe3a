/**
 * The worker pool: claims queued tickets by priority (never more than `workers`
 * at once, one port per worker slot), runs `harness/worker.sh` for each, keeps the
 * run's lease alive while the worker lives, streams its progress into the store,
 * and when it exits turns `outcome.json` into the ticket's next state and an
 * outcomes row. A worker that exits without an outcome still gets a failed row.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { BugbotConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { cancelledReason, claimNext, finishRun, heartbeat, setRunProcess, setRunProgress, type RunRow } from '../queue/leases.ts';
import type { Store } from '../queue/store.ts';
import type { Ticket, TicketState } from '../types.ts';
import { nextRevision, type OutcomeArchive, type OutcomeRow } from '../outcomes/archive.ts';
import { modelEnv } from './model-env.ts';
import { guardOperatorHome, REPO_ROOT } from './phases.ts';
import { homeWriteFailure, lowDisk } from './requirements.ts';
import { archiveRow, attemptsNote, buildOutcomeRow, cancelledRunEnd, LANDED_STATES, readOutcome, runNotice } from './outcome.ts';
import { prepareWorkspace, type PreparedWorkspace } from './workspace.ts';
import { environmentFailure, finishCancelledRuns, machineFailureEnd, reclaimDeadRuns, removeRunTmp, removeWorktreeInBackground, stopRunProcesses, WORKER_STOP_WAIT_MS } from './reconcile.ts';

export interface ActiveWorker {
  slot: number;
  run: RunRow;
  ticket: Ticket;
  ws: PreparedWorkspace;
  child: ChildProcess;
  /** performance.now() at its launch: a duration, not a time (the wall clock may be stepped meanwhile). */
  started: number;
  cancelled: string | null;
  progress: { phase: string | null; tokens: number; cost_usd: number; tool_calls: number; tail: string[] };
  timer: NodeJS.Timeout;
  /** SIGTERM was sent: once is enough (a second one would cut its cleanup short). */
  termSent?: boolean;
  /** The worker could not be started at all (spawn's error). */
  spawnError?: string;
  /** finished() ran ('error' and 'close' may both come). */
  done?: boolean;
}

export interface WorkerView {
  worker: number;
  ticket: number;
  title: string;
  run: number;
  port: number;
  phase: string | null;
  elapsed_s: number;
  tokens: number;
  cost_usd: number;
  tool_calls: number;
  tail: string[];
  /** Cancelled or stopped, cleaning up: its slot and port are still taken. */
  stopping: boolean;
}

/** A worker slot that claims nothing until `until` (ISO time): its last run failed for the slot's sake. */
export interface PausedSlot {
  worker: number;
  reason: string;
  until: string;
}

export interface DispatcherDeps {
  config: BugbotConfig;
  store: Store;
  archive: OutcomeArchive;
  logger: Logger;
  /** After a run ends (notifications, dashboard). */
  onRunFinished?: (row: ReturnType<typeof buildOutcomeRow>, ticket: Ticket) => void;
  pollMs?: number;
  /**
   * Why no run can start now (see requirements.ts workersHeld), or null: nothing is claimed
   * meanwhile. `recheck`: look again now rather than trust an earlier look (asked after a
   * run the machine could not host: what it lacked may be what the workers need).
   */
  held?: (recheck?: boolean) => string | null;
  /** The first pause after a run the machine could not host (PAUSE_FIRST_MS; shorter in tests). */
  pauseFirstMs?: number;
}

/**
 * After a run the machine could not host (harness_fail_env: the slot's port taken, the
 * remote out of reach; or the worker not started at all), the workers pause: 30 s, twice
 * as long after each such run in a row, at most 10 minutes. The ticket goes back to the
 * queue with its attempt not counted.
 */
const PAUSE_FIRST_MS = 30_000;
const PAUSE_MAX_MS = 600_000;

export class Dispatcher {
  private readonly active = new Map<number, ActiveWorker>();
  private heldFor: string | null = null;
  /** A run the machine could not host ended since the requirements were last looked at (see DispatcherDeps.held). */
  private recheckDue = false;
  /** Workers paused after environment failures (see PAUSE_FIRST_MS); kept until a run gets past its setup. */
  private pause: Pause | null = null;
  /** Slots paused alone (their port taken by another process: the other slots' are not). */
  private readonly slotPauses = new Map<number, Pause>();
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: DispatcherDeps) {}

  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'running';
    this.schedule(0);
  }

  /** Look for work now (new tickets were queued). */
  poke(): void {
    if (this.state === 'running') this.schedule(0);
  }

  /** Stop claiming; ask workers to stop (they clean up and record a partial outcome); wait. */
  async stop(timeoutMs = WORKER_STOP_WAIT_MS): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    if (this.timer) clearTimeout(this.timer);
    const exits = [...this.active.values()].map((w) => {
      this.kill(w, 'SIGTERM');
      return new Promise<void>((r) => (w.child.exitCode !== null ? r() : w.child.once('close', () => r())));
    });
    const deadline = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([Promise.all(exits), deadline]);
    for (const w of this.active.values()) this.kill(w, 'SIGKILL');
    // Their ends recorded while still stopping (finished(): requeued, not failed), before
    // the caller closes the store.
    await Promise.race([Promise.all(exits), new Promise<void>((r) => setTimeout(r, 2000).unref())]);
    this.state = 'stopped';
  }

  /** Why the workers claim nothing now (tickets wait in the queue), or null. */
  held(): string | null {
    return this.heldFor;
  }

  /**
   * Slots paused on their own (their port held by another process, say) while the others
   * claim tickets: held() speaks only of all of them, and an idle slot would seem free.
   */
  pausedSlots(): PausedSlot[] {
    const out: PausedSlot[] = [];
    for (const [worker, p] of this.slotPauses) {
      if (this.slotPaused(worker) && !this.active.has(worker)) out.push({ worker, reason: p.reason, until: wallTime(p.until) });
    }
    return out.sort((a, b) => a.worker - b.worker);
  }

  workers(): WorkerView[] {
    const now = performance.now();
    return [...this.active.values()].map((w) => ({
      worker: w.slot,
      ticket: w.ticket.id,
      title: w.ticket.title,
      run: w.run.id,
      port: w.ws.port,
      phase: w.progress.phase,
      elapsed_s: Math.round((now - w.started) / 1000),
      tokens: w.progress.tokens,
      cost_usd: w.progress.cost_usd,
      tool_calls: w.progress.tool_calls,
      tail: w.progress.tail,
      stopping: w.termSent === true,
    }));
  }

  /** Cancel the ticket's running worker; false when it is not running here. */
  cancel(ticketId: number, by: string): boolean {
    const w = [...this.active.values()].find((x) => x.ticket.id === ticketId);
    if (!w) return false;
    w.cancelled = `cancelled by ${by}`;
    this.deps.store.audit(ticketId, by, 'cancel-requested');
    this.kill(w, 'SIGTERM');
    return true;
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fill(), ms);
    this.timer.unref();
  }

  private fill(): void {
    if (this.state !== 'running') return;
    const { config, store, logger } = this.deps;
    try {
      this.flushArchive();
      const held = this.updateHeld();
      this.reclaimLost();
      // A launch that fails at once pauses the workers: no further claim in this pass.
      for (let slot = 1; slot <= config.workers && !held && !this.paused(); slot++) {
        if (this.active.has(slot) || this.slotPaused(slot)) continue;
        const claim = claimNext(store, slot, config.target.basePort + slot, config.queue.leaseSeconds);
        if (!claim) break;
        this.launch(slot, claim.run, store.getTicket(claim.ticket.id)!);
      }
    } catch (err) {
      logger.error('dispatch failed', { error: (err as Error).message });
    }
    this.schedule(this.deps.pollMs ?? 2000);
  }

  /** Outcome rows a failed write left (a full disk) are written once the archive takes them. */
  private flushArchive(): void {
    const { archive, logger } = this.deps;
    const before = archive.unwritten().pending;
    if (!before) return;
    try {
      archive.flushPending();
      logger.info('outcome rows written after all', { rows: before, dropped: archive.unwritten().dropped });
    } catch {
      // Still failing: tried again next pass (the failure was logged when the row came).
    }
  }

  /**
   * Why no run can start now, as held() reports it; a change is logged. The requirements
   * are looked at afresh after a run the machine could not host (now, and once more
   * before the first claim after the pause): a command removed under a running bugbot
   * holds the workers at once, not a minute later.
   */
  private updateHeld(recheckNow = false): string | null {
    const { logger } = this.deps;
    const paused = this.paused();
    const recheck = recheckNow || (this.recheckDue && !paused);
    if (!paused) this.recheckDue = false;
    const held = this.deps.held?.(recheck) ?? paused;
    // The pause's "trying again at" time moves by a millisecond from one look to the next
    // (it is computed from two clocks): the same reason is not logged again for it.
    if (untimed(held) !== untimed(this.heldFor)) {
      if (held) logger.warn('workers hold: tickets wait in the queue', { reason: held });
      else if (this.heldFor) logger.info('workers resume: what they lacked is there now');
    }
    this.heldFor = held;
    return held;
  }

  /**
   * Why the workers pause after environment failures, while they do (all of them, or every
   * slot on its own); null once the pause is over.
   */
  private paused(): string | null {
    const p = this.pause;
    if (p && performance.now() < p.until) {
      return `paused after ${p.failures === 1 ? 'a run' : `${p.failures} runs in a row`} the machine could not host (${p.reason}); trying again at ${wallTime(p.until)}`;
    }
    const slots = Array.from({ length: this.deps.config.workers }, (_, i) => i + 1);
    const first = this.slotPauses.get(1);
    if (first && slots.every((s) => this.slotPaused(s))) {
      return `paused: every worker's slot failed a run the machine could not host (${first.reason}); trying again at ${wallTime(Math.min(...slots.map((s) => this.slotPauses.get(s)!.until)))}`;
    }
    return null;
  }

  private slotPaused(slot: number): boolean {
    const p = this.slotPauses.get(slot);
    return p !== undefined && performance.now() < p.until;
  }

  /** A run failed for the machine's sake: pause the workers (or its slot alone), longer each time in a row. */
  private pauseFor(reason: string, slot?: number): void {
    const prev = slot === undefined ? this.pause : this.slotPauses.get(slot);
    const failures = (prev?.failures ?? 0) + 1;
    const pause = { reason, until: performance.now() + Math.min(PAUSE_MAX_MS, (this.deps.pauseFirstMs ?? PAUSE_FIRST_MS) * 2 ** (failures - 1)), failures };
    if (slot === undefined) this.pause = pause;
    else {
      this.slotPauses.set(slot, pause);
      this.deps.logger.warn('worker slot pauses: a run the machine could not host on it', { worker: slot, reason, until: wallTime(pause.until) });
    }
    this.updateHeld(true);
  }

  /**
   * How a run the machine could not host ends (machineFailureEnd: requeued, its attempt
   * given back a few times, however often when no ticket can cause it): the pause,
   * doubling to its cap, bounds how often it is tried. The workers pause (the slot alone
   * for `slotOnly`), and the requirements are looked at afresh.
   */
  private environmentEnd(run: RunRow, why: string, slot: number, slotOnly: boolean, uncounted = false): { state: TicketState; reason: string; refund: boolean } {
    this.recheckDue = true;
    this.pauseFor(why, slotOnly ? slot : undefined);
    return machineFailureEnd(this.deps.store, this.deps.config, run, why, uncounted, slotOnly ? 'this worker pauses' : 'the workers pause');
  }

  /**
   * Runs left running in the database with no worker of ours on them (a launch that
   * failed after its claim, an end that could not be recorded): once their lease has
   * expired, what is left of them is stopped and their tickets go back to the queue
   * within the attempt limit, with their outcome rows.
   */
  private reclaimLost(): void {
    const { config, store, logger, archive } = this.deps;
    // Ends that could not be recorded (a busy or full database): recorded now, as decided.
    for (const [runId, end] of this.unrecorded) {
      const done = this.record(runId, end.result, end.overCancel, end.stages, false, end.refund);
      if (done === null) continue;
      this.unrecorded.delete(runId);
      // Cancelled while its end waited: it ends as a cancelled run (a fix it pushed stands).
      if (done === 'cancelled') end.onCancelled?.();
    }
    const keep = new Set([...this.active.values()].map((w) => w.run.id).concat([...this.unrecorded.keys()]));
    // Cancelled runs no worker of ours is on (cancelled after they were lost): ended like any cancelled run.
    for (const f of finishCancelledRuns(config, store, logger, archive, { keep, expired: true, when: 'once its lease ran out' })) {
      removeWorktreeInBackground(config.target.repo, join(config.home, 'worktrees', `ticket-${f.ticket.id}-run-${f.row.run_id}`), logger, { keepWorkOf: config });
      this.deps.onRunFinished?.(f.row, f.ticket);
    }
    const why = 'its lease expired with no worker on it';
    for (const { run, row, ticket } of reclaimDeadRuns(config, store, logger, archive, { onlyExpired: true, keep, audit: why, why })) {
      removeWorktreeInBackground(config.target.repo, run.worktree ?? join(config.home, 'worktrees', `ticket-${run.ticket_id}-run-${run.id}`), logger, { keepWorkOf: config });
      if (row && ticket) this.deps.onRunFinished?.(row, ticket);
    }
  }

  private launch(slot: number, run: RunRow, ticket: Ticket): void {
    const { config, store, logger } = this.deps;
    /**
     * The machine could not start it (no ticket folder, no bash): a run with its outcome
     * row, whose ticket goes back to the queue with the attempt not counted while the
     * workers pause (failing it would fail every queued ticket the same way).
     */
    const notStarted = (why: string) => {
      const end = this.environmentEnd(run, why, slot, false);
      const reason = this.deps.archive.redact(end.reason);
      const row = buildOutcomeRow({ ticket, run, outcome: null, state: end.state, reason, model: config.harness.model ?? null });
      archiveRow(this.deps.archive, row, logger);
      this.record(run.id, { ticketState: end.state, outcome: row.outcome, reason, notice: runNotice(row) }, false, {}, true, end.refund);
      logger.error('worker not started', { worker: slot, ticket: ticket.id, run: run.id, reason });
      this.deps.onRunFinished?.(row, ticket);
    };
    // What the agent's sandbox can keep read-only in this user's home must be there first
    // (phases.ts guardOperatorHome): made before each run, so one deleted since is made again.
    const guarded = guardOperatorHome();
    if (guarded.made.length) this.deps.logger.info("made the missing start-up and git files of this user's home, empty, so that the agent's sandbox keeps them read-only", { made: guarded.made });
    // What this user cannot make there, its agent's sandbox (the same user, more confined) cannot either.
    for (const f of guarded.failed) this.deps.logger.debug("could not make a missing start-up or git file of this user's home (nor can the agent's sandbox)", { path: f.path, error: f.error });
    let ws: PreparedWorkspace;
    try {
      // The errors held in its cascade are the agent's to look at too (brief.ts).
      ws = prepareWorkspace(config, ticket, run, this.deps.store.cascadeMembers(ticket.id).filter((m) => m.state === 'deferred'));
    } catch (err) {
      notStarted(`could not prepare the ticket folder: ${homeWriteFailure(err)}`);
      return;
    }
    let child: ChildProcess | undefined;
    try {
      // The worker's log is a file, not a pipe to this process: a worker outlives a control
      // plane that is killed (its next write to a dead pipe would end it), finishes its work,
      // and the restart reads its outcome.json (reconcile.ts).
      const logFd = openSync(join(ws.ticketDir, 'worker.log'), 'a');
      try {
        child = spawn('bash', [join(REPO_ROOT, 'harness', 'worker.sh'), String(slot), ws.ticketDir], {
          cwd: ws.ticketDir,
          env: this.workerEnv(),
          stdio: ['ignore', 'ignore', logFd],
          detached: true,
        });
      } finally {
        closeSync(logFd);
      }
      setRunProcess(store, run.id, { pid: child.pid, branch: ws.branch, worktree: ws.worktree });
    } catch (err) {
      // A worker nobody watches (no heartbeat, no end recorded, its port handed out again)
      // must not go on.
      child?.on('error', () => undefined);
      if (child?.pid) this.killGroup(child.pid, 'SIGKILL');
      removeWorktreeInBackground(config.target.repo, ws.worktree, logger);
      removeRunTmp(ws.tmp, logger);
      notStarted(`could not start the worker: ${(err as Error).message}`);
      return;
    }
    const w: ActiveWorker = {
      slot,
      run,
      ticket,
      ws,
      child,
      started: performance.now(),
      cancelled: null,
      progress: { phase: 'setup', tokens: 0, cost_usd: 0, tool_calls: 0, tail: [] },
      timer: setInterval(() => this.tick(w), Math.min(1000, config.harness.heartbeatSeconds * 1000)),
    };
    w.timer.unref();
    this.active.set(slot, w);
    child.on('close', (code, signal) => this.finished(w, code, signal));
    // spawn failing (EAGAIN, EMFILE, EACCES) is an event, not a throw: without a listener
    // it would end the control plane.
    child.on('error', (err) => {
      w.spawnError = err.message;
      logger.error('worker could not be started', { worker: slot, ticket: ticket.id, run: run.id, error: err.message });
      if (child.pid === undefined) this.finished(w, null, null);
    });
    // A worker killed before its trap ran (kill -9, OOM) leaves its Claude session, MCP
    // servers and dev server behind: stop them.
    child.on('exit', () => {
      if (!existsSync(join(ws.ticketDir, 'outcome.json'))) stopRunProcesses(config.home, { ...run, pid: child.pid ?? null }, { leaderGone: true });
    });
    logger.info('worker started', { worker: slot, ticket: ticket.id, run: run.id, port: ws.port, dir: ws.ticketDir });
  }

  /** Only what a worker needs: PATH, a home for git, and the model endpoint credentials. */
  private workerEnv(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: process.env.LANG ?? 'C.UTF-8',
      TMPDIR: process.env.TMPDIR,
      ...modelEnv(this.deps.config),
    };
  }

  /** When each run's lease was last extended (performance.now(): a step of the wall clock back must not hold the next one off). */
  private lastBeat = new Map<number, number>();

  private tick(w: ActiveWorker): void {
    try {
      this.beat(w);
    } catch (err) {
      // A busy or full database is not worth the control plane (an uncaught throw in a
      // timer ends it): the next tick tries again, and a lease that runs out meanwhile is lost.
      this.deps.logger.warn('could not record a worker\'s heartbeat or progress', { worker: w.slot, run: w.run.id, error: (err as Error).message });
    }
  }

  private beat(w: ActiveWorker): void {
    const { config, store } = this.deps;
    const p = readProgress(w.ws.ticketDir);
    if (p) Object.assign(w.progress, p);
    w.progress.tail = logTail(join(w.ws.ticketDir, 'worker.log'), 20);
    const now = performance.now();
    if (now - (this.lastBeat.get(w.run.id) ?? -Infinity) >= config.harness.heartbeatSeconds * 1000) {
      this.lastBeat.set(w.run.id, now);
      if (!heartbeat(store, w.run.id, config.queue.leaseSeconds, w.progress.phase ?? undefined)) {
        // The run is no longer ours (reclaimed after a stall, or cancelled elsewhere).
        w.cancelled ??= 'lease lost';
        this.kill(w, 'SIGTERM');
      }
    }
    setRunProgress(store, w.run.id, w.progress.phase, { tokens: w.progress.tokens, cost_usd: w.progress.cost_usd, tool_calls: w.progress.tool_calls });
  }

  private kill(w: ActiveWorker, signal: NodeJS.Signals): void {
    if (signal === 'SIGTERM') {
      if (w.termSent) return;
      w.termSent = true;
    }
    if (w.child.pid) this.killGroup(w.child.pid, signal);
  }

  private killGroup(pid: number, signal: NodeJS.Signals): void {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }

  /** Runs whose end could not be recorded yet, as decided: tried again each poll (reclaimLost), never reclaimed meanwhile. */
  private readonly unrecorded = new Map<
    number,
    { result: Parameters<typeof finishRun>[2]; overCancel: boolean; stages: OutcomeRow['stages']; refund: boolean; onCancelled?: () => void }
  >();

  /**
   * Record a run's end (finishRun, and its stages); null when the database would not take
   * it now (busy, full): kept to be tried again, not an uncaught throw, and the run is not
   * taken for a lost one meanwhile (which would requeue a fix that landed).
   */
  private record(
    runId: number,
    result: Parameters<typeof finishRun>[2],
    overCancel: boolean,
    stages: OutcomeRow['stages'],
    keep = true,
    refund = false,
    onCancelled?: () => void,
  ): ReturnType<typeof finishRun> | null {
    const { store, logger } = this.deps;
    try {
      const done = finishRun(store, runId, result, { overCancel, refund });
      if (Object.keys(stages).length) store.saveStages(runId, stages);
      return done;
    } catch (err) {
      if (keep) {
        // Its reporters are told now all the same (the caller goes on to onRunFinished):
        // recorded later, the end carries nothing left to tell.
        const { notice: _told, ...untold } = result;
        this.unrecorded.set(runId, { result: untold, overCancel, stages, refund, ...(onCancelled ? { onCancelled } : {}) });
        logger.error("could not record a run's end; tried again", { run: runId, error: (err as Error).message });
      }
      return null;
    }
  }

  private finished(w: ActiveWorker, code: number | null, signal: NodeJS.Signals | null): void {
    const { store, archive, logger, config } = this.deps;
    if (w.done) return;
    w.done = true;
    clearInterval(w.timer);
    this.active.delete(w.slot);
    this.lastBeat.delete(w.run.id);
    // The worker's trap removes its temp folder; one that died before it could leaves it.
    removeRunTmp(w.ws.tmp, logger);
    // Written by the worker's trap; a worker killed after it pushed has an outcome all the same (readOutcome).
    const trapRan = existsSync(join(w.ws.ticketDir, 'outcome.json'));
    const outcome = readOutcome(w.ws.ticketDir);
    let state: TicketState;
    let reason: string;
    let cancel: string | null = w.cancelled;
    try {
      cancel = cancelledReason(store, w.run.id) ?? w.cancelled;
    } catch (err) {
      logger.warn('could not read whether the run was cancelled', { run: w.run.id, error: (err as Error).message });
    }
    let pushedFirst = false;
    // The attempt is given back: the run says nothing about the ticket.
    let refund = false;
    // A failed run on a full disk is the disk's doing too: whatever write came first failed.
    const disk = outcome?.state !== 'pushed' && !cancel ? lowDisk(config) : null;
    const envFailure = outcome?.state === 'failed' ? (environmentFailure(w.ws.ticketDir) ?? (disk ? { reason: `${outcome.reason}; ${disk}`, slotOnly: false, uncounted: false } : null)) : null;
    if (cancel) {
      ({ state, reason, overCancel: pushedFirst } = cancelledRunEnd(outcome, cancel, w.ws.branch));
      if (!trapRan) removeWorktreeInBackground(config.target.repo, w.ws.worktree, logger, { keepWorkOf: config });
    } else if (outcome && outcome.state === 'cancelled' && this.state === 'stopping') {
      // The control plane stopped (a restart, a deploy): not the ticket's doing. It goes
      // back to the queue with this attempt not counted (three deploys during one run must
      // not fail it); its partial work is on its branch.
      state = 'queued';
      reason = 'stopped with the control plane mid-run; requeued (this attempt not counted)';
      refund = true;
    } else if (outcome && outcome.state === 'cancelled' && !w.termSent) {
      // A signal from outside bugbot (a person's kill, a service manager): not a cancel.
      // Like a crash, the ticket gets another attempt; its partial work is on its branch.
      const again = w.run.attempt < config.queue.maxAttempts;
      state = again ? 'queued' : 'failed';
      reason = `its worker was stopped from outside bugbot (${outcome.reason}); ` + attemptsNote(w.run.attempt, config.queue.maxAttempts, again);
    } else if (envFailure !== null) {
      // The machine could not host the run (harness_fail_env): requeued, not counted, and
      // the workers pause instead of failing the next ticket the same way.
      ({ state, reason, refund } = this.environmentEnd(w.run, envFailure.reason, w.slot, envFailure.slotOnly, envFailure.uncounted));
    } else if (outcome) {
      state = LANDED_STATES.find((s) => s === outcome.state) ?? 'failed';
      reason = outcome.reason;
      if (!trapRan) removeWorktreeInBackground(config.target.repo, w.ws.worktree, logger, { keepWorkOf: config });
    } else if (w.spawnError) {
      // bash could not be started (EAGAIN, EMFILE): the machine's doing, as above.
      removeWorktreeInBackground(config.target.repo, w.ws.worktree, logger, { keepWorkOf: config });
      ({ state, reason, refund } = this.environmentEnd(w.run, `worker could not be started (${w.spawnError})`, w.slot, false));
    } else if (disk) {
      // Died on a full disk, where even the file that would say so could not be written:
      // the machine's doing, as above.
      removeWorktreeInBackground(config.target.repo, w.ws.worktree, logger, { keepWorkOf: config });
      ({ state, reason, refund } = this.environmentEnd(w.run, `worker exited (${signal ?? `status ${code}`}) without an outcome; ${disk}`, w.slot, false));
    } else if (this.state === 'stopping' && w.termSent) {
      // Killed by the control plane's stop: its trap ran past WORKER_STOP_WAIT_MS (a slow
      // push, a repository lock held). The stop's doing, as when the trap finished in time.
      removeWorktreeInBackground(config.target.repo, w.ws.worktree, logger, { keepWorkOf: config });
      state = 'queued';
      reason = `stopped with the control plane mid-run, its worker killed (${signal ?? `status ${code}`}) before it finished stopping; requeued (this attempt not counted)`;
      refund = true;
    } else {
      // Died without its trap: clean up after it and give the ticket another attempt.
      removeWorktreeInBackground(config.target.repo, w.ws.worktree, logger, { keepWorkOf: config });
      const again = w.run.attempt < config.queue.maxAttempts;
      state = again ? 'queued' : 'failed';
      reason = `worker exited (${signal ?? `status ${code}`}) without an outcome; ` + attemptsNote(w.run.attempt, config.queue.maxAttempts, again);
    }
    // A run that got past its setup: the machine (and this slot) hosts runs again.
    if (outcome && envFailure === null && !cancel) {
      this.pause = null;
      this.slotPauses.delete(w.slot);
    }
    // It can quote git's or the model endpoint's errors: as redacted as the archive's row, in the log and the run too.
    reason = archive.redact(reason);
    let row = buildOutcomeRow({ ticket: w.ticket, run: w.run, outcome, state, reason, model: config.harness.model ?? null, ticketDir: w.ws.ticketDir });
    archiveRow(archive, row, logger);
    // Cancelled after it was looked at, before its end was recorded (now, or when a busy
    // database takes it later): it ends as a cancelled run, a fix it pushed standing over
    // the cancel, and the archive's next row (the one readers keep) says so.
    const endCancelled = () => {
      const end = cancelledRunEnd(outcome, cancelledReason(store, w.run.id) ?? 'cancelled', w.ws.branch);
      state = end.state;
      reason = archive.redact(end.reason);
      row = { ...buildOutcomeRow({ ticket: w.ticket, run: w.run, outcome, state, reason, model: config.harness.model ?? null, ticketDir: w.ws.ticketDir }), revision: nextRevision(row) };
      archiveRow(archive, row, logger);
      if (end.overCancel) this.record(w.run.id, { ticketState: state, outcome: row.outcome, reason, notice: runNotice(row) }, true, {});
    };
    const recorded = this.record(w.run.id, { ticketState: state, outcome: row.outcome, reason, notice: runNotice(row) }, pushedFirst, row.stages, true, refund, cancel ? undefined : endCancelled);
    if (recorded === 'cancelled' && !cancel) endCancelled();
    logger.info('worker finished', { worker: w.slot, ticket: w.ticket.id, run: w.run.id, state, outcome: row.outcome, reason });
    this.deps.onRunFinished?.(row, w.ticket);
    if (refund && this.pause && performance.now() < this.pause.until) this.schedule(this.pause.until - performance.now());
    else if (existsSync(join(w.ws.ticketDir, 'outcome.json'))) this.poke();
    else this.schedule(1000);
  }
}

interface Pause {
  reason: string;
  /**
   * performance.now() when it ends: NTP stepping the wall clock back ten minutes made a
   * 30-second pause last ten and a half, and a step forward ended it at once.
   */
  until: number;
  failures: number;
}

/** A performance.now() value as the wall-clock time it will be (for people to read). */
function wallTime(mono: number): string {
  return new Date(Date.now() + mono - performance.now()).toISOString();
}

/** A held() reason without its pause's "trying again at" time (see updateHeld). */
function untimed(reason: string | null): string | null {
  return reason?.replace(/; trying again at \S+$/, '') ?? null;
}

/** The last `n` lines of a worker's log (its last 8 KiB). */
function logTail(path: string, n: number): string[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, 8192);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n').filter(Boolean);
    if (len < size) lines.shift(); // a partial first line
    return lines.slice(-n);
  } finally {
    closeSync(fd);
  }
}

/** Live progress: finished phases' stats summed with the running phase's numbers. */
function readProgress(dir: string): Partial<ActiveWorker['progress']> | null {
  const out = { tokens: 0, cost_usd: 0, tool_calls: 0 } as ActiveWorker['progress'];
  let any = false;
  const done = new Set<string>();
  for (const f of readdirSync(dir)) {
    const m = /^stats-([\w-]+)\.json$/.exec(f);
    if (!m) continue;
    try {
      const s = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { tokens: number; cost_usd: number; tool_calls: number; phase: string };
      out.tokens += s.tokens ?? 0;
      out.cost_usd += s.cost_usd ?? 0;
      out.tool_calls += s.tool_calls ?? 0;
      done.add(m[1]!);
      any = true;
    } catch {
      // being written
    }
  }
  try {
    const lines = readFileSync(join(dir, 'status'), 'utf8').trim().split('\n');
    const last = lines[lines.length - 1]?.split('\t');
    if (last?.[1]) {
      out.phase = last[1];
      any = true;
      if (last[2] === 'start' && !done.has(last[1])) {
        const p = JSON.parse(readFileSync(join(dir, 'progress.json'), 'utf8')) as { phase: string; tokens: number; cost_usd: number; tool_calls: number };
        if (p.phase === last[1].replace(/-rework$/, '')) {
          out.tokens += p.tokens;
          out.cost_usd += p.cost_usd;
          out.tool_calls += p.tool_calls;
        }
      }
    }
  } catch {
    // no status or progress yet
  }
  if (!any) return null;
  out.cost_usd = Math.round(out.cost_usd * 1e6) / 1e6;
  delete (out as Partial<ActiveWorker['progress']>).tail;
  return out;
}
