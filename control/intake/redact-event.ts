/** Redaction of a whole TriggerEvent: every free-text field and every label value. */
import type { Redactor } from '../../lib/redact.ts';
import type { TriggerEvent } from '../types.ts';

export function redactEvent(r: Redactor, e: TriggerEvent): TriggerEvent {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.labels)) labels[k] = r.text(v);
  const out: TriggerEvent = { ...e, title: r.text(e.title), message: r.text(e.message), labels };
  if (e.stack !== undefined) out.stack = r.text(e.stack);
  if (e.route !== undefined) out.route = r.text(e.route);
  return out;
}
