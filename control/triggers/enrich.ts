/**
 * Alert enrichment: an error alert usually arrives without a stack trace, so the
 * latest matching error lines from Loki (or the log files) stand in for one. Best
 * effort by design: a Loki failure or an exhausted time budget leaves events as they
 * came (and is logged), because enrichment must never cost an alert.
 */
import { formatResult, latestErrors, type LokiClient } from '../../lib/loki/index.ts';
import type { Logger } from '../log.ts';
import type { TriggerEvent } from '../types.ts';

export interface EnrichOptions {
  logger?: Pick<Logger, 'warn' | 'debug'>;
  /** How far before the alert's first occurrence to look (default 15). */
  lookbackMinutes?: number;
  /** Lines attached per event (default 20). */
  maxLines?: number;
  /** Bytes attached per event (default 8 KiB). */
  maxBytes?: number;
  /** Events looked up per call; the rest pass unchanged (default 20). */
  maxEvents?: number;
  /** Time for the whole batch; queries still running are cancelled (default 5000 ms). */
  budgetMs?: number;
  now?: () => Date;
}

interface Attempt {
  route?: string;
  contains?: string;
}

/** Events as given, error events without a stack given one from the logs when any line matches. */
export async function enrichWithLoki(events: TriggerEvent[], client: LokiClient, opts: EnrichOptions = {}): Promise<TriggerEvent[]> {
  const budget = AbortSignal.timeout(opts.budgetMs ?? 5000);
  const now = opts.now ?? (() => new Date());
  const seen = new Map<string, Promise<string | undefined>>();
  let looked = 0;
  let failed = false;
  const out: TriggerEvent[] = [];
  for (const e of events) {
    if (!needsStack(e) || failed || budget.aborted || looked >= (opts.maxEvents ?? 20)) {
      out.push(e);
      continue;
    }
    // Alerts of one batch often share service and route: one lookup serves them all.
    const key = JSON.stringify([e.service, e.route, e.message, e.firstSeen]);
    let lookup = seen.get(key);
    if (!lookup) {
      looked++;
      lookup = findLines(e, client, opts, budget, now()).catch((err: unknown) => {
        failed = true;
        opts.logger?.warn('loki enrichment failed; events left unchanged', { error: (err as Error).message, where: client.where });
        return undefined;
      });
      seen.set(key, lookup);
    }
    const stack = await lookup;
    out.push(stack ? { ...e, stack } : e);
  }
  return out;
}

function needsStack(e: TriggerEvent): boolean {
  return e.kind === 'error' && e.status !== 'resolved' && !e.stack?.trim();
}

// Most specific first; a bare service is the last resort, never a query with no filter at all.
function attempts(e: TriggerEvent): Attempt[] {
  const path = e.route?.replace(/^[A-Z]+\s+/, '').replace(/[?#].*$/, '').trim() || undefined;
  const first = (e.message || e.title).split('\n')[0]!.trim();
  const text = first.length >= 8 && first.length <= 120 ? first : undefined;
  const all: Attempt[] = [];
  if (path && text) all.push({ route: path, contains: text });
  if (path) all.push({ route: path });
  if (text) all.push({ contains: text });
  if (e.service) all.push({});
  return all;
}

async function findLines(e: TriggerEvent, client: LokiClient, opts: EnrichOptions, signal: AbortSignal, now: Date): Promise<string | undefined> {
  const first = Date.parse(e.firstSeen);
  const last = Math.max(Date.parse(e.lastSeen) || first, first);
  if (Number.isNaN(first)) return undefined;
  const since = new Date(first - (opts.lookbackMinutes ?? 15) * 60_000);
  // A minute of slack after the last occurrence: alert timestamps trail the log lines' clock.
  const until = new Date(Math.min(last + 60_000, now.getTime()));
  const maxLines = opts.maxLines ?? 20;
  for (const a of attempts(e)) {
    const r = await latestErrors(client, { service: e.service, route: a.route, contains: a.contains, since, until, limit: maxLines, signal });
    if (!r.entries.length) continue;
    opts.logger?.debug('loki enrichment attached log lines', { query: r.query, lines: r.entries.length });
    return formatResult(r, {
      header: [`Latest error lines from ${client.where} for ${r.query} (no stack trace came with the alert):`],
      maxLines,
      maxBytes: opts.maxBytes ?? 8192,
      direction: 'backward',
      showLabels: false,
      limitHint: `Only the newest ${maxLines} are attached.`,
    });
  }
  return undefined;
}
