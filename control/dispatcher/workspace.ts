/**
 * The ticket folder a worker runs in: `ticket.env` (trusted settings, shell-quoted),
 * `ticket.json`, `agent/ticket.md` (the brief, untrusted text fenced), and
 * `config/` (each phase's CLI arguments, hook settings and MCP configs). Paths are
 * decided here so the control plane knows them before the worker starts.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync, type Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BugbotConfig } from '../config.ts';
import type { RunRow } from '../queue/leases.ts';
import type { Ticket } from '../types.ts';
import { renderBrief, type CascadeError } from './brief.ts';
import { claudeBinary, mcpHostFiles, PHASES, phaseFiles, REPO_ROOT } from './phases.ts';

export interface Workspace {
  ticketDir: string;
  worktree: string;
  branch: string;
  port: number;
}

/** A workspace prepared for a worker: with the run's temp folder, made. */
export interface PreparedWorkspace extends Workspace {
  /** The run's temporary folder (runTmpDir). */
  tmp: string;
}

/**
 * A run's temporary folder: TMPDIR of its Claude Code sessions, MCP servers, dev server
 * and tests. Claude Code leaves files in TMPDIR after every session (its sandbox's empty
 * mount points and proxy sockets, its per-user folder with task output); in the system's
 * temp folder they would pile up by the thousand. The worker removes the folder on its
 * way out, the pool or the reconciler when the worker could not.
 */
export function runTmpDir(root: string, ticketId: number, runId: number): string {
  return join(root, `${ticketId}-${runId}`);
}

/** Where a home records its runs' temp root. */
const TMP_ROOT_RECORD = 'tmp-root';

/**
 * The folder the runs' temp folders go in: made once per home with mkdtemp in the system's
 * temp folder, so its path is short (Unix sockets are made below it: the kernel takes 107
 * bytes of path, and Claude Code hands its commands a per-user folder in it, which it
 * keeps under 44) and nobody can have planted it; recorded in `<home>/tmp-root`. A
 * recorded root that is gone (a reboot, a temp cleaner) or is not this user's own folder
 * is replaced when `create` is set; otherwise there is none (null).
 */
export function runTmpRoot(home: string, opts: { create?: boolean } = {}): string | null {
  const record = join(home, TMP_ROOT_RECORD);
  let root: string | undefined;
  try {
    root = readFileSync(record, 'utf8').trim();
  } catch {
    // none yet
  }
  if (root && isOwnFolder(root)) return root;
  if (!opts.create) return null;
  root = mkdtempSync(join(tmpdir(), 'bugbot-'));
  writeFileSync(`${record}.tmp`, `${root}\n`);
  renameSync(`${record}.tmp`, record);
  return root;
}

/**
 * At a clean stop: the temp root goes when no run left anything in it (the next run makes
 * another), so stopping bugbot leaves no empty folder in the system's temp folder.
 */
export function releaseRunTmpRoot(home: string): void {
  const root = runTmpRoot(home);
  if (!root) return;
  try {
    if (readdirSync(root).length) return;
    rmdirSync(root);
    rmSync(join(home, TMP_ROOT_RECORD), { force: true });
  } catch {
    // in use again, or gone: left as it is
  }
}

/** What the docs search looks for: the ticket's title, service, route, message and stack. */
export function docsQuery(t: Pick<Ticket, 'title' | 'service' | 'route' | 'message' | 'stack'>): string {
  return [t.title, t.service, t.route, t.message, t.stack].filter((x): x is string => Boolean(x?.trim())).join('\n') + '\n';
}

/** A real folder (not a link) of this user's. */
function isOwnFolder(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isDirectory() && (!process.getuid || st.uid === process.getuid());
  } catch {
    return false;
  }
}

export function workspacePaths(cfg: BugbotConfig, ticket: Pick<Ticket, 'id'>, run: Pick<RunRow, 'id' | 'worker_id' | 'started_at'>): Workspace {
  // 20261122T071908: the T keeps the digits short of a card number's length, which
  // redaction would mask in every message naming the branch (ticket-1-20261122071908
  // is 15 digits with a dash, and one in ten pass the Luhn check).
  const stamp = run.started_at.replace(/[-:]/g, '').slice(0, 15);
  return {
    ticketDir: join(cfg.home, 'tickets', String(ticket.id), `run-${run.id}`),
    worktree: join(cfg.home, 'worktrees', `ticket-${ticket.id}-run-${run.id}`),
    branch: `bot/ticket-${ticket.id}-${stamp}`,
    port: cfg.target.basePort + run.worker_id,
  };
}

/** An approval's scratch folder (harness/merge.sh's worktree, push.err, conflict.txt, merge.pid). */
export function approvalWorkDir(home: string, ticketId: number, approvalId: number): string {
  return join(home, 'approvals', `ticket-${ticketId}-${approvalId}`);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function prepareWorkspace(cfg: BugbotConfig, ticket: Ticket, run: RunRow, cascade: CascadeError[] = []): PreparedWorkspace {
  const paths = workspacePaths(cfg, ticket, run);
  // A run's folder that is there already is another database's run of the same numbers
  // (bugbot.db deleted, or a backup restored: ids are handed out again). What it holds
  // would pass for this run's: its `result` line wins over this run's (the first
  // harness_set_result does), its outcome.json reads as this run's end, its
  // environment-failure as this run's reason.
  if (existsSync(paths.ticketDir)) removeTree(paths.ticketDir);
  for (const d of ['agent', 'config', 'home']) mkdirSync(join(paths.ticketDir, d), { recursive: true });
  const ws: PreparedWorkspace = { ...paths, tmp: runTmpDir(runTmpRoot(cfg.home, { create: true })!, ticket.id, run.id) };

  const h = cfg.harness;
  const env: Record<string, string | number> = {
    BUGBOT_TICKET_ID: ticket.id,
    BUGBOT_RUN_ID: run.id,
    BUGBOT_ATTEMPT: run.attempt,
    BUGBOT_REPO: resolve(cfg.target.repo),
    BUGBOT_REMOTE: cfg.target.remote,
    BUGBOT_BASE: cfg.target.baseBranch,
    BUGBOT_STAGING: cfg.target.stagingBranch,
    BUGBOT_BRANCH: ws.branch,
    BUGBOT_WORKTREE: ws.worktree,
    BUGBOT_RUN_TMP: ws.tmp,
    BUGBOT_BASE_PORT: cfg.target.basePort,
    BUGBOT_DEV_COMMAND: cfg.target.devCommand,
    BUGBOT_TEST_COMMAND: cfg.target.testCommand,
    BUGBOT_CLAUDE: claudeBinary(cfg),
    BUGBOT_PROMPTS: join(REPO_ROOT, 'prompts'),
    BUGBOT_BIN: join(REPO_ROOT, 'bin', 'bugbot.js'),
    BUGBOT_HOME: cfg.home,
    ...(cfg.configPath ? { BUGBOT_CONFIG: cfg.configPath } : {}),
    BUGBOT_PUSH_MODE: h.pushMode === 'approve' ? 'approve' : 'autopush',
    BUGBOT_PUSH_RETRIES: h.pushRetries,
    BUGBOT_GIT_NAME: h.gitIdentity.name,
    BUGBOT_GIT_EMAIL: h.gitIdentity.email,
    BUGBOT_IDLE_S: h.idleTimeoutSeconds,
    BUGBOT_MODEL_RETRIES: h.modelRetries,
    BUGBOT_MODEL_TIMEOUT_MS: h.modelTimeoutSeconds * 1000,
    BUGBOT_ON_BANNED: h.onBannedAction,
    BUGBOT_DEV_TIMEOUT_S: h.devTimeoutSeconds,
    BUGBOT_TEST_TIMEOUT_S: h.testTimeoutSeconds,
  };
  for (const p of PHASES) env[`BUGBOT_${p.toUpperCase()}_WALL_S`] = h.phases[p].wallSeconds;
  writeFileSync(
    join(ws.ticketDir, 'ticket.env'),
    '# Written by the bugbot control plane for harness/worker.sh. Trusted settings only.\n' +
      Object.entries(env)
        .map(([k, v]) => `export ${k}=${shellQuote(String(v))}`)
        .join('\n') +
      '\n',
  );
  writeFileSync(join(ws.ticketDir, 'ticket.json'), JSON.stringify({ ticket, run: { id: run.id, attempt: run.attempt, worker: run.worker_id }, workspace: ws }, null, 2));
  writeFileSync(join(ws.ticketDir, 'agent', 'ticket.md'), renderBrief(join(REPO_ROOT, 'prompts'), ticket, { planPath: join(ws.ticketDir, 'agent', 'plan.md'), testCommand: cfg.target.testCommand, cascade }));
  // Phase 0 searches the docs with the ticket's own words: the brief's template around
  // them (its headings, the test command, the plan's path) would outrank them.
  writeFileSync(join(ws.ticketDir, 'query.txt'), docsQuery(ticket));

  const ctx = { config: cfg, ticketDir: ws.ticketDir, worktree: ws.worktree, port: ws.port, tmp: ws.tmp };
  for (const phase of PHASES) {
    const { args, files } = phaseFiles(phase, ctx);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(ws.ticketDir, 'config', name), content, { mode: 0o600 });
    // NUL-separated: arguments may hold any character but NUL.
    writeFileSync(join(ws.ticketDir, 'config', `${phase}.args`), args.join('\0'));
  }
  // The MCP servers the harness starts before the first session (harness/lib/mcp-host.mjs).
  for (const [name, content] of Object.entries(mcpHostFiles(ctx))) writeFileSync(join(ws.ticketDir, 'config', name), content, { mode: 0o600 });
  // Made last: a folder that fails above (a full disk) leaves no temp folder behind, which
  // nothing would remove before the next start (no worker runs to remove it).
  mkdirSync(ws.tmp, { recursive: true, mode: 0o700 });
  return ws;
}

/**
 * rm -rf that also takes what a run left unwritable (its HOME holds what its tests and
 * tools wrote: Go's module cache is read-only, and agent code may chmod anything).
 */
function removeTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    if (!['EACCES', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    writableDirs(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Give the owner rwx on every folder below dir (links not followed). */
function writableDirs(dir: string): void {
  try {
    chmodSync(dir, 0o700);
  } catch {
    // not ours to change: rmSync says so
  }
  let entries: Dirent[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) writableDirs(join(dir, e.name));
}

/** The environment of git commands that commit for a run outside the harness's worker (harness/worker.sh sets its own from BUGBOT_GIT_NAME / BUGBOT_GIT_EMAIL). */
export function gitIdentityEnv(cfg: Pick<BugbotConfig, 'harness'>): Record<string, string> {
  const { name, email } = cfg.harness.gitIdentity;
  return { GIT_AUTHOR_NAME: name, GIT_AUTHOR_EMAIL: email, GIT_COMMITTER_NAME: name, GIT_COMMITTER_EMAIL: email };
}
