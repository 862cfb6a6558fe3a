/**
 * pre-context.md: what the harness hands the first Claude session about the target's
 * docs. Best sections first, each with its file, heading path, line and why it matched,
 * all within a byte budget. It states plainly when the index is empty, nothing matched,
 * or vectors were unavailable, so a thin pre-context is never mistaken for "no docs".
 */
import type { SearchHit, SearchResult } from './search.ts';

/** Smallest excerpt worth cutting a section down to; below this the section is only listed. */
const MIN_EXCERPT_BYTES = 240;
/** Kept free for the closing line that lists sections left out. */
const TAIL_RESERVE_BYTES = 320;

/** Render pre-context.md for a search result; the output never exceeds `budgetBytes` (UTF-8). */
export function renderPreContext(result: SearchResult, budgetBytes: number): string {
  const head = header(result);
  if (bytes(head) >= budgetBytes) return truncateBytes(head, budgetBytes);
  let out = head;
  let shown = 0;
  for (const [i, hit] of result.hits.entries()) {
    const title = `## ${i + 1}. \`${inline(hit.path)}\` › ${sectionName(hit)}\n\nWhy: ${hit.why}\n\n`;
    const full = title + excerpt(hit.text) + '\n';
    const room = budgetBytes - bytes(out) - (i < result.hits.length - 1 ? TAIL_RESERVE_BYTES : 0);
    if (bytes(full) <= room) {
      out += full;
      shown++;
      continue;
    }
    // What the cut excerpt adds to its text: the note, and fences as long as the whole
    // text's would be (the cut part's are no longer), so its closing fence always fits.
    const note = '\n… (cut to fit the budget; the rest is in the file)';
    const frame = bytes(excerpt(hit.text)) - bytes(hit.text);
    const textRoom = room - bytes(title) - frame - bytes(note) - 1;
    if (textRoom >= MIN_EXCERPT_BYTES) {
      out += title + excerpt(`${truncateBytes(hit.text, textRoom)}${note}`) + '\n';
      shown++;
    }
    break;
  }
  const left = result.hits.slice(shown);
  if (left.length) {
    const list = left.map((h) => `\`${inline(h.path)}\` › ${sectionName(h)}`).join('; ');
    out += `_Left out to stay within ${budgetBytes} bytes: ${list}_\n`;
  }
  return truncateBytes(out, budgetBytes);
}

function header(r: SearchResult): string {
  const lines = ['# Docs relevant to this ticket', ''];
  // The query is the ticket's text, which comes from outside: it is not echoed here,
  // where it would stand outside the brief's <untrusted-data> fences.
  lines.push("Retrieved from the target repository's docs for this ticket's text.", '');
  for (const w of r.warnings) lines.push(`> **Warning:** ${w}`, '');
  lines.push(`Ranking: ${ranking(r)}.`, '');
  if (r.failed) {
    lines.push('Nothing was retrieved (see the warning above): work from the repository itself.', '');
  } else if (r.indexed.chunks === 0) {
    lines.push('The docs index is empty: no file matched the configured globs, or `bugbot docs index` has not run for this repository. Nothing was retrieved.', '');
  } else if (r.hits.length === 0) {
    lines.push(`No section of the ${r.indexed.files} indexed file(s) matched this ticket.`, '');
  } else {
    lines.push(`${r.hits.length} section(s) from ${r.indexed.files} indexed file(s), best first. Open the files for the full text.`, '');
  }
  return lines.join('\n') + '\n';
}

function ranking(r: SearchResult): string {
  switch (r.vectorState) {
    case 'ok':
      return 'full-text search (BM25) fused with semantic search (vectors)';
    case 'off':
      return 'full-text search (BM25) only; semantic search is off (no embeddings endpoint configured)';
    default:
      return 'full-text search (BM25) only; vectors were unavailable (see the warning above)';
  }
}

/**
 * A file name or heading on one line of its own: a name may hold a line break or a
 * backtick (a file called "x`\n# Operator rules\n.md" would otherwise start a heading of
 * its own in the prompt).
 */
function inline(s: string): string {
  return s.replace(/[\p{Cc}\u2028\u2029\u0085]+/gu, ' ').replace(/`/g, "'");
}

function sectionName(h: SearchHit): string {
  const path = h.headingPath.length ? h.headingPath.map(inline).join(' › ') : '(before the first heading)';
  return `${path} (line ${h.line}${h.part ? `, part ${h.part + 1}` : ''})`;
}

/** A fenced excerpt; the fence is longer than any backtick run inside, so the doc's own fences stay inside it. */
function excerpt(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}markdown\n${text}\n${fence}\n`;
}

function bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Cut to at most `max` UTF-8 bytes without splitting a character. */
export function truncateBytes(s: string, max: number): string {
  const buf = Buffer.from(s, 'utf8');
  if (buf.length <= max) return s;
  let end = max;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}
