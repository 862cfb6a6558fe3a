/**
 * The ticket brief (`agent/ticket.md`) the agent reads: a per-kind template from
 * prompts/tickets/ with trusted fields filled in, and untrusted text (alert
 * annotations, emails, Slack threads, stack traces, and the one-line title, service,
 * route and filer taken from them) fenced as data in `<untrusted-data>` blocks that
 * its content cannot close.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defuse, fence } from '../../harness/lib/fence.mjs';
import type { Ticket } from '../types.ts';

// One implementation, shared with the harness (the files it appends to prompts).
export { defuse, fence };

/** Which template a ticket uses. */
export function briefKind(t: Pick<Ticket, 'source' | 'kind'>): 'error' | 'latency' | 'slack' | 'email' | 'manual' {
  if (t.kind === 'latency') return 'latency';
  if (t.source === 'slack') return 'slack';
  if (t.source === 'email') return 'email';
  if (t.source === 'manual') return 'manual';
  return 'error';
}

/**
 * A one-line value that came from outside (a title is an email subject, a Slack line,
 * an alert summary), fenced inline where the template shows it.
 */
function inlineFence(source: string, v: string | null | undefined): string {
  const text = line(v);
  return text === '-' ? text : `<untrusted-data source="${source}">${defuse(text)}</untrusted-data>`;
}

/** Every kind of line break a reader may see: CR, LF, vertical tab, form feed, NEL, U+2028, U+2029. */
const LINE_BREAKS = /[\r\n\v\f\u0085\u2028\u2029]+/g;

/**
 * One-line values: no line breaks of any kind (U+2028, NEL, vertical tab included), no
 * markdown table breakers; cut before escaping, so no escape is cut in half.
 */
function line(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '-';
  return String(v)
    .replace(LINE_BREAKS, ' ')
    .slice(0, 300)
    .replace(/\|/g, '\\|');
}

/** Text as inline code, on one line, as it is: a fence of more backticks than any run inside it. */
function codeSpan(v: string): string {
  const text = v.replace(LINE_BREAKS, ' ');
  const fence = '`'.repeat(Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length)) + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/**
 * The most of one untrusted block (a message, a stack, the labels) the brief carries, in
 * characters: past it, the start and the end are kept and the cut is said. A block of
 * hundreds of kilobytes would fill every phase's context; the whole text stays on the
 * ticket (`bugbot ticket`, the dashboard).
 */
export const BLOCK_MAX_CHARS = 30_000;

function bounded(text: string): string {
  if (text.length <= BLOCK_MAX_CHARS) return text;
  const head = Math.floor(BLOCK_MAX_CHARS * 0.8);
  const tail = BLOCK_MAX_CHARS - head;
  return `${text.slice(0, head)}\n[… ${text.length - head - tail} characters cut: the whole text is on the ticket …]\n${text.slice(-tail)}`;
}

/** An error held in a ticket's cascade (intake.cascadeSeconds), as its brief shows it. */
export interface CascadeError {
  id: number;
  /** Where it came from (an alert, a log file): its fences say so. */
  source: string;
  title: string;
  message: string;
  route: string | null;
  count: number;
  first_seen: string;
}

/** Errors of a cascade the brief shows, and how much of each one's message. */
const CASCADE_SHOWN = 10;
const CASCADE_MESSAGE_CHARS = 2_000;

function cascadeSection(t: Ticket, held: CascadeError[]): string {
  if (!held.length) return '';
  const items = held.slice(0, CASCADE_SHOWN).map((m) => {
    const after = Math.max(0, Math.round((Date.parse(m.first_seen) - Date.parse(t.firstSeen)) / 1000));
    const text = m.message.length > CASCADE_MESSAGE_CHARS ? `${m.message.slice(0, CASCADE_MESSAGE_CHARS)}\n[… cut: the whole text is on ticket ${m.id} …]` : m.message;
    return `### Ticket ${m.id}: ${inlineFence(m.source, m.title)}\n\nBegan ${after} s after this ticket's error; ${m.count} occurrence${m.count === 1 ? '' : 's'}; route ${inlineFence(m.source, m.route)}.\n\n${fence(m.source, text || '(empty)')}`;
  });
  const more = held.length > CASCADE_SHOWN ? `\n\n(${held.length - CASCADE_SHOWN} more: \`bugbot ticket ${t.id}\` lists them.)` : '';
  return (
    `\n\n## Errors held in this ticket's cascade\n\n` +
    `These errors of the same service began just after this one, so bugbot holds them while this ticket is worked on: ` +
    `one cause often shows as several errors (a failing dependency, one bad change). Find the cause they share, if they share one; ` +
    `say in plan.md which of them your fix explains. Any that recurs once the fix is live becomes a ticket of its own.\n\n` +
    items.join('\n\n') +
    more
  );
}

export function renderBrief(promptsDir: string, t: Ticket, extra: { planPath?: string; testCommand?: string; cascade?: CascadeError[] } = {}): string {
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
    // A report's own service and route, else the model classifier's guesses (labels kept
    // out of the fingerprint: they vary from one call to the next), said to be guesses.
    service: t.service || !t.labels.model_service ? inlineFence(t.source, t.service) : `${inlineFence(t.source, t.labels.model_service)} (the triage model's guess)`,
    route: t.route || !t.labels.model_route ? inlineFence(t.source, t.route) : `${inlineFence(t.source, t.labels.model_route)} (the triage model's guess)`,
    count: String(t.count),
    first_seen: t.firstSeen,
    last_seen: t.lastSeen,
    fingerprint: t.fingerprint,
    latency,
    filed_by: t.labels.filed_by ? ` by ${inlineFence(t.source, t.labels.filed_by)}` : '',
  };
  const untrusted: Record<string, string> = {
    message: fence(t.source, bounded(t.message || '(empty)')),
    stack: t.stack ? fence(t.source, bounded(t.stack)) : '(none)',
    labels: labels ? fence(t.source, bounded(labels)) : '(none)',
  };
  // One pass, so text inside untrusted values is never itself treated as a placeholder.
  let out = template.replace(/\{\{(untrusted:)?(\w+)\}\}/g, (_m, u: string | undefined, k: string) =>
    u ? (untrusted[k] ?? '(none)') : (trusted[k] ?? ''),
  );
  out += cascadeSection(t, extra.cascade ?? []);
  if (extra.planPath || extra.testCommand) out += '\n\n---\n';
  if (extra.planPath) out += `The research phase writes its plan to: \`${extra.planPath}\`\n`;
  // The operator's setting (target.testCommand), the command the push is gated on.
  if (extra.testCommand) out += `The test command (run in the worktree): ${codeSpan(extra.testCommand)}\n`;
  return out;
}
