/**
 * Manual filing: POST /api/tickets (API token) and `bugbot enqueue`. A person
 * filed it, so it is a bug by definition and skips the free-text classifier.
 * An `Idempotency-Key` header makes retries safe.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { badRequest } from '../http-error.ts';
import type { ClassifyResult } from '../intake/classify.ts';
import { EVENT_KINDS, type TriggerEvent } from '../types.ts';

/** The most characters of a report's message or stack. */
export const MANUAL_TEXT_MAX = 100_000;

export const manualSchema = z
  .object({
    title: z.string().trim().min(1, 'title is required').max(300),
    message: z.string().max(MANUAL_TEXT_MAX).optional(),
    service: z.string().max(200).optional(),
    route: z.string().max(500).optional(),
    stack: z.string().max(MANUAL_TEXT_MAX).optional(),
    kind: z.enum(EVENT_KINDS).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    filed_by: z.string().max(200).optional(),
  })
  .strict()
  // Without a message, a title's first line is the title and the whole text the message;
  // with one, the rest of the title would be kept nowhere.
  .superRefine((b, ctx) => {
    if (b.message !== undefined && b.title.includes('\n')) {
      ctx.addIssue({ code: 'custom', path: ['title'], message: 'must be one line when a message is given (the title is its first line: put the rest in the message)' });
    }
  });

export type ManualInput = z.input<typeof manualSchema>;

export function parseManual(body: unknown, opts: { idempotencyKey?: string; now: Date }): TriggerEvent {
  const r = manualSchema.safeParse(body);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
    throw badRequest(`invalid ticket: ${problems.join('; ')}`, r.error.issues);
  }
  const b = r.data;
  const at = opts.now.toISOString();
  const ev: TriggerEvent = {
    source: 'manual',
    kind: b.kind ?? (b.stack ? 'error' : 'report'),
    title: b.title.split('\n')[0]!,
    message: b.message ?? b.title,
    labels: { ...(b.labels ?? {}), ...(b.filed_by ? { filed_by: b.filed_by } : {}) },
    count: 1,
    firstSeen: at,
    lastSeen: at,
    human: true,
    sourceEventId: opts.idempotencyKey ?? randomUUID(),
  };
  if (b.service) ev.service = b.service;
  if (b.route) ev.route = b.route;
  if (b.stack) ev.stack = b.stack;
  return ev;
}

export const MANUAL_CLASSIFICATION: ClassifyResult = {
  classification: 'bug',
  reason: 'filed by hand',
  scores: { bug: 1, feature: 0, question: 0, noise: 0 },
};
