/**
 * What the workers need on this machine besides Node: git and flock, the agent's Bash sandbox
 * (bubblewrap and socat; every phase's commands run in it and it fails closed, and
 * socat also joins the sessions to their MCP servers), grep (the push checks the diff
 * against the protected paths with `grep -P`, and refuses to push when it cannot; Debian's
 * grep has -P), the Claude Code CLI, and a checkout of the target with its remote to make
 * worktrees from. Found on PATH and in the files git keeps, without running anything: the
 * control plane starts no process but its workers. Checked
 * when `bugbot start` starts, so a missing one is named at once rather than by every
 * run failing.
 */
import { accessSync, constants, existsSync, readFileSync, realpathSync, statfsSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import type { BugbotConfig } from '../config.ts';
import { claudeBinary, REPO_ROOT } from './phases.ts';

/** Debian packages that provide each command. */
const PACKAGES: Record<string, string> = { git: 'git', flock: 'util-linux', bwrap: 'bubblewrap', socat: 'socat', grep: 'grep' };

function sameDir(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(cmd: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((dir) => dir !== '' && executable(join(dir, cmd)));
}

/** The commands the workers need that this machine lacks, and how to get them (empty when nothing is missing). */
function missingForWorkers(cfg: BugbotConfig, path = process.env.PATH ?? ''): { missing: string[]; hint: string } {
  const missing = Object.keys(PACKAGES).filter((cmd) => !onPath(cmd, path));
  const claude = claudeBinary(cfg);
  // One harness.claude names is the operator's own: reinstalling bugbot would not bring it (claudeProblem says what is wrong with it).
  const claudeMissing = !cfg.harness.claude && (claude.includes('/') ? !executable(claude) : !onPath(claude, path));
  const packages = missing.map((cmd) => PACKAGES[cmd]!);
  const hints = [
    ...(packages.length ? [`apt-get install ${packages.join(' ')}`] : []),
    ...(claudeMissing ? ['npm ci (Claude Code comes with bugbot), or set harness.claude'] : []),
  ];
  return { missing: [...missing, ...(claudeMissing ? [`claude (${claude})`] : [])], hint: hints.join('; ') };
}

/** What is wrong with the Claude Code command harness.claude names (null: it is not set, or runs). */
function claudeProblem(cfg: BugbotConfig, path: string): string | null {
  const claude = cfg.harness.claude;
  if (!claude) return null;
  const fix = 'point harness.claude at the Claude Code CLI, or unset it to use the one that comes with bugbot';
  if (!claude.includes('/')) return onPath(claude, path) ? null : `harness.claude names ${claude}, which is not on PATH (${fix})`;
  const st = statSync(claude, { throwIfNoEntry: false });
  if (!st) return `harness.claude names ${claude}, which does not exist (${fix})`;
  if (st.isDirectory()) return `harness.claude names ${claude}, which is a folder (${fix})`;
  return executable(claude) ? null : `harness.claude names ${claude}, which is not executable (chmod +x it, or ${fix})`;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/**
 * The git directory of the checkout at `dir` (not of a folder above it): its `.git` folder,
 * or where a `.git` file points (`gitdir: ...`: a linked worktree, a submodule); null when
 * there is none.
 */
function gitDirOf(dir: string): string | null {
  const dotGit = join(dir, '.git');
  const pointer = isDirectory(dotGit) ? null : readText(dotGit);
  const gitDir = pointer === null ? dotGit : /^gitdir:\s*(.+?)\s*$/m.exec(pointer)?.[1];
  if (!gitDir) return null;
  const abs = resolve(dir, gitDir);
  return statSync(join(abs, 'HEAD'), { throwIfNoEntry: false }) ? abs : null;
}

/** Whether `dir` is a bare repository: git's own files (HEAD, objects/, refs/) in it, and `core.bare` on in its config. */
function isBare(dir: string): boolean {
  if (!statSync(join(dir, 'HEAD'), { throwIfNoEntry: false })?.isFile() || !isDirectory(join(dir, 'objects')) || !isDirectory(join(dir, 'refs'))) return false;
  return configOn(readText(join(dir, 'config')) ?? '', 'core', 'bare');
}

/** Whether git config text has a `[remote "<name>"]` section (or the old `[remote.<name>]`) with a url. */
function hasRemoteUrl(text: string, name: string): boolean {
  let inRemote = false;
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    const header = /^\[\s*([\w.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]/.exec(line);
    if (header) {
      const section = header[1]!.toLowerCase();
      const sub = header[2];
      // Section names ignore case; a quoted subsection (the remote's name) does not.
      inRemote = sub === undefined ? section === `remote.${name}` : section === 'remote' && sub.replace(/\\(.)/g, '$1') === name;
      line = line.slice(header[0].length).trim();
    }
    if (inRemote && /^url\s*=\s*[^\s#;]/i.test(line)) return true;
  }
  return false;
}

/**
 * Whether git config text turns `[section] key` on, as git reads a boolean: the key alone, or
 * any value but false, no, off, zero or nothing (quotes dropped: "true" and 2 are on too).
 * Names ignore case.
 */
function configOn(text: string, section: string, key: string): boolean {
  let inSection = false;
  let on = false;
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    const header = /^\[\s*([\w.-]+)(?:\s+"(?:[^"\\]|\\.)*")?\s*\]/.exec(line);
    if (header) {
      inSection = header[1]!.toLowerCase() === section && !header[0].includes('"');
      line = line.slice(header[0].length).trim();
    }
    const m = inSection ? /^([\w-]+)\s*(?:=\s*([^#;]*))?/.exec(line) : null;
    if (m && m[1]!.toLowerCase() === key) on = m[2] === undefined || !/^(false|no|off|[-+]?0+)?$/i.test(m[2].replace(/"/g, '').trim());
  }
  return on;
}

/**
 * Why the workers cannot make a worktree from target.repo, or null: it is not a checkout,
 * or has no target.remote to fetch the base branch from, or it reads per-worktree config.
 * Read from the files git keeps: the git directory's config, and for a linked worktree its
 * main repository's (`commondir`).
 */
function targetProblem(cfg: BugbotConfig): string | null {
  const { repo, remote } = cfg.target;
  const set = '(set target.repo to a checkout of the repository to fix)';
  if (!isDirectory(repo)) return `target.repo ${repo} does not exist ${set}`;
  // The embedded default (`.`) in bugbot's own checkout, as the quick start runs it: a
  // run would fix bugbot and push to its origin. A clone of bugbot elsewhere can be a target.
  if (sameDir(repo, REPO_ROOT)) return `target.repo ${repo} is this bugbot installation itself (name the repository to fix: target.repo in bugbot.config.json, which bugbot init writes, or BUGBOT_TARGET_REPO=<path>)`;
  const gitDir = gitDirOf(repo);
  // A bare repository (a mirror, or the origin itself) has no files to run the dev server
  // and the tests from, nor the node_modules the worktrees copy: "not a git repository"
  // would send the operator looking for the wrong fault.
  if (!gitDir && isBare(repo)) {
    return `target.repo ${repo} is a bare repository: the workers need a checkout of it, with its dependencies installed (git clone ${repo} <folder>, then set target.repo to that folder)`;
  }
  if (!gitDir) {
    let top = dirname(repo);
    while (top !== dirname(top) && !gitDirOf(top)) top = dirname(top);
    if (gitDirOf(top)) return `target.repo ${repo} is inside the git repository ${top}, not its top (set target.repo to ${top})`;
    return `target.repo ${repo} is not a git repository ${set}`;
  }
  const common = readText(join(gitDir, 'commondir'))?.trim();
  const mainConfig = join(common ? resolve(gitDir, common) : gitDir, 'config');
  // With it, git reads each worktree's own config.worktree, a file in the git folder the
  // agent's sandbox can write (.git/config and hooks it cannot): a gpg.program or an
  // uploadpack put there would run from the harness's own git, outside the sandbox.
  if (configOn(readText(mainConfig) ?? '', 'extensions', 'worktreeconfig')) {
    return `target.repo ${repo} has extensions.worktreeConfig on (git sparse-checkout sets it): each worktree's config.worktree would be the agent's to write and the harness's git would run what it names; give bugbot a checkout without it (git -C ${repo} config --unset extensions.worktreeConfig)`;
  }
  const configs = [mainConfig, join(gitDir, 'config.worktree')];
  if (configs.some((file) => hasRemoteUrl(readText(file) ?? '', remote))) return null;
  return `target.repo ${repo} has no remote "${remote}" (git remote add ${remote} <url>, or set target.remote)`;
}

/**
 * Why no ticket can run on this machine now, or null: a command the workers lack, no
 * model credentials to give the sessions (none of harness.apiKeyEnv, oauthTokenEnv or
 * baseUrlEnv is set; a custom harness.claude may bring its own), or no checkout of the
 * target with its remote. The dispatcher then claims nothing: tickets wait in the queue
 * rather than each run failing on it.
 */
export function workersHeld(cfg: BugbotConfig, path = process.env.PATH ?? ''): string | null {
  const reasons: string[] = [];
  const disk = lowDisk(cfg);
  if (disk) reasons.push(disk);
  const { missing, hint } = missingForWorkers(cfg, path);
  if (missing.length) reasons.push(`${missing.join(', ')} not found (${hint})`);
  const claude = claudeProblem(cfg, path);
  if (claude) reasons.push(claude);
  const h = cfg.harness;
  const credentials = [h.apiKeyEnv, h.oauthTokenEnv, h.baseUrlEnv].some((name) => cfg.secrets.get(name));
  if (!credentials && !h.claude) reasons.push(`no model credentials (start bugbot with ${h.apiKeyEnv} or ${h.oauthTokenEnv} set)`);
  const target = targetProblem(cfg);
  if (target) reasons.push(target);
  return reasons.length ? reasons.join('; ') : null;
}

/**
 * Whether the disk holding bugbot's home (the runs' worktrees, ticket folders, logs) has
 * less free than harness.minFreeDiskMb: a run started there fails at whatever write comes
 * first, often where the harness cannot even say why (the file that would say it is a
 * write too), and each such run would count against its ticket. Cheap (one statfs):
 * asked before every claim.
 */
export function lowDisk(cfg: Pick<BugbotConfig, 'home' | 'harness'>): string | null {
  const min = cfg.harness.minFreeDiskMb;
  if (min === 0) return null;
  let free: number;
  try {
    const fs = statfsSync(cfg.home);
    free = fs.bavail * fs.bsize;
  } catch {
    return null; // not made yet, or gone: other checks say so
  }
  if (free >= min * 1024 * 1024) return null;
  return `the disk holding bugbot's home (${cfg.home}) has ${(free / 1024 / 1024).toFixed(free < 10 * 1024 * 1024 ? 1 : 0)} MB free; runs start again once it has ${min} MB (harness.minFreeDiskMb)`;
}

/**
 * A failure to make a folder under the home (a run's ticket folder), with its cause when
 * the home cannot be written: Node's recursive mkdir reports a read-only file system as
 * ENOENT on the deepest folder ("no such file or directory, mkdir .../agent"), which
 * reads as a bug of bugbot's. The nearest folder that exists is asked.
 */
export function homeWriteFailure(err: unknown): string {
  const message = (err as Error)?.message ?? String(err);
  let dir = (err as NodeJS.ErrnoException)?.path;
  if (typeof dir !== 'string') return message;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  try {
    accessSync(dir, constants.W_OK);
    return message;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EROFS') return `${dir} is on a read-only file system (remount it read-write; bugbot's home must be writable): ${message}`;
    if (code === 'EACCES' || code === 'EPERM') return `${dir} is not writable by this user (run bugbot as the user who owns its home): ${message}`;
    return message;
  }
}
