import { createHash, type Hash } from 'node:crypto';
import { basename } from 'node:path';
import type { TriggerEvent } from '../types.ts';

/** Per-file parser settings. */
export interface LogParserOptions {
  /** Service name for lines that do not carry one. */
  service?: string;
  /** Path of the log file; prefixes every sourceEventId, its basename becomes `labels.file`. */
  file: string;
  /** Clock for entries without a usable timestamp (tests). */
  now?: () => Date;
}

/** Turns log lines into error events; stateful because plain-text stack traces span lines. */
export interface LogParser {
  /**
   * Feeds one complete line (without its newline). `offset` is the byte offset of the
   * line's first byte in the file; it makes sourceEventId stable across restarts.
   * Without it the 1-based line number is used, which is stable only when the file is
   * always read from its beginning.
   */
  push(line: string, offset?: number, how?: { cut?: boolean }): TriggerEvent[];
  /** Emits the buffered multi-line entry, if any (end of input, idle file). */
  flush(): TriggerEvent[];
  /**
   * Offset of the first line of the buffered entry, if one is open. A reader must not
   * persist a resume offset past it, or a crash would lose the entry.
   */
  pendingOffset(): number | undefined;
  /**
   * The file's inode, part of every later sourceEventId: after a rotation the new file's
   * offsets start at 0 again, and a line repeated at an offset the old file had would
   * otherwise be taken for one already stored. `generation` counts truncations in place
   * (copytruncate) of that inode, for the same reason; ids of generation 0 carry none.
   */
  setInode(inode: number, generation?: number): void;
}

const MAX_STACK_LINES = 200;
const MAX_TEXT_BYTES = 32 * 1024;
const MAX_TITLE = 200;

// JSON levels that mean "error": pino/bunyan numbers >= 50, or one of these names
// (winston, structlog, GCP severity, syslog spellings).
const ERROR_LEVELS = new Set(['error', 'err', 'fatal', 'critical', 'crit', 'alert', 'emerg', 'emergency', 'panic']);
// `@l` is Serilog's compact JSON (absent there means Information).
const LEVEL_KEYS = ['level', 'severity', 'log.level', 'levelname', 'lvl', '@l'];

// What opens an error entry in plain text: a level word (upper case, Apache's and nginx's
// `[error]`, logrus's `level=error`, klog's `E1122 ...`), an exception, a Python
// traceback, a Go or Rust panic, a panic a Go net/http handler recovered, Ruby's uncaught
// exception ("/app/cart.rb:12:in 'total': undefined method ... (NoMethodError)"; before
// Ruby 3.4 "in `total'").
const START =
  /\b(?:ERROR|FATAL|CRITICAL)\b|\[(?:[\w-]+:)?(?:error|crit|alert|emerg)\]|\blevel=(?:error|fatal|panic)\b|^[EF]\d{4} \d{2}:\d{2}:\d{2}|Exception|Traceback|Error:|^panic: |^fatal error: |^thread '[^']*' panicked at |\bhttp: panic serving |^\S+\.rb:\d+:in [`'][^']*': .*\([A-Z]\w*(?:::\w+)*\)$/;
/** The level a line names for itself, error or worse: the first group that matched. */
const LEVEL_WORD = /\b(ERROR|FATAL|CRITICAL)\b|\[(?:[\w-]+:)?(error|crit|alert|emerg)\]|\blevel=(error|fatal|panic)\b|^([EF])\d{4} \d{2}:\d{2}:\d{2}/;
/**
 * A lower level the line gives itself: an exception named in an INFO or WARN record (a
 * retry after a timeout, a handled error) is not an error entry. It counts when it comes
 * before what would open one.
 */
// A whole token: "[DEBUG-pool-1] ERROR ..." names a thread, not a level. klog's I and W lines too.
const LOWER_LEVEL =
  /(?<![\w-])(?:INFO|WARN(?:ING)?|DEBUG|TRACE|NOTICE)(?![\w-])|\[(?:[\w-]+:)?(?:info|warn|warning|debug|notice)\]|\blevel=(?:info|warn|warning|debug|trace)\b|^[IW]\d{4} \d{2}:\d{2}:\d{2}/;
// Rust's panic (1.73 on) gives its message on the line after "thread '…' panicked at …:".
const RUST_PANIC = /^thread '[^']*' panicked at /;
const INDENTED = /^\s+\S/;
const CONT_PREFIX = /^(?:Caused by:|Suppressed:|\.\.\.)/;
const PY_TRACEBACK = /^Traceback \(most recent call last\):/;
// A Go program's crash on stderr: the panic, then its goroutines' stacks, whose function
// lines (main.chargeCard(0x0)) are not indented; only their file lines are. net/http
// recovers a handler's panic and logs it, with the same stack, through the log package,
// behind its date: "2024/05/01 10:00:00 http: panic serving 10.0.0.1:5678: ...".
const GO_PANIC = /^(?:panic: |fatal error: )|\bhttp: panic serving /;
// Where net/http's message starts: the title, without the log package's date in front.
const GO_HTTP_PANIC = /\bhttp: panic serving /;
const GO_STACK_LINE = /^(?:\[signal |goroutine \d+ \[|created by |exit status \d+$|[\w./*()-]+\(.*\)$)/;
const PY_CHAIN = /^(?:During handling of the above exception|The above exception was the direct cause)/;
// The `XxxError: message` line that closes a Python traceback (also bare `StopIteration`).
const PY_FINAL = /^[A-Za-z_][\w.]*(?::|$)/;
// An exception printed on the line after the log record that reported it.
const EXC_HEADER = /^(?:[\w$]+\.)*[\w$]*(?:Error|Exception|Throwable)\b|^Exception in thread /;
// An ECMA-48 control sequence (ESC [ parameters, intermediates, final byte): the colours of
// a log written for a terminal (Spring Boot's ansi.enabled=always, FORCE_COLOR, pm2). The
// `m` that ends one would glue it to the level word after it (no \b before ERROR). The
// three classes are disjoint and none holds ESC: linear.
// eslint-disable-next-line no-control-regex -- the escape character is what it matches
const ANSI_CSI = /\x1b\[[0-?]*[ -/]*[@-~]/g;
const TS_PREFIX = /^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\]?\s*/;
const LEVEL_PREFIX = /^\[?(?:ERROR|FATAL|CRITICAL)\]?:?\s*/;

type Obj = Record<string, unknown>;

interface Entry {
  offset: number;
  lines: string[];
  bytes: number;
  dropped: number;
  /** Blank lines seen but not yet kept: kept only if more of the trace follows. */
  blanks: number;
  hash: Hash;
  level: string;
  /** First line is a log record ("... ERROR ...") rather than the exception itself. */
  record: boolean;
  /** The exception line: the one after the record, or a Python traceback's last line. */
  summary?: string;
  inPyTrace: boolean;
  /** A Go panic: its goroutine stacks follow, function lines unindented. */
  goPanic: boolean;
  /** A Rust panic: its message is the next line. */
  rustPanic: boolean;
}

/** Creates a parser for one log file; JSON-lines and plain-text entries are detected per line. */
export function createLogParser(opts: LogParserOptions): LogParser {
  const now = opts.now ?? (() => new Date());
  const fileLabel = basename(opts.file);
  let lineNo = 0;
  let open: Entry | undefined;
  let inode: number | undefined;
  let generation = 0;

  const build = (e: {
    at: number;
    hash: string;
    level: string;
    message: string;
    stack?: string;
    service?: string;
    route?: string;
    time: string;
  }): TriggerEvent => {
    const message = clip(e.message.trim() || firstLine(e.stack ?? '') || 'Unknown error', MAX_TEXT_BYTES);
    const ev: TriggerEvent = {
      source: 'logfile',
      kind: 'error',
      // Never end on half of a surrogate pair (an emoji cut at the limit).
      title: firstLine(message).slice(0, MAX_TITLE).replace(/[\ud800-\udbff]$/, ''),
      message,
      labels: { file: fileLabel, level: e.level },
      count: 1,
      firstSeen: e.time,
      lastSeen: e.time,
      human: false,
      sourceEventId: inode === undefined ? `${opts.file}:${e.at}:${e.hash}` : `${opts.file}:${inode}${generation ? `.${generation}` : ''}:${e.at}:${e.hash}`,
    };
    if (e.stack) ev.stack = clip(e.stack, MAX_TEXT_BYTES);
    const service = e.service ?? opts.service;
    if (service) ev.service = service;
    if (e.route) ev.route = e.route;
    return ev;
  };

  const jsonEvent = (o: Obj, line: string, at: number): TriggerEvent | undefined => {
    const level = jsonLevel(o);
    if (!level) return undefined;
    return build({
      at,
      hash: sha1(line),
      level,
      ...jsonMessageAndStack(o),
      service: pick(o, ['service', 'service.name', 'name', 'app']),
      route: jsonRoute(o),
      // `ts` is zap's (epoch seconds or ISO), `@t` Serilog's.
      time: toIso(o.time ?? o.timestamp ?? o['@timestamp'] ?? o.ts ?? o['@t'], now),
    });
  };

  const emit = (e: Entry): TriggerEvent => {
    const [first = ''] = e.lines;
    const head = first.replace(TS_PREFIX, '').replace(LEVEL_PREFIX, '');
    const parts = e.record ? [head] : [];
    if (e.summary) parts.push(e.summary);
    else if (!e.record) parts.push(first);
    const stackLines = e.lines.slice(e.record ? 1 : 0);
    if (e.dropped > 0) stackLines.push(`... ${e.dropped} more lines truncated`);
    return build({
      at: e.offset,
      hash: e.hash.digest('hex'),
      level: e.level,
      message: parts.join('\n'),
      stack: e.lines.length > 1 ? stackLines.join('\n') : undefined,
      time: toIso(TS_PREFIX.exec(first)?.[1]?.replace(',', '.').replace(' ', 'T'), now),
    });
  };

  const keep = (e: Entry, line: string): void => {
    e.hash.update(`${line}\n`);
    const size = Buffer.byteLength(line) + 1;
    // The first line is always kept: title and message come from it.
    if (e.lines.length === 0 || (e.lines.length < MAX_STACK_LINES && e.bytes + size <= MAX_TEXT_BYTES)) {
      e.lines.push(line);
      e.bytes += size;
    } else e.dropped++;
  };

  const append = (e: Entry, line: string): void => {
    if (line.trim() === '') {
      e.blanks++;
      return;
    }
    for (; e.blanks > 0; e.blanks--) keep(e, '');
    if (PY_TRACEBACK.test(line)) e.inPyTrace = true;
    else if (e.inPyTrace && !INDENTED.test(line) && !PY_CHAIN.test(line)) {
      // Python prints the outermost exception last, so a chain ends on the one to report.
      e.summary = line;
      e.inPyTrace = false;
    } else if (e.record && e.lines.length === 1 && EXC_HEADER.test(line)) e.summary = line;
    else if (e.rustPanic && e.lines.length === 1) e.summary = line;
    keep(e, line);
  };

  const continues = (e: Entry, line: string): boolean => {
    // Blank lines are held (Python chains tracebacks with blank lines between them).
    if (line.trim() === '' || INDENTED.test(line) || CONT_PREFIX.test(line)) return true;
    if (PY_TRACEBACK.test(line) || PY_CHAIN.test(line)) return true;
    if (e.inPyTrace) return PY_FINAL.test(line);
    if (e.goPanic) return GO_STACK_LINE.test(line);
    if (e.rustPanic && e.lines.length === 1) return true;
    return e.lines.length === 1 && e.record && EXC_HEADER.test(line);
  };

  const begin = (line: string, at: number): Entry => {
    const m = LEVEL_WORD.exec(line);
    const word = m?.slice(1).find((g) => g !== undefined)?.toLowerCase();
    const level = word === 'e' ? 'error' : word === 'f' ? 'fatal' : word === 'crit' ? 'critical' : word;
    const e: Entry = {
      offset: at,
      lines: [],
      bytes: 0,
      dropped: 0,
      blanks: 0,
      hash: createHash('sha1'),
      level: level ?? 'error',
      record: level !== undefined,
      inPyTrace: PY_TRACEBACK.test(line),
      goPanic: GO_PANIC.test(line),
      rustPanic: RUST_PANIC.test(line),
    };
    const http = GO_HTTP_PANIC.exec(line);
    if (http && level === undefined) e.summary = line.slice(http.index);
    keep(e, line);
    return e;
  };

  return {
    setInode(n, g = 0) {
      inode = n;
      generation = g;
    },
    push(raw, offset, how) {
      lineNo++;
      const at = offset ?? lineNo;
      const line = withoutColour(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
      if (open && continues(open, line)) {
        append(open, line);
        return [];
      }
      const out = open ? [emit(open)] : [];
      open = undefined;
      // A JSON record cut short (a line past the reader's limit) no longer parses: what it
      // says of its level and message is read from its head.
      const json = parseJson(line) ?? (how?.cut ? headOfJson(line) : undefined);
      if (json) {
        const ev = jsonEvent(json, line, at);
        if (ev) out.push(ev);
      } else if (opensEntry(line)) open = begin(line, at);
      return out;
    },
    flush() {
      const out = open ? [emit(open)] : [];
      open = undefined;
      return out;
    },
    pendingOffset: () => open?.offset,
  };
}

/** Whether a plain-text line opens an error entry: something that does, not after a lower level the line gives itself. */
function opensEntry(line: string): boolean {
  const start = START.exec(line);
  if (!start) return false;
  const lower = LOWER_LEVEL.exec(line);
  return !lower || lower.index > start.index;
}

/**
 * A JSON record's message and stack. The message: `msg`, `message` (`event` is structlog's,
 * `@m`/`@mt` Serilog's), else the error's message or a bare string `err`/`error` as winston
 * writes it. The stack: `exception` is where structlog's format_exc_info puts the
 * traceback, `stacktrace` zap's, `stack_trace` logstash-logback's, `error.stack_trace`
 * ECS's, `exc_info` python-json-logger's, `@x` Serilog's. A bare string error beside a
 * message (zap: "msg":"upload failed","error":"open /tmp/q3.pdf: no such file") heads the
 * stack: shown with the ticket, while the message, which groups the occurrences, stays the
 * record's own words (the error's carry data: a file name, a product).
 */
function jsonMessageAndStack(o: Obj): { message: string; stack?: string } {
  const stack = pick(o, ['err.stack', 'error.stack', 'stack', 'exception', 'stacktrace', 'stack_trace', 'error.stack_trace', 'exc_info', 'exc_text', '@x']);
  const msg = pick(o, ['msg', 'message', 'event', '@m', '@mt']);
  if (!msg) return { message: pick(o, ['error.message', 'err.message', 'err', 'error']) ?? '', ...(stack ? { stack } : {}) };
  const err = pick(o, ['error', 'err']);
  const lead = err && !msg.includes(err) && !stack?.includes(err) ? err : undefined;
  const full = [lead, stack].filter(Boolean).join('\n');
  return { message: msg, ...(full ? { stack: full } : {}) };
}

/**
 * The level and message of a JSON record's head, its end cut off (a line past the reader's
 * limit), read without parsing the whole: the record's own keys only (depth 1), not a
 * nested object's (`"ctx":{"level":"error"}` under an info record), in its first 64 KiB.
 */
function headOfJson(line: string): Obj | undefined {
  const head = line.slice(0, 64 * 1024);
  const start = head.indexOf('{');
  if (start === -1 || head.slice(0, start).trim()) return undefined;
  const top: Obj = {};
  let depth = 0;
  for (let i = start; i < head.length; i++) {
    const c = head[i];
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === '"') {
      const key = jsonString(head, i);
      if (!key) break;
      i = key.end;
      if (depth !== 1) continue;
      const colon = /^\s*:\s*/.exec(head.slice(i + 1, i + 64));
      if (!colon) continue;
      const at = i + 1 + colon[0].length;
      if (head[at] === '"') {
        const value = jsonString(head, at);
        if (!value) break;
        top[key.text] = value.text;
        i = value.end;
      } else {
        const num = /^-?\d+(?:\.\d+)?/.exec(head.slice(at, at + 32));
        if (num) top[key.text] = Number(num[0]);
      }
    }
  }
  if (jsonLevel(top) === undefined) return undefined;
  const msg = pick(top, ['msg', 'message', '@m', '@mt']);
  return { level: top.level ?? top.severity ?? top.levelname ?? top.lvl ?? top['@l'], msg: `${msg ?? ''} [line cut: over ${Math.round(Buffer.byteLength(line) / 1024)} KiB]`.trim() };
}

/** The JSON string starting at `at` (a quote): its text and the index of its closing quote; null when it does not close. */
function jsonString(text: string, at: number): { text: string; end: number } | null {
  for (let i = at + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') {
      try {
        return { text: JSON.parse(text.slice(at, i + 1)) as string, end: i };
      } catch {
        return null;
      }
    }
  }
  return null;
}

function parseJson(line: string): Obj | undefined {
  const t = line.trimStart();
  if (!t.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    return isObj(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function jsonLevel(o: Obj): string | undefined {
  for (const key of LEVEL_KEYS) {
    const v = get(o, key);
    if (typeof v === 'number' && v >= 50) return v >= 60 ? 'fatal' : 'error';
    if (typeof v === 'string' && ERROR_LEVELS.has(v.toLowerCase())) return v.toLowerCase();
  }
  return undefined;
}

function jsonRoute(o: Obj): string | undefined {
  const req = isObj(o.req) ? o.req : isObj(o.request) ? o.request : o;
  const method = str(req.method) ?? str(o.method);
  const url = str(req.url) ?? pick(o, ['url', 'path', 'route']);
  if (!url) return undefined;
  // Query strings carry ids and tokens: noise for grouping and not for storing.
  const path = url.split('?')[0] ?? url;
  return method ? `${method.toUpperCase()} ${path}` : path;
}

/** Reads `a.b` as a literal dotted key (ECS flattening) or as a nested path. */
function get(o: Obj, path: string): unknown {
  if (path in o) return o[path];
  let cur: unknown = o;
  for (const k of path.split('.')) cur = isObj(cur) ? cur[k] : undefined;
  return cur;
}

function pick(o: Obj, paths: string[]): string | undefined {
  for (const p of paths) {
    const s = str(get(o, p));
    if (s) return s;
  }
  return undefined;
}

function toIso(v: unknown, now: () => Date): string {
  // An epoch number's unit by its size, for dates this century: seconds (structlog, Python
  // time.time()) below 1e11, milliseconds (pino) below 1e14, microseconds (zerolog's
  // UnixMicro) below 1e17, else nanoseconds (Go's UnixNano, zap).
  const ms = typeof v === 'number' ? (v < 1e11 ? v * 1000 : v < 1e14 ? v : v < 1e17 ? v / 1e3 : v / 1e6) : typeof v === 'string' ? Date.parse(v) : NaN;
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : now().toISOString();
}

const withoutColour = (line: string): string => (line.includes('\x1b') ? line.replace(ANSI_CSI, '') : line);
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);
const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');
const firstLine = (s: string): string => s.trim().split('\n', 1)[0] ?? '';
const clip = (s: string, max: number): string => {
  if (Buffer.byteLength(s) <= max) return s;
  const buf = Buffer.from(s);
  // Back up to the first byte of a UTF-8 sequence (continuation bytes are 10xxxxxx), so a
  // character is never cut into U+FFFD, which would also run past max.
  let end = max;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
};
