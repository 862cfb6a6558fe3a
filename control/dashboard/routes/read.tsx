/**
 * The read side: the overview and its live stream, a ticket, the outcomes charts
 * and their export.
 */
import type { Context, Hono } from 'hono';
import type { JSX } from 'hono/jsx/jsx-runtime';
import { stream, streamSSE } from 'hono/streaming';
import { badRequest } from '../../http-error.ts';
import type { OutcomeRow } from '../../outcomes/archive.ts';
import { summarize } from '../../outcomes/summary.ts';
import { runsForTicket, type RunRow } from '../../queue/leases.ts';
import { notificationCounts, notificationSummaries } from '../../queue/notifications.ts';
import { TICKET_STATES, type TicketState } from '../../types.ts';
import { byFinished, page, render, type Dash } from '../context.ts';
import { diffForRun, liveWorkers, readRunFiles, runTranscript, type RunFiles } from '../data.ts';
import type { RunDiff } from '../git-diff.ts';
import { dayOf, distinct, matches, parseFilter, perDay, topFingerprints, withoutFuture } from '../outcome-stats.ts';
import { notFoundPage, ticketIdParam } from '../errors.tsx';
import { OutcomesPage } from '../pages/outcomes.tsx';
import { OverviewPage, QueuePanel, RecentOutcomesPanel, WorkersPanel } from '../pages/overview.tsx';
import { TicketPage, type RunInfo } from '../pages/ticket.tsx';
import { testCounts } from '../tests-view.tsx';

/** Tickets per page of the overview's list. */
const TICKETS_PER_PAGE = 50;
/** A ticket's latest reports its occurrence chart draws (an alert storm has many thousand). */
const OCCURRENCES_DRAWN = 500;
/**
 * Messages to reporters listed on a ticket's page, the latest: a fix told to every reporter
 * of an email flood is thousands of them. The rest are counted by state.
 */
const NOTIFICATIONS_DRAWN = 50;

/** Outcome rows per piece of an export. */
const EXPORT_ROWS = 500;

export function registerReadRoutes(app: Hono, dash: Dash): void {
  const { deps, scrub, maskSecrets, outcomes, viewer } = dash;
  const { config, store } = deps;
  const d = config.dashboard;

  // A run's reason carries what git and the model wrote (a push's stderr, file names, an
  // API error): scrubbed like agent text, as on the ticket and approvals pages.
  const recentOutcomes = (): OutcomeRow[] =>
    outcomes
      .newest(10)
      .map((r) => ({ ...r, reason: scrub(r.reason ?? '') }));
  // The reason names what held the slot's port (a process's command line): scrubbed too.
  const pausedSlots = () => (deps.dispatcher?.pausedSlots() ?? []).map((p) => ({ ...p, reason: scrub(p.reason) }));
  const stateParam = (c: Context) => {
    const s = c.req.query('state');
    return s && (TICKET_STATES as readonly string[]).includes(s) ? (s as TicketState) : undefined;
  };

  app.get('/', (c) => {
    const state = stateParam(c);
    const counts = store.countByState();
    // Newest first, a page at a time: a state's count links here, and every ticket it
    // counts must be reachable from it.
    const total = state ? (counts[state] ?? 0) : Object.values(counts).reduce((a, b) => a + b, 0);
    const asked = c.req.query('page');
    const pageNo = asked && /^[1-9]\d{0,6}$/.test(asked) ? Number(asked) : 1;
    return page(
      c,
      <OverviewPage
        viewer={viewer(c)}
        counts={counts}
        state={state}
        workers={liveWorkers(deps, scrub)}
        slots={config.workers}
        held={deps.dispatcher?.held() ?? null}
        pausedSlots={pausedSlots()}
        tickets={store.listTickets({ state, limit: TICKETS_PER_PAGE, offset: (pageNo - 1) * TICKETS_PER_PAGE })}
        pages={{ page: pageNo, perPage: TICKETS_PER_PAGE, total }}
        recent={recentOutcomes()}
      />,
    );
  });

  app.get('/live', (c) => {
    const state = stateParam(c);
    const { sessionId } = viewer(c);
    return streamSSE(c, async (stream) => {
      const sent = new Map<string, string>();
      await stream.writeSSE({ event: 'hello', data: 'live', retry: 2000 });
      // Until the browser goes, the server stops, or the login ends (logout, expiry).
      while (!stream.aborted && !stream.closed && !deps.shutdown?.aborted && dash.access.sessionAlive(sessionId)) {
        const counts = store.countByState();
        const parts: Array<[string, JSX.Element]> = [
          ['live-queue', <QueuePanel counts={counts} selected={state} />],
          ['live-workers', <WorkersPanel workers={liveWorkers(deps, scrub)} slots={config.workers} queued={counts.queued ?? 0} held={deps.dispatcher?.held() ?? null} pausedSlots={pausedSlots()} />],
          ['live-outcomes', <RecentOutcomesPanel rows={recentOutcomes()} />],
        ];
        for (const [id, el] of parts) {
          const html = await render(el);
          if (sent.get(id) === html) continue;
          sent.set(id, html);
          await stream.writeSSE({ event: 'part', data: JSON.stringify({ id, html }) });
        }
        await stream.sleep(d.liveIntervalMs);
      }
    });
  });

  const runInfo = (run: RunRow, row: OutcomeRow | undefined): RunInfo => {
    const stages: RunInfo['stages'] = row
      ? Object.entries(row.stages ?? {}).flatMap(([k, v]) => (v ? [[k, v] as [string, typeof v]] : []))
      : store.stagesOf(run.id).map((s) => [s.stage, { ...(s.detail_json ? (JSON.parse(s.detail_json) as object) : {}), tokens: s.tokens, tool_calls: s.tool_calls, cost_usd: s.cost_usd }]);
    return {
      id: run.id,
      attempt: run.attempt,
      worker: run.worker_id,
      state: run.state,
      startedAt: run.started_at,
      finishedAt: run.finished_at,
      branch: row?.branch ?? run.branch,
      commit: row?.commit ?? null,
      pushedTo: row?.pushed_to ?? null,
      outcome: row?.outcome ?? run.outcome,
      reason: row?.reason ?? run.reason,
      stages,
      costUsd: row ? row.cost_usd : null,
      tests: testCounts(row?.tests),
    };
  };

  app.get('/tickets/:id', async (c) => {
    const id = ticketIdParam(c.req.param('id'));
    const ticket = id === null ? undefined : store.getTicket(id);
    if (!ticket || id === null) return notFoundPage(c, config, viewer(c), `No ticket ${c.req.param('id')}.`);
    const rows = outcomes.latest().filter((r) => r.ticket_id === id);
    const runs = runsForTicket(store, id).map((r) => runInfo(r, rows.find((o) => o.run_id === r.id)));
    const asked = c.req.query('run');
    const wanted = runs.find((r) => asked !== undefined && String(r.id) === asked);
    const selected = wanted ?? runs[runs.length - 1] ?? null;
    let files: RunFiles | null = null;
    let diff: RunDiff | { error: string } | null = null;
    if (selected) {
      files = readRunFiles(config, scrub, { id: selected.id, ticket_id: id });
      selected.commit ??= files.push.commit ?? null;
      selected.pushedTo ??= files.push.pushed_to ?? null;
      selected.tests = testCounts(rows.find((o) => o.run_id === selected.id)?.tests, files.push);
      diff = await diffForRun(config, selected, files);
    }
    const related = [
      ...store.relatedTickets(id).map((r) => ({ id: r.id, relation: r.relation, state: r.state })),
      ...store
        .ticketsWithFingerprint(ticket.fingerprint, id)
        .filter((r) => r.id !== ticket.regressionOf)
        .map((r) => ({ id: r.id, relation: 'same_fingerprint', state: r.state })),
    ];
    const seen = new Set<number>();
    // One more than drawn: whether there are older ones, which the page then mentions.
    const occurrences = store.occurrences(id, OCCURRENCES_DRAWN + 1);
    return page(
      c,
      <TicketPage
        viewer={viewer(c)}
        ticket={ticket}
        scrub={scrub}
        mask={maskSecrets}
        occurrences={occurrences.slice(0, OCCURRENCES_DRAWN)}
        occurrencesCut={occurrences.length > OCCURRENCES_DRAWN}
        timeline={store.auditTrail(id)}
        related={related.filter((r) => !seen.has(r.id) && seen.add(r.id))}
        runs={runs}
        selected={selected}
        missingRun={asked !== undefined && !wanted ? asked : null}
        files={files}
        transcript={selected ? runTranscript(config, scrub, { id: selected.id, ticket_id: id }) : null}
        diff={diff}
        live={liveWorkers(deps, scrub).find((w) => w.ticket === id) ?? null}
        approvalsEnabled={Boolean(deps.approvals)}
        notifications={notificationSummaries(store, id, NOTIFICATIONS_DRAWN)}
        notificationCounts={notificationCounts(store, id)}
      />,
    );
  });

  // ---- outcomes ----------------------------------------------------------------------------

  // What the page draws, worked out once per state of the archive, filter and minute: a
  // year's archive takes about half a second to sum up, on the event loop webhooks share.
  let outcomesView: { key: string; view: ReturnType<typeof outcomesFigures> } | null = null;
  const outcomesFigures = (filter: ReturnType<typeof parseFilter>['filter']) => {
    const all = outcomes.latest();
    // A run dated after now (a clock set wrong when it was written) is left out, and the
    // page says so: the charts end at their latest day, which would be its day.
    const { rows, future } = withoutFuture(all.filter((r) => matches(r, filter)), Date.now());
    const days = perDay(rows);
    return {
      sources: distinct(all, (r) => r.trigger_source),
      services: distinct(all, (r) => r.service),
      summary: summarize(rows),
      days,
      daysCut: days.length > 0 && rows.some((r) => dayOf(r) < days[0]!.day),
      future,
      fingerprints: topFingerprints(rows),
      rows: byFinished(rows),
    };
  };

  app.get('/outcomes', (c) => {
    const { filter, problems } = parseFilter(c.req.query());
    const key = `${outcomes.version()}|${JSON.stringify(filter)}|${Math.floor(Date.now() / 60_000)}`;
    if (outcomesView?.key !== key) outcomesView = { key, view: outcomesFigures(filter) };
    const v = outcomesView.view;
    return page(
      c,
      <OutcomesPage
        viewer={viewer(c)}
        filter={filter}
        problems={problems}
        sources={v.sources}
        services={v.services}
        summary={v.summary}
        days={v.days}
        daysCut={v.daysCut}
        future={v.future}
        fingerprints={v.fingerprints}
        rows={v.rows}
      />,
    );
  });

  app.get('/outcomes/export', (c) => {
    const { filter, problems } = parseFilter(c.req.query());
    if (problems.length) throw badRequest(problems.join('; '));
    // Every revision of the runs the page shows (their latest revision matches, dated up to
    // now), as archived: readers keep the latest per run. Filtered revision by revision, a
    // run approved today was exported by its first row alone under a filter ending the day
    // it ran, still waiting for approval.
    const run = (r: OutcomeRow) => JSON.stringify([r.run_id, r.ticket_id, r.started]);
    const shown = new Set(withoutFuture(outcomes.latest().filter((r) => matches(r, filter)), Date.now()).rows.map(run));
    const rows = outcomes.all().filter((r) => shown.has(run(r)));
    const name = ['outcomes', filter.source, filter.service, filter.from, filter.to].filter(Boolean).join('-').replace(/[^\w.-]/g, '_');
    c.header('content-type', 'application/x-ndjson; charset=utf-8');
    c.header('content-disposition', `attachment; filename="${name}.jsonl"`);
    // Sent EXPORT_ROWS rows at a time: a year's archive is more text than one string holds
    // (512 MiB), and would sit in memory whole, twice, while it was joined.
    return stream(c, async (out) => {
      for (let i = 0; i < rows.length && !out.aborted; i += EXPORT_ROWS) {
        // Each string masked before it is serialised: JSON escapes a secret holding `"` or `\`.
        const lines = rows.slice(i, i + EXPORT_ROWS).map((r) => JSON.stringify(r, (_k, v: unknown) => (typeof v === 'string' ? maskSecrets(v) : v)));
        await out.write(`${lines.join('\n')}\n`);
      }
    });
  });

}
