// What an agent may never do, whatever its allowlist says. Used twice: by the
// PreToolUse hook (harness/hooks/guard.mjs), which denies a call before it runs, and
// by the stream watcher (harness/lib/run-phase.mjs), which kills a session when a
// banned call got through. Plain JavaScript so both start in milliseconds.
import { readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, normalize, posix, relative, resolve } from 'node:path';

/** Paths no phase may write: repository machinery, agent config, CI, hooks (protected-paths.txt). */
const PROTECTED = readFileSync(new URL('./protected-paths.txt', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => new RegExp(l));

/** Paths no phase may read: credentials (HARNESS_CREDENTIALS in common.sh) and process environments. */
const SECRET_READS = [
  /(^|\/)\.ssh(\/|$)/,
  /(^|\/)\.aws(\/|$)/,
  /(^|\/)\.gnupg(\/|$)/,
  /(^|\/)\.kube(\/|$)/,
  /(^|\/)\.azure(\/|$)/,
  /(^|\/)\.config\/gcloud(\/|$)/,
  // Only its login: a repository's own .docker/ folder holds Dockerfiles.
  /(^|\/)\.docker\/config\.json$/,
  /(^|\/)\.netrc$/,
  /(^|\/)\.npmrc$/,
  /(^|\/)\.pgpass$/,
  /(^|\/)\.git-credentials$/,
  /(^|\/)\.config\/gh(\/|$)/,
  // A Claude Code login: the operator's, or any session's.
  /(^|\/)\.claude\/\.credentials\.json$/,
  /(^|\/)\.claude\.json$/,
  /(^|\/)\.config\/claude(\/|$)/,
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

/**
 * Configuration that git -c / --config-env may not set: what runs a program or any git
 * command (`git -c alias.p=push p` is a push the subcommand check never sees), skips or
 * replaces hooks, sends data elsewhere, or reads configuration from another file.
 */
const GIT_CONFIG_BANNED =
  /^(alias|include|includeif|protocol|url|remote|credential|filter|difftool|mergetool|gpg|ssh|sendemail|uploadpack|receive)\.|^core\.(hookspath|sshcommand|fsmonitor|gitproxy|askpass|alternaterefscommand|attributesfile|worktree)$|^diff\.external$|\.(command|cmd|program|driver|helper|textconv|process|clean|smudge|tool)$/;
/** Keys whose value is a program git runs: allowed only with a value that runs nothing else. */
const GIT_PROGRAM_KEYS = /^(core\.(pager|editor)|sequence\.editor|pager\.[^.]+)$/;
/** A pager or editor that runs nothing else (`-c core.pager=cat`, `GIT_PAGER=cat`, `pager.log=false`). */
const SAFE_PROGRAM = /^\s*(cat|less|more|true|false|:)?(\s+-[\w-]+)*\s*$/;

/** Why git may not run with this `-c` entry (`name=value`), or null. byEnv: --config-env, whose value is not in the command. */
function gitConfigProblem(entry, byEnv) {
  const eq = entry.indexOf('=');
  const key = (eq < 0 ? entry : entry.slice(0, eq)).toLowerCase();
  if (GIT_PROGRAM_KEYS.test(key) ? byEnv || !SAFE_PROGRAM.test(entry.slice(eq + 1)) : GIT_CONFIG_BANNED.test(key)) {
    return `git -c ${key} is not allowed: it runs a program, or another git command than the one named`;
  }
  return null;
}

/** Variables that configure git like -c does (GIT_CONFIG_COUNT/KEY_n/VALUE_n, _PARAMETERS, _GLOBAL) or name a program it runs. Reading them ($X, ${X}) is fine. */
const GIT_ENV_NAMES = 'GIT_CONFIG\\w*|GIT_EXEC_PATH|GIT_SSH\\w*|GIT_ASKPASS|SSH_ASKPASS|GIT_PROXY_COMMAND|GIT_EXTERNAL_DIFF|GIT_TEMPLATE_DIR';
const GIT_ENV = new RegExp(`(?<!\\$\\{)(?<![$\\w.])(${GIT_ENV_NAMES})\\b|\\$\\{(${GIT_ENV_NAMES})\\b(?!\\})`);
/** Pagers and editors git runs, set in the command; allowed with a SAFE_PROGRAM value. */
const PROGRAM_ENV_NAMES = 'GIT_PAGER|PAGER|GIT_EDITOR|EDITOR|VISUAL|GIT_SEQUENCE_EDITOR';
const PROGRAM_ENV = new RegExp(`(?<![$\\w.])(${PROGRAM_ENV_NAMES})=('[^']*'|"[^"]*"|[^\\s;&|)]*)|\\$\\{(${PROGRAM_ENV_NAMES}):?=`, 'g');

/** Commands that run the rest of their words as another command. */
const WRAPPERS = new Set(['env', 'command', 'exec', 'nohup', 'nice', 'time', 'timeout', 'xargs', 'setsid', 'stdbuf', 'builtin']);

/** Commands whose arguments are text (a pattern), never a command: a `git push` there is not run. */
const TEXT_COMMANDS = new Set(['grep', 'egrep', 'fgrep', 'rg']);

/** The longest command the guard reads: the hook must decide well within its timeout, or Claude Code runs the call. */
const MAX_COMMAND = 16 * 1024;

/** Separators of simple commands: ; & && || | |& newlines, substitutions and subshells (`>|` and `>&` are redirections). */
const SEPARATORS = /;|&&|\|\||(?<!>)\|&?|(?<![<>])&(?!>)|\n|\$\(|`|\(|\)/g;

/**
 * Split a shell command into its simple commands, quotes or not (a quoted `;` splits too:
 * the guard would rather read too many commands than miss one). sub: a substitution
 * follows, whose output the command gets as words (`rm -rf src/$(...)`).
 */
function segments(cmd) {
  const out = [];
  let start = 0;
  const push = (end, sep) => {
    const text = cmd.slice(start, end).trim();
    if (text) out.push({ text, sub: sep === '$(' || sep === '`', whole: cmd, at: start, end });
  };
  for (const m of cmd.matchAll(SEPARATORS)) {
    push(m.index, m[0]);
    start = m.index + m[0].length;
  }
  push(cmd.length, '');
  return out;
}

/**
 * Where the simple command that starts at `at` ends as the shell reads it (a quoted `;` does
 * not end it, nor does one inside a substitution: `-m "$(cat <<'EOF' ... EOF\n)" && ...`), or
 * -1 when a substitution is not closed (the command may go on after it).
 */
function commandEnd(cmd, at) {
  let quote = null;
  for (let i = at; i < cmd.length; i++) {
    const q = quoting(cmd, i, quote, 0);
    if (q) {
      if (q.i < 0) return -1;
      ({ i, quote } = q);
      continue;
    }
    const c = cmd[i];
    if (c === '#' && (i === at || /\s/.test(cmd[i - 1]))) return cmd.includes('\n', i) ? cmd.indexOf('\n', i) : cmd.length;
    if ((c === '&' && (cmd[i + 1] === '>' || cmd[i - 1] === '>' || cmd[i - 1] === '<')) || (c === '|' && cmd[i - 1] === '>')) continue;
    if (';&|\n()'.includes(c)) return i;
  }
  return cmd.length;
}

/**
 * The shell's quoting at s[i], which both scanners (commandEnd, parenEnd) skip alike:
 * inside '…' or $'…', a backslash's next character, a quote opening or closing, and a
 * substitution (`$(`, `<(`, `>(`, a backtick), skipped whole. Returns where to go on from
 * ({ i, quote }: i the last index taken; i -1 for a substitution that is not closed), or
 * null when s[i] is the scanner's own to read: unquoted, outside any substitution.
 */
function quoting(s, i, quote, depth) {
  const c = s[i];
  if (quote === "'") return { i, quote: c === "'" ? null : quote };
  if (quote === "$'") return c === '\\' ? { i: i + 1, quote } : { i, quote: c === "'" ? null : quote };
  if (c === '\\') return { i: i + 1, quote };
  if (c === '`' || (c === '$' && s[i + 1] === '(') || (!quote && (c === '<' || c === '>') && s[i + 1] === '(')) {
    const j = substEnd(s, i, depth);
    return { i: j < 0 ? -1 : j - 1, quote };
  }
  if (quote) return { i, quote: c === quote ? null : quote };
  if (c === "'" || c === '"') return { i, quote: c };
  if (c === '$' && s[i + 1] === "'") return { i: i + 1, quote: "$'" };
  return null;
}

/** substEnd's answers for the texts being checked (the command, its simple commands): each substitution is scanned once. */
const substMemo = new Map();

/**
 * Where the substitution that opens at i (`$(`, `<(`, `>(`, a backtick) ends, the index after
 * it, or -1 when it is not closed where the guard can tell: its own quotes, nested
 * substitutions and here-documents (`<<'EOF'`, whose body runs to the EOF line) are skipped.
 * A `case` inside (whose patterns end in an unmatched `)`), a body line that starts with the
 * delimiter without being it (bash ends the body at `EOF)`), or nesting too deep: -1.
 */
function substEnd(s, i, depth = 0) {
  let memo = substMemo.get(s);
  if (!memo) {
    if (substMemo.size > 8) substMemo.clear();
    substMemo.set(s, (memo = new Map()));
  }
  const known = memo.get(i);
  if (known !== undefined) return known;
  const end = depth > 16 ? -1 : s[i] === '`' ? backtickEnd(s, i) : parenEnd(s, i, depth);
  memo.set(i, end);
  return end;
}

function backtickEnd(s, i) {
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === '`') return j + 1;
  }
  return -1;
}

function parenEnd(s, i, depth) {
  let parens = 0;
  let quote = null;
  const heredocs = [];
  for (let j = i + 2; j < s.length; j++) {
    const q = quoting(s, j, quote, depth + 1);
    if (q) {
      if (q.i < 0) return -1;
      ({ i: j, quote } = q);
      continue;
    }
    const c = s[j];
    if (c === '#' && /[\s(;&|]/.test(s[j - 1])) {
      const nl = s.indexOf('\n', j);
      if (nl < 0) return -1;
      j = nl - 1;
    } else if (c === '<' && s[j + 1] === '<' && s[j + 2] !== '<') {
      const h = heredocWord(s, j + 2);
      if (!h) return -1;
      heredocs.push(h);
      j = h.end - 1;
    } else if (c === '\n' && heredocs.length) {
      // The bodies follow this line, each up to its delimiter's line.
      for (const h of heredocs.splice(0)) {
        for (;;) {
          const nl = s.indexOf('\n', j + 1);
          if (nl < 0) return -1;
          const line = h.dash ? s.slice(j + 1, nl).replace(/^\t+/, '') : s.slice(j + 1, nl);
          j = nl;
          if (line === h.word) break;
          // bash also ends the body at `EOF)`, and the substitution with it: too uncertain.
          if (line.startsWith(h.word)) return -1;
        }
      }
    } else if (c === 'c' && /^case\s/.test(s.slice(j, j + 5)) && (j === i + 2 || /[\s;&|(]/.test(s[j - 1]))) return -1;
    else if (c === '(') parens++;
    else if (c === ')') {
      if (parens === 0) return j + 1;
      parens--;
    }
  }
  return -1;
}

/** The delimiter of a here-document whose `<<` ends just before i (quotes removed), and where it ends. */
function heredocWord(s, i) {
  let j = i;
  const dash = s[j] === '-';
  if (dash) j++;
  while (s[j] === ' ' || s[j] === '\t') j++;
  let word = '';
  for (; j < s.length && !/[\s;&|()<>]/.test(s[j]); j++) {
    const c = s[j];
    if (c === "'" || c === '"') {
      const close = s.indexOf(c, j + 1);
      if (close < 0) return null;
      word += s.slice(j + 1, close);
      j = close;
    } else if (c === '\\') word += s[++j] ?? '';
    else word += c;
  }
  return word ? { word, dash, end: j } : null;
}

/** The character an ANSI-C escape (`$'\x70ush'`) stands for, and how many characters it took after the backslash. */
function ansiEscape(s, i) {
  const simple = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', v: '\v' };
  const c = s[i];
  if (c in simple) return [simple[c], 1];
  const hex = /^(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8})/.exec(s.slice(i, i + 9));
  if (hex) return [String.fromCodePoint(parseInt(hex[0].slice(1), 16)), hex[0].length];
  const oct = /^[0-7]{1,3}/.exec(s.slice(i, i + 3));
  if (oct) return [String.fromCharCode(parseInt(oct[0], 8)), oct[0].length];
  return [c ?? '', 1];
}

/**
 * The words of a simple command, without redirections and their targets (`push>/dev/null`,
 * `push<&-` and `push 2>&1` are all `push`). quoted: quotes join words and backslashes
 * escape, as in the shell; otherwise every blank ends a word and quote characters are
 * dropped, so a quoted phrase reads as its words. Segments are cut without regard to
 * quotes, so neither reading is always the shell's: the guard checks both.
 * A here-string (`<<< "git push"`) is the command's input, which a shell runs: the quoted
 * reading keeps it apart (`herestrings`, checked as a command when a shell reads it),
 * the other among the words, as any text that names git is.
 */
function lex(seg, quoted, starts) {
  /** @type {string[] & { open?: boolean, herestrings?: string[] }} open: the segment ends inside quotes (it was cut there). */
  const out = [];
  out.herestrings = [];
  let cur = '';
  let any = false;
  let target = false;
  let here = false;
  let from = 0;
  const end = () => {
    if (any) {
      if (target) target = false;
      else if (here) {
        here = false;
        out.herestrings.push(cur);
      } else {
        out.push(cur);
        starts?.push(from);
      }
    }
    cur = '';
    any = false;
  };
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (!any) from = i;
    if (quoted && (c === "'" || c === '"' || (c === '$' && (seg[i + 1] === "'" || seg[i + 1] === '"')))) {
      const ansi = c === '$' && seg[i + 1] === "'";
      const q = c === '$' ? seg[++i] : c;
      any = true;
      for (i++; i < seg.length && seg[i] !== q; i++) {
        if (i === seg.length - 1) out.open = true;
        if (q === '"' && (seg[i] === '`' || (seg[i] === '$' && seg[i + 1] === '('))) {
          // A substitution inside the quotes is part of the word, its own quotes included.
          const j = substEnd(seg, i);
          cur += seg.slice(i, j < 0 ? seg.length : j);
          if (j < 0) out.open = true;
          i = (j < 0 ? seg.length : j) - 1;
        } else if (seg[i] === '\\' && i + 1 < seg.length && (ansi || (q === '"' && '"\\$`'.includes(seg[i + 1])))) {
          if (ansi && !`'"\\?`.includes(seg[i + 1])) {
            const [ch, n] = ansiEscape(seg, i + 1);
            cur += ch;
            i += n;
          } else cur += seg[++i];
        } else cur += seg[i];
      }
    } else if (quoted && (c === '`' || (c === '$' && seg[i + 1] === '('))) {
      const j = substEnd(seg, i);
      cur += seg.slice(i, j < 0 ? seg.length : j);
      if (j < 0) out.open = true;
      i = (j < 0 ? seg.length : j) - 1;
      any = true;
    } else if (c === "'" || c === '"') {
      any = true;
    } else if (c === '\\') {
      if (quoted && i + 1 < seg.length) cur += seg[++i];
      any = true;
    } else if (/\s/.test(c)) {
      end();
    } else if (c === '<' || c === '>' || (c === '&' && seg[i + 1] === '>')) {
      // A number right before the operator is its file descriptor (2>x); any other word ends here.
      if (/^\d+$/.test(cur)) {
        cur = '';
        any = false;
      } else end();
      const herestring = seg.startsWith('<<<', i);
      while (i + 1 < seg.length && '<>&|'.includes(seg[i + 1])) i++;
      if (!herestring) target = true;
      else if (quoted) here = true;
    } else {
      cur += c;
      any = true;
    }
  }
  end();
  return out;
}

/**
 * The words of a simple command (one reading, see lex), without leading VAR=value
 * assignments, brace expansions expanded as the shell does before it runs anything
 * (`{git,push}`, `git {push,x}`). tooMany: a word has more expansions than are checked.
 */
function words(segment, quoted) {
  const lexed = lex(segment, quoted);
  const w = [];
  let tooMany = false;
  for (const x of lexed) {
    const all = braceGroup(x) ? braces(x) : [x];
    if (!all) tooMany = true;
    w.push(...(all ?? [x]));
  }
  envSplitStrings(w);
  let i = 0;
  while (i < w.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(w[i])) i++;
  const out = w.slice(i);
  out.open = lexed.open;
  out.herestrings = lexed.herestrings;
  out.tooMany = tooMany;
  return out;
}

/**
 * `env -S STRING` (`--split-string`) runs STRING's words as the command
 * (`env -S"git push" origin HEAD:main`): in w, in place, each such option and its string
 * become those words.
 */
function envSplitStrings(w) {
  for (let i = 0; i < w.length; i++) {
    if (baseName(w[i]) !== 'env') continue;
    for (let j = i + 1; j < w.length && w[j].startsWith('-') && w[j] !== '--'; j++) {
      const x = w[j];
      let rest = null;
      if (x === '--split-string') rest = '';
      else if (x.startsWith('--split-string=')) rest = x.slice('--split-string='.length);
      else if (!x.startsWith('--')) {
        for (let k = 1; k < x.length; k++) {
          if (x[k] === 'S') rest = x.slice(k + 1);
          if ('SuC'.includes(x[k])) break; // -u NAME and -C DIR take the rest as their value
        }
      }
      if (rest === null) continue;
      const taken = rest === '' ? 2 : 1;
      const split = lex(rest === '' ? (w[j + 1] ?? '') : rest, true);
      w.splice(j, taken, ...split);
      j += split.length - 1;
    }
  }
}

const unquote = (x) => String(x ?? '').replace(/^['"]+|['"]+$/g, '');
const baseName = (x) => unquote(x).replace(/^.*\//, '');

/**
 * Whether a word may run git: `git` by its name, or a pattern the shell expands to it
 * (`/usr/bin/g?t`, `/usr/bin/gi[t]`: a file that exists is what the pattern becomes).
 * A pattern of nothing but wildcards (`dist/*`) is a list of files, not a way to name git.
 */
function isGit(x) {
  const name = baseName(x);
  if (name === 'git') return true;
  return /[*?[]/.test(name) && /[^*?[\]]/.test(name) && globMatches(name, 'git');
}

/**
 * Whether the shell's pattern p (`*`, `?`, `[...]`, `[!...]`) matches the short string s,
 * by the set of positions of s reached so far: no backtracking, and the scan of p ends
 * once no position is left (a long p costs one pass).
 */
function globMatches(p, s) {
  let at = [0];
  for (let i = 0; i < p.length && at.length; i++) {
    const c = p[i];
    if (c === '*') {
      at = Array.from({ length: s.length - at[0] + 1 }, (_, k) => at[0] + k);
      continue;
    }
    let take = (ch) => ch === c;
    const close = c === '[' ? p.indexOf(']', i + 2) : -1;
    if (c === '?') take = () => true;
    else if (close > 0) {
      const body = p.slice(i + 1, close);
      const negate = body[0] === '!' || body[0] === '^';
      const set = negate ? body.slice(1) : body;
      take = (ch) => {
        let hit = false;
        for (let j = 0; j < set.length; j++) {
          if (set[j + 1] === '-' && j + 2 < set.length) {
            hit ||= ch >= set[j] && ch <= set[j + 2];
            j += 2;
          } else hit ||= ch === set[j];
        }
        return hit !== negate;
      };
      i = close;
    }
    at = at.filter((k) => k < s.length && take(s[k])).map((k) => k + 1);
  }
  return at.includes(s.length);
}

/**
 * The words from the command that actually runs: wrappers (`env X=1`, `timeout 5`,
 * `nohup`, `xargs -0`, ...) with their options are peeled off.
 */
function commandWords(w) {
  const start = commandStart(w, 0);
  const out = w.slice(start);
  // Whether xargs runs it: what xargs reads becomes more of its words (see checkGitWord).
  out.xargs = w.slice(0, start).some((x) => baseName(unquote(x)) === 'xargs');
  out.herestrings = w.herestrings;
  out.tooMany = w.tooMany;
  return out;
}

/** Reserved words before a command (`then rm -rf ../x`, `! git push`, `{ git push; }`). */
const KEYWORDS = new Set(['if', 'then', 'else', 'elif', 'do', 'while', 'until', '!', '{']);

/** Where the command that runs starts in w, from index i (see commandWords). */
function commandStart(w, i) {
  for (;;) {
    while (i < w.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w[i]) || KEYWORDS.has(w[i]))) i++;
    const name = baseName(w[i]);
    if (!WRAPPERS.has(name)) return i;
    // `env` alone (or with only options and names) is an environment dump, checked as env.
    let j = i + 1;
    if (name === 'env') while (j < w.length && (w[j].startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*$/.test(w[j]))) j++;
    if (name === 'env' && j === w.length) return i;
    i++;
    while (i < w.length && (w[i].startsWith('-') || /^\d+(\.\d+)?[smhd]?$/.test(w[i]))) i++;
  }
}

/**
 * git's subcommand after the `git` word at index i, skipping global options and their
 * values; problem: a global option that makes git run something else (-c alias.p=push).
 */
function gitSubcommand(w, i) {
  let problem = null;
  for (let j = i + 1; j < w.length; j++) {
    // No honest command has this many; scanning on would make many `git` words quadratic.
    if (j - i > 64) return { sub: '', at: j, problem: "too many options before git's subcommand" };
    const x = unquote(w[j]);
    if (x === '-c' || x === '--config-env') problem ??= gitConfigProblem(w[j + 1] ?? '', x === '--config-env');
    else if (x.startsWith('--config-env=')) problem ??= gitConfigProblem(x.slice('--config-env='.length), true);
    else if (x.startsWith('--exec-path=')) problem ??= 'git --exec-path runs git commands from another folder';
    if (GIT_VALUE_OPTIONS.has(x)) j++;
    else if (!x.startsWith('-')) return { sub: x, at: j, problem };
  }
  return problem ? { sub: '', at: w.length, problem } : null;
}

/**
 * Options the git checks look for after a subcommand. -n is --no-verify for commit and am
 * (for merge and rebase it is --no-stat); a cluster (-nm) counts until an option that takes
 * the rest as its value (-mn is the message "n").
 */
const GIT_FLAGS = {
  // git takes any unambiguous prefix of a long option (`reset --ha`, `clean --fo`).
  hard: /^--ha(r(d)?)?$/,
  force: /^(-[a-zA-Z]*f|--f(o(r(ce?)?)?)?$)/,
  output: /^--output(=|$)/,
  pager: /^(-O|--open-files-in-pager)/,
  ext: /^--ext-diff$/,
  commitN: /^-[^-mFcCtuS]*n/,
  amN: /^-[^-CpS]*n/,
};

/**
 * Where each option of GIT_FLAGS last stands in w, so each `git` word's check is a lookup,
 * not a scan of the words after it: a command of thousands of `git` words must still be
 * decided in time.
 */
function gitFlags(w) {
  const last = {};
  for (let i = 0; i < w.length; i++) for (const k in GIT_FLAGS) if (GIT_FLAGS[k].test(w[i])) last[k] = i;
  return last;
}

/** Options of commit and am that take the next word as their value: long ones, and short letters (the last of a cluster). */
const GIT_VALUE_NEXT = {
  commit: {
    long: new Set(['--message', '--file', '--reuse-message', '--reedit-message', '--template', '--author', '--date', '--cleanup', '--fixup', '--squash', '--trailer', '--pathspec-from-file']),
    short: 'mFCct',
  },
  am: { long: new Set(['--directory', '--exclude', '--include', '--patch-format', '--resolvemsg', '--quoted-cr', '--empty']), short: '' },
};

/**
 * Whether a word of `git commit` / `git am` (from index at, the subcommand) that a variable
 * or a substitution makes could be an option, -n (`git commit "$(printf -- -n)"`): one
 * where an option may stand, not an option's value (`-m "$(cat <<'EOF' ...)"`) nor after `--`.
 */
function dynamicOption(w, at, sub) {
  const spec = GIT_VALUE_NEXT[sub];
  for (let j = at + 1; j < w.length; j++) {
    const x = w[j];
    if (x === '--') return false;
    if (/^[$`]/.test(x)) return true;
    if (!x.startsWith('-') || x === '-') continue;
    if (x.startsWith('--')) {
      const name = x.split('=')[0];
      if (/[$`]/.test(name)) return true;
      if (!x.includes('=') && spec.long.has(x)) j++;
      continue;
    }
    for (let k = 1; k < x.length; k++) {
      if (x[k] === '$' || x[k] === '`') return true;
      if (spec.short.includes(x[k])) {
        if (k === x.length - 1) j++;
        break;
      }
    }
  }
  return false;
}

/** The checks of every `git` word of a command (xargs git push, a wrapper we do not know). */
function checkGit(w, name, shell, exact) {
  const last = gitFlags(w);
  // The pattern of grep, a commit's message, git log --grep: text, whose `git` words are not
  // commands (unless the command defines functions or aliases, which could make them one).
  const text = shell.textArgs && (TEXT_COMMANDS.has(name) || (name === 'git' && GIT_READ_ONLY.has(gitSubcommand(w, 0)?.sub)));
  // Where xargs first stands (a git word after it may be fed by it), found once: the
  // command can hold thousands of words.
  const xargsAt = w.findIndex((x) => baseName(unquote(x)) === 'xargs');
  for (let i = 0; i < w.length; i++) {
    if (!isGit(w[i])) continue;
    if (i > 0 && text) break;
    const d = checkGitWord(w, i, last, exact, w.xargs === true || (xargsAt >= 0 && xargsAt < i));
    if (d) return d;
  }
  return null;
}

/** The checks of the `git` word w[i]; last: gitFlags(w); fed: whether xargs runs it. */
function checkGitWord(w, i, last, exact, fed) {
  const after = (k, at) => (last[k] ?? -1) > at;
  const g = gitSubcommand(w, i);
  // xargs adds what it reads to the command (or puts it where -I's string stands): a
  // subcommand it supplies (`echo push | xargs git`) is not written out either.
  if (!g) return fed ? deny("git's subcommand must be written out, not read from input (xargs git)") : null;
  if (BANNED_GIT.has(g.sub)) return deny(`${BANNED_GIT.get(g.sub)} (git ${g.sub})`);
  if (g.problem) return deny(g.problem);
  if (g.sub === '' || /[$`]/.test(g.sub)) return deny('git\'s subcommand must be written out, not taken from a variable or a substitution');
  if (fed && !/^[a-z][a-z0-9-]*$/.test(g.sub)) return deny("git's subcommand must be written out, not read from input (xargs git)");
  // A pattern the shell expands (`git p*sh` beside a file named push, `git {push,x}`) or a
  // name another command fills in (`find push -exec git {} ...`).
  if (/[*?[\]{}]/.test(g.sub)) return deny("git's subcommand must be written out, not a pattern or a placeholder");
  if (g.sub === 'reset' && after('hard', g.at)) return deny('git reset --hard destroys work');
  if (g.sub === 'clean' && after('force', g.at)) return deny('git clean -f destroys untracked work');
  // "Read-only" commands that write or run: `git log --format=<any text> --output=<any
  // file>` writes any file (code, after review), `git grep -O<cmd>` runs a command.
  if (after('output', g.at)) return deny(`git ${g.sub} --output writes a file: read the output instead`);
  if (g.sub === 'grep' && after('pager', g.at)) return deny('git grep -O runs a command');
  if (after('ext', g.at)) return deny('git --ext-diff runs an external program');
  if (exact && ((g.sub === 'commit' && after('commitN', g.at)) || (g.sub === 'am' && after('amN', g.at)))) {
    return deny(`git ${g.sub} -n is --no-verify: it skips the repository's checks`);
  }
  if (exact && (g.sub === 'commit' || g.sub === 'am') && dynamicOption(w, g.at, g.sub)) {
    return deny(`git ${g.sub} with an option from a variable or a substitution is not allowed (it could be -n, --no-verify): write the options out`);
  }
  return null;
}

/**
 * Where the first `{…,…}` of x with no brace inside stands ([start, end)), or null. A scan,
 * not a pattern: `{` and a long run of commas would cost a pattern quadratic time.
 */
function braceGroup(x) {
  let open = -1;
  let comma = false;
  for (let i = 0; i < x.length; i++) {
    const c = x[i];
    if (c === '{') {
      open = i;
      comma = false;
    } else if (c === '}') {
      if (open >= 0 && comma) return [open, i + 1];
      open = -1;
    } else if (c === ',' && open >= 0) comma = true;
  }
  return null;
}

/** Brace expansions of a word (`{dist,../x}`), or null when there are too many to check. */
function braces(word) {
  let out = [word];
  for (let round = 0; round < 8; round++) {
    const next = [];
    for (const x of out) {
      const g = braceGroup(x);
      if (!g) next.push(x);
      else for (const alt of x.slice(g[0] + 1, g[1] - 1).split(',')) next.push(x.slice(0, g[0]) + alt + x.slice(g[1]));
    }
    if (next.length === out.length && next.every((x, k) => x === out[k])) return out;
    if (next.length > 64) return null;
    out = next;
  }
  return null;
}

/** Whether an rm target may lie outside the worktree: absolute, home, a variable or substitution, or climbing out once normalised. */
function outsideTarget(t) {
  if (/[$`]|^[/~]/.test(t)) return true;
  const n = posix.normalize(t);
  return n === '..' || n.startsWith('../') || n.startsWith('/');
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'eval']);

/** seg: a segment (see segments); shell: { ctx, textArgs } for the whole command. */
function checkSegment(seg, shell, depth = 0) {
  // --no-verify, and its abbreviations git accepts (--no-veri, and --no-v for git am).
  if (seg.text.includes('--no-verify') || /(^|[\s'"])--no-v(e(r(i[a-z]*)?)?)?(?![\w-])/.test(seg.text)) return deny("--no-verify skips the repository's checks");
  let hit = null;
  const protectedHit = () => (hit ??= [pathHit(seg.text, PROTECTED)])[0];
  // Which options a command gets is read from the shell's reading (`git commit -m "Add -n"`
  // has no -n) where that reading is certain; else from every reading.
  const end = commandEnd(seg.whole, seg.at);
  const exact = words(seg.text, true);
  for (const w of [words(seg.text, false), exact]) {
    const d = checkWords(commandWords(w), seg, shell, depth, protectedHit, w === exact || end === -1);
    if (d) return d;
  }
  // Cut inside quotes or at a substitution (`rm -rf "tmp&" ../x`, `git commit -m "a;b" -n`,
  // `git commit -m "$(cat <<'EOF' ...)"`): the whole command as the shell reads it is checked
  // too, every check; or, when where it ends is uncertain, git's options from the rest of the line.
  if (end > seg.end) {
    const text = seg.whole.slice(seg.at, end);
    const whole = { text, sub: false, whole: seg.whole, at: seg.at, end };
    let wholeHit = null;
    const w = commandWords(words(text, true));
    const d = checkWords(w, whole, shell, depth, () => (wholeHit ??= [pathHit(text, PROTECTED)])[0], true);
    if (d) return d;
    // A substitution's output is more words of the command (`git reset $(echo --hard)`); for
    // commit and am, words that could be options are refused instead (see dynamicOption).
    const sub = baseName(w[0]) === 'git' ? gitSubcommand(w, 0)?.sub : null;
    if (sub && sub !== 'commit' && sub !== 'am' && /\$\(|`|[<>]\(/.test(text)) {
      const all = commandWords(lex(text.replace(/[;&|()\n`]/g, ' '), false));
      if (baseName(all[0]) === 'git') return checkGitWord(all, 0, gitFlags(all), false);
    }
  }
  if (end === -1) {
    // The words of the whole line, read once (every segment would otherwise read the rest of it).
    let line = shell.lines.get(seg.whole);
    if (!line) {
      const starts = [];
      const w = lex(seg.whole.replace(/[;&|()\n`]/g, ' '), false, starts);
      line = { w, starts, last: gitFlags(w) };
      shell.lines.set(seg.whole, line);
    }
    let lo = 0;
    for (let hi = line.starts.length; lo < hi; ) {
      const mid = (lo + hi) >> 1;
      if (line.starts[mid] < seg.at) lo = mid + 1;
      else hi = mid;
    }
    const i = commandStart(line.w, lo);
    if (baseName(line.w[i]) === 'git') return checkGitWord(line.w, i, line.last, true);
  }
  return null;
}

/** exact: whether options read from w are the command's (see checkSegment). */
function checkWords(w, seg, shell, depth, protectedHit, exact) {
  if (!w.length) return null;
  const ctx = shell.ctx;
  const name = baseName(w[0]);
  if (w.tooMany) return deny('a brace expansion of more than 64 words is not allowed: write the words out');
  if (BANNED_COMMANDS.has(name)) return deny(`${BANNED_COMMANDS.get(name)} (${name})`);
  // --no-verify quoted or escaped (`--no-"verify"`, `$'--no-\x76erify'`).
  if (w.some((x) => /^--no-v(e(r(i[a-z]*)?)?)?$/.test(x))) return deny("--no-verify skips the repository's checks");
  // A command string handed to a shell is checked as a command too: after -c, or as its
  // input (`bash <<< "git push"`, `. /dev/stdin <<< ...`).
  if ((SHELLS.has(name) || name === '.' || name === 'source') && depth < 3) {
    const k = name === 'eval' ? 0 : w.findIndex((x) => /^-[a-z]*c$/.test(x));
    const texts = [...(k >= 0 && SHELLS.has(name) ? [w.slice(k + 1).join(' ')] : []), ...(w.herestrings ?? [])];
    for (const text of texts) {
      for (const inner of segments(text)) {
        const d = checkSegment(inner, shell, depth + 1);
        if (d) return d;
      }
    }
  }
  const dg = checkGit(w, name, shell, exact);
  if (dg) return dg;
  if (name === 'rm' && w.some((x) => /^-[a-zA-Z]*[rR]/.test(x) || x.startsWith('--r'))) {
    if (seg.sub) return deny('rm -r of a command substitution: name the paths in the worktree');
    for (const x of w.slice(1)) {
      if (x.startsWith('-')) continue;
      const all = braces(x);
      if (!all || all.some(outsideTarget)) return deny(`rm -r on an absolute, home, variable or parent path (${x})`);
    }
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
    const d = checkFetcher(name, seg.text, ctx);
    if (d) return d;
  }
  // Protected paths named anywhere in a command that is not a read-only git command
  // (node -e "fs.writeFileSync('.husky/pre-commit', ...)", cp, mv, ln, sed -i ...).
  const g = name === 'git' ? gitSubcommand(w, 0) : null;
  if (!(g && GIT_READ_ONLY.has(g.sub))) {
    const hit = protectedHit();
    if (hit) return deny(`commands may not touch ${hit} (repository, agent, CI and hook configuration)`);
  }
  return null;
}

/** Argument patterns that are banned wherever they appear. */
const BANNED_ANYWHERE = [
  [/\/proc\/[^\s/]+\/(environ|cmdline|mem)\b/, 'reading process environments is not allowed'],
  [/(^|[\s'"=])(~|\$HOME|\/root|\/home\/[^/\s]+)\/\.(ssh|aws|gnupg|kube|azure|netrc|npmrc|pgpass|git-credentials|config\/(gh|gcloud))\b/, 'reading credentials is not allowed'],
  [/\/dev\/(tcp|udp)\//, 'raw network connections are not allowed'],
];

/**
 * Whether a regular expression must be tried on every path suffix too (`/x/.git/config` →
 * `.git/config`): one anchored at the start. One that starts with (^|/) matches a path
 * whenever it matches a suffix of it, so trying the path is enough (and stays linear).
 */
const onSuffixes = (re) => re.source.includes('^') && !/^\(\^\|\\?\/\)/.test(re.source);

/** The first path-like word of text, or path suffix of one, that one of res matches. */
function pathHit(text, res) {
  const anchored = res.filter(onSuffixes);
  for (const tok of text.split(/[\s'"`=,;:()<>|&{}[\]]+/)) {
    const t = tok.replace(/^(\.\/)+/, '');
    if (!t) continue;
    if (res.some((re) => re.test(t))) return t;
    for (let i = t.indexOf('/'); i !== -1; i = t.indexOf('/', i + 1)) {
      const s = t.slice(i + 1);
      if (s && anchored.some((re) => re.test(s))) return s;
    }
  }
  return undefined;
}

// The scheme is bounded: unbounded, a long run of `a.a.a.…` costs quadratic time. The
// authority ends at `/`, `?` or `#`, as curl and browsers read it: an `@` after one of
// them is no userinfo's (`http://evil.com#@127.0.0.1:3001` goes to evil.com).
const URL_RE = /([a-z][a-z0-9+.-]{0,31}):\/\/(?:[^\s/?#@'"]*@)?(\[[^\]\s]*\]|[^\s/:'"?#]+)(?::(\d+))?/gi;

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

/** curl / wget: every URL must be the dev server; no options that reroute the request. Redirections are not URLs (`> /dev/null`). */
function checkFetcher(name, seg, ctx) {
  const w = lex(seg, true);
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
  const m = /^([a-z][a-z0-9+.-]*):\/\/(?:[^\s/?#@]*@)?(\[[^\]\s]*\]|[^\s/:?#]+)(?::(\d+))?(?:[/?#]|$)/i.exec(url);
  if (!m) return deny(`${name} may only fetch the dev server; ${arg} is not a URL on it`);
  const why = urlProblem(m[1], m[2], m[3], ctx);
  return why ? deny(why) : null;
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

/** Commands that only search or cut text: a command of nothing else sets no variable (see mentionsOnly). */
const SEARCH_COMMANDS = new Set([...TEXT_COMMANDS, 'head', 'tail', 'wc', 'sort', 'uniq', 'cut']);

/**
 * Whether every simple command of cmd is a search (`grep -rn "GIT_SSH_COMMAND" src | head`),
 * named first (no assignment, no wrapper), with no substitution, here-document, function or
 * alias: a variable's name there is a pattern, nothing sets it.
 */
function mentionsOnly(cmd) {
  if (/\$\(|`|[<>]\(|<<|\b(function|alias)\b|\(\s*\)/.test(cmd)) return false;
  let any = false;
  for (let at = 0; at < cmd.length; ) {
    const end = commandEnd(cmd, at);
    if (end < 0) return false;
    const w = lex(cmd.slice(at, end), true);
    if (w.length) {
      if (!SEARCH_COMMANDS.has(w[0])) return false;
      any = true;
    }
    at = end + 1;
  }
  return any;
}

function checkShell(cmd, ctx) {
  if (cmd.length > MAX_COMMAND) return deny(`a command of more than ${MAX_COMMAND} characters is not allowed: write a script file and run it, or split the command`);
  // A backslash-newline is removed before the shell reads words (`git pu\<newline>sh`): the
  // command is checked that way too.
  if (cmd.includes('\\\n')) {
    const d = checkCommand(cmd.replace(/\\\n/g, ''), ctx);
    if (d) return d;
  }
  return checkCommand(cmd, ctx);
}

/**
 * cmd with the bodies of commit messages written as `git commit -m "$(cat <<'EOF' ... EOF\n)"`
 * (Claude Code's idiom) left out: text git stores, never run nor read as options, which the
 * checks would otherwise read as commands (`git push`, `.env`, a URL). Only where that is
 * certain: `git` named first in a command of the line, its `-m` in option position, the
 * delimiter quoted (no expansion), no other here-document, no function or alias.
 */
function withoutMessages(cmd) {
  if (!cmd.includes("<<'") || /\b(function|alias)\b|\(\s*\)/.test(cmd)) return cmd;
  const cut = [];
  for (let at = 0; at < cmd.length; ) {
    while (at < cmd.length && /[\s;&|()]/.test(cmd[at])) at++;
    const end = commandEnd(cmd, at);
    if (end < 0) break;
    const starts = [];
    const w = lex(cmd.slice(at, end), true, starts);
    let i = 0;
    while (i < w.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w[i]) || KEYWORDS.has(w[i]))) i++;
    const g = w[i] === 'git' ? gitSubcommand(w, i) : null;
    if (g?.sub === 'commit' && !g.problem) {
      for (const k of messageWords(w, g.at)) {
        const m = /"\$\(cat <<'(\w+)'\n([^]*?\n)?\1\n\)"/y;
        m.lastIndex = at + starts[k];
        const hit = m.exec(cmd);
        if (hit && m.lastIndex <= end && !(hit[2] ?? '').split('\n').some((l) => l.startsWith(hit[1]))) {
          cut.push([hit.index + hit[0].indexOf('\n') + 1, hit.index + hit[0].indexOf('\n') + 1 + (hit[2] ?? '').length]);
        }
      }
    }
    at = end + 1;
  }
  // Any other here-document (one whose body a shell could run) and the command is read whole.
  if (!cut.length || cmd.split('<<').length - 1 !== cut.length) return cmd;
  let out = '';
  let from = 0;
  for (const [a, b] of cut) {
    out += cmd.slice(from, a);
    from = b;
  }
  return out + cmd.slice(from);
}

/** Indices in w of the values of commit's -m (from index at, the subcommand), where they are values. */
function messageWords(w, at) {
  const out = [];
  const spec = GIT_VALUE_NEXT.commit;
  for (let j = at + 1; j < w.length; j++) {
    const x = w[j];
    if (x === '--') break;
    if (!x.startsWith('-') || x === '-') continue;
    if (x.startsWith('--')) {
      if (!x.includes('=') && spec.long.has(x)) {
        if (x === '--message') out.push(j + 1);
        j++;
      }
      continue;
    }
    for (let k = 1; k < x.length; k++) {
      if (spec.short.includes(x[k])) {
        if (k === x.length - 1) {
          if (x[k] === 'm') out.push(j + 1);
          j++;
        }
        break;
      }
    }
  }
  return out.filter((k) => k < w.length);
}

function checkCommand(given, ctx) {
  const cmd = withoutMessages(given);
  for (const [re, reason] of BANNED_ANYWHERE) if (re.test(cmd)) return deny(reason);
  // git configured from the environment: an alias or a program git runs, which no check of
  // the command itself would see (GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=alias.p ... git p).
  // Read as written and with quotes removed (`GIT_CONF''IG_COUNT=1`, `$'GIT_CONFIG_...'=`);
  // a name that is only a search pattern is fine.
  const readings = [cmd, lex(cmd.replace(/\$(?=['"])/g, ''), false).join(' '), lex(cmd, true).join(' ')];
  let mentions = null;
  for (const text of readings) {
    const env = GIT_ENV.exec(text);
    if (env && !(mentions ??= mentionsOnly(cmd))) return deny(`setting ${env[1] ?? env[2]} is not allowed: it changes what git runs`);
    for (const m of text.matchAll(PROGRAM_ENV)) {
      if ((m[2] === undefined || !SAFE_PROGRAM.test(unquote(m[2]))) && !(mentions ??= mentionsOnly(cmd))) {
        return deny(`setting ${m[1] ?? m[3]} to a program is not allowed (cat, or less, is)`);
      }
    }
  }
  // git's options that write a file or run a program, wherever they stand in a command
  // that runs git (a quoted `;` in a --format would split it into two segments).
  const gitAt = cmd.search(/(^|[\s;&|(`'"])git\b/);
  if (gitAt >= 0) {
    const m = /(?:^|[\s'"])(--output\b|--ext-diff\b|-O\S*|--open-files-in-pager\b)/.exec(cmd);
    if (m?.[1]?.startsWith('--output')) return deny('git --output writes a file: read the output instead');
    if (m?.[1] === '--ext-diff') return deny('git --ext-diff runs an external program');
    if (m && /\bgrep\b/.test(cmd.slice(gitAt))) return deny('git grep -O runs a command');
  }
  // Credentials named anywhere, whatever the prefix (an absolute home, a variable).
  const secret = pathHit(cmd, SECRET_READS);
  if (secret) return deny(`reading credentials is not allowed (${secret})`);
  // A function or alias could turn a grep pattern or a commit message into a command.
  const shell = { ctx, textArgs: !/\b(function|alias)\b|\(\s*\)/.test(cmd), lines: new Map() };
  for (const seg of segments(cmd)) {
    const d = checkSegment(seg, shell);
    if (d) return d;
  }
  // Network: only the worker's dev server on loopback. A backslash is part of the
  // authority to curl, a path separator to Node's fetch and browsers
  // (`http://evil.com\\@127.0.0.1:3001`): both readings are checked.
  const net = devVars(cmd, ctx);
  for (const text of net.includes('\\') ? [net, net.replace(/\\/g, '/')] : [net]) {
    for (const m of text.matchAll(URL_RE)) {
      const why = urlProblem(m[1], m[2], m[3], ctx);
      if (why) return deny(why);
    }
  }
  // Redirections into protected places.
  const redirect = /(?:>>?\|?|\btee\b(?:\s+-a)?)\s*([^\s;&|]+)/g;
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

/** Whether p (one reading of a Write/Edit path) may be written. */
function checkWrite(p, ctx) {
  const worktree = ctx.worktree;
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

/**
 * The paths a tool's path argument may stand for, or why it is refused. Claude Code trims
 * a path and expands `~` and `~/` to HOME before using it, but hands the hook Grep's and
 * Glob's paths as written, and the stream watcher sees every path as written: so both
 * readings are checked (HOME: this process's, the session's for the hook). `~user` is
 * refused rather than guessed at.
 */
function cliPaths(p) {
  const t = p.trim();
  const cli = t === '~' ? homedir() : t.startsWith('~/') ? homedir() + t.slice(1) : t;
  if (cli.startsWith('~')) return `${p} is not allowed: name the path without ~user`;
  return cli === p ? [p] : [p, cli];
}

/**
 * Decide on one tool call.
 * ctx: { phase, worktree, ticketDir, ticketWrites, writeRoots?, mcpTools?, origins? } (loadPolicy)
 */
export function checkToolUse(toolName, input, ctx) {
  const worktree = ctx.worktree;
  if (toolName === 'Bash') return checkShell(String(input?.command ?? ''), ctx);

  if (toolName === 'Read' || toolName === 'Grep' || toolName === 'Glob' || toolName === 'NotebookRead') {
    const given = String(input?.file_path ?? input?.notebook_path ?? input?.path ?? '');
    const bases = given ? cliPaths(given) : [''];
    if (typeof bases === 'string') return deny(bases);
    const paths = given ? [...bases] : [];
    // An absolute or climbing glob pattern names its own folder.
    const pattern = toolName === 'Glob' ? String(input?.pattern ?? '') : '';
    const fixed = pattern ? cliPaths(pattern.split(/[*?[{]/)[0]) : [];
    if (typeof fixed === 'string') return deny(fixed);
    for (const f of fixed) {
      if (f && (isAbsolute(f) || f.split('/').includes('..'))) paths.push(...bases.map((b) => resolve(resolve(worktree, b), f)));
    }
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
    const given = String(input?.file_path ?? input?.notebook_path ?? '');
    if (!given) return deny('a file path is required');
    const paths = cliPaths(given);
    if (typeof paths === 'string') return deny(paths);
    for (const p of paths) {
      const d = checkWrite(p, ctx);
      if (d) return d;
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
