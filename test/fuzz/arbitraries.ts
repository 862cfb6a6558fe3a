/**
 * Shared generators and checks for the property-based tests of the parsers: hostile
 * strings, wrong-typed values, and mutations of a valid fixture (drop a field, change
 * its type, make it huge, unicode, control characters, deep nesting, numbers as
 * strings) that remember where they changed it, so a 4xx can be checked for naming it.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';

/**
 * `npm test` replays the same cases every run (a fixed seed), so a red CI means a change
 * broke something. FUZZ_SEED=random explores new cases (fast-check prints the seed of a
 * failure); FUZZ_SEED=<n> replays one. Add what exploring finds as a regression case.
 */
const FUZZ_SEED = process.env.FUZZ_SEED ?? '20261121';
if (FUZZ_SEED !== 'random') fc.configureGlobal({ seed: Number(FUZZ_SEED) });

/** Where a mutation changed a JSON value: object keys and array indexes from the root. */
export type Path = Array<string | number>;

export interface Mutated {
  value: unknown;
  paths: Path[];
}

const CONTROL = [...Array(32).keys()].map((c) => String.fromCharCode(c)).concat(['\u007f', '\u0085', '\u2028', '\u2029', '\ufeff', '\u200b']);

/** Control characters, line separators, BOM and zero-width space. */
export const controlChars = fc.string({ unit: fc.constantFrom(...CONTROL), minLength: 1, maxLength: 8 });

/** Any code point, plus the odd lone surrogate (what JSON.parse of "\ud800" yields). */
export const unicodeText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('\ud800', 'a\udc00b', '💥'.repeat(3), 'e\u0301', '\u202eevil', 'Ａ＠ｂ．ｃｏ', 'İı'),
);

/** Text with a bit of everything a hostile sender puts in a field. */
export const hostileText = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: unicodeText },
  { weight: 2, arbitrary: controlChars },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\n', '__proto__', 'constructor', '{}', '[]', 'null', '0', '-1', '1e309', 'NaN', '${x}', '%s%n') },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('x', 'é', '💥', '<', 'a '), fc.integer({ min: 1_000, max: 40_000 })).map(([c, n]) => c.repeat(n)) },
  // Line breaks stay fewer: postal-mime spends ~25 µs a line, which is its cost, not a parser bug.
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('\n', '\r\n', '\n> '), fc.integer({ min: 50, max: 600 })).map(([c, n]) => c.repeat(n)) },
);

/** A value nested `depth` arrays or objects deep. */
export function nested(depth: number, leaf: unknown = 'x', asObject = false): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = asObject ? { a: v } : [v];
  return v;
}

/** A value of any JSON type (never undefined), including deep and huge ones. */
export const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hostileText },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, -1, 1e308, -0, Number.MAX_SAFE_INTEGER + 2)) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 10, max: 800 }), fc.boolean()).map(([d, o]) => nested(d, 'x', o)) },
);

/** Every path in a JSON value, root first (capped so huge and deep values stay cheap). */
export function pathsOf(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (out.length > 2_000 || at.length > 32) return out;
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...at, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) pathsOf(x, [...at, k], out);
  return out;
}

function get(v: unknown, path: Path): unknown {
  let cur = v;
  for (const k of path) cur = (cur as Record<string | number, unknown>)[k];
  return cur;
}

/** A copy of `v` with the value at `path` replaced (`drop`: removed). */
function setAt(v: unknown, path: Path, make: (old: unknown) => unknown, drop = false): unknown {
  if (path.length === 0) return make(v);
  const [k, ...rest] = path;
  if (Array.isArray(v)) {
    const copy = [...v];
    if (rest.length === 0 && drop) copy.splice(k as number, 1);
    else copy[k as number] = setAt(v[k as number], rest, make, drop);
    return copy;
  }
  const copy = { ...(v as Record<string, unknown>) };
  if (rest.length === 0 && drop) delete copy[k as string];
  else copy[k as string] = setAt(copy[k as string], rest, make, drop);
  return copy;
}

type Op =
  | { op: 'drop' }
  | { op: 'replace'; with: unknown }
  | { op: 'numberAsString' }
  | { op: 'append'; text: string }
  | { op: 'nest'; depth: number; asObject: boolean }
  | { op: 'addKey'; key: string; with: unknown };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.constant<Op>({ op: 'drop' }),
  junkValue.map<Op>((w) => ({ op: 'replace', with: w })),
  fc.constant<Op>({ op: 'numberAsString' }),
  hostileText.map<Op>((text) => ({ op: 'append', text })),
  fc.record({ depth: fc.integer({ min: 1, max: 800 }), asObject: fc.boolean() }).map<Op>((r) => ({ op: 'nest', ...r })),
  fc.record({ key: fc.oneof(fc.string({ maxLength: 12 }), unicodeText, fc.constantFrom('__proto__', 'constructor')), with: junkValue }).map<Op>((r) => ({ op: 'addKey', ...r })),
);

function applyOp(v: unknown, path: Path, op: Op): Mutated {
  const old = get(v, path);
  switch (op.op) {
    case 'drop':
      // Dropping the root leaves nothing to send: read it as "replace with null".
      return { value: path.length === 0 ? null : setAt(v, path, () => undefined, true), paths: [path] };
    case 'replace':
      return { value: setAt(v, path, () => op.with), paths: [path] };
    case 'numberAsString':
      return {
        value: setAt(v, path, (x) => (typeof x === 'number' ? String(x) : typeof x === 'string' && x.trim() !== '' && Number.isFinite(Number(x)) ? Number(x) : x)),
        paths: [path],
      };
    case 'append':
      return { value: setAt(v, path, (x) => (typeof x === 'string' ? x + op.text : op.text)), paths: [path] };
    case 'nest':
      return { value: setAt(v, path, (x) => nested(op.depth, x, op.asObject)), paths: [path] };
    case 'addKey': {
      if (old === null || typeof old !== 'object' || Array.isArray(old)) return { value: setAt(v, path, () => op.with), paths: [path] };
      // Object.defineProperty, so "__proto__" becomes an own key as JSON.parse makes it.
      const value = setAt(v, path, (x) => {
        const copy = { ...(x as object) };
        Object.defineProperty(copy, op.key, { value: op.with, enumerable: true, writable: true, configurable: true });
        return copy;
      });
      return { value, paths: [[...path, op.key]] };
    }
  }
}

/**
 * 1–3 random mutations of `base`, each remembering its path. Half of them hit the top two
 * levels, where the required fields are; the rest anywhere.
 */
export function mutated(base: unknown, maxMutations = 3): fc.Arbitrary<Mutated> {
  return fc.array(fc.tuple(fc.nat(), fc.boolean(), opArb), { minLength: 1, maxLength: maxMutations }).map((steps) => {
    let cur: Mutated = { value: base, paths: [] };
    for (const [n, shallow, op] of steps) {
      const all = pathsOf(cur.value);
      const paths = shallow ? all.filter((p) => p.length <= 2) : all;
      const next = applyOp(cur.value, paths[n % paths.length]!, op);
      cur = { value: next.value, paths: [...cur.paths, ...next.paths] };
    }
    return cur;
  });
}

/**
 * The words a 4xx may use to name what was wrong at `path`: its last key; at the root,
 * "body" or one of the fields the body must have (`required`).
 */
export function namesFor(path: Path, required: readonly string[] = []): string[] {
  const keys = path.filter((k): k is string => typeof k === 'string');
  return keys.length === 0 ? ['body', ...required] : [keys[keys.length - 1]!];
}

export interface ErrorBody {
  error: { code: string; message: string };
}

/**
 * The HTTP contract every parser route keeps on hostile input: no 5xx; a 2xx is JSON or
 * empty; a 4xx is JSON `{ error: { code, message } }` with a non-empty message.
 * Returns the status and the parsed body.
 */
export async function expectNo5xx(res: Response, what: string): Promise<{ status: number; body: unknown }> {
  const text = await res.text();
  assert.ok(res.status < 500, `${what}: ${res.status} ${text.slice(0, 500)}`);
  // An empty 2xx is an acknowledgement (Slack interactivity wants exactly that).
  if (res.status < 400 && text === '') return { status: res.status, body: undefined };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`${what}: ${res.status} reply is not JSON: ${text.slice(0, 200)}`);
  }
  if (res.status >= 400) {
    const err = (body as Partial<ErrorBody>).error;
    assert.ok(err && typeof err.code === 'string' && typeof err.message === 'string' && err.message.length > 0, `${what}: 4xx without an error message: ${text.slice(0, 300)}`);
  }
  return { status: res.status, body };
}

/**
 * A 4xx's message names one of the mutated fields (or the size limit, for a 413).
 * `required`: the body's required fields, which a mutation of the whole body may lose.
 */
export function assertNamesProblem(status: number, body: unknown, paths: Path[], what: string, required: readonly string[] = []): void {
  if (status < 400) return;
  const message = (body as ErrorBody).error.message;
  if (status === 413) {
    assert.match(message, /exceeds \d+ bytes/, what);
    return;
  }
  const words = paths.flatMap((p) => namesFor(p, required));
  assert.ok(
    words.some((w) => message.includes(w)),
    `${what}: ${status} "${message.slice(0, 400)}" names none of the mutated fields ${JSON.stringify(words.map((w) => w.slice(0, 40)))}`,
  );
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True when `out` has a half of a surrogate pair and no string in `input` had one (a cut emoji). */
export function cutSurrogate(out: string, input: unknown): boolean {
  return LONE_SURROGATE.test(out) && !LONE_SURROGATE.test(stringsOf(input));
}

/** Every string (keys too) in a value, joined by a space. */
function stringsOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(stringsOf).join(' ');
  if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, x]) => `${k} ${stringsOf(x)}`).join(' ');
  return '';
}

/** Run counts per property: enough to find shape bugs, small enough for ~25 s on 2 cores. */
export const RUNS = { http: 200, httpSlow: 120, pure: 500 } as const;
