/**
 * Intake's writer thread. What a webhook stores (redaction, fingerprinting, dedupe,
 * triage, the commit) runs on a worker thread with its own connection to the store,
 * so the HTTP thread only authenticates and reads requests: an alert storm uses two
 * cores instead of one, and the dashboard, health checks and Slack's 3-second
 * acknowledgements do not wait behind SQLite commits. Alert webhooks (the storm's
 * source) go over as their raw body and are parsed and validated there too.
 *
 * Group commit: requests go over as they are read, once per turn of the event loop or
 * every POST_EVERY requests of a burst, and queue at the thread while it commits; it
 * takes what has queued, up to TRANSACTION_ITEMS requests, into one transaction. A
 * request's promise settles only after its transaction committed, so a webhook is
 * still acknowledged only once its events are durable.
 *
 * Why not hold requests until the thread answers (one batch in flight): under a storm
 * the two threads then fall into lock-step, all connections in one batch. The thread
 * commits while the HTTP thread waits; the HTTP thread answers them all and reads their
 * next requests while the thread waits. Measured on two cores, both threads idled about
 * a third of the time. Handed over in parts and committed in bounded transactions,
 * one part is committed while the next is read, and the idle time halves (see
 * docs/benchmarks.md).
 *
 * If the thread dies, the requests it held are refused (503: not acknowledged, send
 * again) and the next request starts a new thread.
 */
import { Worker } from 'node:worker_threads';
import type { BugbotConfig } from '../config.ts';
import { HttpError } from '../http-error.ts';
import type { Logger } from '../log.ts';
import type { TriggerEvent, TriggerSource } from '../types.ts';
import { ReplayError, type AcceptOptions, type AcceptResult, type Nonce } from './accept.ts';

/** What the thread needs to open the store and build intake as the HTTP thread has it. */
export interface WriterInit {
  dbPath: string;
  /** The configuration without its secrets accessor (functions do not cross threads). */
  config: Omit<BugbotConfig, 'secrets'>;
  /** The redaction salt (the value of config.intake.hashSaltEnv), if set. */
  salt: string | undefined;
  /** The secret values redaction masks wherever they appear (config.ts maskedSecretValues). */
  maskedValues: string[];
}

/** An alert webhook's body as received; `latency`: every alert is a latency alert (/triggers/latency). */
export interface RawAlerts {
  text: string;
  latency: boolean;
}

export type WriterItem = { events: TriggerEvent[]; opts: AcceptOptions } | { alerts: RawAlerts; opts: AcceptOptions };

export interface WriterRequest {
  id: number;
  items: WriterItem[];
}

export interface AlertsAccepted {
  source: TriggerSource;
  results: AcceptResult[];
  rejected: Array<{ index: number; problem: string }>;
  ignored: Array<{ index: number; reason: string }>;
}

/**
 * `failed`: its transaction failed (rolled back), with the SQLite code (SQLITE_FULL, ...)
 * when there is one and the thread's stack.
 */
export type ItemOutcome =
  | { results: AcceptResult[]; source?: TriggerSource; rejected?: AlertsAccepted['rejected']; ignored?: AlertsAccepted['ignored'] }
  | { replay: Nonce }
  | { refused: { status: HttpError['status']; code: string; message: string; details?: unknown } }
  | { failed: { message: string; code?: string; stack?: string } };

/** `ready`: the thread opened the store. */
export type WriterReply = { ready: true } | { id: number; outcomes: ItemOutcome[] };

interface Waiting {
  item: WriterItem;
  resolve: (r: ItemOutcome & { results: AcceptResult[] }) => void;
  reject: (err: unknown) => void;
}

/** The thread's entry: control/writer-entry.mjs, then control/writer-thread.ts. */
const ENTRY = new URL('../writer-entry.mjs', import.meta.url);

/** A burst read in one turn of the event loop goes over in parts of this many requests. */
export const POST_EVERY = 12;
/** The most requests the thread puts in one transaction (writer-thread.ts). */
export const TRANSACTION_ITEMS = 2 * POST_EVERY;

export class IntakeWriter {
  private worker: Worker | null = null;
  private ready: Promise<void> = Promise.resolve();
  private pending: Waiting[] = [];
  private flushScheduled = false;
  private nextId = 1;
  private readonly inFlight = new Map<number, Waiting[]>();
  /** What every new request is refused with, once set (a stop; the database file gone: refuse()). */
  private refusal: Error | null = null;
  private idle: Array<() => void> = [];

  constructor(
    private readonly init: WriterInit,
    private readonly logger?: Logger,
  ) {}

  /**
   * Start the thread now rather than on the first request; resolves once it has opened
   * the store, rejects with the reason when it cannot.
   */
  start(): Promise<void> {
    this.thread();
    return this.ready;
  }

  /** Store one request's events; resolves once they are committed. */
  async submit(events: TriggerEvent[], opts: AcceptOptions): Promise<AcceptResult[]> {
    return (await this.enqueue({ events, opts })).results;
  }

  /**
   * Parse, validate and store an alert webhook's body (Grafana or Alertmanager JSON).
   * A body that is not a valid webhook rejects with the HttpError (400) that says why.
   */
  submitAlerts(alerts: RawAlerts, opts: AcceptOptions): Promise<AlertsAccepted> {
    return this.enqueue({ alerts, opts }) as Promise<AlertsAccepted>;
  }

  /** Requests not answered yet (waiting for the thread, or in it). */
  get inFlightCount(): number {
    let n = this.pending.length;
    for (const w of this.inFlight.values()) n += w.length;
    return n;
  }

  /**
   * Refuse every request from now on with `err` (an HttpError: its status is the reply),
   * before it reaches the thread: the control plane found that the database file the
   * thread writes is no longer at its path (main.ts), so what it committed would be lost.
   */
  refuse(err: Error): void {
    this.refusal = err;
  }

  /** Let what was submitted commit, then stop the thread. */
  async close(): Promise<void> {
    this.refusal = new HttpError(503, 'unavailable', 'bugbot is shutting down; this request was not acknowledged: send it again');
    if (this.inFlightCount > 0) await new Promise<void>((r) => this.idle.push(r));
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private enqueue(item: WriterItem): Promise<ItemOutcome & { results: AcceptResult[] }> {
    if (this.refusal) return Promise.reject(this.refusal);
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      // A burst: the thread starts on its first part while this thread reads the rest.
      if (this.pending.length >= POST_EVERY) this.flush();
      else this.scheduleFlush();
    });
  }

  /** Send what is pending once this turn of the event loop has read what it can. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    const id = this.nextId++;
    this.inFlight.set(id, batch);
    try {
      this.thread().postMessage({ id, items: batch.map((b) => b.item) } satisfies WriterRequest);
    } catch (err) {
      // A value that cannot cross to the thread: nothing of this batch was stored.
      this.inFlight.delete(id);
      for (const b of batch) b.reject(err);
      this.checkIdle();
    }
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(ENTRY, { workerData: this.init, name: 'bugbot-intake-writer' });
    w.unref();
    let ready = false;
    this.ready = new Promise((resolve, reject) => {
      w.on('message', (m: WriterReply) => {
        if (!('ready' in m)) return this.onReply(m);
        ready = true;
        resolve();
      });
      const gone = (why: string) => {
        if (!ready) reject(new Error(`intake's writer thread did not start: ${why}`));
        this.lost(w, why);
      };
      w.on('error', (err: unknown) => gone((err as Error)?.message ?? String(err)));
      w.on('exit', (code) => gone(`exited with code ${code}`));
    });
    // A thread that fails to start fails the requests it held; start() reports it.
    this.ready.catch(() => {});
    this.worker = w;
    return w;
  }

  private onReply(m: Exclude<WriterReply, { ready: true }>): void {
    const batch = this.inFlight.get(m.id);
    if (!batch) return;
    this.inFlight.delete(m.id);
    batch.forEach((b, i) => {
      const o = m.outcomes[i]!;
      if ('replay' in o) b.reject(new ReplayError(o.replay));
      else if ('refused' in o) b.reject(new HttpError(o.refused.status, o.refused.code, o.refused.message, o.refused.details));
      // As the error would be on this thread (the HTTP layer maps a full disk to 507, busy
      // to 503), with the stack of where it was thrown there.
      else if ('failed' in o) b.reject(Object.assign(new Error(o.failed.message), o.failed.code ? { code: o.failed.code } : {}, o.failed.stack ? { stack: o.failed.stack } : {}));
      else b.resolve(o);
    });
    this.checkIdle();
  }

  /** The thread is gone: what it held was not acknowledged; the next request starts another. */
  private lost(w: Worker, why: string): void {
    if (this.worker !== w) return;
    this.worker = null;
    const held = [...this.inFlight.values()].flat();
    this.inFlight.clear();
    this.logger?.error('intake writer thread stopped', { reason: why, requests: held.length });
    const err = new HttpError(503, 'unavailable', `intake's writer thread stopped (${why}); this request was not acknowledged: send it again`);
    for (const b of held) b.reject(err);
    // Requests that arrived meanwhile go to a new thread.
    if (this.pending.length) this.scheduleFlush();
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.inFlightCount > 0) return;
    for (const r of this.idle.splice(0)) r();
  }
}
