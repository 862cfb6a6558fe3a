/**
 * bench/harness: what the harness adds around the model, per ticket, against a floor
 * measured in the same run.
 *
 *   overhead = (claim → first model request) + (last model reply → push done)
 *   floor    = bare `git worktree add` + `claude -p` start-up until its first request
 *
 * The model is scripted and answers at once, so model time is out of the picture.
 * Target: overhead ≤ 1.5 × floor per ticket. Usage: npm run bench:harness [-- --tickets 3]
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freeBasePort, happyPathScripts, type PipelineEnv } from '../../test/support/pipeline.ts';
import { launchBugbot } from '../../test/support/process.ts';
import { say, startScriptedModel } from '../../test/support/scripted-model.ts';
import { createTargetRepo } from '../../test/support/target-repo.ts';
import { cpuSample, spreadNote, stealNote, stealPercent } from '../steadiness.ts';

const root = resolve(import.meta.dirname, '../..');
const claude = join(root, 'node_modules/.bin/claude');
// --keep leaves the run's folder (tickets' status, stream logs, worker logs) for a look at where the time goes.
const { values: args } = parseArgs({ options: { tickets: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false } } });
const TICKETS = Number(args.tickets);
// How long one ticket may take (a scripted model answers at once: seconds, not minutes).
const TICKET_TIMEOUT_MS = 180_000;

const dir = mkdtempSync(join(tmpdir(), 'bugbot-bench-harness-'));
const target = createTargetRepo(dir);
const model = await startScriptedModel();
const home = join(dir, 'home');
const env: PipelineEnv = { dir, target, model, configPath: join(dir, 'bugbot.config.json'), home, env: {} };
model.script('floor', [say('ok')]);

/** The floor, once per ticket: git worktree add, then claude -p until its first request. */
async function floor(i: number): Promise<number> {
  const t0 = Date.now();
  await run('git', ['-C', target.repo, 'worktree', 'add', '--quiet', '-b', `floor-${i}`, join(dir, `floor-${i}`), 'main']);
  const worktreeMs = Date.now() - t0;
  const before = model.requests.length;
  const spawned = Date.now();
  const child = spawn(claude, ['-p', '--output-format', 'json', '--permission-mode', 'dontAsk', '--strict-mcp-config', '--setting-sources', 'user', '--tools', ''], {
    cwd: join(dir, `floor-${i}`),
    env: { PATH: process.env.PATH, HOME: join(dir, `floor-home-${i}`), CLAUDE_CONFIG_DIR: join(dir, `floor-cfg-${i}`), ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: 'sk-bench', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' },
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.stdin.end('<!-- bugbot-phase: floor -->\nsay ok');
  await new Promise((r) => child.once('close', r));
  const first = model.requests.slice(before).find((q) => q.phase === 'floor');
  if (!first) throw new Error('the floor session made no request');
  return worktreeMs + (first.at - spawned);
}

function run(cmd: string, a: string[]): Promise<void> {
  return new Promise((res, rej) => {
    const c = spawn(cmd, a, { stdio: 'ignore' });
    c.once('close', (code) => (code === 0 ? res() : rej(new Error(`${cmd} ${a.join(' ')} exited ${code}`))));
  });
}

writeFileSync(
  env.configPath,
  JSON.stringify({ home, workers: 1, target: { repo: target.repo, devCommand: 'npm run dev', testCommand: 'npm test', basePort: await freeBasePort(1) }, intake: { settleSeconds: 0 }, triage: { regressionGraceSeconds: 0 }, harness: { heartbeatSeconds: 1 } }),
);
target.originGit('branch', 'staging', 'main');
const { proc: bugbot, url } = await launchBugbot(env.configPath, { ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: 'sk-bench' });

/** Where claim → first request went, from research's stats (run-phase.mjs): setup before Claude Code started, its start-up until it was ready. */
interface Split {
  toSpawnMs: number;
  spawnToReadyMs: number;
}
const rows: Array<{ ticket: number; toFirstMs: number; toPushMs: number; floorMs: number; split: Split }> = [];
const cpuAtStart = cpuSample();
// A ticket that cannot run ends the bench (exit 2) after the servers are stopped.
let failure: Error | undefined;
try {
  for (let i = 1; i <= TICKETS; i++) {
    const floorMs = await floor(i);
    for (const [phase, steps] of Object.entries(happyPathScripts(env, i))) model.script(phase, steps);
    const before = model.requests.length;
    await fetch(`${url}/api/tickets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: `Strays crash the pet page, report ${"abcdefghij"[i - 1]}`, message: 'GET /api/pets/5 fails: owner is undefined' }) });
    const ticketDir = join(home, 'tickets', String(i), `run-${i}`);
    const waitUntil = Date.now() + TICKET_TIMEOUT_MS;
    for (let polls = 1; ; polls++) {
      await new Promise((r) => setTimeout(r, 200));
      try {
        if (/\tfinished\t/.test(readFileSync(join(ticketDir, 'status'), 'utf8'))) break;
      } catch {
        // not started yet
      }
      // A bench that waits for workers that claim nothing would wait forever.
      if (polls % 10 === 0) {
        const { held } = (await (await fetch(`${url}/api/workers`)).json()) as { held: string | null };
        if (held) throw new Error(`ticket ${i} cannot run: workers hold (${held})`);
      }
      if (Date.now() > waitUntil) throw new Error(`ticket ${i} did not finish within ${TICKET_TIMEOUT_MS / 1000} s (see ${ticketDir})`);
    }
    const status = readFileSync(join(ticketDir, 'status'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
    const pushDone = status.find((s) => s[1] === 'push' && s[2] === 'done');
    if (!pushDone) throw new Error(`ticket ${i} did not push: ${status.at(-1)?.join(' ')}`);
    const db = new Database(join(home, 'bugbot.db'), { readonly: true });
    const claimed = Date.parse((db.prepare('SELECT started_at FROM runs WHERE id = ?').get(i) as { started_at: string }).started_at);
    db.close();
    const mine = model.requests.slice(before).filter((q) => q.phase && q.phase !== 'floor');
    const firstRequest = Math.min(...mine.map((q) => q.at));
    const lastReply = Math.max(...mine.map((q) => q.repliedAt ?? q.at));
    const research = JSON.parse(readFileSync(join(ticketDir, 'stats-research.json'), 'utf8')) as { spawned_at: string; ready_at: string };
    const split = { toSpawnMs: Date.parse(research.spawned_at) - claimed, spawnToReadyMs: Date.parse(research.ready_at) - Date.parse(research.spawned_at) };
    rows.push({ ticket: i, toFirstMs: firstRequest - claimed, toPushMs: Date.parse(pushDone[0]!) - lastReply, floorMs, split });
    // Staging starts over so every ticket pushes the same fix for real (each new report of
    // the fixed error is a regression: a new ticket, since the grace period is 0). It is
    // reset rather than deleted: a deployment has its staging branch.
    target.originGit('update-ref', 'refs/heads/staging', 'refs/heads/main');
  }
} catch (err) {
  failure = err as Error;
}

const steal = stealPercent(cpuAtStart, cpuSample());
bugbot.kill('SIGTERM');
await new Promise((r) => bugbot.once('exit', r));
await model.close();
if (args.keep || failure) console.log(`kept ${dir}`);
else rmSync(dir, { recursive: true, force: true });
if (failure) {
  console.error(`bench/harness: ${failure.message}`);
  process.exit(2);
}

console.log('bench/harness: overhead = (claim → first model request) + (last model reply → push done); floor = git worktree add + claude -p start-up to its first request');
console.log('ticket  claim→first ms  last reply→push ms  overhead ms  floor ms  ratio  | claim→claude started ms  claude start-up ms');
for (const r of rows) {
  const o = r.toFirstMs + r.toPushMs;
  console.log(
    `${String(r.ticket).padEnd(7)} ${String(Math.round(r.toFirstMs)).padStart(14)} ${String(Math.round(r.toPushMs)).padStart(19)} ${String(Math.round(o)).padStart(12)} ${String(Math.round(r.floorMs)).padStart(9)}  ${(o / r.floorMs).toFixed(2)}x  | ${String(r.split.toSpawnMs).padStart(23)} ${String(r.split.spawnToReadyMs).padStart(18)}`,
  );
}
const ratios = rows.map((r) => (r.toFirstMs + r.toPushMs) / r.floorMs).sort((a, b) => a - b);
console.log(`median ratio ${ratios[Math.floor((ratios.length - 1) / 2)]!.toFixed(2)}x; Claude Code's start-up (spawn → init event, MCP servers and sandbox included) is the largest part`);
for (const note of [stealNote(steal), spreadNote('the floor', rows.map((r) => r.floorMs), 'ms')]) {
  if (note) console.log(note);
}
const worst = Math.max(...rows.map((r) => (r.toFirstMs + r.toPushMs) / r.floorMs));
const ok = worst <= 1.5;
console.log(`${ok ? 'PASS' : 'FAIL'}  overhead per ticket ${worst.toFixed(2)}x the floor at worst (target <= 1.5x)`);
if (!ok) process.exitCode = 1;
