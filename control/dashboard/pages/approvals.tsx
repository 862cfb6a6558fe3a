/**
 * Approvals: every fix waiting on a person (awaiting_approval) and every ticket that
 * needs one (needs_human), each with its diff in view and its buttons.
 */
import type { Ticket } from '../../types.ts';
import type { RunFiles, Scrub } from '../data.ts';
import { DiffView } from '../diff-view.tsx';
import type { RunDiff } from '../git-diff.ts';
import { Layout, OutcomeBadge, StateBadge, TicketLink, Time, type Viewer } from '../layout.tsx';
import { TestResult, type TestCounts } from '../tests-view.tsx';
import { TicketActions } from './actions.tsx';

export interface ApprovalItem {
  ticket: Ticket;
  run: {
    id: number;
    branch: string | null;
    commit: string | null;
    reason: string | null;
    finishedAt: string | null;
    outcome?: string | null;
    tests?: TestCounts | null;
  } | null;
  files: RunFiles | null;
  /** 'elsewhere': past the page's first DIFFS_SHOWN runs, the diff is on the ticket's page. */
  diff: RunDiff | { error: string } | null | 'elsewhere';
}

export function ApprovalsPage(props: { viewer: Viewer; items: ApprovalItem[]; scrub: Scrub; mask: Scrub; approvalsEnabled: boolean; more: number }) {
  const waiting = props.items.filter((i) => i.ticket.state === 'awaiting_approval');
  const human = props.items.filter((i) => i.ticket.state === 'needs_human');
  return (
    <Layout title="Approvals" here="/approvals" viewer={props.viewer}>
      <h1>Approvals</h1>
      {props.approvalsEnabled ? null : (
        <p class="flash err">Approve, skip and requeue are not available in this process (no approvals backend); cancel still works.</p>
      )}
      <h2>{`Awaiting approval (${waiting.length})`}</h2>
      {waiting.length ? waiting.map((i) => <Item item={i} {...props} />) : <p class="muted">Nothing waits for approval.</p>}
      <h2>{`Needs a person (${human.length})`}</h2>
      {human.length ? human.map((i) => <Item item={i} {...props} />) : <p class="muted">Nothing needs a person.</p>}
      {props.more ? <p class="muted">{`${props.more} more not shown; handle these first.`}</p> : null}
    </Layout>
  );
}

function Item(props: { item: ApprovalItem; viewer: Viewer; scrub: Scrub; mask: Scrub; approvalsEnabled: boolean }) {
  const { ticket: t, run, files, diff } = props.item;
  return (
    <div class="card approval" id={`approval-${t.id}`} data-ticket={t.id}>
      <h3>
        <TicketLink id={t.id} title={t.title} /> <StateBadge state={t.state} /> <span class="muted small">{`${t.severity}, ${t.source}${t.service ? `, ${t.service}` : ''}`}</span>
      </h3>
      {run ? (
        <dl class="kv small">
          <dt>branch</dt>
          <dd class="branch">{run.branch ?? '—'}</dd>
          <dt>commit</dt>
          <dd class="commit">{run.commit ?? '—'}</dd>
          <dt>outcome</dt>
          <dd>{run.outcome ? <OutcomeBadge outcome={run.outcome} /> : '—'}</dd>
          <dt>why</dt>
          <dd>{run.reason ? props.scrub(run.reason) : '—'}</dd>
          <dt>tests</dt>
          <dd>
            <TestResult tests={run.tests ?? null} />
          </dd>
          <dt>finished</dt>
          <dd>
            <Time iso={run.finishedAt} />
          </dd>
          {files?.verdict ? (
            <>
              <dt>review</dt>
              <dd>{`${files.verdict.verdict}${files.verdict.reasons.length ? `: ${files.verdict.reasons.join('; ')}` : ''}`}</dd>
            </>
          ) : null}
        </dl>
      ) : (
        <p class="muted">No run recorded.</p>
      )}
      <TicketActions viewer={props.viewer} ticket={t} approvalsEnabled={props.approvalsEnabled} returnTo="/approvals" run={run?.id} />
      {files?.plan ? (
        <details>
          <summary>plan.md</summary>
          <pre class="plan">{files.plan.text}</pre>
        </details>
      ) : null}
      {diff === 'elsewhere' ? (
        <p class="muted">
          The diff is on <a href={`/tickets/${t.id}`}>{`ticket ${t.id}`}</a>'s page (this page shows the first few).
        </p>
      ) : (
        <DiffView diff={diff} scrub={props.scrub} mask={props.mask} />
      )}
    </div>
  );
}
