// What a refused tool call leaves on record (denials.jsonl, the phase's stats,
// outcome.json and from there the outcomes archive people review): the layer that
// refused it, the tool, the reason, and a short summary of what it aimed at (for Bash
// the command, for file tools the path). Never the call's whole input: a Write's file
// contents or an Edit's text may hold anything, secrets included.
// Used by the hook (harness/hooks/guard.mjs), the stream watcher (run-phase.mjs) and
// outcome.mjs. Plain JavaScript, so the hook starts in milliseconds: lib/redact.ts
// (TypeScript) cannot load here, so the summary is only cut short; the control plane
// redacts it before it is archived (control/outcomes/archive.ts).

/** Longest summary kept, in characters. */
export const SUMMARY_MAX = 200;
/** Longest reason kept (the guard's reasons name a path or a URL). */
export const REASON_MAX = 300;

/** The input field that says what a call aimed at, by preference; never contents. */
const SUMMARY_FIELDS = ['command', 'file_path', 'notebook_path', 'url', 'sql', 'path', 'pattern', 'query'];

/**
 * At most `max` characters of s. A word cut at the limit is dropped whole rather than
 * kept in part: half a key or half a `user:pw@host` no longer looks like a secret to the
 * redactor, yet still is one.
 */
export function clip(s, max) {
  if (s.length <= max) return s;
  const head = s.slice(0, max);
  const cut = /\s/.test(s[max]) ? head : head.replace(/\S+$/, '');
  return `${cut}…`;
}

/** A short description of a call's input: its command, path, URL, query..., or null. */
export function summarizeInput(input) {
  if (!input || typeof input !== 'object') return null;
  for (const f of SUMMARY_FIELDS) {
    const v = input[f];
    if (typeof v === 'string' && v) return clip(v, SUMMARY_MAX);
  }
  return null;
}

/**
 * The record of one refusal: { by, tool, summary, reason? }. `d` is a refusal as met
 * (with the call's `input`) or an earlier record (with its `summary`); anything else in
 * it is left out.
 */
export function denialRecord(d) {
  const summary = typeof d.summary === 'string' ? clip(d.summary, SUMMARY_MAX) : summarizeInput(d.input);
  const row = { by: String(d.by ?? 'unknown'), tool: String(d.tool ?? ''), summary };
  if (d.reason !== undefined && d.reason !== null) row.reason = clip(String(d.reason), REASON_MAX);
  return row;
}
