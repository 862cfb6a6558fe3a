/**
 * A ticket's buttons: approve / skip / requeue (the approval actions) and cancel.
 * Each is a POST form carrying the session's CSRF token and where to come back to.
 */
import type { Ticket, TicketState } from '../../types.ts';
import { CsrfField, type Viewer } from '../layout.tsx';

export const ACTIONS = ['approve', 'skip', 'requeue', 'cancel'] as const;
export type Action = (typeof ACTIONS)[number];

/** The states in which each action is offered (the backend decides for good). */
const OFFERED: Record<Action, readonly TicketState[]> = {
  approve: ['awaiting_approval'],
  skip: ['awaiting_approval', 'needs_human'],
  requeue: ['awaiting_approval', 'needs_human', 'failed', 'dropped'],
  cancel: ['settling', 'queued', 'deferred', 'running', 'awaiting_approval', 'needs_human'],
};

export function offered(action: Action, state: TicketState): boolean {
  return OFFERED[action].includes(state);
}

/**
 * `run`: the run whose fix the page shows. Approve, Skip, Requeue and Cancel carry it, and
 * are refused when the ticket ran again by the time they are clicked (requeued meanwhile): a
 * stale page's Requeue or Cancel would otherwise throw away a newer fix waiting for approval.
 */
export function TicketActions(props: { viewer: Viewer; ticket: Ticket; approvalsEnabled: boolean; returnTo: string; run?: number }) {
  const { ticket: t } = props;
  const shown = ACTIONS.filter((a) => offered(a, t.state));
  if (!shown.length) return null;
  const runField = props.run !== undefined ? <input type="hidden" name="run" value={String(props.run)} /> : null;
  const form = (action: Action, label: string, cls?: string, extra?: unknown) => {
    const needsBackend = action !== 'cancel' && !props.approvalsEnabled;
    const needsKey = !props.viewer.mayAct;
    return (
      <form method="post" action={`/approvals/${t.id}/${action}`} data-action={action}>
        <CsrfField viewer={props.viewer} />
        <input type="hidden" name="return_to" value={props.returnTo} />
        {extra}
        <button
          type="submit"
          class={cls}
          disabled={needsBackend || needsKey}
          title={needsKey ? 'open the /login?key=... link that bugbot start printed to act here' : needsBackend ? 'approvals are not available in this process' : undefined}
        >
          {label}
        </button>
      </form>
    );
  };
  return (
    <div class="actions" data-ticket={t.id}>
      {shown.includes('approve') ? form('approve', 'Approve', 'primary', runField) : null}
      {shown.includes('skip')
        ? form('skip', 'Skip', undefined, [runField, <input type="text" name="reason" placeholder="reason (optional)" maxlength={500} />])
        : null}
      {shown.includes('requeue') ? form('requeue', 'Requeue', undefined, runField) : null}
      {shown.includes('cancel') ? form('cancel', 'Cancel', 'danger', runField) : null}
    </div>
  );
}
