/**
 * The store and the intake pipeline, opened the same way by `bugbot start` and by CLI
 * commands that work on the database directly (`watch`, `enqueue`, `tickets`, ...).
 * Kept apart from main.ts so those commands do not load the HTTP server, Slack and the
 * dashboard.
 */
import { join } from 'node:path';
import { configuredRedactor, type BugbotConfig } from './config.ts';
import { Intake } from './intake/index.ts';
import { SettleScheduler } from './intake/settle.ts';
import type { Logger } from './log.ts';
import { Store } from './queue/store.ts';

export interface Services {
  store: Store;
  intake: Intake;
  settle: SettleScheduler;
}

/** Open the store and the intake pipeline. */
export function openServices(config: BugbotConfig, logger: Logger): Services {
  const store = new Store(join(config.home, 'bugbot.db'), { durability: config.queue.durability });
  const intake = new Intake({ store, config, redactor: configuredRedactor(config) });
  const settle = new SettleScheduler({ store, intake, logger });
  return { store, intake, settle };
}
