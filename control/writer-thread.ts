/**
 * Intake's writer thread (see intake/writer.ts): its own connection to the store and
 * its own Intake, fed requests by the HTTP thread; what has queued when it looks, up to
 * TRANSACTION_ITEMS requests, goes into one transaction. It uses the triggers' alert
 * parser as well as intake, so it sits above both, as main.ts does.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { configuredRedactor, type BugbotConfig } from './config.ts';
import { HttpError, parseJsonText } from './http-error.ts';
import { Store } from './queue/store.ts';
import { alertParseOptions, parseAlertWebhook } from './triggers/alerts.ts';
import type { TriggerEvent, TriggerSource } from './types.ts';
import { Intake, ReplayError, type AcceptOptions } from './intake/index.ts';
import { TRANSACTION_ITEMS, type AlertsAccepted, type ItemOutcome, type WriterInit, type WriterItem, type WriterReply, type WriterRequest } from './intake/writer.ts';

if (!parentPort) throw new Error('writer-thread.ts runs as a worker thread (control/intake/writer.ts starts it)');
const port: MessagePort = parentPort;

const init = workerData as WriterInit;
const config = {
  ...init.config,
  // The one secret intake reads by name: the redaction salt.
  secrets: { get: (name: string | undefined) => (name && name === init.config.intake.hashSaltEnv ? init.salt : undefined) },
} as BugbotConfig;
const store = new Store(init.dbPath, { durability: config.queue.durability });
const intake = new Intake({ store, config, redactor: configuredRedactor(config, init.maskedValues) });
const parseOptions = { alerts: alertParseOptions(config, store.now), latency: alertParseOptions(config, store.now, true) };

type Slot = ItemOutcome | { at: number; source?: TriggerSource; rejected?: AlertsAccepted['rejected']; ignored?: AlertsAccepted['ignored'] };

/** Each item's outcome, all committed in one transaction; throws (rolled back: nothing of them stored) when it failed. */
function commit(items: WriterItem[]): ItemOutcome[] {
  const toStore: Array<{ events: TriggerEvent[]; opts: AcceptOptions }> = [];
  // Per item: its refusal, or where its events are in toStore and what parsing found.
  // Alert webhooks' bodies are parsed here; one that is not a valid webhook is refused alone.
  const slots = items.map((it): Slot => {
    if ('events' in it) return { at: toStore.push(it) - 1 };
    try {
      const p = parseAlertWebhook(parseJsonText(it.alerts.text), it.alerts.latency ? parseOptions.latency : parseOptions.alerts);
      return { at: toStore.push({ events: p.events, opts: it.opts }) - 1, source: p.source, rejected: p.rejected, ignored: p.ignored };
    } catch (err) {
      if (err instanceof HttpError) return { refused: { status: err.status, code: err.code, message: err.message, details: err.details } };
      // A body this code could not read (a fault of bugbot's, not the sender's): that
      // request alone fails, not the others that share its transaction.
      return { refused: { status: 500, code: 'internal', message: `could not read this webhook: ${(err as Error)?.message ?? String(err)}` } };
    }
  });
  const stored = toStore.length ? intake.acceptMany(toStore) : [];
  return slots.map((s): ItemOutcome => {
    if (!('at' in s)) return s;
    const r = stored[s.at]!;
    return r instanceof ReplayError ? { replay: r.nonce } : { results: r, source: s.source, rejected: s.rejected, ignored: s.ignored };
  });
}

/**
 * commit(), and when its transaction fails, each item's failure. The database's refusals
 * (a full disk, busy) fail every item alike; any other error is a fault of bugbot's with
 * one item's events, so the items are committed again one by one and only that one fails,
 * as it would on the HTTP thread. The error keeps its stack: the log shows where it was thrown here.
 */
function outcomes(items: WriterItem[]): ItemOutcome[] {
  try {
    return commit(items);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const sqlite = typeof code === 'string' && code.startsWith('SQLITE_');
    if (items.length > 1 && !sqlite) return items.flatMap((it) => outcomes([it]));
    const e = err as Error | undefined;
    const failed = { message: e?.message ?? String(err), ...(typeof code === 'string' ? { code } : {}), ...(typeof e?.stack === 'string' ? { stack: e.stack } : {}) };
    return items.map(() => ({ failed }));
  }
}

port.on('message', (first: WriterRequest) => {
  // What has queued meanwhile joins this transaction, up to its bound; the rest waits for the next.
  const requests = [first];
  let items = first.items.length;
  while (items < TRANSACTION_ITEMS) {
    const more = receiveMessageOnPort(port)?.message as WriterRequest | undefined;
    if (!more) break;
    requests.push(more);
    items += more.items.length;
  }
  const all = outcomes(requests.flatMap((r) => r.items));
  let i = 0;
  for (const r of requests) {
    port.postMessage({ id: r.id, outcomes: all.slice(i, i + r.items.length) } satisfies WriterReply);
    i += r.items.length;
  }
});
port.postMessage({ ready: true } satisfies WriterReply);
