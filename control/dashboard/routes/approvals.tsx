/**
 * The approval queue and the buttons' POSTs: approve / skip / requeue call the
 * approvals backend (deps.approvals), cancel the queue's cancel path.
 */
import type { Hono } from 'hono';
import { cancelTicket, runsForTicket } from '../../queue/leases.ts';
import type { ApprovalResult } from '../../types.ts';
import { localPath, page, type Dash } from '../context.ts';
import { diffForRun, readRunFiles } from '../data.ts';
import { ACTIONS, type Action } from '../pages/actions.tsx';
import { ApprovalsPage, type ApprovalItem } from '../pages/approvals.tsx';
import { notFoundPage, ticketIdParam } from '../errors.tsx';
import { testCounts } from '../tests-view.tsx';

/** Approval queue shown per state on one page. */
const APPROVALS_PER_STATE = 30;
/**
 * Runs whose diff the page draws (each is a git process and up to dashboard.maxDiffBytes
 * of page): the rest link to their ticket's page, so one GET stays bounded.
 */
const DIFFS_SHOWN = 8;

export function registerApprovalRoutes(app: Hono, dash: Dash): void {
  const { deps, access, scrub, maskSecrets, outcomes, viewer } = dash;
  const { config, store } = deps;

  app.get('/approvals', async (c) => {
    const counts = store.countByState();
    const tickets = [
      ...store.listTickets({ state: 'awaiting_approval', limit: APPROVALS_PER_STATE }),
      ...store.listTickets({ state: 'needs_human', limit: APPROVALS_PER_STATE }),
    ];
    const more = (counts.awaiting_approval ?? 0) + (counts.needs_human ?? 0) - tickets.length;
    const latest = outcomes.latest();
    const items: ApprovalItem[] = [];
    // One at a time: each diff is a git process; a long queue should not fork dozens at once.
    for (const ticket of tickets) {
      const run = runsForTicket(store, ticket.id).at(-1);
      if (!run) {
        items.push({ ticket, run: null, files: null, diff: null });
        continue;
      }
      const row = latest.find((r) => r.run_id === run.id);
      const files = readRunFiles(config, scrub, run);
      const info = {
        id: run.id,
        branch: row?.branch ?? run.branch ?? files.push.branch ?? null,
        commit: row?.commit ?? files.push.commit ?? null,
        reason: row?.reason ?? run.reason,
        finishedAt: run.finished_at,
        outcome: row?.outcome ?? run.outcome,
        tests: testCounts(row?.tests, files.push),
      };
      const diff = items.filter((i) => i.diff !== null && i.diff !== 'elsewhere').length < DIFFS_SHOWN ? await diffForRun(config, info, files) : 'elsewhere';
      items.push({ ticket, run: info, files, diff });
    }
    return page(c, <ApprovalsPage viewer={viewer(c)} items={items} scrub={scrub} mask={maskSecrets} approvalsEnabled={Boolean(deps.approvals)} more={Math.max(0, more)} />);
  });

  app.post('/approvals/:id/:action', async (c) => {
    const v = viewer(c);
    const id = ticketIdParam(c.req.param('id'));
    const action = c.req.param('action') as Action;
    if (!ACTIONS.includes(action)) return notFoundPage(c, config, v, `No action "${action}"; one of: ${ACTIONS.join(', ')}.`);
    const ticket = id === null ? undefined : store.getTicket(id);
    if (!ticket || id === null) return notFoundPage(c, config, v, `No ticket ${c.req.param('id')}.`);
    const form = await c.req.parseBody();
    const back = localPath(form.return_to, '/approvals');
    const reason = typeof form.reason === 'string' && form.reason.trim() ? form.reason.trim().slice(0, 500) : undefined;
    // The run the page showed (approve, skip, requeue and cancel forms carry it).
    const run = typeof form.run === 'string' && /^[1-9]\d{0,15}$/.test(form.run) ? Number(form.run) : undefined;
    const actor = `dashboard:${v.user}`;
    let result: Pick<ApprovalResult, 'ok' | 'message'>;
    try {
      result = await act(action, id, actor, reason, run);
    } catch (err) {
      deps.logger.error('dashboard action failed', { ticket: id, action, error: (err as Error).message });
      result = { ok: false, message: `${action} failed: ${(err as Error).message}` };
    }
    deps.logger.info('dashboard action', { ticket: id, action, actor, ok: result.ok });
    access.flash(v.sessionId, result.ok, maskSecrets(result.message));
    return c.redirect(back, 303);
  });

  const act = async (action: Action, id: number, actor: string, reason: string | undefined, run: number | undefined): Promise<Pick<ApprovalResult, 'ok' | 'message'>> => {
    if (action === 'cancel') {
      // Cancel drops a fix waiting for approval as Skip does: from a page of an earlier run
      // (the ticket ran again since), it would drop the newer run's fix nobody looked at.
      const r = store.tx(() => {
        const latest = runsForTicket(store, id).at(-1)?.id;
        if (run !== undefined && latest !== run) return { stale: latest ?? null };
        return cancelTicket(store, id, actor);
      });
      if (r && 'stale' in r) {
        return { ok: false, message: `ticket #${id}'s latest run is ${r.stale === null ? 'none' : `run ${r.stale}`}, not run ${run} that the page showed: look at it and cancel again` };
      }
      if (!r) return { ok: false, message: `ticket #${id} is ${store.getTicket(id)?.state}: nothing to cancel` };
      if (r.refused) return { ok: false, message: r.refused };
      deps.dispatcher?.cancel(id, actor);
      return { ok: true, message: `ticket #${id} cancelled (was ${r.was}, now ${r.now})` };
    }
    const approvals = deps.approvals;
    if (!approvals) return { ok: false, message: `${action}: approvals are not available in this process` };
    if (action === 'approve') return approvals.approve(id, actor, { run });
    if (action === 'skip') return approvals.skip(id, actor, reason, { run });
    const r = await approvals.requeue(id, actor, { run });
    if (r.ok) deps.dispatcher?.poke();
    return r;
  };
}
