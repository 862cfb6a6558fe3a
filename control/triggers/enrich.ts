/**
 * Alert enrichment: an error alert usually arrives without a stack trace, so the
 * latest matching error lines from Loki (or the log files) stand in for one. Best
 * effort by design: a Loki failure or an exhausted time budget leaves events as they
 * came (and is logged), because enrichment must never cost an alert.
 *
 * The alert webhook runs it on the tickets it created, after their commit and its
 * acknowledgement (TicketStackEnricher), not on the events before intake: a slow Loki
 * then holds no webhook (Grafana and Alertmanager time out and resend), whether intake
 * commits on this thread or on its writer thread (which parses the webhook there and
 * lacks the Loki credentials); and the fingerprint stays what the alert itself says (log
 * lines found in one delivery and not in the next, or cut off by the time budget, would
 * split one error into two tickets). The settle window (30 s by default) leaves the
 * lookup time to land before the ticket is triaged and worked on.
 */
import { formatResult, latestErrors, type LokiClient } from '../../lib/loki/index.ts';
import type { AcceptResult } from '../intake/index.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../queue/store.ts';
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
  /** Cancels the lookups early (the server stopping). */
  signal?: AbortSignal;
  now?: () => Date;
}

interface Attempt {
  route?: string;
  contains?: string;
}

/** Events as given, error events without a stack given one from the logs when any line matches. */
export async function enrichWithLoki(events: TriggerEvent[], client: LokiClient, opts: EnrichOptions = {}): Promise<TriggerEvent[]> {
  const timeout = AbortSignal.timeout(opts.budgetMs ?? 5000);
  const budget = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
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
        // Cancelled by the caller (the server stopping): nothing went wrong with Loki.
        if (opts.signal?.aborted) return undefined;
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

export interface TicketStackEnricherDeps {
  store: Store;
  client: LokiClient;
  /** Intake's redaction (the client redacted the lines already; the stored text goes through intake's rules too). */
  redact: (text: string) => string;
  logger: Pick<Logger, 'warn' | 'debug'>;
  /** Aborted when the server stops: lookups still running are cancelled. */
  shutdown?: AbortSignal;
  /** Per lookup of up to `maxEvents` tickets (default 5000 ms). */
  budgetMs?: number;
}

/** New tickets waiting for a lookup at most; more (a storm of distinct alerts) are left as they came. */
const MAX_WAITING = 200;
/** Tickets looked up together (enrichWithLoki's maxEvents). */
const PER_LOOKUP = 20;

/**
 * Gives new tickets of error alerts that came without a stack the latest matching error
 * lines, after their commit: one lookup at a time (a storm of new tickets is no storm of
 * Loki queries), each bounded by its budget. The ticket's stack is set only where it
 * still has none.
 */
export class TicketStackEnricher {
  private waiting: number[] = [];
  private running: Promise<void> | null = null;
  private dropped = false;

  constructor(private readonly deps: TicketStackEnricherDeps) {}

  /** Queue the tickets a webhook created (the results of its commit). Returns at once. */
  add(results: AcceptResult[]): void {
    if (this.deps.shutdown?.aborted) return;
    for (const r of results) {
      if ((r.status !== 'created' && r.status !== 'regression') || r.ticketId === null) continue;
      if (this.waiting.length >= MAX_WAITING) {
        if (!this.dropped) this.deps.logger.warn('loki enrichment: too many new tickets waiting; the rest are left without log lines', { waiting: MAX_WAITING });
        this.dropped = true;
        break;
      }
      this.waiting.push(r.ticketId);
    }
    this.kick();
  }

  /** Resolves once nothing is waiting or being looked up. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.running || !this.waiting.length) return;
    this.running = this.next().finally(() => {
      this.running = null;
      this.kick();
    });
  }

  private async next(): Promise<void> {
    const { store, client, logger } = this.deps;
    const ids = this.waiting.splice(0, PER_LOOKUP);
    try {
      const events = ids.flatMap((id) => {
        const t = store.getTicketRow(id);
        if (!t || (t.source !== 'grafana' && t.source !== 'alertmanager') || t.kind !== 'error' || t.stack) return [];
        const e: TriggerEvent = {
          source: t.source as TriggerEvent['source'],
          kind: 'error',
          title: t.title,
          message: t.message,
          labels: {},
          count: t.count,
          firstSeen: t.first_seen,
          lastSeen: t.last_seen,
          human: false,
          sourceEventId: String(t.id),
        };
        if (t.service) e.service = t.service;
        if (t.route) e.route = t.route;
        return [e];
      });
      if (!events.length) return;
      const found = await enrichWithLoki(events, client, { logger, budgetMs: this.deps.budgetMs, maxEvents: PER_LOOKUP, signal: this.deps.shutdown, now: store.now });
      if (this.deps.shutdown?.aborted) return;
      const at = store.nowIso();
      store.tx(() => {
        for (const e of found) {
          if (!e.stack) continue;
          const id = Number(e.sourceEventId);
          if (store.attachStack(id, this.deps.redact(e.stack), at)) store.audit(id, 'intake', 'stack-from-logs', `error lines from ${client.where}`);
        }
      });
    } catch (err) {
      // The store closed under a lookup (the server stopping), or busy past its timeout:
      // the tickets stay as they came, as with a Loki failure.
      logger.warn('loki enrichment: could not store the log lines; tickets left as they came', { error: (err as Error).message, tickets: ids });
    }
    if (!this.waiting.length) this.dropped = false;
  }
}
