/**
 * Pull requests an approval opened (approval.target "pr"), watched until they are merged
 * or closed. Until its pull request is merged a ticket's fix is not live: the ticket is
 * `pushed` with no `pushed_at`, and intake counts a recurrence against it instead of
 * opening a regression (and a second run on code the fix has not reached). Merged, the
 * ticket's `pushed_at` is the merge's time, from which the regression grace period
 * counts; closed without merging, the ticket waits for a person (`needs_human`).
 */
import { Octokit } from '@octokit/rest';
import type { BugbotConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../queue/store.ts';
import type { TicketNotice } from '../types.ts';

/** How often the open pull requests are asked after. */
export const PR_WATCH_MS = 5 * 60_000;

/** Tickets whose fix is an open pull request, with the latest one their approvals opened. */
export function pullRequestsAwaitingMerge(store: Store): Array<{ ticketId: number; prUrl: string }> {
  return (
    store
      .stmt(
        `SELECT t.id AS ticketId, (SELECT a.pr_url FROM approvals a WHERE a.ticket_id = t.id AND a.status = 'done' AND a.pr_url IS NOT NULL ORDER BY a.id DESC LIMIT 1) AS prUrl
         FROM tickets t WHERE t.state = 'pushed' AND t.pushed_at IS NULL`,
      )
      .all() as Array<{ ticketId: number; prUrl: string | null }>
  ).filter((r): r is { ticketId: number; prUrl: string } => r.prUrl !== null);
}

export interface PullRequestCheck {
  ticketId: number;
  prUrl: string;
  /** merged: its fix is live from `at`; closed: closed without merging; open: nothing changed. */
  now: 'merged' | 'closed' | 'open';
  at?: string;
  /** Closed: what its reporters, told the fix was in that pull request, are told now. */
  notice?: TicketNotice;
}

/**
 * Ask GitHub about each pull request still waiting to be merged, and move its ticket when
 * it was merged or closed. A pull request GitHub cannot be asked about now (out of reach,
 * a refusal) is asked again next time; the first such failure of a pass is logged.
 */
export async function checkPullRequests(
  config: BugbotConfig,
  store: Store,
  logger: Logger,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<PullRequestCheck[]> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const pending = pullRequestsAwaitingMerge(store);
  const gh = config.approval.github;
  const token = config.secrets.get(gh.tokenEnv);
  if (!pending.length || !token || !gh.owner || !gh.repo) return [];
  const quiet = () => {};
  const octokit = new Octokit({ auth: token, baseUrl: gh.apiUrl.replace(/\/+$/, ''), userAgent: 'bugbot', log: { debug: quiet, info: quiet, warn: quiet, error: quiet } });
  const out: PullRequestCheck[] = [];
  let failed = false;
  for (const { ticketId, prUrl } of pending) {
    // A stop does not wait for GitHub: what was not asked is asked at the next start.
    if (opts.signal?.aborted) break;
    const number = Number(/\/pull\/(\d+)\/?$/.exec(prUrl)?.[1]);
    if (!Number.isSafeInteger(number)) continue;
    let pr: { state: string; merged_at: string | null };
    try {
      pr = (await octokit.pulls.get({ owner: gh.owner, repo: gh.repo, pull_number: number, request: { signal: opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs) } })).data;
    } catch (err) {
      if (opts.signal?.aborted) break;
      if (!failed) logger.warn('could not ask GitHub whether a fix\'s pull request was merged; asked again later', { ticket: ticketId, pr: prUrl, error: (err as Error).message });
      failed = true;
      continue;
    }
    if (pr.merged_at) {
      const at = new Date(pr.merged_at).toISOString();
      const moved = store.tx(() => {
        const r = store.stmt(`UPDATE tickets SET pushed_at = ?, updated_at = ? WHERE id = ? AND state = 'pushed' AND pushed_at IS NULL`).run(at, store.nowIso(), ticketId);
        if (r.changes) store.audit(ticketId, 'github', 'pr-merged', `${prUrl} merged at ${at}: the fix is live from then`);
        return r.changes > 0;
      });
      if (moved) out.push({ ticketId, prUrl, now: 'merged', at });
    } else if (pr.state === 'closed') {
      const moved = store.tx(() => {
        const r = store.stmt(`UPDATE tickets SET state = 'needs_human', updated_at = ? WHERE id = ? AND state = 'pushed' AND pushed_at IS NULL`).run(store.nowIso(), ticketId);
        if (r.changes) store.audit(ticketId, 'github', 'pr-closed', `${prUrl} was closed without merging: the fix never went live`);
        return r.changes > 0;
      });
      const ticket = moved ? store.getTicket(ticketId) : undefined;
      if (ticket) out.push({ ticketId, prUrl, now: 'closed', notice: { kind: 'failed', ticket, prUrl, reason: `its pull request ${prUrl} was closed without merging, so the fix never went live` } });
    } else out.push({ ticketId, prUrl, now: 'open' });
  }
  return out;
}
