/**
 * The 24-hour regression re-check (DESIGN §6): once a pushed run is a day old, we
 * know whether its fix held. The run is appended again with the final
 * `regressions_detected_24h` and `revision + 1`; readers keep the latest revision.
 * A regression is a ticket that intake linked to this run's ticket within 24 hours.
 */
import type { Store } from '../queue/store.ts';
import { nextRevision, type OutcomeArchive, type OutcomeRow } from './archive.ts';

const DAY_MS = 86_400_000;

export function recheckRegressions(store: Store, archive: OutcomeArchive, now = store.now()): OutcomeRow[] {
  const appended: OutcomeRow[] = [];
  for (const row of archive.latest()) {
    // Only fixes that went out: a fix awaiting approval (or skipped) is not live yet.
    if (row.regressions_detected_24h !== null || !row.pushed_to || row.state !== 'pushed') continue;
    // An approved fix went out when it was approved, not when its run finished.
    const finished = Date.parse(row.approved_at ?? row.finished);
    if (!Number.isFinite(finished) || now.getTime() - finished < DAY_MS) continue;
    const until = new Date(finished + DAY_MS).toISOString();
    const regressed = store
      .stmt('SELECT 1 FROM tickets WHERE regression_of = ? AND created_at <= ? LIMIT 1')
      .get(row.ticket_id, until) as unknown;
    const next: OutcomeRow = { ...row, regressions_detected_24h: Boolean(regressed), revision: nextRevision(row) };
    // A fix that regressed within a day was not clean after all.
    if (next.regressions_detected_24h && next.outcome === 'clean') {
      next.outcome = 'messy';
      next.reason = `${row.reason}; regressed within 24 h`;
    }
    archive.append(next);
    appended.push(next);
  }
  return appended;
}
