/**
 * The outcomes archive: `<home>/outcomes.jsonl`, append-only, one JSON object per
 * run (DESIGN §6). A row is never rewritten: the 24-hour regression check appends
 * the same run again with `revision + 1`, and readers keep the latest revision.
 * Appends are fsynced: the archive is what people review.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export type OutcomeLabel = 'clean' | 'messy' | 'failed';

export interface StageStats {
  tokens: number;
  tool_calls: number;
  cost_usd: number;
  duration_s: number;
  edits?: number;
  turns?: number;
  result?: string | null;
}

export interface OutcomeRow {
  run_id: number;
  ticket_id: number;
  fingerprint: string;
  trigger_source: string;
  service: string | null;
  started: string;
  finished: string;
  /** Seconds from the ticket's first occurrence to the push (null when nothing was pushed). */
  trigger_to_push_s: number | null;
  stages: Partial<Record<'research' | 'implement' | 'review' | 'docs' | 'push', StageStats>>;
  outcome: OutcomeLabel;
  state: string;
  reason: string;
  branch: string | null;
  commit: string | null;
  pushed_to: string | null;
  diff: { files: number; insertions: number; deletions: number } | null;
  tests: { passed: number | null; failed: number | null };
  cost_usd: number;
  model: string | null;
  attempt: number;
  worker: number;
  denials: Array<{ phase: string; by: string; tool: string; reason?: string }>;
  regressions_detected_24h: boolean | null;
  revision: number;
  /** Approval mode: when and by whom the fix was approved (a later revision of the run's row). */
  approved_at?: string;
  approved_by?: string;
  /** The pull request an approval opened (approval.target "pr"). */
  pr_url?: string | null;
}

export class OutcomeArchive {
  readonly path: string;

  constructor(home: string) {
    this.path = join(home, 'outcomes.jsonl');
  }

  append(row: OutcomeRow): void {
    const fd = openSync(this.path, 'a');
    try {
      writeSync(fd, JSON.stringify(row) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Every row as written (all revisions). A torn last line (crash mid-write) is skipped. */
  readAll(): OutcomeRow[] {
    if (!existsSync(this.path)) return [];
    const rows: OutcomeRow[] = [];
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        rows.push(JSON.parse(line) as OutcomeRow);
      } catch {
        // A partial line can only be the last one, from a crash during append.
      }
    }
    return rows;
  }

  /** The latest revision of each run, in archive order. */
  latest(): OutcomeRow[] {
    const byRun = new Map<number, OutcomeRow>();
    for (const r of this.readAll()) {
      const prev = byRun.get(r.run_id);
      if (!prev || r.revision >= prev.revision) byRun.set(r.run_id, r);
    }
    return [...byRun.values()];
  }
}
