/**
 * Loki matches stream selectors on the raw label values, before this server redacts its
 * answer. The Loki client refuses a matcher-form query that matches a label whose every
 * value is masked (`password`, `api_key`, `session_id`), and matches here, on the values
 * as shown, what Loki may not match (lib/loki/shown.ts); raw LogQL carries its matchers
 * inside its selectors, so they are read out of it here and held to the same rules, with
 * nothing matched afterwards (its counts are Loki's): otherwise
 * `count_over_time({app="api", password=~"h.*"}[1h])`, then `"hu.*"`, ... spells a masked
 * value out by whether a count comes back, and `user_email=~"a.*"` a hashed one.
 */
import { LokiError, type LabelMatcher } from '../../lib/loki/index.ts';
import { lokiMayMatch } from '../../lib/loki/shown.ts';

export { refuseSecretLabels } from '../../lib/loki/shown.ts';

// A label matcher of a stream selector, strings read as LogQL's lexer reads them (Go
// syntax), as lib/loki/raw-logql.ts reads them when it checks the query.
const MATCHER = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\\n]|\\.)*"|`[^`]*`)\s*,?/y;

/**
 * The label matchers of the stream selectors of raw LogQL that passed `checkRawLogQL`:
 * outside a selector it holds no string (and no pipeline), so every `{` there opens a
 * selector, and inside one each string is taken whole. A value Go would not unquote
 * (Loki refuses the query then) is undefined.
 */
export function selectorMatchers(logql: string): Array<Omit<LabelMatcher, 'value'> & { value: string | undefined }> {
  const matchers: Array<Omit<LabelMatcher, 'value'> & { value: string | undefined }> = [];
  let i = 0;
  while (i < logql.length) {
    if (logql[i] !== '{') {
      i++;
      continue;
    }
    i++;
    for (;;) {
      MATCHER.lastIndex = i;
      const m = MATCHER.exec(logql);
      if (!m) break;
      matchers.push({ name: m[1]!, op: m[2] as LabelMatcher['op'], value: goUnquote(m[3]!) });
      i = MATCHER.lastIndex;
    }
  }
  return matchers;
}

const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34 };

/**
 * A Go string literal's value, as LogQL's lexer reads it (strconv.Unquote): `\x41`, `\101`,
 * `\u0041` and `\U00000041` are all `A`, and `\xc3\xa9` is `é` (bytes, then UTF-8).
 * Anything Go refuses gives undefined. Read exactly as Loki reads it: a value seen here as
 * harmless must not be a raw email to Loki.
 */
export function goUnquote(literal: string): string | undefined {
  if (literal.startsWith('`')) return literal.length >= 2 && literal.endsWith('`') ? literal.slice(1, -1).replace(/\r/g, '') : undefined;
  if (literal.length < 2 || !literal.startsWith('"') || !literal.endsWith('"')) return undefined;
  const body = literal.slice(1, -1);
  const bytes: number[] = [];
  const utf8 = (s: string) => bytes.push(...Buffer.from(s, 'utf8'));
  for (let i = 0; i < body.length; ) {
    const cp = body.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    if (ch === '"' || ch === '\n') return undefined;
    if (ch !== '\\') {
      utf8(ch);
      i += ch.length;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return undefined;
    if (e in SIMPLE_ESCAPES) {
      bytes.push(SIMPLE_ESCAPES[e]!);
      i += 2;
    } else if (e === 'x') {
      const hex = body.slice(i + 2, i + 4);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 4;
    } else if (e >= '0' && e <= '7') {
      const oct = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) return undefined;
      bytes.push(parseInt(oct, 8));
      i += 4;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      const hex = body.slice(i + 2, i + 2 + n);
      if (!new RegExp(`^[0-9A-Fa-f]{${n}}$`).test(hex)) return undefined;
      const code = parseInt(hex, 16);
      if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return undefined;
      utf8(String.fromCodePoint(code));
      i += 2 + n;
    } else {
      return undefined;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Throws a LokiError naming every matcher of raw LogQL whose outcome the values as shown do
 * not fix (lokiMayMatch): a regex other than a list of plain values, `=` against a raw id,
 * an email or a hash. Raw LogQL's counts are Loki's, so nothing can be matched afterwards.
 */
export function refuseHiddenMatchers(matchers: ReturnType<typeof selectorMatchers>, redact: (s: string) => string): void {
  const refused = matchers.filter((m) => m.value === undefined || !lokiMayMatch({ ...m, value: m.value }, redact)).map((m) => `${m.name}${m.op}`);
  if (!refused.length) return;
  throw new LokiError(
    `raw LogQL's selectors go to Loki as written, and Loki matches them on the raw label values, before redaction: ${[...new Set(refused)].join(', ')} ` +
      `could test a value answers show hashed or masked (a user id, an email, a secret), one guess at a time. In raw LogQL a label may be matched ` +
      'with = or != against a value answers show as it is, or with =~ or !~ listing such values (error|warn) or .+ / .*. For other patterns, ' +
      'and for a hash an answer showed ({"user_email": "<email:0123456789ab>"}), use loki_query\'s labels instead: what Loki may not match is matched ' +
      'there on the values as shown; one user\'s lines: loki_user_breadcrumbs with the hash',
  );
}
