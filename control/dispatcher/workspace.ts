/**
 * The ticket folder a worker runs in: `ticket.env` (trusted settings, shell-quoted),
 * `ticket.json`, `agent/ticket.md` (the brief, untrusted text fenced), and
 * `config/` (each phase's CLI arguments, hook settings and MCP configs). Paths are
 * decided here so the control plane knows them before the worker starts.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BugbotConfig } from '../config.ts';
import type { RunRow } from '../queue/leases.ts';
import type { Ticket } from '../types.ts';
import { renderBrief } from './brief.ts';
import { claudeBinary, mcpHostFiles, PHASES, phaseFiles, REPO_ROOT } from './phases.ts';

export interface Workspace {
  ticketDir: string;
  worktree: string;
  branch: string;
  port: number;
  /** The run's temporary folder (runTmpDir). */
  tmp: string;
}

/**
 * The run's temporary folder: TMPDIR of its Claude Code sessions, MCP servers, dev server
 * and tests. Claude Code leaves files in TMPDIR after every session (its sandbox's empty
 * mount points and proxy sockets, its per-user folder with task output); in the system's
 * temp folder they would pile up by the thousand. The worker removes this folder on its
 * way out, the pool or the reconciler when the worker could not. Unix sockets are made in
 * it (the kernel takes 107 bytes of path), so it stays short: under home, or where home's
 * path is long, under the system's temp folder, named after home.
 */
export function runTmpDir(home: string, ticketId: number, runId: number): string {
  return join(runTmpRoot(home), `${ticketId}-${runId}`);
}

/** Where runTmpDir() makes every run's folder. */
export function runTmpRoot(home: string): string {
  const root = join(home, 'tmp');
  return Buffer.byteLength(root) <= 48 ? root : join(tmpdir(), `bugbot-${createHash('sha256').update(resolve(home)).digest('hex').slice(0, 12)}`);
}

export function workspacePaths(cfg: BugbotConfig, ticket: Pick<Ticket, 'id'>, run: Pick<RunRow, 'id' | 'worker_id' | 'started_at'>): Workspace {
  const stamp = run.started_at.replace(/[-:T]/g, '').slice(0, 14);
  return {
    ticketDir: join(cfg.home, 'tickets', String(ticket.id), `run-${run.id}`),
    worktree: join(cfg.home, 'worktrees', `ticket-${ticket.id}-run-${run.id}`),
    branch: `bot/ticket-${ticket.id}-${stamp}`,
    port: cfg.target.basePort + run.worker_id,
    tmp: runTmpDir(cfg.home, ticket.id, run.id),
  };
}

/** Make a folder only this user may enter, or refuse one that is not this user's (or is a link). */
function ownFolder(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const st = lstatSync(path);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) {
    throw new Error(`${path} is not a folder of this user's (a link, or someone else's): refusing it as a run's temp folder`);
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function prepareWorkspace(cfg: BugbotConfig, ticket: Ticket, run: RunRow): Workspace {
  const ws = workspacePaths(cfg, ticket, run);
  for (const d of ['agent', 'config', 'home']) mkdirSync(join(ws.ticketDir, d), { recursive: true });
  ownFolder(runTmpRoot(cfg.home));
  ownFolder(ws.tmp);

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
  writeFileSync(join(ws.ticketDir, 'agent', 'ticket.md'), renderBrief(join(REPO_ROOT, 'prompts'), ticket, { planPath: join(ws.ticketDir, 'agent', 'plan.md') }));

  const ctx = { config: cfg, ticketDir: ws.ticketDir, worktree: ws.worktree, port: ws.port, tmp: ws.tmp };
  for (const phase of PHASES) {
    const { args, files } = phaseFiles(phase, ctx);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(ws.ticketDir, 'config', name), content, { mode: 0o600 });
    // NUL-separated: arguments may hold any character but NUL.
    writeFileSync(join(ws.ticketDir, 'config', `${phase}.args`), args.join('\0'));
  }
  // The MCP servers the harness starts before the first session (harness/lib/mcp-host.mjs).
  for (const [name, content] of Object.entries(mcpHostFiles(ctx))) writeFileSync(join(ws.ticketDir, 'config', name), content, { mode: 0o600 });
  return ws;
}
