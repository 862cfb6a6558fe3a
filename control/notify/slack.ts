/**
 * Slack side of notifications: a reply in the reporter's thread for each notice, and
 * for a fix waiting on approval a message with Approve / Skip buttons (Block Kit,
 * https://docs.slack.dev/reference/block-kit/block-elements/button-element) that
 * control/triggers/slack-approvals.ts acts on.
 *
 * Ticket titles and failure reasons are untrusted text: escaped for mrkdwn so they
 * cannot ping people or forge links.
 */
import { ErrorCode, WebClient } from '@slack/web-api';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import { APPROVE_ACTION, isWebUrl, SKIP_ACTION } from '../triggers/slack-approvals.ts';
import { escapeMrkdwn, slackTrouble, withRateLimit } from '../triggers/slack-thread.ts';
import { toBoltLogger } from '../triggers/slack.ts';
import type { TicketNotice } from '../types.ts';
import { commitRef, type MessageOptions } from './format.ts';

/** Where a message goes: a thread, or (no threadTs) the channel itself. */
export interface SlackTarget {
  channel: string;
  threadTs?: string;
}

export interface SlackMessage {
  /** Shown in notifications and where blocks cannot be (Slack's fallback text). */
  text: string;
  blocks?: Array<Record<string, unknown>>;
}

/** A Slack reporter's `channel:thread_ts` (control/triggers/slack-thread.ts writes it). */
export function parseSlackThread(thread: string | undefined): SlackTarget | undefined {
  const m = /^([A-Z0-9]+):(\d+\.\d+)$/.exec(thread ?? '');
  return m ? { channel: m[1]!, threadTs: m[2]! } : undefined;
}

/** The thread reply (and, awaiting approval, the buttons) for a notice. */
export function slackMessage(notice: TicketNotice, opts: MessageOptions): SlackMessage {
  const t = notice.ticket;
  const id = `ticket #${t.id}`;
  const title = `“${escapeMrkdwn(t.title)}”`;
  const ref = commitRef(notice.commit, opts.commitUrl);
  const commit = ref ? (ref.url ? `<${ref.url}|\`${ref.short}\`>` : `\`${ref.short}\``) : undefined;
  const pr = notice.prUrl && isWebUrl(notice.prUrl) ? notice.prUrl : undefined;
  switch (notice.kind) {
    case 'fixed': {
      const where = pr
        ? `the fix is in pull request <${pr}>${commit ? ` (commit ${commit})` : ''}`
        : `the fix is live on \`${escapeMrkdwn(opts.stagingBranch)}\`${commit ? ` as commit ${commit}` : ''}`;
      return { text: `Fixed: ${id} ${title}: ${where}.` };
    }
    case 'failed':
      return { text: `Not fixed: ${id} ${title}: ${escapeMrkdwn(notice.reason ?? 'no reason recorded')}. A person needs to look at it.` };
    case 'awaiting_approval': {
      const on = [notice.branch ? `on \`${escapeMrkdwn(notice.branch)}\`` : '', commit ? `(commit ${commit})` : ''].filter(Boolean).join(' ');
      const text = `A fix for ${id} ${title} is ready${on ? ` ${on}` : ''} and waits for approval.`;
      // Without approvers nobody's click would act: point to the places that can.
      if (!opts.buttons) return { text: `${text} Approve or skip it on the dashboard or with \`bugbot approve ${t.id}\` / \`bugbot skip ${t.id}\`.` };
      const button = (label: string, action: string, style: 'primary' | 'danger') => ({
        type: 'button',
        action_id: action,
        text: { type: 'plain_text', text: label },
        style,
        // The run too: a click on an older request does not approve a newer fix.
        value: notice.run ? `${t.id}:${notice.run}` : String(t.id),
      });
      return {
        text,
        blocks: [
          { type: 'section', text: { type: 'mrkdwn', text } },
          { type: 'actions', block_id: `bugbot_approval_${t.id}`, elements: [button('Approve', APPROVE_ACTION, 'primary'), button('Skip', SKIP_ACTION, 'danger')] },
        ],
      };
    }
  }
}

/** Whether a Web API call failed on Slack's rate limit (HTTP 429): worth sending again later. */
export function rateLimited(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === ErrorCode.RateLimitedError;
}

/**
 * Waits before each new try of a message Slack could not take for now (out of reach, a 5xx,
 * its own trouble): the client's quick retries span seconds, Slack's incidents minutes.
 */
export const SLACK_RETRY_DELAYS_MS = [5_000, 30_000, 120_000];

/** Posts through the Web API with the bot token (chat:write). */
export class SlackNotifier {
  private readonly client: WebClient;
  private readonly logger: Logger;
  private readonly retryDelaysMs: readonly number[];

  constructor(opts: { token: string; apiUrl: string; logger: Logger; retryDelaysMs?: readonly number[] }) {
    this.logger = opts.logger;
    this.retryDelaysMs = opts.retryDelaysMs ?? SLACK_RETRY_DELAYS_MS;
    // Few quick retries: a notification is not worth holding a shutdown for. A rate limit
    // is waited out by withRateLimit (bounded, and cut short by `signal`), not by the
    // client, which would wait its Retry-After in full before each retry.
    this.client = new WebClient(opts.token, {
      slackApiUrl: opts.apiUrl,
      retryConfig: { retries: 2 },
      timeout: 10_000,
      rejectRateLimitedCalls: true,
      logger: toBoltLogger(opts.logger),
    });
  }

  /**
   * Post, waiting out a rate limit, and again after each of retryDelaysMs while Slack cannot
   * take it for now. `signal`: the notifier closing; a wait ends then, and the last error stands.
   */
  async post(to: SlackTarget, message: SlackMessage, signal: AbortSignal = new AbortController().signal): Promise<void> {
    const send = () =>
      this.client.chat.postMessage({
        channel: to.channel,
        text: message.text,
        ...(to.threadTs ? { thread_ts: to.threadTs } : {}),
        ...(message.blocks ? { blocks: message.blocks } : {}),
      });
    for (let attempt = 0; ; attempt++) {
      try {
        await withRateLimit(send, signal);
        return;
      } catch (err) {
        const delay = this.retryDelaysMs[attempt];
        if (delay === undefined || !slackTrouble(err) || signal.aborted) throw err;
        this.logger.warn('slack message not sent yet; trying again', { channel: to.channel, threadTs: to.threadTs, error: troubleText(err), attempt: attempt + 1, retryInSeconds: delay / 1000 });
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) throw err;
      }
    }
  }
}

/** Slack's error code (service_unavailable) when it gave one, else the message ("... statusCode = 503"). */
function troubleText(err: unknown): string {
  const e = err as { data?: { error?: unknown }; message?: unknown } | null;
  if (typeof e?.data?.error === 'string') return e.data.error;
  return typeof e?.message === 'string' ? e.message : String(err);
}
