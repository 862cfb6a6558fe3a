/**
 * Approval-mode fixtures: a ticket driven through the store the way the dispatcher
 * drives it (filed, claimed, its run's branch recorded, finished in
 * awaiting_approval with an outcome row), its ticket folder holding what a worker's
 * phase 5 leaves (push.env, plan.md, verdict.json, outcome.json), and a small git
 * target with a bare origin whose bot branch carries a real fix commit.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BugbotConfig } from '../../control/config.ts';
import { buildOutcomeRow, readOutcome } from '../../control/dispatcher/outcome.ts';
import { workspacePaths } from '../../control/dispatcher/workspace.ts';
import type { Intake } from '../../control/intake/index.ts';
import type { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { claimNext, finishRun, setRunProcess, type RunRow } from '../../control/queue/leases.ts';
import type { Store } from '../../control/queue/store.ts';
import type { Severity } from '../../control/types.ts';

let seq = 0;

/** File a ticket by hand (queued at once: a person filed it and settleSeconds is 0). */
export function fileTicket(intake: Intake, title: string, message: string, severity?: Severity): number {
  const at = new Date().toISOString();
  const [r] = intake.accept([
    {
      source: 'manual',
      kind: 'error',
      title,
      message,
      labels: severity ? { severity } : {},
      count: 1,
      firstSeen: at,
      lastSeen: at,
      human: true,
      sourceEventId: `approval-test-${process.pid}-${++seq}`,
    },
  ]);
  return r!.ticketId!;
}

export interface AwaitingFix {
  ticketId: number;
  run: RunRow;
  branch: string;
  ticketDir: string;
}

/**
 * Claim the ticket, record its run's branch, leave a worker's phase-5 files and finish
 * the run in awaiting_approval (plus its outcome row when an archive is given).
 * `pushBranch` makes the branch's commit on the target (see pushFixBranch).
 */
export function finishAwaiting(
  o: { store: Store; config: BugbotConfig; archive?: OutcomeArchive; ticketId: number },
  pushBranch?: (branch: string) => { commit: string; files: number; insertions: number; deletions: number },
): AwaitingFix {
  const { store, config } = o;
  const claim = claimNext(store, 1, null, 600);
  if (!claim || claim.ticket.id !== o.ticketId) throw new Error(`ticket ${o.ticketId} was not the next one to claim`);
  const ws = workspacePaths(config, { id: o.ticketId }, claim.run);
  setRunProcess(store, claim.run.id, { branch: ws.branch, worktree: ws.worktree });
  const pushed = pushBranch?.(ws.branch) ?? { commit: 'f'.repeat(40), files: 1, insertions: 2, deletions: 1 };
  mkdirSync(join(ws.ticketDir, 'agent'), { recursive: true });
  writeFileSync(
    join(ws.ticketDir, 'push.env'),
    [
      `branch=${ws.branch}`,
      `files=${pushed.files}`,
      `insertions=${pushed.insertions}`,
      `deletions=${pushed.deletions}`,
      'tests_first_try=true',
      'tests_preexisting=0',
      `commit=${pushed.commit}`,
      `pushed_to=${ws.branch}`,
      'duration_s=3',
      `finished=${new Date().toISOString()}`,
    ].join('\n') + '\n',
  );
  writeFileSync(join(ws.ticketDir, 'agent', 'plan.md'), '# Plan\n\nRoot cause: greeting() returns the wrong word.\nFix: return "fixed".\n');
  writeFileSync(
    join(ws.ticketDir, 'agent', 'verdict.json'),
    JSON.stringify({ verdict: 'approved', reasons: ['the test covers the bug'], edits: 0, edits_observed: 0 }),
  );
  writeFileSync(
    join(ws.ticketDir, 'outcome.json'),
    JSON.stringify({
      state: 'awaiting_approval',
      outcome: 'clean',
      reason: `pushed ${ws.branch} for approval`,
      started: claim.run.started_at,
      finished: new Date().toISOString(),
      stages: {},
      branch: ws.branch,
      commit: pushed.commit,
      pushed_to: ws.branch,
      diff: { files: pushed.files, insertions: pushed.insertions, deletions: pushed.deletions },
      tests: { passed: 12, failed: 0 },
      cost_usd: 0.5,
      denials: [],
    }),
  );
  const reason = `pushed ${ws.branch} for approval`;
  finishRun(store, claim.run.id, { ticketState: 'awaiting_approval', outcome: 'clean', reason });
  if (o.archive) {
    const ticket = store.getTicket(o.ticketId)!;
    o.archive.append(buildOutcomeRow({ ticket, run: claim.run, outcome: readOutcome(ws.ticketDir), state: 'awaiting_approval', reason, model: null }));
  }
  return { ticketId: o.ticketId, run: claim.run, branch: ws.branch, ticketDir: ws.ticketDir };
}

export interface GitTarget {
  repo: string;
  origin: string;
  git(...args: string[]): string;
  originGit(...args: string[]): string;
}

const gitIn = (cwd: string, args: string[]) =>
  execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** A small target: main and staging on a bare origin, `greeting.txt` and `other.txt`. */
export function createGitTarget(dir: string): GitTarget {
  const repo = join(dir, 'target');
  const origin = join(dir, 'origin.git');
  gitIn(dir, ['init', '--quiet', '--bare', '--initial-branch=main', origin]);
  mkdirSync(repo);
  gitIn(repo, ['init', '--quiet', '--initial-branch=main']);
  gitIn(repo, ['config', 'user.name', 'Target Dev']);
  gitIn(repo, ['config', 'user.email', 'dev@target.test']);
  writeFileSync(join(repo, 'greeting.txt'), 'hello\n');
  writeFileSync(join(repo, 'other.txt'), 'one\ntwo\n');
  gitIn(repo, ['add', '-A']);
  gitIn(repo, ['commit', '--quiet', '-m', 'initial']);
  gitIn(repo, ['remote', 'add', 'origin', origin]);
  gitIn(repo, ['push', '--quiet', 'origin', 'main', 'main:staging']);
  gitIn(repo, ['fetch', '--quiet', 'origin']);
  return { repo, origin, git: (...a) => gitIn(repo, a), originGit: (...a) => gitIn(origin, a) };
}

/**
 * A branch `branch` whose first commit adds infra/deploy.yaml (a sensitive path) and
 * moves refs/remotes/origin/main onto itself, as an agent's sandbox could, then the fix
 * (greeting.txt). Returns the commit the run started from and the branch's head.
 */
export function sneakBehindMovedBase(target: GitTarget, branch: string): { base: string; head: string } {
  const base = target.git('rev-parse', 'HEAD');
  target.git('checkout', '--quiet', '-b', branch);
  mkdirSync(join(target.repo, 'infra'));
  writeFileSync(join(target.repo, 'infra', 'deploy.yaml'), 'replicas: 0\n');
  target.git('add', '-A');
  target.git('commit', '--quiet', '-m', 'sneak');
  target.git('update-ref', 'refs/remotes/origin/main', 'HEAD');
  writeFileSync(join(target.repo, 'greeting.txt'), 'fixed\n');
  target.git('commit', '--quiet', '-am', 'fix');
  return { base, head: target.git('rev-parse', 'HEAD') };
}

/**
 * What a worker does for a fix: a worktree of the base checkout on the bot branch from
 * origin/main, a commit, the branch pushed to origin, the worktree removed.
 */
export function pushFixBranch(target: GitTarget, branch: string, file: string, content: string, message = 'bugbot: fix') {
  const wt = join(target.repo, '..', `wt-${branch.replace(/\W+/g, '-')}`);
  target.git('worktree', 'add', '--quiet', '--no-track', '-b', branch, wt, 'origin/main');
  writeFileSync(join(wt, file), content);
  gitIn(wt, ['add', '-A']);
  gitIn(wt, ['-c', 'user.name=bugbot', '-c', 'user.email=bugbot@localhost', 'commit', '--quiet', '-m', message]);
  gitIn(wt, ['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`]);
  const commit = gitIn(wt, ['rev-parse', 'HEAD']);
  target.git('worktree', 'remove', '--force', wt);
  return { commit, files: 1, insertions: 1, deletions: 1 };
}
