/**
 * `bugbot start`: config → the home's lock → store → reconcile → intake → app → listen,
 * plus the settle scheduler and log-file watchers. SIGINT, SIGTERM and SIGHUP (cli.ts) drain and exit.
 */
import { buildBundles } from '../lib/bundle.ts';
import { serve, type ServerType } from '@hono/node-server';
import { mkdirSync, statSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import { createApp } from './app.ts';
import { ConfigError, isLoopback, servingWarnings, type BugbotConfig } from './config.ts';
import { HttpError } from './http-error.ts';
import type { Logger } from './log.ts';
import { Dispatcher } from './dispatcher/pool.ts';
import { Approvals } from './dispatcher/approvals.ts';
import { reconcile, WORKER_STOP_WAIT_MS } from './dispatcher/reconcile.ts';
import { lowDisk, workersHeld } from './dispatcher/requirements.ts';
import { modelEnv } from './dispatcher/model-env.ts';
import { claudeBinary, REPO_ROOT } from './dispatcher/phases.ts';
import { releaseRunTmpRoot } from './dispatcher/workspace.ts';
import { createModelClassifier } from './intake/model-classifier.ts';
import { OutcomeArchive } from './outcomes/archive.ts';
import { clearRunNotice, pendingRunNotices, type RunNotice } from './queue/leases.ts';
import type { Ticket } from './types.ts';
import { recheckRegressions } from './outcomes/regression.ts';
import { checkPullRequests, PR_WATCH_MS, pullRequestsAwaitingMerge } from './dispatcher/pr-watch.ts';
import { Retention } from './retention.ts';
import { lockHome, newLocalKey, readServerInfo, removeServerInfo, writeServerInfo } from './server-info.ts';
import { startWatchers, type Watchers } from './triggers/watch.ts';
import { createSlackTrigger, settleHeldMentions, type SlackTrigger } from './triggers/slack.ts';
import { noticeForRun, Notifier } from './notify/index.ts';

import { openServices, type Services } from './services.ts';

export { openServices, type Services };

/**
 * How long a stop may take before `bugbot start` exits regardless: the workers' cleanup
 * (WORKER_STOP_WAIT_MS, then their SIGKILL and their ends recorded), approvals and
 * notices under way. Cut shorter, the exit would leave workers running, their runs
 * recorded as running, and the home's lock and server.json behind.
 */
export const STOP_BUDGET_MS = WORKER_STOP_WAIT_MS + 40_000;

/** How often `bugbot start` checks that its database is still the file at <home>/bugbot.db (one stat). */
export const DATABASE_CHECK_MS = 2_000;

/**
 * What senders and /healthz are told once the database file is gone (no path: /healthz
 * needs no credential; the log names the file).
 */
const DATABASE_GONE_REPLY =
  "bugbot's database file was deleted or replaced while bugbot start ran: nothing can be stored until bugbot start is restarted";

export interface RunningServer {
  url: string;
  port: number;
  services: Services;
  dispatcher: Dispatcher;
  approvals: Approvals;
  stop(): Promise<void>;
}

/**
 * `bugbot start` cannot go on as asked (the home has a live control plane, the port is
 * taken): one line for the operator, who fixes it by how bugbot is started. A ConfigError,
 * so the CLI prints its message without a stack trace and exits 2.
 */
export class StartRefused extends ConfigError {
  constructor(message: string) {
    super([message]);
    this.name = 'StartRefused';
    this.message = message;
  }
}

export async function startServer(
  config: BugbotConfig,
  logger: Logger,
  print: (line: string) => void = (l) => process.stdout.write(l + '\n'),
): Promise<RunningServer> {
  // One control plane per home, decided before anything changes: a second one would
  // reconcile the first one's live runs as lost (and replace its server.json).
  const lock = lockHome(config.home);
  if (!lock) {
    const live = readServerInfo(config.home);
    throw new StartRefused(
      `already running for home ${config.home} (${live ? `pid ${live.pid}, ${live.url}` : 'starting up, or a process holds bugbot.lock.db'}); ` +
        'stop it first, or give this one another --home',
    );
  }
  // Prebuilt JavaScript for what workers start per ticket (the CLI's docs-search, the MCP
  // servers); already fresh after the first start, a stat per source file.
  const bundles = await buildBundles();
  const built = bundles.filter((b) => b.status === 'built').map((b) => b.name);
  if (built.length) logger.info('built bundles', { bundles: built });
  for (const b of bundles.filter((b) => b.status === 'failed')) {
    logger.warn('bundle not built; its processes start through tsx (slower)', { bundle: b.name, error: b.error });
  }
  const services = openServices(config, logger, { writerThread: true });
  const { store, intake, settle } = services;
  try {
    await services.writer?.start();
  } catch (err) {
    store.close();
    lock.release();
    throw err;
  }

  // The database file deleted or replaced under this process (`rm bugbot.db*`, a backup
  // copied over it): both connections (this thread's, the writer thread's) go on writing
  // the file they have open, which no later start will see, so everything acknowledged
  // from then on would be lost. Noticed by a stat, on a timer, before each claim and at
  // each /healthz: from then on intake refuses events with 503 (the sender sends them
  // again later), the workers hold and /healthz answers 503. Only a restart cures it.
  let databaseGone: string | null = null;
  const checkDatabase = (): string | null => {
    if (databaseGone !== null) return databaseGone;
    const why = services.databaseGone();
    if (!why) return null;
    databaseGone = `bugbot's database ${why} while this bugbot start ran: nothing it stores now would be kept; restart bugbot start (it opens the database at that path again: a new, empty one unless the file is put back)`;
    logger.error('database file gone: intake refuses events (503) and the workers hold until bugbot start is restarted', { reason: databaseGone });
    const refusal = new HttpError(503, 'database_gone', `${DATABASE_GONE_REPLY}; this request was not stored nor acknowledged: send it again later`);
    store.refuseEvents(refusal);
    services.writer?.refuse(refusal);
    return databaseGone;
  };

  // Nothing of a previous process survives it: stop its workers, requeue their runs.
  const archive = new OutcomeArchive(config.home, { redact: (text) => intake.redactText(text) });
  // The agent's sandbox keeps bugbot's state unwritable by naming paths that exist: these
  // two exist from the start, or the first runs could plant a forged archive or docs index.
  archive.ensure();
  mkdirSync(join(config.home, 'docs-index'), { recursive: true });
  const rec = reconcile(config, store, logger, archive);
  if (rec.requeued + rec.failed + rec.worktreesRemoved + rec.finished.length) {
    logger.warn('reconciled after restart', { requeued: rec.requeued, failed: rec.failed, worktreesRemoved: rec.worktreesRemoved, finished: rec.finished.length });
  }
  // Tells reporters (Slack threads, email) what became of their tickets.
  const notifier = new Notifier({ config, store, logger: logger.child({ component: 'notify' }) });
  // What the last run of bugbot left unsent (a stop during an email's retry waits, a crash).
  void notifier.resume();
  // A person who reports an error whose fix just went out hears of the fix too.
  intake.whenReporterJoinsFixed((ticketId) => void notifier.tellLatecomers(ticketId));
  const approvals = new Approvals({
    config,
    store,
    archive,
    logger: logger.child({ component: 'approvals' }),
    onNotice: (notice) => void notifier.notify(notice),
  });
  // What the workers lack is looked for again (every 10 s while they hold, every minute
  // otherwise): installing it needs no restart.
  let heldCheck = { at: -Infinity, reason: null as string | null };
  // The disk's free space is asked every time (one statfs): it runs out between two checks.
  const held = (recheck = false) => {
    const gone = checkDatabase();
    if (gone) return gone;
    const disk = lowDisk(config);
    if (disk) return disk;
    if (recheck || performance.now() - heldCheck.at >= (heldCheck.reason ? 10_000 : 60_000)) heldCheck = { at: performance.now(), reason: workersHeld(config) };
    return heldCheck.reason;
  };
  /**
   * A run's end: pushed → fixed, failed → why, awaiting approval → the auto-approval rules,
   * else Approve / Skip buttons. The run's notice (written with its end) is cleared once
   * the messages are in the outbox, or the rules have decided: a crash before that leaves
   * it for the next start.
   */
  function runFinished(row: RunNotice, ticket: Ticket): void {
    const notice = noticeForRun(row, store.getTicket(ticket.id) ?? ticket);
    const told = () => {
      try {
        clearRunNotice(store, row.run_id);
      } catch (err) {
        // A stop closed the database meanwhile: the next start tells them (the outbox skips what went out).
        logger.warn("could not mark a run's end as told; the next start tells it again", { run: row.run_id, error: (err as Error).message });
      }
    };
    const tell = () => {
      if (notice) void notifier.notify(notice);
      told();
    };
    // Approval mode: a fix within the auto-approval rules goes out without a person.
    if (row.state === 'awaiting_approval' && config.approval.autoApprove.enabled) {
      approvals.considerAutoApproval(ticket.id).then(
        // Declined by the rules, or tried and failed (a push refused): tell people as if no
        // rule applied. Approved, or stopped by a conflict: its notice (fixed, or a person
        // takes over) comes through onNotice.
        (r) => {
          if (r?.ok) return told();
          if (r) logger.warn('auto-approval did not go through', { ticket: ticket.id, state: r.state, message: r.message });
          if (store.getTicket(ticket.id)?.state === 'needs_human') told();
          else tell();
        },
        (err: unknown) => {
          logger.error('auto-approval failed', { ticket: ticket.id, error: String(err) });
          tell();
        },
      );
    } else tell();
  }
  const dispatcher = new Dispatcher({
    config,
    store,
    archive,
    held,
    logger: logger.child({ component: 'dispatcher' }),
    onRunFinished: runFinished,
  });
  // Runs whose end no reporter has heard of: those that ended while no control plane ran
  // (reconcile), and those a crash or a stop came between the end and the telling. As if
  // they had ended now: the auto-approval rules, then their reporters told.
  for (const { notice, ticketId } of pendingRunNotices(store)) {
    const ticket = store.getTicket(ticketId);
    if (ticket) runFinished(notice, ticket);
    else clearRunNotice(store, notice.run_id);
  }
  settle.onSettled(() => dispatcher.poke());

  let slack: SlackTrigger | undefined;
  if (config.triggers.slack.enabled && config.secrets.get(config.triggers.slack.botTokenEnv)) {
    slack = createSlackTrigger({ config, store, intake, logger: logger.child({ component: 'slack' }), approvals });
  } else settleHeldMentions({ config, store, intake, logger: logger.child({ component: 'slack' }) });

  // Ends long-lived responses (the dashboard's live stream) so the server can close.
  const shutdown = new AbortController();
  // Only this server and its owner's CLI know it (server.json, mode 0600); see server-info.ts.
  const localKey = newLocalKey();
  const app = createApp({
    shutdown: shutdown.signal,
    localKey,
    config,
    store,
    intake,
    logger,
    slack,
    dispatcher,
    archive,
    approvals,
    databaseGone: () => (checkDatabase() === null ? null : DATABASE_GONE_REPLY),
    classifier:
      config.triage.classifier === 'model'
        ? createModelClassifier({ claude: claudeBinary(config), promptsDir: join(REPO_ROOT, 'prompts'), env: modelEnv(config), model: config.harness.model, callsPerHour: config.triage.modelCallsPerHour })
        : undefined,
    // Only a new ticket can bring the next settle deadline forward.
    onAccepted: (results) => {
      if (results.some((r) => r.status === 'created' || r.status === 'regression')) settle.poke();
      if (results.some((r) => r.state === 'queued')) dispatcher.poke();
    },
  });

  let server: ServerType;
  try {
    server = await listen(app.fetch, config.server.host, config.server.port);
  } catch (err) {
    // Nothing is running yet but what resume() sent off; the store closes behind it.
    await approvals.close();
    await notifier.close();
    await services.writer?.close();
    store.close();
    lock.release();
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? 'the port is in use (give this one another --port)' : e.code === 'EACCES' ? `permission denied${config.server.port > 0 && config.server.port < 1024 ? ' (a port below 1024 needs root or CAP_NET_BIND_SERVICE: pick one above it, as the default 7777 is)' : ''}` : e.message;
    throw new StartRefused(`cannot listen on ${config.server.host}:${config.server.port}: ${why}`);
  }
  // A stop's server.close() waits for every connection to end, and a client that keeps
  // sending on its keep-alive connection (Alertmanager in an alert storm) would hold it
  // open until the stop budget ran out. Once stopping, each reply closes its connection.
  (server as HttpServer).prependListener('request', (_req, res) => {
    if (shutdown.signal.aborted) res.setHeader('connection', 'close');
  });
  const port = (server.address() as { port: number }).port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const url = `http://${host}:${port}`;
  writeServerInfo(lock, url, localKey);
  const databaseTimer = setInterval(checkDatabase, DATABASE_CHECK_MS);
  databaseTimer.unref();
  settle.start();
  dispatcher.start();
  // The 24-hour regression re-check of pushed runs (appends the final revision of their rows),
  // once what recurred while this process was not up has had time to arrive.
  const upSince = store.now();
  const recheck = () => {
    try {
      const rows = recheckRegressions(store, archive, store.now(), upSince);
      if (rows.length) {
        const runs = (regressed: boolean) => rows.filter((r) => r.regressions_detected_24h === regressed).map((r) => r.run_id);
        logger.info('regression re-check: runs a day after their fix', { held: runs(false), regressed: runs(true) });
      }
    } catch (err) {
      logger.error('regression re-check failed', { error: (err as Error).message });
    }
  };
  recheck();
  const recheckTimer = setInterval(recheck, 10 * 60_000);
  recheckTimer.unref();
  // Fixes approved as pull requests go live when they are merged: asked after now and then.
  let prCheck: Promise<unknown> = Promise.resolve();
  const prStop = new AbortController();
  let prBusy = false;
  const prWatch = () => {
    if (prBusy) return;
    prBusy = true;
    prCheck = checkPullRequests(config, store, logger.child({ component: 'pr-watch' }), { signal: prStop.signal })
      .then((moved) => {
        for (const m of moved.filter((x) => x.now !== 'open')) {
          logger.info(`pull request ${m.now}`, { ticket: m.ticketId, pr: m.prUrl, ...(m.at ? { at: m.at } : {}) });
          // Its reporters were told the fix is in that pull request: now that it will not be.
          if (m.notice) void notifier.notify(m.notice);
        }
      })
      .catch((err: unknown) => logger.error('pull request check failed', { error: (err as Error).message }))
      .finally(() => (prBusy = false));
  };
  // Whatever approval.target says now: pull requests opened while it was "pr" still wait to
  // be merged (a pass with none waiting is one query).
  const prTimer = setInterval(prWatch, PR_WATCH_MS);
  prTimer.unref();
  prWatch();
  const waitingOnGitHub = pullRequestsAwaitingMerge(store).length;
  const gh = config.approval.github;
  if (waitingOnGitHub && (!config.secrets.get(gh.tokenEnv) || !gh.owner || !gh.repo)) {
    logger.warn(`${waitingOnGitHub} fix(es) wait for their pull request's merge, but approval.github (${gh.tokenEnv}, owner, repo) is not set: they stay pushed and not live until it is`);
  }
  // Old events and finished runs' folders go after retention's days.
  const retention = new Retention({ config, store, logger: logger.child({ component: 'retention' }) });
  retention.start();
  const watchers: Watchers = startWatchers(config.watch.files, { config, store, intake, logger, onEvents: () => settle.poke() });

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      clearInterval(recheckTimer);
      clearInterval(databaseTimer);
      clearInterval(prTimer);
      prStop.abort();
      await prCheck;
      await retention.stop();
      settle.stop();
      await dispatcher.stop();
      // Approvals under way finish their bookkeeping (and notices) before the store closes.
      await approvals.close();
      await watchers.stop();
      await slack?.stop();
      await notifier.close();
      shutdown.abort();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() waits for every connection: idle keep-alive ones end now, and one still
        // sending (a client trickling its body) after the grace. Nothing acknowledged is
        // lost: a request cut off was never answered, and its sender tries again.
        const http = server as HttpServer;
        http.closeIdleConnections();
        setTimeout(() => http.closeAllConnections(), CLOSE_GRACE_MS).unref();
      });
      await services.writer?.close();
      releaseRunTmpRoot(config.home);
      removeServerInfo(config.home);
      store.close();
      lock.release();
    })());

  try {
    await slack?.start();
  } catch (err) {
    // Socket Mode's connection refused for good (a revoked app token, Slack out of reach;
    // what Slack may answer later is retried inside start()): bugbot does not run without
    // a trigger it was configured with. What started meanwhile (the workers) stops first.
    await stop();
    const s = config.triggers.slack;
    const why = slackStartError(err);
    const hint = why.code
      ? `is ${s.appTokenEnv} an app-level token of this app, with connections:write?`
      : 'Slack was out of reach: check the network, or triggers.slack.apiUrl';
    throw new StartRefused(`Slack ${s.socketMode ? 'Socket Mode could not connect' : 'could not start'}: ${why.text} (${hint})`);
  }

  const ch = notifier.channels;
  const mail = config.notify.email;
  const lines = banner(config, url, slack !== undefined, localKey, held());
  // Before the last line ("watching: ..."), which ends the banner.
  lines.splice(
    -1,
    0,
    `notify: Slack threads ${ch.slack ? 'on' : config.notify.slack.enabled ? `off (needs ${config.triggers.slack.botTokenEnv})` : 'off'}, ` +
      `email ${ch.email ? `via ${mail.host}:${mail.port}` : 'off (set notify.email.host and from)'}`,
  );
  for (const line of lines) print(line);
  return { url, port, services, dispatcher, approvals, stop };
}

/** Slack's error code when it answered with one (invalid_auth), else the error's message. */
function slackStartError(err: unknown): { text: string; code?: string } {
  const e = err as { data?: { error?: unknown }; message?: unknown };
  if (typeof e?.data?.error === 'string') return { text: e.data.error, code: e.data.error };
  return { text: typeof e?.message === 'string' ? e.message : String(err) };
}

/** How long a client may take to send a request's headers, and the whole request. */
const HEADERS_TIMEOUT_MS = 20_000;
const REQUEST_TIMEOUT_MS = 60_000;
/** How long a stop lets requests under way finish before it closes their connections. */
const CLOSE_GRACE_MS = 5_000;

function listen(fetch: (req: Request) => Response | Promise<Response>, hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    // A request's headers and body must arrive within these (Node's default lets a client
    // trickle its body for 300 s, holding a connection, and a stop, that long).
    const server = serve({ fetch, hostname, port, serverOptions: { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS } }, () => resolve(server));
    server.once('error', reject);
  });
}

/** The home and its database when their mode lets other users in (a home made before bugbot made it private). */
function openToOthers(home: string): string[] {
  return [home, join(home, 'bugbot.db')].filter((p) => {
    try {
      return (statSync(p).mode & 0o077) !== 0;
    } catch {
      return false;
    }
  });
}

function banner(config: BugbotConfig, url: string, slack: boolean, localKey: string, held: string | null): string[] {
  const s = config.secrets;
  const t = config.triggers;
  const authNote = (configured: boolean) => (configured ? '' : isLoopback(config.server.host) ? '  (no auth configured: loopback only)' : '');
  const lines = [
    `bugbot control plane listening on ${url}`,
    `  home      ${config.home}${config.configPath ? `   config ${config.configPath}` : '   (embedded defaults: no bugbot.config.json)'}`,
    `  target    ${config.target.repo} (${config.target.baseBranch} → ${config.target.stagingBranch})`,
    `  settle    ${config.intake.settleSeconds}s (cap ${config.intake.settleCapSeconds}s), min severity ${config.triage.minSeverity}`,
    `  workers   ${config.workers} (${config.workers === 1 ? `port ${config.target.basePort + 1}` : `ports ${config.target.basePort + 1}-${config.target.basePort + config.workers}`}), push: ${config.harness.pushMode}`,
    // The workers lack what a run needs (the dispatcher's own reason): tickets wait in the queue.
    ...(held ? [`  WARNING   fixes cannot run: ${held}; tickets wait in the queue until then`] : []),
    ...servingWarnings(config, {
      [config.intake.hashSaltEnv]: s.get(config.intake.hashSaltEnv),
      [config.approval.github.tokenEnv]: s.get(config.approval.github.tokenEnv),
    }).map((w) => `  WARNING   ${w}`),
    ...openToOthers(config.home).map((p) => `  WARNING   ${p} can be read by other users of this machine (it holds reports and run logs): chmod go-rwx it`),
    'triggers:',
  ];
  if (t.grafana.enabled) {
    lines.push(`  POST ${url}/triggers/grafana         Grafana / Alertmanager webhooks${authNote(Boolean(s.get(t.grafana.tokenEnv) || s.get(t.grafana.basicUserEnv) || s.get(t.grafana.hmacSecretEnv)))}`);
  }
  if (t.latency.enabled) lines.push(`  POST ${url}/triggers/latency         P95 latency alerts${authNote(Boolean(s.get(t.latency.tokenEnv) || s.get(t.latency.basicUserEnv)))}`);
  if (t.email.enabled) {
    lines.push(`  POST ${url}/triggers/email/mailgun   Mailgun inbound route${s.get(t.email.mailgunSigningKeyEnv) ? '' : `  (disabled until ${t.email.mailgunSigningKeyEnv} is set)`}`);
    lines.push(`  POST ${url}/triggers/email/raw       RFC 5322 message as message/rfc822${authNote(Boolean(s.get(t.email.rawTokenEnv)))}`);
  }
  if (t.slack.enabled) {
    lines.push(
      slack
        ? t.slack.socketMode
          ? '  Slack Socket Mode                   Slack app_mention in threads'
          : `  POST ${url}/slack/events             Slack app_mention in threads${s.get(t.slack.signingSecretEnv) ? '' : `  (answers 503 until ${t.slack.signingSecretEnv} is set)`}`
        : `  Slack                               (disabled until ${t.slack.botTokenEnv} and ${t.slack.signingSecretEnv} are set)`,
    );
  }
  lines.push(`  POST ${url}/api/tickets              manual filing${authNote(Boolean(s.get(config.server.apiTokenEnv)))}`);
  lines.push(`read: GET ${url}/api/tickets, ${url}/api/tickets/:id, ${url}/api/workers, ${url}/healthz, ${url}/readyz`);
  if (config.dashboard.enabled) {
    const open = isLoopback(config.server.host) && !config.dashboard.requireLogin && !s.get(config.dashboard.tokenEnv) && !s.get(config.dashboard.basicUserEnv);
    lines.push(
      open
        ? `dashboard: ${url}/  (no login on loopback; to approve or cancel from it, open ${url}/login?key=${localKey})`
        : `dashboard: ${url}/  (login required)`,
    );
  }
  if (config.harness.pushMode === 'approve') {
    const a = config.approval;
    lines.push(
      `approvals: POST ${url}/api/tickets/:id/approve|skip|requeue → ${a.target === 'pr' ? `pull request on ${a.github.owner}/${a.github.repo}` : config.target.stagingBranch}` +
        `, auto-approval ${a.autoApprove.enabled ? 'on' : 'off'}`,
    );
  }
  lines.push(config.watch.files.length ? `watching: ${config.watch.files.join(', ')}` : 'watching: no log files (set watch.files or run `bugbot watch <file>`)');
  return lines;
}
