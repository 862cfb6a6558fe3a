// Message normalizer for fingerprinting: masks the variable parts of a log or error
// message so every message printed by the same template maps to the same string.
//
// It is a pure per-message function (no clustering state) so a fingerprint never
// changes as more messages arrive. Work is one pass over whitespace-separated chunks
// with a few cheap checks each; a regex runs only when a cheap test says it could
// match, and none of them can backtrack catastrophically.
//
// Most masks are the generic `<*>`. Typed placeholders split real groups whenever
// one slot holds mixed kinds (an IP or a hostname, a decimal or a hex id): measured
// on Loghub-2k, a separate `<num>` costs about 7 points of grouping accuracy and a
// separate `<ip>` about 12. Only kinds that do not share slots keep a name:
// `<uuid>`, `<url>`, `<email>`.

const ANY = '<*>';
const NUM = /^[-+]?\d+(?:\.\d+)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const IPV6_OR_MAC = /^[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}$/i;
const LONG_HEX = /^(?:0x)?[0-9a-f]{8,}$/i;
const HOST = /^(?:[a-z0-9-]+\.)+([a-z]{2,})\.?(?::\d{1,5})?$/;
const EMAIL = /^[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+$/i;
// Longest DNS name plus a port; longer chunks skip the hostname and email regexes.
const MAX_HOST = 260;
const URL = /^[a-z][a-z0-9+.-]*:\/\/\S/i;

// Top-level domains that make a dotted lowercase word a hostname. Two-letter country
// codes are accepted too, except those that are also common file extensions.
const TLDS = new Set(['com', 'net', 'org', 'edu', 'gov', 'mil', 'int', 'info', 'biz', 'name', 'pro', 'aero',
  'asia', 'cat', 'coop', 'jobs', 'mobi', 'museum', 'tel', 'travel', 'io', 'ai', 'app', 'dev', 'cloud', 'online',
  'site', 'tech', 'xyz', 'local', 'localdomain', 'internal', 'lan', 'home', 'corp', 'arpa']);
const FILE_EXTS = new Set(['js', 'ts', 'py', 'go', 'rs', 'cc', 'cs', 'so', 'sh', 'db', 'gz', 'xz', 'md', 'pl',
  'rb', 'hs', 'ml', 'el', 'ps', 'vb', 'mm', 'kt', 'id', 'ok', 'pm', 'am']);
// Month, weekday and zone names are date parts only when next to another date part
// ("Fri Jun 17 07:07:00 2005"); alone they may be ordinary words ("may", "sun").
const CALENDAR = new Set(['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'sept', 'oct', 'nov',
  'dec', 'january', 'february', 'march', 'april', 'june', 'july', 'august', 'september', 'october', 'november',
  'december', 'mon', 'tue', 'tues', 'wed', 'thu', 'thur', 'thurs', 'fri', 'sat', 'sun', 'monday', 'tuesday',
  'wednesday', 'thursday', 'friday', 'saturday', 'sunday', 'am', 'pm', 'utc', 'gmt', 'z', 'est', 'edt', 'cst',
  'cdt', 'mst', 'mdt', 'pst', 'pdt', 'cet', 'cest', 'bst', 'ist', 'jst']);
// A unit after a number belongs to the value: "93.0 B" and "5.2 KB", "<1 sec" and
// "00:01" are the same slot.
const UNITS = new Set(['b', 'kb', 'mb', 'gb', 'tb', 'pb', 'kib', 'mib', 'gib', 'tib', 'k', 'm', 'g', 'bytes',
  'byte', 'ns', 'us', 'µs', 'ms', 's', 'sec', 'secs', 'second', 'seconds', 'min', 'mins', 'minute', 'minutes',
  'h', 'hr', 'hrs', 'hour', 'hours', 'day', 'days', '%', 'hz', 'khz', 'mhz', 'ghz', 'kbps', 'mbps', 'gbps']);
// The word after "user" or "host" in prose names one ("session opened for user bob"),
// unless it is a function word or noun that continues the sentence ("user not found").
const NAMING = new Set(['user', 'host']);
const NOT_A_NAME = new Set(['not', 'no', 'is', 'are', 'was', 'were', 'be', 'been', 'has', 'have', 'had', 'does',
  'did', 'do', 'can', 'cannot', 'could', 'will', 'would', 'should', 'must', 'may', 'might', 'already', 'and', 'or',
  'of', 'to', 'in', 'on', 'at', 'by', 'for', 'from', 'with', 'the', 'a', 'an', 'name', 'names', 'id', 'ids']);
// A value followed by nothing in brackets ("1.2.3.4 ()") is the same slot as without.
const EMPTY_BRACKETS = new Set(['()', '[]', '{}', '<>', '""', "''"]);

// Decoration peeled off a chunk before classifying its core.
const LEAD = '([{<\'"*#@`';
const TRAIL = ')]}>\'",;:.!?*#`';
const OPENER: Record<string, string> = { ')': '(', ']': '[', '}': '{', '>': '<' };

/**
 * One chunk after masking: a whitespace-separated word, or a part of one after an
 * inner comma (`glued`). `mask` is set when all of it is a variable.
 */
interface Chunk { text: string; mask: boolean; numeric: boolean; glued: boolean }

/** Index of the first ASCII digit, or the length when there is none. */
function firstDigit(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) return i;
  }
  return s.length;
}

const hasDigit = (s: string): boolean => firstDigit(s) < s.length;

function isHostname(w: string): boolean {
  if (w.length > MAX_HOST) return false;
  const m = HOST.exec(w);
  if (m === null) return false;
  const tld = m[1]!;
  if (TLDS.has(tld)) return true;
  // "script.pl" is a file, "wsi.edu.pl" a host.
  return tld.length === 2 && (!FILE_EXTS.has(tld) || w.indexOf('.') !== w.lastIndexOf('.'));
}

function isPath(w: string): boolean {
  const c = w[0];
  if ((c === '/' || c === '\\') && w.length > 1) return true;
  if (c === '.' || c === '~') return w.startsWith('./') || w.startsWith('../') || w.startsWith('~/');
  return w[1] === ':' && w[2] === '\\' && w.length > 3;
}

/** The placeholder for a value that is a variable as a whole, or null. */
function classify(w: string, digit: boolean): string | null {
  if (w.length === 0) return null;
  if (isPath(w)) return ANY;
  if (w.indexOf('://') > 0 && URL.test(w)) return '<url>';
  if (w.indexOf('@') > 0 && w.length <= MAX_HOST && EMAIL.test(w)) return '<email>';
  if (digit) {
    if (w.length === 36 && UUID.test(w)) return '<uuid>';
    if (NUM.test(w) || IPV6_OR_MAC.test(w) || isHostname(w)) return ANY;
    return null;
  }
  if (w.length >= 8 && LONG_HEX.test(w)) return ANY;
  if (w.indexOf('.') > 0 && isHostname(w)) return ANY;
  return null;
}

/**
 * Index of the separator in `key=value`, `key:value` or `label....value` whose key
 * has no digit, or -1. The last such separator wins so `a:b=1` keeps `a:b`. Linear:
 * `digitAt` (the core's first digit) answers "has the key a digit", and a dot run is
 * walked once.
 */
function findKey(core: string, digitAt: number): number {
  for (let i = core.length - 2; i > 0; i--) {
    const c = core.charCodeAt(i);
    let k = i;
    if (c === 46) {
      while (k > 0 && core.charCodeAt(k - 1) === 46) k--;
      if (i - k < 2) { i = k; continue; }
    } else if (c !== 61 && c !== 58) {
      continue;
    }
    if (k > 0 && k <= digitAt) return i;
    i = k;
  }
  return -1;
}

/**
 * A fully variable core takes its brackets and quotes with it, so "[1.2.3.4]", "#3#"
 * and "'x1'" all read as the bare value; only a closer opened in an earlier chunk
 * stays, so "(attempt 2/5)" keeps its balance.
 */
function masked(placeholder: string, chunk: string, coreEnd: number): string {
  const close = chunk[coreEnd];
  const open = close === undefined ? undefined : OPENER[close];
  return open !== undefined && open !== '<' && chunk.indexOf(open) < 0 ? placeholder + close : placeholder;
}

// A placeholder (from a message that was normalized before) is a variable already, so
// normalizing a normalized message leaves it as it is.
const PLACEHOLDER = /^<(?:\*|uuid|url|email)>[)\]}>'",;:.!?*#`]*$/;

function maskChunk(chunk: string, glued: boolean): Chunk {
  if (chunk[0] === '<' && chunk.length <= 16 && PLACEHOLDER.test(chunk)) return { text: chunk, mask: true, numeric: false, glued };
  let a = 0;
  let b = chunk.length;
  while (a < b && LEAD.includes(chunk[a]!)) a++;
  let lastOpen: Record<string, number> | null = null;
  while (b > a && TRAIL.includes(chunk[b - 1]!)) {
    const open = OPENER[chunk[b - 1]!];
    if (open !== undefined) {
      // Keep a closer whose opener is inside the core: "chdir(x)". Openers never sit
      // in the trail, so the chunk's last opener is the one that counts; cached so a
      // run of closers stays linear.
      lastOpen ??= {};
      if ((lastOpen[open] ??= chunk.lastIndexOf(open)) >= a) break;
    }
    b--;
  }
  const core = chunk.slice(a, b);
  const fd = firstDigit(core);
  const digit = fd < core.length;
  const whole = classify(core, digit);
  if (whole !== null) return { text: masked(whole, chunk, b), mask: true, numeric: digit, glued };
  const k = findKey(core, fd);
  if (k > 0) {
    // Keep the key, mask the value like a chunk of its own: "uid=0" -> "uid=<*>",
    // "rhost=a.example.com" -> "rhost=<*>", "(email)=(a@b.io)" -> "(email)=<email>".
    const v = maskChunk(core.slice(k + 1), false);
    return { text: chunk.slice(0, a + k + 1) + v.text + chunk.slice(b), mask: false, numeric: false, glued };
  }
  // Any other token with a digit is an id, counter, version or timestamp.
  if (digit) return { text: masked(ANY, chunk, b), mask: true, numeric: true, glued };
  return { text: chunk, mask: false, numeric: false, glued };
}

/** The chunk's word, lowercased, if it is short enough to be a calendar word or unit. */
function shortWord(c: Chunk): string {
  const t = c.text;
  if (c.mask || t.length > 10) return '';
  let a = 0;
  let b = t.length;
  while (a < b && LEAD.includes(t[a]!)) a++;
  while (b > a && TRAIL.includes(t[b - 1]!)) b--;
  return t.slice(a, b).toLowerCase();
}

const maskAt = (cs: Chunk[], i: number): boolean => i >= 0 && i < cs.length && cs[i]!.mask;

/**
 * Normalizes a log or error message for fingerprinting: numbers, ids, UUIDs, hex,
 * IPs, hostnames, ports, paths, URLs, emails, dates, times, durations and sizes, and
 * the values of `key=value` / `key:value` pairs become placeholders (`<*>`,
 * `<uuid>`, `<url>`, `<email>`); runs of adjacent placeholders collapse into one and
 * whitespace into single spaces. Deterministic and stateless: the same template
 * always yields the same string.
 */
export function normalizeMessage(text: string): string {
  const cs: Chunk[] = [];
  for (const word of text.split(/\s+/)) {
    if (word === '') continue;
    // Split "a=1,b=x" at inner commas so every pair keeps its own key.
    let from = 0;
    for (let comma = word.indexOf(','); comma >= 0 && comma < word.length - 1; comma = word.indexOf(',', from)) {
      cs.push(maskChunk(word.slice(from, comma), from > 0));
      from = comma + 1;
    }
    cs.push(maskChunk(word.slice(from), from > 0));
  }
  const n = cs.length;
  // Names before dates: a masked name makes its neighbour a date part ("host @ may"), as
  // it would when normalizing the output again.
  for (let i = 0; i + 1 < n; i++) {
    const c = cs[i]!;
    const next = cs[i + 1]!;
    if (c.text.length === 4 && !next.mask && NAMING.has(c.text.toLowerCase()) && !NOT_A_NAME.has(shortWord(next))) {
      cs[i + 1] = { text: ANY, mask: true, numeric: false, glued: next.glued };
    }
  }
  // Right-to-left then left-to-right so a run like "Fri Jun 17" is masked whole.
  for (let pass = 0; pass < 2; pass++) {
    for (let q = 0; q < n; q++) {
      const i = pass === 0 ? n - 1 - q : q;
      const c = cs[i]!;
      if (!c.mask && (maskAt(cs, i - 1) || maskAt(cs, i + 1)) && CALENDAR.has(shortWord(c))) {
        cs[i] = { text: ANY, mask: true, numeric: false, glued: c.glued };
      }
    }
  }
  let out = '';
  let prev: Chunk | null = null;
  for (const c of cs) {
    if (prev?.mask) {
      if (c.mask) continue;
      if (prev.numeric && UNITS.has(shortWord(c))) continue;
      if (EMPTY_BRACKETS.has(c.text)) continue;
    }
    out += prev === null ? c.text : (c.glued ? ',' : ' ') + c.text;
    prev = c;
  }
  return out;
}

const ROUTE_NUMERIC = /^[-+]?\d+(?:[.,_:-]\d+)*$/;
const ROUTE_HEX = /^(?:0x)?[0-9a-f]{8,}$/i;
// Opaque tokens: long runs of base64/base64url characters mixing letters and digits.
const ROUTE_OPAQUE = /^[A-Za-z0-9_-]{16,}={0,2}$/;

function isIdSegment(s: string): boolean {
  if (s === '') return false;
  if (ROUTE_NUMERIC.test(s) || UUID.test(s) || ROUTE_HEX.test(s)) return true;
  return ROUTE_OPAQUE.test(s) && hasDigit(s) && /[A-Za-z]/.test(s);
}

/**
 * Turns a concrete request path into its route template: `/api/pets/999` ->
 * `/api/pets/:id`. Numeric segments, UUIDs, long hex ids and opaque base64-like
 * tokens become `:id`; the query string, fragment and any scheme/host are dropped.
 */
export function templateRoute(path: string): string {
  let p = path.trim();
  // Only a leading scheme: "/proxy/http://x/y" is a path of its own, not a URL for "/y".
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(p);
  if (scheme) {
    const slash = p.indexOf('/', scheme[0].length);
    p = slash < 0 ? '/' : p.slice(slash);
  }
  const cut = p.search(/[?#]/);
  if (cut >= 0) p = p.slice(0, cut).trimEnd();
  return p.split('/').map((s) => (isIdSegment(s) ? ':id' : s)).join('/');
}
