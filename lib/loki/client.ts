/**
 * The Loki client shared by the loki MCP server and the control plane: picks the
 * backend from settings (Loki HTTP API when `url` is set, else JSON-lines files) and
 * redacts everything a backend returns, lines and label values, with the intake rules.
 * Nothing unredacted leaves this module, not even as a count: text the caller chooses
 * (`contains`) is matched on redacted lines, or counting the lines that `password=a`,
 * `password=b`, ... let through would spell out a masked value.
 */
import type { LokiSettings } from '../mcp/loki-settings.ts';
import { createRedactor, redactLines, type Redactor } from '../redact.ts';
import { redactedValue } from './fields.ts';
import { createFileBackend } from './file-backend.ts';
import { createHttpBackend } from './http-backend.ts';
import { quote, selector } from './logql.ts';
import { planMatchers, refuseSecretLabels, shownLabelTest } from './shown.ts';
import { LokiError, type Backend, type BackendResult, type LogEntry, type LogQuery } from './types.ts';

/** Where secrets come from: the control plane's `config.secrets`, or the process env in an MCP server. */
export interface SecretSource {
  get(envVar: string | undefined): string | undefined;
}

export interface QueryOptions {
  signal?: AbortSignal;
  /**
   * Filters raw lines before redaction (a user's hashed id can only be matched on the
   * raw value). The backend then reads up to `scanLines` lines instead of `limit`.
   */
  keep?: (e: LogEntry) => boolean;
}

export interface LokiClient {
  readonly backend: 'http' | 'file' | 'none';
  /** For results and logs, never credentials. */
  readonly where: string;
  readonly settings: LokiSettings;
  readonly redactor: Redactor;
  query(q: LogQuery, opts?: QueryOptions): Promise<BackendResult>;
  /** Raw LogQL (HTTP backend only); callers bound range and limit first (see guard.ts). */
  queryLogQL(logql: string, q: Pick<LogQuery, 'range' | 'limit' | 'direction'>, opts?: QueryOptions): Promise<BackendResult>;
}

/** Secrets the settings name but the environment lacks; empty when all is well. */
export function lokiSecretProblems(settings: LokiSettings, secrets: SecretSource): string[] {
  const named: Array<[string, string | undefined]> = [
    ['tokenEnv', settings.tokenEnv],
    ['basicUserEnv', settings.basicUserEnv],
    ['basicPasswordEnv', settings.basicPasswordEnv],
  ];
  return named
    .filter(([, env]) => env && !secrets.get(env))
    .map(([key, env]) => `mcp.loki.${key} names ${env}, which is not set in the environment`);
}

export function createLokiClient(settings: LokiSettings, secrets: SecretSource, opts: { redactor?: Redactor } = {}): LokiClient {
  const redactor = opts.redactor ?? createRedactor({ salt: secrets.get(settings.hashSaltEnv), extra: settings.redactPatterns });
  const problems = lokiSecretProblems(settings, secrets);
  const backend = pickBackend(settings, secrets, redactor);

  const ready = (): Backend => {
    if (!backend) {
      throw new LokiError('no log backend is configured: set mcp.loki.url (the Loki HTTP API) or mcp.loki.files (JSON-lines log files)');
    }
    if (problems.length) throw new LokiError(problems.join('; '));
    return backend;
  };

  // `keep` sees raw entries (a hashed user id only matches the raw value; label matchers
  // Loki may not run test the raw labels as redaction shows them); `contains` sees redacted
  // ones. Either way the backend read up to scanLines lines, cut here to the limit.
  // `then` says what was matched here, after the query.
  const finish = (raw: BackendResult, q: Pick<LogQuery, 'limit' | 'direction'>, keep?: (e: LogEntry) => boolean, contains: string[] = [], then: string[] = []) => {
    if (!keep && !contains.length) return redactResult(raw, redactor);
    const notes = [...raw.notes];
    if (raw.limitReached) notes.push(`only the ${q.direction === 'backward' ? 'newest' : 'oldest'} ${settings.scanLines} lines of the range were searched (mcp.loki.scanLines)`);
    const steps = [...then, ...(contains.length ? [`lines containing ${contains.map(quote).join(' and ')} (matched after redaction)`] : [])];
    const query = steps.length ? `${raw.query}, then ${steps.join(', then ')}` : raw.query;
    // Redacted before `keep` drops any line: a private key's body is known as one only
    // next to the line that begins it (redactResult), which `keep` may not keep.
    const r = redactResult({ ...raw, query, notes }, redactor);
    const entries = (keep ? r.entries.filter((_, i) => keep(raw.entries[i]!)) : r.entries).filter((e) => contains.every((c) => e.line.includes(c)));
    const limited = q.direction === 'backward' ? entries.slice(-q.limit) : entries.slice(0, q.limit);
    return { ...r, entries: limited, limitReached: entries.length > q.limit };
  };
  const scanned = <Q extends { limit: number }>(q: Q, scan: boolean): Q => (scan ? { ...q, limit: Math.max(q.limit, settings.scanLines) } : q);

  return {
    backend: backend?.kind ?? 'none',
    where: backend?.where ?? 'no log backend',
    settings,
    redactor,
    async query(q, o = {}) {
      const b = ready();
      // The file backend matches redacted values and needs no such rule.
      if (b.kind === 'http') refuseSecretLabels(q.matchers.map((m) => m.name), redactor.text);
      // Both backends: `=` against a raw id or email is refused (no answer shows one), so the
      // agent learns to match the hash it was shown instead of getting a silent "no lines".
      const plan = planMatchers(q.matchers, redactor.text);
      // The file backend matches shown values itself (a bare user:<hash> as shown, <user:...>).
      if (b.kind !== 'http') return finish(await b.query(scanned({ ...q, matchers: [...plan.loki, ...plan.shown] }, Boolean(o.keep)), o.signal), q, o.keep);
      // Loki would match `contains` on the raw lines, and label matchers on the raw values: it
      // gets the query without `contains` and with only the matchers whose outcome the shown
      // values fix (shown.ts); the lines it returns are matched here on what the answer shows.
      const local = q.contains.length > 0;
      const byLabels = plan.shown.length ? shownLabelTest(plan.shown, redactor.text) : undefined;
      const keep = byLabels ? (e: LogEntry) => byLabels(e.labels) && (o.keep?.(e) ?? true) : o.keep;
      const sent = { ...q, matchers: plan.loki, contains: local ? [] : q.contains };
      const raw = await b.query(scanned(sent, Boolean(keep) || local), o.signal);
      const then = plan.shown.length ? [`streams whose labels as shown match ${selector(plan.shown)}`] : [];
      return finish(raw, q, keep, local ? q.contains : [], then);
    },
    async queryLogQL(logql, q, o = {}) {
      const b = ready();
      if (!b.queryLogQL) {
        throw new LokiError(`raw LogQL needs the Loki HTTP backend (mcp.loki.url); ${b.where} accepts label matchers and contains only`);
      }
      return finish(await b.queryLogQL(logql, scanned(q, Boolean(o.keep)), o.signal), q, o.keep);
    },
  };
}

function pickBackend(settings: LokiSettings, secrets: SecretSource, redactor: Redactor): Backend | undefined {
  if (settings.url) {
    const user = secrets.get(settings.basicUserEnv);
    const password = secrets.get(settings.basicPasswordEnv);
    return createHttpBackend({
      url: settings.url,
      token: secrets.get(settings.tokenEnv),
      basic: user !== undefined && password !== undefined ? { user, password } : undefined,
      tenant: settings.tenant,
      timeoutMs: settings.timeoutMs,
      defaultSelector: settings.defaultSelector,
      redact: redactor.text,
    });
  }
  return settings.files.length ? createFileBackend(settings.files, { redact: redactor.text, timeoutMs: settings.timeoutMs }) : undefined;
}

/** Entries map one to one, in order (finish() relies on it). */
function redactResult(r: BackendResult, redactor: Redactor): BackendResult {
  return {
    ...r,
    query: redactor.text(r.query),
    entries: redactEntries(r.entries, redactor),
    series: r.series?.map((s) => ({ labels: redactLabels(s.labels, redactor), values: s.values })),
    notes: r.notes.map(redactor.text),
  };
}

/**
 * Lines redacted as the lines of their stream, in time order (redactLines): a private key
 * logged one line per entry has a body no line of which looks like a key on its own.
 */
function redactEntries(entries: LogEntry[], redactor: Redactor): LogEntry[] {
  const streams = new Map<string, number[]>();
  entries.forEach((e, i) => {
    const key = JSON.stringify(e.labels);
    const at = streams.get(key);
    if (at) at.push(i);
    else streams.set(key, [i]);
  });
  const lines: string[] = [];
  for (const at of streams.values()) {
    const order = [...at].sort((a, b) => (entries[a]!.ts < entries[b]!.ts ? -1 : entries[a]!.ts > entries[b]!.ts ? 1 : a - b));
    redactLines(order.map((i) => entries[i]!.line), redactor.text).forEach((line, j) => (lines[order[j]!] = line));
  }
  return entries.map((e, i) => ({ ts: e.ts, labels: redactLabels(e.labels, redactor), line: lines[i]! }));
}

/** Names too: a label named after a token (`sk_live_...`) is as much a secret as a value. */
function redactLabels(labels: Record<string, string>, redactor: Redactor): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).map(([k, v]) => [redactor.text(k), redactedValue(k, v, redactor.text)]));
}
