/**
 * Log-file watching for `bugbot start` (watch.files) and `bugbot watch`: the tailer
 * reads appended lines, the parser turns errors into events, and intake stores
 * them. Offsets are kept in the store; an event's id is its byte offset in the
 * file, so re-reading after a crash stores nothing twice.
 */
import type { BugbotConfig } from '../config.ts';
import type { Intake } from '../intake/index.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../queue/store.ts';
import { LogTailer } from './logfile-tail.ts';

export interface Watchers {
  files: string[];
  stop(): Promise<void>;
}

export interface WatchDeps {
  config: BugbotConfig;
  store: Store;
  intake: Intake;
  logger: Logger;
  /** After a batch is committed: how many events, from which file. */
  onEvents?: (count: number, file: string) => void;
  /** A file never read before is read from its beginning (default: from its end, only what is appended). */
  fromStart?: boolean;
}

export function startWatchers(files: string[], deps: WatchDeps): Watchers {
  if (!files.length) return { files, stop: async () => {} };
  const log = deps.logger.child({ component: 'watch' });
  const tailer = new LogTailer({
    files,
    service: deps.config.watch.service,
    pollMs: deps.config.watch.pollMs,
    ...(deps.fromStart ? { fromStart: true } : {}),
    store: { get: (p) => deps.store.getOffset(p), set: (p, inode, offset, generation, fingerprint) => deps.store.setOffset(p, inode, offset, generation, fingerprint) },
    logger: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
    onEvents: (events, file) => {
      const results = deps.intake.accept(events);
      const stored = results.filter((r) => r.status !== 'duplicate').length;
      if (stored) deps.onEvents?.(stored, file);
    },
  });
  tailer.start();
  return { files, stop: () => tailer.stop() };
}
