/**
 * The JSON API: manual filing, the read side (tickets, their occurrences and
 * triage decisions) and people's decisions (cancel, approve, skip, requeue).
 * Guarded by the API token when one is configured.
 */
import type { Context, Hono } from 'hono';
import type { AppDeps } from './app.ts';
import { badRequest, HttpError, notFound } from './http-error.ts';
import { approvalsForTicket } from './queue/approvals.ts';
import { notificationCounts, notificationSummaries } from './queue/notifications.ts';
import { activeRuns, cancelTicket, runsForTicket } from './queue/leases.ts';
import type { Store } from './queue/store.ts';
import { credentialAuth } from './triggers/auth.ts';
import { readJson } from './triggers/common.ts';
import { MANUAL_CLASSIFICATION, parseManual } from './triggers/manual.ts';
import { actorNameProblem, TICKET_STATES, type ApprovalActions, type ApprovalResult, type Reporter, type Ticket, type TicketState, type TriggerEvent } from './types.ts';
import { redactLines } from '../lib/redact.ts';
import { createScrub } from './scrub.ts';

export function registerApi(app: Hono, deps: AppDeps): void {
  const { store } = deps;
  // As the dashboard shows them (docs/dashboard.md, "What is never shown"): what a log or
  // an agent wrote is redacted, reporters' addresses are hashed, and bugbot's own text
  // (run reasons, audit details, delivery errors) has the config's secret values masked.
  // Without an API token these reads need no credential on loopback, where the dev server
  // running the agent's code is too.
  const scrub = createScrub(deps.config);
  const mask = createScrub(deps.config, { secretsOnly: true });
  const reporter = (r: Reporter): Reporter => ({
    ...r,
    id: scrub(r.id),
    ...(r.address !== undefined ? { address: scrub(r.address) } : {}),
    ...(r.thread !== undefined ? { thread: scrub(r.thread) } : {}),
    // The thread's Message-IDs name people as the thread's own id does.
    ...(r.references !== undefined ? { references: scrub(r.references) } : {}),
  });
  const shown = (t: Ticket): Ticket => ({ ...t, reporter: t.reporter && reporter(t.reporter), reporters: t.reporters.map(reporter) });
  const apiToken = deps.config.secrets.get(deps.config.server.apiTokenEnv);
  // Tickets, reporters and runs are no cache's to keep (a browser's, a proxy's).
  app.use('/api/*', async (c, next) => {
    await next();
    c.res.headers.set('cache-control', 'no-store');
  });
  app.use('/api/*', credentialAuth({ name: 'API', token: apiToken }));
  // Without an API token (loopback), people's decisions still need a credential: the
  // server's local key, which only its owner can read (server.json). Anything else running
  // on the machine, such as a dev server reloading the agent's code, cannot act.
  if (!apiToken && deps.localKey) {
    const actions = credentialAuth({ name: 'API action (no API token configured: send the local key from <home>/server.json as a bearer token)', token: deps.localKey });
    for (const action of ['cancel', 'approve', 'skip', 'requeue']) app.use(`/api/tickets/:id/${action}`, actions);
  }

  app.post('/api/tickets', async (c) => {
    const key = idempotencyKey(c.req.header('idempotency-key'));
    const ev = parseManual(await readJson(c), { idempotencyKey: key, now: store.now() });
    const [result] = await deps.intake.acceptQueued([ev], { classifications: new Map([[ev.sourceEventId, MANUAL_CLASSIFICATION]]) });
    deps.onAccepted?.([result!]);
    if (result!.status === 'duplicate') {
      // A retry gets the ticket its first request filed; a different report under a key
      // already used is refused, never silently dropped.
      const first = store.eventBySourceId('manual', ev.sourceEventId);
      const ticket = first?.ticketId ? store.getTicket(first.ticketId) : undefined;
      if (first && !sameReport(first.event, ev, (s) => deps.intake.redactText(s))) {
        throw new HttpError(422, 'idempotency_key_reused', `Idempotency-Key "${key}" was already used for a different report${ticket ? ` (ticket ${ticket.id})` : ''}; use a new key`);
      }
      return c.json({ status: 'duplicate', ticket: ticket && shown(ticket) }, 200);
    }
    const ticket = result!.ticketId ? store.getTicket(result!.ticketId) : undefined;
    // A regression opens a ticket as much as a first report does.
    return c.json({ status: result!.status, ticket: ticket && shown(ticket) }, result!.status === 'created' || result!.status === 'regression' ? 201 : 200);
  });

  app.get('/api/tickets', (c) => {
    const state = c.req.query('state');
    if (state && !TICKET_STATES.includes(state as TicketState)) {
      throw badRequest(`unknown state "${state}"; one of: ${TICKET_STATES.join(', ')}`);
    }
    const limit = intParam(c.req.query('limit'), 'limit', 100, 1, 1000);
    const offset = intParam(c.req.query('offset'), 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    const tickets = store.listTickets({ state: state as TicketState | undefined, limit, offset });
    return c.json({ tickets: tickets.map(shown), counts: store.countByState() });
  });

  app.get('/api/tickets/:id', (c) => {
    const id = intParam(c.req.param('id'), 'id', 0, 1, Number.MAX_SAFE_INTEGER);
    const ticket = store.getTicket(id);
    if (!ticket) throw notFound(`no ticket ${id}`);
    return c.json({
      ticket: shown(ticket),
      triage: { decision: ticket.triageDecision, reason: ticket.triageReason, severity: ticket.severity, classification: ticket.classification },
      occurrences: store.occurrences(id),
      related: store.relatedTickets(id),
      runs: runsForTicket(store, id).map((r) => ({ ...r, reason: r.reason === null ? null : scrub(r.reason) })),
      approvals: approvalsForTicket(store, id).map((a) => ({ ...a, message: a.message === null ? null : mask(a.message) })),
      // A fix told to each reporter of an email flood is thousands of messages: the latest, and how many in all.
      notifications: notificationSummaries(store, id).map((n) => ({ ...n, to: JSON.parse(scrub(JSON.stringify(n.to))) as Record<string, unknown>, error: n.error === null ? null : mask(n.error) })),
      notificationCounts: notificationCounts(store, id),
      audit: store.auditTrail(id).map((a) => ({ ...a, actor: scrub(a.actor), detail: a.detail === null ? null : mask(a.detail) })),
    });
  });

  app.get('/api/workers', (c) =>
    c.json({
      // A private key spans lines: the tail is redacted as lines.
      workers: deps.dispatcher ? deps.dispatcher.workers().map((w) => ({ ...w, tail: redactLines(w.tail, scrub) })) : workersFromStore(store),
      // Why the workers claim nothing now (tickets wait in the queue), or null.
      held: deps.dispatcher?.held() ?? null,
      // Slots paused on their own while the others work (their port held by another process).
      pausedSlots: (deps.dispatcher?.pausedSlots() ?? []).map((p) => ({ ...p, reason: scrub(p.reason) })),
      // This server's worker count (a --workers flag may differ from the config file).
      slots: deps.config.workers,
    }),
  );

  app.post('/api/tickets/:id/cancel', (c) => {
    const id = intParam(c.req.param('id'), 'id', 0, 1, Number.MAX_SAFE_INTEGER);
    if (!store.getTicket(id)) throw notFound(`no ticket ${id}`);
    const by = apiActor(c);
    const r = cancelTicket(store, id, by);
    if (!r) throw new HttpError(409, 'conflict', `ticket ${id} is ${store.getTicket(id)!.state}: nothing to cancel`);
    if (r.refused) throw new HttpError(409, 'conflict', r.refused);
    deps.dispatcher?.cancel(id, by);
    return c.json({ ticket: id, was: r.was, now: r.now });
  });

  // Approval mode: 404 unknown ticket, 409 when its state (or an approval in flight, or a
  // merge conflict) stops the action, 502 when the merge or the pull request failed.
  const decision = (act: (approvals: ApprovalActions, id: number, by: string, body: DecisionBody) => ApprovalResult | Promise<ApprovalResult>) =>
    async (c: Context) => {
      const id = intParam(c.req.param('id'), 'id', 0, 1, Number.MAX_SAFE_INTEGER);
      if (!deps.approvals) throw new HttpError(503, 'unavailable', 'approvals are not available in this process');
      const body = await optionalJson(c);
      if (!store.getTicket(id)) throw notFound(`no ticket ${id}`);
      const r = await act(deps.approvals, id, apiActor(c), body);
      const { failure, ...result } = r;
      if (r.ok) return c.json(result);
      if (failure === 'not_found') throw notFound(r.message);
      return c.json({ ...result, error: { code: failure ?? 'conflict', message: r.message } }, failure === 'error' ? 502 : 409);
    };
  app.post('/api/tickets/:id/approve', decision((a, id, by, body) => a.approve(id, by, { run: body.run })));
  app.post('/api/tickets/:id/skip', decision((a, id, by, body) => a.skip(id, by, body.reason, { run: body.run })));
  app.post('/api/tickets/:id/requeue', decision((a, id, by, body) => a.requeue(id, by, { run: body.run })));
}

/** What an approve, skip or requeue may say: why (skip), and which run was looked at (each). */
interface DecisionBody {
  reason?: string;
  run?: number;
}

/** An optional JSON object body ({} when empty), e.g. {"reason": "..."} for skip, {"run": 12} for approve. */
async function optionalJson(c: Context): Promise<DecisionBody> {
  const text = (await c.req.text()).trim();
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw badRequest(`body is not valid JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw badRequest('body must be a JSON object');
  const { reason, run } = v as { reason?: unknown; run?: unknown };
  if (reason !== undefined && typeof reason !== 'string') throw badRequest('reason must be a string');
  if (run !== undefined && !(typeof run === 'number' && Number.isSafeInteger(run) && run > 0)) throw badRequest('run must be a positive integer (the run whose fix was looked at)');
  return { ...(reason ? { reason: reason.slice(0, 1000) } : {}), ...(typeof run === 'number' ? { run } : {}) };
}

function intParam(raw: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return dflt;
  if (!/^\d+$/.test(raw)) throw badRequest(`${name} must be a non-negative integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw badRequest(`${name} must be between ${min} and ${max}`);
  return n;
}

/** Workers as the store knows them (another process runs the dispatcher). */
export function workersFromStore(store: Store) {
  const now = store.now().getTime();
  return activeRuns(store).map((r) => {
    const p = r.progress_json ? (JSON.parse(r.progress_json) as { tokens?: number; cost_usd?: number; tool_calls?: number }) : {};
    const t = store.getTicket(r.ticket_id);
    return {
      worker: r.worker_id,
      ticket: r.ticket_id,
      title: t?.title ?? '',
      run: r.id,
      port: r.port,
      phase: r.phase,
      elapsed_s: Math.round((now - Date.parse(r.started_at)) / 1000),
      tokens: p.tokens ?? 0,
      cost_usd: p.cost_usd ?? 0,
      tool_calls: p.tool_calls ?? 0,
    };
  });
}

/** The Idempotency-Key header: absent when empty; bounded, like any stored key. */
function idempotencyKey(header: string | undefined): string | undefined {
  const key = header?.trim();
  if (!key) return undefined;
  if (key.length > 200) throw badRequest(`Idempotency-Key: at most 200 characters (got ${key.length})`);
  return key;
}

/** Whether a retried report is the one first stored under its key (stored text is redacted). */
function sameReport(stored: TriggerEvent, ev: TriggerEvent, redact: (s: string) => string): boolean {
  return (
    stored.title === redact(ev.title) &&
    stored.message === redact(ev.message) &&
    (stored.route ?? '') === redact(ev.route ?? '') &&
    (stored.stack ?? '') === redact(ev.stack ?? '') &&
    (stored.service ?? '') === redact(ev.service ?? '') &&
    stored.kind === ev.kind &&
    sameLabels(stored.labels ?? {}, ev.labels, redact)
  );
}

/** The labels (filed_by among them, and a fingerprint label that groups the report elsewhere), redacted as stored: names and values. */
function sameLabels(stored: Record<string, string>, labels: Record<string, string>, redact: (s: string) => string): boolean {
  const sent: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) sent[redact(k)] = redact(v);
  const keys = Object.keys(sent);
  return keys.length === Object.keys(stored).length && keys.every((k) => Object.hasOwn(stored, k) && stored[k] === sent[k]);
}

/**
 * Who acts through the API: the X-Bugbot-User header (the CLI sends the person's name),
 * else "api". The names bugbot gives its own actors (auto-approve, slack:…, dashboard:…)
 * are refused: a caller could otherwise record its approval as the rules' or a Slack user's.
 */
function apiActor(c: Context): string {
  const raw = c.req.header('x-bugbot-user');
  if (raw === undefined) return 'api';
  const problem = actorNameProblem(headerText(raw).trim());
  if (problem) throw badRequest(`x-bugbot-user: ${problem}`);
  return headerText(raw).trim();
}

/**
 * A header's text: its bytes read as UTF-8 when they are UTF-8 (how the CLI sends a name
 * beyond Latin-1, which a header cannot carry as such), else as Latin-1, as they came.
 */
function headerText(raw: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(raw, 'latin1'));
  } catch {
    return raw;
  }
}

