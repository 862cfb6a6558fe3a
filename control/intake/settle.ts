/**
 * The settle scheduler: wakes at the next stored settle deadline (or every
 * `maxSleepMs`, so deadlines written by another process, e.g. `bugbot watch`, are
 * seen) and triages what is due. Deadlines live in SQLite, so a restart loses none.
 */
import type { Logger } from '../log.ts';
import type { Intake } from './index.ts';
import type { Store } from '../queue/store.ts';

export interface SettleSchedulerOptions {
  store: Store;
  intake: Intake;
  logger: Logger;
  maxSleepMs?: number;
}

export class SettleScheduler {
  private timer: NodeJS.Timeout | null = null;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private failures = 0;

  private readonly listeners: Array<(count: number) => void> = [];

  constructor(private readonly opts: SettleSchedulerOptions) {}

  /** Called after tickets were triaged (e.g. to wake the dispatcher). */
  onSettled(fn: (count: number) => void): void {
    this.listeners.push(fn);
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'running';
    this.schedule(0);
  }

  /** Re-check now (new events may have an earlier deadline than the one we sleep on). */
  poke(): void {
    if (this.state === 'running') this.schedule(0);
  }

  stop(): void {
    this.state = 'stopped';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One pass; exposed for tests and the CLI. */
  tick(): number {
    const n = this.opts.intake.settleDue();
    if (n > 0) for (const fn of this.listeners) fn(n);
    return n;
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), ms);
    this.timer.unref();
  }

  private run(): void {
    if (this.state !== 'running') return;
    const maxSleep = this.opts.maxSleepMs ?? 1000;
    let delay = maxSleep;
    try {
      this.tick();
      this.failures = 0;
      const next = this.opts.store.nextSettleDeadline();
      if (next) delay = Math.max(10, Math.min(maxSleep, Date.parse(next) - this.opts.store.now().getTime()));
    } catch (err) {
      // Back off on repeated failures (disk full, locked database) instead of spinning.
      this.failures++;
      delay = Math.min(30_000, maxSleep * 2 ** Math.min(this.failures, 5));
      this.opts.logger.error('settle pass failed', { error: (err as Error).message, retryInMs: delay });
    }
    this.schedule(delay);
  }
}
