/**
 * The 24-hour regression re-check (docs/harness.md, "Outcomes"): once a pushed run is a day old, we
 * know whether its fix held. The run is appended again with the final
 * `regressions_detected_24h` and `revision + 1`; readers keep the latest revision.
 * A regression is a ticket that intake linked to this run's ticket, its error seen within
 * 24 hours of the fix going out.
 *
 * Occurrences reach intake late: an alert after its pipeline's waits (evaluation,
 * pending period, group wait), a log line or a retried webhook once a control plane that
 * was down comes back. So a regression counts by when its error was seen, not when its
 * ticket was made, and the flag is written only LATE_MS past the 24-hour mark and past the
 * control plane's start: what recurred in time has been read by then.
 */
import { runsForTicket } from '../queue/leases.ts';
import type { Store } from '../queue/store.ts';
import { nextRevision, type OutcomeArchive, type OutcomeRow } from './archive.ts';

const DAY_MS = 86_400_000;
/** How long after the 24-hour mark (or the control plane's start) an occurrence may still arrive. */
export const LATE_MS = 3_600_000;

/**
 * Append the final revision of every pushed run whose 24 hours are over. `upSince`: when
 * this control plane started taking events (a run whose mark passed while it was down
 * waits LATE_MS from then).
 */
export function recheckRegressions(store: Store, archive: OutcomeArchive, now = store.now(), upSince?: Date): OutcomeRow[] {
  const appended: OutcomeRow[] = [];
  for (const row of archive.latest()) {
    // Only fixes that went out: a fix awaiting approval (or skipped) is not live yet.
    if (row.regressions_detected_24h !== null || !row.pushed_to || row.state !== 'pushed') continue;
    // An approved fix went out when it was approved, not when its run finished.
    const out = Date.parse(row.approved_at ?? row.finished);
    if (!Number.isFinite(out)) continue;
    const until = out + DAY_MS;
    if (now.getTime() < Math.max(until, upSince?.getTime() ?? -Infinity) + LATE_MS) continue;
    if (!ofThisDatabase(store, row)) continue;
    const regressions = regressionsSeenBy(store, row.ticket_id, until);
    const next: OutcomeRow = { ...row, regressions_detected_24h: regressions.length > 0, revision: nextRevision(row) };
    // A fix that regressed within a day was not clean after all.
    if (next.regressions_detected_24h && next.outcome === 'clean') {
      next.outcome = 'messy';
      next.reason = `${row.reason}; regressed within 24 h (ticket ${regressions.join(', ')})`;
    }
    archive.append(next);
    appended.push(next);
  }
  return appended;
}

/**
 * Whether the row is of a run this database holds. The archive outlives the database: after
 * `bugbot.db` is deleted or a backup restored, the numbers of the runs and tickets an
 * earlier database gave are given again, to other runs of other tickets, and those
 * tickets' regressions say nothing of the earlier fix. Such a row keeps its flag unset:
 * what recurred after it was recorded in a database that is gone. The run's row here names
 * the same ticket, of the same fingerprint, and the same branch (named for the ticket and
 * the second of the claim); a run without one (never launched) started no later than the row.
 */
function ofThisDatabase(store: Store, row: OutcomeRow): boolean {
  const run = runsForTicket(store, row.ticket_id).find((r) => r.id === row.run_id);
  if (!run || store.getTicketRow(row.ticket_id)?.fingerprint !== row.fingerprint) return false;
  return run.branch ? row.branch === run.branch : !(Date.parse(row.started) < Date.parse(run.started_at));
}

/**
 * The regressions of a ticket whose error was seen by `until` (epoch ms): by the earlier of
 * the time its source gave (intake keeps it sane: at most minutes ahead) and when it was
 * received. Parsed, not compared as text.
 */
function regressionsSeenBy(store: Store, ticketId: number, until: number): number[] {
  return store
    .regressionsOf(ticketId)
    .filter((t) => {
      const seen = [t.first_seen, t.created_at].map((s) => Date.parse(s)).filter((ms) => Number.isFinite(ms));
      return seen.length > 0 && Math.min(...seen) <= until;
    })
    .map((t) => t.id);
}
