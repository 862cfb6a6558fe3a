// When the workers hold (claim nothing) and why: what a run needs on this machine, a
// model to talk to and a checkout of the target with its remote. The control plane's
// side is in test/e2e/cli.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { REPO_ROOT } from '../../control/dispatcher/phases.ts';
import { lowDisk, workersHeld } from '../../control/dispatcher/requirements.ts';
import { tempDir, testConfig } from '../support/helpers.ts';
import { fillDisk, smallDisk } from '../support/tmpfs.ts';

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A checkout with one commit, and an `origin` unless told otherwise (made by git itself, read back without it). */
function checkout(t: TestContext, remote: string | null = 'origin'): string {
  const repo = join(tempDir(t), 'shop');
  mkdirSync(repo);
  git(repo, 'init', '--quiet', '--initial-branch=main');
  git(repo, '-c', 'user.name=Dev', '-c', 'user.email=dev@shop.test', 'commit', '--quiet', '--allow-empty', '-m', 'shop');
  if (remote) git(repo, 'remote', 'add', remote, 'https://git.example.com/shop.git');
  return repo;
}

test('no model credentials hold the workers; a key, an OAuth token or a base URL is enough', (t) => {
  const home = tempDir(t);
  const target = { repo: checkout(t) };
  assert.equal(workersHeld(testConfig(home, { target }, {})), 'no model credentials (start bugbot with ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN set)');
  for (const env of [{ ANTHROPIC_API_KEY: 'sk-test' }, { CLAUDE_CODE_OAUTH_TOKEN: 'tok' }, { ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' }]) {
    assert.equal(workersHeld(testConfig(home, { target }, env)), null, JSON.stringify(env));
  }
  // The names the config points at are the ones asked for.
  const renamed = testConfig(home, { target, harness: { apiKeyEnv: 'TEAM_MODEL_KEY' } }, {});
  assert.match(workersHeld(renamed) ?? '', /start bugbot with TEAM_MODEL_KEY or CLAUDE_CODE_OAUTH_TOKEN set/);
  assert.equal(workersHeld(testConfig(home, { target, harness: { apiKeyEnv: 'TEAM_MODEL_KEY' } }, { TEAM_MODEL_KEY: 'k' })), null);
});

test('a Claude Code command of your own may bring its credentials: not held for them', (t) => {
  const home = tempDir(t);
  assert.equal(workersHeld(testConfig(home, { target: { repo: checkout(t) }, harness: { claude: '/usr/bin/true' } }, {})), null);
});

test('a missing command holds them too, with how to install it, next to the missing model', (t) => {
  const home = tempDir(t);
  const reason = workersHeld(testConfig(home, { target: { repo: checkout(t) } }, {}), '/nonexistent');
  // (The Claude Code CLI comes with bugbot, at an absolute path, so a PATH cannot hide it.)
  assert.equal(
    reason,
    'git, flock, bwrap, socat, grep not found (apt-get install git util-linux bubblewrap socat grep); no model credentials (start bugbot with ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN set)',
  );
});

const model = { ANTHROPIC_API_KEY: 'sk-test' };

test('a target that is not a git checkout holds them, saying what to set; fixed in place, the hold lifts', (t) => {
  const home = tempDir(t);
  const folder = tempDir(t);
  assert.equal(
    workersHeld(testConfig(home, { target: { repo: folder } }, model)),
    `target.repo ${folder} is not a git repository (set target.repo to a checkout of the repository to fix)`,
  );
  // A folder inside a checkout is not one: the worktrees are made of the whole repository.
  const repo = checkout(t);
  mkdirSync(join(repo, 'src'));
  assert.equal(
    workersHeld(testConfig(home, { target: { repo: join(repo, 'src') } }, model)),
    `target.repo ${join(repo, 'src')} is inside the git repository ${repo}, not its top (set target.repo to ${repo})`,
  );
  // The folder becomes a checkout with an origin while bugbot runs: the next check passes.
  git(folder, 'init', '--quiet');
  git(folder, 'remote', 'add', 'origin', 'git@git.example.com:shop.git');
  assert.equal(workersHeld(testConfig(home, { target: { repo: folder } }, model)), null);
});

test("bugbot's own checkout as the target (the embedded default `.` where the quick start runs) holds them: a run would fix bugbot and push to its origin", (t) => {
  const home = tempDir(t);
  assert.equal(
    workersHeld(testConfig(home, { target: { repo: REPO_ROOT } }, model)),
    `target.repo ${REPO_ROOT} is this bugbot installation itself (name the repository to fix: target.repo in bugbot.config.json, which bugbot init writes, or BUGBOT_TARGET_REPO=<path>)`,
  );
});

test('a target that does not exist holds them', (t) => {
  const home = tempDir(t);
  const gone = join(tempDir(t), 'shop');
  assert.equal(
    workersHeld(testConfig(home, { target: { repo: gone } }, model)),
    `target.repo ${gone} does not exist (set target.repo to a checkout of the repository to fix)`,
  );
});

test('a checkout without target.remote holds them, with how to add it; one with it does not', (t) => {
  const home = tempDir(t);
  const bare = checkout(t, null);
  assert.equal(
    workersHeld(testConfig(home, { target: { repo: bare } }, model)),
    `target.repo ${bare} has no remote "origin" (git remote add origin <url>, or set target.remote)`,
  );
  // Another remote is not the one asked for; naming it in target.remote is.
  git(bare, 'remote', 'add', 'upstream', 'https://git.example.com/shop.git');
  assert.match(workersHeld(testConfig(home, { target: { repo: bare } }, model)) ?? '', /has no remote "origin"/);
  assert.equal(workersHeld(testConfig(home, { target: { repo: bare, remote: 'upstream' } }, model)), null);
  assert.equal(workersHeld(testConfig(home, { target: { repo: checkout(t) } }, model)), null);
  // A remote removed while bugbot runs holds it again.
  git(bare, 'remote', 'remove', 'upstream');
  assert.match(workersHeld(testConfig(home, { target: { repo: bare, remote: 'upstream' } }, model)) ?? '', /has no remote "upstream"/);
});

// Review finding: with extensions.worktreeConfig on (git sparse-checkout sets it), git
// reads each worktree's config.worktree, which the agent's sandbox can write: a gpg.program
// or uploadpack there ran from the harness's own git, outside the sandbox.
test('a checkout that reads per-worktree config holds them, saying how to turn it off', (t) => {
  const home = tempDir(t);
  const repo = checkout(t);
  git(repo, 'config', 'extensions.worktreeConfig', 'true');
  assert.equal(
    workersHeld(testConfig(home, { target: { repo } }, model)),
    `target.repo ${repo} has extensions.worktreeConfig on (git sparse-checkout sets it): each worktree's config.worktree would be the agent's to write and the harness's git would run what it names; give bugbot a checkout without it (git -C ${repo} config --unset extensions.worktreeConfig)`,
  );
  git(repo, 'config', 'extensions.worktreeConfig', 'false');
  assert.equal(workersHeld(testConfig(home, { target: { repo } }, model)), null);
  git(repo, 'config', '--unset', 'extensions.worktreeConfig');
  git(repo, 'sparse-checkout', 'init', '--cone');
  assert.match(workersHeld(testConfig(home, { target: { repo } }, model)) ?? '', /extensions\.worktreeConfig on/, 'as sparse-checkout leaves it');
});

// Review finding: the check took only true, yes, on and 1 for on, where git takes any
// boolean it can read: "true" in quotes, 2, On. Such a checkout read each worktree's
// config.worktree and the workers did not hold.
test('extensions.worktreeConfig holds them however git would read it as on', (t) => {
  const home = tempDir(t);
  const repo = checkout(t);
  const config = join(repo, '.git', 'config');
  const base = readFileSync(config, 'utf8');
  for (const value of ['"true"', '2', 'On', '"tr"ue']) {
    writeFileSync(config, `${base}[extensions]\n\tworktreeConfig = ${value}\n`);
    assert.match(git(repo, 'config', '--type=bool', 'extensions.worktreeConfig'), /^true/, `git reads ${value} as on`);
    assert.match(workersHeld(testConfig(home, { target: { repo } }, model)) ?? '', /extensions\.worktreeConfig on/, value);
  }
  for (const value of ['false', '0', '"no"', 'off', '']) {
    writeFileSync(config, `${base}[extensions]\n\tworktreeConfig = ${value}\n`);
    assert.equal(workersHeld(testConfig(home, { target: { repo } }, model)), null, value);
  }
});

test('a linked worktree (a .git file) finds the remote in its main repository\'s config', (t) => {
  const home = tempDir(t);
  const repo = checkout(t);
  const linked = join(tempDir(t), 'linked');
  git(repo, 'worktree', 'add', '--quiet', '-b', 'linked', linked);
  assert.equal(workersHeld(testConfig(home, { target: { repo: linked } }, model)), null);
  git(repo, 'remote', 'rename', 'origin', 'upstream');
  assert.equal(
    workersHeld(testConfig(home, { target: { repo: linked } }, model)),
    `target.repo ${linked} has no remote "origin" (git remote add origin <url>, or set target.remote)`,
  );
  // A .git file pointing nowhere is no checkout.
  rmSync(join(repo, '.git'), { recursive: true });
  assert.match(workersHeld(testConfig(home, { target: { repo: linked } }, model)) ?? '', /is not a git repository/);
});

test("the workers hold while the disk holding bugbot's home has less free than harness.minFreeDiskMb, and go on once it has", (t) => {
  const home = smallDisk(t, '8m');
  const repo = checkout(t);
  const config = testConfig(home, { target: { repo }, harness: { minFreeDiskMb: 4 } }, model);
  assert.equal(lowDisk(config), null);
  assert.equal(workersHeld(config), null);
  const filler = fillDisk(home);
  const reason = `the disk holding bugbot's home (${home}) has 0.0 MB free; runs start again once it has 4 MB (harness.minFreeDiskMb)`;
  assert.equal(lowDisk(config), reason);
  assert.equal(workersHeld(config), reason);
  assert.equal(lowDisk({ ...config, harness: { ...config.harness, minFreeDiskMb: 0 } }), null, '0: never');
  rmSync(filler);
  assert.equal(workersHeld(config), null);
  assert.equal(testConfig(tempDir(t), {}).harness.minFreeDiskMb, 200, 'the default');
});

test('harness.claude naming a command that is not there says so, not to reinstall bugbot', (t) => {
  const home = tempDir(t);
  const target = { repo: checkout(t) };
  const dir = tempDir(t);
  const held = (claude: string) => workersHeld(testConfig(home, { target, harness: { claude } }, model));
  const fix = 'point harness.claude at the Claude Code CLI, or unset it to use the one that comes with bugbot';
  const gone = join(dir, 'claude');
  assert.equal(held(gone), `harness.claude names ${gone}, which does not exist (${fix})`);
  writeFileSync(gone, '#!/bin/sh\n', { mode: 0o644 });
  assert.equal(held(gone), `harness.claude names ${gone}, which is not executable (chmod +x it, or ${fix})`);
  assert.equal(held(dir), `harness.claude names ${dir}, which is a folder (${fix})`);
  assert.equal(held('no-such-claude-cli'), `harness.claude names no-such-claude-cli, which is not on PATH (${fix})`);
  // Fixed in place, the hold lifts.
  chmodSync(gone, 0o755);
  assert.equal(held(gone), null);
});
