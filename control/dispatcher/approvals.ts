/**
 * Approval mode (harness.pushMode "approve"): a finished fix waits on its bot branch
 * in `awaiting_approval` until a person (dashboard, CLI, API, Slack button) or the
 * auto-approval rules decide. Approve merges it into staging (harness/merge.sh:
 * rebase onto the latest staging, push with bounded retry, conflict → needs_human)
 * or opens a pull request (approval.target "pr"); skip drops the ticket; requeue
 * gives it another run. The store claims each approval first, so two approvers
 * (or the CLI and the server) never merge the same fix twice.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { configuredRedactor, type BugbotConfig } from '../config.ts';
import { pinnedGitEnv, plainGitEnv } from '../git-pin.ts';
import type { Logger } from '../log.ts';
import { nextRevision, type OutcomeArchive, type OutcomeRow } from '../outcomes/archive.ts';
import {
  APPROVAL_STALE_SECONDS,
  beginApproval,
  finishApproval,
  isRefusal,
  latestRunWithBranch,
  releaseApproval,
  requeueTicket,
  skipTicket,
  type ApprovalClaim,
  type Refusal,
} from '../queue/approvals.ts';
import { clearRunNotice, type RunNotice, type RunRow } from '../queue/leases.ts';
import { toTicket, type Store } from '../queue/store.ts';
import type { ApprovalActions, ApprovalResult, Ticket, TicketNotice, TicketState } from '../types.ts';
import { autoApprovalDecision, readPushEnv, type PushEnv } from './auto-approve.ts';
import { REPO_ROOT } from './phases.ts';
import { stopGivenUpMerge } from './reconcile.ts';
import { openPullRequest, pullRequestBody, pullRequestTitle } from './pull-request.ts';
import { approvalWorkDir, workspacePaths } from './workspace.ts';

const run = promisify(execFile);

export { APPROVAL_STALE_SECONDS } from '../queue/approvals.ts';
/** Below APPROVAL_STALE_SECONDS: an approval older than that is no longer a live one's. */
const MERGE_TIMEOUT_MS = 10 * 60_000;

export interface ApprovalsDeps {
  config: BugbotConfig;
  store: Store;
  logger: Logger;
  /** Gets a new revision of the run's row when a fix is approved or skipped. */
  archive?: OutcomeArchive;
  /**
   * Tell the reporters: a fix went out (merged into staging, or its pull request opened), or
   * an approved fix did not merge (a conflict) and a person takes over.
   */
  onNotice?: (notice: TicketNotice) => void;
}

interface Outcome {
  status: 'done' | 'conflict' | 'failed';
  message: string;
  commit?: string | null;
  prUrl?: string | null;
}

export class Approvals implements ApprovalActions {
  /** Approvals under way (merging or opening a pull request): close() waits for them. */
  private readonly inFlight = new Set<Promise<ApprovalResult>>();
  private closed = false;

  private readonly redact: (text: string) => string;

  constructor(private readonly deps: ApprovalsDeps) {
    this.redact = deps.archive?.redact ?? configuredRedactor(deps.config).text;
  }

  approve(ticketId: number, actor: string, opts: { run?: number } = {}): Promise<ApprovalResult> {
    if (this.closed) {
      const state = this.deps.store.getTicket(ticketId)?.state ?? 'dropped';
      return Promise.resolve({ ok: false, ticketId, state, message: 'bugbot is shutting down: approve again once it is back', failure: 'busy' });
    }
    const work = this.approveNow(ticketId, actor, opts.run);
    this.inFlight.add(work);
    // Not work.finally(): its rejection (a write that failed) would go unhandled and end the process.
    const forget = () => void this.inFlight.delete(work);
    work.then(forget, forget);
    return work;
  }

  /**
   * Refuse new approvals and wait for those under way: a merge that reached staging is
   * recorded (ticket pushed, outcome revision, reporters told) before the database closes.
   */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
  }

  private async approveNow(ticketId: number, actor: string, expectedRun: number | undefined): Promise<ApprovalResult> {
    const { config, store, logger } = this.deps;
    const target = config.approval.target;
    stopGivenUpMerge(config, store, ticketId, logger);
    const claim = beginApproval(store, ticketId, actor, target, APPROVAL_STALE_SECONDS, expectedRun);
    if (isRefusal(claim)) return refused(ticketId, claim);
    try {
      return await this.carryOut(claim, actor);
    } finally {
      releaseApproval(claim.approval.id);
    }
  }

  /** Merge (or open the pull request for) a claimed approval, and record what came of it. */
  private async carryOut(claim: ApprovalClaim, actor: string): Promise<ApprovalResult> {
    const { config, store, logger } = this.deps;
    const target = config.approval.target;
    const ticketId = claim.ticket.id;
    const ticket = toTicket(claim.ticket, store.reportersOf(ticketId));
    const branch = claim.run.branch!;
    const ticketDir = workspacePaths(config, ticket, claim.run).ticketDir;
    const pushEnv = readPushEnv(ticketDir);
    let out: Outcome;
    try {
      out =
        target === 'pr'
          ? await this.openPr(ticket, ticketDir, pushEnv, branch)
          : pushEnv.commit
            ? await this.mergeToStaging(ticket, branch, claim.approval.id, pushEnv.commit, pushEnv.base_commit)
            : { status: 'failed' as const, message: `the run recorded no commit for ${branch}: not merging what nobody reviewed` };
    } catch (err) {
      out = { status: 'failed', message: (err as Error).message };
    }
    // git's or GitHub's words (a remote's URL with its credentials) reach the audit, the API and Slack.
    out = { ...out, message: this.redact(out.message) };
    const fixed: RunNotice | undefined =
      out.status === 'done'
        ? { run_id: claim.run.id, state: 'pushed', reason: out.message, commit: out.commit ?? null, branch, pushed_to: out.prUrl ?? config.target.stagingBranch, pr_url: out.prUrl ?? null }
        : undefined;
    const state = finishApproval(store, claim.approval.id, out, fixed);
    logger.info('approval finished', { ticket: ticketId, actor, target, status: out.status, state, commit: out.commit, pr: out.prUrl });
    if (out.status === 'done') {
      this.appendRevision(claim.run, {
        state: 'pushed',
        commit: out.commit ?? null,
        pushed_to: out.prUrl ?? config.target.stagingBranch,
        pr_url: out.prUrl ?? null,
        approved_at: store.nowIso(),
        approved_by: actor,
        trigger_to_push_s: Math.round((store.now().getTime() - Date.parse(ticket.firstSeen)) / 1000),
        regressions_detected_24h: null,
      });
      this.notify({ kind: 'fixed', ticket: store.getTicket(ticketId)!, commit: out.commit ?? undefined, prUrl: out.prUrl ?? undefined, branch });
      // Its messages are in the outbox now; a crash before this line leaves the notice for the next start.
      clearRunNotice(store, claim.run.id);
    } else if (out.status === 'conflict' && state === 'needs_human') {
      // The approved fix did not merge (a conflict): it never shipped, and a person takes over.
      this.notify({ kind: 'failed', ticket: store.getTicket(ticketId)!, reason: `approved by ${actor}, but it did not merge: ${out.message}; a person takes over` });
      const prev = this.latestRow(claim.run.id);
      if (prev) {
        this.appendRevision(claim.run, {
          state: 'needs_human',
          outcome: 'failed',
          trigger_to_push_s: null,
          reason: `${prev.reason}; approved by ${actor}, but it did not merge: ${out.message}`,
        });
      }
    }
    return {
      ok: out.status === 'done',
      ticketId,
      state,
      message: out.message,
      ...(out.commit ? { commit: out.commit } : {}),
      ...(out.prUrl ? { prUrl: out.prUrl } : {}),
      ...(out.status === 'done' ? {} : { failure: out.status === 'conflict' ? 'conflict' : 'error' }),
    };
  }

  skip(ticketId: number, actor: string, reason?: string, opts: { run?: number } = {}): ApprovalResult {
    stopGivenUpMerge(this.deps.config, this.deps.store, ticketId, this.deps.logger);
    const r = skipTicket(this.deps.store, ticketId, actor, reason?.trim() || null, APPROVAL_STALE_SECONDS, opts.run);
    if (isRefusal(r)) return refused(ticketId, r);
    this.turnedDown(r, 'dropped', `skipped by ${actor}${reason ? `: ${reason}` : ''}`);
    return { ok: true, ticketId, state: r.state, message: `ticket ${ticketId} skipped (${r.was} → dropped)${reason ? `: ${reason}` : ''}` };
  }

  requeue(ticketId: number, actor: string, opts: { run?: number } = {}): ApprovalResult {
    stopGivenUpMerge(this.deps.config, this.deps.store, ticketId, this.deps.logger);
    const r = requeueTicket(this.deps.store, ticketId, actor, APPROVAL_STALE_SECONDS, opts.run);
    if (isRefusal(r)) return refused(ticketId, r);
    this.turnedDown(r, 'queued', `requeued by ${actor} for another run`);
    return { ok: true, ticketId, state: r.state, message: `ticket ${ticketId} requeued (${r.was} → queued, attempts reset)` };
  }

  /**
   * A fix a person turned down (skipped, or sent back for another run) never shipped: its
   * run's row gets a revision saying so, not a clean (or messy) fix, no time to push (left
   * as it was, it counted as a clean fix waiting for approval for good).
   */
  private turnedDown(r: { was: TicketState; runId: number | null }, state: TicketState, why: string): void {
    const run = r.runId ? this.runRow(r.runId) : undefined;
    const prev = run && r.was === 'awaiting_approval' ? this.latestRow(run.id) : undefined;
    if (run && prev) this.appendRevision(run, { state, outcome: 'failed', trigger_to_push_s: null, reason: `${prev.reason}; ${why}` });
  }

  /**
   * After a run ends in awaiting_approval: approve it as "auto-approve" when the
   * auto-approval rules are on and all hold. The decision and its reason go to the
   * audit trail either way. Null when the rules are off or the ticket no longer waits.
   */
  async considerAutoApproval(ticketId: number): Promise<ApprovalResult | null> {
    const { config, store } = this.deps;
    const rules = config.approval.autoApprove;
    const ticket = store.getTicket(ticketId);
    if (!rules.enabled || ticket?.state !== 'awaiting_approval') return null;
    const runRow = latestRunWithBranch(store, ticketId);
    if (!runRow) return null;
    const pushEnv = readPushEnv(workspacePaths(config, ticket, runRow).ticketDir);
    const files = await changedFiles(config, pushEnv.commit ?? `${config.target.remote}/${runRow.branch}`, pushEnv.base_commit);
    // Read again after git: a person may have claimed it meanwhile (approve() below runs
    // synchronously up to its claim of the approval in the store), or requeued it, and the
    // fix waiting now is another run's, whose files and push.env the rules never saw: that
    // run's own end asks them again. The approval names the run the rules judged.
    const now = store.getTicket(ticketId);
    if (now?.state !== 'awaiting_approval' || latestRunWithBranch(store, ticketId)?.id !== runRow.id) return null;
    const decision = autoApprovalDecision(now, pushEnv, files, rules);
    store.audit(ticketId, 'auto-approve', decision.approve ? 'auto-approval' : 'auto-approval-declined', decision.reason);
    if (!decision.approve) return null;
    return this.approve(ticketId, 'auto-approve', { run: runRow.id });
  }

  /** Merge the bot branch; `reviewed` is the commit people saw (refused if the branch moved since). */
  private async mergeToStaging(ticket: Ticket, branch: string, approvalId: number, reviewed: string | null, from?: string): Promise<Outcome> {
    const { config } = this.deps;
    const t = config.target;
    const workDir = approvalWorkDir(config.home, ticket.id, approvalId);
    const args = [join(REPO_ROOT, 'harness', 'merge.sh'), t.repo, t.remote, branch, t.stagingBranch, t.baseBranch, String(config.harness.pushRetries), workDir];
    if (reviewed) args.push(reviewed);
    // Only the fix's own commits are replayed onto staging (see harness_push_staging).
    if (reviewed && from && /^[0-9a-f]{40,64}$/i.test(from)) args.push(from);
    try {
      const { stdout } = await runGroup('bash', args, { env: { ...gitEnv(), BUGBOT_GIT_NAME: config.harness.gitIdentity.name, BUGBOT_GIT_EMAIL: config.harness.gitIdentity.email }, timeoutMs: MERGE_TIMEOUT_MS });
      const commit = stdout.trim().split('\n').pop() ?? '';
      return { status: 'done', commit, message: `merged ${branch} into ${t.stagingBranch} at ${commit.slice(0, 12)}` };
    } catch (err) {
      const e = err as { code?: number | string; stderr?: string; message: string };
      if (e.code === 4) return { status: 'failed', message: (e.stderr ?? '').trim().split('\n').pop() ?? `${branch} has moved since it was reviewed` };
      // An earlier merge of this fix went through before it was stopped: it is live, under
      // no commit of its own to name (staging's head is someone else's).
      if (e.code === 5) return { status: 'done', commit: null, message: `${branch}'s changes are on ${t.stagingBranch} already (an earlier merge went through before it was stopped): nothing merged again` };
      if (e.code === 3) {
        const files = readLines(join(workDir, 'conflict.txt'));
        return { status: 'conflict', message: `rebase onto ${t.stagingBranch} conflicts in: ${files.join(', ') || '(unknown files)'}` };
      }
      const why = (e.stderr ?? '').trim().split('\n').filter(Boolean).pop() ?? e.message;
      return { status: 'failed', message: `could not merge ${branch} into ${t.stagingBranch}: ${why}` };
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  }

  /**
   * Open the pull request of the commit people reviewed (the one the run pushed): refused
   * when the branch holds another by now (pushed over since), or the run recorded none.
   */
  private async openPr(ticket: Ticket, ticketDir: string, pushEnv: PushEnv, branch: string): Promise<Outcome> {
    const { config } = this.deps;
    const redactor = configuredRedactor(config);
    const reviewed = pushEnv.commit ?? null;
    if (!reviewed) return { status: 'failed', message: `the run recorded no commit for ${branch}: no pull request for what nobody reviewed` };
    const commit = await remoteHead(config, branch);
    if (!commit) return { status: 'failed', message: `could not read ${branch} from ${config.target.remote}` };
    if (commit !== reviewed) return { status: 'failed', message: `${branch} has moved since it was reviewed (expected ${reviewed}): no pull request for what nobody reviewed` };
    const pr = await openPullRequest(config, {
      head: branch,
      title: pullRequestTitle(ticket),
      body: pullRequestBody(ticket, ticketDir, pushEnv, branch, (text) => redactor.text(text)),
    });
    return { status: 'done', commit, prUrl: pr.url, message: `opened pull request #${pr.number}: ${pr.url}` };
  }

  private runRow(runId: number): RunRow | undefined {
    return this.deps.store.stmt('SELECT * FROM runs WHERE id = ?').get(runId) as RunRow | undefined;
  }

  private latestRow(runId: number): OutcomeRow | undefined {
    return this.deps.archive?.latest().find((r) => r.run_id === runId);
  }

  /** Readers keep the latest revision per run (outcomes/archive.ts): a decision appends one. */
  private appendRevision(runRow: RunRow, patch: Partial<OutcomeRow>): void {
    const { archive, logger } = this.deps;
    if (!archive) return;
    try {
      const prev = this.latestRow(runRow.id);
      if (!prev) {
        logger.warn('no outcome row for the approved run', { run: runRow.id });
        return;
      }
      archive.append({ ...prev, ...patch, revision: nextRevision(prev) });
    } catch (err) {
      logger.error('could not append the outcome revision', { run: runRow.id, error: (err as Error).message });
    }
  }

  private notify(notice: TicketNotice): void {
    try {
      this.deps.onNotice?.(notice);
    } catch (err) {
      this.deps.logger.error('notice failed', { ticket: notice.ticket.id, kind: notice.kind, error: (err as Error).message });
    }
  }
}

function refused(ticketId: number, r: Refusal): ApprovalResult {
  return { ok: false, ticketId, state: r.state ?? 'dropped', message: r.message, failure: r.failure };
}

/** What git needs for a merge: no secrets of the control plane, and never a prompt (nobody would answer it). */
function gitEnv(): NodeJS.ProcessEnv {
  return { ...plainGitEnv(), GIT_SSH_COMMAND: 'ssh -o BatchMode=yes' };
}

/**
 * Run a command in a process group of its own; past the timeout the whole group is
 * killed (a signal to bash alone waits for its git child, which keeps the pipes open).
 */
function runGroup(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\ntimed out after ${Math.round(opts.timeoutMs / 1000)} s`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, opts.timeoutMs);
    child.once('error', (err) => (clearTimeout(timer), reject(err)));
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout });
      else reject(Object.assign(new Error(`${cmd} exited with ${code ?? 'a signal'}`), { code: code ?? 'killed', stderr }));
    });
  });
}

function readLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Files a fix changed since it left the base branch, named exactly; [] (unknown: no
 * auto-approval) when git cannot tell, or when a name holds a newline, which the
 * sensitive-path globs (`.*` stops at a newline) could not see whole.
 */
export async function changedFiles(config: BugbotConfig, commit: string, base?: string): Promise<string[]> {
  const t = config.target;
  // From the commit the run started at when the worker recorded it: the agent's sandbox
  // could move the remote-tracking ref, and a file hidden from these rules is auto-approved.
  const from = base && /^[0-9a-f]{40,64}$/i.test(base) ? base : `${t.remote}/${t.baseBranch}`;
  try {
    // -z: names verbatim, NUL-terminated. Line by line, git quotes a name with a byte
    // outside printable ASCII (core.quotePath: "infra/d\303\251.yaml", quotes included),
    // which no glob anchored at the root matches.
    const args = ['-C', t.repo, 'diff', '-z', '--name-only', '--no-renames', `${from}...${commit}`];
    const { stdout } = await run('git', args, { env: pinnedGitEnv(t.repo, gitEnv()), timeout: 60_000 });
    const files = stdout.split('\0').filter(Boolean);
    return files.some((f) => f.includes('\n')) ? [] : files;
  } catch {
    return [];
  }
}

/** The commit at the tip of a branch on the target's remote, or null. */
async function remoteHead(config: BugbotConfig, branch: string): Promise<string | null> {
  try {
    const { stdout } = await run('git', ['-C', config.target.repo, 'ls-remote', config.target.remote, `refs/heads/${branch}`], { env: pinnedGitEnv(config.target.repo, gitEnv()), timeout: 60_000 });
    return /^([0-9a-f]{40})/.exec(stdout)?.[1] ?? null;
  } catch {
    return null;
  }
}
