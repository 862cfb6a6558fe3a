/**
 * Approval target "pr": open a pull request for a fix that waits on its bot branch,
 * through the GitHub REST API (`POST /repos/{owner}/{repo}/pulls`; the base URL is
 * configurable for GitHub Enterprise Server). The body carries the ticket, the plan,
 * the review verdict and the test results. Everything that came from outside (the
 * report, the stack, and what the agent wrote from it) sits in code fences: GitHub
 * renders no links, mentions or references there.
 */
import { Octokit } from '@octokit/rest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAgentFile } from '../../harness/lib/agent-file.mjs';
import type { BugbotConfig } from '../config.ts';
import type { Ticket } from '../types.ts';
import type { PushEnv } from './auto-approve.ts';

/** GitHub's limit on a pull request body is 65,536 characters; each part is capped well below. */
const MAX_PART = 12_000;

/** A code fence its content cannot close: one backtick longer than the longest run inside. */
export function codeFence(text: string, info = 'text'): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = '`'.repeat(Math.max(3, longest + 1));
  const body = text.length > MAX_PART ? `${text.slice(0, MAX_PART)}\n... (cut at ${MAX_PART} characters)` : text;
  return `${ticks}${info}\n${body}\n${ticks}`;
}

/**
 * A file of the run's agent/ folder, which the agent writes: never read through a link
 * (harness/lib/agent-file.mjs). This process reads what the agent's sandbox hides, and the
 * body goes to GitHub: plan.md → a private key would publish it. Unreadable: no file.
 */
function agentFile(path: string): string | null {
  try {
    return readAgentFile(path);
  } catch {
    return null;
  }
}

interface Verdict {
  verdict?: string;
  reasons?: string[];
  edits?: number;
  edits_observed?: number;
}

/** One line for the title: no newlines, bounded (GitHub titles are one line). */
export function pullRequestTitle(ticket: Pick<Ticket, 'id' | 'title'>): string {
  const title = ticket.title.replace(/\s+/g, ' ').trim().slice(0, 200);
  return `bugbot: ${title} (#${ticket.id})`;
}

/** The body: ticket facts, the report and stack, plan.md, the review verdict, the tests (read from the run's ticket folder). */
/**
 * The pull request's body. `scrub` redacts what the agent wrote (plan, review reasons):
 * it may quote credentials it saw in logs or code, and the repository may be public.
 */
export function pullRequestBody(ticket: Ticket, ticketDir: string, pushEnv: PushEnv, branch: string, scrub: (text: string) => string = (t) => t): string {
  const facts = [
    `ticket     ${ticket.id}`,
    `title      ${ticket.title.replace(/\s+/g, ' ').slice(0, 300)}`,
    `source     ${ticket.source} (${ticket.kind})${ticket.human ? ', filed by a person' : ''}`,
    `service    ${ticket.service ?? '-'}`,
    `route      ${ticket.route ?? '-'}`,
    `severity   ${ticket.severity}`,
    `count      ${ticket.count} occurrence(s), first ${ticket.firstSeen}, last ${ticket.lastSeen}`,
    `triage     ${ticket.triageReason ?? '-'}`,
    `branch     ${branch}`,
  ].join('\n');
  const parts = [
    'Opened by bugbot after approval. The fix was researched, implemented, reviewed and tested by the harness.',
    '',
    '## Ticket',
    '',
    codeFence(facts),
    '',
    '### Report (untrusted text, as received)',
    '',
    codeFence(ticket.message || '(empty)'),
  ];
  if (ticket.stack) parts.push('', '### Stack', '', codeFence(ticket.stack));

  const planRaw = agentFile(join(ticketDir, 'agent', 'plan.md'));
  const plan = planRaw ? scrub(planRaw) : planRaw;
  parts.push('', '## Plan', '', plan ? codeFence(plan, 'markdown') : '(no plan.md in the run folder)');

  const verdictText = agentFile(join(ticketDir, 'agent', 'verdict.json'));
  let verdict: Verdict | null = null;
  try {
    verdict = verdictText ? (JSON.parse(verdictText) as Verdict) : null;
  } catch {
    verdict = null;
  }
  parts.push('', '## Review');
  if (verdict) {
    // Written by the agent: only known values outside a fence (no mentions, links or "Fixes #1").
    const edits = verdict.edits_observed ?? verdict.edits;
    const word = verdict.verdict === 'approved' || verdict.verdict === 'needs-rework' ? verdict.verdict : 'unknown';
    parts.push('', `Verdict: ${word}${Number.isInteger(edits) ? `, ${Number(edits)} edit(s) by the review` : ''}`);
    if (verdict.reasons?.length) parts.push('', codeFence(scrub(verdict.reasons.map((r) => `- ${String(r)}`).join('\n'))));
  } else {
    parts.push('', '(no verdict.json in the run folder)');
  }

  const n = (k: string) => (pushEnv[k] === undefined ? '-' : pushEnv[k]);
  parts.push(
    '',
    '## Tests',
    '',
    `- first test gate without new failures: ${n('tests_first_try')}`,
    `- failures that the base branch has too: ${n('tests_preexisting')}`,
    ...testCounts(ticketDir),
    `- diff: ${n('files')} file(s), +${n('insertions')} -${n('deletions')}`,
    `- commit: ${n('commit')}`,
  );
  return parts.join('\n') + '\n';
}

/** Passed / failed counts the worker recorded in outcome.json, when it did. */
function testCounts(ticketDir: string): string[] {
  try {
    const o = JSON.parse(readFileSync(join(ticketDir, 'outcome.json'), 'utf8')) as { tests?: { passed: number | null; failed: number | null } };
    if (o.tests && (o.tests.passed !== null || o.tests.failed !== null)) return [`- tests: ${o.tests.passed ?? '-'} passed, ${o.tests.failed ?? '-'} failed`];
  } catch {
    // no outcome.json
  }
  return [];
}

export interface PullRequest {
  url: string;
  number: number;
}

/** Open the pull request; throws with GitHub's status and message on failure (never the token). */
export async function openPullRequest(
  config: BugbotConfig,
  pr: { head: string; title: string; body: string },
  timeoutMs = 60_000,
): Promise<PullRequest> {
  const gh = config.approval.github;
  const token = config.secrets.get(gh.tokenEnv);
  if (!token) throw new Error(`${gh.tokenEnv} is not set: approval.github.tokenEnv names the token that opens pull requests`);
  if (!gh.owner || !gh.repo) throw new Error('approval.github.owner and approval.github.repo are not set');
  const quiet = () => {};
  // The failure comes back in the thrown error; Octokit's own request log would print it to the console.
  const octokit = new Octokit({
    auth: token,
    baseUrl: gh.apiUrl.replace(/\/+$/, ''),
    userAgent: 'bugbot',
    log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
  });
  const owner = gh.owner;
  const repo = gh.repo;
  const base = gh.base ?? config.target.stagingBranch;
  /**
   * The open pull request of this branch into `base`, if there is one. Not one into another
   * branch (opened by hand, or under an earlier approval.github.base): taken for this one,
   * its merge would count as the fix going live where it never went.
   */
  const findOpen = async (): Promise<PullRequest | null> => {
    const res = await octokit.pulls.list({ owner, repo, head: `${owner}:${pr.head}`, base, state: 'open', request: { signal: AbortSignal.timeout(timeoutMs) } });
    const found = res.data.find((p) => p.base.ref === base);
    return found ? { url: found.html_url, number: found.number } : null;
  };
  try {
    // One an earlier approval opened, whose answer was lost (a timeout, a 5xx after the
    // pull request was made), is this approval's: asked for first, so a retry never
    // meets "already exists".
    const open = await findOpen();
    if (open) return open;
    const res = await octokit.pulls.create({
      owner,
      repo,
      head: pr.head,
      base,
      title: pr.title,
      body: pr.body,
      request: { signal: AbortSignal.timeout(timeoutMs) },
    });
    return { url: res.data.html_url, number: res.data.number };
  } catch (err) {
    const e = err as { name?: string; status?: number; message?: string; response?: { data?: { message?: string; errors?: Array<{ message?: string }> } } };
    if (e.name === 'AbortError' || e.name === 'TimeoutError' || /aborted due to timeout/i.test(e.message ?? '')) {
      throw new Error(`GitHub did not answer within ${Math.round(timeoutMs / 1000)} s (the pull request may exist: approving again finds it)`);
    }
    const detail = e.response?.data?.errors?.map((x) => x.message).filter(Boolean).join('; ');
    throw new Error(`GitHub refused the pull request${e.status ? ` (${e.status})` : ''}: ${e.message ?? String(err)}${detail ? ` (${detail})` : ''}`);
  }
}
