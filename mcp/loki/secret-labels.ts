/**
 * Loki matches stream selectors on the raw label values, before this server redacts its
 * answer. The Loki client refuses a matcher-form query that matches a label whose every
 * value is masked (`password`, `api_key`, `session_id`); raw LogQL carries its matchers
 * inside its selectors, so they are read out of it here and held to the same rule:
 * otherwise `count_over_time({app="api", password=~"h.*"}[1h])`, then `"hu.*"`, ... spells
 * a masked value out by whether a count comes back.
 */
import { redactedValue } from '../../lib/loki/fields.ts';
import { LokiError } from '../../lib/loki/index.ts';

// A label matcher of a stream selector, strings read as LogQL's lexer reads them (Go
// syntax), as lib/loki/raw-logql.ts reads them when it checks the query.
const MATCHER = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*(?:"(?:[^"\\\n]|\\.)*"|`[^`]*`)\s*,?/y;

/**
 * The label names matched in the stream selectors of raw LogQL that passed
 * `checkRawLogQL`: outside a selector it holds no string (and no pipeline), so every `{`
 * there opens a selector, and inside one each string is taken whole.
 */
export function selectorLabels(logql: string): string[] {
  const names: string[] = [];
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
      names.push(m[1]!);
      i = MATCHER.lastIndex;
    }
  }
  return names;
}

/** Throws a LokiError naming every label of `names` whose values redaction always masks. */
export function refuseSecretLabels(names: string[], redact: (s: string) => string): void {
  const secret = [...new Set(names)].filter((name) => redactedValue(name, 'probe0value', redact) === '[REDACTED]');
  if (!secret.length) return;
  const many = secret.length > 1;
  throw new LokiError(
    `${secret.join(', ')} ${many ? 'hold' : 'holds'} secrets: ${many ? 'their values are' : 'its value is'} masked in every answer, and Loki would match ${many ? 'them' : 'it'} unredacted, so ${many ? 'they' : 'it'} cannot be matched, in raw LogQL either. Select streams with other labels`,
  );
}
