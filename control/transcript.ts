/**
 * What the agent did in a run, session by session, read from the stream-json logs the
 * harness keeps in the run's folder (`stage-<label>.jsonl`, harness/lib/phase.sh): what it
 * said, each tool call by its most telling argument, the first lines of each result, the
 * permission denials its `result` event lists, and how the session ended. Shared by
 * `bugbot transcript` and the ticket page's sessions, and the dashboard's live tail
 * (`eventEntries`, `entryLine`).
 *
 * Everything here is untrusted (the model's words, tools' output): every string shown is
 * scrubbed whole, then cut to a bound, so a secret cut in half is not left for the
 * redactor to miss. Logs are read bounded: the first `maxBytes` of each file (its end
 * event then looked for in its last bytes), the lines that are not JSON counted, not shown.
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Scrub } from './scrub.ts';

/**
 * At most `max` bytes of a file (its head, or its tail), or null when it is missing or is
 * no regular file: a folder would throw on read, and a FIFO's open would block the server.
 */
export function readBounded(path: string, max: number, from: 'head' | 'tail' = 'head'): { text: string; truncated: boolean; size: number } | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return null;
    const size = stat.size;
    const n = Math.min(size, max);
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, from === 'head' ? 0 : size - n);
    return { text: buf.toString('utf8'), truncated: size > max, size };
  } finally {
    closeSync(fd);
  }
}

/** One Claude Code stream-json event, as far as it is read here. */
export interface StreamEvent {
  type?: string;
  subtype?: string;
  model?: string;
  message?: { content?: Array<ContentBlock> | string };
  is_error?: boolean;
  num_turns?: number;
  total_cost_usd?: number;
  duration_ms?: number;
  errors?: unknown;
  permission_denials?: Array<{ tool_name?: string; tool_input?: unknown }>;
}

interface ContentBlock {
  type?: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
  tool_use_id?: string;
  is_error?: boolean;
  content?: unknown;
}

/** How a session ended, from its `result` event. */
export interface SessionEnd {
  /** success, error_max_turns, error_max_budget_usd, error_during_execution... */
  subtype: string;
  isError: boolean;
  turns: number | null;
  costUsd: number | null;
  durationMs: number | null;
  /** What the CLI said went wrong ("Reached maximum number of turns (40)"). */
  errors: string[];
}

/** One thing a session did, as an event tells it (strings not yet scrubbed nor cut: never shown as they are). */
export type RawEntry =
  | { kind: 'start'; model: string | null }
  | { kind: 'text'; text: string }
  | { kind: 'tool_call'; id: string | null; tool: string; input: unknown }
  | { kind: 'tool_result'; id: string | null; isError: boolean; text: string }
  | { kind: 'denial'; tool: string; input: unknown }
  | ({ kind: 'end' } & SessionEnd);

/** One thing a session did, as shown: every string scrubbed, then cut. */
export type TranscriptEntry =
  | { kind: 'text'; text: string }
  | { kind: 'tool_call'; tool: string; arg: string }
  /** `tool`: the call it answers, when the log has it. `more`: lines not shown. */
  | { kind: 'tool_result'; tool: string | null; isError: boolean; lines: string[]; more: number }
  | { kind: 'denial'; tool: string; arg: string }
  | ({ kind: 'end' } & SessionEnd);

export interface TranscriptSession {
  /** The harness's label: research, implement, review, implement-rework, review-rework, docs. */
  label: string;
  file: string;
  /** The file's size in bytes. */
  bytes: number;
  /** Only the first `readBytes` were read: what the session did after them is not here. */
  cut: boolean;
  readBytes: number;
  /** Lines that were not stream-json events (a torn write, another program's output): skipped. */
  unparseable: number;
  model: string | null;
  /** What it did in order, then its permission denials and its end. */
  entries: TranscriptEntry[];
  /** Entries past `maxEntries` (and denials past `maxDenials`) not kept. */
  entriesCut: number;
  /** Tool calls read, those not kept too. */
  toolCalls: number;
  /** Null: no `result` event (the session was stopped, is still running, or its log was cut before it and its tail holds none). */
  end: SessionEnd | null;
}

export interface RunTranscript {
  dir: string;
  /** Whether the run's folder is there (retention removes finished runs' folders). */
  folder: boolean;
  sessions: TranscriptSession[];
}

export interface TranscriptLimits {
  /** Bytes read of each log, from its start. */
  maxBytes: number;
  /** Entries kept of each session (text, calls, results); the rest are counted. */
  maxEntries: number;
  /** Permission denials kept of each session. */
  maxDenials: number;
  /** Characters of what the agent said, one text. */
  textChars: number;
  /** Characters of a tool call's argument (and a tool's name). */
  argChars: number;
  /** Lines of a tool result shown, and characters of each. */
  resultLines: number;
  lineChars: number;
}

export const DEFAULT_TRANSCRIPT_LIMITS: TranscriptLimits = {
  maxBytes: 2_000_000,
  maxEntries: 2000,
  maxDenials: 50,
  textChars: 2000,
  argChars: 300,
  resultLines: 6,
  lineChars: 240,
};

/**
 * The order the harness runs its sessions in (harness/worker.sh): a label missing from the
 * run's `status` file is placed by this, and one not here by its log's mtime after them.
 */
export const SESSION_ORDER = ['research', 'implement', 'review', 'implement-rework', 'review-rework', 'docs'] as const;

/**
 * How much of one string is scrubbed before it is cut: far more than any bound shows, so
 * a secret across this edge lies past what is shown (and a private key begun before it
 * and not ended is masked to the edge).
 */
const SCRUB_WINDOW = 64 * 1024;
/** Where a cut log's `result` event is looked for: its last bytes. */
const END_WINDOW = 256 * 1024;
/** Bytes of the run's `status` file read for the sessions' order. */
const STATUS_BYTES = 256 * 1024;

/** The argument that says most about a call, by the name tools give it (built-in tools, then bugbot's MCP servers'). */
const ARG_KEYS = ['file_path', 'notebook_path', 'command', 'pattern', 'url', 'path', 'query', 'sql', 'logql', 'selector', 'role', 'user_id', 'contains', 'skill', 'description', 'prompt'];

/**
 * A call's most telling argument: a named one, else the input as compact JSON (an MCP
 * tool's labels), else nothing. The JSON's strings go through `mask` before it is written:
 * JSON escapes a secret holding `"` or `\`, and the escaped one is no value a mask knows.
 */
export function toolArg(input: unknown, mask: Scrub): string {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return '';
  const o = input as Record<string, unknown>;
  for (const k of ARG_KEYS) {
    const v = o[k];
    if (typeof v === 'string' && v) return v;
    if (Array.isArray(v) && v.length && v.every((x) => typeof x === 'string')) return v.join(' ');
  }
  return Object.keys(o).length ? (maskedJson(o, mask) ?? '(an input nested too deep to show)') : '';
}

/**
 * Compact JSON, each string masked (up to SCRUB_WINDOW characters of them: far more than
 * is shown; the rest written as `…`), or null when it nests deeper than JSON.stringify can
 * walk (a model's input may).
 */
function maskedJson(v: unknown, mask: Scrub): string | null {
  let left = SCRUB_WINDOW;
  try {
    return JSON.stringify(v, (_k, x: unknown) => {
      if (typeof x !== 'string') return x;
      if (left <= 0) return '…';
      left -= x.length;
      return mask(windowed(x));
    });
  } catch {
    return null;
  }
}

/** A string the log gave, or `fallback` for anything else (String() of an object the log made may throw). */
const str = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);

/** A tool result's text: a string, or its text blocks (an image is named, not shown). */
function resultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((b: { type?: unknown; text?: unknown }) => (typeof b?.text === 'string' ? b.text : b?.type === 'image' ? '[image]' : ''))
    .filter(Boolean)
    .join('\n');
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** What one stream event tells: nothing for the events that say nothing of the agent's work. */
export function eventEntries(e: StreamEvent): RawEntry[] {
  if (e.type === 'system' && e.subtype === 'init') return [{ kind: 'start', model: typeof e.model === 'string' ? e.model : null }];
  if (e.type === 'result') {
    const denials = Array.isArray(e.permission_denials) ? e.permission_denials : [];
    return [
      ...denials.map((d): RawEntry => ({ kind: 'denial', tool: str(d?.tool_name, 'tool'), input: d?.tool_input })),
      {
        kind: 'end',
        subtype: str(e.subtype, 'done'),
        isError: e.is_error === true,
        turns: num(e.num_turns),
        costUsd: num(e.total_cost_usd),
        durationMs: num(e.duration_ms),
        errors: Array.isArray(e.errors) ? e.errors.slice(0, 5).map((x: unknown) => (typeof x === 'string' ? x : (maskedJson(x, (s) => s) ?? '?'))) : [],
      },
    ];
  }
  const content = Array.isArray(e.message?.content) ? e.message.content : [];
  const out: RawEntry[] = [];
  for (const b of content) {
    if (!b || typeof b !== 'object') continue;
    if (e.type === 'assistant' && b.type === 'text' && typeof b.text === 'string' && b.text.trim()) out.push({ kind: 'text', text: b.text });
    if (e.type === 'assistant' && b.type === 'tool_use') out.push({ kind: 'tool_call', id: typeof b.id === 'string' ? b.id : null, tool: str(b.name, 'tool'), input: b.input });
    if (e.type === 'user' && b.type === 'tool_result') out.push({ kind: 'tool_result', id: typeof b.tool_use_id === 'string' ? b.tool_use_id : null, isError: b.is_error === true, text: resultText(b.content) });
  }
  return out;
}

/** One event a line, or null for a line that is none (not JSON, or not an object). */
export function parseEvent(line: string): StreamEvent | null {
  // Not an object: no JSON.parse to throw (a few microseconds each, a million lines of output seconds).
  if (!/^\s*\{/.test(line)) return null;
  try {
    const e = JSON.parse(line) as unknown;
    return e && typeof e === 'object' && !Array.isArray(e) ? (e as StreamEvent) : null;
  } catch {
    return null;
  }
}

/** One line for the live tail (dashboard): null for what the tail leaves out (a result that is not an error). `mask`: toolArg's. */
export function entryLine(e: RawEntry, mask: Scrub): string | null {
  switch (e.kind) {
    case 'start':
      return 'session started';
    case 'text':
      return `says: ${e.text}`;
    case 'tool_call':
      return `${e.tool} ${toolArg(e.input, mask)}`;
    case 'tool_result':
      return e.isError ? `tool error: ${e.text || 'see the log'}` : null;
    case 'denial':
      return `denied: ${e.tool} ${toolArg(e.input, mask)}`;
    case 'end':
      return `finished: ${e.subtype} after ${e.turns ?? '?'} turns`;
  }
}

export const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, Math.max(0, n - 1))}…` : s);

/**
 * The part of a string that is scrubbed (SCRUB_WINDOW), ended at white space: a word the
 * edge cut could be the first half of a secret no rule knows any more, and runs of white
 * space made one (`flat`) could bring it into what is shown.
 */
function windowed(s: string): string {
  if (s.length <= SCRUB_WINDOW) return s;
  let end = SCRUB_WINDOW;
  while (end > 0 && !/\s/.test(s[end]!)) end--;
  return s.slice(0, end || SCRUB_WINDOW);
}

/** A string on one line: its runs of white space one space. */
export const flat = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** Scrubbed whole (up to SCRUB_WINDOW), then put on one line (`oneLine`), then cut. */
function shown(s: string, scrub: Scrub, n: number, oneLine = false): string {
  const clean = scrub(windowed(s));
  return clip(oneLine ? flat(clean) : clean, n);
}

/** The transcript of one session's log (`stage-<label>.jsonl`). Null when the file is not there. */
export function readSession(path: string, label: string, scrub: Scrub, limits: TranscriptLimits = DEFAULT_TRANSCRIPT_LIMITS): TranscriptSession | null {
  const head = readBounded(path, limits.maxBytes);
  if (!head) return null;
  const lines = head.text.split('\n');
  // A log read to its end may still end in a torn line (a session killed mid-write): it is
  // counted as unparseable. One cut here ends where the cut is: that line is not torn.
  if (head.truncated) lines.pop();
  const session: TranscriptSession = {
    label,
    file: basename(path),
    bytes: head.size,
    cut: head.truncated,
    readBytes: Math.min(head.size, limits.maxBytes),
    unparseable: 0,
    model: null,
    entries: [],
    entriesCut: 0,
    toolCalls: 0,
    end: null,
  };
  const raw: RawEntry[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    const e = parseEvent(line);
    if (!e) {
      session.unparseable++;
      continue;
    }
    // One at a time: an event may list more entries than a call takes arguments.
    for (const r of eventEntries(e)) raw.push(r);
  }
  if (head.truncated && !raw.some((r) => r.kind === 'end')) {
    // The session's end is what a reader looks for first: taken from the file's tail.
    const tail = readBounded(path, END_WINDOW, 'tail');
    const tailLines = tail?.text.split('\n') ?? [];
    if (tail?.truncated) tailLines.shift(); // begins inside a line
    const last = tailLines.reverse().map(parseEvent).find((e) => e?.type === 'result');
    if (last) for (const r of eventEntries(last)) raw.push(r);
  }
  const tools = new Map<string, string>();
  // A tool's name as shown, scrubbed once however many results name it.
  const names = new Map<string, string>();
  const name = (tool: string) => names.get(tool) ?? names.set(tool, shown(tool, scrub, limits.argChars, true)).get(tool)!;
  const flow: TranscriptEntry[] = [];
  const denials: TranscriptEntry[] = [];
  for (const r of raw) {
    if (r.kind === 'start') {
      session.model ??= r.model === null ? null : shown(r.model, scrub, limits.argChars);
    } else if (r.kind === 'end') {
      const { kind: _k, ...end } = r;
      session.end = { ...end, subtype: shown(end.subtype, scrub, limits.argChars), errors: end.errors.slice(0, 5).map((x) => shown(x, scrub, limits.lineChars, true)) };
    } else if (r.kind === 'denial') {
      if (denials.length >= limits.maxDenials) session.entriesCut++;
      else denials.push({ kind: 'denial', tool: name(r.tool), arg: shown(toolArg(r.input, scrub), scrub, limits.argChars, true) });
    } else {
      if (r.kind === 'tool_call') session.toolCalls++;
      if (r.kind === 'tool_call' && r.id) tools.set(r.id, r.tool);
      if (flow.length >= limits.maxEntries) {
        session.entriesCut++;
        continue;
      }
      if (r.kind === 'text') flow.push({ kind: 'text', text: shown(r.text.trim(), scrub, limits.textChars) });
      else if (r.kind === 'tool_call') flow.push({ kind: 'tool_call', tool: name(r.tool), arg: shown(toolArg(r.input, scrub), scrub, limits.argChars, true) });
      else flow.push(resultEntry(r, r.id && tools.has(r.id) ? name(tools.get(r.id)!) : null, scrub, limits));
    }
  }
  session.entries = [...flow, ...denials, ...(session.end ? [{ kind: 'end' as const, ...session.end }] : [])];
  return session;
}

function resultEntry(r: Extract<RawEntry, { kind: 'tool_result' }>, tool: string | null, scrub: Scrub, limits: TranscriptLimits): TranscriptEntry {
  // Scrubbed as one text before it is split: a private key spans lines.
  const window = windowed(r.text);
  const text = scrub(window).replace(/\r\n/g, '\n').trimEnd();
  const all = text ? text.split('\n') : [];
  const kept = all.slice(0, limits.resultLines);
  // Lines past the window are counted as they are (the window's last line goes on in them).
  const beyond = r.text.length > window.length ? r.text.slice(window.length).trimEnd().split('\n').length - 1 : 0;
  return { kind: 'tool_result', tool, isError: r.isError, lines: kept.map((l) => clip(l, limits.lineChars)), more: all.length - kept.length + beyond };
}

/** Sorts after every placed session. */
const UNPLACED = Number.MAX_SAFE_INTEGER;

/** Labels in the order the run's `status` file says their sessions started. */
function statusOrder(dir: string): Map<string, number> {
  const order = new Map<string, number>();
  const status = readBounded(join(dir, 'status'), STATUS_BYTES);
  for (const line of status?.text.split('\n') ?? []) {
    const [, label, state] = line.split('\t');
    if (label && state === 'start' && !order.has(label)) order.set(label, order.size);
  }
  return order;
}

/** The session logs in a run's folder, in the order they ran. */
export function sessionFiles(dir: string): Array<{ label: string; path: string }> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^stage-.+\.jsonl$/.test(n));
  } catch {
    return [];
  }
  const status = statusOrder(dir);
  const known: readonly string[] = SESSION_ORDER;
  const keyed = names.map((name) => {
    const label = name.slice('stage-'.length, -'.jsonl'.length);
    let mtime = 0;
    try {
      mtime = statSync(join(dir, name)).mtimeMs;
    } catch {
      // Gone since the listing: read as missing below.
    }
    const at = known.indexOf(label);
    return { label, path: join(dir, name), key: [status.get(label) ?? UNPLACED, at < 0 ? UNPLACED : at, mtime] };
  });
  keyed.sort((a, b) => a.key[0]! - b.key[0]! || a.key[1]! - b.key[1]! || a.key[2]! - b.key[2]! || a.label.localeCompare(b.label));
  return keyed.map(({ label, path }) => ({ label, path }));
}

/** Every session of the run whose folder is `dir`, in the order they ran. */
export function readTranscript(dir: string, scrub: Scrub, limits: TranscriptLimits = DEFAULT_TRANSCRIPT_LIMITS): RunTranscript {
  let folder = false;
  try {
    folder = statSync(dir).isDirectory();
  } catch {
    folder = false;
  }
  const sessions = sessionFiles(dir).flatMap(({ label, path }) => readSession(path, label, scrub, limits) ?? []);
  return { dir, folder, sessions };
}
