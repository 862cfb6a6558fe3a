/**
 * Overview: the queue by state, the workers (live), the latest tickets and the
 * most recent outcomes. The three panels are also what the live stream sends.
 */
import type { PausedSlot } from '../../dispatcher/pool.ts';
import type { OutcomeRow } from '../../outcomes/archive.ts';
import type { Ticket } from '../../types.ts';
import { severityText, TICKET_STATES } from '../../types.ts';
import type { LiveWorker } from '../data.ts';
import { fmtCost, fmtDuration, fmtInt, Layout, OutcomeBadge, StateBadge, TicketLink, Time, type Viewer } from '../layout.tsx';

export function QueuePanel(props: { counts: Record<string, number>; selected?: string | undefined }) {
  const total = Object.values(props.counts).reduce((a, b) => a + b, 0);
  return (
    <div class="chips" data-total={total}>
      <a class={`chip${props.selected ? '' : ' on'}`} href="/">
        all<b>{total}</b>
      </a>
      {TICKET_STATES.map((s) => (
        <a class={`chip${props.selected === s ? ' on' : ''}`} href={`/?state=${s}`} data-state={s} data-count={props.counts[s] ?? 0}>
          {s.replace(/_/g, ' ')}
          <b>{props.counts[s] ?? 0}</b>
        </a>
      ))}
    </div>
  );
}

export function WorkersPanel(props: { workers: LiveWorker[]; slots: number; queued: number; held: string | null; pausedSlots?: PausedSlot[] }) {
  // Why nothing is claimed: what the machine lacks, or no model credentials; or why one slot claims nothing.
  const paused = (props.pausedSlots ?? []).map((p) => (
    <p class="held state-needs_human" data-paused-slot={p.worker}>{`Worker ${p.worker} pauses until ${p.until}: ${p.reason}.`}</p>
  ));
  const held =
    props.held || paused.length ? (
      <>
        {props.held ? <p class="held state-needs_human" data-held="1">{`Workers hold: ${props.held}. Tickets wait in the queue until then.`}</p> : null}
        {paused}
      </>
    ) : null;
  if (!props.workers.length) {
    const idle = (
      <p class="muted" data-workers="0">
        {`No worker is running (${props.slots} slot${props.slots === 1 ? '' : 's'}; ${props.queued} queued).`}
      </p>
    );
    return held ? (
      <div>
        {held}
        {idle}
      </div>
    ) : (
      idle
    );
  }
  return (
    <div data-workers={props.workers.length}>
      {held}
      {props.workers.map((w) => (
        <div class="worker card" data-worker={w.worker} data-ticket={w.ticket}>
          <table>
            <thead>
              <tr>
                <th>worker</th>
                <th>ticket</th>
                <th>phase</th>
                <th class="num">elapsed</th>
                <th class="num">port</th>
                <th class="num">tokens</th>
                <th class="num">tool calls</th>
                <th class="num">cost</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <td>{w.worker}</td>
                <td>
                  <TicketLink id={w.ticket} title={w.title} />
                </td>
                <td class="phase">{w.phase ?? 'starting'}</td>
                <td class="num">{fmtDuration(w.elapsed_s)}</td>
                <td class="num">{w.port ?? '—'}</td>
                <td class="num">{fmtInt(w.tokens)}</td>
                <td class="num">{fmtInt(w.tool_calls)}</td>
                <td class="num">{fmtCost(w.cost_usd)}</td>
              </tr>
            </tbody>
          </table>
          {w.phaseTail.length ? <pre class="tail phase-tail">{w.phaseTail.join('\n')}</pre> : null}
          {w.log.length ? <pre class="tail worker-log">{w.log.join('\n')}</pre> : null}
        </div>
      ))}
    </div>
  );
}

export function RecentOutcomesPanel(props: { rows: OutcomeRow[] }) {
  if (!props.rows.length) return <p class="muted">No run has finished yet.</p>;
  return (
    <table>
      <thead>
        <tr>
          <th>finished</th>
          <th>ticket</th>
          <th>outcome</th>
          <th>state</th>
          <th class="num">cost</th>
          <th>reason</th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map((r) => (
          <tr data-run={r.run_id}>
            <td>
              <Time iso={r.finished} />
            </td>
            <td>
              <TicketLink id={r.ticket_id} />
            </td>
            <td>
              <OutcomeBadge outcome={r.outcome} />
            </td>
            <td>
              <StateBadge state={r.state} />
            </td>
            <td class="num">{fmtCost(r.cost_usd)}</td>
            <td class="small">{r.reason}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function TicketTable(props: { tickets: Ticket[] }) {
  if (!props.tickets.length) return <p class="muted">No tickets.</p>;
  return (
    <table id="tickets">
      <thead>
        <tr>
          <th>ticket</th>
          <th>state</th>
          <th>severity</th>
          <th>source</th>
          <th>service</th>
          <th class="num">count</th>
          <th>last seen</th>
        </tr>
      </thead>
      <tbody>
        {props.tickets.map((t) => (
          <tr data-ticket={t.id} data-state={t.state}>
            <td>
              <TicketLink id={t.id} title={t.title} />
              {t.regressionOf ? <span class="small muted">{` regression of #${t.regressionOf}`}</span> : null}
            </td>
            <td>
              <StateBadge state={t.state} />
            </td>
            <td>{severityText(t)}</td>
            <td>{t.source}</td>
            <td>{t.service ?? ''}</td>
            <td class="num">{fmtInt(t.count)}</td>
            <td>
              <Time iso={t.lastSeen} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Which page of the ticket list is shown: 1-based, `total` tickets in the list's state (or all). */
export interface TicketPages {
  page: number;
  perPage: number;
  total: number;
}

/**
 * Where the ticket list stands ("Tickets 51–100 of 230") and the links to the newer and
 * older pages; nothing when one page holds them all.
 */
function Pager(props: { pages: TicketPages; state?: string | undefined; shown: number }) {
  const { page, perPage, total } = props.pages;
  if (page === 1 && total <= perPage) return null;
  const href = (n: number) => {
    const q = new URLSearchParams();
    if (props.state) q.set('state', props.state);
    if (n > 1) q.set('page', String(n));
    const s = q.toString();
    return s ? `/?${s}` : '/';
  };
  if (!props.shown) {
    return (
      <p class="muted" id="ticket-pages">
        {`No tickets on page ${page} (${fmtInt(total)} in all). `}
        <a href={href(1)}>first page</a>
      </p>
    );
  }
  const from = (page - 1) * perPage + 1;
  const last = page * perPage >= total;
  return (
    <p class="small" id="ticket-pages">
      {`Tickets ${fmtInt(from)}–${fmtInt(from + props.shown - 1)} of ${fmtInt(total)}, newest first. `}
      {page > 1 ? <a href={href(page - 1)} rel="prev">newer</a> : null}
      {page > 1 && !last ? ' · ' : null}
      {last ? null : <a href={href(page + 1)} rel="next">older</a>}
    </p>
  );
}

export function OverviewPage(props: {
  viewer: Viewer;
  counts: Record<string, number>;
  state?: string | undefined;
  workers: LiveWorker[];
  slots: number;
  held: string | null;
  pausedSlots?: PausedSlot[];
  tickets: Ticket[];
  pages: TicketPages;
  recent: OutcomeRow[];
}) {
  return (
    <Layout title="Overview" here="/" viewer={props.viewer} live={`/live${props.state ? `?state=${props.state}` : ''}`}>
      <h1>Overview</h1>
      <div class="card">
        <h2>Queue</h2>
        <div id="live-queue">
          <QueuePanel counts={props.counts} selected={props.state} />
        </div>
      </div>
      <div class="card">
        <h2>Workers</h2>
        <div id="live-workers">
          <WorkersPanel workers={props.workers} slots={props.slots} queued={props.counts.queued ?? 0} held={props.held} pausedSlots={props.pausedSlots} />
        </div>
      </div>
      <div class="grid">
        <div class="card">
          <h2>{props.state ? `Tickets: ${props.state.replace(/_/g, ' ')}` : 'Latest tickets'}</h2>
          <Pager pages={props.pages} state={props.state} shown={props.tickets.length} />
          {props.tickets.length || props.pages.page === 1 ? <TicketTable tickets={props.tickets} /> : null}
        </div>
        <div class="card">
          <h2>
            Recent outcomes <a class="small" href="/outcomes">all</a>
          </h2>
          <div id="live-outcomes">
            <RecentOutcomesPanel rows={props.recent} />
          </div>
        </div>
      </div>
    </Layout>
  );
}
