/**
 * Start-up reconciliation: nothing a previous control plane started survives it.
 * Workers it left running (kill -9 of the control plane leaves its children) are asked
 * to stop and waited for (a push under way finishes and is recorded), then stopped by
 * process group, with their dev servers and Claude sessions; their runs are finished as
 * they ended when they got that far, else requeued within the attempt limit (else
 * failed); worktrees and temp folders that belong to no live run are removed, keeping the
 * worktrees' branches. Approvals whose
 * process died mid-merge are given up, their merges stopped and their folders removed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import type { BugbotConfig } from '../config.ts';
import { pinnedGitEnv, plainGitEnv } from '../git-pin.ts';
import type { Logger } from '../log.ts';
import { abandonApproval, approvalGiveUp, APPROVAL_STALE_SECONDS, type ApprovalRow } from '../queue/approvals.ts';
import { activeRuns, finishRun, reclaimRuns, setRunNotice, stoppingRuns, type RunRow } from '../queue/leases.ts';
import type { OutcomeArchive, OutcomeRow } from '../outcomes/archive.ts';
import type { Ticket, TicketState } from '../types.ts';
import { archiveRow, attemptsNote, buildOutcomeRow, cancelledRunEnd, LANDED_STATES, readOutcome, runNotice } from './outcome.ts';
import { REPO_ROOT } from './phases.ts';
import type { Store } from '../queue/store.ts';
import { approvalWorkDir, gitIdentityEnv, runTmpRoot } from './workspace.ts';

/** The files a run's helpers record their process group in (harness/worker.sh, lib/run-phase.mjs, lib/push.sh). */
const PID_FILES = ['devserver.pid', 'phase.pid', 'gate.pid'] as const;
/** USER_HZ: the unit of /proc/<pid>/stat's start time (100 on every architecture Linux runs on here). */
const CLOCK_TICKS_PER_S = 100;
/** Slack for a pid file's mtime against a process's start: file systems with coarse times, small clock steps. */
const START_SLACK_S = 2;

interface ProcInfo {
  argv: string[];
  /** Start time in clock ticks since boot. */
  startTicks: number;
}

/**
 * A live process as /proc shows it; null when there is none, it cannot be read, or it has
 * exited and waits to be reaped (a zombie: its command line reads empty, so it would be
 * taken for another program's process, and there is nothing left of it to stop).
 */
function procInfo(pid: number): ProcInfo | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ...": comm may hold spaces and parentheses; starttime is field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return { argv, startTicks: Number(fields[19]) };
  } catch {
    return null;
  }
}

/** When the machine booted, seconds since the epoch (/proc/stat btime, whole seconds rounded down). */
function bootTimeS(): number | null {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Whether a command line names a path: an argument that is it, or a path below it. */
function mentions(argv: string[], paths: string[]): boolean {
  return argv.some((a) => paths.some((p) => a === p || a.startsWith(`${p}/`)));
}

/** Kill a process group; false when nothing was left in it. */
function killPgid(pid: number): boolean {
  try {
    process.kill(-pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the process a run's pid file names is not provably the one the run started, or
 * null when it is. A PID is reused once its process is gone, and after a reboot the
 * recorded ones belong to whatever started since (a shell, tmux, a database): the file
 * must be from this boot, the process must have existed when the file was written (each
 * file is written after its process started: by run-phase.mjs after the spawn, by
 * worker.sh after the dev server's fork, by the gate's own shell), and its command line
 * must name this run's ticket folder or worktree (Claude Code's --settings and
 * --mcp-config, bubblewrap's --bind of the worktree and the ticket's home, the gate's
 * arguments).
 */
function notTheRunsProcess(info: ProcInfo, recordedAtS: number, paths: string[]): string | null {
  const boot = bootTimeS();
  if (boot === null || !Number.isFinite(info.startTicks)) return 'its start time cannot be read';
  if (recordedAtS < boot) return 'the pid file predates this boot';
  if (boot + info.startTicks / CLOCK_TICKS_PER_S > recordedAtS + START_SLACK_S) return 'the process started after the pid file was written';
  if (!mentions(info.argv, paths)) return `its command line names none of ${paths.join(', ')}`;
  return null;
}

/** A run whose worker finished its work while no control plane was there to see it. */
export interface FinishedWhileDown {
  row: OutcomeRow;
  ticket: Ticket;
}

/**
 * How long workers are given to stop on a SIGTERM (their cleanup, a push under way) before
 * they are killed: by the pool when the control plane stops, and by a start for the
 * workers a previous control plane left going.
 */
export const WORKER_STOP_WAIT_MS = 20_000;

/** Whether a process is the run's worker: the pool runs `bash harness/worker.sh SLOT TICKET_DIR`. */
function isRunsWorker(info: ProcInfo, ticketDir: string): boolean {
  return info.argv.some((a) => a.endsWith('worker.sh')) && info.argv.includes(ticketDir);
}

/**
 * Ask a run's worker to stop as the pool asks its own (SIGTERM to its process group): it
 * writes its outcome on the way out, and a push under way finishes first
 * (harness_run_uninterrupted). False when no worker of the run is there (or the PID is
 * not provably its worker).
 */
export function askRunsWorkerToStop(home: string, run: Pick<RunRow, 'pid' | 'ticket_id' | 'id'>): boolean {
  if (!run.pid) return false;
  const info = procInfo(run.pid);
  if (!info || !isRunsWorker(info, runDir(home, run))) return false;
  try {
    process.kill(-run.pid, 'SIGTERM');
    return true;
  } catch {
    return false;
  }
}

/**
 * The workers a killed control plane left going are asked to stop, and waited for (up to
 * `waitMs`), before their runs are looked at: one that was pushing finishes its push and
 * says so in its outcome, so its fix is recorded as pushed instead of made again by the
 * next attempt (a SIGKILL could land between the remote's update and the record). What is
 * still there after the wait is killed with the rest of its run.
 */
function stopLeftWorkers(config: BugbotConfig, store: Store, logger: Logger, waitMs: number): void {
  const left = [...activeRuns(store), ...stoppingRuns(store)].filter((run) => askRunsWorkerToStop(config.home, run));
  if (!left.length) return;
  logger.warn('asked the workers a previous control plane left going to stop; waiting for them', { runs: left.map((r) => r.id), waitSeconds: waitMs / 1000 });
  const alive = () => left.filter((run) => {
    const info = run.pid ? procInfo(run.pid) : null;
    return info !== null && isRunsWorker(info, runDir(config.home, run));
  });
  // A duration (performance.now()): a step of the wall clock forward cut a push's wait short, one back stalled the start.
  const until = performance.now() + waitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (alive().length && performance.now() < until) Atomics.wait(pause, 0, 0, 50);
  const still = alive();
  if (still.length) logger.warn('workers still going after the wait: they are killed', { runs: still.map((r) => r.id) });
}

/** What a run's reason says when the machine could not host it (counted per ticket: machineFailureEnd). */
const ENV_MARK = 'the machine could not host it';
/** How many times one ticket's attempt is given back for runs the machine could not host. */
const ENV_REFUNDS = 3;
/** What a run's reason says when no ticket could have caused its failure (never counted; not matched by ENV_MARK). */
const ENV_ALWAYS_MARK = 'no ticket can cause this';

/**
 * Why the machine could not host the run (harness_fail_env wrote it), whether only its
 * slot is concerned (`scope: slot`), and whether no ticket can cause it (`counts: never`),
 * or null. A failure of the slot's own is no ticket's either (uncounted): its port held by
 * another process (another bugbot home with the same target.basePort, a dev server someone
 * left running) is found before anything of the ticket runs. Counted, it failed for good
 * the tickets that slot claimed each time its pause ended while the other slots were busy.
 */
export function environmentFailure(ticketDir: string): { reason: string; slotOnly: boolean; uncounted: boolean } | null {
  let text: string;
  try {
    text = readFileSync(join(ticketDir, 'environment-failure'), 'utf8');
  } catch {
    return null;
  }
  const [first = '', ...rest] = text.split('\n');
  const reason = first.trim().slice(0, 1000);
  const slotOnly = rest.some((l) => l.trim() === 'scope: slot');
  return reason ? { reason, slotOnly, uncounted: slotOnly || rest.some((l) => l.trim() === 'counts: never') } : null;
}

/**
 * How a run the machine could not host ends: back to the queue with its attempt not
 * counted, ENV_REFUNDS times for one ticket; after that the attempt counts (what looks
 * like the machine's fault may be the ticket's: a ticket folder that cannot be made for
 * it, a dependency install its branch breaks), so no ticket loops for ever. A failure
 * the harness marks `uncounted` (no ticket can cause it: the model endpoint refusing
 * the key or out of credit, nothing answering at its address) is given back however
 * often, and is not one of those ENV_REFUNDS (ENV_ALWAYS_MARK, not ENV_MARK). `pause`:
 * what the workers do meanwhile, for the reason (the pool's; none at start).
 */
export function machineFailureEnd(
  store: Store,
  config: Pick<BugbotConfig, 'queue'>,
  run: Pick<RunRow, 'id' | 'ticket_id' | 'attempt'>,
  why: string,
  uncounted: boolean,
  pause?: string,
): { state: TicketState; reason: string; refund: boolean } {
  const and = pause ? `, and ${pause}` : '';
  if (uncounted) return { state: 'queued', reason: `${why}; ${ENV_ALWAYS_MARK}: requeued (this attempt not counted, however often)${and}`, refund: true };
  const before = (store.stmt('SELECT COUNT(*) AS n FROM runs WHERE ticket_id = ? AND id != ? AND reason LIKE ?').get(run.ticket_id, run.id, `%${ENV_MARK}%`) as { n: number }).n;
  if (before < ENV_REFUNDS) return { state: 'queued', reason: `${why}; ${ENV_MARK}: requeued (this attempt not counted)${and}`, refund: true };
  const again = run.attempt < config.queue.maxAttempts;
  return { state: again ? 'queued' : 'failed', reason: `${why}; ${ENV_MARK} ${before + 1} times for this ticket: ${attemptsNote(run.attempt, config.queue.maxAttempts, again)}${and}`, refund: false };
}

/** A run's folder, as workspace.ts names it. */
function runDir(home: string, run: Pick<RunRow, 'ticket_id' | 'id'>): string {
  return join(home, 'tickets', String(run.ticket_id), `run-${run.id}`);
}

export function reconcile(
  config: BugbotConfig,
  store: Store,
  logger: Logger,
  archive?: OutcomeArchive,
  opts: { leftWorkersWaitMs?: number } = {},
): { requeued: number; failed: number; worktreesRemoved: number; finished: FinishedWhileDown[] } {
  stopLeftWorkers(config, store, logger, opts.leftWorkersWaitMs ?? WORKER_STOP_WAIT_MS);
  const finished = [...finishRunsThatLanded(config, store, logger, archive), ...finishCancelledRuns(config, store, logger, archive)];
  const orphans = reclaimDeadRuns(config, store, logger, archive, {
    onlyExpired: false,
    audit: 'control plane restarted',
    why: 'the control plane restarted while the run was under way',
  });
  const removed = removeOrphanWorktrees(config, store, logger);
  removeOrphanTmp(config, store, logger);
  reconcileApprovals(config, store, logger);
  return {
    requeued: orphans.filter((o) => o.ticketState === 'queued').length,
    failed: orphans.filter((o) => o.ticketState === 'failed').length,
    worktreesRemoved: removed,
    finished,
  };
}

/**
 * Return dead runs' tickets to the queue (within the attempt limit, else failed): every
 * running run at start, or (the dispatcher's poll) those whose lease ran out with no
 * worker of `keep` on them. What is left of each is stopped; each gets its row (what it
 * spent, from its outcome.json when the worker got that far), labelled failed, with what
 * became of the ticket.
 */
export function reclaimDeadRuns(
  config: BugbotConfig,
  store: Store,
  logger: Logger,
  archive: OutcomeArchive | undefined,
  opts: { onlyExpired: boolean; keep?: ReadonlySet<number>; audit: string; why: string },
): Array<{ run: RunRow; ticketState: TicketState; row: OutcomeRow | null; ticket: Ticket | null }> {
  const dead = reclaimRuns(store, { maxAttempts: config.queue.maxAttempts, onlyExpired: opts.onlyExpired, reason: opts.audit, ...(opts.keep ? { keep: opts.keep } : {}) });
  return dead.map(({ run, ticketState }) => {
    stopRunProcesses(config.home, run, { logger });
    logger.warn('reclaimed a run no worker is on', { run: run.id, ticket: run.ticket_id, now: ticketState, why: opts.why });
    const ticket = store.getTicket(run.ticket_id) ?? null;
    if (!ticket) return { run, ticketState, row: null, ticket };
    const ticketDir = runDir(config.home, run);
    const outcome = readOutcome(ticketDir);
    const reason =
      `${opts.why}${outcome ? ` (it had reached: ${outcome.reason})` : ''}; ` + attemptsNote(run.attempt, config.queue.maxAttempts, ticketState === 'queued');
    const row = buildOutcomeRow({ ticket, run, outcome, state: ticketState, reason, model: config.harness.model ?? null, ticketDir });
    archiveRow(archive, row, logger);
    if (Object.keys(row.stages).length) store.saveStages(run.id, row.stages);
    // The failure its reporters hear of, in the row's words (reclaimRuns left a shorter one).
    if (ticketState === 'failed') setRunNotice(store, run.id, runNotice(row));
    return { run, ticketState, row, ticket };
  });
}

/**
 * Workers outlive a control plane that was killed: one may have pushed (or reached
 * approval, or a conflict, or failed) before this start. Its outcome.json says so; the
 * run is finished as it ended, with its outcome row, instead of being requeued to fix the
 * same bug again. The caller tells the reporters.
 */
function finishRunsThatLanded(config: BugbotConfig, store: Store, logger: Logger, archive?: OutcomeArchive): FinishedWhileDown[] {
  const out: FinishedWhileDown[] = [];
  for (const run of activeRuns(store)) {
    const ticketDir = runDir(config.home, run);
    const outcome = readOutcome(ticketDir);
    // A run that failed is over as well: the pool fails its ticket, and so does a start
    // (another attempt would only pay for the same failure). One stopped by a signal
    // (cancelled) is not: reclaimDeadRuns gives it its attempts.
    const state = LANDED_STATES.find((s) => s === outcome?.state) ?? (outcome?.state === 'failed' ? ('failed' as const) : undefined);
    const ticket = store.getTicket(run.ticket_id);
    if (!outcome || !state || !ticket) continue;
    stopRunProcesses(config.home, run, { logger });
    // Unless the machine could not host it (harness_fail_env): the pool would requeue it,
    // its attempt given back, and a start must not fail for good a ticket the remote, the
    // model endpoint or the disk let down while no control plane was up.
    const env = outcome.state === 'failed' ? environmentFailure(ticketDir) : null;
    const end = env
      ? machineFailureEnd(store, config, run, `${env.reason} (while the control plane was down)`, env.uncounted)
      : { state, reason: `${outcome.reason} (finished while the control plane was down)`, refund: false };
    const reason = (archive?.redact ?? ((text: string) => text))(end.reason);
    const row = buildOutcomeRow({ ticket, run, outcome, state: end.state, reason, model: config.harness.model ?? null });
    archiveRow(archive, row, logger);
    finishRun(store, run.id, { ticketState: end.state, outcome: row.outcome, reason, notice: runNotice(row) }, { refund: end.refund });
    store.saveStages(run.id, row.stages);
    logger.warn('run finished while the control plane was down', { run: run.id, ticket: run.ticket_id, state: end.state });
    out.push({ row, ticket: store.getTicket(run.ticket_id) ?? ticket });
  }
  return out;
}

/**
 * Runs cancelled while no control plane saw their worker stop (a cancel from the CLI
 * with none up, or a control plane killed before the worker ended): the worker may still
 * be going, and would push a cancelled fix. It is stopped; its run ends as the pool
 * ends a cancelled one (the cancel stands unless the fix was on staging first), with
 * its outcome row. Its worktree goes with the orphans', its partial work on its branch.
 */
export function finishCancelledRuns(
  config: BugbotConfig,
  store: Store,
  logger: Logger,
  archive?: OutcomeArchive,
  /** The dispatcher's: runs whose workers it watches are left to it, and only runs whose lease ran out are taken. */
  opts: { keep?: ReadonlySet<number>; expired?: boolean; when?: string } = {},
): FinishedWhileDown[] {
  const out: FinishedWhileDown[] = [];
  const now = store.nowIso();
  for (const run of stoppingRuns(store)) {
    if (opts.keep?.has(run.id) || (opts.expired && !(run.lease_until < now))) continue;
    stopRunProcesses(config.home, run, { logger });
    const ticketDir = runDir(config.home, run);
    const outcome = readOutcome(ticketDir);
    const end = cancelledRunEnd(outcome, run.reason ?? 'cancelled', run.branch);
    const { state, overCancel: pushedFirst } = end;
    const redact = archive?.redact ?? ((text: string) => text);
    const reason = redact(pushedFirst ? end.reason : `${end.reason}; its worker was stopped ${opts.when ?? 'when the control plane started'}`);
    logger.warn('stopped a cancelled run left going', { run: run.id, ticket: run.ticket_id, state });
    const ticket = store.getTicket(run.ticket_id);
    const row = ticket && buildOutcomeRow({ ticket, run, outcome, state, reason, model: config.harness.model ?? null, ticketDir });
    if (row) archiveRow(archive, row, logger);
    finishRun(store, run.id, { ticketState: state, outcome: row?.outcome ?? 'failed', reason, ...(row ? { notice: runNotice(row) } : {}) }, { overCancel: pushedFirst });
    if (!ticket || !row) continue;
    if (Object.keys(row.stages).length) store.saveStages(run.id, row.stages);
    out.push({ row, ticket: store.getTicket(run.ticket_id) ?? ticket });
  }
  return out;
}

/**
 * Stop a run's worker, dev server, Claude session and test gate, wherever they are.
 * With `leaderGone` the worker itself has exited (we saw it): its process group is
 * killed without checking the leader's command line. Every other PID is checked first
 * (`notTheRunsProcess`): one that is not provably the run's is left alone, and logged.
 */
export function stopRunProcesses(
  home: string,
  run: Pick<RunRow, 'pid' | 'ticket_id' | 'id'>,
  opts: { leaderGone?: boolean; logger?: Logger } = {},
): void {
  // The paths workspace.ts gives the run.
  const ticketDir = runDir(home, run);
  const worktree = join(home, 'worktrees', `ticket-${run.ticket_id}-run-${run.id}`);
  if (run.pid && opts.leaderGone) killPgid(run.pid);
  else if (run.pid) {
    const info = procInfo(run.pid);
    if (info && isRunsWorker(info, ticketDir)) killPgid(run.pid);
    else if (info) opts.logger?.warn('left a process alone: not the run\'s worker', { run: run.id, pid: run.pid });
  }
  for (const file of PID_FILES) stopRecordedGroup(join(ticketDir, file), [ticketDir, worktree], opts.logger);
}

/**
 * Kill the process group a pid file names, when its leader is provably the one that
 * wrote it (notTheRunsProcess: this boot, started before the file, a command line that
 * names one of `paths`); one that is not is left alone, and logged.
 */
function stopRecordedGroup(path: string, paths: string[], logger?: Logger): void {
  let pid: number;
  let recordedAtS: number;
  try {
    pid = Number(readFileSync(path, 'utf8').trim());
    recordedAtS = statSync(path).mtimeMs / 1000;
  } catch {
    return; // not recorded
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  const info = procInfo(pid);
  if (!info) return; // gone
  const why = notTheRunsProcess(info, recordedAtS, paths);
  if (why === null) killPgid(pid);
  else logger?.warn('left a recorded process alone: not provably the one that wrote its pid file', { pid, file: path, reason: why });
}

/**
 * What git needs to remove worktrees of the base checkout `repo`: none of the control
 * plane's secrets, and that checkout's own repository pinned (git-pin.ts); null when its
 * `.git` holds a planted `commondir` (the folders then go without git).
 */
function worktreeGitEnv(repo: string): NodeJS.ProcessEnv | null {
  try {
    return pinnedGitEnv(repo, plainGitEnv());
  } catch {
    return null;
  }
}

/** Remove one worktree (its branch stays), under the harness's lock on the shared checkout. */
export function removeWorktree(repo: string, path: string): boolean {
  if (!existsSync(path)) return false;
  const env = worktreeGitEnv(repo);
  const locked = (...args: string[]) => {
    if (!env) throw new Error(`${repo}/.git holds a commondir`);
    const common = execFileSync('git', ['-C', repo, 'rev-parse', '--path-format=absolute', '--git-common-dir'], { encoding: 'utf8', env }).trim();
    execFileSync('flock', [join(common, 'bugbot.lock'), 'git', '-C', repo, ...args], { stdio: 'ignore', env });
  };
  try {
    locked('worktree', 'remove', '--force', path);
  } catch {
    execFileSync('rm', ['-rf', path]);
  }
  try {
    locked('worktree', 'prune');
  } catch {
    // not a git repository
  }
  return true;
}

/**
 * removeWorktree for a running control plane: off the event loop, since the repository's
 * lock may be held for a while (another worker's fetch) and nothing else may wait on it.
 * With `keepWorkOf` (bugbot's configuration: its home, the commits' identity), what the worktree holds uncommitted is committed to
 * its branch first (keepPartialWork). The test gate's checkouts beside it go too.
 */
export function removeWorktreeInBackground(repo: string, path: string, logger: Logger, opts: { keepWorkOf?: KeepWorkOf } = {}): void {
  const paths = [path, `${path}.gate`, `${path}.base`].filter((p) => existsSync(p));
  if (!paths.length) return;
  const run = promisify(execFile);
  void (async () => {
    const keep = opts.keepWorkOf ? partialWorkCommand(opts.keepWorkOf, path) : null;
    if (keep) await run(keep.file, keep.args, keep.options).catch((err: Error) => logger.warn(KEEP_FAILED, { worktree: path, error: err.message }));
    const env = worktreeGitEnv(repo);
    if (!env) {
      for (const p of paths) await rm(p, { recursive: true, force: true });
      return;
    }
    const common = (await run('git', ['-C', repo, 'rev-parse', '--path-format=absolute', '--git-common-dir'], { env })).stdout.trim();
    const lock = join(common, 'bugbot.lock');
    for (const p of paths) await run('flock', [lock, 'git', '-C', repo, 'worktree', 'remove', '--force', p], { env }).catch(() => rm(p, { recursive: true, force: true }));
    await run('flock', [lock, 'git', '-C', repo, 'worktree', 'prune'], { env }).catch(() => undefined);
  })().catch((err: Error) => logger.warn('could not remove a worktree', { path, error: err.message }));
}

const KEEP_FAILED = "could not commit a stopped run's partial work to its branch; it goes with the worktree";

/**
 * A worker killed without its trap (SIGKILL; a control plane killed with it, whose restart
 * stops the workers it left) never committed what its worktree held: commit it to the
 * run's branch before the worktree goes, as the trap would (harness_keep_partial_work,
 * with the run's git settings: its excludes, no hooks, the shared repository pinned). Null for what is not a run's
 * worktree (the test gate's checkouts).
 */
type KeepWorkOf = Pick<BugbotConfig, 'home' | 'harness' | 'target'>;

function partialWorkCommand(cfg: KeepWorkOf, worktree: string): { file: string; args: string[]; options: { env: NodeJS.ProcessEnv; timeout: number } } | null {
  const m = /^ticket-(\d+)-run-(\d+)$/.exec(basename(worktree));
  if (!m || !existsSync(worktree)) return null;
  const ticketDir = join(cfg.home, 'tickets', m[1]!, `run-${m[2]}`);
  const script =
    'set -euo pipefail; TICKET_DIR=$2; source "$1/lib/common.sh"; source "$1/lib/push.sh"; harness_git_env "$2/config/git-excludes"; ' +
    // Pinned as in the worker: the worktree's commondir is the agent's to rewrite.
    'harness_git_pin "$5"; harness_keep_partial_work "$3" "$4" >/dev/null';
  const message = `bugbot: partial work on ticket ${m[1]} (run ${m[2]} stopped without finishing)`;
  return {
    file: 'bash',
    args: ['-c', script, 'keep-partial-work', join(REPO_ROOT, 'harness'), ticketDir, worktree, message, runRepo(cfg, worktree)],
    options: {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...gitIdentityEnv(cfg) },
      timeout: 120_000,
    },
  };
}

/**
 * The repository a run's worktree was made in: the BUGBOT_REPO of its ticket.env, which
 * the control plane that claimed it wrote in the run's folder (out of the agent's reach),
 * else the configured one. They differ when target.repo was changed between a kill -9 and
 * the restart: the old worktrees are the old repository's, and their partial work goes to
 * its branches.
 */
export function runRepo(cfg: Pick<BugbotConfig, 'home' | 'target'>, worktree: string): string {
  const m = /^ticket-(\d+)-run-(\d+)$/.exec(basename(worktree));
  if (!m) return cfg.target.repo;
  let env: string;
  try {
    env = readFileSync(join(cfg.home, 'tickets', m[1]!, `run-${m[2]}`, 'ticket.env'), 'utf8');
  } catch {
    return cfg.target.repo;
  }
  // Single-quoted as workspace.ts writes it: a quote inside is '\''.
  const q = /^export BUGBOT_REPO='((?:[^']|'\\'')*)'$/m.exec(env);
  return q ? q[1]!.replace(/'\\''/g, "'") : cfg.target.repo;
}

/** partialWorkCommand, waited for (at start-up, before the orphans' worktrees go). */
function keepPartialWork(cfg: KeepWorkOf, worktree: string, logger: Logger): void {
  const keep = partialWorkCommand(cfg, worktree);
  if (!keep) return;
  try {
    execFileSync(keep.file, keep.args, { ...keep.options, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    logger.warn(KEEP_FAILED, { worktree, error: (err as Error).message });
  }
}

/** Remove a run's temp folder (workspace.ts runTmpDir) off the event loop. */
export function removeRunTmp(path: string, logger: Logger): void {
  // Retries: processes of the run still dying may write into it a moment longer.
  rm(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }).catch((err: Error) => logger.warn("could not remove a run's temp folder", { path, error: err.message }));
}

/**
 * Temp folders of runs no longer running: their workers died before their trap removed
 * them. At start every run was reclaimed already, so that is all of them. The root is the
 * home's own (runTmpRoot checks it is this user's folder, not a link).
 */
function removeOrphanTmp(config: BugbotConfig, store: Store, logger: Logger): void {
  const root = runTmpRoot(config.home);
  if (!root) return;
  const live = new Set(activeRuns(store).map((r) => `${r.ticket_id}-${r.id}`));
  for (const name of readdirSync(root)) {
    if (live.has(name)) continue;
    rmSync(join(root, name), { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    logger.warn("removed a run's orphaned temp folder", { path: join(root, name) });
  }
}

/**
 * What an approving process killed mid-merge left (the control plane, or the CLI with
 * none up): its approval in flight is given up at once, so the ticket can be approved,
 * skipped or requeued again without waiting out APPROVAL_STALE_SECONDS; the rest of its
 * merge is stopped first (harness/merge.sh runs in a process group of its own and would
 * go on to push with nobody to record it); and every folder under <home>/approvals that
 * no approval in flight owns goes, with the worktree a merge killed outright left
 * registered in the target's checkout. Approvals of live processes are left alone.
 */
function reconcileApprovals(config: BugbotConfig, store: Store, logger: Logger): void {
  const dir = join(config.home, 'approvals');
  const running = store.stmt(`SELECT * FROM approvals WHERE status = 'running'`).all() as ApprovalRow[];
  const live = new Set<string>();
  for (const a of running) {
    const workDir = approvalWorkDir(config.home, a.ticket_id, a.id);
    const why = approvalGiveUp(store, a, APPROVAL_STALE_SECONDS);
    if (why === null) {
      live.add(basename(workDir));
      continue;
    }
    stopApprovalMerge(config.home, a, logger);
    store.tx(() => abandonApproval(store, a, why));
    logger.warn('gave up an approval its process left', { ticket: a.ticket_id, approval: a.id, why });
  }
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (live.has(name) || !/^ticket-\d+-\d+$/.test(name)) continue;
    const path = join(dir, name);
    try {
      removeWorktree(config.target.repo, join(path, 'worktree'));
      rmSync(path, { recursive: true, force: true });
      logger.warn("removed a finished approval's folder", { path });
    } catch (err) {
      logger.warn("could not remove a finished approval's folder", { path, error: (err as Error).message });
    }
  }
}

/** Stop what is left of an approval's merge (harness/merge.sh's process group, merge.pid), when it is provably that merge. */
export function stopApprovalMerge(home: string, a: Pick<ApprovalRow, 'ticket_id' | 'id'>, logger?: Logger): void {
  const workDir = approvalWorkDir(home, a.ticket_id, a.id);
  stopRecordedGroup(join(workDir, 'merge.pid'), [workDir], logger);
}

/**
 * Before anyone acts on a ticket (approve, skip, requeue): an approval in flight that is
 * about to be given up (its process gone) may have left its merge running in a process
 * group of its own, which would go on to push a fix that is skipped, or merge twice. It
 * is stopped first; the store then gives the approval up.
 */
export function stopGivenUpMerge(config: BugbotConfig, store: Store, ticketId: number, logger?: Logger): void {
  const a = store.stmt(`SELECT * FROM approvals WHERE ticket_id = ? AND status = 'running'`).get(ticketId) as ApprovalRow | undefined;
  if (a && approvalGiveUp(store, a, APPROVAL_STALE_SECONDS) !== null) stopApprovalMerge(config.home, a, logger);
}

function removeOrphanWorktrees(config: BugbotConfig, store: Store, logger: Logger): number {
  const dir = join(config.home, 'worktrees');
  if (!existsSync(dir)) return 0;
  const live = new Set(
    (store.stmt(`SELECT worktree FROM runs WHERE state = 'running' AND worktree IS NOT NULL`).all() as { worktree: string }[]).map((r) => r.worktree),
  );
  let n = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (live.has(path)) continue;
    keepPartialWork(config, path, logger);
    const repo = runRepo(config, path);
    removeWorktree(repo, path);
    n++;
    logger.warn('removed orphaned worktree', { path, ...(repo !== config.target.repo ? { repo } : {}) });
  }
  try {
    const env = worktreeGitEnv(config.target.repo);
    if (env) execFileSync('git', ['-C', config.target.repo, 'worktree', 'prune'], { stdio: 'ignore', env });
  } catch {
    // not a git repository (no worktrees were ever made)
  }
  return n;
}
