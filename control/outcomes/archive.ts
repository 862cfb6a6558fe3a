/**
 * The outcomes archive: `<home>/outcomes.jsonl`, append-only, one JSON object per
 * run (its fields: OutcomeRow, below; docs/harness.md, "Outcomes"). A row is never rewritten: the 24-hour regression check appends
 * the same run again with `revision + 1`, and readers keep the latest revision.
 * Appends are fsynced: the archive is what people review, so it never holds a denied
 * call's input: each denial is written as its tool, reason and a short summary, redacted.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createRedactor } from '../../lib/redact.ts';

export type OutcomeLabel = 'clean' | 'messy' | 'failed';

export interface StageStats {
  tokens: number;
  tool_calls: number;
  cost_usd: number;
  /**
   * False when a session of the stage ended before Claude Code reported its cost (killed:
   * idle, wall clock, cancelled, a banned action): `cost_usd` is then what is known, a
   * lower bound. Absent on rows written before it was recorded, and on the push.
   */
  cost_reported?: boolean;
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
  /** False when a stage's cost is not known in full (StageStats.cost_reported): `cost_usd` is a lower bound. */
  cost_reported?: boolean;
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
 * rows before revisions were numbered had, counts as the first).
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

/**
 * At most `max` characters; a word cut at the limit is dropped whole (harness/lib/denial.mjs
 * `clip`). Text it clipped already is left as it is: a later revision of a row (an
 * approval's, the 24-hour re-check's) appends its denials again, and a second clip would
 * take a word off one cut at a space.
 */
function clip(s: string, max: number): string {
  if (s.length <= max || (s.length === max + 1 && s.endsWith('…'))) return s;
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

/** Rows kept in memory while the archive cannot be written (each a few KB). */
const MAX_PENDING = 10_000;

export class OutcomeArchive {
  readonly path: string;
  /** The archive's redaction: what rows' reasons go through (the pool's logs and runs too). */
  readonly redact: (text: string) => string;
  /** What read() has parsed so far, for the next read to go on from. */
  private cache: ReadCache | null = null;
  /**
   * Rows a failed write left (a full disk), oldest first: written before the next row, or
   * by flushPending() once the disk takes them, so none is lost while the process lives.
   * At most MAX_PENDING; past that the oldest go (`dropped` counts them).
   */
  private pending: OutcomeRow[] = [];
  private droppedRows = 0;

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
   * and the approver (a pull request's URL is GitHub's, left whole). A torn last line (a
   * crash mid-append) is ended first, so this row stays whole. A write that fails (a full
   * disk takes part of the row) is cut off again before the error goes on: no torn line,
   * and the row is kept to be written later (see `pending`), after those kept before it.
   */
  append(row: OutcomeRow): void {
    this.pending.push(row);
    if (this.pending.length > MAX_PENDING) {
      this.pending.shift();
      this.droppedRows++;
    }
    this.flushPending();
  }

  /** Rows kept from failed writes, not written yet, and those dropped past MAX_PENDING. */
  unwritten(): { pending: number; dropped: number } {
    return { pending: this.pending.length, dropped: this.droppedRows };
  }

  /** Write the rows failed writes left, oldest first; throws (keeping them) while the write still fails. */
  flushPending(): void {
    while (this.pending.length) {
      try {
        this.write(this.pending[0]!);
      } catch (err) {
        // Only what the file system refused waits: a row that cannot be written at all
        // (no error code: not the disk's) would hold up every row after it.
        if (!(err as NodeJS.ErrnoException).code) this.pending.shift();
        throw err;
      }
      this.pending.shift();
    }
  }

  private write(row: OutcomeRow): void {
    const safe = this.safe(row);
    const fd = openSync(this.path, 'a+');
    try {
      const size = fstatSync(fd).size;
      const last = Buffer.alloc(1);
      const torn = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a;
      const buf = Buffer.from(`${torn ? '\n' : ''}${JSON.stringify(safe)}\n`);
      try {
        for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
        fsyncSync(fd);
      } catch (err) {
        try {
          ftruncateSync(fd, size);
        } catch {
          // The part written stays, a torn line the readers skip and the next append ends.
        }
        throw err;
      }
    } finally {
      closeSync(fd);
    }
  }

  /** A row as append() writes it. */
  private safe(row: OutcomeRow): OutcomeRow {
    return this.redacted(row, (row.denials ?? []).map((d) => archivedDenial(d, this.redact)));
  }

  /** The row's free text through the archive's redaction (idempotent: a redacted text stays as it is), with `denials`. */
  private redacted(row: OutcomeRow, denials: OutcomeDenial[]): OutcomeRow {
    const text = <T>(v: T): T => (typeof v === 'string' ? (this.redact(v) as T) : v);
    return {
      ...row,
      ...(typeof row.reason === 'string' ? { reason: this.redact(row.reason) } : {}),
      // A stage's result can be a kill's reason, which quotes what the model typed.
      stages: Object.fromEntries(Object.entries(row.stages ?? {}).map(([k, st]) => [k, st && 'result' in st ? { ...st, result: text(st.result) } : st])),
      ...(row.approved_by !== undefined ? { approved_by: text(row.approved_by) } : {}),
      denials,
    };
  }

  /** Every row as written (all revisions). */
  readAll(): OutcomeRow[] {
    return this.read().rows;
  }

  /**
   * Every row as written (all revisions), and how many lines could not be read: a torn
   * line from a crash mid-append, or anything that is not a row. Rows an older version
   * wrote are read as append() writes them now: their reason, stages' results, approver
   * and denials redacted (an older harness archived a denied call's whole input).
   *
   * The file is read in chunks, line by line: a whole-file string fails past 512 MiB
   * (V8's longest string) and holds the text and its lines at once. What was read is
   * kept: while the file only grows, a read parses the lines appended since the last one.
   * The rows are shared between reads: a caller copies one before changing it.
   */
  read(): { rows: OutcomeRow[]; skipped: number } {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.cache = null;
      return { rows: [], skipped: 0 };
    }
    try {
      const st = fstatSync(fd);
      let c = this.cache;
      const same = c !== null && c.dev === st.dev && c.ino === st.ino;
      if (!c || !same || c.size !== st.size || c.mtimeMs !== st.mtimeMs) {
        // Only an append keeps what was read: another file in its place, or one cut short
        // or rewritten (the same size, or the last line read no longer ends where it did),
        // is read from the start.
        if (!c || !same || st.size <= c.size || (c.offset > 0 && !endsLineAt(fd, c.offset))) {
          c = { dev: st.dev, ino: st.ino, size: 0, mtimeMs: 0, offset: 0, rows: [], skipped: 0, last: undefined };
        }
        const tail = this.readLines(fd, c, st.size);
        // A last line without its newline is torn (a crash mid-append) or still being
        // written: counted now, and read again once it is whole.
        c.last = tail === undefined ? undefined : this.parse(tail);
        c.size = st.size;
        c.mtimeMs = st.mtimeMs;
        this.cache = c;
      }
      // A new array each time: a caller's sort or splice is not the next reader's.
      return { rows: c.last ? [...c.rows, c.last] : [...c.rows], skipped: c.skipped + (c.last === null ? 1 : 0) };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The latest revision of each run, in archive order. Rows kept from failed writes count,
   * as written: a revision made meanwhile (an approval's) builds on them, not the one before.
   */
  latest(): OutcomeRow[] {
    return latestRevisions([...this.readAll(), ...this.pending.map((r) => this.safe(r))]);
  }

  /**
   * Parse the whole lines from `c.offset` up to `size` into `c`, a chunk at a time (a line
   * that crosses a chunk's end is split on its newline byte, then decoded whole); returns
   * the text after the last newline: undefined when there is none, null when it is longer
   * than a row can be.
   */
  private readLines(fd: number, c: ReadCache, size: number): string | null | undefined {
    const buf = Buffer.alloc(READ_CHUNK);
    // The line under way where it crosses chunks; one longer than LINE_MAX is not kept.
    let parts: Buffer[] = [];
    let partLength = 0;
    let pos = c.offset;
    while (pos < size) {
      const n = readSync(fd, buf, 0, Math.min(READ_CHUNK, size - pos), pos);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      pos += n;
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        const line = partLength > LINE_MAX ? null : (parts.length ? Buffer.concat([...parts, chunk.subarray(start, nl)]) : chunk.subarray(start, nl)).toString('utf8');
        const row = this.parse(line);
        if (row) c.rows.push(row);
        else if (row === null) c.skipped++;
        parts = [];
        partLength = 0;
        start = nl + 1;
        c.offset = pos - n + start;
      }
      if (start === n) continue;
      partLength += n - start;
      // Copied: `buf` is read into again.
      if (partLength <= LINE_MAX) parts.push(Buffer.from(chunk.subarray(start)));
      else parts = [];
    }
    if (partLength > LINE_MAX) return null;
    return partLength ? Buffer.concat(parts).toString('utf8') : undefined;
  }

  /** One line as a readable, redacted row; null when it is not a row, undefined when it is blank. */
  private parse(line: string | null): OutcomeRow | null | undefined {
    if (line !== null && !line.trim()) return undefined;
    let row: unknown = null;
    try {
      if (line !== null) row = JSON.parse(line);
    } catch {
      // not JSON: counted below
    }
    if (!isRow(row)) return null;
    const r = readable(row);
    // Reduced as append() does now (an older harness kept a denied call's whole input);
    // the others' text only redacted again: clipping twice would cut them shorter.
    const denials = r.denials.some((d: unknown) => typeof d === 'object' && d !== null && 'input' in d)
      ? r.denials.map((d) => archivedDenial(d, this.redact))
      : r.denials.map((d) => redactedDenial(d, this.redact));
    return this.redacted(r, denials);
  }
}

/** Bytes read at a time: the archive is never held whole. */
const READ_CHUNK = 1 << 20;
/**
 * The longest line read as a possible row (a row bugbot writes is a few KiB): a longer
 * one (a file written over by something else) is counted as unreadable, not held.
 */
const LINE_MAX = 64 << 20;

interface ReadCache {
  dev: number;
  ino: number;
  /** The file's size and mtime when it was last read. */
  size: number;
  mtimeMs: number;
  /** Where the first line not read yet starts (after the last newline read). */
  offset: number;
  /** The rows of the whole lines before `offset`, and how many of those lines were not rows. */
  rows: OutcomeRow[];
  skipped: number;
  /** The line after the last newline: a row, null when it is not one (torn), undefined when there is none. */
  last: OutcomeRow | null | undefined;
}


/** Whether the byte before `offset` is a newline: what was read up to there is still there. */
function endsLineAt(fd: number, offset: number): boolean {
  const b = Buffer.alloc(1);
  return readSync(fd, b, 0, 1, offset - 1) === 1 && b[0] === 0x0a;
}

/** A denial as archived, its summary and reason redacted (already clipped when it was written). */
function redactedDenial(d: OutcomeDenial, redact: (text: string) => string): OutcomeDenial {
  if (typeof d !== 'object' || d === null) return d;
  return {
    ...d,
    ...(typeof d.summary === 'string' ? { summary: redact(d.summary) } : {}),
    ...(typeof d.reason === 'string' ? { reason: redact(d.reason) } : {}),
  };
}

function isRow(v: unknown): v is OutcomeRow {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { run_id?: unknown }).run_id === 'number';
}

/** A finite number from a number or a numeric string (a hand-edited row's "1200"), else null. */
function finite(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : null;
}

/** A finite number from a number or a numeric string (a hand-edited row's "1200"), else 0. */
function num(v: unknown): number {
  return finite(v) ?? 0;
}

/**
 * A row as the readers (the dashboard's pages and charts, `bugbot outcomes`, the
 * regression check) take it: a field a hand-edited or foreign row lacks, or holds with
 * another type, reads as empty (state and outcome "unknown", no stages, no cost) instead
 * of failing every page that reads the archive. Numbers are numbers: a revision "9" would
 * beat "10" (strings compare by characters), and tokens "1200" would be joined, not added.
 * Rows bugbot writes are whole.
 */
function readable(r: OutcomeRow): OutcomeRow {
  const row = r as unknown as Record<string, unknown>;
  const str = (k: string, fallback: string) => {
    if (typeof row[k] !== 'string') row[k] = fallback;
  };
  for (const k of ['fingerprint', 'trigger_source', 'started', 'finished', 'reason']) str(k, '');
  str('state', 'unknown');
  str('outcome', 'unknown');
  if (row.approved_at !== undefined && typeof row.approved_at !== 'string') delete row.approved_at;
  const revision = num(row.revision);
  row.revision = Number.isInteger(revision) && revision > 0 ? revision : 1;
  const stages = typeof row.stages === 'object' && row.stages !== null && !Array.isArray(row.stages) ? (row.stages as Record<string, unknown>) : {};
  row.stages = Object.fromEntries(
    Object.entries(stages).flatMap(([k, v]) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return [];
      const st = { ...(v as Record<string, unknown>) };
      for (const f of ['tokens', 'tool_calls', 'cost_usd', 'duration_s']) st[f] = num(st[f]);
      for (const f of ['edits', 'turns']) if (f in st) st[f] = num(st[f]);
      if ('result' in st && typeof st.result !== 'string') st.result = null;
      return [[k, st]];
    }),
  );
  row.cost_usd = num(row.cost_usd);
  // A push time "600" is a push time (left out of the median otherwise), one that is no
  // finite number (1e999 parses as Infinity) is none; a ticket "7" is ticket 7, not another.
  row.trigger_to_push_s = finite(row.trigger_to_push_s);
  if (finite(row.ticket_id) !== null) row.ticket_id = finite(row.ticket_id);
  if (!Array.isArray(row.denials)) row.denials = [];
  if (typeof row.tests !== 'object' || row.tests === null) row.tests = { passed: null, failed: null };
  return r;
}

/**
 * The latest revision of each run, in archive order (a row without one is revision 1).
 * A run is its number, its ticket and its start: the archive outlives the database, and
 * once `bugbot.db` is deleted or a backup restored the new one gives the old numbers
 * again. A later run of the same number is its own run, not a revision of the earlier one
 * (whose revision 2 would hide the new run's first row, and an approval would build on
 * it); the run whose row of that number came last is taken for the one this database
 * has, and the others come after it, so that a look-up by number finds it.
 */
export function latestRevisions(rows: OutcomeRow[]): OutcomeRow[] {
  // Keyed by the whole identity, not by the last row of the number: a restored backup's run
  // archived again after another database's run of its number (its 24-hour revision) is a
  // revision of its own first row, not a third run (counted twice, and re-checked again
  // and again from its first row).
  const byRun = new Map<string, OutcomeRow>();
  // The identity whose row of that number came last: the run this database has.
  const current = new Map<number, string>();
  for (const r of rows) {
    const key = JSON.stringify([r.run_id, r.ticket_id, r.started]);
    const prev = byRun.get(key);
    current.set(r.run_id, key);
    if (prev && (r.revision ?? 1) < (prev.revision ?? 1)) continue;
    byRun.set(key, r);
  }
  const all = [...byRun.entries()];
  return [...all.filter(([k, r]) => current.get(r.run_id) === k), ...all.filter(([k, r]) => current.get(r.run_id) !== k)].map(([, r]) => r);
}
