/**
 * Start-up reconciliation: nothing a previous control plane started survives it.
 * Workers it left running (kill -9 of the control plane leaves its children) are
 * stopped by process group, with their dev servers and Claude sessions; their runs
 * are requeued within the attempt limit (else failed); worktrees that belong to no
 * live run are removed, keeping their branches.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BugbotConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { reclaimRuns, type RunRow } from '../queue/leases.ts';
import type { Store } from '../queue/store.ts';

/** Kill a process group if its leader is still the process we think it is. */
function killGroup(pid: number, expect: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(expect)) return false;
    process.kill(-pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/** PIDs a run's helpers recorded: dev server, Claude session, background test gate (each a process group). */
function recordedPids(ticketDir: string): number[] {
  const out: number[] = [];
  for (const f of ['devserver.pid', 'phase.pid', 'gate.pid']) {
    try {
      const n = Number(readFileSync(join(ticketDir, f), 'utf8').trim());
      if (n > 1) out.push(n);
    } catch {
      // not recorded
    }
  }
  return out;
}

export function reconcile(config: BugbotConfig, store: Store, logger: Logger): { requeued: number; failed: number; worktreesRemoved: number } {
  const orphans = reclaimRuns(store, { maxAttempts: config.queue.maxAttempts, onlyExpired: false, reason: 'control plane restarted' });
  for (const { run, ticketState } of orphans) {
    stopRunProcesses(config.home, run);
    logger.warn('reconciled orphaned run', { run: run.id, ticket: run.ticket_id, now: ticketState });
  }
  const removed = removeOrphanWorktrees(config, store, logger);
  return {
    requeued: orphans.filter((o) => o.ticketState === 'queued').length,
    failed: orphans.filter((o) => o.ticketState === 'failed').length,
    worktreesRemoved: removed,
  };
}

/**
 * Stop a run's worker, dev server and Claude session, wherever they are. With
 * `leaderGone` the worker itself has exited (we saw it): its process group is killed
 * without checking the leader's command line.
 */
export function stopRunProcesses(home: string, run: Pick<RunRow, 'pid' | 'ticket_id' | 'id'>, opts: { leaderGone?: boolean } = {}): void {
  if (run.pid && opts.leaderGone) {
    try {
      process.kill(-run.pid, 'SIGKILL');
    } catch {
      // nothing left in the group
    }
  } else if (run.pid) killGroup(run.pid, 'worker.sh');
  const ticketDir = join(home, 'tickets', String(run.ticket_id), `run-${run.id}`);
  for (const pid of recordedPids(ticketDir)) killGroup(pid, '');
}

/** Remove one worktree (its branch stays), under the harness's lock on the shared checkout. */
export function removeWorktree(repo: string, path: string): boolean {
  if (!existsSync(path)) return false;
  const locked = (...args: string[]) => {
    const common = execFileSync('git', ['-C', repo, 'rev-parse', '--path-format=absolute', '--git-common-dir'], { encoding: 'utf8' }).trim();
    execFileSync('flock', [join(common, 'bugbot.lock'), 'git', '-C', repo, ...args], { stdio: 'ignore' });
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
    removeWorktree(config.target.repo, path);
    n++;
    logger.warn('removed orphaned worktree', { path });
  }
  try {
    execFileSync('git', ['-C', config.target.repo, 'worktree', 'prune'], { stdio: 'ignore' });
  } catch {
    // not a git repository (no worktrees were ever made)
  }
  return n;
}
