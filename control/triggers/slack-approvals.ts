/**
 * Approve / Skip buttons (Block Kit `block_actions`) on the approval requests that
 * control/notify posts. The request itself was verified like any other Slack request
 * (signature and timestamp window, slack-receiver.ts; Socket Mode: the app token's
 * connection). What this adds is who may act: only the Slack user ids listed in
 * `triggers.slack.approvers`. Anyone else's click changes nothing and gets an ephemeral
 * message saying why (https://docs.slack.dev/reference/methods/chat.postEphemeral).
 *
 * The click is acknowledged before any of this runs (Slack wants the 200 within 3
 * seconds; an approval may merge and push), so the answer goes out through the Web
 * API: the request's buttons are replaced by the outcome (chat.update) so nobody acts
 * on a decided request, and failures are told to the clicker alone.
 */
import type { WebClient } from '@slack/web-api';
import type { Logger } from '../log.ts';
import type { ApprovalActions, ApprovalResult } from '../types.ts';
import { escapeMrkdwn, withRateLimit } from './slack-thread.ts';

/** The buttons' action_ids; their value is `<ticket>:<run>` (the run whose fix the message shows). */
export const APPROVE_ACTION = 'bugbot_approve';
export const SKIP_ACTION = 'bugbot_skip';

/** One click on an Approve or Skip button, from a `block_actions` payload. */
export interface ApprovalClick {
  action: 'approve' | 'skip';
  ticketId: number;
  /** The run whose fix the request showed (buttons sent before runs were named carry none). */
  run?: number;
  /** Who clicked. */
  user: string;
  channel: string;
  /** The message that carries the buttons. */
  messageTs?: string;
  /** The thread that message is in (or starts). */
  threadTs?: string;
}

export interface ApprovalClickDeps {
  client: WebClient;
  approvers: readonly string[];
  /** Undefined when this control plane has no approvals (the click is then refused, saying so). */
  approvals: ApprovalActions | undefined;
  logger: Logger;
  /** Aborted when the trigger stops: a wait on Slack's rate limit ends then. */
  signal?: AbortSignal;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** An http(s) URL that cannot break out of Slack's `<url|label>` link syntax. */
export const isWebUrl = (v: string): boolean => /^https?:\/\/[^\s<>|]+$/.test(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * The click in a `block_actions` payload
 * (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload), or why
 * it is not one of ours / cannot be answered.
 */
export function parseApprovalClick(body: unknown): ApprovalClick | { problem: string } {
  if (!isRecord(body) || body.type !== 'block_actions') return { problem: 'not a block_actions payload' };
  const action = Array.isArray(body.actions) ? body.actions.find((a) => isRecord(a) && (a.action_id === APPROVE_ACTION || a.action_id === SKIP_ACTION)) : undefined;
  if (!isRecord(action)) return { problem: 'no Approve or Skip action in the payload' };
  const user = isRecord(body.user) ? str(body.user.id) : undefined;
  if (!user) return { problem: 'block_actions payload without user.id' };
  const container = isRecord(body.container) ? body.container : {};
  const message = isRecord(body.message) ? body.message : {};
  const channel = (isRecord(body.channel) ? str(body.channel.id) : undefined) ?? str(container.channel_id);
  if (!channel) return { problem: 'block_actions payload without a channel to answer in' };
  const value = str(action.value);
  const m = value ? /^([1-9]\d{0,15})(?::([1-9]\d{0,15}))?$/.exec(value) : null;
  if (!m) return { problem: `button value ${JSON.stringify(action.value ?? null)} is not a ticket id` };
  const messageTs = str(container.message_ts) ?? str(message.ts);
  return {
    action: action.action_id === APPROVE_ACTION ? 'approve' : 'skip',
    ticketId: Number(m[1]),
    ...(m[2] ? { run: Number(m[2]) } : {}),
    user,
    channel,
    messageTs,
    threadTs: str(container.thread_ts) ?? str(message.thread_ts) ?? messageTs,
  };
}

/** Act on a click: refuse non-approvers (saying why), else approve or skip and show the result. */
export async function handleApprovalClick(click: ApprovalClick, deps: ApprovalClickDeps): Promise<void> {
  const { client, logger } = deps;
  const signal = deps.signal ?? new AbortController().signal;
  const fields = { ticket: click.ticketId, action: click.action, user: click.user, channel: click.channel };
  const tell = async (text: string): Promise<void> => {
    await withRateLimit(() => client.chat.postEphemeral({ channel: click.channel, user: click.user, text, ...(click.threadTs ? { thread_ts: click.threadTs } : {}) }), signal);
  };

  if (!deps.approvers.includes(click.user)) {
    logger.warn('slack approval click from someone who is not an approver: nothing done', fields);
    await tell(
      `Nothing done: <@${click.user}> is not an approver. Only the Slack users listed in \`triggers.slack.approvers\` ` +
        `can approve or skip fixes from Slack (ticket #${click.ticketId} is unchanged).`,
    );
    return;
  }
  if (!deps.approvals) {
    logger.warn('slack approval click, but this control plane has no approvals', fields);
    await tell(`Nothing done: this bugbot does not take approvals from Slack (ticket #${click.ticketId} is unchanged).`);
    return;
  }

  const actor = `slack:${click.user}`;
  let result: ApprovalResult;
  try {
    result = click.action === 'approve' ? await deps.approvals.approve(click.ticketId, actor, { run: click.run }) : deps.approvals.skip(click.ticketId, actor, 'skipped from Slack', { run: click.run });
  } catch (err) {
    logger.error('slack approval failed', { ...fields, error: (err as Error).message });
    await tell(`Could not ${click.action} ticket #${click.ticketId}: ${escapeMrkdwn((err as Error).message)}`);
    return;
  }
  logger.info('slack approval click', { ...fields, ok: result.ok, state: result.state });
  if (!result.ok) {
    await tell(`Nothing done for ticket #${click.ticketId}: ${escapeMrkdwn(result.message)}`);
    return;
  }

  const pr = result.prUrl && isWebUrl(result.prUrl) && !result.message.includes(result.prUrl) ? ` <${result.prUrl}|pull request>` : '';
  const text = `${click.action === 'approve' ? 'Approved' : 'Skipped'} by <@${click.user}>: ${escapeMrkdwn(result.message)}${pr}`;
  if (click.messageTs) {
    try {
      // Replace the request (and its buttons) with what was decided.
      await withRateLimit(() => client.chat.update({ channel: click.channel, ts: click.messageTs!, text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] }), signal);
      return;
    } catch (err) {
      logger.warn('could not update the approval request; replying in its thread instead', { ...fields, error: (err as Error).message });
    }
  }
  await withRateLimit(() => client.chat.postMessage({ channel: click.channel, text, ...(click.threadTs ? { thread_ts: click.threadTs } : {}) }), signal);
}
