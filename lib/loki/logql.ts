/**
 * LogQL from structured matchers. Values are quoted as Go string literals (LogQL's
 * lexer unquotes double-quoted strings with Go's rules), so a quote, a backslash or a
 * newline in a value can never end the string and inject query syntax.
 */
import { setFlagsFromString } from 'node:v8';
import { LokiError, type LabelMatcher, type LogQuery, type MatchOp } from './types.ts';

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OPS: readonly MatchOp[] = ['=', '!=', '=~', '!~'];

/** A double-quoted LogQL string literal for any value (its escapes are also valid JSON). */
export function quote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

// Escape regular-expression metacharacters (RE2 and JavaScript share them).
function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/**
 * Throws a LokiError naming every bad matcher; Loki would reject them less clearly.
 * Regexes are left to Loki (RE2): the file backend checks what JavaScript can run.
 */
export function validateMatchers(matchers: LabelMatcher[]): void {
  const problems: string[] = [];
  for (const m of matchers) {
    if (!LABEL_NAME.test(m.name)) {
      problems.push(`label name ${JSON.stringify(m.name)} is not valid: use letters, digits and _ (not starting with a digit)`);
    }
    if (!OPS.includes(m.op)) problems.push(`operator ${JSON.stringify(m.op)} for ${m.name} is not one of = != =~ !~`);
  }
  if (problems.length) throw new LokiError(problems.join('; '));
}

/**
 * Loki refuses a selector unless one matcher excludes the empty value
 * (`{app=""}` or `{app=~".*"}` alone would select every stream).
 */
export function hasPositiveMatcher(matchers: LabelMatcher[]): boolean {
  return matchers.some((m) => {
    if (m.op === '=') return m.value !== '';
    if (m.op !== '=~') return false;
    const re = jsRegex(m.value, true);
    return re ? !re.test('') : true;
  });
}

export function selector(matchers: LabelMatcher[]): string {
  return `{${matchers.map((m) => `${m.name}${m.op}${quote(m.value)}`).join(', ')}}`;
}

/** The LogQL for a structured query; `defaultSelector` stands in when no matcher selects streams. */
export function buildLogQL(q: LogQuery, defaultSelector: string): string {
  validateMatchers(q.matchers);
  const streams = hasPositiveMatcher(q.matchers)
    ? selector(q.matchers)
    : q.matchers.length
      ? `${defaultSelector.slice(0, -1)}, ${selector(q.matchers).slice(1)}`
      : defaultSelector;
  return streams + pipeline(q);
}

/** The line filters and parser stage that follow the stream selector. */
export function pipeline(q: LogQuery): string {
  let s = '';
  for (const c of q.contains) s += ` |= ${quote(c)}`;
  if (q.anyOf?.length) s += ` |~ ${quote(`(?i)(?:${q.anyOf.map(escapeRegex).join('|')})`)}`;
  if (q.field) {
    if (!LABEL_NAME.test(q.field.label)) throw new LokiError(`user label ${JSON.stringify(q.field.label)} is not a valid label name`);
    s += ` | ${q.field.parser} | ${q.field.label}${q.field.value === undefined ? '!=""' : `=${quote(q.field.value)}`}`;
  }
  return s;
}

/**
 * A JavaScript RegExp for an RE2 pattern, anchored as Loki anchors label regexes.
 * A leading `(?i)` becomes the `i` flag; other RE2-only syntax gives undefined.
 */
export function jsRegex(pattern: string, anchored: boolean): RegExp | undefined {
  const ci = pattern.startsWith('(?i)');
  const body = ci ? pattern.slice(4) : pattern;
  // The agent writes these patterns, and they run over every line a query reads: compiled
  // for V8's linear-time engine, as Loki's RE2 runs them, so no pattern can backtrack for
  // ever (`(.*)*x`). What that engine cannot run (backreferences, lookaround) RE2 refuses too.
  enableLinearRegExps();
  try {
    return new RegExp(anchored ? `^(?:${body})$` : body, ci ? 'il' : 'l');
  } catch {
    return undefined;
  }
}

let linear = false;
/** V8's linear-time regexp engine (the `l` flag) is behind a flag; set once, before the first such pattern. */
function enableLinearRegExps(): void {
  if (linear) return;
  setFlagsFromString('--enable-experimental-regexp-engine');
  linear = true;
}

