/**
 * The JSON API: manual filing and the read side (tickets, their occurrences and
 * triage decisions). Guarded by the API token when one is configured.
 */
import type { Hono } from 'hono';
import type { AppDeps } from './app.ts';
import { badRequest, notFound } from './http-error.ts';
import { activeRuns, runsForTicket } from './queue/leases.ts';
import { credentialAuth } from './triggers/auth.ts';
import { readJson } from './triggers/common.ts';
import { MANUAL_CLASSIFICATION, parseManual } from './triggers/manual.ts';
import { TICKET_STATES, type TicketState } from './types.ts';

export function registerApi(app: Hono, deps: AppDeps): void {
  const { store } = deps;
  app.use('/api/*', credentialAuth({ name: 'API', token: deps.config.secrets.get(deps.config.server.apiTokenEnv) }));

  app.post('/api/tickets', async (c) => {
    const ev = parseManual(await readJson(c), { idempotencyKey: c.req.header('idempotency-key'), now: store.now() });
    const [result] = await deps.intake.acceptQueued([ev], { classifications: new Map([[ev.sourceEventId, MANUAL_CLASSIFICATION]]) });
    deps.onAccepted?.([result!]);
    const ticket = result!.ticketId ? store.getTicket(result!.ticketId) : undefined;
    return c.json({ status: result!.status, ticket }, result!.status === 'created' ? 201 : 200);
  });

  app.get('/api/tickets', (c) => {
    const state = c.req.query('state');
    if (state && !TICKET_STATES.includes(state as TicketState)) {
      throw badRequest(`unknown state "${state}"; one of: ${TICKET_STATES.join(', ')}`);
    }
    const limit = intParam(c.req.query('limit'), 'limit', 100, 1, 1000);
    const offset = intParam(c.req.query('offset'), 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    const tickets = store.listTickets({ state: state as TicketState | undefined, limit, offset });
    return c.json({ tickets, counts: store.countByState() });
  });

  app.get('/api/tickets/:id', (c) => {
    const id = intParam(c.req.param('id'), 'id', 0, 1, Number.MAX_SAFE_INTEGER);
    const ticket = store.getTicket(id);
    if (!ticket) throw notFound(`no ticket ${id}`);
    return c.json({
      ticket,
      triage: { decision: ticket.triageDecision, reason: ticket.triageReason, severity: ticket.severity, classification: ticket.classification },
      occurrences: store.occurrences(id),
      related: store.relatedTickets(id),
      runs: runsForTicket(store, id),
      audit: store.auditTrail(id),
    });
  });

  app.get('/api/workers', (c) => c.json({ workers: activeRuns(store) }));
}

function intParam(raw: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return dflt;
  if (!/^\d+$/.test(raw)) throw badRequest(`${name} must be a non-negative integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw badRequest(`${name} must be between ${min} and ${max}`);
  return n;
}
