/**
 * The store and the intake pipeline, opened the same way by `bugbot start` and by CLI
 * commands that work on the database directly (`watch`, `enqueue`, `tickets`, ...).
 * Kept apart from main.ts so those commands do not load the HTTP server, Slack and the
 * dashboard.
 */
import { statSync, type BigIntStats } from 'node:fs';
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
  /**
   * Why the database file this process opened is no longer the file at its path (deleted,
   * or another put in its place), or null while it is. One stat: cheap enough for a timer.
   */
  databaseGone(): string | null;
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
  return { store, intake, settle, writer, databaseGone: sameFileCheck(dbPath) };
}

/**
 * Whether `path` is still the file this process opened there: compared by device and
 * inode, stated when the store opened it. A file this process holds open keeps its inode
 * number (nothing else can be given it), so a file at the path with another one is
 * another file. Once `rm bugbot.db` ran under a live process, its connections (this
 * thread's and intake's writer thread's) go on reading and writing the unlinked file,
 * which the next start never sees: everything stored from then on is lost.
 */
function sameFileCheck(path: string): () => string | null {
  const opened = statSync(path, { bigint: true });
  return () => {
    let now: BigIntStats;
    try {
      now = statSync(path, { bigint: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // The file, or a folder above it, is gone; any other failure (EACCES, EIO) proves nothing about it.
      if (code === 'ENOENT' || code === 'ENOTDIR') return `${path} was deleted`;
      return null;
    }
    return now.dev === opened.dev && now.ino === opened.ino ? null : `${path} was replaced by another file`;
  };
}
