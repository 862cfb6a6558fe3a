/**
 * Auto-approval (approval mode): a fix is approved without a person only when every
 * configured rule holds: a small diff, tests that passed outright, a severity no higher
 * than the limit, and no sensitive path touched. Off unless `approval.autoApprove.enabled`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BugbotConfig } from '../config.ts';
import { severityRank, type Ticket } from '../types.ts';

export type AutoApproveRules = BugbotConfig['approval']['autoApprove'];

/** `push.env` of a run (written by harness/worker.sh phase 5): branch, files, insertions, tests_first_try, commit... */
export type PushEnv = Record<string, string>;

export function readPushEnv(ticketDir: string): PushEnv {
  let text: string;
  try {
    text = readFileSync(join(ticketDir, 'push.env'), 'utf8');
  } catch {
    return {};
  }
  const out: PushEnv = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/**
 * A glob as a regular expression over repository-relative paths: `**` spans
 * directories, `*` and `?` stay within one. A glob without `/` (a trailing one aside)
 * matches a file or directory name at any depth (as in .gitignore).
 */
export function globToRegExp(glob: string): RegExp {
  // A trailing "/" names a directory (as in .gitignore: "infra/" is the folder, at any
  // depth); kept, it would match only a path ending in "/", which git never names, and
  // every file under the folder would pass as not sensitive.
  let g = glob.replace(/^\/+/, '').replace(/\/+$/, '');
  if (!g.includes('/')) g = `**/${g}`;
  // "dir/**" is "dir" and everything under it: the suffix below says as much.
  g = g.replace(/\/\*\*$/, '');
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const ch = g[i]!;
    if (ch === '*' && g[i + 1] === '*') {
      // "**/" spans zero or more whole directories.
      if ((i === 0 || g[i - 1] === '/') && g[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A match on a directory covers everything under it; case-insensitive, so src/Auth/ counts as auth/.
  return new RegExp(`^${re}(?:/.*)?$`, 'i');
}

/** The changed files that match any of the globs. */
export function sensitiveFiles(files: string[], globs: string[]): string[] {
  const res = globs.map(globToRegExp);
  return files.filter((f) => res.some((r) => r.test(f)));
}

/**
 * Whether a fix waiting for approval may be approved without a person, and why (every failed
 * rule named). Never one a person claimed (`bugbot claim`: the bot keeps off it), whatever it holds.
 */
export function autoApprovalDecision(
  ticket: Pick<Ticket, 'severity'> & Partial<Pick<Ticket, 'claimedBy'>>,
  pushEnv: PushEnv,
  changedFiles: string[],
  rules: AutoApproveRules,
): { approve: boolean; reason: string } {
  if (!rules.enabled) return { approve: false, reason: 'auto-approval is off (approval.autoApprove.enabled)' };
  if (ticket.claimedBy) return { approve: false, reason: `claimed by ${ticket.claimedBy}: a person decides` };
  const no: string[] = [];
  if (severityRank(ticket.severity) > severityRank(rules.maxSeverity)) {
    no.push(`severity ${ticket.severity} is above ${rules.maxSeverity}`);
  }
  if (!changedFiles.length) no.push('the changed files are unknown');
  if (changedFiles.length > rules.maxFilesChanged) no.push(`${changedFiles.length} files changed (at most ${rules.maxFilesChanged})`);
  const lines = Number(pushEnv.insertions ?? NaN) + Number(pushEnv.deletions ?? NaN);
  if (!Number.isFinite(lines)) no.push('the diff size is unknown (no push.env)');
  else if (lines > rules.maxLinesChanged) no.push(`${lines} lines changed (at most ${rules.maxLinesChanged})`);
  // A binary file has no lines to count: its size is unknown to the rules.
  const binary = Number(pushEnv.binary ?? 0);
  if (binary > 0) no.push(`${binary} binary file(s) changed (their size in lines is unknown)`);
  if (rules.requireTestsPassed) {
    const preexisting = Number(pushEnv.tests_preexisting ?? 0);
    if (pushEnv.tests_first_try !== 'true') no.push('the first test gate found new failures');
    else if (preexisting > 0) no.push(`${preexisting} test(s) fail (also on the base branch)`);
  }
  const sensitive = sensitiveFiles(changedFiles, rules.sensitivePaths);
  if (sensitive.length) no.push(`sensitive paths touched: ${sensitive.join(', ')}`);
  if (no.length) return { approve: false, reason: no.join('; ') };
  return {
    approve: true,
    reason: `${changedFiles.length} file(s), ${lines} line(s), tests passed, severity ${ticket.severity}, no sensitive path`,
  };
}
