/**
 * A new user's first hour, as they run it: `bugbot init` and `npm run demo`, real
 * processes and real files.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, tempDir } from '../support/helpers.ts';
import { pathWithout } from '../support/process.ts';

const BIN = join(repoRoot, 'bin/bugbot.js');

test('init: an empty --target or --output (a variable not set) is a usage error, and nothing is written', (t) => {
  const dir = tempDir(t);
  for (const args of [['init', '--target', ''], ['init', '-o', ''], ['init', '--output=']]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, BUGBOT_CONFIG: undefined } });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /expected a path, not an empty string/, args.join(' '));
    // `--target ""` wrote a starter config into the working directory instead of docs.
    assert.deepEqual(readdirSync(dir), [], args.join(' '));
  }
});

// Review finding: `init --target` wrote a docs/ and a CLAUDE.md into any folder it was given:
// a mistyped path (a home folder, a repository's subfolder) got them.
test("init --target writes only at a git repository's top level, unless --force", (t) => {
  const dir = tempDir(t);
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8' });
  const plain = join(dir, 'plain');
  mkdirSync(plain);
  const r = run('init', '--target', plain);
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.equal(r.stderr, `bugbot: --target ${plain} is not a git repository (bugbot's target is one): check the path, or add --force to write there anyway\n`);
  assert.deepEqual(readdirSync(plain), []);
  const repo = join(dir, 'repo');
  mkdirSync(join(repo, 'src'), { recursive: true });
  assert.equal(spawnSync('git', ['init', '-q', repo]).status, 0);
  const sub = run('init', '--target', join(repo, 'src'));
  assert.equal(sub.status, 2);
  assert.equal(sub.stderr, `bugbot: --target ${join(repo, 'src')} is inside the repository ${repo}: give its top level (or add --force to write here anyway)\n`);
  assert.deepEqual(readdirSync(join(repo, 'src')), []);
  const ok = run('init', '--target', repo);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, 'wrote docs/README.md\nwrote CLAUDE.md\n');
  const forced = run('init', '--target', plain, '--force');
  assert.equal(forced.status, 0, forced.stderr);
  assert.ok(existsSync(join(plain, 'CLAUDE.md')));
});

test('bugbot help <command> shows its help; an unknown one is named, exit 2, as bugbot <unknown> is', (t) => {
  const dir = tempDir(t);
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8' });
  for (const [args, usage] of [[['help', 'init'], 'bugbot init'], [['help', 'docs', 'index'], 'bugbot docs index'], [['help'], 'bugbot']] as const) {
    const r = run(...args);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: ${usage} \\[options\\]`), args.join(' '));
  }
  for (const args of [['help', 'frob'], ['help', 'docs', 'frob'], ['frob']]) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    // Commander's help printed the whole usage to stderr, the name never mentioned.
    assert.equal(r.stderr, "error: unknown command 'frob'\n(run bugbot --help for usage)\n", args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});

test('npm run demo where the workers hold: says why at once, stops, removes its folder; the operator\'s BUGBOT_* settings stay out of it', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_TEST_CONTEXT: undefined,
    ANTHROPIC_API_KEY: undefined,
    CLAUDE_CODE_OAUTH_TOKEN: undefined,
    TMPDIR: tmp,
    // No socat: the agent's sandbox cannot run, so the workers hold.
    PATH: pathWithout(join(dir, 'bin'), ['socat']),
    // A shell where the README's `BUGBOT_TARGET_REPO=<path> npm start` was exported, with an API token.
    BUGBOT_TARGET_REPO: join(dir, 'my-real-repo'),
    BUGBOT_HOME: join(dir, 'my-real-home'),
    BUGBOT_API_TOKEN: 'operator-token',
  };
  const proc = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts/demo.ts')], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  });
  // Setting up the pet shop (npm ci) takes a while; waiting for a worker that never comes took 15 minutes.
  const timer = setTimeout(() => proc.kill('SIGTERM'), 240_000);
  const code = await exited;
  clearTimeout(timer);
  assert.equal(code, 1, out);
  assert.match(out, /demo: the workers hold, so ticket 1 waits in the queue: .*socat/, out);
  assert.doesNotMatch(out, /my-real-repo/, out);
  assert.equal(existsSync(join(dir, 'my-real-home')), false, 'the demo stored nothing in the operator\'s home');
  const working = /demo: working in (\S+)/.exec(out)?.[1] ?? '';
  assert.ok(working?.startsWith(tmp), out);
  assert.equal(existsSync(working), false, `no run, nothing to look at: ${working} is removed`);
});
