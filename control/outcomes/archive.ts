/**
 * The outcomes archive: `<home>/outcomes.jsonl`, append-only, one JSON object per
 * run (DESIGN §6). A row is never rewritten: the 24-hour regression check appends
 * the same run again with `revision + 1`, and readers keep the latest revision.
 * Appends are fsynced: the archive is what people review, so it never holds a denied
 * call's input: each denial is written as its tool, reason and a short summary, redacted.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createRedactor } from '../../lib/redact.ts';

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
  denials: OutcomeDenial[];
  regressions_detected_24h: boolean | null;
  revision: number;
  /** Approval mode: when and by whom the fix was approved (a later revision of the run's row). */
  approved_at?: string;
  approved_by?: string;
  /** The pull request an approval opened (approval.target "pr"). */
  pr_url?: string | null;
}

/**
 * The revision a new row of `row`'s run gets: one past it (a row written without one, as
 * DESIGN §6 lists the fields, counts as the first).
 */
export function nextRevision(row: Pick<OutcomeRow, 'revision'>): number {
  return (Number.isInteger(row.revision) && row.revision > 0 ? row.revision : 1) + 1;
}

/** A tool call the guard layers refused (harness/lib/denial.mjs writes them). */
export interface OutcomeDenial {
  phase: string;
  /** The layer that refused it: `hook` (PreToolUse guard), `allowlist` or `cli` (Claude Code). */
  by: string;
  tool: string;
  /**
   * What the call aimed at, cut short and redacted: for Bash the command, for file
   * tools the path, else a URL, query or pattern (null when the call had none). Never
   * file contents.
   */
  summary?: string | null;
  reason?: string;
}

/** Longest denial summary and reason archived (the harness cuts them already; redaction may lengthen). */
const SUMMARY_MAX = 200;
const REASON_MAX = 300;

/** At most `max` characters; a word cut at the limit is dropped whole (harness/lib/denial.mjs `clip`). */
function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const head = s.slice(0, max);
  return `${/\s/.test(s[max] ?? '') ? head : head.replace(/\S+$/, '')}…`;
}

/**
 * A denial as archived: only its phase, layer, tool, summary and reason, the last two
 * redacted. Whatever else a worker's outcome carried (an older harness wrote the call's
 * whole `input`) is dropped.
 */
export function archivedDenial(d: OutcomeDenial, redact: (text: string) => string): OutcomeDenial {
  const raw = d as OutcomeDenial & { input?: unknown };
  let summary: string | null = typeof d.summary === 'string' ? d.summary : null;
  if (summary === null && raw.input && typeof raw.input === 'object') {
    const i = raw.input as Record<string, unknown>;
    const v = [i.command, i.file_path, i.notebook_path, i.url, i.sql, i.path, i.pattern, i.query].find((x) => typeof x === 'string' && x);
    summary = typeof v === 'string' ? v : null;
  }
  // The tool's name is the model's to choose (an MCP tool it made up): clipped and redacted like the rest.
  const short = (v: unknown) => redact(String(v)).slice(0, 120);
  const out: OutcomeDenial = { phase: short(d.phase), by: short(d.by), tool: short(d.tool), summary: summary === null ? null : clip(redact(summary), SUMMARY_MAX) };
  if (typeof d.reason === 'string') out.reason = clip(redact(d.reason), REASON_MAX);
  return out;
}

export interface OutcomeArchiveOptions {
  /**
   * Redaction for the text of denials (lib/redact.ts). Pass the configured redactor's
   * `text` (hash salt, extra patterns); the default applies the built-in rules.
   */
  redact?: (text: string) => string;
}

export class OutcomeArchive {
  readonly path: string;
  /** The archive's redaction: what rows' reasons go through (the pool's logs and runs too). */
  readonly redact: (text: string) => string;

  constructor(home: string, opts: OutcomeArchiveOptions = {}) {
    this.path = join(home, 'outcomes.jsonl');
    this.redact = opts.redact ?? createRedactor().text;
  }

  /**
   * Create the archive if it is not there yet, so that it exists (and the agent's
   * sandbox, which names only paths that exist, keeps it unwritable) before any run.
   */
  ensure(): void {
    writeFileSync(this.path, '', { flag: 'a' });
  }

  /**
   * Append one row; its denials are reduced to what a reviewer needs and redacted first,
   * and so are its reason (it can quote git's or the model endpoint's error text, with a
   * remote's URL in it), its stages' results (a kill's reason quotes the model's command)
   * and the approver (a pull request's URL is GitHub's, left whole). A torn last line (a crash mid-append) is ended first, so this
   * row stays whole.
   */
  append(row: OutcomeRow): void {
    const text = <T extends string | null | undefined>(v: T): T => (typeof v === 'string' ? (this.redact(v) as T) : v);
    const safe: OutcomeRow = {
      ...row,
      ...(typeof row.reason === 'string' ? { reason: this.redact(row.reason) } : {}),
      // A stage's result can be a kill's reason, which quotes what the model typed.
      stages: Object.fromEntries(Object.entries(row.stages ?? {}).map(([k, st]) => [k, st && 'result' in st ? { ...st, result: text(st.result) } : st])),
      ...(row.approved_by !== undefined ? { approved_by: text(row.approved_by) } : {}),
      denials: (row.denials ?? []).map((d) => archivedDenial(d, this.redact)),
    };
    const fd = openSync(this.path, 'a+');
    try {
      const size = fstatSync(fd).size;
      const last = Buffer.alloc(1);
      const torn = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a;
      const buf = Buffer.from(`${torn ? '\n' : ''}${JSON.stringify(safe)}\n`);
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Every row as written (all revisions). */
  readAll(): OutcomeRow[] {
    return this.read().rows;
  }

  /**
   * Every row as written (all revisions), and how many lines could not be read: a torn
   * line from a crash mid-append, or anything that is not a row. The denials of rows an
   * older harness wrote (with the call's whole input) are reduced as append() does now.
   */
  read(): { rows: OutcomeRow[]; skipped: number } {
    const rows: OutcomeRow[] = [];
    let skipped = 0;
    if (!existsSync(this.path)) return { rows, skipped };
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch {
        row = null;
      }
      if (!isRow(row)) {
        skipped++;
        continue;
      }
      if (Array.isArray(row.denials) && row.denials.some((d: unknown) => typeof d === 'object' && d !== null && 'input' in d)) {
        row.denials = row.denials.map((d) => archivedDenial(d, this.redact));
      }
      rows.push(readable(row));
    }
    return { rows, skipped };
  }

  /** The latest revision of each run, in archive order. */
  latest(): OutcomeRow[] {
    return latestRevisions(this.readAll());
  }
}

function isRow(v: unknown): v is OutcomeRow {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { run_id?: unknown }).run_id === 'number';
}

/**
 * A row as the readers (the dashboard's pages and charts, `bugbot outcomes`, the
 * regression check) take it: a field a hand-edited or foreign row lacks, or holds with
 * another type, reads as empty (state and outcome "unknown", no stages, no cost) instead
 * of failing every page that reads the archive. Rows bugbot writes are whole.
 */
function readable(r: OutcomeRow): OutcomeRow {
  const row = r as unknown as Record<string, unknown>;
  const str = (k: string, fallback: string) => {
    if (typeof row[k] !== 'string') row[k] = fallback;
  };
  for (const k of ['fingerprint', 'trigger_source', 'started', 'finished', 'reason']) str(k, '');
  str('state', 'unknown');
  str('outcome', 'unknown');
  if (typeof row.stages !== 'object' || row.stages === null || Array.isArray(row.stages)) row.stages = {};
  if (typeof row.cost_usd !== 'number') row.cost_usd = 0;
  if (!Array.isArray(row.denials)) row.denials = [];
  if (typeof row.tests !== 'object' || row.tests === null) row.tests = { passed: null, failed: null };
  return r;
}

/** The latest revision of each run, in archive order (a row without one is revision 1). */
export function latestRevisions(rows: OutcomeRow[]): OutcomeRow[] {
  const byRun = new Map<number, OutcomeRow>();
  for (const r of rows) {
    const prev = byRun.get(r.run_id);
    if (!prev || (r.revision ?? 1) >= (prev.revision ?? 1)) byRun.set(r.run_id, r);
  }
  return [...byRun.values()];
}
