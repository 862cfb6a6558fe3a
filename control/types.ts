/**
 * Shared vocabulary of the control plane: what every trigger produces and what the
 * queue stores. See docs/architecture.md for how the pieces connect.
 */

export const TRIGGER_SOURCES = ['grafana', 'alertmanager', 'slack', 'email', 'latency', 'logfile', 'manual'] as const;
export type TriggerSource = (typeof TRIGGER_SOURCES)[number];

export const EVENT_KINDS = ['error', 'latency', 'report'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export interface Reporter {
  kind: 'slack' | 'email';
  /** Slack user id or email address of the person who reported it. */
  id: string;
  /** Slack `channel:thread_ts`, or the email Message-ID to reply to. */
  thread?: string;
  /** Email address for the reply (email reporters only). */
  address?: string;
  /** Email subject, kept for threading the reply. */
  subject?: string;
  /** The message's own References (the thread before it), for the reply's (RFC 5322 §3.6.4). */
  references?: string;
  /** Email from a program (Auto-Submitted, Precedence: bulk/list/junk, List-Id): never answered (RFC 3834 §2). */
  automatic?: true;
}

/** One occurrence (or a batch of them) of something that may be a bug. */
export interface TriggerEvent {
  source: TriggerSource;
  kind: EventKind;
  service?: string;
  /** One line. */
  title: string;
  /** Error message or the person's text. Untrusted. */
  message: string;
  stack?: string;
  /** e.g. "POST /api/pets/123"; templated during fingerprinting. */
  route?: string;
  labels: Record<string, string>;
  /** Occurrences this event represents. */
  count: number;
  /** Affected users, if known. */
  users?: number;
  /** One-way hashed user ids, never raw ids. */
  userHashes?: string[];
  firstSeen: string;
  lastSeen: string;
  reporter?: Reporter;
  /** A person filed it (Slack, email, manual). */
  human: boolean;
  /** Idempotency key within the source: Slack event_id, Mailgun token, alert fingerprint+startsAt... */
  sourceEventId: string;
  /** 'resolved' events close an alert; they never open a ticket. */
  status?: 'firing' | 'resolved';
  /** Latency details when kind is 'latency'. */
  latency?: { p95Ms: number; thresholdMs: number };
}

export const TICKET_STATES = [
  'settling',
  'queued',
  'dropped',
  'deferred',
  'running',
  'awaiting_approval',
  'pushed',
  'failed',
  'needs_human',
  'resolved',
  'regressed',
] as const;
export type TicketState = (typeof TICKET_STATES)[number];

/** States in which a ticket still absorbs new occurrences of its fingerprint. */
export const OPEN_STATES: readonly TicketState[] = [
  'settling',
  'queued',
  'deferred',
  'running',
  'awaiting_approval',
  'needs_human',
];

/** States that mean "a fix went out": a later occurrence is a regression. */
/**
 * Why a person's name cannot be an actor's (the API's X-Bugbot-User, the CLI's --by), or
 * null. The names bugbot gives its own actors (auto-approve, github, slack:…, dashboard:…)
 * are refused: a caller could otherwise record its decision as the rules', GitHub's or a
 * Slack user's.
 */
export function actorNameProblem(name: string): string | null {
  if (!name || name.length > 100 || /\p{Cc}/u.test(name)) return 'a name of 1 to 100 characters without control characters';
  if (/^(?:auto-approve|github$|slack:|dashboard:)/i.test(name)) return `"${name.slice(0, 40)}" is a name bugbot gives its own actors`;
  return null;
}

/** Why a ticket a person claimed waits (triage's decision, and a run that sends one back). */
export function claimedReason(who: string): string {
  return `claimed by ${who}: a person is on it`;
}

export const FIXED_STATES: readonly TicketState[] = ['pushed', 'resolved'];

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** A ticket's severity as people read it: triage decides it, so it is "pending" while the ticket settles. */
export function severityText(t: { state: TicketState; severity: Severity }): string {
  return t.state === 'settling' ? 'pending' : t.severity;
}

/** The same with its priority, or when it will be decided (a ticket's page). */
export function severityDetail(t: { state: TicketState; severity: Severity; priority: number }): string {
  return `${severityText(t)} (${t.state === 'settling' ? 'decided at triage' : `queue priority ${t.priority}`})`;
}

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

export const CLASSIFICATIONS = ['bug', 'feature', 'question', 'noise'] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];

export interface Ticket {
  id: number;
  fingerprint: string;
  source: TriggerSource;
  kind: EventKind;
  service: string | null;
  title: string;
  message: string;
  stack: string | null;
  route: string | null;
  labels: Record<string, string>;
  state: TicketState;
  severity: Severity;
  priority: number;
  count: number;
  users: number;
  human: boolean;
  claimedBy: string | null;
  reporter: Reporter | null;
  reporters: Reporter[];
  classification: Classification | null;
  triageDecision: string | null;
  triageReason: string | null;
  regressionOf: number | null;
  firstSeen: string;
  lastSeen: string;
  settleDeadline: string | null;
  attempt: number;
  alertResolvedAt: string | null;
  pushedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** What a person's approve / skip / requeue did (dashboard, CLI, API or Slack button). */
export interface ApprovalResult {
  ok: boolean;
  ticketId: number;
  /** The ticket's state afterwards. */
  state: TicketState;
  /** One line for a person: what happened, or why nothing did. */
  message: string;
  commit?: string;
  prUrl?: string;
  /**
   * Why ok is false: no such ticket (`state` is then meaningless), a state that does not
   * allow the action, another approval in flight, a merge conflict (the ticket went to
   * needs_human), or a merge / pull request that failed (the ticket still waits).
   */
  failure?: 'not_found' | 'state' | 'busy' | 'conflict' | 'error';
}

/** The approval actions other parts (dashboard, Slack buttons, API) call. */
export interface ApprovalActions {
  /**
   * `run`: the run whose fix the person looked at; the approval is refused when the
   * ticket's latest fix is another run's (requeued since, say).
   */
  approve(ticketId: number, actor: string, opts?: { run?: number }): Promise<ApprovalResult>;
  /** `run`: as for approve; a skip meant for an earlier run's fix does not drop a newer one. */
  skip(ticketId: number, actor: string, reason?: string, opts?: { run?: number }): ApprovalResult;
  /**
   * `run`: the ticket's latest run when the person decided; refused when it ran again since
   * (a Requeue on a stale page would throw away a newer fix waiting for approval).
   */
  requeue(ticketId: number, actor: string, opts?: { run?: number }): ApprovalResult;
}

/** Something a reporter should hear about: sent by control/notify to Slack threads and email. */
export interface TicketNotice {
  kind: 'fixed' | 'failed' | 'awaiting_approval';
  ticket: Ticket;
  /** Commit on the staging branch (fixed) or on the bot branch (awaiting_approval). */
  commit?: string;
  /** The run whose fix waits for approval (awaiting_approval). */
  run?: number;
  branch?: string;
  prUrl?: string;
  reason?: string;
}
