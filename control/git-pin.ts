/**
 * Git commands the control plane runs on the target's base checkout (an approval's checks,
 * the reconciler's and retention's worktree and branch clean-up, the dashboard's diffs),
 * kept on that checkout's own repository, as `harness_git_pin` keeps the harness's.
 *
 * git follows a `commondir` file in any git dir to the repository it names, config and
 * all. A checkout's own `.git` never holds one (git writes one only in a linked worktree's),
 * and the agent's sandbox can write that folder (its worktrees commit there): one planted
 * there would send these commands, run as bugbot's user outside any sandbox, to a config
 * of the agent's (an ssh command, a remote that runs one). The checkout's `.git` is pinned
 * by its path (GIT_COMMON_DIR: no `commondir` is read), and one holding a `commondir` is
 * refused.
 */
import { lstatSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

/** What a git command of the control plane's needs of its environment: none of its secrets, and never a prompt. */
export function plainGitEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, LANG: process.env.LANG ?? 'C.UTF-8', TMPDIR: process.env.TMPDIR, GIT_TERMINAL_PROMPT: '0' };
}

/** `env` with the base checkout `repo`'s own repository pinned; throws when its `.git` holds a `commondir`. */
export function pinnedGitEnv(repo: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const dotGit = join(repo, '.git');
  const isDir = (() => {
    try {
      return lstatSync(dotGit).isDirectory();
    } catch {
      return false;
    }
  })();
  // A linked worktree's `.git` file (a checkout made with `git worktree add`), or no
  // repository at all: as git finds it.
  if (!isDir) return env;
  const planted = (() => {
    try {
      lstatSync(join(dotGit, 'commondir'));
      return true;
    } catch {
      return false;
    }
  })();
  if (planted) throw new Error(`${join(dotGit, 'commondir')} is there, which a checkout's own .git never holds (a command may have planted it to send git to another repository): remove it`);
  return { ...env, GIT_COMMON_DIR: realpathSync(dotGit) };
}
