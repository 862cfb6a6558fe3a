/**
 * Fingerprinting: events that are the same bug get the same fingerprint.
 *
 * fingerprint = sha256(service | kind | normalized message | top in-app frames | route template
 *                      [| alert rule name])
 *
 * - The message is normalized at token level (ids, numbers, uuids, hosts... masked).
 * - Stack frames keep file basename + function, never line numbers, so a deploy that
 *   shifts lines does not split a group.
 * - A user-supplied `fingerprint` label wins, as in Sentry's custom fingerprints.
 * - An alert whose message carries no error text (a figure: "12.5% of requests failed",
 *   "93.2%") is known by its rule's name too; one that reports an error (an exception
 *   message, a stack) is not, so rules that see the same error collapse into one ticket.
 * - Free-text reports are fingerprinted by the error text or URL they contain, else by
 *   their normalized subject; a Slack mention with neither, by its thread (its words,
 *   "can you fix this?", say nothing about the bug).
 */
import { createHash } from 'node:crypto';
import type { TriggerEvent } from '../types.ts';
import { normalizeMessage, templateRoute } from './normalize.ts';

export interface FingerprintParts {
  /** 'label' when a fingerprint label decided it. */
  method: 'label' | 'error' | 'alert-name' | 'report-error' | 'report-url' | 'report-subject' | 'report-thread';
  service: string;
  kind: string;
  message: string;
  frames: string[];
  route: string;
  /** The alert rule's name, for an alert whose message carries no error text. */
  rule?: string;
}

export interface Fingerprint {
  fingerprint: string;
  parts: FingerprintParts;
}

export interface FingerprintOptions {
  /** In-app frames to keep (default 5). */
  frames?: number;
}

const LABEL_KEYS = ['fingerprint', 'bugbot_fingerprint'];

export function fingerprintEvent(e: TriggerEvent, opts: FingerprintOptions = {}): Fingerprint {
  const maxFrames = opts.frames ?? 5;
  const service = (e.service ?? '').toLowerCase();
  const kind = e.kind;
  for (const k of LABEL_KEYS) {
    const v = e.labels[k];
    if (v && v.trim()) {
      const parts: FingerprintParts = { method: 'label', service, kind, message: v.trim(), frames: [], route: '' };
      return { fingerprint: digest(['label', service, v.trim()]), parts };
    }
  }

  const route = e.route ? templateRouteWithMethod(e.route) : '';
  let method: FingerprintParts['method'] = 'error';
  let message: string;
  let frames: string[] = [];

  if (kind === 'report') {
    const text = `${e.title}\n${e.message}`;
    const py = pythonTraceback(text);
    const err = py?.error ?? extractErrorText(text);
    const url = err ? undefined : extractUrlPath(text);
    if (err) {
      method = 'report-error';
      message = normalizeMessage(err);
    } else if (url) {
      method = 'report-url';
      message = templateRoute(url);
    } else if (e.source === 'slack' && e.labels.slack_channel && e.labels.slack_thread_ts) {
      // The thread is the report (read after the ack): two threads whose mentions both
      // say "can you fix this?" are two reports, and a later mention in the same thread
      // is the same one.
      method = 'report-thread';
      message = `slack thread ${e.labels.slack_team ? `${e.labels.slack_team}:` : ''}${e.labels.slack_channel}:${e.labels.slack_thread_ts}`;
    } else {
      method = 'report-subject';
      message = normalizeSubject(e.title || e.message);
    }
    frames = e.stack ? inAppFrames(e.stack, maxFrames) : py ? inAppFrames(py.trace, maxFrames) : [];
  } else if (isBareAlert(e)) {
    // An alert whose rule gave no message is known by its rule's name alone: an
    // identifier, kept whole ("Http5xxRate" and "DiskUsage90Percent" are two alerts,
    // not one with a number masked).
    method = 'alert-name';
    message = e.message.trim();
    frames = e.stack ? inAppFrames(e.stack, maxFrames) : [];
  } else {
    // A Python traceback in the message (an alert annotation, a log line's): its error is
    // its last line, not its "Traceback (most recent call last):" header.
    const py = pythonTraceback(e.message);
    message = normalizeMessage(py?.error ?? firstLine(e.message || e.title));
    frames = e.stack ? inAppFrames(e.stack, maxFrames) : py ? inAppFrames(py.trace, maxFrames) : [];
    // An alert that reports a figure, not an error: with the figure masked, every rule of
    // a service that words its figure alike ("3.1% of requests failed in the last 5m")
    // or gives the figure alone ("93.2%", "412s") would read the same, so the rule's name
    // tells them apart. An error's own text (or stack) identifies it, whichever rule saw it.
    const rule = e.labels.alertname?.trim();
    if (rule && isAlert(e) && !e.stack?.trim() && !py && !extractErrorText(e.message)) {
      const parts: FingerprintParts = { method, service, kind, message, frames, route, rule };
      return { fingerprint: digest([service, kind, message, frames.join('\n'), route, rule]), parts };
    }
  }

  const parts: FingerprintParts = { method, service, kind, message, frames, route };
  return { fingerprint: digest([service, kind, message, frames.join('\n'), route]), parts };
}

function isAlert(e: TriggerEvent): boolean {
  return e.source === 'grafana' || e.source === 'alertmanager';
}

/** An alert with no message annotation: its message is its alertname (alerts.ts). */
function isBareAlert(e: TriggerEvent): boolean {
  return isAlert(e) && !!e.message.trim() && e.message === e.labels.alertname;
}

function digest(parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16);
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i === -1 ? s : s.slice(0, i)).trim();
}

/** "POST /api/pets/12?x=1" → "POST /api/pets/:id" */
export function templateRouteWithMethod(route: string): string {
  const m = /^\s*([A-Z]+)\s+(\S+)/.exec(route);
  // trimEnd: "GET ?x" has no path left, and must read the same when templated again.
  if (m) return `${m[1]} ${templateRoute(m[2]!)}`.trimEnd();
  return templateRoute(route.trim());
}

interface Frame {
  file: string;
  fn: string;
}

const PY_FRAME = /^\s*File "([^"]+)", line \d+, in (\S+)/;
const JAVA_FRAME = /^\s*at ([\w$.<>]+)\.([\w$<>]+)\(([^:)]+)(?::\d+)?\)/;
const GO_FRAME = /^\s*([\w./-]+\.go):\d+/;
const RUBY_FRAME = /^\s*(?:from )?([^:\s]+\.rb):\d+:in [`'](.+)'/;

/** Parse stack frames from JS, Python, Java, Go and Ruby traces; library frames dropped. */
export function parseFrames(stack: string): Frame[] {
  const out: Frame[] = [];
  let python = false;
  const lines = stack.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    let m: RegExpExecArray | null;
    if ((m = JAVA_FRAME.exec(line))) {
      out.push({ file: m[3]!, fn: `${lastSegment(m[1]!, '.')}.${m[2]}` });
    } else if ((m = PY_FRAME.exec(line))) {
      python = true;
      out.push({ file: m[1]!, fn: m[2]! });
    } else if ((m = RUBY_FRAME.exec(line))) {
      out.push({ file: m[1]!, fn: m[2]! });
    } else if ((m = GO_FRAME.exec(line))) {
      // Go prints the function on the line before the file:line, its arguments last:
      // api.(*Server).CreatePet(0xc0, {0x1}) is api.(*Server).CreatePet.
      const fn = (lines[i - 1] ?? '').trim().replace(/\([^()]*\)$/, '');
      out.push({ file: m[1]!, fn: lastSegment(fn, '/') });
    } else {
      const js = jsFrame(line);
      if (js) out.push(js);
    }
  }
  // Innermost first, as the other runtimes print them: Python prints the call where the
  // error happened last ("most recent call last").
  return python ? out.reverse() : out;
}

/**
 * A V8 frame: "at fn (file:line:col)", "at async fn (file:line:col)" or "at file:line:col".
 * Read by hand rather than by one regular expression: a pattern with two lazy runs (the
 * function, then the file) retries every split of a line it cannot match, and a stack is
 * untrusted text (one crafted 100 KB line took seconds).
 */
function jsFrame(line: string): Frame | null {
  const at = /^\s*at /.exec(line);
  if (!at) return null;
  let rest = line.slice(at[0].length).trimEnd();
  let fn = '<anonymous>';
  const open = rest.indexOf(' (');
  if (open > 0 && open + 2 < rest.length) {
    fn = rest.slice(0, open).replace(/^async /, '');
    rest = rest.slice(open + 2);
  }
  if (rest.endsWith(')')) rest = rest.slice(0, -1);
  for (let i = 0; i < 2; i++) {
    const n = /:\d+$/.exec(rest);
    if (!n || n.index === 0) break;
    rest = rest.slice(0, n.index);
  }
  return rest ? { file: rest, fn } : null;
}

function lastSegment(s: string, sep: string): string {
  const i = s.lastIndexOf(sep);
  return i === -1 ? s : s.slice(i + 1);
}

const LIBRARY =
  /node_modules|node:internal|^internal\/|site-packages|dist-packages|\/usr\/lib\/|^java\.|^javax\.|^sun\.|^jdk\.|\/go\/pkg\/mod\/|\/usr\/local\/go\/src\/|\/gems\/|<frozen /;

function isLibraryFrame(f: Frame): boolean {
  return LIBRARY.test(f.file) || /^(java|javax|sun|jdk)\./.test(f.fn);
}

/** Top in-app frames as "basename:function" (no line numbers). */
export function inAppFrames(stack: string, max: number): string[] {
  if (max <= 0) return [];
  const frames = parseFrames(stack);
  const inApp = frames.filter((f) => !isLibraryFrame(f));
  const chosen = (inApp.length ? inApp : frames).slice(0, max);
  return chosen.map((f) => `${basename(f.file)}:${f.fn.replace(/^(Object|Module)\./, '')}`);
}

function basename(p: string): string {
  const clean = p.replace(/^file:\/\//, '').replace(/\?.*$/, '');
  return lastSegment(lastSegment(clean, '/'), '\\');
}

const ERROR_LINE =
  /\b([A-Z][A-Za-z]*(?:Error|Exception)|panic|FATAL|ERROR)\b[:\s]+[^\n]{3,}|\b(?:HTTP|status(?: code)?)\s*[45]\d\d\b[^\n]*/;

const PY_HEADER = 'Traceback (most recent call last):';
/** The exception line that ends a Python traceback: `KeyError: 'sku'`, `pkg.mod.Error`. */
const PY_EXCEPTION = /^[A-Za-z_][\w.]*(?::\s|:$|$)/;

/**
 * A Python traceback in free text: its frames (from the header on) and the exception
 * line that ends it (the first line after the header that is not indented and reads as
 * one), or undefined without a header or such a line. Line by line, no backtracking.
 */
export function pythonTraceback(text: string): { trace: string; error: string } | undefined {
  const at = text.indexOf(PY_HEADER);
  if (at === -1) return undefined;
  const lines = text.slice(at + PY_HEADER.length).split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (!line || /^\s/.test(line)) continue;
    if (!PY_EXCEPTION.test(line)) return undefined;
    return { trace: lines.slice(0, i).join('\n'), error: line.slice(0, 500) };
  }
  return undefined;
}

/** The first line of free text that looks like an error message, if any. */
export function extractErrorText(text: string): string | undefined {
  const m = ERROR_LINE.exec(text);
  return m ? m[0].trim().slice(0, 500) : undefined;
}

/** The path of the first URL or absolute path in free text (e.g. "/checkout/42"). */
export function extractUrlPath(text: string): string | undefined {
  const url = /\bhttps?:\/\/[^\s/]+(\/[^\s?#)>"']*)/.exec(text);
  if (url && url[1] && url[1] !== '/') return url[1];
  const path = /(?:^|\s)((?:\/[\w.-]+){2,})(?=[\s?#.,)]|$)/.exec(text);
  return path?.[1];
}

/** Subject lines: lowercase, drop reply prefixes and punctuation, then token-normalize. */
export function normalizeSubject(subject: string): string {
  const s = subject
    .replace(/^\s*((re|fwd?|aw|sv|tr)\s*:\s*)+/i, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s/_-]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return normalizeMessage(s);
}
