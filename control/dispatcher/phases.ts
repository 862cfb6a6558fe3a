/**
 * What each Claude Code phase may do, as CLI arguments: the built-in tool set, the
 * permission allowlist (`--permission-mode dontAsk`: anything not listed is denied),
 * the MCP servers (`--strict-mcp-config`: nothing else loads, not even the
 * worktree's .mcp.json), the guard hook (`--settings`), no project settings, and the
 * turn and budget limits. The harness runs the phase with exactly these arguments.
 */
import { freshBundle } from '../../lib/bundle-fresh.mjs';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BugbotConfig } from '../config.ts';
import { resolveIndexPath } from '../docs-search/settings.ts';

export const PHASES = ['research', 'implement', 'review', 'docs'] as const;
export type Phase = (typeof PHASES)[number];

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface PhaseContext {
  config: BugbotConfig;
  ticketDir: string;
  worktree: string;
  port: number;
  /** The run's temporary folder (workspace.ts runTmpDir): TMPDIR of its sessions. */
  tmp: string;
}

/** JSON Schema of the review verdict (--json-schema). */
export const VERDICT_SCHEMA = {
  type: 'object',
  properties: {
    verdict: { type: 'string', enum: ['approved', 'needs-rework'] },
    reasons: { type: 'array', items: { type: 'string' } },
    edits: { type: 'integer', minimum: 0 },
  },
  required: ['verdict', 'reasons', 'edits'],
  additionalProperties: false,
} as const;

const READ_GIT = ['Bash(git log:*)', 'Bash(git show:*)', 'Bash(git diff:*)', 'Bash(git status:*)', 'Bash(git blame:*)', 'Bash(git grep:*)'];
const COMMIT = ['Bash(git add:*)', 'Bash(git commit:*)'];
const RUN = ['Bash(npm test:*)', 'Bash(npm run:*)', 'Bash(npx tsc:*)', 'Bash(npx eslint:*)', 'Bash(node:*)', 'Bash(curl:*)', 'Bash(ls:*)', 'Bash(mkdir:*)'];

const MCP_TOOLS = {
  browser: ['browser_navigate', 'browser_screenshot', 'browser_console_logs', 'browser_click', 'browser_dev_login'],
  loki: ['loki_query', 'loki_user_breadcrumbs'],
  db: ['db_query', 'db_describe'],
} as const;
type McpServerName = keyof typeof MCP_TOOLS;

/** Which MCP servers each phase gets (docs: none). */
const PHASE_MCP: Record<Phase, McpServerName[]> = {
  research: ['browser', 'loki', 'db'],
  implement: ['browser', 'loki', 'db'],
  review: ['browser'],
  docs: [],
};

interface PhasePolicy {
  builtins: string[];
  allowed: string[];
  /** Relative paths/prefixes of the worktree this phase may write (undefined: anywhere not protected). */
  writeRoots?: string[];
  /** Files of the ticket folder this phase may write. */
  ticketWrites: string[];
}

function policy(phase: Phase, cfg: BugbotConfig): PhasePolicy {
  const extra = cfg.harness.allowedCommands;
  switch (phase) {
    case 'research':
      return { builtins: ['Read', 'Grep', 'Glob', 'Write', 'Bash'], allowed: ['Read', 'Grep', 'Glob', 'Write', ...READ_GIT, 'Bash(curl:*)', 'Bash(ls:*)'], writeRoots: [], ticketWrites: ['agent/plan.md'] };
    case 'implement':
      return {
        builtins: ['Read', 'Grep', 'Glob', 'Edit', 'MultiEdit', 'Write', 'Bash'],
        allowed: ['Read', 'Grep', 'Glob', 'Edit', 'MultiEdit', 'Write', ...READ_GIT, ...COMMIT, ...RUN, ...testRule(cfg), ...extra],
        ticketWrites: [],
      };
    case 'review':
      return {
        builtins: ['Read', 'Grep', 'Glob', 'Edit', 'Bash'],
        allowed: ['Read', 'Grep', 'Glob', 'Edit', 'StructuredOutput', ...READ_GIT, ...COMMIT, 'Bash(npm test:*)', 'Bash(curl:*)', ...testRule(cfg), ...extra],
        ticketWrites: [],
      };
    case 'docs':
      return { builtins: ['Read', 'Grep', 'Glob', 'Edit', 'Write', 'Bash'], allowed: ['Read', 'Grep', 'Glob', 'Edit', 'Write', ...READ_GIT, ...COMMIT], writeRoots: ['docs/', 'CLAUDE.md'], ticketWrites: [] };
  }
}

/**
 * Credentials in the home of the user running bugbot (files and folders); the operator's
 * own Claude Code login (`.claude/.credentials.json`, `.claude.json`) among them. Kept
 * equal to HARNESS_CREDENTIALS in harness/lib/common.sh (test/unit/policy.test.ts).
 */
export const CREDENTIALS = ['.ssh', '.aws', '.gnupg', '.config/gh', '.config/gcloud', '.azure', '.kube', '.docker', '.netrc', '.git-credentials', '.npmrc', '.pgpass', '.claude', '.claude.json', '.config/claude'];

/**
 * What runs later, outside any sandbox, from the home of the user running bugbot: shell
 * and desktop session start-up and logout files, git's configuration (the harness's own
 * git reads it), systemd user units and environment, a folder login shells put on PATH,
 * the folders Node looks in for a module it cannot find (the control plane's `ws` asks
 * for an optional bufferutil). Kept equal to
 * HARNESS_STARTUP in harness/lib/common.sh (test/unit/policy.test.ts).
 */
export const STARTUP = [
  '.bashrc',
  '.profile',
  '.bash_profile',
  '.bash_login',
  '.bash_logout',
  '.zshenv',
  '.zprofile',
  '.zshrc',
  '.zlogin',
  '.zlogout',
  '.pam_environment',
  '.xprofile',
  '.xsessionrc',
  '.gitconfig',
  '.config/git',
  '.config/systemd',
  '.config/environment.d',
  '.config/autostart',
  '.config/fish',
  '.local/bin',
  '.node_modules',
  '.node_libraries',
];

/**
 * Credentials whose files, made by the agent, something outside the sandbox would act on:
 * npm ci's ~/.npmrc, ssh's config, Claude Code's own, and the operator's cloud tools
 * (an AWS credential_process, a kubeconfig exec plugin, a Docker credsStore, gh aliases).
 * The folders among them, then the files.
 */
const GUARDED_CREDENTIAL_DIRS = ['.ssh', '.claude', '.aws', '.kube', '.docker', '.config/gh'];
const GUARDED_CREDENTIALS = [...GUARDED_CREDENTIAL_DIRS, '.npmrc', '.netrc', '.git-credentials', '.claude.json'];
/** Of STARTUP and those, what guardOperatorHome makes as a folder when missing (the rest are files). */
const GUARDED_DIRS = new Set([...STARTUP.filter((p) => p.startsWith('.config/') || p.startsWith('.local/') || p.startsWith('.node_')), ...GUARDED_CREDENTIAL_DIRS]);
/** Paths guardOperatorHome could not make, already logged once (a home this user cannot write: every run would say it again). */
const unguardable = new Set<string>();

/**
 * Make, empty, what is missing of STARTUP (and of the credentials something outside the
 * sandbox would act on) in the home of the user running bugbot, once, before any run.
 * Claude Code's Linux sandbox leaves that home writable and keeps read-only only the
 * files that exist (denyWrite, see unwritable()); one that is missing it blocks with a
 * placeholder mounted for the session and removed at its end, and removing it there takes
 * it away from every other session of the same home (eight workers share it). A missing
 * ~/.gitconfig or ~/.config/git/attributes made by the agent would name a filter the
 * harness's own git runs, unconfined; a ~/.bash_profile would run at the next login. An
 * empty file changes nothing for the programs that read it, but a ~/.bash_profile hides
 * ~/.profile from login shells: the one made here reads it, as they would without it.
 * Returns what was made, and what could not be (with why).
 */
export function guardOperatorHome(home = homedir()): { made: string[]; failed: Array<{ path: string; error: string }> } {
  const made: string[] = [];
  const failed: Array<{ path: string; error: string }> = [];
  if (!home || home === '/' || !existsSync(home)) return { made, failed };
  for (const rel of [...STARTUP, ...GUARDED_CREDENTIALS]) {
    // bash reads the first of ~/.bash_profile, ~/.bash_login, ~/.profile: with the first
    // there, the second is never read, and one already there is read as it is.
    if (rel === '.bash_login' && existsSync(join(home, '.bash_profile'))) continue;
    if (rel === '.bash_profile' && existsSync(join(home, '.bash_login'))) continue;
    const path = join(home, rel);
    if (existsSync(path)) continue;
    try {
      if (GUARDED_DIRS.has(rel)) mkdirSync(path, { recursive: true, mode: 0o700 });
      else {
        mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
        const content =
          rel === '.bash_profile'
            ? '# Made by bugbot, so that the agent\'s sandbox keeps it read-only (see its docs/security.md).\n# Login shells read ~/.profile, as they would without this file.\n[ -f ~/.profile ] && . ~/.profile\n'
            : rel === '.claude.json'
              ? '{}\n'
              : '';
        writeFileSync(path, content, { flag: 'wx', mode: 0o600 });
      }
      made.push(path);
    } catch (err) {
      if (unguardable.has(path)) continue;
      unguardable.add(path);
      failed.push({ path, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
    }
  }
  return { made, failed };
}

/**
 * What the agent's commands may not read even inside the sandbox (which otherwise reads
 * the whole machine): the operator's credentials, the control plane's database, its
 * local key (server.json) and outcomes archive, and every ticket's folder, this one's
 * included: other tickets hold other people's reports, and this one's config holds the
 * MCP servers' credentials; and the runs' temp folders (Claude Code's task output).
 * `readable` gives back what the commands need of their own ticket: its agent/ folder,
 * the session's home and the run's temp folder.
 * Code the agent writes runs there (npm test), where the guard cannot see what it opens.
 */
function unreadable(cfg: BugbotConfig, ticketDir: string, tmp: string): string[] {
  const home = homedir();
  const store = join(cfg.home, 'bugbot.db');
  const state = [store, `${store}-wal`, `${store}-shm`, join(cfg.home, 'bugbot.lock.db'), join(cfg.home, 'server.json'), join(cfg.home, 'outcomes.jsonl')];
  // The workers' lock on the shared checkout (harness_git_locked): flock needs only a read
  // descriptor, so a command holding it would stall every worker's fetch.
  const gitLock = resolve(cfg.target.repo, '.git', 'bugbot.lock');
  // The other runs' worktrees and the test gate's checkouts beside them, and the approvals'
  // merge checkouts: the sandbox leaves them writable (under /home, /root, /tmp or /var, as
  // bugbot's home usually is), and what a session wrote there would be another ticket's
  // fix, or pass this one's test gate. Only the session's own worktree is let back in.
  const checkouts = [join(cfg.home, 'worktrees'), join(cfg.home, 'approvals')];
  return [...[...CREDENTIALS.map((p) => join(home, p)), ...state, gitLock].filter((p) => existsSync(p)), join(cfg.home, 'tickets'), ticketDir, dirname(tmp), ...checkouts];
}

/**
 * What unreadable() took away that the agent's commands need: their worktree, their
 * ticket's agent/ folder and home, their run's temp folder, and the git excludes file every
 * git command of the run reads (core.excludesFile, see harness/worker.sh).
 */
function readable(ticketDir: string, worktree: string, tmp: string): string[] {
  return [worktree, join(ticketDir, 'agent'), join(ticketDir, 'home'), join(ticketDir, 'config', 'git-excludes'), tmp];
}

/**
 * bugbot's own code and dependencies: the harness runs them for every later ticket,
 * outside the agent's sandbox (not the whole checkout: bugbot's home may be inside it).
 * Kept equal to HARNESS_OWN_CODE in harness/lib/common.sh (test/unit/policy.test.ts).
 */
export const OWN_CODE = ['bin', 'control', 'harness', 'lib', 'mcp', 'prompts', 'node_modules', 'package.json', 'tsconfig.json'];

/**
 * What the agent's commands may not write even where the sandbox lets them (Claude Code's
 * Linux sandbox leaves /home, /root, /tmp, /var, /opt writable besides the working
 * folder): bugbot's state (database, local key, outcomes archive), bugbot's own code, the
 * base checkout's git hooks and config (they would run later, outside any sandbox) and its
 * installed dependencies, and the operator's credentials and shell start-up files.
 */
function unwritable(cfg: BugbotConfig): string[] {
  const home = homedir();
  const store = join(cfg.home, 'bugbot.db');
  const state = [store, `${store}-wal`, `${store}-shm`, join(cfg.home, 'bugbot.lock.db'), join(cfg.home, 'server.json'), join(cfg.home, 'outcomes.jsonl'), join(cfg.home, 'docs-index')];
  const startup = STARTUP.map((p) => join(home, p));
  const git = ['hooks', 'config', 'info'].map((p) => resolve(cfg.target.repo, '.git', p));
  // The base checkout's installed dependencies: every run's worktree and test gate copies them.
  const deps = ['node_modules', 'package-lock.json'].map((p) => resolve(cfg.target.repo, p));
  const code = OWN_CODE.map((p) => join(REPO_ROOT, p));
  return [...state, ...docsIndexFolder(cfg), ...code, ...git, ...deps, ...CREDENTIALS.map((p) => join(home, p)), ...startup].filter((p) => existsSync(p));
}

/**
 * The folder of a docs index configured elsewhere than `<home>/docs-index` (docs.indexPath;
 * config.ts makes sure it is a folder of its own), made if missing: the whole folder, since
 * SQLite's -wal and -shm files beside the index come and go. A chunk written into the index
 * would reach every later ticket's pre-context.
 */
function docsIndexFolder(cfg: BugbotConfig): string[] {
  if (!cfg.docs.indexPath) return [];
  const dir = dirname(resolveIndexPath(cfg.home, cfg.target.repo, cfg.docs));
  try {
    mkdirSync(dir, { recursive: true });
  } catch {
    // Not ours to make: left out if it is not there (existsSync below), as any path.
  }
  return [dir];
}

/** The configured test command as an allow rule (e.g. "Bash(make test:*)"). */
function testRule(cfg: BugbotConfig): string[] {
  const cmd = cfg.target.testCommand.trim();
  return cmd && !cmd.startsWith('npm test') ? [`Bash(${cmd}:*)`] : [];
}

/** The Claude Code binary: configured, else the one installed with bugbot, else PATH. */
export function claudeBinary(cfg: BugbotConfig): string {
  if (cfg.harness.claude) return cfg.harness.claude;
  const bundled = join(REPO_ROOT, 'node_modules', '.bin', 'claude');
  return existsSync(bundled) ? bundled : 'claude';
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Which MCP servers are configured at all (a server with nothing to serve is left out). */
export function configuredServers(cfg: BugbotConfig): McpServerName[] {
  const out: McpServerName[] = [];
  if (cfg.target.devCommand) out.push('browser');
  if (cfg.mcp.loki.url || cfg.mcp.loki.files.length) out.push('loki');
  if (Object.keys(cfg.mcp.db.tables).length && (cfg.mcp.db.driver === 'sqlite' || cfg.secrets.get(cfg.mcp.db.urlEnv))) out.push('db');
  return out;
}

export interface PhaseFiles {
  /** The CLI arguments (without the prompt, which goes on stdin). */
  args: string[];
  /** Files to write into config/, name → content. */
  files: Record<string, string>;
}

/** Everything one phase needs, for the harness to run it as-is. */
export function phaseFiles(phase: Phase, ctx: PhaseContext): PhaseFiles {
  const { config: cfg, ticketDir, worktree } = ctx;
  const p = policy(phase, cfg);
  const limits = cfg.harness.phases[phase];
  const servers = PHASE_MCP[phase].filter((s) => configuredServers(cfg).includes(s));
  const mcpTools = servers.flatMap((s) => MCP_TOOLS[s].map((t) => `mcp__${s}__${t}`));
  const configDir = join(ticketDir, 'config');
  const files: Record<string, string> = {};

  // One policy file read by both guard layers: the hook and the stream watcher.
  const policyFile = join(configDir, `${phase}.policy.json`);
  files[`${phase}.policy.json`] = JSON.stringify(
    { phase, worktree, ticketDir, ticketWrites: p.ticketWrites, writeRoots: p.writeRoots ?? null, mcpTools, origins: browserOrigins(ctx) },
    null,
    2,
  );
  const guard = ['node', join(REPO_ROOT, 'harness/hooks/guard.mjs'), '--policy', policyFile].map(shellQuote).join(' ');
  files[`${phase}.settings.json`] = JSON.stringify(
    {
      hooks: { PreToolUse: [{ matcher: '*', hooks: [{ type: 'command', command: guard, timeout: 30 }] }] },
      // Every Bash command runs in Claude Code's OS sandbox (bubblewrap + socat on
      // Linux): writes only to the worktree, the session home and temp; network only to
      // loopback. CLAUDE_CODE_SUBPROCESS_ENV_SCRUB requires it, and we fail closed.
      sandbox: {
        enabled: true,
        failIfUnavailable: true,
        allowUnsandboxedCommands: false,
        filesystem: {
          allowWrite: [worktree, join(ticketDir, 'home'), ctx.tmp],
          denyRead: unreadable(cfg, ticketDir, ctx.tmp),
          allowRead: readable(ticketDir, worktree, ctx.tmp),
          denyWrite: unwritable(cfg),
        },
        network: { allowedDomains: ['localhost', '127.0.0.1'], allowLocalBinding: true },
      },
    },
    null,
    2,
  );

  const mcpServers: Record<string, unknown> = {};
  for (const s of servers) {
    files[`mcp-${s}.settings.json`] = JSON.stringify(mcpSettings(s, ctx), null, 2);
    const socket = mcpSocket(ticketDir, s);
    // The harness started the server already (mcpHostFiles): the session only connects.
    mcpServers[s] = socket
      ? { type: 'stdio', command: 'socat', args: ['STDIO', `UNIX-CONNECT:${socket},retry=${SOCKET_RETRIES},interval=${SOCKET_INTERVAL_S}`] }
      : { type: 'stdio', ...mcpLaunch(s, ctx) };
  }
  files[`${phase}.mcp.json`] = JSON.stringify({ mcpServers }, null, 2);

  const model = limits.model ?? cfg.harness.model;
  const args = [
    '-p',
    '--output-format',
    'stream-json',
    '--verbose',
    '--permission-mode',
    'dontAsk',
    '--setting-sources',
    'user',
    '--settings',
    join(configDir, `${phase}.settings.json`),
    '--strict-mcp-config',
    '--mcp-config',
    join(configDir, `${phase}.mcp.json`),
    '--tools',
    p.builtins.join(','),
    '--allowedTools',
    [...p.allowed, ...mcpTools].join(','),
    '--max-turns',
    String(limits.maxTurns),
    '--max-budget-usd',
    String(limits.maxBudgetUsd),
    '--no-session-persistence',
    ...(model ? ['--model', model] : []),
    ...(phase === 'research' ? ['--add-dir', join(ticketDir, 'agent')] : []),
    ...(phase === 'review' ? ['--json-schema', JSON.stringify(VERDICT_SCHEMA)] : []),
  ];
  return { args, files };
}

/** How to start one MCP server: its bundle, else its source through tsx; its settings; its secrets. */
function mcpLaunch(s: McpServerName, ctx: PhaseContext): { command: string; args: string[]; env: Record<string, string> } {
  // Prebuilt when `bugbot start` could (lib/bundle.ts): a bundle starts in a third of tsx's time.
  const bundle = freshBundle(`mcp-${s}`);
  return {
    command: process.execPath,
    args: [...(bundle ? [bundle] : ['--import', tsxLoader(), join(REPO_ROOT, 'mcp', s, 'main.ts')]), '--settings', join(ctx.ticketDir, 'config', `mcp-${s}.settings.json`)],
    env: mcpEnv(s, ctx.config),
  };
}

/**
 * How long a session's socat shim keeps trying its server's socket (10 s): a server
 * starts in well under a second, and the host restarts one that died within about that.
 */
const SOCKET_RETRIES = 200;
const SOCKET_INTERVAL_S = 0.05;

/**
 * Where the harness's copy of server `s` listens for this ticket (in the ticket folder,
 * which the agent's commands and code cannot see), or undefined where a Unix socket
 * cannot be used: a path over the kernel's 107 bytes, or one socat's address syntax
 * would misread. The session then starts the server itself, as a child.
 */
export function mcpSocket(ticketDir: string, s: McpServerName): string | undefined {
  const path = join(ticketDir, 'mcp', `${s}.sock`);
  return Buffer.byteLength(path) <= 107 && /^[\w./-]+$/.test(path) ? path : undefined;
}

/**
 * The MCP servers the harness starts for the whole run (harness/lib/mcp-host.mjs reads
 * mcp-host.json): every server some phase uses, each on its socket, with the settings
 * file phaseFiles() writes for it. Claude Code waits for its MCP servers before its
 * first request; a server already running answers through its shim in milliseconds
 * instead of the few hundred a start costs, in every phase. Empty when no server is
 * configured.
 */
export function mcpHostFiles(ctx: PhaseContext): Record<string, string> {
  const used = new Set(PHASES.flatMap((p) => PHASE_MCP[p]));
  const servers: Record<string, unknown> = {};
  for (const s of configuredServers(ctx.config).filter((x) => used.has(x))) {
    const socket = mcpSocket(ctx.ticketDir, s);
    if (socket) servers[s] = { ...mcpLaunch(s, ctx), socket };
  }
  return Object.keys(servers).length ? { 'mcp-host.json': JSON.stringify({ servers }, null, 2) } : {};
}

function tsxLoader(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
}

/**
 * What the browser may open (and the guard lets Bash fetch on loopback): the worker's own
 * dev server, plus the configured origins.
 */
function browserOrigins(ctx: PhaseContext): string[] {
  return [...new Set([`http://127.0.0.1:${ctx.port}`, `http://localhost:${ctx.port}`, ...ctx.config.mcp.browser.origins])];
}

/** Each MCP server's settings file: the configured section plus this worker's dev-server origin. */
function mcpSettings(s: McpServerName, ctx: PhaseContext): unknown {
  const m = ctx.config.mcp;
  if (s === 'browser') return { ...m.browser, origins: browserOrigins(ctx), startupWaitMs: ctx.config.harness.devTimeoutSeconds * 1000 };
  return s === 'loki' ? m.loki : m.db;
}

/** The secrets an MCP server needs, by the names its settings give, and nothing else. */
function mcpEnv(s: McpServerName, cfg: BugbotConfig): Record<string, string> {
  const names: Array<string | undefined> =
    s === 'loki'
      ? [cfg.mcp.loki.tokenEnv, cfg.mcp.loki.basicUserEnv, cfg.mcp.loki.basicPasswordEnv, cfg.mcp.loki.hashSaltEnv]
      : s === 'db'
        ? [cfg.mcp.db.urlEnv]
        : Object.values(cfg.mcp.browser.roles).flatMap((r) =>
            Object.values(r.form?.fields ?? {}).flatMap((v) => (typeof v === 'object' ? [v.env] : [])),
          );
  // The server is TypeScript run through tsx from the worktree: compile it with bugbot's
  // tsconfig, never one the agent can edit there (its "paths" could swap our imports).
  const env: Record<string, string> = { TSX_TSCONFIG_PATH: join(REPO_ROOT, 'tsconfig.json') };
  for (const n of names) {
    const v = cfg.secrets.get(n);
    if (n && v) env[n] = v;
  }
  return env;
}
