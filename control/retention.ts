/**
 * What piles up goes after `retention`'s days: events (one row per alert, report or log
 * line; an alert storm writes thousands a minute) and finished runs' folders (stream
 * logs, prompts, plans: megabytes a run). Tickets, their counts and the outcomes archive
 * stay. The events go oldest first in small transactions, so intake's writer (another
 * connection) never waits long behind them; a backlog (the first sweep after an upgrade)
 * is worked off in slices, one a second, not in one long stall of the event loop.
 */
import { existsSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BugbotConfig } from './config.ts';
import type { Logger } from './log.ts';
import { runsEndedBefore } from './queue/leases.ts';
import type { Store } from './queue/store.ts';
import type { TicketState } from './types.ts';
import { workspacePaths } from './dispatcher/workspace.ts';

/** Rows per delete transaction: a few milliseconds each. */
const CHUNK = 500;
/** Time one slice may take on the event loop before it yields. */
const SLICE_MS = 50;
const HOUR_MS = 3_600_000;

/** States whose runs' folders people still need: an approval reads its push.env, a person looks at the logs. */
const KEEP_FOLDERS_OF: readonly TicketState[] = ['running', 'awaiting_approval', 'needs_human'];

export interface SweepResult {
  events: number;
  runFolders: number;
  /** False when the slice ran out of time with events left to delete. */
  done: boolean;
}

/** Delete events that arrived before `before`, oldest first, a chunk a transaction, until `deadline` (a performance.now() value). */
export function pruneEvents(store: Store, before: string, deadline = Infinity): { deleted: number; done: boolean } {
  let deleted = 0;
  for (;;) {
    const n = store.tx(() => store.deleteOldEvents(before, CHUNK));
    deleted += n;
    if (n < CHUNK) return { deleted, done: true };
    if (performance.now() >= deadline) return { deleted, done: false };
  }
}

/** Finished runs whose folders may go: ended before `before`, their tickets no longer waiting on anyone. */
export function expiredRunFolders(config: BugbotConfig, store: Store, before: string): string[] {
  return runsEndedBefore(store, before, KEEP_FOLDERS_OF)
    .map((r) => workspacePaths(config, { id: r.ticket_id }, { id: r.id, worker_id: 0, started_at: '' }).ticketDir)
    .filter((dir) => existsSync(dir));
}

export class Retention {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly deps: { config: BugbotConfig; store: Store; logger: Logger }) {}

  /** Sweep now, then every hour (every second while a backlog lasts). */
  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One slice: events past their days (until the slice's time is up), then expired run folders. */
  async sweep(sliceMs = SLICE_MS): Promise<SweepResult> {
    const { config, store } = this.deps;
    const now = store.now().getTime();
    const days = (d: number) => new Date(now - d * 86_400_000).toISOString();
    const { eventsDays, runFoldersDays } = config.retention;
    const ev = eventsDays > 0 ? pruneEvents(store, days(eventsDays), performance.now() + sliceMs) : { deleted: 0, done: true };
    let runFolders = 0;
    if (runFoldersDays > 0) {
      for (const dir of expiredRunFolders(config, store, days(runFoldersDays))) {
        await rm(dir, { recursive: true, force: true });
        // The ticket's folder too, once its last run's is gone.
        await rmdir(dirname(dir)).catch(() => undefined);
        runFolders++;
      }
    }
    return { events: ev.deleted, runFolders, done: ev.done };
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.sweep()
        .then((r) => {
          if (r.events || r.runFolders) this.deps.logger.info('retention', { events: r.events, runFolders: r.runFolders, more: !r.done });
          this.schedule(r.done ? HOUR_MS : 1000);
        })
        .catch((err: Error) => {
          this.deps.logger.error('retention sweep failed', { error: err.message });
          this.schedule(HOUR_MS);
        });
    }, ms);
    this.timer.unref();
  }
}
