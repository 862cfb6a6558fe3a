/**
 * Label matchers against what answers show. Loki matches stream selectors on the raw
 * label values, and answers show those values redacted: user ids and emails as salted
 * one-way hashes (`user_id="42"` shows as `<user:94568d5108ef>`), secrets masked. A
 * matcher Loki runs on a value the answer hides is an oracle whatever the answer shows:
 * `user_email=~"a.*"`, then `"al.*"`, ... spells an address out by whether lines come
 * back, and `user_id="42"` confirms a guessed id and ties it to its hash. So a matcher
 * reaches Loki only when its outcome is fixed by the values as shown:
 *
 * - `=` / `!=` against a value redaction leaves as it is (`level="error"`): a raw value
 *   that is hidden can never equal it, so Loki's answer is the one the shown values give;
 * - `=~` / `!~` listing such values (`level=~"error|warn"`): the same, several at once;
 *   or `.+` / `.*` (any value: hidden or not, it is as empty as it is shown).
 *
 * Any other regex, and `=` / `!=` against a hash an answer showed (`<email:...>`, which no
 * raw value equals), is matched here, on the values as shown, after a query that leaves it
 * out; `=` / `!=` against a value that redaction would hide (a raw email or user id) is
 * refused: no answer could ever show it, and matching it would test the hidden value.
 */
import { redactedValue } from './fields.ts';
import { jsRegex } from './logql.ts';
import { LokiError, type LabelMatcher } from './types.ts';

/** A hash as redaction writes it (`<user:0123456789ab>`, `<email:...>`, `<@user:...>`). */
const SHOWN_HASH = /<@?(?:user|email):[0-9a-f]{12}>/;
/** A hash given alone, with or without its brackets (tickets say `user:0123456789ab`). */
const BARE_HASH = /^<?(@?(?:user|email):[0-9a-f]{12})>?$/;

// A regex that only lists plain values: letters, digits, `_ -/:,` and spaces, `\.` for a dot.
const PLAIN_LIST = /^(?:[A-Za-z0-9_ ,:/-]|\\\.)+(?:\|(?:[A-Za-z0-9_ ,:/-]|\\\.)+)*$/;

export interface MatcherPlan {
  /** Safe for Loki to match on the raw values. */
  loki: LabelMatcher[];
  /** Matched here, on the values as shown (value: a bare hash with its brackets). */
  shown: LabelMatcher[];
}

/** A value redaction shows unchanged under `name`, and not a hash (which no raw value equals). */
function shownAsIs(name: string, value: string, redact: (s: string) => string): boolean {
  return !SHOWN_HASH.test(value) && !BARE_HASH.test(value) && redactedValue(name, value, redact) === value;
}

/** The plain values a regex lists (`error|warn`), or undefined when it is any other pattern. */
function plainValues(pattern: string): string[] | undefined {
  return PLAIN_LIST.test(pattern) ? pattern.split('|').map((v) => v.replace(/\\\./g, '.')) : undefined;
}

/** Whether Loki may match `m` on the raw values: its outcome is fixed by the values as shown. */
export function lokiMayMatch(m: LabelMatcher, redact: (s: string) => string): boolean {
  // Any value, any non-empty one: redaction never empties a value nor fills an empty one.
  // (`.` stops at a newline, and a masked private key loses its newlines: one bit about a
  // masked multi-line label, no more, whatever is asked next.)
  if ((m.op === '=~' || m.op === '!~') && (m.value === '.*' || m.value === '.+')) return true;
  const values = m.op === '=' || m.op === '!=' ? [m.value] : plainValues(m.value);
  return values !== undefined && values.every((v) => shownAsIs(m.name, v, redact));
}

/**
 * Splits matchers into those Loki may match and those matched here on the shown values;
 * throws a LokiError for `=` / `!=` against a value answers never show (a raw email or id).
 */
export function planMatchers(matchers: LabelMatcher[], redact: (s: string) => string): MatcherPlan {
  const plan: MatcherPlan = { loki: [], shown: [] };
  const hidden: string[] = [];
  for (const m of matchers) {
    if (lokiMayMatch(m, redact)) {
      plan.loki.push(m);
    } else if (m.op === '=~' || m.op === '!~') {
      plan.shown.push(m);
    } else {
      const bare = BARE_HASH.exec(m.value)?.[1];
      const value = bare ? `<${bare}>` : m.value;
      if (SHOWN_HASH.test(value) && redactedValue(m.name, value, redact) === value) plan.shown.push({ ...m, value });
      else hidden.push(`${m.name}${m.op}`);
    }
  }
  if (hidden.length) {
    throw new LokiError(
      `${hidden.join(', ')}: answers never show ${hidden.length > 1 ? 'these values' : 'this value'} as given (a user id or an email is shown as a one-way hash, a secret masked), ` +
        'and Loki would match it against the raw value, which would confirm a guess. Match a label with the value an answer or the ticket ' +
        'showed, a hash included (e.g. {"user_email": "<email:0123456789ab>"}, matched here on the values as shown), or find one user\'s lines ' +
        'with loki_user_breadcrumbs and the hash (user:0123456789ab)',
    );
  }
  return plan;
}

/**
 * A test of a stream's raw labels against `shown` matchers, on their values as redaction
 * shows them (as the file backend matches fields); throws a LokiError for a regex that
 * cannot run here.
 */
export function shownLabelTest(shown: LabelMatcher[], redact: (s: string) => string): (labels: Record<string, string>) => boolean {
  const tests = shown.map((m) => {
    const value = (labels: Record<string, string>) => redactedValue(m.name, labels[m.name] ?? '', redact);
    if (m.op === '=') return (l: Record<string, string>) => value(l) === m.value;
    if (m.op === '!=') return (l: Record<string, string>) => value(l) !== m.value;
    const re = jsRegex(m.value, true);
    if (!re) {
      throw new LokiError(
        `regex ${JSON.stringify(m.value)} for ${m.name} is matched here, on the label values as answers show them, and needs RE2-style syntax that runs in linear time (no backreferences or lookaround)`,
      );
    }
    return m.op === '=~' ? (l: Record<string, string>) => re.test(value(l)) : (l: Record<string, string>) => !re.test(value(l));
  });
  return (labels) => tests.every((t) => t(labels));
}

/**
 * Throws a LokiError naming every label of `names` whose values redaction always masks
 * (`password`, `api_key`, `session_id`): Loki would match them on the raw values, testing
 * what every answer hides (`password=~"h.*"`, then `"hu.*"`, ...). `raw`: they came in raw
 * LogQL, which the message says too.
 */
export function refuseSecretLabels(names: string[], redact: (s: string) => string, raw = false): void {
  const secret = [...new Set(names)].filter((name) => redactedValue(name, 'probe0value', redact) === '[REDACTED]');
  if (!secret.length) return;
  const many = secret.length > 1;
  throw new LokiError(
    `${secret.join(', ')} ${many ? 'hold' : 'holds'} secrets: ${many ? 'their values are' : 'its value is'} masked in every answer, and Loki would match ${many ? 'them' : 'it'} unredacted, so ${many ? 'they' : 'it'} cannot be matched${raw ? ', in raw LogQL either' : ''}. Select streams with other labels`,
  );
}
