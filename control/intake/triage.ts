/**
 * The triage gate: deterministic rules that decide, when a ticket's settle window
 * closes, whether it is worth a worker. Doing nothing is often right, and the
 * reason is always recorded.
 */
import { createHash } from 'node:crypto';
import type { BugbotConfig } from '../config.ts';
import { compilePattern } from '../config.ts';
import type { Classification, EventKind, Severity } from '../types.ts';
import { claimedReason, severityRank } from '../types.ts';

export interface TriageInput {
  kind: EventKind;
  service: string | null;
  title: string;
  message: string;
  labels: Record<string, string>;
  count: number;
  human: boolean;
  claimedBy: string | null;
  classification: Classification | null;
  /** What the classification read in the report (classify.ts), for the reason of a drop. */
  classifyReason?: string | null;
  /** A severity the ticket has at least, and why (the worst of the tickets held in its cascade). */
  atLeast?: { severity: Severity; why: string };
}

export type TriageDecision =
  | { decision: 'queue'; severity: Severity; priority: number; reason: string }
  | { decision: 'drop'; severity: Severity; priority: number; reason: string }
  | { decision: 'defer'; severity: Severity; priority: number; reason: string };

export interface Triage {
  severity(input: Pick<TriageInput, 'kind' | 'title' | 'message' | 'labels' | 'count' | 'atLeast'>): { severity: Severity; why: string };
  decide(input: TriageInput): TriageDecision;
}

/** Alert `severity` label values mapped to ours (Prometheus / Grafana conventions). */
const LABEL_SEVERITY: Record<string, Severity> = {
  critical: 'critical',
  page: 'critical',
  p1: 'critical',
  error: 'high',
  high: 'high',
  major: 'high',
  p2: 'high',
  warning: 'medium',
  warn: 'medium',
  medium: 'medium',
  p3: 'medium',
  info: 'low',
  low: 'low',
  minor: 'low',
  none: 'low',
};

/**
 * What the patterns read of a ticket: its start, where an error says what it is. A pattern
 * may take time growing with the square of what it reads (the built-in third-party rule's
 * ".*" before a name does, from each "ETIMEDOUT" of a line): a 100 KB alert of them took
 * 1.4 s to triage, a megabyte minutes, inside the transaction every other event waits on.
 */
const READ_CHARS = 20_000;

/** Texts whose pattern matches are remembered (see `remembered`). */
const REMEMBERED_TEXTS = 32;

/**
 * `f` of a text, remembered for the last few texts: a deferred or claimed ticket is
 * decided again at each occurrence, on the same text, and a storm on one would otherwise
 * run every pattern over it once per event. Known by a digest: a cut of a long text would
 * keep the whole of it in memory.
 */
function remembered<T>(f: (text: string) => T): (text: string) => T {
  const seen = new Map<string, T>();
  return (text) => {
    const key = createHash('sha256').update(text).digest('base64');
    if (seen.has(key)) return seen.get(key) as T;
    const value = f(text);
    if (seen.size >= REMEMBERED_TEXTS) seen.delete(seen.keys().next().value!);
    seen.set(key, value);
    return value;
  };
}

export function createTriage(cfg: BugbotConfig['triage']): Triage {
  const critical = cfg.criticalPatterns.map((p) => compilePattern(p, 'i'));
  const high = cfg.highPatterns.map((p) => compilePattern(p, 'i'));
  // Matched against service, title and message, one a line: ^ and $ are a line's ends, so
  // "^Watchdog$" names an alert whose title is just that.
  const ignore = cfg.ignore.map((r) => ({ re: compilePattern(r.pattern, 'im'), reason: r.reason }));
  const minRank = severityRank(cfg.minSeverity);
  const severityPatterns = remembered((text) => ({ critical: critical.find((re) => re.test(text)), high: high.find((re) => re.test(text)) }));
  const ignoreRule = remembered((text) => ignore.find((r) => r.re.test(text)));

  const severity: Triage['severity'] = (input) => {
    const text = `${input.title}\n${input.message}`.slice(0, READ_CHARS);
    let sev: Severity = 'low';
    let why = 'default';
    const raise = (s: Severity, reason: string) => {
      if (severityRank(s) > severityRank(sev)) {
        sev = s;
        why = reason;
      }
    };
    const label = input.labels.severity?.toLowerCase();
    if (label && LABEL_SEVERITY[label]) raise(LABEL_SEVERITY[label], `severity label "${label}"`);
    if (input.kind === 'latency') raise('medium', 'latency alert');
    const { critical: c, high: h } = severityPatterns(text);
    if (c) raise('critical', `matches critical pattern /${c.source}/`);
    if (h) raise('high', `matches high pattern /${h.source}/`);
    const t = cfg.countThresholds;
    if (input.count >= t.critical) raise('critical', `${input.count} occurrences (>= ${t.critical})`);
    else if (input.count >= t.high) raise('high', `${input.count} occurrences (>= ${t.high})`);
    else if (input.count >= t.medium) raise('medium', `${input.count} occurrences (>= ${t.medium})`);
    if (input.atLeast) raise(input.atLeast.severity, input.atLeast.why);
    return { severity: sev, why };
  };

  return {
    severity,
    decide(input) {
      const { severity: sev, why } = severity(input);
      const priority = priorityOf(sev, input.count, input.human);
      if (input.claimedBy) {
        return { decision: 'defer', severity: sev, priority, reason: claimedReason(input.claimedBy) };
      }
      if (input.classification && input.classification !== 'bug') {
        return {
          decision: 'drop',
          severity: sev,
          priority,
          reason: `classified as ${input.classification}, not a bug${input.classifyReason ? ` (${input.classifyReason})` : ''}`,
        };
      }
      const ig = input.human ? undefined : ignoreRule(`${input.service ?? ''}\n${input.title}\n${input.message}`.slice(0, READ_CHARS));
      if (ig) {
        return { decision: 'drop', severity: sev, priority, reason: `ignored: ${ig.reason} (/${ig.re.source}/)` };
      }
      // A person asked: their report is acted on whatever its computed severity.
      if (input.human) {
        return { decision: 'queue', severity: sev, priority, reason: `filed by a person; severity ${sev} (${why})` };
      }
      if (severityRank(sev) < minRank) {
        return {
          decision: 'defer',
          severity: sev,
          priority,
          reason: `severity ${sev} (${why}) is below the minimum ${cfg.minSeverity}; waiting for more occurrences`,
        };
      }
      return { decision: 'queue', severity: sev, priority, reason: `severity ${sev} (${why})` };
    },
  };
}

/** Higher runs first: severity dominates, then people, then volume. */
export function priorityOf(sev: Severity, count: number, human: boolean): number {
  return severityRank(sev) * 1000 + (human ? 500 : 0) + Math.min(499, Math.round(Math.log2(1 + count) * 25));
}
