/**
 * One ticket's story: its triggers and occurrences over time, the triage decision
 * and reason, every run with its phases (duration, tokens, tool calls, cost), the
 * sessions (what the agent did in each, from its stream log), the plan, the review
 * verdict, the diff side by side, branch and commit, the outcome, and links to related
 * tickets (regressions, same fingerprint, merged reports).
 */
import type { StageStats } from '../../outcomes/archive.ts';
import type { OccurrenceRow } from '../../queue/store.ts';
import { NOTIFICATIONS_LISTED, recipientText, type NotificationCounts, type NotificationSummary } from '../../queue/notifications.ts';
import type { Ticket } from '../../types.ts';
import { severityText } from '../../types.ts';
import { ColumnChart } from '../charts.tsx';
import type { LiveWorker, RunFiles } from '../data.ts';
import { DiffView } from '../diff-view.tsx';
import type { RunDiff } from '../git-diff.ts';
import { fmtCost, fmtDuration, fmtInt, Layout, OutcomeBadge, StateBadge, TicketLink, Time, type Viewer } from '../layout.tsx';
import type { Scrub } from '../data.ts';
import { TestResult, type TestCounts } from '../tests-view.tsx';
import type { RunTranscript, SessionEnd, TranscriptEntry, TranscriptSession } from '../../transcript.ts';
import { Shown } from '../hidden-chars.tsx';
import { TicketActions } from './actions.tsx';

export interface RunInfo {
  id: number;
  attempt: number;
  worker: number;
  state: string;
  startedAt: string;
  finishedAt: string | null;
  branch: string | null;
  commit: string | null;
  pushedTo: string | null;
  outcome: string | null;
  reason: string | null;
  stages: Array<[string, Partial<StageStats>]>;
  costUsd: number | null;
  tests: TestCounts | null;
}

export interface TicketPageProps {
  viewer: Viewer;
  ticket: Ticket;
  /** Redaction for agent and log text. */
  scrub: Scrub;
  /**
   * Secret values only, for bugbot's own text (audit details, delivery errors), which the
   * redactor would mangle. Not for a run's reason: it carries what git and the model wrote
   * (a push's stderr, file names, an API error), which is scrubbed like agent text.
   */
  mask: Scrub;
  /** The latest reports, newest first. */
  occurrences: OccurrenceRow[];
  /** Whether the ticket has older reports than `occurrences` holds. */
  occurrencesCut: boolean;
  timeline: Array<{ at: string; actor: string; action: string; detail: string | null }>;
  related: Array<{ id: number; relation: string; state: string }>;
  runs: RunInfo[];
  selected: RunInfo | null;
  /** The `?run=` asked for when the ticket has no such run (the page then shows its latest). */
  missingRun: string | null;
  files: RunFiles | null;
  /** What the agent did in the selected run's sessions (scrubbed and bounded: data.ts runTranscript). */
  transcript: RunTranscript | null;
  diff: RunDiff | { error: string } | null;
  live: LiveWorker | null;
  approvalsEnabled: boolean;
  /** What the reporters were told (the notifications outbox): the latest messages, oldest first. */
  notifications: NotificationSummary[];
  /** Every message, by state: how many `notifications` leaves out. */
  notificationCounts: NotificationCounts;
}

/**
 * A timeline's entries as drawn: every report merged into a ticket adds one (an email
 * flood, thousands), so past TIMELINE_HEAD + TIMELINE_TAIL only the first (how it began)
 * and the latest (its runs, approvals) are, with a line counting those between.
 */
const TIMELINE_HEAD = 20;
const TIMELINE_TAIL = 180;
/** Reporters named under "reported by"; the rest are counted. */
const REPORTERS_SHOWN = 20;

type TimelineEntry = TicketPageProps['timeline'][number];

function timelineShown(entries: TimelineEntry[]): Array<TimelineEntry | { hidden: number }> {
  if (entries.length <= TIMELINE_HEAD + TIMELINE_TAIL) return entries;
  return [...entries.slice(0, TIMELINE_HEAD), { hidden: entries.length - TIMELINE_HEAD - TIMELINE_TAIL }, ...entries.slice(-TIMELINE_TAIL)];
}

/** Occurrences per day (per hour when they span less than two days). */
function occurrenceColumns(occ: OccurrenceRow[]) {
  if (!occ.length) return [];
  const times = occ.map((o) => Date.parse(o.at)).filter(Number.isFinite);
  const span = Math.max(...times) - Math.min(...times);
  const hourly = span < 2 * 86_400_000;
  const key = (iso: string) => (hourly ? `${iso.slice(5, 10)} ${iso.slice(11, 13)}h` : iso.slice(0, 10));
  const by = new Map<string, number>();
  for (const o of [...occ].sort((a, b) => a.at.localeCompare(b.at))) by.set(key(o.at), (by.get(key(o.at)) ?? 0) + o.count);
  return [...by].map(([label, n]) => ({ label, values: { occurrences: n } }));
}

function Phases(props: { run: RunInfo }) {
  const { run } = props;
  if (!run.stages.length) return <p class="muted small">No phase numbers recorded for this run.</p>;
  const total = run.stages.reduce(
    (a, [, s]) => ({ d: a.d + (s.duration_s ?? 0), t: a.t + (s.tokens ?? 0), c: a.c + (s.tool_calls ?? 0), u: a.u + (s.cost_usd ?? 0) }),
    { d: 0, t: 0, c: 0, u: 0 },
  );
  return (
    <table class="phases">
      <thead>
        <tr>
          <th>phase</th>
          <th class="num">duration</th>
          <th class="num">tokens</th>
          <th class="num">tool calls</th>
          <th class="num">cost</th>
          <th>result</th>
        </tr>
      </thead>
      <tbody>
        {run.stages.map(([name, s]) => (
          <tr data-phase={name}>
            <td>{name}</td>
            <td class="num">{fmtDuration(s.duration_s)}</td>
            <td class="num">{fmtInt(s.tokens)}</td>
            <td class="num">{fmtInt(s.tool_calls)}</td>
            <td class="num">{fmtCost(s.cost_usd)}</td>
            <td class="small">{s.result ?? ''}{typeof s.edits === 'number' ? ` (${s.edits} review edits)` : ''}</td>
          </tr>
        ))}
        <tr>
          <th>total</th>
          <td class="num">{fmtDuration(total.d)}</td>
          <td class="num">{fmtInt(total.t)}</td>
          <td class="num">{fmtInt(total.c)}</td>
          <td class="num">{fmtCost(run.costUsd ?? total.u)}</td>
          <td></td>
        </tr>
      </tbody>
    </table>
  );
}

/**
 * The severity and the queue priority it gives. The priority is a sort key, not a date:
 * 2025 is "high" (2000) plus 25 for one occurrence (intake/triage.ts priorityOf), so the
 * number says where the ticket stands in the queue and the tooltip how it is made.
 */
function Severity(props: { ticket: Ticket }) {
  const t = props.ticket;
  if (t.state === 'settling') return <>{`${severityText(t)} (decided at triage)`}</>;
  return (
    <>
      {`${severityText(t)} `}
      <span class="priority" title="Order in the queue, highest first: 1000 per severity step above low, +500 when a person filed it, up to +499 for how often it occurred">
        {`(queue priority ${t.priority})`}
      </span>
    </>
  );
}

export function TicketPage(p: TicketPageProps) {
  const t = p.ticket;
  const s = p.scrub;
  const occCols = occurrenceColumns(p.occurrences);
  return (
    <Layout title={`#${t.id} ${t.title}`} here="" viewer={p.viewer}>
      <h1>
        #{t.id} {t.title} <StateBadge state={t.state} />
      </h1>
      {p.missingRun !== null ? (
        <p class="flash err" id="missing-run" role="status">
          {`Ticket #${t.id} has no run ${p.missingRun.slice(0, 40)}${p.selected ? `; showing its latest run, #${p.selected.id}` : ''}.`}
        </p>
      ) : null}
      <TicketActions viewer={p.viewer} ticket={t} approvalsEnabled={p.approvalsEnabled} returnTo={`/tickets/${t.id}`} run={p.selected?.id} />
      <div class="grid">
        <div class="card" id="triage">
          <h2>Triage</h2>
          <dl class="kv">
            <dt>decision</dt>
            <dd class="decision">{t.triageDecision ?? 'not yet (settling)'}</dd>
            <dt>reason</dt>
            <dd class="reason">{t.triageReason ?? '—'}</dd>
            <dt>severity</dt>
            <dd>
              <Severity ticket={t} />
            </dd>
            <dt>classification</dt>
            <dd>{t.classification ?? '—'}</dd>
            <dt>filed by</dt>
            <dd>{t.human ? 'a person' : 'automation'}{t.claimedBy ? `; claimed by ${t.claimedBy}` : ''}</dd>
          </dl>
        </div>
        <div class="card" id="trigger">
          <h2>Trigger</h2>
          <dl class="kv">
            <dt>source</dt>
            <dd>{`${t.source} (${t.kind})`}</dd>
            <dt>service</dt>
            <dd>{t.service ?? '—'}</dd>
            <dt>route</dt>
            <dd>{t.route ?? '—'}</dd>
            <dt>fingerprint</dt>
            <dd class="small">{t.fingerprint}</dd>
            <dt>first / last seen</dt>
            <dd>
              <Time iso={t.firstSeen} /> / <Time iso={t.lastSeen} />
            </dd>
            <dt>occurrences</dt>
            <dd>{`${fmtInt(t.count)}${t.users ? `, ${fmtInt(t.users)} users` : ''}`}</dd>
            {t.reporters.length ? (
              <>
                <dt>reported by</dt>
                <dd>
                  {t.reporters
                    .slice(0, REPORTERS_SHOWN)
                    .map((r) => s(`${r.kind} ${r.id}`))
                    .join(', ') + (t.reporters.length > REPORTERS_SHOWN ? ` and ${fmtInt(t.reporters.length - REPORTERS_SHOWN)} more` : '')}
                </dd>
              </>
            ) : null}
          </dl>
          <pre class="message">{t.message}</pre>
          {t.stack ? <pre class="stack">{t.stack}</pre> : null}
        </div>
      </div>

      <div class="grid">
        <div class="card" id="occurrences">
          <h2>Occurrences over time</h2>
          {occCols.length ? (
            <ColumnChart id="chart-occurrences" title="Occurrences" columns={occCols} series={[{ key: 'occurrences', label: 'occurrences', cls: 's-occ' }]} mode="stacked" />
          ) : (
            <p class="muted">No occurrences recorded.</p>
          )}
          {p.occurrencesCut && p.occurrences.length ? (
            <p class="muted small" id="occurrences-cut">
              {`The chart draws the latest ${fmtInt(p.occurrences.length)} reports, since `}
              <Time iso={p.occurrences[p.occurrences.length - 1]!.at} />
              {`; the ticket counts ${fmtInt(t.count)} occurrences in all.`}
            </p>
          ) : null}
          <table>
            <tbody>
              {p.occurrences.slice(0, 15).map((o) => (
                <tr>
                  <td>
                    <Time iso={o.at} />
                  </td>
                  <td>{o.source}</td>
                  <td class="num">{`×${o.count}`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div class="card" id="timeline">
          <h2>Timeline</h2>
          <ol class="timeline">
            {timelineShown(p.timeline).map((e) =>
              'hidden' in e ? (
                <li class="muted" id="timeline-cut">{`${fmtInt(e.hidden)} entries not shown here (/api/tickets/${t.id} lists every one)`}</li>
              ) : (
                <li data-action={e.action}>
                  <Time iso={e.at} />
                  <b>{e.action}</b> <span class="muted">{`by ${s(e.actor)}`}</span>
                  {e.detail ? <div class="small">{p.mask(e.detail)}</div> : null}
                </li>
              ),
            )}
          </ol>
          {p.related.length ? (
            <>
              <h3>Related tickets</h3>
              <ul id="related">
                {p.related.map((r) => (
                  <li data-relation={r.relation}>
                    {`${r.relation.replace(/_/g, ' ')}: `}
                    <TicketLink id={r.id} /> <StateBadge state={r.state} />
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          {p.notifications.length ? (
            <>
              <h3>Reporters told</h3>
              {p.notificationCounts.total > p.notifications.length ? (
                <p class="muted" id="notifications-cut">
                  {`${fmtInt(p.notificationCounts.total)} messages: ${fmtInt(p.notificationCounts.sent)} sent, ${fmtInt(p.notificationCounts.failed)} failed, ${fmtInt(p.notificationCounts.pending)} waiting; the latest ${fmtInt(p.notifications.length)} below (/api/tickets/${t.id} lists the latest ${NOTIFICATIONS_LISTED})`}
                </p>
              ) : null}
              <ul id="notifications">
                {p.notifications.map((n) => (
                  <li data-state={n.state}>
                    {`${n.kind.replace(/_/g, ' ')} → ${recipientText(n.to)}: `}
                    <b>{n.state}</b>
                    {n.attempts > 1 ? <span class="muted">{` after ${n.attempts} tries`}</span> : null}
                    {n.error ? <span class="small">{` (${p.mask(n.error)})`}</span> : null}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </div>
      </div>

      {p.live ? (
        <div class="card" id="live-run">
          <h2>Running now</h2>
          <p>{`worker ${p.live.worker}, port ${p.live.port ?? '—'}: ${p.live.phase ?? 'starting'} for ${fmtDuration(p.live.elapsed_s)}, ${fmtInt(p.live.tokens)} tokens, ${fmtCost(p.live.cost_usd)}`}</p>
          {p.live.phaseTail.length ? <pre class="tail">{p.live.phaseTail.join('\n')}</pre> : null}
        </div>
      ) : null}

      <div class="card" id="runs">
        <h2>Runs</h2>
        {p.runs.length ? (
          <table>
            <thead>
              <tr>
                <th>run</th>
                <th>started</th>
                <th>state</th>
                <th>outcome</th>
                <th>branch</th>
                <th class="num">cost</th>
              </tr>
            </thead>
            <tbody>
              {p.runs.map((r) => (
                <tr data-run={r.id} class={p.selected?.id === r.id ? 'selected' : undefined}>
                  <td>
                    <a href={`/tickets/${t.id}?run=${r.id}`}>{`#${r.id} (attempt ${r.attempt}, worker ${r.worker})`}</a>
                  </td>
                  <td>
                    <Time iso={r.startedAt} />
                  </td>
                  <td>{r.state}</td>
                  <td>{r.outcome ? <OutcomeBadge outcome={r.outcome} /> : '—'}</td>
                  <td class="small">{r.branch ?? '—'}</td>
                  <td class="num">{fmtCost(r.costUsd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p class="muted">Not run yet.</p>
        )}
      </div>

      {p.selected ? <RunDetail ticketId={t.id} run={p.selected} files={p.files} transcript={p.transcript} diff={p.diff} scrub={s} mask={p.mask} /> : null}
    </Layout>
  );
}

function RunDetail(props: { ticketId: number; run: RunInfo; files: RunFiles | null; transcript: RunTranscript | null; diff: RunDiff | { error: string } | null; scrub: Scrub; mask: Scrub }) {
  const { run, files } = props;
  return (
    <div id="run-detail">
      <div class="grid">
        <div class="card" id="phases">
          <h2>{`Run #${run.id}: phases`}</h2>
          <Phases run={run} />
          <h3>Outcome</h3>
          <dl class="kv" id="outcome">
            <dt>outcome</dt>
            <dd>{run.outcome ? <OutcomeBadge outcome={run.outcome} /> : run.state}</dd>
            <dt>reason</dt>
            <dd>{run.reason ? props.scrub(run.reason) : '—'}</dd>
            <dt>branch</dt>
            <dd class="branch">{run.branch ?? '—'}</dd>
            <dt>commit</dt>
            <dd class="commit">{run.commit ?? '—'}</dd>
            <dt>pushed to</dt>
            <dd>{run.pushedTo ?? '—'}</dd>
            <dt>tests</dt>
            <dd>
              <TestResult tests={run.tests} />
            </dd>
            <dt>finished</dt>
            <dd>
              <Time iso={run.finishedAt} />
            </dd>
          </dl>
        </div>
        <div class="card" id="verdict">
          <h2>Review verdict</h2>
          {files?.verdict ? (
            <>
              <p>
                <b class="verdict">{files.verdict.verdict}</b>
                {files.verdict.edits !== null ? <span class="muted">{` — ${files.verdict.edits} edits by the reviewer`}</span> : null}
              </p>
              {files.verdict.reasons.length ? (
                <ul>
                  {files.verdict.reasons.map((r) => (
                    <li>{r}</li>
                  ))}
                </ul>
              ) : null}
            </>
          ) : (
            <p class="muted">No verdict (the review phase did not run or did not finish).</p>
          )}
        </div>
      </div>
      <Sessions ticketId={props.ticketId} run={run} transcript={props.transcript} />
      <div class="card" id="plan">
        <h2>plan.md</h2>
        {files?.plan ? <pre class="plan">{files.plan.text + (files.plan.truncated ? '\n…' : '')}</pre> : <p class="muted">No plan (research did not write one).</p>}
      </div>
      <div class="card" id="diff">
        <h2>Diff</h2>
        <DiffView diff={props.diff} scrub={props.scrub} mask={props.mask} />
      </div>
    </div>
  );
}

/**
 * Each session of the run, collapsed to its summary line (phase, how it ended, turns, cost,
 * time), opening to what the agent did. Every string was scrubbed and cut when it was read
 * (transcript.ts); JSX escapes it.
 */
function Sessions(props: { ticketId: number; run: RunInfo; transcript: RunTranscript | null }) {
  const t = props.transcript;
  let none: string | null = null;
  if (!t || !t.folder) none = "No session logs: the run's folder is not there any more (retention removes finished runs' folders after retention.runFoldersDays).";
  else if (!t.sessions.length) none = props.run.state === 'running' ? 'No session has started yet.' : 'No session logs: the run ended before its first session.';
  return (
    <div class="card" id="sessions">
      <h2>Sessions</h2>
      {none !== null || !t ? (
        <p class="muted">{none}</p>
      ) : (
        t.sessions.map((s, i) => (
          // A running run's last session is the one whose log is being written: no end yet is no failure.
          <Session session={s} running={props.run.state === 'running' && i === t.sessions.length - 1} cli={`bugbot transcript ${props.ticketId} --run ${props.run.id} --phase ${s.label}`} />
        ))
      )}
    </div>
  );
}

function endText(e: SessionEnd | null, cut: boolean): string {
  if (!e) return cut ? 'no end found (log cut)' : 'no end recorded';
  return e.subtype;
}

function Session(props: { session: TranscriptSession; running: boolean; cli: string }) {
  const s = props.session;
  const e = s.end;
  const figures = e ? [`${e.turns ?? '?'} turns`, fmtCost(e.costUsd), fmtDuration(e.durationMs === null ? null : e.durationMs / 1000)] : [];
  return (
    <details class="session" data-phase={s.label}>
      <summary>
        <b>{s.label}</b> {!e && props.running ? <span class="end end-running">running</span> : <span class={`end${!e || e.isError ? ' end-bad' : ''}`}>{endText(e, s.cut)}</span>}{' '}
        <span class="muted small">{[...figures, `${fmtInt(s.toolCalls)} tool calls`].join(' · ')}</span>
      </summary>
      {s.cut ? (
        <p class="muted small session-cut">{`The log is ${fmtInt(s.bytes)} bytes; only its first ${fmtInt(s.readBytes)} were read: what the session did after them is not shown${e ? ' (its end is from the log\'s last lines)' : ''}.`}</p>
      ) : null}
      <ol class="transcript">
        {s.entries.map((x) => (
          <Entry entry={x} />
        ))}
      </ol>
      {s.entriesCut ? <p class="muted small session-cut">{`${fmtInt(s.entriesCut)} more entries not shown here (${props.cli} lists more).`}</p> : null}
      {s.unparseable ? <p class="muted small">{`${fmtInt(s.unparseable)} lines of ${s.file} were not stream-json events: skipped.`}</p> : null}
    </details>
  );
}

function Entry(props: { entry: TranscriptEntry }) {
  const e = props.entry;
  switch (e.kind) {
    case 'text':
      return (
        <li class="t-text">
          <span class="t-kind">said</span>
          <div class="t-body">
            <Shown text={e.text} />
          </div>
        </li>
      );
    case 'tool_call':
      return (
        <li class="t-call">
          <span class="t-kind">call</span>
          <span>
            <code>{e.tool}</code> <span class="t-arg"><Shown text={e.arg} /></span>
          </span>
        </li>
      );
    case 'tool_result':
      return (
        <li class={e.isError ? 't-result t-error' : 't-result'}>
          <span class="t-kind">{e.isError ? 'error' : 'result'}</span>
          <pre class="t-out">
            <Shown text={(e.lines.length ? e.lines.join('\n') : '(no output)') + (e.more ? `\n… ${e.more} more lines` : '')} />
          </pre>
        </li>
      );
    case 'denial':
      return (
        <li class="t-denial">
          <span class="t-kind">denied</span>
          <span>
            <code>{e.tool}</code> <span class="t-arg"><Shown text={e.arg} /></span>
          </span>
        </li>
      );
    case 'end':
      return (
        <li class={e.isError ? 't-end t-error' : 't-end'}>
          <span class="t-kind">end</span>
          <span>{`${e.subtype} after ${e.turns ?? '?'} turns, ${fmtCost(e.costUsd)}, ${fmtDuration(e.durationMs === null ? null : e.durationMs / 1000)}${e.errors.length ? `: ${e.errors.join('; ')}` : ''}`}</span>
        </li>
      );
  }
}
