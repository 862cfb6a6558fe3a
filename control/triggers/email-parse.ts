/**
 * MIME parsing (postal-mime) on a thread of its own. A mail within the line budget
 * (MAX_MIME_LINES) still took seconds to parse, more when an attached mail is parsed again,
 * and on the event loop every route shares that stalled the webhooks, the API and the
 * dashboard for anyone who can send a mail. On the thread a parse has a time limit
 * (triggers.email.parseTimeoutSeconds) and a heap limit (PARSE_HEAP_MB): a thread past
 * either is ended, and the mail refused with a 413 naming the limit.
 *
 * One thread, started on the first mail and ended after IDLE_MS without one; it parses one
 * request at a time (parsing is CPU-bound: two at once would only share a core), so a mail
 * waits behind another for at most the limit.
 */
import { Worker } from 'node:worker_threads';
import type { Email, PostalMimeOptions } from 'postal-mime';
import { HttpError } from '../http-error.ts';

/** A message as postal-mime read it, with its first attached mails (null: one that could not be parsed); or why it could not be parsed. */
export type Parsed = { email: Email; attached: Array<Email | null> } | { error: string };

export interface ParseRequest {
  id: number;
  raws: Array<string | Uint8Array>;
  options: PostalMimeOptions;
  /** How many of each message's attached mails (message/rfc822, message/global) to parse too. */
  attached: number;
}

/** `ready`: the thread has loaded postal-mime; `failed`: the reply could not be sent (bugbot's fault, not the mail's). */
export type ParseReply = { ready: true } | { id: number; parsed: Parsed[] } | { id: number; failed: string };

/** The time limit when the caller names none (triggers.email.parseTimeoutSeconds' default). */
export const DEFAULT_PARSE_TIMEOUT_SECONDS = 10;

/**
 * The parser thread's heap. A 25 MB mail of base64 attachments, the largest Mailgun
 * delivers, needs about 100 MB; 400,000 short lines of text about 250 MB.
 */
export const PARSE_HEAP_MB = 512;

/** An idle thread is ended after this long: mail is rare, and a thread holds its heap. */
const IDLE_MS = 30_000;

/** The thread's entry: email-parse-entry.mjs, then email-parse-thread.ts. */
const ENTRY = new URL('./email-parse-entry.mjs', import.meta.url);

interface Job {
  request: Omit<ParseRequest, 'id'>;
  timeoutSeconds: number;
  /** What the 413 calls the input: "the email", "the attached mails". */
  what: string;
  resolve: (parsed: Parsed[]) => void;
  reject: (err: unknown) => void;
}

class ParserThread {
  private worker: Worker | null = null;
  private ready = false;
  private queue: Job[] = [];
  private current: { id: number; job: Job; timer: NodeJS.Timeout } | null = null;
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | null = null;

  parse(job: Job): void {
    this.queue.push(job);
    this.next();
  }

  private next(): void {
    if (this.current) return;
    const job = this.queue.shift();
    if (!job) return this.idle();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const w = this.thread();
    w.ref();
    if (!this.ready) {
      // Sent once the thread is up: the time limit is the parse's, not the thread's start.
      this.queue.unshift(job);
      return;
    }
    const id = this.nextId++;
    const timer = setTimeout(() => {
      if (this.current?.id !== id) return;
      this.current = null;
      this.stop(w);
      job.reject(new HttpError(413, 'payload_too_large', `${job.what} took more than ${job.timeoutSeconds} s to parse, longer than bugbot parses a mail (triggers.email.parseTimeoutSeconds)`));
      this.next();
    }, job.timeoutSeconds * 1000);
    this.current = { id, job, timer };
    try {
      w.postMessage({ id, ...job.request } satisfies ParseRequest);
    } catch (err) {
      clearTimeout(timer);
      this.current = null;
      job.reject(err);
      return this.next();
    }
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(ENTRY, { name: 'bugbot-email-parser', resourceLimits: { maxOldGenerationSizeMb: PARSE_HEAP_MB } });
    this.worker = w;
    this.ready = false;
    w.on('message', (m: ParseReply) => {
      if (w !== this.worker) return;
      if ('ready' in m) {
        this.ready = true;
        return this.next();
      }
      if (this.current?.id !== m.id) return;
      const { job, timer } = this.current;
      clearTimeout(timer);
      this.current = null;
      if ('failed' in m) job.reject(new Error(`the email parser could not answer: ${m.failed}`));
      else job.resolve(m.parsed);
      this.next();
    });
    w.on('error', (err: unknown) => this.lost(w, err));
    w.on('exit', (code) => this.lost(w, new Error(`exited with code ${code}`)));
    return w;
  }

  /** The thread died on its own: out of memory (the mail's doing: a 413), or bugbot's fault. */
  private lost(w: Worker, err: unknown): void {
    if (w !== this.worker) return;
    const started = this.ready;
    this.worker = null;
    this.ready = false;
    const current = this.current;
    this.current = null;
    if (current) {
      clearTimeout(current.timer);
      const { job } = current;
      if ((err as { code?: unknown })?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        job.reject(new HttpError(413, 'payload_too_large', `${job.what} needed more than ${PARSE_HEAP_MB} MB of memory to parse, more than bugbot gives a mail`));
      } else {
        job.reject(new HttpError(503, 'unavailable', `the email parser stopped (${(err as Error)?.message ?? String(err)}); this request was not acknowledged: send it again`));
      }
    }
    // A thread that could not start would fail the same way for every mail: they all fail now.
    if (!started) {
      const why = new Error(`the email parser's thread did not start: ${(err as Error)?.message ?? String(err)}`);
      for (const job of this.queue.splice(0)) job.reject(why);
    }
    this.next();
  }

  private stop(w: Worker): void {
    if (this.worker === w) {
      this.worker = null;
      this.ready = false;
    }
    void w.terminate();
  }

  private idle(): void {
    const w = this.worker;
    if (!w || this.idleTimer) return;
    // Held only while it has work: an idle parser keeps no process alive.
    w.unref();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.worker === w && !this.current && !this.queue.length) this.stop(w);
    }, IDLE_MS);
    this.idleTimer.unref();
  }
}

const parser = new ParserThread();

/**
 * Parses each message of `raws` with postal-mime on the parser thread, and the first
 * `attached` attached mails of each. Rejects with a 413 when the thread takes longer than
 * `timeoutSeconds` or more memory than PARSE_HEAP_MB; `what` names the input in it.
 */
export function parseMime(
  raws: Array<string | Uint8Array>,
  opts: { options: PostalMimeOptions; attached: number; timeoutSeconds?: number; what: string },
): Promise<Parsed[]> {
  return new Promise((resolve, reject) => {
    parser.parse({
      request: { raws, options: opts.options, attached: opts.attached },
      timeoutSeconds: opts.timeoutSeconds ?? DEFAULT_PARSE_TIMEOUT_SECONDS,
      what: opts.what,
      resolve,
      reject,
    });
  });
}
