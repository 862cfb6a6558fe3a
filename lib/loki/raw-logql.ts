/**
 * What raw LogQL may say. Loki runs every pipeline stage on the raw line, before this
 * client redacts the answer, so a stage can rewrite a secret past the redaction rules
 * (`| line_format "{{ __line__ | replace \"pass\" \"p4ss\" }}"`, `b64enc`, `trunc`,
 * `label_format`, a `regexp` parser's labels) or test it without showing it (`|= "hunt"`,
 * `| json | password=~"h.*"`: the number of lines let through is the answer). So raw LogQL
 * is held to what never looks inside a line: stream selectors, and counts of their lines
 * aggregated by stream labels. Lines are filtered with `contains`, matched after redaction.
 * An allowlist, not a denylist: anything not understood here is refused.
 */

/** Range aggregations that count lines without reading them (bytes_* would measure secrets). */
const RANGE_FUNCTIONS = ['count_over_time', 'rate'];
const AGGREGATIONS = ['sum', 'avg', 'min', 'max', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'sort', 'sort_desc'];
const FUNCTIONS = new Set([...RANGE_FUNCTIONS, ...AGGREGATIONS]);

/** How a refusal describes what raw LogQL may hold. */
export const RAW_LOGQL_ALLOWED =
  'Allowed: stream selectors {label="value", ...} (=, !=, =~, !~), alone or inside ' +
  `${RANGE_FUNCTIONS.join('/')}(...[5m]), aggregated with ${AGGREGATIONS.join('/')} by or without (stream labels), ` +
  'numbers and + - * / % ^ == > < >= <=.';

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /\d+(?:\.\d+)?/y;
const RANGE = /\[\s*(?:\d+(?:ms|[smhdwy]))+\s*\]/y;
const OPERATOR = /==|>=|<=|[-+*/%^<>]/y;
const LINE_FILTER = /\|[=~>]|![=~>]/y;
// A label matcher of a stream selector; strings as LogQL's lexer reads them (Go syntax).
const MATCHER = /\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*(?:"(?:[^"\\\n]|\\.)*"|`[^`]*`)\s*/y;
const STRING = /"(?:[^"\\\n]|\\.)*"|`[^`]*`/y;

function at(re: RegExp, s: string, i: number): string | undefined {
  re.lastIndex = i;
  return re.exec(s)?.[0];
}

const RANGE_UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

/** How far back a range vector such as `[1h30m]` looks, in milliseconds. */
export function rangeMs(range: string): number {
  let ms = 0;
  for (const m of range.matchAll(/(\d+)(ms|[smhdwy])/g)) ms += Number(m[1]) * RANGE_UNIT_MS[m[2]!]!;
  return ms;
}

/** The index just past a `{...}` selector of label matchers starting at `i`, or -1. */
function selectorEnd(s: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const m = at(MATCHER, s, j);
    if (m === undefined) return -1;
    j += m.length;
    if (s[j] === '}') return j + 1;
    if (s[j] !== ',') return -1;
    j++;
  }
}

/**
 * The constructs of `logql` that raw LogQL may not use, each named once, in order
 * (`| line_format`, the line filter `|=`, `label_replace`, ...); empty when allowed.
 */
export function refusedConstructs(logql: string): { stages: string[]; filters: string[]; other: string[]; ranges: string[] } {
  const stages = new Set<string>();
  const filters = new Set<string>();
  const other = new Set<string>();
  /** Range vectors (`[5m]`): how far back each looks is bounded by the caller. */
  const ranges: string[] = [];
  let inPipeline = false;
  let groupNext = false;
  let inGroup = false;
  let i = 0;
  while (i < logql.length) {
    const ch = logql[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const filter = at(LINE_FILTER, logql, i);
    if (ch === '#') {
      // A comment to Loki: what follows is never run, and never worth reading here.
      other.add('`#`');
      break;
    } else if (filter) {
      filters.add(filter);
      inPipeline = true;
      i += 2;
    } else if (ch === '|') {
      i++;
      while (/\s/.test(logql[i] ?? '')) i++;
      const stage = at(IDENT, logql, i) ?? '';
      stages.add(`| ${stage}`.trim());
      inPipeline = true;
      i += stage.length;
    } else if (ch === '{') {
      const end = selectorEnd(logql, i);
      if (end < 0) {
        other.add('a stream selector that is not label matchers such as {app="api", level=~"error|warn"}');
        break;
      }
      i = end;
    } else if (ch === '"' || ch === '`') {
      const str = at(STRING, logql, i);
      // A string after a pipeline stage is that stage's argument, already refused.
      if (!inPipeline) other.add('a quoted string outside a stream selector');
      if (str === undefined) break;
      i += str.length;
    } else if (at(IDENT, logql, i) !== undefined) {
      const word = at(IDENT, logql, i)!;
      if (word === 'by' || word === 'without') groupNext = true;
      else if (!inGroup && !inPipeline && !FUNCTIONS.has(word)) other.add(`\`${word}\``);
      i += word.length;
    } else if (ch === '(') {
      inGroup = groupNext;
      groupNext = false;
      i++;
    } else if (ch === ')') {
      inGroup = false;
      i++;
    } else {
      const range = ch === '[' ? at(RANGE, logql, i) : undefined;
      if (range !== undefined) ranges.push(range);
      const token = ch === ',' ? ch : (range ?? at(NUMBER, logql, i) ?? at(OPERATOR, logql, i));
      if (token === undefined) {
        // After a refused stage its arguments (label filters, templates) are not worth naming too.
        if (!inPipeline) other.add(`\`${ch}\``);
        i++;
      } else {
        i += token.length;
      }
    }
  }
  return { stages: [...stages], filters: [...filters], other: [...other], ranges };
}
