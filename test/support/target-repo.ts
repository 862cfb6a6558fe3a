/**
 * A throwaway copy of examples/ as a git repository with a bare `origin`: the
 * target that end-to-end tests fix. The base checkout gets its node_modules once
 * (npm ci from the lockfile), as an operator's checkout would have.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers.ts';

export interface TargetRepo {
  /** The base checkout bugbot works from (target.repo). */
  repo: string;
  /** The bare origin it pushes to. */
  origin: string;
  git(...args: string[]): string;
  /** Run git in the bare origin. */
  originGit(...args: string[]): string;
}

const git = (cwd: string, args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

export function createTargetRepo(dir: string): TargetRepo {
  const repo = join(dir, 'petshop');
  const origin = join(dir, 'origin.git');
  mkdirSync(repo, { recursive: true });
  cpSync(join(repoRoot, 'examples'), repo, { recursive: true, filter: (src) => !src.includes('node_modules') });
  git(dir, ['init', '--quiet', '--bare', '--initial-branch=main', origin]);
  git(repo, ['init', '--quiet', '--initial-branch=main']);
  git(repo, ['config', 'user.name', 'Pet Shop Dev']);
  git(repo, ['config', 'user.email', 'dev@petshop.test']);
  git(repo, ['add', '-A']);
  git(repo, ['commit', '--quiet', '-m', 'pet shop']);
  git(repo, ['remote', 'add', 'origin', origin]);
  git(repo, ['push', '--quiet', 'origin', 'main']);
  execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: repo, stdio: 'ignore' });
  return { repo, origin, git: (...a) => git(repo, a), originGit: (...a) => git(origin, a) };
}
