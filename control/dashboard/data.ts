/**
 * What the pages read besides the store: the files a run leaves in its ticket folder
 * (plan, verdict, push record, the sessions' stream logs, read by ../transcript.ts), the
 * outcomes archive (cached until the file changes), the live workers. Everything that
 * came from an agent or a log goes through `scrub` before it is shown: the redactor,
 * then every secret value the config resolved, masked wherever it appears.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readAgentFileHead } from '../../harness/lib/agent-file.mjs';
import { workersFromStore } from '../api.ts';
import type { AppDeps } from '../app.ts';
import type { BugbotConfig } from '../config.ts';
import { workspacePaths } from '../dispatcher/workspace.ts';
import type { OutcomeArchive, OutcomeRow } from '../outcomes/archive.ts';
import type { RunRow } from '../queue/leases.ts';
import { byFinished } from './context.ts';
import { parseUnifiedDiff, runDiff, type RunDiff } from './git-diff.ts';
import { redactLines } from '../../lib/redact.ts';
import type { Scrub } from '../scrub.ts';
import { clip, DEFAULT_TRANSCRIPT_LIMITS, entryLine, eventEntries, flat, parseEvent, readBounded, readTranscript, type RawEntry, type RunTranscript, type TranscriptLimits } from '../transcript.ts';

export { createScrub, type Scrub } from '../scrub.ts';

export interface RunFiles {
  dir: string;
  plan: { text: string; truncated: boolean } | null;
  verdict: { verdict: string; reasons: string[]; edits: number | null } | null;
  /** push.env: branch, commit, pushed_to, files, insertions, deletions, tests_first_try... */
  push: Record<string, string>;
  /** The diff the review phase saw (agent/diff.patch), when git cannot show one. */
  reviewDiff: { text: string; truncated: boolean } | null;
}

export function runDir(config: BugbotConfig, ticketId: number, runId: number): string {
  return workspacePaths(config, { id: ticketId }, { id: runId, worker_id: 0, started_at: '' }).ticketDir;
}

/**
 * readBounded for a file of the run's `agent/` folder, which the agent writes: never
 * through a symbolic link (harness/lib/agent-file.mjs). This process reads what the
 * agent's sandbox hides (the local key in server.json, the operator's credentials, other
 * tickets' reports), and an open loopback dashboard's pages are readable by any program on
 * the machine, the dev server running the agent's code included: plan.md →
 * <home>/server.json would hand it the key that approves its own fix. A link, or a file
 * that cannot be read, reads as no file.
 */
function readAgentFile(path: string, max: number): { text: string; truncated: boolean } | null {
  try {
    return readAgentFileHead(path, max);
  } catch {
    return null;
  }
}

export function readRunFiles(config: BugbotConfig, scrub: Scrub, run: Pick<RunRow, 'id' | 'ticket_id'>): RunFiles {
  const dir = runDir(config, run.ticket_id, run.id);
  const plan = readAgentFile(join(dir, 'agent', 'plan.md'), 200_000);
  let verdict: RunFiles['verdict'] = null;
  const v = readAgentFile(join(dir, 'agent', 'verdict.json'), 100_000);
  if (v) {
    try {
      const j = JSON.parse(v.text) as { verdict?: unknown; reasons?: unknown; edits?: unknown };
      verdict = {
        verdict: scrub(String(j.verdict ?? 'unknown')),
        reasons: Array.isArray(j.reasons) ? j.reasons.map((r) => scrub(String(r))) : [],
        edits: typeof j.edits === 'number' ? j.edits : null,
      };
    } catch {
      verdict = { verdict: 'unreadable verdict.json', reasons: [], edits: null };
    }
  }
  const push: Record<string, string> = {};
  for (const line of (readBounded(join(dir, 'push.env'), 20_000)?.text ?? '').split('\n')) {
    const i = line.indexOf('=');
    // Written by the harness (branch, commit, counts): not redacted, which could mangle a branch name.
    if (i > 0) push[line.slice(0, i)] = line.slice(i + 1);
  }
  const rd = readAgentFile(join(dir, 'agent', 'diff.patch'), config.dashboard.maxDiffBytes);
  return {
    dir,
    plan: plan ? { text: scrub(plan.text), truncated: plan.truncated } : null,
    verdict,
    push,
    reviewDiff: rd ? { text: scrub(rd.text), truncated: rd.truncated } : null,
  };
}

/**
 * A run's diff from the target repository; when neither its commit nor its branch is
 * there any more, the diff the review phase saw (agent/diff.patch).
 */
export async function diffForRun(
  config: BugbotConfig,
  run: { branch: string | null; commit: string | null },
  files: RunFiles | null,
): Promise<RunDiff | { error: string } | null> {
  const branch = run.branch ?? files?.push.branch ?? null;
  const commit = run.commit ?? files?.push.commit ?? null;
  if (!branch && !commit) return null;
  const t = config.target;
  const diff = await runDiff({ repo: t.repo, remote: t.remote, baseBranch: t.baseBranch, branch, commit, baseCommit: files?.push.base_commit ?? null, maxBytes: config.dashboard.maxDiffBytes });
  // Only for a fix no longer there: diff.patch is in the agent's folder, which it may write
  // after the review read it, and while the fix's commit is there (git failed, ran out of
  // time, the base branch is missing) an Approve merges that commit, not what the file says.
  if ('error' in diff && diff.gone && files?.reviewDiff) {
    return { base: t.baseBranch, ref: 'the diff the review phase saw', files: parseUnifiedDiff(files.reviewDiff.text), truncated: files.reviewDiff.truncated };
  }
  return diff;
}

/** The outcomes archive, re-read only when the file changed (size or mtime). */
export class OutcomesCache {
  private key = '';
  private rows: OutcomeRow[] = [];
  private raw: OutcomeRow[] = [];
  /** `rows` newest finished first, sorted once per change of the file (the live stream asks every few seconds). */
  private newestFirst: OutcomeRow[] | null = null;

  constructor(readonly archive: OutcomeArchive) {}

  /** The latest revision of each run, in archive order. */
  latest(): OutcomeRow[] {
    this.refresh();
    return this.rows;
  }

  /** Which state of the file the rows are of: it changes whenever they may have (for caches of what is worked out from them). */
  version(): string {
    this.refresh();
    return this.key;
  }

  /** The latest revisions of the `n` runs that finished last. */
  newest(n: number): OutcomeRow[] {
    this.refresh();
    this.newestFirst ??= byFinished(this.rows);
    return this.newestFirst.slice(0, n);
  }

  /** Every row as written (all revisions), for the export. */
  all(): OutcomeRow[] {
    this.refresh();
    return this.raw;
  }

  private refresh(): void {
    let key = 'missing';
    if (existsSync(this.archive.path)) {
      const st = statSync(this.archive.path);
      key = `${st.size}:${st.mtimeMs}`;
    }
    if (key === this.key) return;
    this.key = key;
    this.raw = this.archive.readAll();
    this.rows = this.archive.latest();
    this.newestFirst = null;
  }
}

export interface LiveWorker {
  worker: number;
  ticket: number;
  title: string;
  run: number;
  port: number | null;
  phase: string | null;
  elapsed_s: number;
  tokens: number;
  cost_usd: number;
  tool_calls: number;
  /** The worker's own log (stderr), newest last. */
  log: string[];
  /** What the agent did most recently in the current phase, newest last. */
  phaseTail: string[];
}

export function liveWorkers(deps: AppDeps, scrub: Scrub): LiveWorker[] {
  const views = deps.dispatcher ? deps.dispatcher.workers() : workersFromStore(deps.store).map((w) => ({ ...w, tail: [] as string[] }));
  return views.map((w) => ({
    worker: w.worker,
    ticket: w.ticket,
    title: w.title,
    run: w.run,
    port: w.port,
    phase: w.phase,
    elapsed_s: w.elapsed_s,
    tokens: w.tokens,
    cost_usd: w.cost_usd,
    tool_calls: w.tool_calls,
    // Scrubbed whole, then cut: a secret cut in half no longer looks like one to the redactor.
    // A private key spans lines, and no line of it alone looks like one: the whole tail is read as lines.
    log: redactLines(w.tail, scrub).slice(-8).map((l) => clip(l, 300)),
    phaseTail: w.phase ? phaseTail(join(runDir(deps.config, w.ticket, w.run), `stage-${w.phase}.jsonl`), 8, scrub) : [],
  }));
}

/**
 * The last `n` things a Claude Code session did, one line each, from its stream-json log,
 * each scrubbed before it is cut to length.
 */
export function phaseTail(path: string, n: number, scrub: Scrub): string[] {
  const chunk = readBounded(path, 64 * 1024, 'tail');
  if (!chunk) return [];
  const lines = chunk.text.split('\n');
  if (chunk.truncated) lines.shift(); // a partial first line
  const out: RawEntry[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    const e = parseEvent(line);
    if (!e) continue;
    // A result that is no error is left out (entryLine's null).
    for (const entry of eventEntries(e)) if (entry.kind !== 'tool_result' || entry.isError) out.push(entry);
  }
  // Only the lines shown are written: an MCP call's argument masks each of its strings.
  return out.slice(-n).flatMap((entry) => entryLine(entry, scrub) ?? []).map((l) => clip(flat(scrub(l)), 240));
}

/**
 * What the ticket page shows of a run's sessions: fewer entries a session than the CLI
 * (each a few lines at most), so a run of long sessions stays a page a browser opens.
 */
export const PAGE_TRANSCRIPT_LIMITS: TranscriptLimits = { ...DEFAULT_TRANSCRIPT_LIMITS, maxEntries: 200, resultLines: 5, lineChars: 200 };

/** The sessions of a run, as its ticket page shows them. */
export function runTranscript(config: BugbotConfig, scrub: Scrub, run: Pick<RunRow, 'id' | 'ticket_id'>): RunTranscript {
  return readTranscript(runDir(config, run.ticket_id, run.id), scrub, PAGE_TRANSCRIPT_LIMITS);
}
