/**
 * The store and the intake pipeline, opened the same way by `bugbot start` and by CLI
 * commands that work on the database directly (`watch`, `enqueue`, `tickets`, ...).
 * Kept apart from main.ts so those commands do not load the HTTP server, Slack and the
 * dashboard.
 */
import { join } from 'node:path';
import { configuredRedactor, maskedSecretValues, type BugbotConfig } from './config.ts';
import { Intake } from './intake/index.ts';
import { SettleScheduler } from './intake/settle.ts';
import { IntakeWriter } from './intake/writer.ts';
import type { Logger } from './log.ts';
import { Store } from './queue/store.ts';

export interface Services {
  store: Store;
  intake: Intake;
  settle: SettleScheduler;
  /** The thread webhooks' events are committed on (`bugbot start` only); close it before the store. */
  writer: IntakeWriter | null;
}

/**
 * Open the store and the intake pipeline. `writerThread`: commit webhooks' events on a
 * worker thread (intake/writer.ts), for the control plane's HTTP server.
 */
export function openServices(config: BugbotConfig, logger: Logger, opts: { writerThread?: boolean } = {}): Services {
  const dbPath = join(config.home, 'bugbot.db');
  const store = new Store(dbPath, { durability: config.queue.durability });
  const intake = new Intake({ store, config, redactor: configuredRedactor(config) });
  let writer: IntakeWriter | null = null;
  if (opts.writerThread) {
    const { secrets, ...plain } = config;
    writer = new IntakeWriter(
      { dbPath, config: plain, salt: secrets.get(config.intake.hashSaltEnv), maskedValues: maskedSecretValues(config) },
      logger.child({ component: 'intake' }),
    );
    intake.useWriter(writer);
    // Its code loads now, not during the first webhook (`bugbot start` awaits it).
    void writer.start();
  }
  const settle = new SettleScheduler({ store, intake, logger });
  return { store, intake, settle, writer };
}
