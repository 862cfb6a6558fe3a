/**
 * The `bugbot` command. Each subcommand loads the layered config once, at the
 * edge, and passes it down. Exit codes: 0 ok, 1 failure, 2 usage/config error.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { spawnSync } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ConfigError, configuredRedactor, isLoopback, loadConfig, secretNames, servingProblems, servingWarnings, type BugbotConfig, type ConfigFile } from './config.ts';
import { HttpError } from './http-error.ts';
import { fingerprintEvent } from './intake/fingerprint.ts';
import { redactEvent } from './intake/redact-event.ts';
import { createLogger, type Logger } from './log.ts';
import { openServices } from './services.ts';
import { latestRevisions, OutcomeArchive } from './outcomes/archive.ts';
import { homeLocked, readServerInfo, type ServerInfo } from './server-info.ts';
import { Store } from './queue/store.ts';
import { inWindow, parseSince, reportJson, summarize, summaryNotes } from './outcomes/summary.ts';
import { cancelTicket, runsForTicket, stoppingRuns, type RunRow } from './queue/leases.ts';
import { askRunsWorkerToStop } from './dispatcher/reconcile.ts';
import { workspacePaths } from './dispatcher/workspace.ts';
import { createScrub } from './scrub.ts';
import { readTranscript, type SessionEnd, type TranscriptEntry, type TranscriptSession } from './transcript.ts';
import { NOTIFICATIONS_LISTED, notificationCounts, notificationSummaries, recipientText, type NotificationCounts, type NotificationSummary } from './queue/notifications.ts';
import { registerDocsCommands } from './docs-search/cli.ts';
import { initTargetDocs } from './docs-search/init-target.ts';
import { STARTER_CONFIG } from './starter-config.ts';
import { MANUAL_CLASSIFICATION, MANUAL_TEXT_MAX, manualSchema, parseManual } from './triggers/manual.ts';
import { actorNameProblem, EVENT_KINDS, severityDetail, severityText, TICKET_STATES, TRIGGER_SOURCES, type ApprovalResult, type Ticket, type TicketState, type TriggerEvent, type TriggerSource } from './types.ts';
import type { BuildResult } from '../lib/bundle.ts';

interface GlobalOpts {
  config?: string;
  home?: string;
}

function intArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

/** A count, or a run's or a ticket's id (ids start at 1: `ticket 0` is a usage error, as `ticket abc` is). */
function positiveIntArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/**
 * A path or a host for a flag. An empty one (`--home "$DIR"` with DIR unset) would read as
 * no flag at all: the command would use the default home, config or address without a word.
 */
function nonEmptyArg(what: string): (value: string) => string {
  return (value) => {
    if (value === '') throw new InvalidArgumentError(`expected a ${what}, not an empty string`);
    return value;
  };
}

/** A person's name for --by: a blank one would claim or decide as nobody. */
function actorArg(value: string): string {
  const name = value.trim();
  if (!name) throw new InvalidArgumentError('expected a name');
  // What the API refuses is refused here too, whether the server or the database takes it.
  const problem = actorNameProblem(name);
  if (problem) throw new InvalidArgumentError(problem);
  return name;
}

/**
 * A name as an X-Bugbot-User header: its UTF-8 bytes, which a header carries whatever the
 * script (fetch refuses a character beyond Latin-1; the API reads the bytes back as UTF-8).
 */
const actorHeader = (name: string) => Buffer.from(name, 'utf8').toString('latin1');

/**
 * The configuration for a command. Only `start` serves: the others do not need the
 * server's secrets in their environment (servingProblems), so an operator can still list
 * tickets, or run `bugbot config` to see what is missing, from a shell without them.
 */
/** The flags that set config values, by the value's path: a problem with one names the flag. */
const FLAG_NAMES: Record<string, string> = { 'server.port': '--port', 'server.host': '--host', workers: '--workers', home: '--home', 'watch.service': '--service' };

function load(cmd: Command, flags: ConfigFile = {}, opts: { serving?: boolean } = {}): BugbotConfig {
  const g = cmd.optsWithGlobals<GlobalOpts>();
  const merged: ConfigFile = { ...flags };
  if (g.home) merged.home = g.home;
  return loadConfig({ path: g.config, flags: merged, flagNames: FLAG_NAMES, serving: opts.serving ?? false });
}

/** A path as a command line to copy would name it: relative below the working directory, else absolute. */
function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

export function buildProgram(): Command {
  const program = new Command('bugbot')
    .description('Self-hosted autonomous bug fixing: alerts, Slack threads and emails become verified fixes.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('-c, --config <path>', 'config file (default: $BUGBOT_CONFIG, else ./bugbot.config.json)', nonEmptyArg('path'))
    .option('--home <dir>', 'state directory (default: $BUGBOT_HOME, else the config file\'s "home", else .bugbot next to the config file or in the working directory)', nonEmptyArg('path'))
    // Each command's --help lists --config and --home too.
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError('(run bugbot --help for usage)')
    // A usage error is exit status 2 (main() maps commander's exits); subcommands inherit it.
    .exitOverride();

  program
    .command('start')
    .description('run the control plane: webhooks, intake, queue, workers, API and dashboard')
    .option('-p, --port <port>', 'port to listen on (default: server.port, 7777; 0 picks a free one)', intArg)
    .option('--host <host>', 'address to bind (default: server.host, 127.0.0.1)', nonEmptyArg('host name or address'))
    .option('-w, --workers <n>', 'worker count, 1-8 (default: workers, 2)', intArg)
    .action(async (o: { port?: number; host?: string; workers?: number }, cmd: Command) => {
      const config = load(
        cmd,
        {
          server: { ...(o.port !== undefined ? { port: o.port } : {}), ...(o.host ? { host: o.host } : {}) },
          ...(o.workers !== undefined ? { workers: o.workers } : {}),
        },
        { serving: true },
      );
      usableHome(config);
      serving = true;
      const logger = createLogger();
      // Loaded here: other commands should not pay for the HTTP server, Slack and the dashboard.
      const { startServer, STOP_BUDGET_MS } = await import('./main.ts');
      // Handled from before the start: a signal while it starts up (after the banner, say)
      // stops it cleanly once it is up, instead of killing it halfway.
      let server: Awaited<ReturnType<typeof startServer>> | null = null;
      let asked: string | null = null;
      const stopper = stopOnSignals({
        logger,
        budgetMs: STOP_BUDGET_MS,
        workers: () => server!.dispatcher.workers().length,
        stop: () => server!.stop(),
        write: (text) => process.stdout.write(text),
        exit: (code) => process.exit(code),
      });
      const shutdown = (signal: string) => {
        if (!server) {
          // A second Ctrl-C before it is up (Slack not answering holds the start) quits at
          // once, as one while it stops does: these handlers replaced SIGINT's default.
          if (asked && signal === 'SIGINT') {
            logger.warn('stopped at once while starting up (a second Ctrl-C)');
            process.stdout.write('quitting now, before it finished starting up; the next bugbot start stops what is still running and requeues their tickets\n');
            process.exit(130);
          }
          // Said at once: start-up can take a while (reconciling a killed start's runs, Slack).
          if (!asked && signal !== 'SIGHUP') process.stdout.write(`${signal}: stopping once it has started up${signal === 'SIGINT' ? ' (Ctrl-C again quits now)' : ''}\n`);
          asked ??= signal;
          return;
        }
        stopper(signal);
      };
      // SIGHUP too: the terminal or SSH session it runs in closed. Its default (exit at
      // once) would leave the workers going and their runs recorded running.
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => shutdown(sig));
      server = await startServer(config, logger);
      if (asked) shutdown(asked);
    });

  program
    .command('init')
    .description('write a commented starter bugbot.config.json (or, with --target, starter docs into a target repo)')
    .option('-o, --output <path>', 'where to write it, a file or a folder (default: the --config path, $BUGBOT_CONFIG, or ./bugbot.config.json)', nonEmptyArg('path'))
    .option('-f, --force', 'overwrite an existing file (with --target: write into a folder that is not a repository\'s top level)')
    .option('--target <path>', 'write a starter docs/ and CLAUDE.md auto-load table into this repository instead', nonEmptyArg('path'))
    .action((o: { output?: string; force?: boolean; target?: string }, cmd: Command) => {
      if (o.target) {
        const dir = resolve(o.target);
        if (!existsSync(dir)) fail(`--target ${dir} does not exist`, 2);
        if (!statSync(dir).isDirectory()) fail(`--target ${dir} is not a directory (give the repository's folder)`, 2);
        if (o.output !== undefined) fail('--output writes a config file; with --target, starter docs go into the repository: give one or the other', 2);
        // Where retrieval and the agent look: a repository's top level. A mistyped path (a
        // home folder, a subfolder) would get a docs/ and a CLAUDE.md of its own.
        const top = spawnSync('git', ['-C', dir, 'rev-parse', '--show-toplevel'], { encoding: 'utf8' });
        const root = top.status === 0 ? top.stdout.trim() : null;
        if (!o.force && root === null) fail(`--target ${dir} is not a git repository (bugbot's target is one): check the path, or add --force to write there anyway`, 2);
        if (!o.force && root !== null && realpathSync(root) !== realpathSync(dir)) fail(`--target ${dir} is inside the repository ${root}: give its top level (or add --force to write here anyway)`, 2);
        const r = initTargetDocs(dir);
        for (const w of r.written) process.stdout.write(`wrote ${w}\n`);
        for (const k of r.kept) process.stdout.write(`kept ${k.path}: ${k.reason}\n`);
        return;
      }
      // Where start will read it: the file --config (or $BUGBOT_CONFIG) names, unless told otherwise.
      const given = o.output ?? cmd.optsWithGlobals<GlobalOpts>().config ?? process.env.BUGBOT_CONFIG ?? 'bugbot.config.json';
      let out = resolve(given);
      // A folder (one that is there, or a path ending in "/", made now): the starter goes
      // into it under the default name.
      if (/[/\\]$/.test(given) && !existsSync(out)) mkdirSync(out, { recursive: true });
      if (existsSync(out) && statSync(out).isDirectory()) out = join(out, 'bugbot.config.json');
      if (existsSync(out) && !o.force) fail(`${out} already exists (use --force to overwrite)`, 2);
      if (existsSync(out) && !statSync(out).isFile()) fail(`${out} is not a file`, 2);
      if (!existsSync(dirname(out))) fail(`${o.output === undefined ? '' : '--output '}${out}: folder ${dirname(out)} does not exist`, 2);
      writeFileSync(out, STARTER_CONFIG);
      // bugbot start finds ./bugbot.config.json by itself; any other file is named.
      const start = out === resolve('bugbot.config.json') ? 'npx bugbot start' : `npx bugbot --config ${JSON.stringify(shownPath(out))} start`;
      process.stdout.write(`wrote ${out}\nnext: edit it, set the secrets it names in your environment, then run: ${start}\n`);
    });

  program
    .command('fingerprint')
    .description('read events on stdin, one JSON object a line ("message", and "stack", "route", "service", "kind", "labels", "source" when there are), and print each fingerprint')
    .option('--explain', 'also print what went into each fingerprint')
    .action(async (o: { explain?: boolean }, cmd: Command) => {
      const config = load(cmd);
      const redactor = configuredRedactor(config);
      // Typed at a terminal, it would sit waiting with no word of why.
      if (process.stdin.isTTY) process.stderr.write('reading events as JSON lines from stdin (one per line; Ctrl-D to end)\n');
      const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
      let lineNo = 0;
      let bad = 0;
      for await (const line of rl) {
        lineNo++;
        if (!line.trim()) continue;
        let ev: TriggerEvent;
        try {
          ev = toEvent(JSON.parse(line) as Record<string, unknown>, lineNo);
        } catch (err) {
          bad++;
          process.stderr.write(`line ${lineNo}: ${(err as Error).message}\n`);
          continue;
        }
        const redacted = redactEvent(redactor, ev);
        const fp = fingerprintEvent(redacted, { frames: config.intake.stackFrames });
        if (!o.explain) {
          // As intake would store it: redacted.
          process.stdout.write(`${fp.fingerprint}\t${oneLine(redacted.title)}\n`);
          continue;
        }
        const p = fp.parts;
        process.stdout.write(
          [
            `${fp.fingerprint}  (line ${lineNo}, by ${p.method})`,
            `  service  ${oneLine(p.service || '-')}`,
            `  kind     ${p.kind}`,
            `  message  ${oneLine(p.message)}`,
            `  route    ${oneLine(p.route || '-')}`,
            `  frames   ${p.frames.length ? p.frames.map(oneLine).join(' | ') : '-'}`,
            ...(p.rule ? [`  rule     ${oneLine(p.rule)}  (an alert that reports no error text: its rule's name counts)`] : []),
            '',
          ].join('\n'),
        );
      }
      if (bad) process.exitCode = 1;
    });

  program
    .command('watch')
    .description('tail application log files and feed their errors in')
    .argument('<files...>', 'log files (JSON lines or plain text with stack traces)')
    .option('--service <name>', 'service name for events that do not carry one')
    .option('--from-start', 'read a file never read before from its beginning (default: only what is appended from now on)')
    .action(async (files: string[], o: { service?: string; fromStart?: boolean }, cmd: Command) => {
      const config = load(cmd, o.service ? { watch: { service: o.service } } : {});
      // A file that does not exist yet is waited for (a log not yet rotated in); a folder never becomes one.
      for (const f of files) {
        if (!existsSync(f)) continue;
        const st = statSync(f);
        if (st.isDirectory()) fail(`${f} is a directory: name the log files in it`, 2);
        // A pipe has no offset to resume from (and opening one waits for a writer).
        if (!st.isFile()) fail(`${f} is not a regular file (a pipe, a socket or a device): have the program write its log to a file and watch that`, 2);
      }
      // One this user may not read would never be: the watch would sit there for nothing.
      for (const f of files) {
        const why = unreadable(f);
        if (why) fail(`${f} cannot be read by this user (${why}): run bugbot watch as a user who may read it`, 2);
      }
      usableHome(config);
      const logger = createLogger();
      const { store, intake, settle } = openServices(config, logger);
      settle.start();
      const { startWatchers } = await import('./triggers/watch.ts');
      const watchers = startWatchers(files.map((f) => resolve(f)), {
        config,
        store,
        intake,
        logger,
        fromStart: Boolean(o.fromStart),
        onEvents: (n, file) => {
          process.stdout.write(`${file}: ${n} error event(s) stored\n`);
          settle.poke();
        },
      });
      process.stdout.write(`watching ${files.join(', ')} (Ctrl-C to stop)\n`);
      for (const f of files) if (!existsSync(f)) process.stdout.write(`  ${f} does not exist yet: read from its start once it appears\n`);
      const stop = async () => {
        settle.stop();
        await watchers.stop();
        store.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
    });

  program
    .command('enqueue')
    .description('file a ticket by hand')
    .requiredOption('-t, --title <text>', 'one-line title (given more lines and no --message: the first is the title, the whole text the message)')
    .option('-m, --message <text>', 'what is wrong')
    .option('-s, --service <name>', 'service')
    .option('-r, --route <route>', 'e.g. "POST /api/pets/:id"')
    .option('--stack-file <path>', `file holding a stack trace (at most ${MANUAL_TEXT_MAX} characters)`)
    .option('--by <name>', 'who is filing it', actorArg)
    .action((o: { title: string; message?: string; service?: string; route?: string; stackFile?: string; by?: string }, cmd: Command) => {
      const config = load(cmd);
      // Everything checked before the home is opened (or made): a mistake leaves nothing behind.
      let stack: string | undefined;
      if (o.stackFile) {
        const path = resolve(o.stackFile);
        if (!existsSync(path)) fail(`--stack-file ${path} does not exist`, 2);
        if (!statSync(path).isFile()) fail(`--stack-file ${path} is not a file`, 2);
        // A UTF-16 unit is at most 3 bytes of UTF-8: a file past 3 × the limit is too long
        // unread (a log named by mistake, read whole, took gigabytes, or failed with V8's error).
        const size = statSync(path).size;
        if (size > 3 * MANUAL_TEXT_MAX) fail(`--stack-file ${path} is ${size} bytes: a stack trace is at most ${MANUAL_TEXT_MAX} characters (give the trace, not the whole log)`, 2);
        stack = readFileSync(path, 'utf8');
      }
      const ev = manualEvent({ title: o.title, message: o.message, service: o.service, route: o.route, stack, filed_by: o.by });
      usableHome(config);
      const { store, intake } = openServices(config, createLogger());
      try {
        const [r] = intake.accept([ev], { classifications: new Map([[ev.sourceEventId, MANUAL_CLASSIFICATION]]) });
        process.stdout.write(`ticket ${r!.ticketId} ${r!.status} (${r!.state}${r!.reason ? `: ${r!.reason}` : ''})\n`);
      } finally {
        store.close();
      }
    });

  program
    .command('tickets')
    .description('list tickets')
    .option('--state <state>', `only this state (${TICKET_STATES.join(', ')})`)
    .option('-n, --limit <n>', 'how many, newest first', positiveIntArg, 50)
    .option('--json', 'JSON output')
    .action((o: { state?: string; limit: number; json?: boolean }, cmd: Command) => {
      if (o.state && !TICKET_STATES.includes(o.state as TicketState)) fail(`unknown state "${o.state}"; one of: ${TICKET_STATES.join(', ')}`, 2);
      const config = load(cmd);
      const { store } = openForReading(config);
      try {
        const tickets = store.listTickets({ state: o.state as TicketState | undefined, limit: o.limit });
        if (o.json) {
          printJson({ tickets, counts: store.countByState() });
          return;
        }
        process.stdout.write(formatTicketTable(tickets, store.countByState()));
      } finally {
        store.close();
      }
    });

  program
    .command('ticket')
    .description('show one ticket: occurrences, triage decision, runs, audit trail')
    .argument('<id>', 'ticket id', positiveIntArg)
    .option('--json', 'JSON output')
    .action((id: number, o: { json?: boolean }, cmd: Command) => {
      const config = load(cmd);
      const { store } = openForReading(config);
      try {
        const t = store.getTicket(id);
        if (!t) fail(`no ticket ${id}`, 1);
        const detail = {
          ticket: t,
          occurrences: store.occurrences(id, OCCURRENCES_SHOWN),
          related: store.relatedTickets(id),
          runs: runsForTicket(store, id).map((r) => runWithFolder(config, id, r)),
          // An email flood's fix is a message to each of thousands of reporters: the latest, and how many in all.
          notifications: notificationSummaries(store, id, o.json ? NOTIFICATIONS_LISTED : NOTIFICATIONS_SHOWN),
          notificationCounts: notificationCounts(store, id),
          audit: store.auditTrail(id),
        };
        if (o.json) {
          printJson(detail);
          return;
        }
        process.stdout.write(formatTicket(detail));
      } finally {
        store.close();
      }
    });

  program
    .command('transcript')
    .description("what the agent did in a run, session by session: what it said, its tool calls and their results, permission denials, how each session ended")
    .argument('<id>', 'ticket id', positiveIntArg)
    .option('--run <n>', 'this run of the ticket (bugbot ticket <id> lists them; default: its latest)', positiveIntArg)
    .option('--phase <label>', 'only this session (research, implement, review, implement-rework, review-rework, docs)')
    .option('--json', 'JSON output')
    .action((id: number, o: { run?: number; phase?: string; json?: boolean }, cmd: Command) => {
      const config = load(cmd);
      const { store } = openForReading(config);
      let run: RunRow;
      try {
        const t = store.getTicket(id);
        if (!t) fail(`no ticket ${id}`, 1);
        const runs = runsForTicket(store, id);
        if (!runs.length) fail(`ticket ${id} has not run yet (it is ${t.state}): no transcript`, 1);
        const picked = o.run === undefined ? runs[runs.length - 1] : runs.find((r) => r.id === o.run);
        if (!picked) fail(`run ${o.run} is not a run of ticket ${id} (its runs: ${runs.map((r) => r.id).join(', ')})`, 1);
        run = picked;
      } finally {
        store.close();
      }
      const scrub = createScrub(config);
      const transcript = readTranscript(workspacePaths(config, { id }, run).ticketDir, scrub);
      if (!transcript.sessions.length) fail(noSessionLogs(id, run, transcript), 1);
      const sessions = o.phase === undefined ? transcript.sessions : transcript.sessions.filter((s) => s.label === o.phase);
      if (!sessions.length) {
        fail(`run ${run.id} of ticket ${id} has no session "${oneLine(o.phase ?? '')}"; its sessions: ${transcript.sessions.map((s) => oneLine(s.label)).join(', ')}`, 1);
      }
      const runInfo = { id: run.id, attempt: run.attempt, state: run.state, outcome: run.outcome, reason: run.reason === null ? null : scrub(run.reason) };
      if (o.json) {
        printJson({ ticket: id, run: runInfo, dir: transcript.dir, sessions });
        return;
      }
      process.stdout.write(formatTranscript(id, runInfo, sessions));
    });

  program
    .command('claim')
    .description('take a ticket yourself: the bot takes it no more (a run under way goes on: bugbot cancel stops it); --release gives it back')
    .argument('<id>', 'ticket id', positiveIntArg)
    .option('--by <name>', 'who takes (or releases) it', actorArg, process.env.USER || 'cli')
    .option('--release', 'give the ticket back to the bot')
    .option('--force', "take it over from the person who claimed it")
    .action((id: number, o: { by: string; release?: boolean; force?: boolean }, cmd: Command) => {
      const config = load(cmd);
      const { store, intake } = openExisting(config);
      try {
        const t = store.getTicket(id);
        if (!t) fail(`no ticket ${id}`, 1);
        if (o.release && !t.claimedBy) {
          process.stdout.write(`ticket ${id} was not claimed: nothing to release (${t.state})\n`);
          return;
        }
        if (t.claimedBy && t.claimedBy !== o.by && !o.force) {
          fail(`ticket ${id} is claimed by ${t.claimedBy}: ask them, or ${o.release ? 'release it for them' : 'take it over'} with --force`, 1);
        }
        const r = intake.claim(id, o.by, { release: o.release === true, forced: o.force === true });
        process.stdout.write(terminalText(TRIAGED.includes(t.state) ? `ticket ${id}: ${r.state} (${r.reason})\n` : claimNote(id, o.by, r.state, o.release === true)));
      } finally {
        store.close();
      }
    });

  program
    .command('stop')
    .description("stop this home's control plane as Ctrl-C does (runs under way stop and are requeued, not failed), and wait until it has")
    .option('--timeout <seconds>', 'how long to wait for it', positiveIntArg, 120)
    .action(async (o: { timeout: number }, cmd: Command) => {
      const config = load(cmd);
      const server = readServerInfo(config.home);
      if (!server) {
        // Holding the home without a server.json: starting up (its PID is named once it listens).
        if (homeLocked(config.home)) fail("a bugbot start of this home is starting up and names no process yet (server.json): run this again in a moment", 1);
        process.stdout.write('not running\n');
        return;
      }
      try {
        process.kill(server.pid, 'SIGTERM');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') fail(`could not signal the control plane (pid ${server.pid}): ${(err as Error).message}`, 1);
      }
      process.stdout.write(`stopping the control plane at ${server.url} (pid ${server.pid}): runs under way stop and go back to the queue...\n`);
      const started = Date.now();
      // Stopped once the lock is free: the OS drops it when the process ends, however it ends.
      while (homeLocked(config.home)) {
        if (Date.now() - started >= o.timeout * 1000) {
          fail(`still running after ${o.timeout} s (pid ${server.pid}): bugbot stop waits again; kill -9 ${server.pid} ends it at once (the next start requeues its runs)`, 1);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      process.stdout.write(`stopped (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    });

  program
    .command('status')
    .description('queue counts and what each worker is doing (ticket, phase, elapsed, tokens, cost)')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const config = load(cmd);
      const { workersFromStore } = await import('./api.ts');
      const { store, readOnly } = openForReading(config);
      try {
        const counts = store.countByState();
        const server = await serverStatus(config);
        // The server's own view when it answers (its worker count, workers still stopping);
        // else what the database says, which no live process may back.
        const workers: StatusWorker[] = server.workers ?? workersFromStore(store);
        const slots = server.slots ?? config.workers;
        const held = server.held;
        // No control plane to ask: what a start from this shell (its PATH, its environment) would lack.
        const wouldHold = server.state === 'stopped' ? (await import('./dispatcher/requirements.ts')).workersHeld(config) : null;
        if (o.json) {
          printJson({ home: config.home, readOnly, server: { state: server.state, url: server.url, pid: server.pid, ...(server.refusing ? { refusing: server.refusing } : {}) }, counts, slots, workers, held, pausedSlots: server.pausedSlots ?? [], wouldHold });
          return;
        }
        const states = Object.entries(counts).map(([s, n]) => `${s} ${n}`).join(', ');
        process.stdout.write(`control plane: ${serverLine(server)}\n`);
        if (server.refusing) process.stdout.write(`  events are refused${server.refusing.since ? ` since ${server.refusing.since}` : ''} (${server.refusing.code}): ${terminalText(server.refusing.message)}\n`);
        // The dashboard's login link changes with every start: here as start printed it.
        const info = server.state === 'running' ? readServerInfo(config.home) : null;
        if (info && config.dashboard.enabled && isLoopback(config.server.host) && !config.dashboard.requireLogin && !config.secrets.get(config.dashboard.tokenEnv) && !config.secrets.get(config.dashboard.basicUserEnv)) {
          process.stdout.write(`dashboard: ${info.url}/  (to approve or cancel from it, open ${info.url}/login?key=${info.key})\n`);
        }
        process.stdout.write(`tickets: ${states || 'none'}\nworkers: ${workers.length}/${slots} busy\n`);
        if (workers.length && server.state !== 'running') {
          process.stdout.write('  (from the database: no control plane answers, so these runs\' workers may be gone; the next start reconciles them)\n');
        }
        if (held) process.stdout.write(`  held: ${terminalText(held)}; tickets wait in the queue until then\n`);
        if (wouldHold) process.stdout.write(`  a bugbot start from this shell would hold the workers: ${wouldHold}\n`);
        for (const p of server.pausedSlots ?? []) {
          process.stdout.write(`  worker ${p.worker} paused until ${p.until}: ${terminalText(p.reason)}\n`);
        }
        for (const w of workers) {
          process.stdout.write(
            `  worker ${w.worker} (port ${w.port}): ticket ${w.ticket} ${oneLine(w.title).slice(0, 50)} | ${w.stopping ? 'stopping' : (w.phase ?? 'starting')} | ${w.elapsed_s}s | ${w.tokens} tokens | $${w.cost_usd.toFixed(4)}\n`,
          );
        }
        // Read where it could not be written: what the control plane stores there fails too.
        process.stdout.write(`home: ${config.home}${readOnly ? ` (${readOnly}: read only, nothing can be stored there)` : ''}\n`);
      } finally {
        store.close();
      }
    });

  program
    .command('cancel')
    .description('cancel a ticket: a running one\'s worker is stopped (partial work stays on its branch); one not running is dropped')
    .argument('<id>', 'ticket id', positiveIntArg)
    .option('--by <name>', 'who cancels', actorArg, process.env.USER || 'cli')
    .action(async (id: number, o: { by: string }, cmd: Command) => {
      const config = load(cmd);
      // A running control plane cancels at once (its worker is stopped now, not at the
      // next heartbeat); unreachable, the CLI cancels in the database itself.
      const server = readServerInfo(config.home);
      if (server && (await cancelViaServer(config, server, id, o.by))) return;
      const { store } = openExisting(config);
      try {
        if (!store.getTicket(id)) fail(`no ticket ${id}`, 1);
        const r = cancelTicket(store, id, o.by);
        if (!r) fail(`ticket ${id} is ${store.getTicket(id)!.state}: nothing to cancel`, 1);
        if (r.refused) fail(r.refused, 1);
        let note = '';
        if (r.was === 'running' && readServerInfo(config.home)) note = ' (the running bugbot start stops its worker at the next heartbeat)';
        else if (r.was === 'running') {
          // No control plane is up to stop it: a worker it left going would push the cancelled fix.
          const run = stoppingRuns(store).find((x) => x.ticket_id === id);
          note = run && askRunsWorkerToStop(config.home, run)
            ? ' (its worker, left going by a control plane that is no longer up, was asked to stop; the next start records its end)'
            : ' (no worker of it is running; the next start records its end)';
        }
        process.stdout.write(`ticket ${id}: ${r.was} → ${r.now}${note}\n`);
      } finally {
        store.close();
      }
    });

  program
    .command('approve')
    .description('approval mode: merge a fix waiting on its bot branch into staging (or open its pull request)')
    .argument('<id>', 'ticket id', positiveIntArg)
    .option('--by <name>', 'who approves', actorArg, process.env.USER || 'cli')
    .option('--run <n>', "the run whose fix you looked at (bugbot ticket <id> lists them): refused if the ticket's fix is another run's by now", positiveIntArg)
    .action(async (id: number, o: { by: string; run?: number }, cmd: Command) => {
      await approvalCommand(load(cmd), id, 'approve', o.by, undefined, o.run);
    });

  program
    .command('skip')
    .description('approval mode: drop a fix waiting for approval (or a ticket that needs a person)')
    .argument('<id>', 'ticket id', positiveIntArg)
    .option('--reason <text>', 'why (kept in the ticket history)')
    .option('--by <name>', 'who skips', actorArg, process.env.USER || 'cli')
    .option('--run <n>', "the run whose fix you looked at: refused if the ticket's fix is another run's by now", positiveIntArg)
    .action(async (id: number, o: { by: string; reason?: string; run?: number }, cmd: Command) => {
      await approvalCommand(load(cmd), id, 'skip', o.by, o.reason, o.run);
    });

  program
    .command('requeue')
    .description('queue a ticket again (awaiting approval, needs a person, failed or dropped) with its attempts reset')
    .argument('<id>', 'ticket id', positiveIntArg)
    .option('--by <name>', 'who requeues', actorArg, process.env.USER || 'cli')
    .option('--run <n>', 'the latest run you looked at (bugbot ticket <id> lists them): refused if the ticket has run again by now (its newer fix is not thrown away)', positiveIntArg)
    .action(async (id: number, o: { by: string; run?: number }, cmd: Command) => {
      await approvalCommand(load(cmd), id, 'requeue', o.by, undefined, o.run);
    });

  program
    .command('outcomes')
    .description('summarise the outcomes archive: clean/messy/failed, time to push, cost, tokens per stage')
    .option('--since <duration>', 'only runs pushed (or, not pushed, finished) within this long, e.g. 24h, 7d', '7d')
    .option('--json', 'JSON output (summary, notes and rows)')
    .action((o: { since: string; json?: boolean }, cmd: Command) => {
      const config = load(cmd);
      let windowMs: number;
      try {
        windowMs = parseSince(o.since);
      } catch (err) {
        fail((err as Error).message, 2);
      }
      const now = Date.now();
      // A home that is not there is a wrong folder, not a week without runs (an archive
      // alone, copied for a review, is read as it is).
      if (!existsSync(join(config.home, 'outcomes.jsonl'))) requireHome(config);
      const archive = new OutcomeArchive(config.home, { redact: configuredRedactor(config).text });
      const read = archive.read();
      if (read.skipped) process.stderr.write(`bugbot: skipped ${read.skipped} unreadable line(s) in ${archive.path} (a torn line from a crash, or not a row)\n`);
      // A fix approved today out of a run finished last week went out today: the window
      // takes the push's time. A row dated after now (a clock set wrong when it was
      // written) is in no window up to now.
      const { rows, future } = inWindow(latestRevisions(read.rows), now - windowMs, now);
      if (future) process.stderr.write(`bugbot: left out ${future} run(s) dated after now in ${archive.path} (a clock set wrong when they were written)\n`);
      const sum = summarize(rows);
      const notes = summaryNotes(sum);
      if (o.json) {
        // Written a piece at a time: a year of rows can be more text than one string holds.
        for (const piece of reportJson({ since: o.since, summary: sum, notes, rows })) process.stdout.write(jsonText(piece));
        process.stdout.write('\n');
        return;
      }
      const pct = (x: number) => `${Math.round(x * 100)}%`;
      const money = (x: number | null) => (x === null ? '-' : `$${x.toFixed(4)}`);
      // A lower bound says so where it is shown.
      const atLeast = sum.costUnknownRuns ? 'at least ' : '';
      process.stdout.write(
        [
          `outcomes over the last ${o.since}: ${sum.runs} run(s) on ${sum.tickets} ticket(s)`,
          `  clean ${sum.clean} (${pct(sum.rates.clean)})   messy ${sum.messy} (${pct(sum.rates.messy)})   failed ${sum.failed} (${pct(sum.rates.failed)})   interrupted ${sum.interrupted}`,
          `  median time from trigger to push: ${sum.medianTriggerToPushS === null ? '-' : `${Math.round(sum.medianTriggerToPushS)} s`}`,
          `  cost: ${atLeast}${money(sum.costUsd)} total, ${money(sum.costPerTicketUsd)} per ticket, ${money(sum.costPerCleanFixUsd)} per clean fix`,
          `  tokens per stage: ${Object.entries(sum.tokensPerStage).map(([k, v]) => `${k} ${v}`).join(', ') || '-'}`,
          `  denied agent actions: ${sum.denials}`,
          ...notes.map((n) => `  note: ${n}`),
          '',
        ].join('\n'),
      );
    });

  program
    .command('config')
    .description('print the resolved configuration (secrets shown only as set / unset)')
    .action((_o: unknown, cmd: Command) => {
      const config = load(cmd);
      const { secrets, ...rest } = config;
      // The variables the configuration reads secrets from, and whether each is set: never a value.
      const names = [...new Set(secretNames(rest))].sort();
      const secretState = Object.fromEntries(names.map((n) => [n, secrets.get(n) ? 'set' : 'unset']));
      printJson({ ...rest, secrets: secretState });
      // Checked against this shell's environment: the server's may hold more.
      const refused = servingProblems(rest, process.env);
      if (refused.length) process.stderr.write(`bugbot start would refuse to start with this environment:\n${refused.map((p) => `  - ${p}`).join('\n')}\n`);
      const warned = servingWarnings(rest, process.env);
      if (warned.length) process.stderr.write(`bugbot start would warn:\n${warned.map((p) => `  - ${p}`).join('\n')}\n`);
    });

  program
    .command('build')
    .description('prebuild the JavaScript bundles of the CLI, the MCP servers, intake\'s writer thread and the email parser\'s thread (bugbot start does it too)')
    .option('-f, --force', 'rebuild even the fresh ones')
    .action(async (o: { force?: boolean }) => {
      const { buildBundles, BUNDLE_DIR } = await import('../lib/bundle.ts');
      const results = await buildBundles({ force: o.force });
      process.stdout.write(buildReport(results));
      process.stdout.write(`in ${BUNDLE_DIR}\n`);
      if (results.some((r) => r.status === 'failed')) process.exitCode = 1;
    });

  registerDocsCommands(program, (cmd) => load(cmd));

  // Commander's own `help` answers a command it does not know with the whole usage, saying
  // nothing of the name: this one says it, as `bugbot <unknown>` does (exit 2).
  program
    .command('help')
    .description('display help for command')
    .argument('[command...]', 'a command (and its subcommand: docs index)')
    .action((names: string[]) => {
      let cmd: Command = program;
      for (const name of names) {
        const sub = cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
        if (!sub) cmd.error(`error: unknown command '${name}'`, { code: 'commander.unknownCommand' });
        cmd = sub;
      }
      cmd.help();
    });
  return program;
}

/** `bugbot build`'s table: a row a bundle, its status in one column whatever the names' lengths. */
export function buildReport(results: readonly BuildResult[]): string {
  const width = Math.max(0, ...results.map((r) => r.name.length));
  return results.map((r) => `${r.name.padEnd(width)}  ${r.status}${r.error ? `: ${r.error}` : ''}\n`).join('');
}

/** `labels`: an object of strings (as an alert's labels are), or nothing. */
function labelsOf(v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error('"labels" must be an object of strings');
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw new Error(`labels.${k} must be a string, not ${typeName(x)}`);
  return v as Record<string, string>;
}

/** A JSON value's type as an error names it. */
function typeName(x: unknown): string {
  return Array.isArray(x) ? 'an array' : x === null ? 'null' : typeof x;
}

/** bugbot's version, from its package.json. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/** Events on stdin may be full TriggerEvents or just {message, stack?, route?, service?, labels?}. */
function toEvent(o: Record<string, unknown>, lineNo: number): TriggerEvent {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('expected a JSON object');
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  // The names a log line or an alert annotation uses for it, as intake reads them.
  const message = str('message') ?? str('msg') ?? str('error') ?? str('title');
  if (!message) throw new Error('needs a "message" string (or "msg", "error", "title")');
  const now = new Date().toISOString();
  // Where it came from, as intake fingerprints it (an alert's rule name counts, see fingerprint.ts).
  const source = str('source') ?? 'manual';
  if (!(TRIGGER_SOURCES as readonly string[]).includes(source)) throw new Error(`"source" must be one of ${TRIGGER_SOURCES.join(', ')}`);
  // A field of another type is the line's error, as a wrong "message" is: dropped, it would
  // change the fingerprint without a word (a stack given as an array of frames). null is absent.
  for (const k of ['source', 'stack', 'route', 'service']) {
    if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'string') throw new Error(`"${k}" must be a string, not ${typeName(o[k])}`);
  }
  if (o.kind !== undefined && o.kind !== null && !(EVENT_KINDS as readonly unknown[]).includes(o.kind)) throw new Error(`"kind" must be one of ${EVENT_KINDS.join(', ')}`);
  const ev: TriggerEvent = {
    source: source as TriggerSource,
    kind: o.kind === 'latency' || o.kind === 'report' ? o.kind : 'error',
    title: str('title') ?? message.split('\n')[0]!,
    message,
    labels: labelsOf(o.labels),
    count: 1,
    firstSeen: now,
    lastSeen: now,
    human: false,
    sourceEventId: `stdin:${lineNo}`,
  };
  const service = str('service');
  const stack = str('stack');
  const route = str('route');
  if (service) ev.service = service;
  if (stack) ev.stack = stack;
  if (route) ev.route = route;
  return ev;
}

function formatTicketTable(tickets: Ticket[], counts: Record<string, number>): string {
  if (!tickets.length) return 'no tickets\n';
  const rows = tickets.map((t) => {
    const title = oneLine(t.title);
    return [String(t.id), t.state, severityText(t), String(t.count), oneLine(t.service ?? '-'), title.length > 60 ? title.slice(0, 57) + '...' : title];
  });
  const head = ['ID', 'STATE', 'SEVERITY', 'COUNT', 'SERVICE', 'TITLE'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const summary = Object.entries(counts).map(([s, n]) => `${s} ${n}`).join(', ');
  return [fmt(head), ...rows.map(fmt), '', `totals: ${summary}`, ''].join('\n');
}

/** How many of a ticket's occurrences `bugbot ticket` shows, newest first. */
const OCCURRENCES_SHOWN = 20;
/** `bugbot ticket`'s bounds on the rest: the latest runs and messages, the history's first and latest entries. */
const RUNS_SHOWN = 20;
const NOTIFICATIONS_SHOWN = 20;
const HISTORY_FIRST = 10;
const HISTORY_LATEST = 40;

/** The last `n` of a list kept oldest first. */
const latestOf = <T,>(items: T[], n: number): T[] => (items.length > n ? items.slice(-n) : items);

function formatTicket(d: {
  ticket: Ticket;
  occurrences: { at: string; count: number; source: string }[];
  related: { id: number; relation: string; state: string }[];
  runs: ReturnType<typeof runWithFolder>[];
  notifications: NotificationSummary[];
  notificationCounts: NotificationCounts;
  audit: { at: string; actor: string; action: string; detail: string | null }[];
}): string {
  const t = d.ticket;
  // A title, a name or a reason is one line: a newline in one would forge the lines after it.
  const lines = [
    `ticket ${t.id}: ${oneLine(t.title)}`,
    `  state        ${t.state}${t.claimedBy ? ` (claimed by ${oneLine(t.claimedBy)})` : ''}`,
    `  severity     ${oneLine(severityDetail(t))}`,
    `  triage       ${t.triageDecision ?? 'pending'}${t.triageReason ? `: ${oneLine(t.triageReason)}` : ''}`,
    `  source       ${t.source} (${t.kind})${t.human ? ', filed by a person' : ''}`,
    `  service      ${oneLine(t.service ?? '-')}`,
    `  route        ${oneLine(t.route ?? '-')}`,
    `  fingerprint  ${t.fingerprint}`,
    `  occurrences  ${t.count} (first ${t.firstSeen}, last ${t.lastSeen})`,
  ];
  if (t.classification) lines.push(`  classified   ${t.classification}`);
  if (t.settleDeadline) lines.push(`  settles at   ${t.settleDeadline}`);
  const relation: Record<string, string> = { regression_of: 'regression of', regressed_by: 'regressed by', cascade_of: 'held in the cascade of', cascade_member: 'holds in its cascade' };
  for (const r of d.related) lines.push(`  ${relation[r.relation] ?? r.relation.replace(/_/g, ' ')} ticket ${r.id} (${r.state})`);
  lines.push('', 'message:', indent(t.message));
  if (t.stack) lines.push('', 'stack:', indent(t.stack));
  if (d.occurrences.length) {
    const shown = d.occurrences.length >= OCCURRENCES_SHOWN ? ` (the latest ${OCCURRENCES_SHOWN})` : '';
    lines.push('', `occurrences${shown}:`);
    for (const o of d.occurrences) lines.push(`  ${o.at}  ${o.source}${o.count > 1 ? ` ×${o.count}` : ''}`);
  }
  if (d.runs.length) {
    lines.push('', 'runs:');
    const runs = latestOf(d.runs, RUNS_SHOWN);
    if (runs.length < d.runs.length) lines.push(`  (${d.runs.length - runs.length} earlier runs not shown: bugbot ticket ${t.id} --json lists every one)`);
    for (const r of runs) {
      lines.push(`  run ${r.id} attempt ${r.attempt} on worker ${r.worker_id}: ${r.state}${r.outcome ? ` → ${r.outcome}` : ''}${r.reason ? ` (${oneLine(r.reason)})` : ''}`);
      // Where its logs (worker.log, tests.log, devserver.log, the sessions') are, or were.
      const gone = r.folder_removed_at ? ` (removed by retention on ${r.folder_removed_at})` : r.folder_exists ? '' : ' (not there: never made, or removed)';
      lines.push(`    folder ${oneLine(r.folder)}${gone}`);
    }
  }
  if (d.notifications.length) {
    lines.push('', 'reporters told:');
    const told = latestOf(d.notifications, NOTIFICATIONS_SHOWN);
    const c = d.notificationCounts;
    if (told.length < c.total) {
      lines.push(`  (${c.total - told.length} earlier messages not shown; ${c.total} in all: ${c.sent} sent, ${c.failed} failed, ${c.pending} waiting; bugbot ticket ${t.id} --json lists the latest ${NOTIFICATIONS_LISTED})`);
    }
    for (const n of told) {
      lines.push(`  ${n.kind.replace(/_/g, ' ')} → ${oneLine(recipientText(n.to))}: ${n.state}${n.attempts > 1 ? ` after ${n.attempts} tries` : ''}${n.error ? ` (${oneLine(n.error)})` : ''}`);
    }
  }
  lines.push('', 'history:');
  // Its start (how it came to be) and its latest entries: an alert storm on a claimed
  // ticket, or thousands of reporters, made it a terminal's worth of scrolling.
  const entry = (a: (typeof d.audit)[number]) => `  ${a.at}  ${oneLine(a.actor).padEnd(14)} ${a.action}${a.detail ? `: ${oneLine(a.detail)}` : ''}`;
  if (d.audit.length <= HISTORY_FIRST + HISTORY_LATEST) for (const a of d.audit) lines.push(entry(a));
  else {
    for (const a of d.audit.slice(0, HISTORY_FIRST)) lines.push(entry(a));
    lines.push(`  … ${d.audit.length - HISTORY_FIRST - HISTORY_LATEST} entries between (bugbot ticket ${t.id} --json lists every one)`);
    for (const a of d.audit.slice(-HISTORY_LATEST)) lines.push(entry(a));
  }
  // The message and the stack keep their lines; what else they hold is shown, not obeyed.
  return terminalText(lines.join('\n') + '\n');
}

/**
 * A run with its folder (<home>/tickets/<id>/run-<n>: the logs its reason points to) and
 * whether the folder is still there; `folder_removed_at` says when retention removed it.
 */
function runWithFolder(config: BugbotConfig, ticketId: number, run: RunRow): RunRow & { folder: string; folder_exists: boolean } {
  const folder = workspacePaths(config, { id: ticketId }, run).ticketDir;
  return { ...run, folder, folder_exists: existsSync(folder) };
}

/** Why a run shows no sessions: its folder removed by retention, never made, or holding no logs (yet). */
function noSessionLogs(id: number, run: RunRow, t: { dir: string; folder: boolean }): string {
  const which = `run ${run.id} of ticket ${id}`;
  if (run.folder_removed_at) {
    return `${which} has no session logs any more: retention removed its folder on ${run.folder_removed_at} (retention.runFoldersDays); bugbot ticket ${id} still shows how it ended`;
  }
  if (!t.folder) return `${which} has no folder at ${t.dir} (it was removed): no session logs to show`;
  if (run.state === 'running') return `${which} has no session logs yet: it is running, and its first session has not started`;
  return `${which} left no session logs in ${t.dir} (it ended before its first session began)`;
}

/** A duration as a person reads it: 850 ms, 4.2 s, 42 s, 3m 05s. */
function seconds(ms: number): string {
  const s = ms / 1000;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, '0')}s`;
}

function sessionEndText(e: SessionEnd | null, cut: boolean): string {
  if (!e) return cut ? 'no end found (its log was cut before it)' : 'no end recorded (stopped before it ended, or still running)';
  const parts = [`${oneLine(e.subtype)} after ${e.turns ?? '?'} turns`];
  if (e.costUsd !== null) parts.push(`$${e.costUsd.toFixed(4)}`);
  if (e.durationMs !== null) parts.push(seconds(e.durationMs));
  return parts.join(', ');
}

/** `text`'s lines, the first after `first`, the rest under it. */
function hanging(first: string, text: string | string[]): string[] {
  const lines = Array.isArray(text) ? text : text.split('\n');
  const pad = ' '.repeat(first.length);
  return lines.map((l, i) => `${i === 0 ? first : pad}${l}`.trimEnd());
}

function entryText(e: TranscriptEntry): string[] {
  switch (e.kind) {
    case 'text':
      return hanging('  said: ', e.text);
    case 'tool_call':
      return [`  → ${oneLine(e.tool)}${e.arg ? `  ${oneLine(e.arg)}` : ''}`];
    case 'tool_result': {
      // A tab is layout (Read numbers its lines with one), not a character to show escaped.
      const lines = e.lines.length ? e.lines.map((l) => oneLine(l.replace(/\t/g, '  '))) : ['(no output)'];
      if (e.more) lines.push(`… ${e.more} more line(s)`);
      return hanging(`  ← ${e.tool ? `${oneLine(e.tool)} ` : ''}${e.isError ? 'error' : 'ok'}: `, lines);
    }
    case 'denial':
      return [`  denied: ${oneLine(e.tool)}${e.arg ? `  ${oneLine(e.arg)}` : ''}`];
    case 'end':
      return [`  ended: ${sessionEndText(e, false)}${e.errors.length ? ` (${e.errors.map(oneLine).join('; ')})` : ''}`];
  }
}

/** `bugbot transcript`: each session's summary line, then what it did; text from the agent and its tools escaped for the terminal. */
function formatTranscript(id: number, run: { id: number; attempt: number; state: string; outcome: string | null; reason: string | null }, sessions: TranscriptSession[]): string {
  const lines = [`ticket ${id}, run ${run.id} (attempt ${run.attempt}): ${run.state}${run.outcome ? ` → ${run.outcome}` : ''}${run.reason ? ` (${oneLine(run.reason)})` : ''}`];
  for (const s of sessions) {
    lines.push('', `== ${oneLine(s.label)}: ${sessionEndText(s.end, s.cut)}${s.model ? ` [${oneLine(s.model)}]` : ''}`);
    for (const e of s.entries) lines.push(...entryText(e));
    if (s.entriesCut) lines.push(`  (${s.entriesCut} more entries not shown)`);
    if (s.cut) lines.push(`  (cut: ${s.file} is ${s.bytes} bytes; only its first ${s.readBytes} were read: what the session did after them is not shown)`);
    if (s.unparseable) lines.push(`  (${s.unparseable} line(s) of ${s.file} were not stream-json events: skipped)`);
  }
  // What the agent and its tools wrote keeps its lines; the control characters in it are shown, not obeyed.
  return terminalText(lines.join('\n') + '\n');
}

function indent(s: string): string {
  return s
    .split('\n')
    .slice(0, 60)
    .map((l) => `  ${l}`)
    .join('\n');
}

/**
 * approve / skip / requeue. With a `bugbot start` of this home running, it acts (its
 * notifications go out from there); otherwise the decision is made here, on the same
 * database: the store's claim keeps the two from ever merging one fix twice.
 */
async function approvalCommand(config: BugbotConfig, id: number, action: 'approve' | 'skip' | 'requeue', by: string, reason?: string, run?: number): Promise<void> {
  const server = readServerInfo(config.home);
  let r = server ? await approvalViaServer(config, server, id, action, by, reason, run) : null;
  const via = r && server ? ` (via the control plane at ${server.url})` : '';
  if (!r) {
    const logger = createLogger({ level: 'warn' });
    const { store } = openExisting(config, logger);
    try {
      if (!store.getTicket(id)) fail(`no ticket ${id}`, 1);
      // No server to send the "fixed" notice: this process tells the reporters itself; what
      // it cannot send before it exits stays in the outbox for the server's next start.
      const [{ Notifier }, { Approvals }] = await Promise.all([import('./notify/index.ts'), import('./dispatcher/approvals.ts')]);
      const notifier = new Notifier({ config, store, logger });
      const approvals = new Approvals({ config, store, logger, archive: new OutcomeArchive(config.home, { redact: configuredRedactor(config).text }), onNotice: (notice) => void notifier.notify(notice) });
      // A merge is not stopped halfway (it runs in a process group of its own, out of the
      // terminal's reach): a Ctrl-C while it runs waits for it and its record, or staging
      // could hold a fix whose ticket still waits for approval (and a skip then drops it).
      const stopping = approveUninterrupted(action === 'approve');
      try {
        r = action === 'approve' ? await approvals.approve(id, by, { run }) : action === 'skip' ? approvals.skip(id, by, reason, { run }) : approvals.requeue(id, by, { run });
      } finally {
        stopping.done();
        await notifier.close();
      }
    } finally {
      store.close();
    }
  }
  const stateNamed = r.failure === 'not_found' || r.message.includes(`ticket ${id} is ${r.state}`);
  if (!r.ok) fail(`${r.message}${stateNamed ? '' : ` (ticket ${id} is ${r.state})`}${via}`, 1);
  // The message names the ticket too ("ticket 3 requeued (…)"): said once.
  process.stdout.write(`ticket ${id}: ${r.message.replace(new RegExp(`^ticket ${id} `), '')}; now ${r.state}${via}\n`);
  if (r.commit) process.stdout.write(`  commit ${r.commit}\n`);
  if (r.prUrl) process.stdout.write(`  pull request ${r.prUrl}\n`);
}

/**
 * While an approval merges here: SIGINT, SIGTERM and SIGHUP say the merge finishes first
 * (and are otherwise let be); the same signal again leaves at once, the merge running on
 * (a later approve or skip gives it up: reconcile.ts stopGivenUpMerge).
 */
function approveUninterrupted(on: boolean): { done(): void } {
  if (!on) return { done: () => undefined };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const seen = new Set<string>();
  const onSignal = (sig: NodeJS.Signals) => {
    if (seen.has(sig)) process.exit(sig === 'SIGINT' ? 130 : 143);
    seen.add(sig);
    if (sig === 'SIGHUP') return; // no terminal to tell
    process.stderr.write(`bugbot: ${sig}: the merge under way finishes first and is recorded (it is not stopped halfway); ${sig} again leaves it running without this command\n`);
  };
  for (const sig of signals) process.on(sig, onSignal);
  return { done: () => signals.forEach((sig) => process.off(sig, onSignal)) };
}

/** One worker as `bugbot status` shows it (api.ts workersFromStore, or the server's /api/workers). */
interface StatusWorker {
  worker: number;
  ticket: number;
  title: string;
  port: number | null;
  phase: string | null;
  elapsed_s: number;
  tokens: number;
  cost_usd: number;
  stopping?: boolean;
}

interface ServerStatus {
  /**
   * running: it answered; not-answering: its process is there, its API is not; starting: a
   * process holds the home's lock but names no address (server.json) yet; stopped: no server for this home.
   */
  state: 'running' | 'not-answering' | 'starting' | 'stopped';
  url: string | null;
  pid: number | null;
  /** Why its workers claim nothing (null: they do, or no server). */
  held: string | null;
  /** What it said of its workers, when it answered: its worker count and its live workers (those stopping too). */
  slots?: number;
  /** Slots paused on their own, with why and until when. */
  pausedSlots?: Array<{ worker: number; reason: string; until: string }>;
  workers?: StatusWorker[];
  /** Why events sent now would not be stored (its /readyz), when they would not. */
  refusing?: { since?: string; code: string; message: string };
  /** What went wrong asking it. */
  problem?: string;
}

/** Whether this home's `bugbot start` runs and answers, and why its workers hold if they do. */
async function serverStatus(config: BugbotConfig): Promise<ServerStatus> {
  const server = readServerInfo(config.home);
  // No server.json, but the home's lock is held: a start still starting up (building its
  // bundles, stopping what a killed one left running), or one whose server.json is gone.
  // Told "not running", the operator would start one, and be refused.
  if (!server) return { state: homeLocked(config.home) ? 'starting' : 'stopped', url: null, pid: null, held: null };
  const token = config.secrets.get(config.server.apiTokenEnv) ?? server.key;
  const base = { url: server.url, pid: server.pid };
  try {
    const res = await fetch(`${server.url}/api/workers`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
    if (res.status === 401) return { state: 'running', ...base, held: null, problem: `it refused this shell's credentials: ${refusedCredential(config)}` };
    const body = (await res.json()) as { held?: unknown; slots?: unknown; workers?: unknown; pausedSlots?: unknown };
    // A full disk or a stopped writer: alive, but what senders send now is refused.
    const ready = await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(5000) }).catch(() => null);
    const notReady = ready && ready.status === 503 ? ((await ready.json().catch(() => ({}))) as { since?: unknown; error?: { code?: unknown; message?: unknown } }) : null;
    const refusing =
      notReady && typeof notReady.error?.code === 'string' && typeof notReady.error.message === 'string'
        ? { ...(typeof notReady.since === 'string' ? { since: notReady.since } : {}), code: notReady.error.code, message: notReady.error.message }
        : undefined;
    return {
      state: 'running',
      ...base,
      ...(refusing ? { refusing } : {}),
      held: typeof body.held === 'string' ? body.held : null,
      ...(typeof body.slots === 'number' ? { slots: body.slots } : {}),
      ...(Array.isArray(body.workers) ? { workers: body.workers as NonNullable<ServerStatus['workers']> } : {}),
      ...(Array.isArray(body.pausedSlots) ? { pausedSlots: body.pausedSlots as NonNullable<ServerStatus['pausedSlots']> } : {}),
    };
  } catch (err) {
    const why = (err as Error).name === 'TimeoutError' ? 'no answer within 5 s' : (err as Error).message;
    return { state: 'not-answering', ...base, held: null, problem: why };
  }
}

function serverLine(s: ServerStatus): string {
  if (s.state === 'stopped') return 'not running (start it with bugbot start; queued tickets wait until then)';
  if (s.state === 'starting') return "starting up (a bugbot start holds this home's lock, bugbot.lock.db, and does not listen yet; or its server.json was removed): run this again in a moment";
  if (s.state === 'not-answering') return `not answering at ${s.url} (pid ${s.pid}: ${s.problem})`;
  return `running at ${s.url} (pid ${s.pid})${s.problem ? `; ${s.problem}` : ''}`;
}

/** Cancel through the running server; false when it cannot be reached (then the CLI cancels itself). */
async function cancelViaServer(config: BugbotConfig, server: ServerInfo, id: number, by: string): Promise<boolean> {
  const token = config.secrets.get(config.server.apiTokenEnv) ?? server.key;
  let res: Response;
  try {
    res = await fetch(`${server.url}/api/tickets/${id}/cancel`, {
      method: 'POST',
      headers: { 'x-bugbot-user': actorHeader(by), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    // Busy, not gone: it may still make the cancel, which must not be made twice.
    if ((err as Error).name === 'TimeoutError') fail(`the control plane at ${server.url} did not answer within 10 s; the cancel may still be made: see bugbot ticket ${id}`, 1);
    return false;
  }
  // Credentials this shell lacks: the cancel is made in the database, as with no control
  // plane up (which stops the worker at its next heartbeat).
  if (res.status === 401) return false;
  const body = (await res.json().catch(() => ({}))) as { was?: string; now?: string; error?: { message?: string } };
  if (!res.ok) fail(body.error?.message ?? `the control plane at ${server.url} answered ${res.status}`, 1);
  const note = body.was === 'running' ? ' (its worker is being stopped; its partial work stays on its branch)' : '';
  process.stdout.write(`ticket ${id}: ${body.was} → ${body.now}${note} (via the control plane at ${server.url})\n`);
  return true;
}

/** Ask the running server; null when it cannot be reached (then the CLI acts itself). */
async function approvalViaServer(
  config: BugbotConfig,
  server: ServerInfo,
  id: number,
  action: string,
  by: string,
  reason?: string,
  run?: number,
): Promise<ApprovalResult | null> {
  const url = server.url;
  // The API token when one is configured, else the server's local key.
  const token = config.secrets.get(config.server.apiTokenEnv) ?? server.key;
  let res: Response;
  try {
    res = await fetch(`${url}/api/tickets/${id}/${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-bugbot-user': actorHeader(by), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ ...(reason ? { reason } : {}), ...(run !== undefined ? { run } : {}) }),
      // An approval rebases and pushes (or opens a pull request): it may take a while, not forever.
      signal: AbortSignal.timeout(APPROVAL_TIMEOUT_MS),
    });
  } catch (err) {
    // Answering nothing is not "not running": acting here too could apply the decision twice.
    if ((err as Error).name === 'TimeoutError') {
      fail(`the control plane at ${url} (pid ${server.pid}) did not answer within ${APPROVAL_TIMEOUT_MS / 1000} s; nothing was decided here. Is it stuck? Stop it, then run this again`, 1);
    }
    return null;
  }
  const body = (await res.json().catch(() => ({}))) as Partial<ApprovalResult> & { error?: { code?: string; message?: string } };
  if (res.status === 401) fail(`the control plane at ${url} refused the request: ${refusedCredential(config)}`, 1);
  if (res.status === 404) return { ok: false, ticketId: id, state: 'dropped', message: body.error?.message ?? `no ticket ${id}`, failure: 'not_found' };
  if (typeof body.ok !== 'boolean' || !body.state) fail(`the control plane at ${url} answered ${res.status}: ${body.error?.message ?? 'no result'}`, 1);
  return { ...(body as ApprovalResult), failure: body.error?.code as ApprovalResult['failure'] };
}

const APPROVAL_TIMEOUT_MS = 120_000;

/** Why the server said 401: the token this shell has is not the server's, or it has none. */
function refusedCredential(config: BugbotConfig): string {
  const name = config.server.apiTokenEnv;
  return config.secrets.get(name) ? `${name} is set here, but it is not the server's API token` : `it has an API token: set ${name} to it`;
}

/**
 * The store of a home that exists, for commands that read or act on it: run where no
 * config is, they would otherwise make an empty home there and report nothing at all.
 */
function openExisting(config: BugbotConfig, logger: Logger = createLogger()): ReturnType<typeof openServices> {
  requireHome(config);
  // Opening the store writes (its journal, migrations): said now, not as SQLite's "readonly database".
  writableHome(config.home);
  return openServices(config, logger);
}

/** Refuses (exit 2, saying where it looked) unless `config.home` is a bugbot home. */
function requireHome(config: BugbotConfig): void {
  const db = join(config.home, 'bugbot.db');
  try {
    statSync(db);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') fail(`cannot read the bugbot home at ${config.home}: permission denied (bugbot's home is private to the user who runs it)`, 2);
  }
  if (!existsSync(db)) {
    refuseWithoutDatabase(config);
    // A config was found: its home just has not been made yet (bugbot start makes it).
    if (config.configPath) {
      fail(`no bugbot home at ${config.home} yet (the home of ${config.configPath}): bugbot start (or bugbot enqueue) creates it`, 2);
    }
    fail(
      `no bugbot home at ${config.home} (no bugbot.db there), and no bugbot.config.json here: ` +
        'run this where your bugbot.config.json is, or name it with --config (or the home with --home / BUGBOT_HOME)',
      2,
    );
  }
}

/** The states triage still decides: a claim takes the ticket from the bot. */
const TRIAGED: readonly TicketState[] = ['settling', 'queued', 'deferred'];

/** What a claim of a ticket triage no longer decides does: it is noted; a run or an approval under way goes on. */
function claimNote(id: number, by: string, state: TicketState, release: boolean): string {
  if (release) return `ticket ${id}: claim released (it is ${state})\n`;
  if (state === 'running') return `ticket ${id}: claimed by ${by}, but its run goes on (bugbot cancel ${id} stops it)\n`;
  if (state === 'awaiting_approval') {
    return `ticket ${id}: claimed by ${by}; its fix waits for a person to approve it, never automatically while claimed (bugbot approve ${id}, or bugbot skip ${id})\n`;
  }
  return `ticket ${id}: claimed by ${by} (it is ${state})\n`;
}

const HOME_FLAG = 'name a folder with --home (or BUGBOT_HOME, or home in the config)';

/**
 * Make the home (as the store would) for a command that writes it, or refuse (exit 2) one
 * it cannot use, by name: the store's own failure is the call's ("EEXIST: file already
 * exists, mkdir", "attempt to write a readonly database"), which says neither.
 */
function usableHome(config: BugbotConfig): void {
  const home = config.home;
  if (existsSync(home) && !statSync(home).isDirectory()) fail(`the bugbot home ${home} is a file, not a folder: ${HOME_FLAG}`, 2);
  try {
    mkdirSync(home, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'EEXIST') fail(`the bugbot home ${home} cannot be made: ${fileOnPath(home)} is a file, not a folder: ${HOME_FLAG}`, 2);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      fail(`the bugbot home ${home} cannot be made (${code === 'EROFS' ? 'read-only file system' : 'permission denied'}): ${HOME_FLAG}, one this user may write`, 2);
    }
    throw err;
  }
  refuseWithoutDatabase(config);
  writableHome(home);
}

/**
 * Refuses (exit 2) a home whose bugbot.db is gone while a control plane runs on it (`rm
 * bugbot.db*` under a running `bugbot start`, which goes on with the deleted file open and
 * stores nothing more): a command that reads would find no home, and one that writes
 * would make a second, empty database beside the server's.
 */
function refuseWithoutDatabase(config: BugbotConfig): void {
  const db = join(config.home, 'bugbot.db');
  if (existsSync(db) || !existsSync(config.home)) return;
  const server = readServerInfo(config.home);
  if (server) {
    fail(
      `bugbot start (pid ${server.pid}, ${server.url}) runs on this home (${config.home}) but its database file ${db} is gone: ` +
        'restart it (it makes a new, empty one there); until then it stores nothing, and no other command makes a database beside it',
      2,
    );
  }
  if (homeLocked(config.home)) {
    fail(`a bugbot start runs on this home (${config.home}: it holds bugbot.lock.db) but ${db} is not there: it is starting up (run this again in a moment), or its database file was deleted (restart it)`, 2);
  }
}

/** Refuses (exit 2) a home, or its database, this user may not write: made by another user, or read-only. */
function writableHome(home: string): void {
  const why = unwritable(home);
  if (why === 'read-only file system') {
    fail(`the bugbot home ${home} is on a read-only file system: nothing can be stored there (remount it read-write, or name another home with --home); commands that only read (status, tickets, ticket, transcript, outcomes) still work`, 2);
  }
  if (why) fail(`the bugbot home ${home} is not writable by this user (${why}): run bugbot as the user who owns it, or name another home with --home`, 2);
}

/** Why this user may not write the home or its database (null: it may, or they are not there yet). */
function unwritable(home: string): 'read-only file system' | 'permission denied' | null {
  for (const [path, mode] of [
    [home, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK],
    [join(home, 'bugbot.db'), fsConstants.R_OK | fsConstants.W_OK],
  ] as const) {
    try {
      accessSync(path, mode);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      if (code === 'EROFS') return 'read-only file system';
      if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
      throw err;
    }
  }
  return null;
}

/**
 * The store of an existing home for a command that only reads it. On one this user cannot
 * write (a read-only file system, another user's) it is opened read-only, which works
 * while SQLite's bugbot.db-shm is there (a control plane has the database open, or was
 * killed); without it, the command says how to read a copy. `readOnly`: why it was.
 */
function openForReading(config: BugbotConfig): { store: Store; readOnly: string | null } {
  requireHome(config);
  const why = unwritable(config.home);
  if (!why) return { store: openServices(config, createLogger()).store, readOnly: null };
  try {
    return { store: new Store(join(config.home, 'bugbot.db'), { readonly: true }), readOnly: why };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    // CANTOPEN on a read-only file system; READONLY (and its kinds) where permissions forbid making it.
    if (typeof code === 'string' && (code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_READONLY'))) {
      fail(
        `the bugbot home ${config.home} is ${why === 'read-only file system' ? 'on a read-only file system' : 'not writable by this user (permission denied)'}, and its database cannot be read in place: ` +
          'SQLite needs bugbot.db-shm beside it, which only a process that may write there makes. Copy the home somewhere writable (cp -a) and name the copy with --home',
        2,
      );
    }
    throw err;
  }
}

/** The first path from the root down to `path` that is a file, where a folder must be. */
function fileOnPath(path: string): string {
  let p = dirname(path);
  while (p !== dirname(p) && !existsSync(p)) p = dirname(p);
  return p;
}

/** Why this user cannot read a log file (null: it can, or it is not there yet). */
function unreadable(file: string): string | null {
  try {
    statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? 'permission denied on its folder' : null;
  }
  try {
    accessSync(file, fsConstants.R_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? 'permission denied' : null;
  }
}

/** The flag of each field of a ticket filed by hand, to name in what enqueue refuses. */
const ENQUEUE_FLAGS: Record<string, string> = { title: '--title', message: '--message', service: '--service', route: '--route', stack: '--stack-file', filed_by: '--by' };

/** A ticket filed by hand, or a usage error (exit 2) naming each flag whose value it refuses. */
function manualEvent(input: { title: string; message?: string; service?: string; route?: string; stack?: string; filed_by?: string }): TriggerEvent {
  const r = manualSchema.safeParse(input);
  if (!r.success) {
    fail(`invalid ticket: ${r.error.issues.map((i) => `${ENQUEUE_FLAGS[String(i.path[0])] ?? i.path.join('.')}: ${i.message}`).join('; ')}`, 2);
  }
  return parseManual(input, { now: new Date() });
}

/**
 * Text for a terminal. What triggers wrote (an email's subject, a log line, a title filed
 * through the API) may hold control characters: written raw, the terminal would obey an
 * escape sequence (clear the screen, rewrite the lines above, set the clipboard by OSC 52)
 * and a carriage return would hide what came before it. Each is shown as \xHH; newlines and
 * tabs stay. --json gets the text as stored (printJson).
 */
function terminalText(text: string): string {
  return (
    text
      .replace(/\r\n/g, '\n')
      // eslint-disable-next-line no-control-regex -- control characters are what it replaces
      .replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, hexEscape)
      // Bidirectional overrides, isolates and marks (U+061C, U+200E, U+200F) reorder what follows them on screen ("Trojan Source").
      .replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  );
}

/**
 * --json output. JSON escapes C0 itself; DEL, C1 (a terminal may take \x9b for CSI) and
 * the bidirectional controls it leaves raw, and `--json` is read on terminals too: those
 * are written as \u escapes, the same string to a JSON reader.
 */
function printJson(value: unknown): void {
  process.stdout.write(jsonText(JSON.stringify(value, null, 2)) + '\n');
}

/** JSON text with the characters a terminal would act on (C1 controls, bidi overrides) written as escapes. */
function jsonText(json: string): string {
  return json.replace(/[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** terminalText for one line (a table's cell, a title): its newlines and tabs shown too. */
function oneLine(text: string): string {
  return terminalText(text).replace(/[\n\t]/g, hexEscape);
}

function hexEscape(c: string): string {
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

function fail(message: string, code: number): never {
  process.stderr.write(`bugbot: ${message}\n`);
  process.exit(code);
}

/**
 * What a failure says. Expected ones (a bad request, a file or folder that is not there
 * or not writable, the database refusing) in one line; anything else with its stack, to
 * report.
 */
function failureText(err: unknown): string {
  if (err instanceof HttpError) return err.message;
  const e = err as NodeJS.ErrnoException | undefined;
  // SQLite says only "database or disk is full" / "disk I/O error": which disk, and what to do.
  if (e instanceof Error && (e.code === 'SQLITE_FULL' || e.code === 'ENOSPC')) return `${e.message}: the disk holding bugbot's home is full (free some space, then run this again)`;
  if (e instanceof Error && e.code?.startsWith('SQLITE_IOERR')) return `${e.message}: the disk holding bugbot's home is failing (${e.code})`;
  if (e instanceof Error && typeof e.code === 'string') return e.message;
  return e instanceof Error ? (e.stack ?? e.message) : String(err);
}

/**
 * What `bugbot start` does on a signal: the first stops it (the workers commit their
 * partial work and clean up, their tickets go back to the queue), within `budgetMs`. While
 * it stops, a second Ctrl-C (SIGINT) leaves at once, saying what it leaves behind; a
 * repeated SIGTERM or SIGHUP (a service manager, a closed terminal) changes nothing.
 */
export function stopOnSignals(d: {
  logger: Logger;
  budgetMs: number;
  workers: () => number;
  stop: () => Promise<void>;
  write: (text: string) => void;
  exit: (code: number) => void;
}): (signal: string) => void {
  let stopping = false;
  return (signal) => {
    if (stopping) {
      if (signal !== 'SIGINT') return;
      const left = d.workers();
      d.logger.warn('stopped at once (a second Ctrl-C)', { workers: left });
      d.write(`quitting now${left ? `: ${left} worker(s) left to finish on their own; the next bugbot start stops what is still running and requeues their tickets` : ''}\n`);
      d.exit(130);
      return;
    }
    stopping = true;
    d.logger.info('shutting down', { signal });
    const running = d.workers();
    d.write(`stopping (${signal})${running ? `: ${running} worker(s) commit their partial work and clean up first; their tickets go back to the queue (Ctrl-C again to quit at once)` : ''}\n`);
    const hard = setTimeout(() => {
      d.logger.error('shutdown took too long: exiting now; workers may be left running (the next start reconciles them)', { waitedSeconds: d.budgetMs / 1000 });
      d.exit(1);
    }, d.budgetMs);
    hard.unref();
    d.stop().then(
      () => d.exit(0),
      (err: unknown) => {
        d.logger.error('shutdown failed', { error: String(err) });
        d.exit(1);
      },
    );
  };
}

/** Set by `start`: a server whose stdout reader went away keeps serving. */
let serving = false;

export async function main(argv: string[]): Promise<void> {
  // The reader of our output went away (bugbot tickets --json | head -1): stop quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // A server keeps serving whatever became of its stdout (a file on a full disk: ENOSPC).
    if (serving) return;
    if (err.code !== 'EPIPE') throw err;
    process.exit(0);
  });
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    // Commander has printed its message (and usage) already.
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    if (err instanceof ConfigError) fail(err.message, 2);
    // Input the command was given and cannot take (an empty --title): a usage error too.
    if (err instanceof HttpError && err.status === 400) fail(err.message, 2);
    fail(failureText(err), 1);
  }
}
