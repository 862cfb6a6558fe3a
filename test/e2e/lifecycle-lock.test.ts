/**
 * The home's lock as the operator meets it: `bugbot status` while a `bugbot start` holds the
 * home but names no address, and a start at the instant another command looks at the lock.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { lockHome, readServerInfo } from '../../control/server-info.ts';
import { repoRoot, tempDir, waitFor } from '../support/helpers.ts';
import { startBugbot } from '../support/process.ts';

const noModel = { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '', ANTHROPIC_BASE_URL: '' };

function bugbot(configPath: string, args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ...noModel, BUGBOT_LOG_LEVEL: 'warn' },
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Review finding: `bugbot status` looked at server.json alone. While a start held the home
// without naming its address yet (building its bundles, stopping the workers a killed one
// left going: 20 s and more), or once its server.json was removed, status said "not
// running (start it with bugbot start)", and the start it advised was refused.
test('bugbot status while a bugbot start holds the home but names no address: starting, not "not running"', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1 }));
  const a = await startBugbot(t, { configPath, cwd: dir, env: noModel });
  rmSync(join(home, 'server.json'));

  const text = bugbot(configPath, ['status'], dir);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^control plane: starting up \(a bugbot start holds this home's lock, bugbot\.lock\.db, and does not listen yet; or its server\.json was removed\)/m);
  assert.doesNotMatch(text.stdout, /not running|would hold the workers/);
  const json = bugbot(configPath, ['status', '--json'], dir);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual((JSON.parse(json.stdout) as { server: unknown }).server, { state: 'starting', url: null, pid: null });
  // As the start it would have advised says.
  const b = bugbot(configPath, ['start', '--port', '0'], dir);
  assert.equal(b.code, 2, b.stdout + b.stderr);
  assert.match(b.stderr, /already running for home/);

  a.proc.kill('SIGTERM');
  assert.deepEqual(await a.exited, { code: 0, signal: null }, a.output());
  const down = bugbot(configPath, ['status', '--json'], dir);
  assert.deepEqual((JSON.parse(down.stdout) as { server: unknown }).server, { state: 'stopped', url: null, pid: null });
});

// Review finding: the lock was taken with SQLite's busy timeout 0, so a command reading the
// lock file at that instant (homeLocked(): `bugbot status` with no server.json, a command
// finding bugbot.db missing) turned a start away as "already running", although nothing ran.
test('a start at the instant another process reads the lock file takes the home; a live holder still refuses it', { timeout: 30_000 }, async (t) => {
  const home = tempDir(t);
  const lockFile = join(home, 'bugbot.lock.db');
  lockHome(home)!.release();
  assert.ok(existsSync(lockFile));
  const sqlite = createRequire(join(repoRoot, 'package.json')).resolve('better-sqlite3');
  // Another process reading the lock file (a shared lock) for 300 ms.
  const reader = spawn(
    process.execPath,
    [
      '-e',
      `const D = require(${JSON.stringify(sqlite)}); const db = new D(${JSON.stringify(lockFile)}, { readonly: true });` +
        `db.exec('BEGIN'); db.prepare('SELECT count(*) FROM sqlite_master').get(); process.stdout.write('reading\\n');` +
        `setTimeout(() => { db.exec('COMMIT'); db.close(); }, 300);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => reader.kill('SIGKILL'));
  let out = '';
  reader.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('reading'), 10_000, 'the reader');
  const lock = lockHome(home);
  assert.ok(lock, 'the start waited out the read and took the home');
  lock.release();

  // A live holder (another process's lock, held until it is killed) still refuses it.
  const holder = spawn(
    process.execPath,
    ['--import', 'tsx', '-e', `import('./control/server-info.ts').then((m) => { m.lockHome(${JSON.stringify(home)}); process.stdout.write('held\\n'); setInterval(() => {}, 1000); });`],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => holder.kill('SIGKILL'));
  let held = '';
  holder.stdout.on('data', (d: Buffer) => (held += d.toString()));
  await waitFor(() => held.includes('held'), 10_000, 'the holder');
  const started = Date.now();
  assert.equal(lockHome(home), null);
  assert.ok(Date.now() - started < 5_000, `refused in ${Date.now() - started} ms`);
});

// Review finding: server.json was taken for a live server while its PID ran, unless its
// identity proved the process gone; an identity written in another PID namespace (a
// container sharing the home) or none at all (no /proc) proves nothing. Once a killed
// server's PID named another process, `bugbot status` said "not answering" and `bugbot
// cancel` that the running server would stop the worker, with nothing running.
test("a killed server's server.json is not a live server's, whatever process its PID names now", { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1 }));
  const a = await startBugbot(t, { configPath, cwd: dir, env: noModel });
  a.proc.kill('SIGKILL');
  assert.equal((await a.exited).signal, 'SIGKILL');
  const infoPath = join(home, 'server.json');
  const left = JSON.parse(readFileSync(infoPath, 'utf8')) as { pid: number; identity: string };
  // Its PID now another process's, its identity one this shell cannot judge (another PID namespace's).
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.after(() => other.kill('SIGKILL'));
  await once(other, 'spawn');
  const parts = left.identity.split('/');
  parts[parts.length - 3] = `${Number(parts[parts.length - 3]) + 1}`;
  parts[parts.length - 2] = String(other.pid);
  writeFileSync(infoPath, JSON.stringify({ ...left, pid: other.pid, identity: parts.join('/') }));

  assert.equal(readServerInfo(home), null);
  const s = bugbot(configPath, ['status', '--json'], dir);
  assert.equal(s.code, 0, s.stderr);
  assert.deepEqual((JSON.parse(s.stdout) as { server: unknown }).server, { state: 'stopped', url: null, pid: null });
});

// Review finding: there was no way to stop a control plane but its terminal's Ctrl-C or a
// signal sent by hand to the PID in server.json.
test('bugbot stop: stops the running control plane as Ctrl-C does and waits until it has; not running is no error; one starting up is said', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1 }));
  const a = await startBugbot(t, { configPath, cwd: dir, env: noModel });
  const stop = bugbot(configPath, ['stop'], dir);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, new RegExp(`^stopping the control plane at ${a.url.replace(/[.]/g, '\\.')} \\(pid ${a.proc.pid}\\): runs under way stop and go back to the queue\\.\\.\\.\\nstopped \\(\\d+\\.\\d s\\)\\n$`));
  // The home free when stop returns (its server.json removed, a start may take it), the
  // process ending as a graceful stop ends: exit 0.
  assert.equal(existsSync(join(home, 'server.json')), false);
  const next = lockHome(home);
  assert.ok(next, 'a start may take the home');
  next.release();
  assert.deepEqual(await a.exited, { code: 0, signal: null }, a.output());

  const again = bugbot(configPath, ['stop'], dir);
  assert.deepEqual([again.code, again.stdout, again.stderr], [0, 'not running\n', '']);

  // Holding the home but naming no process yet: nothing to signal.
  const lock = lockHome(home)!;
  t.after(() => lock.release());
  const starting = bugbot(configPath, ['stop'], dir);
  assert.equal(starting.code, 1);
  assert.match(starting.stderr, /a bugbot start of this home is starting up and names no process yet \(server\.json\): run this again in a moment/);
});
