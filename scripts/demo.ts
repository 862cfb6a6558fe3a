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
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bugbot-demo-'));
  say(`working in ${dir}`);
  say('copying examples/ into a git repository with a bare origin, installing its dependencies...');
  const target = createTargetRepo(dir);
  const home = join(dir, 'home');

  let model: ScriptedModel | undefined;
  const env: NodeJS.ProcessEnv = { ...process.env, BUGBOT_LOG_LEVEL: 'warn' };
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
    bugbot.kill('SIGTERM');
    await new Promise((r) => bugbot.once('exit', r));
    await model?.close();
  }
  if (state !== 'pushed') process.exitCode = 1;
  // A run that did not land keeps its folder: its logs (worker.log, devserver.log, the
  // phases' stream logs) say why.
  if (args.keep || state !== 'pushed') say(`kept ${dir}${state !== 'pushed' ? ` (the run's logs: ${join(home, 'tickets', '1')})` : ''}`);
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
    const t = (await (await fetch(`${url}/api/tickets/1`)).json().catch(() => ({}))) as { ticket?: { state: string } };
    state = t.ticket?.state ?? 'settling';
    const { workers } = (await (await fetch(`${url}/api/workers`)).json()) as { workers: Array<{ phase: string | null; tokens: number; cost_usd: number }> };
    const w = workers[0];
    const phase = w ? `${w.phase ?? 'starting'}` : state;
    if (phase !== lastPhase) {
      say(`ticket 1: ${phase}${w ? ` (${w.tokens} tokens so far${realModel ? '' : ', scripted model'})` : tag}`);
      lastPhase = phase;
    }
    if (['pushed', 'failed', 'needs_human', 'awaiting_approval', 'dropped'].includes(state)) break;
    await new Promise((r) => setTimeout(r, 500));
  }

  const rows = readFileSync(join(home, 'outcomes.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
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
