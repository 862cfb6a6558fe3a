/**
 * Markdown → chunks, one per section (ATX or setext heading), each carrying its heading
 * path. Code fences are respected (a `#` line inside a fence is code, not a heading);
 * an unclosed fence is treated as text, so one stray ``` in a broken file does not hide
 * every heading after it. Sections longer than the limit are split at blank lines, then
 * at lines, then mid-line; a file yields at most `maxChunks` chunks, cut from its longest
 * sections. Encoded data (inline images, base64 and hex blobs) is left out first.
 */

export interface Chunk {
  /** Headings from the top of the document down to this section. */
  headingPath: string[];
  /**
   * The heading path as the full-text index weighs it: without the file's H1 when it has
   * only one. That title is in every section's path, so at heading weight it ranked each
   * section of the file for words that tell none of them apart (CLAUDE.md's "Pet shop"
   * lifted its Layout section for any ticket about a pet). The file path and the H1's own
   * line in its section's text still carry it.
   */
  rankedPath: string[];
  /** The section's own heading; '' for text before the first heading. */
  heading: string;
  /** 1-based line of the chunk's first line in the file. */
  line: number;
  /** 0 for a whole section or its first piece; 1, 2, ... for the rest of a split section. */
  part: number;
  text: string;
}

export interface ChunkOptions {
  maxChunkChars: number;
  maxChunks: number;
}

export interface ChunkResult {
  chunks: Chunk[];
  /** What was odd about the file (unclosed fences, chunks left out), for the index report. */
  notes: string[];
}

interface Section {
  start: number;
  end: number;
  /** Lines the heading itself takes: 0 before the first heading, 1 for ATX, 2 for setext. */
  headingLines: number;
  heading: string;
  headingPath: string[];
  /** Level (1-6) of each heading in `headingPath`. */
  levels: number[];
}

// The rest of a heading or opener line is taken whole (`[^]*`) and trimmed in code: a lazy
// `.*?` before `[ \t]*$` tried every split of a run of spaces (a line of "#", 10,000 spaces
// and a U+2028, which `.` does not cross, took 200 s; the harness waits on phase 0).
const ATX = /^ {0,3}(#{1,6})(?:[ \t]([^]*))?$/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})([^]*)$/;
const FENCE_CLOSE = /^ {0,3}(`{3,}|~{3,})[ \t]*$/;
/** Lines that cannot be the text of a setext heading: lists, quotes, tables, indented code. */
const NOT_SETEXT_TEXT = /^(?: {4}|\t)|^\s*(?:[-*+>|]|\d+[.)])(?:\s|$)/;

/** Split markdown into heading-scoped chunks. */
export function chunkMarkdown(source: string, opts: ChunkOptions): ChunkResult {
  const lines = source.split(/\r\n?|\n/);
  const notes: string[] = [];
  shortenEncodedData(lines, notes);
  const first = frontMatterEnd(lines);
  const fenced = fenceMask(lines, first, notes);
  const all = findSections(lines, first, fenced);
  const singleTitle = all.filter((s) => s.levels.length === 1 && s.levels[0] === 1).length === 1;
  // A heading with nothing under it (a title right above its first subsection) would only
  // add a chunk that matches on words its subsections already carry in their heading path.
  const sections = all.filter((s) => lines.slice(s.start + s.headingLines, s.end).some((l) => l.trim() !== ''));
  const perSection = sections.map((s) => {
    const rankedPath = singleTitle && s.levels[0] === 1 ? s.headingPath.slice(1) : s.headingPath;
    return splitSection(lines, fenced, s, opts.maxChunkChars).map((piece) => ({ headingPath: s.headingPath, rankedPath, heading: s.heading, ...piece }));
  });
  return { chunks: capChunks(perSection, opts.maxChunks, notes), notes };
}

/** Encoded data (a data: URI, a base64 or hex blob) at least this long is left out of the index. */
const ENCODED_MIN_CHARS = 256;
const DATA_URI = /\bdata:([^,\s()"'<>]{0,100}),[^\s()"'<>]{256,}/gi;
const ENCODED_RUN = /[A-Za-z0-9+/_-]{256,}={0,2}/g;
/** One line of a wrapped base64 or hex blob (PEM and MIME wrap at 64 and 76 characters). */
const ENCODED_LINE = /^[ \t]*[A-Za-z0-9+/]{40,}={0,2}[ \t]*$/;

/**
 * Encoded data says nothing a search could find, yet an inline image of 1 MB made
 * hundreds of chunks, filled the file's chunk budget and pushed out every section after
 * it. Each run is replaced by a short marker within its line (a wrapped blob's other
 * lines are emptied), so line numbers stay true.
 */
function shortenEncodedData(lines: string[], notes: string[]): void {
  let runs = 0;
  let chars = 0;
  const marker = (n: number) => {
    runs++;
    chars += n;
    return `[${n} characters of encoded data left out]`;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.length >= ENCODED_MIN_CHARS) {
      lines[i] = line
        .replace(DATA_URI, (m: string, meta: string) => `data:${meta},${marker(m.length - meta.length - 6)}`)
        .replace(ENCODED_RUN, (m) => (looksEncoded(m) ? marker(m.length) : m));
      continue;
    }
    let j = i;
    let size = 0;
    while (j < lines.length && ENCODED_LINE.test(lines[j]!) && looksEncoded(lines[j]!)) size += lines[j++]!.trim().length;
    if (j - i > 1 && size >= ENCODED_MIN_CHARS) {
      lines[i] = marker(size);
      lines.fill('', i + 1, j);
      i = j - 1;
    }
  }
  if (runs) notes.push(`left out ${runs} run(s) of encoded data (data: URIs, base64, hex; ${chars} characters)`);
}

/** Digits mixed with letters, as in base64 and hex; a long row of dashes or a slug of words is text. */
function looksEncoded(s: string): boolean {
  const digits = s.replace(/\D/g, '').length;
  return digits >= s.length / 20 && /[A-Za-z]/.test(s);
}

/**
 * At most `max` chunks for the file, cut from its longest sections: every section keeps
 * its first pieces, as many as an even share of the budget allows, so one huge section
 * cannot push the sections after it out of the index. Only a file with more sections
 * than `max` loses whole sections (the last ones); the rest keep their first piece.
 */
function capChunks(perSection: Chunk[][], max: number, notes: string[]): Chunk[] {
  const total = perSection.reduce((n, s) => n + s.length, 0);
  if (total <= max) return perSection.flat();
  if (perSection.length >= max) {
    notes.push(`kept the first ${max} of ${total} chunks (the first piece of each of the first ${max} sections)`);
    return perSection.slice(0, max).map((s) => s[0]!);
  }
  // The largest per-section allowance that fits, then one more piece for as many of the
  // sections still cut short as the remainder allows.
  const kept = (limit: number) => perSection.reduce((n, s) => n + Math.min(s.length, limit), 0);
  let limit = 1;
  while (kept(limit + 1) <= max) limit++;
  let spare = max - kept(limit);
  const cut: string[] = [];
  const out = perSection.flatMap((s) => {
    let take = Math.min(s.length, limit);
    if (take < s.length && spare > 0) {
      take++;
      spare--;
    }
    if (take < s.length) cut.push(s[0]!.headingPath.join(' › ') || '(before the first heading)');
    return s.slice(0, take);
  });
  const named = cut.slice(0, 3).join('; ') + (cut.length > 3 ? `; and ${cut.length - 3} more` : '');
  notes.push(`kept ${max} of ${total} chunks: the longest sections were cut short (${named})`);
  return out;
}

/** YAML front matter (`---` ... `---` on the first line) is metadata, and its closing `---` must not read as a setext underline. */
function frontMatterEnd(lines: string[]): number {
  if (lines[0]?.trim() !== '---') return 0;
  for (let i = 1; i < Math.min(lines.length, 200); i++) {
    const l = lines[i]!.trim();
    if (l === '---' || l === '...') return i + 1;
  }
  return 0;
}

/**
 * Which lines belong to a fenced code block, delimiters included (auto-load.ts reads the
 * table's markers with it too). An opener with no matching closer after it is plain text.
 * Precomputing, per fence character, the longest closer at or after each line answers "is
 * this opener ever closed?" in O(1), so a file full of broken fences stays linear.
 */
export function fenceMask(lines: string[], first: number, notes: string[]): Uint8Array {
  const n = lines.length;
  const longestCloser = { '`': new Int32Array(n + 1), '~': new Int32Array(n + 1) };
  for (let i = n - 1; i >= first; i--) {
    longestCloser['`'][i] = longestCloser['`'][i + 1]!;
    longestCloser['~'][i] = longestCloser['~'][i + 1]!;
    const m = FENCE_CLOSE.exec(lines[i]!);
    if (m) {
      const ch = m[1]![0] as '`' | '~';
      longestCloser[ch][i] = Math.max(longestCloser[ch][i]!, m[1]!.length);
    }
  }
  const mask = new Uint8Array(n);
  for (let i = first; i < n; i++) {
    const m = FENCE_OPEN.exec(lines[i]!);
    if (!m) continue;
    const ch = m[1]![0] as '`' | '~';
    const len = m[1]!.length;
    if (ch === '`' && m[2]!.includes('`')) continue; // not an opener (CommonMark)
    if (longestCloser[ch][i + 1]! < len) {
      notes.push(`unclosed code fence at line ${i + 1} read as text`);
      continue;
    }
    let j = i + 1;
    for (; j < n; j++) {
      const c = FENCE_CLOSE.exec(lines[j]!);
      if (c && c[1]![0] === ch && c[1]!.length >= len) break;
    }
    mask.fill(1, i, j + 1);
    i = j;
  }
  return mask;
}

function findSections(lines: string[], first: number, fenced: Uint8Array): Section[] {
  const sections: Section[] = [];
  const stack: Array<{ level: number; text: string }> = [];
  let cur: Section = { start: first, end: lines.length, headingLines: 0, heading: '', headingPath: [], levels: [] };
  const isHeading = new Uint8Array(lines.length);
  const open = (start: number, headingLines: number, level: number, text: string) => {
    cur.end = start;
    sections.push(cur);
    while (stack.length && stack[stack.length - 1]!.level >= level) stack.pop();
    stack.push({ level, text });
    cur = { start, end: lines.length, headingLines, heading: text, headingPath: stack.map((h) => h.text), levels: stack.map((h) => h.level) };
  };
  for (let i = first; i < lines.length; i++) {
    if (fenced[i]) continue;
    const line = lines[i]!;
    const atx = ATX.exec(line);
    if (atx) {
      const text = atxText(atx[2] ?? '');
      isHeading[i] = 1;
      open(i, 1, atx[1]!.length, text || '(untitled)');
      continue;
    }
    const setext = SETEXT.exec(line);
    const p = i - 1;
    if (
      setext &&
      p >= cur.start &&
      !fenced[p] &&
      !isHeading[p] &&
      lines[p]!.trim() !== '' &&
      !NOT_SETEXT_TEXT.test(lines[p]!) &&
      (p === first || lines[p - 1]!.trim() === '' || isHeading[p - 1])
    ) {
      isHeading[p] = isHeading[i] = 1;
      open(p, 2, setext[1]![0] === '=' ? 1 : 2, lines[p]!.trim());
    }
  }
  sections.push(cur);
  return sections;
}

/** An ATX heading's text without its closing `#`s (`## Setup ##`; `C#` keeps its own), in one pass. */
function atxText(rest: string): string {
  const s = rest.trimEnd();
  let end = s.length;
  while (end > 0 && s[end - 1] === '#') end--;
  return (end === 0 || s[end - 1] === ' ' || s[end - 1] === '\t' ? s.slice(0, end) : s).trim();
}

/**
 * Cut a section into pieces of at most `max` characters. Blocks (paragraphs, whole fenced
 * blocks) are packed greedily; a block that alone is too long is cut at lines, and a line
 * that alone is too long is cut mid-line.
 */
function splitSection(lines: string[], fenced: Uint8Array, s: Section, max: number): Array<Omit<Chunk, 'heading' | 'headingPath' | 'rankedPath'>> {
  let end = s.end;
  while (end > s.start && lines[end - 1]!.trim() === '') end--;
  const whole = lines.slice(s.start, end).join('\n');
  if (whole.length <= max) return [{ line: s.start + 1, part: 0, text: whole }];

  // Units of text that should stay together, each with its first line.
  const units: Array<{ line: number; text: string }> = [];
  let blockStart = s.start;
  const flushBlock = (to: number) => {
    if (to <= blockStart) return;
    const text = lines.slice(blockStart, to).join('\n');
    if (text.length <= max) units.push({ line: blockStart, text });
    else for (let k = blockStart; k < to; k++) for (const piece of cut(lines[k]!, max)) units.push({ line: k, text: piece });
  };
  for (let i = s.start; i < end; i++) {
    if (!fenced[i] && lines[i]!.trim() === '') {
      flushBlock(i);
      blockStart = i + 1;
    }
  }
  flushBlock(end);

  const out: Array<Omit<Chunk, 'heading' | 'headingPath' | 'rankedPath'>> = [];
  let buf: { line: number; text: string } | null = null;
  for (const u of units) {
    if (buf && buf.text.length + 2 + u.text.length <= max) {
      buf.text += (lines[u.line - 1]?.trim() === '' ? '\n\n' : '\n') + u.text;
      continue;
    }
    if (buf) out.push({ line: buf.line + 1, part: out.length, text: buf.text });
    buf = { ...u };
  }
  if (buf) out.push({ line: buf.line + 1, part: out.length, text: buf.text });
  return out;
}

function cut(line: string, max: number): string[] {
  if (line.length <= max) return [line];
  const out: string[] = [];
  for (let i = 0; i < line.length; ) {
    let end = Math.min(i + max, line.length);
    // Never split a surrogate pair: half an emoji would be stored as U+FFFD.
    if (end < line.length && /[\uD800-\uDBFF]/.test(line[end - 1]!)) end--;
    out.push(line.slice(i, end));
    i = end;
  }
  return out;
}
