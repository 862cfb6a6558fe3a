/**
 * The ticket brief (`agent/ticket.md`) the agent reads: a per-kind template from
 * prompts/tickets/ with trusted fields filled in, and untrusted text (alert
 * annotations, emails, Slack threads, stack traces, and the one-line title, service,
 * route and filer taken from them) fenced as data in `<untrusted-data>` blocks that
 * its content cannot close.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ticket } from '../types.ts';

/** Which template a ticket uses. */
export function briefKind(t: Pick<Ticket, 'source' | 'kind'>): 'error' | 'latency' | 'slack' | 'email' | 'manual' {
  if (t.kind === 'latency') return 'latency';
  if (t.source === 'slack') return 'slack';
  if (t.source === 'email') return 'email';
  if (t.source === 'manual') return 'manual';
  return 'error';
}

/**
 * Fence untrusted text. Anything that looks like our fence tags inside it is
 * defused, so the content cannot end its own block and speak as the prompt.
 */
export function fence(source: string, text: string): string {
  return `<untrusted-data source="${source}">\n${defuse(text)}\n</untrusted-data>`;
}

/** What a reader may take for `<`, `/` and `>` around a tag name (after folding). */
const OPEN = String.raw`<|‹|«|〈|⟨|❬|❮|˂|ᐸ|&lt;?|&#0*60;?|&#x0*3c;?`;
const SLASH = String.raw`[/∕⁄⧸\\]`;
const CLOSE = String.raw`>|›|»|〉|⟩|❭|❯|˃|ᐳ|&gt;?|&#0*62;?|&#x0*3e;?`;
const FENCE_TAG = new RegExp(String.raw`(?:(${OPEN})\s*)?(?:(${SLASH})\s*)?untrusted[-_\s]?data(?:\s*(${CLOSE}))?`, 'g');

/** Characters a reader does not see: format controls (zero-width, bidi), combining marks, other default-ignorables. */
const INVISIBLE = /^[\p{Cf}\p{Mn}\p{Me}\p{Default_Ignorable_Code_Point}]$/u;
const DASH = /^[\p{Pd}\u2212]$/u;
/** Letters of other scripts (and small capitals) that look like those of `untrusted-data`. */
const LOOKALIKE: Record<string, string> = {
  'а': 'a', 'ɑ': 'a', 'α': 'a', 'ᴀ': 'a',
  'ԁ': 'd', 'ᴅ': 'd',
  'е': 'e', 'ε': 'e', 'ᴇ': 'e',
  'п': 'n', 'η': 'n', 'ո': 'n', 'ɴ': 'n',
  'г': 'r', 'ʀ': 'r',
  'ѕ': 's', 'ꜱ': 's',
  'т': 't', 'τ': 't', 'ᴛ': 't',
  'υ': 'u', 'ս': 'u', 'ᴜ': 'u',
};

/**
 * Defuse every fence tag in text, opening or closing, however it is spelled: a tag is
 * found in a folded copy of the text (invisible characters such as zero-width spaces,
 * bidi controls and combining marks removed; NFKC, so fullwidth `＜` and small `﹤` read
 * as `<`; lower case; any dash as `-`; look-alike letters of other scripts as Latin),
 * beginning at an opening bracket or ending at a closing one (`<`, `‹`, `〈`, `&lt;`, ...).
 * The original characters of each tag are replaced by a plain defused spelling,
 * `‹/untrusted-data›`, which no reader takes for the fence.
 */
export function defuse(text: string): string {
  const { folded, from, to } = fold(text);
  let out = '';
  let last = 0;
  for (const m of folded.matchAll(FENCE_TAG)) {
    const [all, open, slash, close] = m;
    if (!open && !close) continue; // the bare words, with no bracket: not a tag
    const start = from[m.index]!;
    const end = to[m.index + all.length - 1]!;
    out += `${text.slice(last, start)}‹${slash ? '/' : ''}untrusted-data${close ? '›' : ''}`;
    last = end;
  }
  return last === 0 ? text : out + text.slice(last);
}

/**
 * The text as a reader would compare it with the fence tag, and for each of its
 * characters the range [from, to) of the original text it came from.
 */
function fold(text: string): { folded: string; from: number[]; to: number[] } {
  let folded = '';
  const from: number[] = [];
  const to: number[] = [];
  let i = 0;
  for (const ch of text) {
    const next = i + ch.length;
    if (!INVISIBLE.test(ch)) {
      for (const c of ch.normalize('NFKC').toLowerCase()) {
        folded += LOOKALIKE[c] ?? (DASH.test(c) ? '-' : c);
        // Every code unit just added maps back to this code point of the original.
        for (let k = folded.length - from.length; k > 0; k--) {
          from.push(i);
          to.push(next);
        }
      }
    }
    i = next;
  }
  return { folded, from, to };
}

/**
 * A one-line value that came from outside (a title is an email subject, a Slack line,
 * an alert summary), fenced inline where the template shows it.
 */
function inlineFence(source: string, v: string | null | undefined): string {
  const text = line(v);
  return text === '-' ? text : `<untrusted-data source="${source}">${defuse(text)}</untrusted-data>`;
}

/** One-line trusted values: no newlines, no markdown table breakers. */
function line(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '-';
  return String(v).replace(/[\r\n]+/g, ' ').replace(/\|/g, '\\|').slice(0, 300);
}

export function renderBrief(promptsDir: string, t: Ticket, extra: { planPath?: string } = {}): string {
  const kind = briefKind(t);
  const template = readFileSync(join(promptsDir, 'tickets', `${kind}.md`), 'utf8');
  const labels = Object.entries(t.labels)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
  // The figures come from the alert's labels: shown as trusted text only when they are numbers.
  const figure = (v: string | undefined) => (v !== undefined && /^\d+(\.\d+)?$/.test(v.trim()) ? v.trim() : undefined);
  const latencyText = t.labels.p95_ms ? `${t.labels.p95_ms} ms / ${t.labels.threshold_ms ?? '?'} ms` : '';
  const latency = !latencyText
    ? '-'
    : figure(t.labels.p95_ms) && (t.labels.threshold_ms === undefined || figure(t.labels.threshold_ms))
      ? latencyText
      : inlineFence(t.source, latencyText);
  const trusted: Record<string, string> = {
    id: String(t.id),
    title: inlineFence(t.source, t.title),
    source: t.source,
    severity: t.severity,
    // A model classifier's reason can echo the report's own words: fenced like them.
    triage_reason: inlineFence(t.source, t.triageReason),
    service: inlineFence(t.source, t.service),
    route: inlineFence(t.source, t.route),
    count: String(t.count),
    first_seen: t.firstSeen,
    last_seen: t.lastSeen,
    fingerprint: t.fingerprint,
    latency,
    filed_by: t.labels.filed_by ? ` by ${inlineFence(t.source, t.labels.filed_by)}` : '',
  };
  const untrusted: Record<string, string> = {
    message: fence(t.source, t.message || '(empty)'),
    stack: t.stack ? fence(t.source, t.stack) : '(none)',
    labels: labels ? fence(t.source, labels) : '(none)',
  };
  // One pass, so text inside untrusted values is never itself treated as a placeholder.
  let out = template.replace(/\{\{(untrusted:)?(\w+)\}\}/g, (_m, u: string | undefined, k: string) =>
    u ? (untrusted[k] ?? '(none)') : (trusted[k] ?? ''),
  );
  if (extra.planPath) out += `\n\n---\nThe research phase writes its plan to: \`${extra.planPath}\`\n`;
  return out;
}
