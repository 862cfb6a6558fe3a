/**
 * What piles up goes after `retention`'s days: events (one row per alert, report or log
 * line; an alert storm writes thousands a minute) and finished runs' folders (stream
 * logs, prompts, plans: megabytes a run) with their local branches in the target
 * repository (`bot/ticket-...`: a run's partial work, one more branch every run) and their
 * remote-tracking refs (one more for every fix pushed for approval). Tickets,
 * their counts, the outcomes archive and what was pushed stay. An event is kept while it keeps being re-sent (a firing alert comes back every few
 * hours with the same key): its key must keep answering "duplicate". The events are
 * walked in small transactions, so intake's writer (another connection) never waits long
 * behind them, and in slices of the event loop, one a second, not one long stall.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import type { BugbotConfig } from './config.ts';
import { pinnedGitEnv, plainGitEnv } from './git-pin.ts';
import type { Logger } from './log.ts';
import { markRunFolderRemoved, runFolderExpired, runsEndedBefore } from './queue/leases.ts';
import type { Store } from './queue/store.ts';
import type { TicketState } from './types.ts';
import { workspacePaths } from './dispatcher/workspace.ts';

/** Events looked at per transaction: a few milliseconds each. */
const CHUNK = 2000;
/** Time one slice may take on the event loop before it yields. */
const SLICE_MS = 50;
const HOUR_MS = 3_600_000;

/** States whose runs' folders people still need: an approval reads its push.env, a person looks at the logs. */
const KEEP_FOLDERS_OF: readonly TicketState[] = ['running', 'awaiting_approval', 'needs_human'];

export interface SweepResult {
  events: number;
  runFolders: number;
  /** Local branches of those runs deleted (present only when some were). */
  branches?: number;
  /** Their remote-tracking branches deleted (`refs/remotes/<remote>/bot/...`; present only when some were). */
  trackingBranches?: number;
  /** False when the slice ran out of time before the end of the events table. */
  done: boolean;
}

/**
 * Walk the events by id from `after`, a chunk a transaction, deleting those last received
 * before `before`, until the end of the table or `deadline` (a performance.now() value).
 * The whole table is walked: ids follow arrival, but a clock set wrong for a while leaves
 * rows whose times do not, and an event still being re-sent keeps its key wherever it is.
 */
function pruneEvents(store: Store, before: string, after = 0, deadline = Infinity): { deleted: number; next: number | null } {
  let deleted = 0;
  let cursor = after;
  for (;;) {
    const step = store.tx(() => store.deleteOldEvents(cursor, before, CHUNK));
    deleted += step.deleted;
    if (step.upTo === null) return { deleted, next: null };
    cursor = step.upTo;
    if (performance.now() >= deadline) return { deleted, next: cursor };
  }
}

/** Finished runs whose folders may go: ended before `before`, their tickets no longer waiting on anyone nor claimed by a person. */
function expiredRunFolders(config: BugbotConfig, store: Store, before: string): Array<{ runId: number; dir: string; branch: string | null }> {
  return runsEndedBefore(store, before, KEEP_FOLDERS_OF).map((r) => ({
    runId: r.id,
    dir: workspacePaths(config, { id: r.ticket_id }, { id: r.id, worker_id: 0, started_at: '' }).ticketDir,
    branch: r.branch,
  }));
}

/** A run's branch as the dispatcher names it (workspace.ts): nothing else is ever deleted. */
const RUN_BRANCH = /^bot\/ticket-\d+-[0-9A-Za-z]+$/;
/** Branches per `git branch -D`. */
const BRANCH_BATCH = 200;
/**
 * Seconds a `git branch -D` waits for the workers' repository lock (a worker's fetch holds
 * it for minutes at most, and confined code could hold it for good): past that, the
 * branches are left to the next pass, not waited on (a stop of the control plane waits
 * for the sweep).
 */
const LOCK_WAIT_S = 60;
/** flock's exit status when its wait ran out. */
const LOCK_TIMEOUT_EXIT = 75;
/** What one git command of the sweep may take, past its wait for the lock, before it is stopped. */
const GIT_TIMEOUT_MS = 60_000;

/**
 * Delete the local branches of runs whose folders went, where the target repository still
 * has them, under the workers' repository lock (worktree.sh). Git refuses one checked
 * out in a worktree, and deletes the others. Each deleted branch is logged with its commit
 * (`git branch <name> <commit>` brings it back while git has not collected it). Their
 * remote-tracking refs (`refs/remotes/<remote>/bot/ticket-...`: approval mode's push of
 * the branch and an approval's fetch of it leave one per fix, which would keep every run's
 * commits for good) go the same way. `untried`: the branches git did not get to (the lock
 * not had in time, git stopped or failing), which the next pass tries again.
 */
async function deleteRunBranches(
  repo: string,
  remote: string,
  branches: string[],
  logger: Logger,
  lockWaitS = LOCK_WAIT_S,
): Promise<{ deleted: number; tracking: number; untried: Set<string> }> {
  const names = branches.filter((b) => RUN_BRANCH.test(b));
  if (!names.length || !isAbsolute(repo) || !existsSync(repo)) return { deleted: 0, tracking: 0, untried: new Set() };
  // None of the control plane's secrets, and the base checkout's own repository pinned
  // (git-pin.ts): a `commondir` planted in its .git leaves the branches for the next pass.
  let env: NodeJS.ProcessEnv;
  try {
    env = pinnedGitEnv(repo, plainGitEnv());
  } catch (err) {
    logger.warn("expired runs' branches left for the next pass", { repo, error: (err as Error).message });
    return { deleted: 0, tracking: 0, untried: new Set(names) };
  }
  const git = (file: string, args: string[], opts: { timeout: number }) => promisify(execFile)(file, args, { ...opts, env });
  /** The `bot/` branches under `ns` (`refs/heads/`, `refs/remotes/<remote>/`), by their name past it, with their commits. */
  const branchesUnder = async (ns: string): Promise<Map<string, string> | null> => {
    const out = await git('git', ['-C', repo, 'for-each-ref', '--format=%(refname) %(objectname)', `${ns}bot/`], { timeout: GIT_TIMEOUT_MS }).catch(() => null);
    return out && new Map(out.stdout.split('\n').filter((l) => l.startsWith(ns)).map((l) => l.slice(ns.length).split(' ') as [string, string]));
  };
  const heads = () => branchesUnder('refs/heads/');
  const trackingRefs = () => branchesUnder(`refs/remotes/${remote}/`);
  const present = await heads();
  const presentTracking = await trackingRefs();
  const common = present && presentTracking && (await git('git', ['-C', repo, 'rev-parse', '--path-format=absolute', '--git-common-dir'], { timeout: GIT_TIMEOUT_MS }).catch(() => null))?.stdout.trim();
  if (!present || !presentTracking || !common) {
    logger.warn("could not read the target repository's branches; expired runs' branches are tried again next pass", { repo });
    return { deleted: 0, tracking: 0, untried: new Set(names) };
  }
  const untried = new Set<string>();
  /** `git branch -D [extra...] <names>` a batch at a time, under the lock; what it did not get to goes to `untried`. */
  const deleteAll = async (doomed: string[], extra: string[], refName: (b: string) => string): Promise<void> => {
    for (let i = 0; i < doomed.length; i += BRANCH_BATCH) {
      const batch = doomed.slice(i, i + BRANCH_BATCH);
      const args = ['-E', String(LOCK_TIMEOUT_EXIT), '-w', String(lockWaitS), join(common, 'bugbot.lock'), 'git', '-C', repo, 'branch', '-D', ...extra, ...batch.map(refName)];
      const err = await git('flock', args, { timeout: lockWaitS * 1000 + GIT_TIMEOUT_MS }).then(
        () => null,
        (e: unknown) => e as { code?: number | string; stderr?: string },
      );
      // 1: git's refusal of some (checked out in a worktree), the others deleted.
      if (err && err.code !== 1) {
        for (const b of batch) untried.add(b);
        logger.warn("could not delete expired runs' branches (the repository lock not had, or git stopped); tried again next pass", { repo, error: err.stderr?.trim().split('\n').at(-1) ?? String(err.code) });
      }
    }
  };
  const doomed = names.filter((b) => present.has(b));
  const doomedTracking = names.filter((b) => presentTracking.has(b));
  await deleteAll(doomed, [], (b) => b);
  // Never checked out, so never refused; the branch on the remote itself is left as it is.
  await deleteAll(doomedTracking, ['-r'], (b) => `${remote}/${b}`);
  if (!doomed.length && !doomedTracking.length) return { deleted: 0, tracking: 0, untried };
  // What is gone, read back rather than from git's messages (translated in other locales).
  const after = (doomed.length ? await heads() : null) ?? present;
  const afterTracking = (doomedTracking.length ? await trackingRefs() : null) ?? presentTracking;
  const gone = doomed.filter((b) => !after.has(b));
  const goneTracking = doomedTracking.filter((b) => !afterTracking.has(b));
  const refused = doomed.filter((b) => after.has(b) && !untried.has(b));
  for (let i = 0; i < gone.length; i += BRANCH_BATCH) {
    logger.info("deleted expired runs' branches", { repo, branches: gone.slice(i, i + BRANCH_BATCH).map((b) => `${b} ${present.get(b)}`) });
  }
  for (let i = 0; i < goneTracking.length; i += BRANCH_BATCH) {
    logger.info("deleted expired runs' remote-tracking branches", { repo, branches: goneTracking.slice(i, i + BRANCH_BATCH).map((b) => `${remote}/${b} ${presentTracking.get(b)}`) });
  }
  if (refused.length) logger.warn("could not delete some expired runs' branches; they are left as they are", { repo, refused: refused.slice(0, 5) });
  return { deleted: gone.length, tracking: goneTracking.length, untried };
}

/**
 * rm -rf that also takes what the run left unwritable: a run's HOME holds what its tests
 * and tools wrote (Go's module cache is read-only, and agent code may chmod anything), and
 * a folder without write permission keeps its entries from an unprivileged user.
 */
async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch (err) {
    if (!['EACCES', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    await writableDirs(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Give the owner rwx on every folder below dir (links not followed). */
async function writableDirs(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => undefined);
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await writableDirs(join(dir, e.name));
}

export class Retention {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Where the walk over the events goes on (null: a new pass starts at the beginning). */
  private cursor: number | null = null;

  /** `lockWaitSeconds`: how long a branch deletion waits for the repository lock (LOCK_WAIT_S). */
  constructor(private readonly deps: { config: BugbotConfig; store: Store; logger: Logger; lockWaitSeconds?: number }) {}

  /** Sweep now, then every hour (a slice a second while a pass lasts). */
  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /**
   * One slice: a pass starts with the expired run folders, then walks the events (as far
   * as the slice's time allows; the next slice goes on from there).
   */
  async sweep(sliceMs = SLICE_MS): Promise<SweepResult> {
    const { config, store } = this.deps;
    const now = store.now().getTime();
    const days = (d: number) => new Date(now - d * 86_400_000).toISOString();
    const { eventsDays, runFoldersDays } = config.retention;
    let runFolders = 0;
    let branches = 0;
    let trackingBranches = 0;
    if (this.cursor === null && runFoldersDays > 0) {
      const before = days(runFoldersDays);
      // Asked again right before what goes of a run: a person may have claimed its ticket
      // (or it waits again) since the pass began.
      const stillExpired = (runId: number) => runFolderExpired(store, runId, before, KEEP_FOLDERS_OF);
      const gone: Array<{ runId: number; branch: string | null }> = [];
      for (const { runId, dir, branch } of expiredRunFolders(config, store, before)) {
        // A stop does not wait for the whole backlog: the next start's pass goes on with it.
        if (this.stopped) break;
        if (!stillExpired(runId)) continue;
        if (existsSync(dir)) {
          try {
            await removeTree(dir);
          } catch (err) {
            // One folder that cannot go stops neither the others nor the events' pruning.
            this.deps.logger.warn("could not remove an expired run's folder; tried again next pass", { dir, error: (err as Error).message });
            continue;
          }
          // The ticket's folder too, once its last run's is gone.
          await rmdir(dirname(dir)).catch(() => undefined);
          runFolders++;
        }
        gone.push({ runId, branch });
      }
      // A run is marked once its branch is dealt with too: a pass cut short (a crash, the
      // lock not had) leaves the rest to the next, which finds the folder gone and goes on.
      const due = gone.filter((g) => stillExpired(g.runId));
      const deleted = await deleteRunBranches(config.target.repo, config.target.remote, due.flatMap((g) => (g.branch ? [g.branch] : [])), this.deps.logger, this.deps.lockWaitSeconds);
      branches = deleted.deleted;
      trackingBranches = deleted.tracking;
      for (const { runId, branch } of due) if (!(branch && deleted.untried.has(branch))) markRunFolderRemoved(store, runId, new Date(now).toISOString());
    }
    const more = { ...(branches ? { branches } : {}), ...(trackingBranches ? { trackingBranches } : {}) };
    if (eventsDays === 0) return { events: 0, runFolders, ...more, done: true };
    const ev = pruneEvents(store, days(eventsDays), this.cursor ?? 0, performance.now() + sliceMs);
    this.cursor = ev.next;
    return { events: ev.deleted, runFolders, ...more, done: ev.next === null };
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.sweep()
        .then((r) => {
          if (r.events || r.runFolders || r.branches || r.trackingBranches) {
            this.deps.logger.info('retention', { events: r.events, runFolders: r.runFolders, branches: r.branches ?? 0, trackingBranches: r.trackingBranches ?? 0, more: !r.done });
          }
          this.schedule(r.done ? HOUR_MS : 1000);
        })
        .catch((err: Error) => {
          this.deps.logger.error('retention sweep failed', { error: err.message });
          this.cursor = null;
          this.schedule(HOUR_MS);
        });
    }, ms);
    this.timer.unref();
  }
}
