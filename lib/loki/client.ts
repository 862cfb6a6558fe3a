/**
 * The Loki client shared by the loki MCP server and the control plane: picks the
 * backend from settings (Loki HTTP API when `url` is set, else JSON-lines files) and
 * redacts everything a backend returns, lines and label values, with the intake rules.
 * Nothing unredacted leaves this module.
 */
import type { LokiSettings } from '../mcp/loki-settings.ts';
import { createRedactor, type Redactor } from '../redact.ts';
import { createFileBackend } from './file-backend.ts';
import { createHttpBackend } from './http-backend.ts';
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

  const finish = (raw: BackendResult, q: Pick<LogQuery, 'limit' | 'direction'>, keep?: (e: LogEntry) => boolean) => {
    let entries = raw.entries;
    let limitReached = raw.limitReached;
    const notes = [...raw.notes];
    if (keep) {
      entries = entries.filter(keep);
      if (raw.limitReached) notes.push(`only the ${q.direction === 'backward' ? 'newest' : 'oldest'} ${settings.scanLines} lines of the range were searched (mcp.loki.scanLines)`);
      limitReached = entries.length > q.limit;
      entries = q.direction === 'backward' ? entries.slice(-q.limit) : entries.slice(0, q.limit);
    }
    return redactResult({ ...raw, entries, limitReached, notes }, redactor);
  };
  const scanned = <Q extends { limit: number }>(q: Q, keep?: unknown): Q => (keep ? { ...q, limit: Math.max(q.limit, settings.scanLines) } : q);

  return {
    backend: backend?.kind ?? 'none',
    where: backend?.where ?? 'no log backend',
    settings,
    redactor,
    async query(q, o = {}) {
      return finish(await ready().query(scanned(q, o.keep), o.signal), q, o.keep);
    },
    async queryLogQL(logql, q, o = {}) {
      const b = ready();
      if (!b.queryLogQL) {
        throw new LokiError(`raw LogQL needs the Loki HTTP backend (mcp.loki.url); ${b.where} accepts label matchers and contains only`);
      }
      return finish(await b.queryLogQL(logql, scanned(q, o.keep), o.signal), q, o.keep);
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
  return settings.files.length ? createFileBackend(settings.files) : undefined;
}

function redactResult(r: BackendResult, redactor: Redactor): BackendResult {
  return {
    ...r,
    query: redactor.text(r.query),
    entries: r.entries.map((e) => ({ ts: e.ts, labels: redactLabels(e.labels, redactor), line: redactor.text(e.line) })),
    series: r.series?.map((s) => ({ labels: redactLabels(s.labels, redactor), values: s.values })),
    notes: r.notes.map(redactor.text),
  };
}

// Label values are redacted with their name in front so key-aware rules apply:
// `user_id` = "42" becomes a user hash, `password` = "x" is masked.
function redactLabels(labels: Record<string, string>, redactor: Redactor): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    const r = redactor.text(`${k}=${v}`);
    out[k] = r.startsWith(`${k}=`) ? r.slice(k.length + 1) : '[REDACTED]';
  }
  return out;
}
