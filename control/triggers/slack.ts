/**
 * Slack trigger: a person mentions the bot in a thread (`app_mention`), the thread
 * becomes a report, and the bot answers in the thread with what it did.
 *
 * Built on a Bolt `App` so Bolt's listener machinery (authorize, ignoreSelf,
 * per-event WebClient) handles `app_mention`. Events arrive either over HTTP at
 * POST /slack/events (slack-receiver.ts, on the Hono app) or, with
 * `triggers.slack.socketMode`, over Bolt's SocketModeReceiver.
 *
 * Durability: the mention is committed as a ticket before Slack is acknowledged,
 * in both modes (HTTP: before dispatching to Bolt; Socket Mode: in the receiver's
 * customPropertiesExtractor, which runs before Bolt acks). Reading the thread
 * (`conversations.replies`) and replying (`chat.postMessage`) happen after the ack.
 * A mention held for its thread is kept with its ticket until it is answered (held_reports):
 * the next start reads and answers what a stop or a crash left unanswered.
 *
 * Approve / Skip buttons on approval requests (`block_actions`) arrive the same two
 * ways; slack-approvals.ts decides who may act and answers after the ack.
 */
import { App, LogLevel, SocketModeReceiver, type Logger as BoltLogger } from '@slack/bolt';
import { ErrorCode, WebClient } from '@slack/web-api';
import type { Hono } from 'hono';
import { format } from 'node:util';
import type { BugbotConfig } from '../config.ts';
import { ReplayError, type AcceptResult, type Intake } from '../intake/index.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../queue/store.ts';
import type { ApprovalActions, TicketState } from '../types.ts';
import { summarize } from './common.ts';
import { APPROVE_ACTION, handleApprovalClick, parseApprovalClick, SKIP_ACTION } from './slack-approvals.ts';
import { SlackEventsReceiver, type Admission } from './slack-receiver.ts';
import {
  fetchThread,
  formatThread,
  heldNote,
  isFromBot,
  mentionEvent,
  mentionOfNote,
  parseMention,
  replyText,
  TRANSIENT_PLATFORM_ERRORS,
  withRateLimit,
  type BotIdentity,
  type Mention,
} from './slack-thread.ts';

/** The Slack trigger: HTTP routes (Events API mode) and the Socket Mode connection. */
export interface SlackTrigger {
  register(app: Hono): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Context key under which an admitted mention travels from the receiver to the listener. */
const ADMITTED = 'bugbotMention';
/** Slack retries a failed delivery for up to about an hour; remember other events' ids for a day. */
const EVENT_ID_KEEP_SECONDS = 86_400;
/**
 * A message (`channel:ts`) is filed once: Slack sends an edited mention again as a new
 * event (a new event_id, the same ts, an `edited` field), weeks later if need be.
 */
const MESSAGE_KEEP_SECONDS = 90 * 86_400;
/**
 * How long a new report waits for its thread before it is triaged on the mention alone
 * (the thread read failed, or took longer): a read and rate-limit waits. One that bugbot
 * stopped or crashed before answering waits again from the next start (resumeHeld).
 */
const THREAD_HOLD_SECONDS = 90;

interface AdmittedMention {
  mention: Mention;
  result: AcceptResult;
  /** It opened its ticket and holds it for its thread: followUp reads the thread, triages, answers, and releases it. */
  held: boolean;
  /**
   * Held by an earlier process (resumeHeld): its ticket may have been decided since (by
   * that process, the CLI, or its hold's end while Socket Mode connected). A decided one
   * keeps its text and triage: followUp only answers with its state.
   */
  resumed?: boolean;
}

export interface SlackTriggerDeps {
  config: BugbotConfig;
  store: Store;
  intake: Intake;
  logger: Logger;
  /** What the Approve / Skip buttons call; without it a click is refused, saying so. */
  approvals?: ApprovalActions;
}

/** Build the Slack trigger. Throws when a token the configured mode needs is missing. */
export function createSlackTrigger(deps: SlackTriggerDeps): SlackTrigger {
  const { config, store, intake, logger } = deps;
  const cfg = config.triggers.slack;
  const botToken = config.secrets.get(cfg.botTokenEnv);
  if (!botToken) throw new Error(`slack trigger: ${cfg.botTokenEnv} (the bot token, xoxb-…) is not set`);
  const appToken = config.secrets.get(cfg.appTokenEnv);
  if (cfg.socketMode && !appToken) {
    throw new Error(`slack trigger: triggers.slack.socketMode is on but ${cfg.appTokenEnv} (the app-level token, xapp-…) is not set`);
  }
  const boltLogger = toBoltLogger(logger);

  const bot: BotIdentity = {};
  let identifying: Promise<void> | undefined;
  /** auth.test, once; a failure is logged and retried on the next call. */
  const identify = (): Promise<void> =>
    (identifying ??= bolt.client.auth.test({ token: botToken }).then(
      (r) => {
        bot.userId = r.user_id;
        bot.botId = r.bot_id;
      },
      (err: unknown) => {
        identifying = undefined;
        logger.warn('slack auth.test failed; the bot cannot yet recognise its own messages', { error: slackError(err) });
      },
    ));

  /**
   * Commit a mention before the ack; other events are only deduplicated by event_id.
   * The context always says what was decided (null: nothing for the listener to do).
   */
  const admit = (body: Record<string, unknown>): Admission => {
    const nothing = { [ADMITTED]: null };
    const mention = parseMention(body);
    if (!mention) {
      if (isRecord(body.event) && body.event.type === 'app_mention') {
        logger.warn('app_mention without channel or ts: nothing to reply to, not filed', { eventId: body.event_id });
      }
      const eventId = typeof body.event_id === 'string' ? body.event_id : undefined;
      if (eventId && !store.useNonce('slack-event', eventId, EVENT_ID_KEEP_SECONDS)) {
        return { ignored: 'event already received', context: nothing };
      }
      return { context: nothing };
    }
    if (isFromBot(mention, bot)) return { ignored: 'mention posted by a bot', context: nothing };
    let result: AcceptResult | undefined;
    try {
      [result] = intake.accept([mentionEvent(mention, bot, store.now())], {
        nonce: { scope: 'slack-message', value: `${mention.channel}:${mention.ts}`, keepSeconds: MESSAGE_KEEP_SECONDS },
        // Triaged, and so claimable, once its thread is read (followUp), not on the mention alone;
        // the note outlives a stop or a crash before the answer (resumeHeld).
        ...(cfg.fetchThread ? { holdSeconds: THREAD_HOLD_SECONDS, holdNote: { source: 'slack', note: heldNote(mention) } } : {}),
      });
    } catch (err) {
      // A retry, or an edit of a mention already filed and answered: nothing new to file or say.
      if (err instanceof ReplayError) {
        return { ignored: 'event already received (a retry, or an edit of a mention already filed)', context: nothing, summary: { accepted: 0, duplicates: 1, results: [] } };
      }
      throw err;
    }
    const summary = summarize([result!]);
    if (result!.status === 'duplicate') return { ignored: 'event already received', context: nothing, summary };
    const held = cfg.fetchThread && (result!.status === 'created' || result!.status === 'regression');
    const admitted: AdmittedMention = { mention, result: result!, held };
    return { context: { [ADMITTED]: admitted }, summary };
  };

  // Few quick retries: replies happen after the ack and stop() waits for them. The
  // listeners' client (replies, thread reads, approval answers) refuses a rate-limited
  // call at once, and withRateLimit() waits for it, bounded and cut short by stop(): the
  // WebClient's own wait takes Retry-After in full before each retry, which held a stop
  // for minutes.
  const clientOptions = { slackApiUrl: cfg.apiUrl, retryConfig: { retries: 2 }, timeout: 10_000 };
  const stopping = new AbortController();
  const receiver = cfg.socketMode
    ? new SocketModeReceiver({
        appToken: appToken!,
        logger: boltLogger,
        // apps.connections.open goes to the configured API too.
        installerOptions: { clientOptions },
      })
    : new SlackEventsReceiver({
        signingSecret: config.secrets.get(cfg.signingSecretEnv),
        signingSecretEnv: cfg.signingSecretEnv,
        toleranceSeconds: cfg.toleranceSeconds,
        now: store.now,
        admit,
        logger,
      });

  const bolt = new App({
    receiver,
    // Single workspace: the bot token plus whatever auth.test has told us so far. This
    // never waits on the network, so Bolt's ack is not held up by it.
    authorize: () => Promise.resolve({ botToken, botUserId: bot.userId, botId: bot.botId }),
    logger: boltLogger,
    clientOptions: { ...clientOptions, rejectRateLimitedCalls: true },
    convoStore: false,
  });
  bolt.error((err) => {
    logger.error('slack listener failed', { error: slackError(err) });
    return Promise.resolve();
  });
  if (receiver instanceof SocketModeReceiver) commitBeforeAck(receiver, bolt);

  /**
   * Socket Mode: an event is committed before it is acknowledged. Bolt's own handler of
   * the socket's events acks an Events API event before its listeners run, whatever
   * happened before, so it is replaced by this one: admit (the commit point), then let
   * Bolt process the event with what was admitted. An event that could not be stored
   * (a full disk, the database busy) is not acknowledged: Slack sends it again.
   */
  type SocketEvent = { body?: unknown; ack: (response?: unknown) => Promise<void>; retry_num?: number; retry_reason?: string };
  function commitBeforeAck(r: SocketModeReceiver, app: App): void {
    r.client.removeAllListeners('slack_event');
    const handle = async (args: SocketEvent): Promise<void> => {
      if (!isRecord(args.body)) return;
      let context: Record<string | symbol, unknown>;
      try {
        context = admit(args.body).context ?? {};
      } catch (err) {
        logger.error('slack event could not be stored: not acknowledged, so Slack sends it again', { error: String(err) });
        return;
      }
      let acked = false;
      const ack = async (response?: unknown) => {
        if (acked) return;
        acked = true;
        await args.ack(response);
      };
      try {
        await app.processEvent({ body: args.body, ack, retryNum: args.retry_num, retryReason: args.retry_reason, customProperties: context });
      } catch (err) {
        // Stored already: acknowledged all the same, so Slack does not send it again.
        logger.error('slack event failed after it was stored', { error: slackError(err) });
        await ack().catch(() => undefined);
      }
    };
    r.client.on('slack_event', (args: SocketEvent) => void handle(args));
  }

  const pending = new Set<Promise<void>>();

  /** After the ack: read the thread into the ticket, triage it on that, then answer in the thread. */
  const followUp = async ({ mention, result: accepted, held, resumed }: AdmittedMention, client: WebClient): Promise<void> => {
    let result = accepted;
    const ticketId = result.ticketId;
    if (ticketId === null) return;
    await identify();
    /** A resumed mention's ticket decided since: its state now, to answer with; undefined while it waits. */
    const decidedSince = (): { state: TicketState; reason: string | null } | undefined => {
      const t = resumed ? store.getTicketRow(ticketId) : undefined;
      return t && t.state !== 'settling' ? { state: t.state as TicketState, reason: t.triage_reason } : undefined;
    };
    let decided: { state: TicketState; reason: string | null } | undefined;
    try {
      decided = decidedSince();
    } catch (err) {
      // The database busy: read as still waiting; threadRead below fails the same way, and the answer says what was known.
      logger.warn('could not look up the ticket of a held slack mention', { ticket: ticketId, error: slackError(err) });
    }
    if (decided) result = { ...result, ...decided };
    // Only a ticket this mention opened takes the thread as its text; a merged mention
    // must not overwrite the report someone else filed, nor a resumed one a decision made
    // since (the thread is not read then).
    if (held && !decided) {
      let thread: { text: string; messages: number } | undefined;
      // A mention held before a restart that turned fetchThread off: triaged on the mention, now.
      if (cfg.fetchThread) {
        try {
          thread = formatThread(await withRateLimit(() => fetchThread(client, mention.channel, mention.threadTs), stopping.signal), mention, bot);
        } catch (err) {
          logger.warn('could not read the slack thread; the ticket keeps the mention text', {
            ticket: ticketId,
            channel: mention.channel,
            threadTs: mention.threadTs,
            error: slackError(err),
          });
        }
      }
      try {
        // Looked at again in the same transaction: its hold may have ended while the thread was read.
        result = { ...result, ...store.tx(() => decidedSince() ?? intake.threadRead(ticketId, thread && thread.messages > 1 ? thread.text : undefined)) };
      } catch (err) {
        // The database busy or full: the ticket keeps the mention (triaged on it when its hold
        // ends), and the person still hears of it.
        logger.warn('could not store the slack thread in the ticket; it keeps the mention text', { ticket: ticketId, error: slackError(err) });
      }
    }
    let done = false;
    try {
      await withRateLimit(
        () => client.chat.postMessage({ channel: mention.channel, thread_ts: mention.threadTs, text: replyText(result, store.getTicket(ticketId)) }),
        stopping.signal,
      );
      done = true;
    } catch (err) {
      done = refusedForGood(err);
      logger.warn(done ? 'could not reply in the slack thread' : 'could not reply in the slack thread; the next start tries again', {
        ticket: ticketId,
        channel: mention.channel,
        error: slackError(err),
      });
    }
    // Answered, or refused for good (channel_not_found, not_in_channel): no start answers it
    // again. A network error, Slack's own trouble or a rate limit (a stop that cut its wait
    // short too) leaves it held for the next start.
    if (held && done) {
      try {
        store.releaseHeldReport(ticketId);
      } catch (err) {
        logger.warn('could not record that the slack mention was answered; the next start answers it again', { ticket: ticketId, error: slackError(err) });
      }
    }
  };

  /**
   * Mentions held for their thread that the last process did not answer (it was stopped or
   * killed first): those still waiting wait for their thread again, from now, and start()
   * reads it and answers as followUp would have. Done when the trigger is made, before
   * main.ts starts the settle scheduler, whose first pass would otherwise triage them on
   * the mention alone (their hold ended while nothing ran, or ends before Slack answers).
   */
  const resumeHeld = (): AdmittedMention[] => {
    const out: AdmittedMention[] = [];
    try {
      const rehold = new Date(store.now().getTime() + THREAD_HOLD_SECONDS * 1000).toISOString();
      for (const { ticketId, note } of store.heldReports('slack')) {
        const t = store.getTicketRow(ticketId);
        const mention = t && mentionOfNote(note, store.eventBySourceId('slack', String(note.eventId))?.event.message ?? t.title);
        if (!t || !mention) {
          logger.warn('a held slack mention could not be read back; its ticket is triaged when its hold ends, unanswered', { ticket: ticketId });
          store.releaseHeldReport(ticketId);
          continue;
        }
        if (cfg.fetchThread) store.holdAgain(ticketId, rehold);
        const result: AcceptResult = {
          sourceEventId: mention.eventId,
          status: t.regression_of !== null ? 'regression' : 'created',
          fingerprint: t.fingerprint,
          ticketId,
          state: t.state as TicketState,
          reason: t.triage_reason,
        };
        out.push({ mention, result, held: true, resumed: true });
      }
    } catch (err) {
      // The database busy or full: they are triaged when their holds end, unanswered.
      logger.error('could not look for slack mentions left unanswered by the last stop', { error: slackError(err) });
    }
    return out;
  };
  const unanswered = resumeHeld();

  /** Work after the ack that stop() waits for. */
  const track = async (work: Promise<void>): Promise<void> => {
    pending.add(work);
    try {
      await work;
    } finally {
      pending.delete(work);
    }
  };

  bolt.event('app_mention', async ({ body, context, client }) => {
    // Admitted (committed) before the ack by either receiver; admitted here only for an event that reached Bolt some other way.
    const decided = ADMITTED in context ? context[ADMITTED] : admit(body as unknown as Record<string, unknown>).context?.[ADMITTED];
    const admitted = decided as AdmittedMention | null | undefined;
    if (!admitted) return;
    await track(followUp(admitted, client));
  });

  bolt.action({ type: 'block_actions', action_id: new RegExp(`^(${APPROVE_ACTION}|${SKIP_ACTION})$`) }, async ({ ack, body, client }) => {
    await ack();
    const click = parseApprovalClick(body);
    if ('problem' in click) {
      logger.warn('slack approval click not understood; nothing done', { problem: click.problem });
      return;
    }
    await track(
      handleApprovalClick(click, { client, approvers: cfg.approvers, approvals: deps.approvals, logger, signal: stopping.signal }).catch((err: unknown) =>
        logger.warn('could not answer a slack approval click', { ticket: click.ticketId, user: click.user, error: slackError(err) }),
      ),
    );
  });

  let started: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;
  return {
    register(app) {
      if (receiver instanceof SlackEventsReceiver) receiver.register(app);
    },
    start() {
      return (started ??= (async () => {
        await identify();
        await bolt.start();
        logger.info(cfg.socketMode ? 'slack socket mode connected' : 'slack events endpoint ready', { bot: bot.userId });
        if (!unanswered.length) return;
        logger.info('reading the threads of slack mentions the last stop left unanswered, to answer them', { tickets: unanswered.map((m) => m.result.ticketId) });
        // Bolt's listeners get a client per event; these have no event: one like it.
        const client = new WebClient(botToken, { ...clientOptions, rejectRateLimitedCalls: true, logger: boltLogger });
        for (const m of unanswered.splice(0)) void track(followUp(m, client));
      })());
    },
    stop() {
      return (stopped ??= (async () => {
        // Work waiting out a rate limit gives up now rather than hold the stop.
        stopping.abort();
        if (started) {
          await started.catch(() => undefined);
          // SocketModeReceiver.stop() returns before the WebSocket close handshake is over
          // (leaving a 30 s fallback timer behind); the client's disconnect() waits for it.
          await (receiver instanceof SocketModeReceiver ? receiver.client.disconnect() : bolt.stop());
        }
        await Promise.allSettled(pending);
      })());
    },
  };
}

/**
 * `bugbot start` without the Slack trigger (turned off, or its bot token gone): mentions held
 * for their thread when bugbot last stopped can be neither read nor answered. Each is
 * triaged now, on the mention alone, rather than when its hold ends, and the log says why
 * and where the unanswered thread is.
 */
export function settleHeldMentions(deps: { config: BugbotConfig; store: Store; intake: Intake; logger: Logger }): void {
  const { config, store, intake, logger } = deps;
  const cfg = config.triggers.slack;
  const why = cfg.enabled ? `${cfg.botTokenEnv} is not set` : 'triggers.slack.enabled is false';
  try {
    for (const { ticketId, note } of store.heldReports('slack')) {
      const decided = store.tx(() => {
        store.releaseHeldReport(ticketId);
        return store.getTicketRow(ticketId) ? intake.threadRead(ticketId) : undefined;
      });
      logger.warn(
        `a slack mention was waiting for its thread when bugbot stopped, and the Slack trigger is off now (${why}): ` +
          'its ticket is triaged on the mention alone and nobody answers in the thread; answer there by hand if the reporter should hear',
        { ticket: ticketId, channel: note.channel, threadTs: note.threadTs, state: decided?.state, reason: decided?.reason },
      );
    }
  } catch (err) {
    // The database busy or full: they are triaged when their holds end.
    logger.error('could not triage slack mentions left waiting for their thread by the last stop', { error: slackError(err) });
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Whether Slack refused a call for good: a platform error code (channel_not_found,
 * not_in_channel, is_archived, ...) but for its own transient ones. A request error
 * (ECONNRESET, a timeout), an HTTP error or a rate limit is not: the call may go through later.
 */
function refusedForGood(err: unknown): boolean {
  const e = err as { code?: unknown; data?: { error?: unknown } };
  return e?.code === ErrorCode.PlatformError && typeof e.data?.error === 'string' && !TRANSIENT_PLATFORM_ERRORS.has(e.data.error);
}

/** Slack's error code (e.g. thread_not_found) when it gave one, else the message. */
function slackError(err: unknown): string {
  const e = err as { code?: unknown; data?: { error?: unknown }; message?: unknown };
  if (e && e.code === ErrorCode.PlatformError && typeof e.data?.error === 'string') return e.data.error;
  return typeof e?.message === 'string' ? e.message : String(err);
}

/**
 * Bolt's and the WebClient's log lines into ours. Their debug lines are dropped:
 * they include Web API request bodies, and our log never carries bodies.
 */
export function toBoltLogger(logger: Logger): BoltLogger {
  let level = LogLevel.INFO;
  return {
    debug: () => undefined,
    info: (...msg: unknown[]) => logger.info(format(...msg)),
    warn: (...msg: unknown[]) => logger.warn(format(...msg)),
    error: (...msg: unknown[]) => logger.error(format(...msg)),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}
