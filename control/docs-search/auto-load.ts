/**
 * The auto-load table at the top of a target repository's CLAUDE.md: which docs a
 * session should read for which topic. Format (docs/docs-search.md):
 *
 *   <!-- bugbot:auto-load:start -->
 *   | topic | docs |
 *   |---|---|
 *   | payments, refunds | `docs/payments.md`, `docs/stripe.md` |
 *   <!-- bugbot:auto-load:end -->
 *
 * The markers let bugbot rewrite the table without touching anything else in the file.
 */

import { fenceMask } from './chunk.ts';

export const AUTO_LOAD_START = '<!-- bugbot:auto-load:start -->';
export const AUTO_LOAD_END = '<!-- bugbot:auto-load:end -->';

export interface AutoLoadRow {
  topic: string;
  /** Repository-relative paths. */
  docs: string[];
}

export interface AutoLoadTable {
  /** Both markers are present. */
  found: boolean;
  rows: AutoLoadRow[];
  /** What could not be read, with line numbers of the file. */
  problems: string[];
}

/** Read the auto-load table out of CLAUDE.md text. Never throws; odd lines become problems. */
export function parseAutoLoad(text: string): AutoLoadTable {
  const lines = text.split(/\r\n?|\n/);
  const { start, end } = findMarkers(lines);
  if (start === -1) return { found: false, rows: [], problems: [] };
  if (end === -1) return { found: false, rows: [], problems: [`line ${start + 1}: ${AUTO_LOAD_START} has no ${AUTO_LOAD_END} after it`] };
  const rows: AutoLoadRow[] = [];
  const problems: string[] = [];
  let sawHeader = false;
  for (let i = start + 1; i < end; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    const at = `line ${i + 1}`;
    if (!line.startsWith('|')) {
      problems.push(`${at}: not a table row`);
      continue;
    }
    const cells = splitRow(line);
    if (!sawHeader) {
      sawHeader = true;
      if (cells.length !== 2 || cells[0]!.toLowerCase() !== 'topic' || cells[1]!.toLowerCase() !== 'docs') {
        problems.push(`${at}: the header must be | topic | docs |`);
      }
      continue;
    }
    if (cells.every((c) => /^:?-{3,}:?$/.test(c))) continue;
    if (cells.length !== 2) {
      problems.push(`${at}: expected 2 cells (topic, docs), found ${cells.length}`);
      continue;
    }
    const docs = splitDocs(cells[1]!).map(docPath).filter(Boolean);
    if (!cells[0] || !docs.length) {
      problems.push(`${at}: a row needs a topic and at least one doc`);
      continue;
    }
    rows.push({ topic: cells[0]!, docs });
  }
  if (!sawHeader) problems.push(`line ${start + 1}: the auto-load block holds no table`);
  return { found: true, rows, problems };
}

/** The whole block, markers included. */
export function renderAutoLoad(rows: AutoLoadRow[]): string {
  const body = rows.map((r) => `| ${r.topic.replaceAll('|', '\\|')} | ${r.docs.map((d) => `\`${d}\``).join(', ')} |`);
  return [AUTO_LOAD_START, '| topic | docs |', '|---|---|', ...body, AUTO_LOAD_END].join('\n');
}

/**
 * CLAUDE.md text with its auto-load table replaced by `rows`; without a table, the block
 * goes right after the document's `# title` (or first), and every other byte is kept.
 */
export function updateAutoLoad(original: string, rows: AutoLoadRow[]): string {
  // A byte-order mark stays first, and a CRLF file stays CRLF.
  const bom = original.startsWith('\uFEFF') ? '\uFEFF' : '';
  const crlf = /\r\n/.test(original);
  const text = (bom ? original.slice(1) : original).replace(/\r\n/g, '\n');
  const out = updateLf(text, renderAutoLoad(rows));
  return bom + (crlf ? out.replace(/\n/g, '\r\n') : out);
}

function updateLf(text: string, block: string): string {
  const lines = text.split('\n');
  const { start, end } = findMarkers(lines);
  if (start !== -1 && end !== -1) return [...lines.slice(0, start), block, ...lines.slice(end + 1)].join('\n');
  if (/^# /.test(lines[0] ?? '')) {
    const rest = lines.slice(1);
    while (rest.length && rest[0]!.trim() === '') rest.shift();
    return [lines[0], '', block, '', ...rest].join('\n');
  }
  return text.trim() ? `${block}\n\n${text}` : `${block}\n`;
}

/** Docs the table names that `exists` says are gone: the table is no longer true. */
export function missingAutoLoadDocs(rows: AutoLoadRow[], exists: (path: string) => boolean): Array<{ topic: string; doc: string }> {
  return rows.flatMap((r) => r.docs.filter((d) => !exists(d)).map((doc) => ({ topic: r.topic, doc })));
}

/** Cells of a `| a | b |` row; `\|` is a literal bar. */
function splitRow(line: string): string[] {
  const inner = line.replace(/^\|/, '').replace(/(?<!\\)\|$/, '');
  return inner.split(/(?<!\\)\|/).map((c) => c.trim().replaceAll('\\|', '|'));
}

/**
 * The lines of the start marker and of the first end marker after it (-1 when missing).
 * Marker lines inside a code fence are an example (a CLAUDE.md showing the format), not
 * the table: reading them took the example's rows, and an update rewrote the example.
 */
function findMarkers(lines: string[]): { start: number; end: number } {
  // As when indexing: an unclosed fence is text. Each opener is settled in one pass (looking
  // for each one's closer line by line took 4 s over 20,000 unclosed ones, growing with the square).
  const fenced = fenceMask(lines, 0, []);
  const start = lines.findIndex((l, i) => !fenced[i] && l.trim() === AUTO_LOAD_START);
  const end = start === -1 ? -1 : lines.findIndex((l, i) => i > start && !fenced[i] && l.trim() === AUTO_LOAD_END);
  return { start, end };
}

/** The docs cell's entries: commas inside a link's text or target, or a code span, do not separate (`[Payments, refunds](docs/payments.md)`). */
function splitDocs(cell: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let code = false;
  let from = 0;
  for (let i = 0; i < cell.length; i++) {
    const c = cell[i]!;
    if (c === '`') code = !code;
    else if (code) continue;
    else if (c === '[' || c === '(') depth++;
    else if ((c === ']' || c === ')') && depth > 0) depth--;
    else if (c === ',' && depth === 0) {
      out.push(cell.slice(from, i));
      from = i + 1;
    }
  }
  out.push(cell.slice(from));
  return out;
}

/**
 * `docs/a.md`, [a](docs/a.md), [a](<docs/a.md> "title") or a bare path → the path, without
 * a `#section` anchor or a leading `./`: the table names files, and the path is checked
 * against the repository as it is.
 */
function docPath(cell: string): string {
  const s = cell.trim();
  const link = /^\[(?:[^\]\\]|\\.)*\]\(\s*(<[^<>\n]*>|[^\s()]+)(?:\s+(?:"[^"]*"|'[^']*'|\([^()]*\)))?\s*\)$/.exec(s);
  const target = link ? link[1]!.replace(/^<|>$/g, '') : s.replace(/^`+|`+$/g, '');
  return target.replace(/#.*$/, '').replace(/^(?:\.\/)+/, '').trim();
}
