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
  const start = lines.findIndex((l) => l.trim() === AUTO_LOAD_START);
  const end = lines.findIndex((l, i) => i > start && l.trim() === AUTO_LOAD_END);
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
    const docs = cells[1]!.split(',').map(docPath).filter(Boolean);
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
  const start = lines.findIndex((l) => l.trim() === AUTO_LOAD_START);
  const end = lines.findIndex((l, i) => i > start && l.trim() === AUTO_LOAD_END);
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

/** `docs/a.md`, [a](docs/a.md) or a bare path → the path. */
function docPath(cell: string): string {
  const s = cell.trim();
  const link = /^\[[^\]]*\]\(([^)\s]+)\)$/.exec(s);
  return (link ? link[1]! : s.replace(/^`+|`+$/g, '')).trim();
}
