// What an agent may never do, whatever its allowlist says. Used twice: by the
// PreToolUse hook (harness/hooks/guard.mjs), which denies a call before it runs, and
// by the stream watcher (harness/lib/run-phase.mjs), which kills a session when a
// banned call got through. Plain JavaScript so both start in milliseconds.
import { readFileSync } from 'node:fs';
import { isAbsolute, normalize, relative, resolve } from 'node:path';

/** Paths no phase may write: repository machinery, agent config, CI, hooks. */
const PROTECTED = [
  /^\.git(\/|$)/,
  /^\.claude(\/|$)/,
  /^\.mcp\.json$/,
  /^\.github\/workflows\//,
  /^\.gitlab-ci\.yml$/,
  /^\.circleci\//,
  /^\.husky(\/|$)/,
  /^\.git(hooks|modules|attributes)$/,
  /(^|\/)\.env(\.|$)(?!example)/,
];

/** Paths no phase may read: credentials and process environments. */
const SECRET_READS = [
  /(^|\/)\.ssh(\/|$)/,
  /(^|\/)\.aws(\/|$)/,
  /(^|\/)\.gnupg(\/|$)/,
  /(^|\/)\.docker\/config\.json$/,
  /(^|\/)\.netrc$/,
  /(^|\/)\.npmrc$/,
  /(^|\/)\.git-credentials$/,
  /(^|\/)\.config\/gh(\/|$)/,
  /^\/proc\/[^/]+\/(environ|cmdline|mem)$/,
  /^\/etc\/(shadow|gshadow|sudoers)/,
  /(^|\/)\.env(\.|$)(?!example)/,
];

/** Commands never run by an agent, with the reason given to the model. */
const BANNED_COMMANDS = new Map([
  ...['sudo', 'su', 'doas', 'chroot', 'nsenter', 'mount', 'umount', 'unshare'].map((c) => [c, 'privilege escalation']),
  ...['ssh', 'scp', 'sftp', 'rsync', 'nc', 'ncat', 'netcat', 'socat', 'telnet', 'ftp'].map((c) => [c, 'network tools other than loopback HTTP are not allowed']),
  ...['crontab', 'systemctl', 'service', 'shutdown', 'reboot'].map((c) => [c, 'changing the system is not allowed']),
]);

/** Git subcommands never run by an agent. */
const BANNED_GIT = new Map([
  ['push', "pushing is the harness's job, never the agent's"],
  ['config', 'changing git configuration is not allowed'],
  ['remote', 'changing git remotes is not allowed'],
  ['filter-branch', 'rewriting history is not allowed'],
  ['update-ref', 'changing refs directly is not allowed'],
  ['replace', 'changing refs directly is not allowed'],
  ['gc', 'repository maintenance is not allowed'],
  ['worktree', 'managing worktrees is the harness\'s job'],
]);

/** Split a shell command into its simple commands (by ; && || | newlines and substitutions). */
function segments(cmd) {
  return cmd
    .split(/;|&&|\|\||\||\n|\$\(|`|\(|\)/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The words of a simple command, without leading VAR=value assignments. */
function words(segment) {
  const w = segment.split(/\s+/);
  while (w.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(w[0])) w.shift();
  return w;
}

function checkSegment(seg) {
  const w = words(seg);
  if (!w.length) return null;
  const name = w[0].replace(/^.*\//, '').replace(/^['"]|['"]$/g, '');
  if (BANNED_COMMANDS.has(name)) return deny(`${BANNED_COMMANDS.get(name)} (${name})`);
  if (seg.includes('--no-verify')) return deny("--no-verify skips the repository's checks");
  if (name === 'git') {
    const sub = w.slice(1).find((x) => !x.startsWith('-'));
    if (sub && BANNED_GIT.has(sub)) return deny(`${BANNED_GIT.get(sub)} (git ${sub})`);
    if (sub === 'reset' && w.includes('--hard')) return deny('git reset --hard destroys work');
    if (sub === 'clean' && w.some((x) => /^-[a-zA-Z]*f/.test(x))) return deny('git clean -f destroys untracked work');
  }
  if (name === 'rm' && w.some((x) => /^-[a-zA-Z]*[rR]/.test(x) || x === '--recursive')) {
    const target = w.slice(1).find((x) => !x.startsWith('-') && /^(\/|~|\$HOME|\.\.)/.test(x));
    if (target) return deny(`rm -r on an absolute, home or parent path (${target})`);
  }
  if ((name === 'env' || name === 'printenv') && w.slice(1).every((x) => x.startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*$/.test(x))) {
    return deny('dumping the environment is not allowed');
  }
  if ((name === 'export' && w[1] === '-p') || (name === 'declare' && /x/.test(w[1] ?? '')) || (name === 'set' && w.length === 1)) {
    return deny('dumping the environment is not allowed');
  }
  if (name === 'npm' && ['publish', 'adduser', 'login', 'token'].includes(w[1] ?? '')) return deny('publishing is not allowed');
  if (name === 'chmod' && w.some((x) => /\+s|[4267][0-7]{3}/.test(x))) return deny('setuid is not allowed');
  return null;
}

/** Argument patterns that are banned wherever they appear. */
const BANNED_ANYWHERE = [
  [/\/proc\/[^\s/]+\/(environ|cmdline|mem)\b/, 'reading process environments is not allowed'],
  [/(^|[\s'"=])(~|\$HOME|\/root|\/home\/[^/\s]+)\/\.(ssh|aws|gnupg|netrc|npmrc|git-credentials|config\/gh)\b/, 'reading credentials is not allowed'],
];

const URL_RE = /\bhttps?:\/\/([^/\s:'"]+)/g;

function isLoopbackHost(host) {
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

/** A deny decision, or null to let the call proceed. */
function deny(reason) {
  return { deny: true, reason: `bugbot guard: ${reason}` };
}

/** Relative path of p inside root, or null when p is outside root. */
function inside(root, p) {
  const abs = isAbsolute(p) ? normalize(p) : resolve(root, p);
  const rel = relative(root, abs);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return rel === '' ? '' : null;
  return rel;
}

function checkShell(cmd) {
  for (const [re, reason] of BANNED_ANYWHERE) if (re.test(cmd)) return deny(reason);
  for (const seg of segments(cmd)) {
    const d = checkSegment(seg);
    if (d) return d;
  }
  // Network: only loopback URLs (the worker's dev server, the model endpoint).
  if (/\b(curl|wget|fetch|http)\b/.test(cmd) || /https?:\/\//.test(cmd)) {
    for (const m of cmd.matchAll(URL_RE)) {
      if (!isLoopbackHost(m[1])) return deny(`network access is limited to loopback; ${m[1]} is not allowed`);
    }
  }
  // Redirections into protected places.
  const redirect = /(?:>|>>|\btee\b(?:\s+-a)?)\s*([^\s;&|]+)/g;
  for (const m of cmd.matchAll(redirect)) {
    const target = m[1].replace(/^['"]|['"]$/g, '');
    const rel = target.replace(/^\.\//, '');
    if (PROTECTED.some((re) => re.test(rel)) || /(^|\/)\.git\//.test(target)) return deny(`writing to ${target} is not allowed`);
  }
  return null;
}

/**
 * Decide on one tool call.
 * ctx: { phase, worktree, ticketDir, writeRoots?: string[] (relative globs handled by prefix) }
 */
export function checkToolUse(toolName, input, ctx) {
  const worktree = ctx.worktree;
  if (toolName === 'Bash') return checkShell(String(input?.command ?? ''));

  if (toolName === 'Read' || toolName === 'Grep' || toolName === 'Glob' || toolName === 'NotebookRead') {
    const p = String(input?.file_path ?? input?.path ?? '');
    if (!p) return null;
    const abs = isAbsolute(p) ? normalize(p) : resolve(worktree, p);
    if (SECRET_READS.some((re) => re.test(abs) || re.test(p))) return deny(`reading ${p} is not allowed (credentials)`);
    return null;
  }

  if (['Write', 'Edit', 'MultiEdit', 'NotebookEdit'].includes(toolName)) {
    const p = String(input?.file_path ?? input?.notebook_path ?? '');
    if (!p) return deny('a file path is required');
    const abs = isAbsolute(p) ? normalize(p) : resolve(worktree, p);
    if (ctx.ticketDir && inside(ctx.ticketDir, abs) !== null) {
      const rel = inside(ctx.ticketDir, abs);
      const allowed = ctx.ticketWrites ?? [];
      return allowed.includes(rel) ? null : deny(`in the ticket folder this phase may write only ${allowed.join(', ') || 'nothing'}`);
    }
    const rel = inside(worktree, abs);
    if (rel === null) return deny(`${p} is outside the worktree`);
    if (PROTECTED.some((re) => re.test(rel))) return deny(`${rel} is protected (repository, agent, CI and hook configuration)`);
    const roots = ctx.writeRoots;
    if (roots && !roots.some((r) => (r.endsWith('/') ? rel.startsWith(r) : rel === r))) {
      return deny(`the ${ctx.phase} phase may only write ${roots.join(', ') || 'nothing in the worktree'}`);
    }
    return null;
  }

  if (toolName.startsWith('mcp__')) {
    // Server-side checks are primary (origin allowlist, SQL guard); this only stops
    // tools a phase was never meant to have.
    const allowed = ctx.mcpTools;
    if (allowed && !allowed.includes(toolName)) return deny(`${toolName} is not available in the ${ctx.phase} phase`);
    return null;
  }

  if (['WebFetch', 'WebSearch'].includes(toolName)) return deny('web access is not allowed');
  return null;
}

/** A phase's policy file, as the control plane writes it (config/<phase>.policy.json). */
export function loadPolicy(path) {
  if (!path) throw new Error('--policy <file> is required');
  const p = JSON.parse(readFileSync(path, 'utf8'));
  return {
    phase: String(p.phase),
    worktree: String(p.worktree),
    ticketDir: p.ticketDir ? String(p.ticketDir) : undefined,
    ticketWrites: Array.isArray(p.ticketWrites) ? p.ticketWrites : [],
    writeRoots: Array.isArray(p.writeRoots) ? p.writeRoots : undefined,
    mcpTools: Array.isArray(p.mcpTools) ? p.mcpTools : undefined,
  };
}

/** Protected paths in a list of changed files (used at push time). */
export function protectedPaths(files) {
  return files.filter((f) => PROTECTED.some((re) => re.test(f)));
}
