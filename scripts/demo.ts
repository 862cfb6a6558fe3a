/**
 * `npm run demo`: the whole loop on examples/. A throwaway copy of the pet shop with a
 * bare origin, `bugbot start` on it, a Grafana alert for its "stray has no owner" bug,
 * the phases as they run, and at the end the fix on the origin's staging branch and
 * the outcome row.
 *
 * With ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) set it uses the real model.
 * Otherwise a scripted model answers (the Claude Code CLI, tools, git and tests are
 * still real), and every line that reports a result says so.
 * Usage: npm run demo [-- --keep]
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freeBasePort, happyPathScripts, type PipelineEnv } from '../test/support/pipeline.ts';
import { launchBugbot } from '../test/support/process.ts';
import { startScriptedModel, type ScriptedModel } from '../test/support/scripted-model.ts';
import { createTargetRepo } from '../test/support/target-repo.ts';

const USAGE = `usage: npm run demo [-- --keep]

Runs the whole loop on examples/: a Grafana alert for the pet shop's "stray has no owner"
bug, the six phases, the fix on a local bare origin's staging branch, the outcome row.
Uses the real model when ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN is set, else a
scripted one (the Claude Code CLI, tools, git and tests are real either way).

  --keep   keep the run's folder (the copy, its origin, bugbot's home) afterwards
  --help   this text
`;
let args: { keep: boolean; help: boolean };
try {
  ({ values: args } = parseArgs({ options: { keep: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } }));
} catch (err) {
  process.stderr.write(`demo: ${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const realModel = Boolean(process.env.ANTHROPIC_API_KEY || process.env.CLAUDE_CODE_OAUTH_TOKEN);
const tag = realModel ? '' : ' (scripted model)';
const say = (line: string) => process.stdout.write(`demo: ${line}\n`);
/** Set by Ctrl-C or SIGTERM: the demo stops what it started and removes its folder. */
let interrupted: string | null = null;

/**
 * The environment of the demo's `bugbot start`: the operator's, less bugbot's own
 * variables. BUGBOT_HOME, BUGBOT_TARGET_REPO and the other overrides would beat the
 * demo's config (its ticket stored in their home, a fix tried on their repository), and
 * BUGBOT_API_TOKEN would make its API refuse the demo's own requests.
 */
function demoEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  // Set to undefined, not deleted: launchBugbot spreads process.env under these.
  for (const name of Object.keys(base)) if (name.startsWith('BUGBOT_') && name !== 'BUGBOT_NO_BUNDLE') env[name] = undefined;
  env.BUGBOT_LOG_LEVEL = 'warn';
  return env;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bugbot-demo-'));
  say(`working in ${dir}`);
  say('copying examples/ into a git repository with a bare origin, installing its dependencies...');
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => (interrupted = sig));
  let target: ReturnType<typeof createTargetRepo>;
  try {
    target = createTargetRepo(dir);
  } catch (err) {
    // Nothing ran yet: nothing in the folder to look at.
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const home = join(dir, 'home');

  let model: ScriptedModel | undefined;
  const env = demoEnv(process.env);
  if (!realModel) {
    model = await startScriptedModel();
    const pipelineEnv: PipelineEnv = { dir, target, model, configPath: '', home, env: {} };
    for (const [phase, steps] of Object.entries(happyPathScripts(pipelineEnv))) model.script(phase, steps);
    env.ANTHROPIC_BASE_URL = model.url;
    env.ANTHROPIC_API_KEY = 'sk-scripted-demo';
    say(`no ANTHROPIC_API_KEY: the model is scripted (${model.url}); the Claude Code CLI, tools, git and tests are real`);
  }
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      home,
      workers: 1,
      target: { repo: target.repo, devCommand: 'npm run dev', testCommand: 'npm test', basePort: await freeBasePort(1) },
      intake: { settleSeconds: 2 },
      harness: { heartbeatSeconds: 1 },
    }),
  );

  const { proc: bugbot, url } = await launchBugbot(configPath, env);
  let state = '';
  try {
    state = await run(url, home, target);
  } finally {
    // Gone already when it died, or stopped on the terminal's Ctrl-C: no exit to wait for.
    if (bugbot.exitCode === null && bugbot.signalCode === null) {
      bugbot.kill('SIGTERM');
      await new Promise((r) => bugbot.once('exit', r));
    }
    await model?.close();
  }
  if (state !== 'pushed') process.exitCode = interrupted ? 130 : 1;
  // A run that did not land keeps its folder: its logs (worker.log, devserver.log, the
  // phases' stream logs) say why. With no run (workers held, stopped before one), there
  // is nothing to look at.
  const logs = join(home, 'tickets', '1');
  if (args.keep || (state !== 'pushed' && !interrupted && existsSync(logs))) say(`kept ${dir}${state !== 'pushed' ? ` (the run's logs: ${logs})` : ''}`);
  else rmSync(dir, { recursive: true, force: true });
}

/** Fire the alert, follow the ticket to its end, show what it left; its final state. */
async function run(url: string, home: string, target: ReturnType<typeof createTargetRepo>): Promise<string> {
  say(`bugbot start is listening on ${url}`);
  const alert = {
    version: '1',
    status: 'firing',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'PetshopUnhandledError', service: 'petshop', method: 'GET', route: '/api/pets/5', severity: 'critical' },
        annotations: { summary: 'Unhandled error on GET /api/pets/:id', message: "TypeError: Cannot read properties of undefined (reading 'name')" },
        startsAt: new Date().toISOString(),
        fingerprint: `demo-${Date.now()}`,
      },
    ],
  };
  await fetch(`${url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alert) });
  say('fired a Grafana alert: TypeError on GET /api/pets/5 (the pet shop crashes on strays)');

  let lastPhase = '';
  const deadline = Date.now() + 15 * 60_000;
  let state = '';
  while (Date.now() < deadline) {
    if (interrupted) {
      say(`${interrupted}: stopping bugbot and removing what the demo made${args.keep ? ' (--keep: the folder stays)' : ''}`);
      return `interrupted (${state || 'settling'})`;
    }
    let t: { ticket?: { state: string } };
    let workers: Array<{ phase: string | null; tokens: number; cost_usd: number }>;
    let held: string | null;
    try {
      t = (await (await fetch(`${url}/api/tickets/1`)).json().catch(() => ({}))) as typeof t;
      ({ workers, held } = (await (await fetch(`${url}/api/workers`)).json()) as { workers: typeof workers; held: string | null });
    } catch (err) {
      // The terminal's Ctrl-C stops bugbot too: it stops answering.
      if (interrupted) continue;
      throw err;
    }
    state = t.ticket?.state ?? 'settling';
    // What this machine lacks (a command, a model): no run starts until it has it. A pause
    // after a run the machine could not host ends by itself.
    if (held && !held.startsWith('paused') && !workers.length) {
      say(`the workers hold, so ticket 1 waits in the queue: ${held}`);
      return state;
    }
    const w = workers[0];
    const phase = w ? `${w.phase ?? 'starting'}` : state;
    if (phase !== lastPhase) {
      say(`ticket 1: ${phase}${w ? ` (${w.tokens} tokens so far${realModel ? '' : ', scripted model'})` : tag}`);
      lastPhase = phase;
    }
    if (['pushed', 'failed', 'needs_human', 'awaiting_approval', 'dropped'].includes(state)) break;
    await new Promise((r) => setTimeout(r, 500));
  }

  const archive = join(home, 'outcomes.jsonl');
  if (!existsSync(archive)) {
    say(`ticket 1 is ${state}${Date.now() >= deadline ? ' after 15 minutes' : ''}: no run finished${tag}`);
    return state;
  }
  const rows = readFileSync(archive, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const row = rows[rows.length - 1]!;
  say(`ticket 1 ended ${state}: ${String(row.reason)}${tag}`);
  if (state === 'pushed') {
    const log = target.originGit('log', '--format=%h %s', 'staging').split('\n').map((l) => `    ${l}`).join('\n');
    say(`staging of the origin now holds${tag}:\n${log}`);
  }
  say(`outcome row${tag}: ${JSON.stringify({ outcome: row.outcome, cost_usd: row.cost_usd, stages: row.stages, diff: row.diff, tests: row.tests })}`);

  return state;
}

await main();
