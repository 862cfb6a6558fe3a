/**
 * Spawning real processes for end-to-end tests: `bugbot start` and Debian's
 * Prometheus / Alertmanager. Every child is killed (by its PID) when the test ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { repoRoot } from './helpers.ts';

export interface Spawned {
  proc: ChildProcess;
  output: () => string;
  /** Resolves with the exit code / signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnLogged(t: TestContext, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Spawned {
  const proc = spawn(cmd, args, { cwd: opts.cwd ?? repoRoot, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  proc.on('error', (err) => (out += `\nspawn error: ${err.message}`));
  t.after(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    // Politely first: bugbot start stops its workers on SIGTERM (SIGKILL would orphan them).
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  });
  return { proc, output: () => out, exited };
}

export interface BugbotProcess extends Spawned {
  url: string;
}

/** Start `bugbot start` with a config file and wait until it has printed its whole banner (it ends with "watching:"). */
export async function startBugbot(
  t: TestContext,
  opts: { configPath: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string },
): Promise<BugbotProcess> {
  const env = { ...process.env, BUGBOT_LOG_LEVEL: 'warn', ...opts.env };
  const s = spawnLogged(t, process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', opts.configPath, 'start', '--port', '0'], { env, cwd: opts.cwd });
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    const m = /listening on (http:\/\/\S+)/.exec(s.output());
    if (m && /^watching: /m.test(s.output())) return { ...s, url: m[1]! };
    if (s.proc.exitCode !== null) throw new Error(`bugbot start exited early (${s.proc.exitCode}):\n${s.output()}`);
    if (Date.now() > deadline) throw new Error(`bugbot start did not report its address in time:\n${s.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A free TCP port on loopback (for daemons that cannot report an ephemeral one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * `bugbot start` for scripts and benchmarks (no test context): resolves with the process
 * and its URL once it listens, rejects if it exits first. The caller stops it.
 */
export function launchBugbot(configPath: string, env: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', configPath, 'start', '--port', '0'], {
    env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ proc, url: m[1]! });
    });
    proc.once('exit', (code) => reject(new Error(`bugbot start exited (${code}) before listening`)));
  });
}

/** A PATH with everything the original has except the named programs (symlink farm). */
export function pathWithout(dir: string, missing: string[]): string {
  mkdirSync(dir, { recursive: true });
  const seen = new Set<string>();
  for (const p of (process.env.PATH ?? '').split(':')) {
    if (!p || !existsSync(p)) continue;
    for (const name of readdirSync(p)) {
      if (missing.includes(name) || seen.has(name)) continue;
      seen.add(name);
      symlinkSync(join(p, name), join(dir, name));
    }
  }
  return dir;
}
