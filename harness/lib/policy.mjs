// What an agent may never do, whatever its allowlist says. Used twice: by the
// PreToolUse hook (harness/hooks/guard.mjs), which denies a call before it runs, and
// by the stream watcher (harness/lib/run-phase.mjs), which kills a session when a
// banned call got through. Plain JavaScript so both start in milliseconds.
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, normalize, relative, resolve } from 'node:path';

/** Paths no phase may write: repository machinery, agent config, CI, hooks (protected-paths.txt). */
const PROTECTED = readFileSync(new URL('./protected-paths.txt', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => new RegExp(l));

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
  // A Claude Code login: the operator's, or any session's.
  /(^|\/)\.claude\/\.credentials\.json$/,
  /(^|\/)\.claude\.json$/,
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
  ['send-pack', "pushing is the harness's job, never the agent's"],
  ['http-push', "pushing is the harness's job, never the agent's"],
  ['submodule', 'managing submodules is not allowed'],
]);

/** git's global options that take the next word as their value (`git -C dir push`). */
const GIT_VALUE_OPTIONS = new Set(['-C', '-c', '--git-dir', '--work-tree', '--namespace', '--super-prefix', '--config-env']);

/** git subcommands that only read (and commit, whose message may name any path). */
const GIT_READ_ONLY = new Set(['log', 'show', 'diff', 'status', 'blame', 'grep', 'shortlog', 'rev-parse', 'ls-files', 'commit']);

/** Commands that run the rest of their words as another command. */
const WRAPPERS = new Set(['env', 'command', 'exec', 'nohup', 'nice', 'time', 'timeout', 'xargs', 'setsid', 'stdbuf', 'builtin']);

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

const unquote = (x) => String(x ?? '').replace(/^['"]+|['"]+$/g, '');
const baseName = (x) => unquote(x).replace(/^.*\//, '');

/**
 * The words from the command that actually runs: wrappers (`env X=1`, `timeout 5`,
 * `nohup`, `xargs -0`, ...) with their options are peeled off.
 */
function commandWords(w) {
  let i = 0;
  for (;;) {
    while (i < w.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(w[i])) i++;
    const name = baseName(w[i]);
    if (!WRAPPERS.has(name)) return w.slice(i);
    // `env` alone (or with only options and names) is an environment dump, checked as env.
    if (name === 'env' && w.slice(i + 1).every((x) => x.startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*$/.test(x))) return w.slice(i);
    i++;
    while (i < w.length && (w[i].startsWith('-') || /^\d+(\.\d+)?[smhd]?$/.test(w[i]))) i++;
  }
}

/** git's subcommand after the `git` word at index i, skipping global options and their values. */
function gitSubcommand(w, i) {
  for (let j = i + 1; j < w.length; j++) {
    const x = unquote(w[j]);
    if (GIT_VALUE_OPTIONS.has(x)) j++;
    else if (!x.startsWith('-')) return { sub: x, at: j };
  }
  return null;
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'eval']);

function checkSegment(seg, ctx, depth = 0) {
  const w = commandWords(words(seg));
  if (!w.length) return null;
  const name = baseName(w[0]);
  if (BANNED_COMMANDS.has(name)) return deny(`${BANNED_COMMANDS.get(name)} (${name})`);
  if (seg.includes('--no-verify')) return deny("--no-verify skips the repository's checks");
  // A command string handed to a shell is checked as a command too.
  if (SHELLS.has(name) && depth < 3) {
    const k = name === 'eval' ? 0 : w.findIndex((x) => /^-[a-z]*c$/.test(x));
    if (k >= 0) {
      for (const inner of segments(unquote(w.slice(k + 1).join(' ')))) {
        const d = checkSegment(inner, ctx, depth + 1);
        if (d) return d;
      }
    }
  }
  // Every `git` word, wherever it stands (xargs git push, a wrapper we do not know).
  for (let i = 0; i < w.length; i++) {
    if (baseName(w[i]) !== 'git') continue;
    const g = gitSubcommand(w, i);
    if (!g) continue;
    const rest = w.slice(g.at + 1).map(unquote);
    if (BANNED_GIT.has(g.sub)) return deny(`${BANNED_GIT.get(g.sub)} (git ${g.sub})`);
    if (g.sub === 'reset' && rest.includes('--hard')) return deny('git reset --hard destroys work');
    if (g.sub === 'clean' && rest.some((x) => /^-[a-zA-Z]*f/.test(x))) return deny('git clean -f destroys untracked work');
    // "Read-only" commands that write or run: `git log --format=<any text> --output=<any
    // file>` writes any file (code, after review), `git grep -O<cmd>` runs a command.
    if (rest.some((x) => /^--output(=|$)/.test(x))) return deny(`git ${g.sub} --output writes a file: read the output instead`);
    if (g.sub === 'grep' && rest.some((x) => /^(-O|--open-files-in-pager)/.test(x))) return deny('git grep -O runs a command');
    if (rest.includes('--ext-diff')) return deny('git --ext-diff runs an external program');
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
  if (name === 'curl' || name === 'wget') {
    const d = checkFetcher(name, seg, ctx);
    if (d) return d;
  }
  // Protected paths named anywhere in a command that is not a read-only git command
  // (node -e "fs.writeFileSync('.husky/pre-commit', ...)", cp, mv, ln, sed -i ...).
  const g = name === 'git' ? gitSubcommand(w, 0) : null;
  if (!(g && GIT_READ_ONLY.has(g.sub))) {
    const hit = pathCandidates(seg).find((c) => PROTECTED.some((re) => re.test(c)));
    if (hit) return deny(`commands may not touch ${hit} (repository, agent, CI and hook configuration)`);
  }
  return null;
}

/** Argument patterns that are banned wherever they appear. */
const BANNED_ANYWHERE = [
  [/\/proc\/[^\s/]+\/(environ|cmdline|mem)\b/, 'reading process environments is not allowed'],
  [/(^|[\s'"=])(~|\$HOME|\/root|\/home\/[^/\s]+)\/\.(ssh|aws|gnupg|netrc|npmrc|git-credentials|config\/gh)\b/, 'reading credentials is not allowed'],
  [/\/dev\/(tcp|udp)\//, 'raw network connections are not allowed'],
];

/** Path-like words of a command and every path suffix of each (`/x/.git/config` → `.git/config`). */
function pathCandidates(text) {
  const out = [];
  for (const tok of text.split(/[\s'"`=,;:()<>|&{}[\]]+/)) {
    const t = tok.replace(/^(\.\/)+/, '');
    if (!t) continue;
    out.push(t);
    for (let i = t.indexOf('/'); i !== -1; i = t.indexOf('/', i + 1)) if (i + 1 < t.length) out.push(t.slice(i + 1));
  }
  return out;
}

const URL_RE = /\b([a-z][a-z0-9+.-]*):\/\/(?:[^\s/@'"]*@)?(\[[^\]\s]*\]|[^\s/:'"?#]+)(?::(\d+))?/gi;

function isLoopbackHost(host) {
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

/** Loopback ports the agent may reach: its dev server's (from the policy); any when the policy names none. */
function allowedPort(ctx, port) {
  const ports = (ctx?.origins ?? []).flatMap((o) => {
    try {
      const u = new URL(o);
      return isLoopbackHost(u.hostname) ? [Number(u.port || (u.protocol === 'https:' ? 443 : 80))] : [];
    } catch {
      return [];
    }
  });
  return ports.length === 0 || ports.includes(port);
}

/** Why a URL may not be fetched from the shell, or null. */
function urlProblem(scheme, host, port, ctx) {
  const s = scheme.toLowerCase();
  if (s !== 'http' && s !== 'https') return `${s}: URLs are not allowed`;
  if (!isLoopbackHost(host.toLowerCase())) return `network access is limited to loopback; ${host} is not allowed`;
  const p = port ? Number(port) : s === 'https' ? 443 : 80;
  if (!allowedPort(ctx, p)) return `on loopback only the dev server (${(ctx.origins ?? []).join(', ')}) may be reached; port ${p} is not allowed`;
  return null;
}

/** Options of curl and wget that take the next word as their value. */
const FETCH_VALUE_OPTIONS = {
  curl: new Set(['-d', '--data', '--data-raw', '--data-binary', '--data-urlencode', '--data-ascii', '--json', '-H', '--header', '-o', '--output', '-X', '--request', '-u', '--user', '-A', '--user-agent', '-e', '--referer', '-b', '--cookie', '-c', '--cookie-jar', '-F', '--form', '--form-string', '-T', '--upload-file', '-w', '--write-out', '-m', '--max-time', '--connect-timeout', '-r', '--range', '--retry', '--retry-delay', '--retry-max-time', '-D', '--dump-header', '--limit-rate', '-Y', '--speed-limit', '-y', '--speed-time', '--max-filesize', '--max-redirs', '-C', '--continue-at', '--url-query', '--expect100-timeout', '--keepalive-time', '-E', '--cert', '--cacert', '--key', '-z', '--time-cond', '--url']),
  wget: new Set(['-O', '--output-document', '-o', '--output-file', '-a', '--append-output', '--header', '--post-data', '--post-file', '--body-data', '--body-file', '--method', '-U', '--user-agent', '-t', '--tries', '-T', '--timeout', '-P', '--directory-prefix', '-w', '--wait', '-Q', '--quota', '--referer', '--load-cookies', '--save-cookies', '--user', '--password']),
};
/** Short options that take a value, for clusters such as -sd or -XPOST. */
const FETCH_VALUE_SHORT = { curl: 'dHoXuAebcFTwmrDYyCEz', wget: 'OoaUtTPwQ' };
/** Options that send traffic elsewhere than the URL says, or read options from a file. */
const FETCH_BANNED = {
  curl: /^(-x|--proxy|--preproxy|--socks4a?|--socks5(-hostname)?|--connect-to|--resolve|--unix-socket|--abstract-unix-socket|--dns-servers|--doh-url|-K|--config|--interface|--local-port|--haproxy-protocol)$/,
  wget: /^(-e|--execute|-i|--input-file|-B|--base|--bind-address|--config|--proxy|--use-askpass|--no-config)$/,
};

/** curl / wget: every URL must be the dev server; no options that reroute the request. */
function checkFetcher(name, seg, ctx) {
  const w = shellWords(seg);
  let i = w.findIndex((x) => baseName(x) === name) + 1;
  for (; i < w.length; i++) {
    const x = w[i];
    if (x.startsWith('-') && x !== '-') {
      const opt = x.startsWith('--') ? x.split('=')[0] : x.slice(0, 2);
      if (FETCH_BANNED[name].test(opt)) return deny(`${name} ${opt} is not allowed (it sends the request elsewhere or reads options from a file)`);
      if (x.startsWith('--')) {
        if (x.includes('=')) {
          if (opt === '--url') {
            const d = fetchTarget(name, x.slice(6), ctx);
            if (d) return d;
          }
        } else if (FETCH_VALUE_OPTIONS[name].has(x)) {
          if (x === '--url') {
            const d = fetchTarget(name, w[i + 1] ?? '', ctx);
            if (d) return d;
          }
          i++;
        }
        continue;
      }
      // A cluster of short options: the first one that takes a value takes the rest, or the next word.
      for (let k = 1; k < x.length; k++) {
        if (FETCH_BANNED[name].test(`-${x[k]}`)) return deny(`${name} -${x[k]} is not allowed (it sends the request elsewhere or reads options from a file)`);
        if (FETCH_VALUE_SHORT[name].includes(x[k])) {
          if (k === x.length - 1) i++;
          break;
        }
      }
      continue;
    }
    const d = fetchTarget(name, x, ctx);
    if (d) return d;
  }
  return null;
}

/** The session's own variables for its dev server (phase.sh sets them; the prompts name them), expanded. */
function devVars(text, ctx) {
  const dev = (ctx?.origins ?? []).find((o) => /^https?:\/\/(localhost|127\.[\d.]+)(:\d+)?$/.test(o)) ?? 'http://127.0.0.1';
  return text.replace(/\$\{?BUGBOT_DEV_URL\}?/g, dev).replace(/\$\{?PORT\}?/g, new URL(dev).port || '80');
}

function fetchTarget(name, arg, ctx) {
  const resolved = devVars(arg, ctx);
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(resolved) ? resolved : `http://${resolved}`;
  const m = /^([a-z][a-z0-9+.-]*):\/\/(?:[^\s/@]*@)?(\[[^\]\s]*\]|[^\s/:?#]+)(?::(\d+))?(?:[/?#]|$)/i.exec(url);
  if (!m) return deny(`${name} may only fetch the dev server; ${arg} is not a URL on it`);
  const why = urlProblem(m[1], m[2], m[3], ctx);
  return why ? deny(why) : null;
}

/** Shell words of one simple command, quotes removed (an unbalanced quote runs to the end). */
function shellWords(seg) {
  const out = [];
  let cur = '';
  let quote = null;
  let any = false;
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < seg.length) cur += seg[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      any = true;
    } else if (c === '\\' && i + 1 < seg.length) {
      cur += seg[++i];
      any = true;
    } else if (/\s/.test(c)) {
      if (any) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (any) out.push(cur);
  return out;
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

/** The path with symlinks resolved (of its nearest existing parent when it does not exist yet). */
function real(p) {
  const rest = [];
  let cur = normalize(p);
  for (;;) {
    try {
      return resolve(realpathSync(cur), ...rest.reverse());
    } catch {
      const up = dirname(cur);
      if (up === cur) return normalize(p);
      rest.push(cur.slice(up === '/' ? 1 : up.length + 1));
      cur = up;
    }
  }
}

/** Inside root both as written and with symlinks resolved (a link in the worktree cannot lead out). */
function within(root, abs) {
  const rel = inside(root, abs);
  if (rel === null) return null;
  return inside(real(root), real(abs)) === null ? null : rel;
}

function checkShell(cmd, ctx) {
  for (const [re, reason] of BANNED_ANYWHERE) if (re.test(cmd)) return deny(reason);
  // git's options that write a file or run a program, wherever they stand in a command
  // that runs git (a quoted `;` in a --format would split it into two segments).
  if (/(^|[\s;&|(`'"])git\b/.test(cmd)) {
    const m = /(?:^|[\s'"])(--output\b|--ext-diff\b|-O\S*|--open-files-in-pager\b)/.exec(cmd);
    if (m?.[1]?.startsWith('--output')) return deny('git --output writes a file: read the output instead');
    if (m?.[1] === '--ext-diff') return deny('git --ext-diff runs an external program');
    if (m && /\bgit\s+(\S+\s+)*?grep\b/.test(cmd)) return deny('git grep -O runs a command');
  }
  // Credentials named anywhere, whatever the prefix (an absolute home, a variable).
  const secret = pathCandidates(cmd).find((c) => SECRET_READS.some((re) => re.test(c)));
  if (secret) return deny(`reading credentials is not allowed (${secret})`);
  for (const seg of segments(cmd)) {
    const d = checkSegment(seg, ctx);
    if (d) return d;
  }
  // Network: only the worker's dev server on loopback.
  for (const m of devVars(cmd, ctx).matchAll(URL_RE)) {
    const why = urlProblem(m[1], m[2], m[3], ctx);
    if (why) return deny(why);
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

/** Why a SQL statement would write (the agent's database access is read-only), or null. */
function sqlWrite(sql) {
  const bare = sql
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\$([A-Za-z_]\w*)?\$[\s\S]*?\$\1\$/g, "''")
    .replace(/'(?:[^']|'')*'/g, "''")
    .replace(/"(?:[^"]|"")*"/g, '""');
  const first = /^[\s(;]*([A-Za-z]+)/.exec(bare)?.[1]?.toLowerCase();
  if (first && !['select', 'with', 'values', 'table'].includes(first)) return `${first.toUpperCase()} is not allowed: the agent's database access is read-only`;
  const writes = [
    /\binsert\s+into\b/i,
    /\bupdate\s+(only\s+)?[\w."]+(\s+(as\s+)?\w+)?\s+set\b/i,
    /\bdelete\s+from\b/i,
    /\bmerge\s+into\b/i,
    /\btruncate\s+(table\s+)?[\w."]/i,
    /\b(drop|alter|create)\s+(table|index|view|schema|database|role|user|function|procedure|trigger|sequence|extension|policy|materialized|type|rule)\b/i,
    /\b(grant|revoke)\s+(select|insert|update|delete|all|usage|execute|connect|create|temp|truncate)\b/i,
    /\bcopy\s+[\w."(]/i,
    /\binto\s+(temp(orary)?\s+|unlogged\s+)?(table\s+)?[\w."]+\s+from\b/i,
    /\bfor\s+(no\s+key\s+)?(update|share)\b/i,
  ];
  const hit = writes.find((re) => re.test(bare));
  return hit ? `the statement writes or locks (${hit.exec(bare)[0].replace(/\s+/g, ' ')}): the agent's database access is read-only` : null;
}

/** Whether the browser may open url: about:blank, a path, or a URL on an allowed origin. */
function navigable(url, origins) {
  if (url === 'about:blank' || /^\/(?![/\\])/.test(url)) return true;
  if (!/^[a-z][a-z0-9+.-]*:/i.test(url) && !/^[/\\]{2}/.test(url)) return true;
  try {
    const u = new URL(url);
    const allowed = origins.map((o) => {
      try {
        return new URL(o).origin;
      } catch {
        return o;
      }
    });
    return (u.protocol === 'http:' || u.protocol === 'https:') && allowed.includes(u.origin);
  } catch {
    return false;
  }
}

/**
 * Decide on one tool call.
 * ctx: { phase, worktree, ticketDir, ticketWrites, writeRoots?, mcpTools?, origins? } (loadPolicy)
 */
export function checkToolUse(toolName, input, ctx) {
  const worktree = ctx.worktree;
  if (toolName === 'Bash') return checkShell(String(input?.command ?? ''), ctx);

  if (toolName === 'Read' || toolName === 'Grep' || toolName === 'Glob' || toolName === 'NotebookRead') {
    const p = String(input?.file_path ?? input?.notebook_path ?? input?.path ?? '');
    const paths = p ? [p] : [];
    // An absolute or climbing glob pattern names its own folder.
    const pattern = toolName === 'Glob' ? String(input?.pattern ?? '') : '';
    const fixed = pattern.split(/[*?[{]/)[0];
    if (fixed && (isAbsolute(fixed) || fixed.split('/').includes('..'))) paths.push(resolve(p ? resolve(worktree, p) : worktree, fixed));
    for (const q of paths) {
      const abs = isAbsolute(q) ? normalize(q) : resolve(worktree, q);
      if (SECRET_READS.some((re) => re.test(abs) || re.test(q))) return deny(`reading ${q} is not allowed (credentials)`);
      const agentDir = ctx.ticketDir ? resolve(ctx.ticketDir, 'agent') : null;
      if (within(worktree, abs) === null && !(agentDir && within(agentDir, abs) !== null)) {
        return deny(`reading ${q} is not allowed: reads are limited to the worktree${agentDir ? ` and ${agentDir}` : ''}`);
      }
    }
    return null;
  }

  if (['Write', 'Edit', 'MultiEdit', 'NotebookEdit'].includes(toolName)) {
    const p = String(input?.file_path ?? input?.notebook_path ?? '');
    if (!p) return deny('a file path is required');
    const abs = isAbsolute(p) ? normalize(p) : resolve(worktree, p);
    if (ctx.ticketDir && inside(ctx.ticketDir, abs) !== null) {
      const rel = within(ctx.ticketDir, abs);
      const allowed = ctx.ticketWrites ?? [];
      return rel !== null && allowed.includes(rel) ? null : deny(`in the ticket folder this phase may write only ${allowed.join(', ') || 'nothing'}`);
    }
    const rel = within(worktree, abs);
    if (rel === null) return deny(`${p} is outside the worktree`);
    const realRel = inside(real(worktree), real(abs)) ?? rel;
    if (PROTECTED.some((re) => re.test(rel) || re.test(realRel))) return deny(`${rel} is protected (repository, agent, CI and hook configuration)`);
    const roots = ctx.writeRoots;
    if (roots && !roots.some((r) => (r.endsWith('/') ? rel.startsWith(r) : rel === r))) {
      return deny(`the ${ctx.phase} phase may only write ${roots.join(', ') || 'nothing in the worktree'}`);
    }
    return null;
  }

  if (toolName.startsWith('mcp__')) {
    // Server-side checks are primary (origin allowlist, SQL guard); this stops tools a
    // phase was never meant to have, and refuses (and records) what the servers would.
    const allowed = ctx.mcpTools;
    if (allowed && !allowed.includes(toolName)) return deny(`${toolName} is not available in the ${ctx.phase} phase`);
    if (toolName === 'mcp__browser__browser_navigate' && ctx.origins) {
      const url = String(input?.url ?? '');
      if (!navigable(url, ctx.origins)) return deny(`the browser may open only the dev server (${ctx.origins.join(', ')}); ${url} is not on it`);
    }
    // The phases never start the db server with --allow-writes: any write is refused.
    if (toolName === 'mcp__db__db_query') {
      const why = sqlWrite(String(input?.sql ?? ''));
      if (why) return deny(why);
    }
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
    origins: Array.isArray(p.origins) ? p.origins.map(String) : undefined,
  };
}

/** Protected paths in a list of changed files (used at push time). */
export function protectedPaths(files) {
  return files.filter((f) => PROTECTED.some((re) => re.test(f)));
}
