/**
 * Redaction of a whole TriggerEvent: every free-text field, the service, every label (its
 * name and its value); the email subject kept for the reply only when it has nothing to redact.
 */
import type { Redactor } from '../../lib/redact.ts';
import type { TriggerEvent } from '../types.ts';

export function redactEvent(r: Redactor, e: TriggerEvent): TriggerEvent {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.labels)) labels[r.text(k)] = r.text(v);
  const out: TriggerEvent = { ...e, title: r.text(e.title), message: r.text(e.message), labels };
  if (e.service !== undefined) out.service = r.text(e.service);
  if (e.stack !== undefined) out.stack = r.text(e.stack);
  if (e.route !== undefined) out.route = r.text(e.route);
  if (e.reporter?.subject !== undefined) {
    // The subject is kept only to thread the reply under the sender's message (mail clients
    // match subjects). One that redaction would change is not kept: a reply titled
    // "Re: Invoice [REDACTED:card]" threads nowhere and shows the sender their own words
    // mangled; the reply gets a neutral subject instead.
    const { subject, ...reporter } = e.reporter;
    out.reporter = r.text(subject) === subject ? e.reporter : reporter;
  }
  return out;
}
