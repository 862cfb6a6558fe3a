/**
 * Outcomes: charts drawn from the outcomes archive (clean / messy / failed per day,
 * time from trigger to push, cost per ticket and per clean fix, tokens per stage,
 * top fingerprints), filtered by source, service and date, with the JSONL export
 * of the same slice.
 */
import type { OutcomeRow } from '../../outcomes/archive.ts';
import { costUnknown, summaryNotes, type OutcomeSummary } from '../../outcomes/summary.ts';
import { BarList, ColumnChart } from '../charts.tsx';
import { fmtCost, fmtDuration, fmtInt, Layout, OutcomeBadge, TicketLink, Time, type Viewer } from '../layout.tsx';
import { filterQuery, type DayStats, type FingerprintStats, type OutcomeFilter } from '../outcome-stats.ts';

export interface OutcomesPageProps {
  viewer: Viewer;
  filter: OutcomeFilter;
  problems: string[];
  sources: string[];
  services: string[];
  summary: OutcomeSummary;
  days: DayStats[];
  /** The charts' days start after the first run's (perDay's window): the figures above count every run. */
  daysCut: boolean;
  /** Runs left out for being dated after now (a clock set wrong when they were written). */
  future: number;
  fingerprints: FingerprintStats[];
  /** Newest first. */
  rows: OutcomeRow[];
}

/** Rows of the runs table (the newest); the export holds every one. */
const RUNS_SHOWN = 200;

const minutes = (s: number) => (s >= 3600 ? `${Math.round((s / 3600) * 10) / 10}h` : `${Math.round(s / 60)}m`);

function Select(props: { name: string; label: string; options: string[]; value: string | undefined }) {
  return (
    <label>
      {props.label}
      <select name={props.name}>
        <option value="">all</option>
        {props.options.map((o) => (
          <option value={o} selected={o === props.value}>
            {o}
          </option>
        ))}
        {/* The filter in force, even when no run has it: the select must not read "all" then. */}
        {props.value && !props.options.includes(props.value) ? (
          <option value={props.value} selected>
            {`${props.value} (no runs)`}
          </option>
        ) : null}
      </select>
    </label>
  );
}

export function OutcomesPage(p: OutcomesPageProps) {
  const s = p.summary;
  const q = filterQuery(p.filter);
  return (
    <Layout title="Outcomes" here="/outcomes" viewer={p.viewer}>
      <h1>Outcomes</h1>
      <form class="filters card" method="get" action="/outcomes">
        <Select name="source" label="source" options={p.sources} value={p.filter.source} />
        <Select name="service" label="service" options={p.services} value={p.filter.service} />
        <label>
          from
          <input type="date" name="from" value={p.filter.from ?? ''} />
        </label>
        <label>
          to
          <input type="date" name="to" value={p.filter.to ?? ''} />
        </label>
        <button type="submit">Filter</button>
        <a class="btn" href="/outcomes">
          Reset
        </a>
        <a class="btn" id="export" href={`/outcomes/export${q}`}>
          Export JSONL
        </a>
      </form>
      {p.problems.length ? <p class="flash err">{p.problems.join('; ')}</p> : null}
      {p.future ? (
        <p class="muted" id="future-runs">
          Left out {p.future} run(s) dated after now (a clock set wrong when they were written).
        </p>
      ) : null}

      <div class="card" id="summary" data-runs={s.runs}>
        <span class="stat">
          runs<b>{fmtInt(s.runs)}</b>
        </span>
        <span class="stat">
          tickets<b>{fmtInt(s.tickets)}</b>
        </span>
        <span class="stat" data-clean={s.clean}>
          clean<b>{`${fmtInt(s.clean)} (${Math.round(s.rates.clean * 100)}%)`}</b>
        </span>
        <span class="stat">
          messy<b>{fmtInt(s.messy)}</b>
        </span>
        <span class="stat">
          failed<b>{fmtInt(s.failed)}</b>
        </span>
        {s.interrupted ? (
          <span class="stat" data-interrupted={s.interrupted}>
            interrupted<b>{fmtInt(s.interrupted)}</b>
          </span>
        ) : null}
        <span class="stat">
          median trigger → push<b>{fmtDuration(s.medianTriggerToPushS)}</b>
        </span>
        <span class="stat">
          cost per ticket<b>{fmtCost(s.costPerTicketUsd)}</b>
        </span>
        <span class="stat">
          cost per clean fix<b>{fmtCost(s.costPerCleanFixUsd)}</b>
        </span>
        {summaryNotes(s).map((n) => (
          <p class="muted summary-note">{n}</p>
        ))}
      </div>

      {s.runs ? (
        <>
          {p.daysCut && p.days.length ? (
            <p class="muted" id="chart-window">
              The charts show the last {p.days.length} days ({p.days[0]!.day} on); the figures above count every run in the filter.
            </p>
          ) : null}
          <div class="grid">
            <div class="card">
              <h2>Clean / messy / failed per day</h2>
              <ColumnChart
                id="chart-outcomes"
                title="Runs per day by outcome"
                mode="stacked"
                columns={p.days.map((d) => ({ label: d.day, values: { clean: d.clean, messy: d.messy, failed: d.failed } }))}
                series={[
                  { key: 'clean', label: 'clean', cls: 's-clean' },
                  { key: 'messy', label: 'messy', cls: 's-messy' },
                  { key: 'failed', label: 'failed', cls: 's-failed' },
                ]}
              />
            </div>
            <div class="card">
              <h2>Time from trigger to push (median per day)</h2>
              <ColumnChart
                id="chart-push-time"
                title="Median time from trigger to push per day"
                mode="grouped"
                format={minutes}
                columns={p.days.map((d) => ({ label: d.day, values: { push: d.medianPushS } }))}
                series={[{ key: 'push', label: 'median trigger → push', cls: 's-a' }]}
              />
            </div>
            <div class="card">
              <h2>Cost per ticket and per clean fix (per day)</h2>
              <ColumnChart
                id="chart-cost"
                title="Cost per ticket and per clean fix per day"
                mode="grouped"
                format={(v) => fmtCost(v)}
                columns={p.days.map((d) => ({ label: d.day, values: { ticket: d.costPerTicket, clean: d.costPerCleanFix } }))}
                series={[
                  { key: 'ticket', label: 'per ticket', cls: 's-a' },
                  { key: 'clean', label: 'per clean fix', cls: 's-b' },
                ]}
              />
            </div>
            <div class="card">
              <h2>Tokens per stage</h2>
              <BarList id="chart-tokens" title="Tokens per stage" format={fmtInt} bars={Object.entries(s.tokensPerStage).map(([stage, n]) => ({ label: stage, value: n }))} />
            </div>
          </div>
          <div class="card">
            <h2>Top fingerprints</h2>
            <BarList
              id="chart-fingerprints"
              title="Runs per fingerprint"
              format={fmtInt}
              bars={p.fingerprints.map((f) => ({
                label: f.fingerprint,
                value: f.runs,
                href: `/tickets/${f.tickets[f.tickets.length - 1]}`,
                note: `${f.service ?? 'no service'}; tickets ${f.tickets.map((t) => `#${t}`).join(', ')}; last ${f.lastOutcome}`,
              }))}
            />
          </div>
          <div class="card">
            <h2>Runs</h2>
            {p.rows.length > RUNS_SHOWN ? (
              <p class="muted" id="runs-cut">
                {`The latest ${RUNS_SHOWN} of ${fmtInt(p.rows.length)} runs; `}
                <a href={`/outcomes/export${q}`}>the export</a> has them all.
              </p>
            ) : null}
            <table id="runs">
              <thead>
                <tr>
                  <th>finished</th>
                  <th>ticket</th>
                  <th>source</th>
                  <th>service</th>
                  <th>outcome</th>
                  <th class="num">trigger → push</th>
                  <th class="num">cost</th>
                </tr>
              </thead>
              <tbody>
                {p.rows
                  .slice(0, RUNS_SHOWN)
                  .map((r) => (
                    <tr data-run={r.run_id}>
                      <td>
                        <Time iso={r.finished} />
                      </td>
                      <td>
                        <TicketLink id={r.ticket_id} />
                      </td>
                      <td>{r.trigger_source}</td>
                      <td>{r.service ?? ''}</td>
                      <td>
                        <OutcomeBadge outcome={r.outcome} />
                      </td>
                      <td class="num">{fmtDuration(r.trigger_to_push_s)}</td>
                      {/* A session stopped before it reported its cost: what is known, a lower bound. */}
                      <td class="num" title={costUnknown(r) ? 'at least: a session stopped before reporting its cost' : undefined}>
                        {`${costUnknown(r) ? '≥ ' : ''}${fmtCost(r.cost_usd)}`}
                      </td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </div>
        </>
      ) : (
        <p class="muted card">No runs match.</p>
      )}
    </Layout>
  );
}
