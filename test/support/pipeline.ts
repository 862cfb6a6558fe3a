/**
 * End-to-end pipeline support: a target repo, a scripted model, a bugbot config
 * pointing at both, and scripts for the happy path of fixing the pet shop's
 * "stray has no owner" bug. The REAL Claude Code CLI runs every phase.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { ConfigFile } from '../../control/config.ts';
import { fixtureJson, tempDir } from './helpers.ts';
import { say, startScriptedModel, tool, type MessagesRequest, type ScriptedModel, type Step } from './scripted-model.ts';
import { createTargetRepo, type TargetRepo } from './target-repo.ts';

export interface PipelineEnv {
  dir: string;
  target: TargetRepo;
  model: ScriptedModel;
  configPath: string;
  home: string;
  env: NodeJS.ProcessEnv;
}

/** The text of the first user message (the phase prompt). */
export function promptOf(req: MessagesRequest): string {
  const first = req.messages.find((m) => m.role === 'user');
  if (!first) return '';
  return typeof first.content === 'string' ? first.content : first.content.map((b) => String(b.text ?? '')).join('\n');
}

/** The plan path the brief names (research writes it). */
export function planPathOf(req: MessagesRequest): string {
  const m = /writes its plan to: `([^`]+)`/.exec(promptOf(req));
  if (!m) throw new Error('the research prompt does not name the plan path');
  return m[1]!;
}

/**
 * A base port whose next `workers` ports (at most 9) are free, below Linux's ephemeral
 * range (32768+) so other tests' outgoing connections and servers cannot take a worker's
 * port. The block is claimed by a file too: test files running side by side each check
 * their block is free before any of their dev servers listens, so both could pick one.
 * The claims are this user's (`portClaims()`); another user's runs are kept off a block
 * only by the bind check.
 */
export async function freeBasePort(workers: number, t?: TestContext): Promise<number> {
  if (workers > 9) throw new Error('a block holds 9 worker ports');
  const claims = portClaims();
  for (let attempt = 0; attempt < 100; attempt++) {
    const block = Math.floor(Math.random() * 1200);
    const base = 20_000 + block * 10;
    if (!claimBlock(block, claims)) continue;
    let ok = true;
    for (let i = 1; i <= workers && ok; i++) ok = await canBind(base + i);
    if (ok) {
      t?.after(() => rmSync(join(claims, String(block)), { force: true }));
      return base;
    }
    rmSync(join(claims, String(block)), { force: true });
  }
  throw new Error('no free block of worker ports between 20000 and 32000');
}

/**
 * The folder of this user's port claims, made if missing: one per user (a uid in its
 * name), since one user can neither write nor remove another's claims, and it must be
 * this user's own folder (in a shared temp folder, anyone could make that name first).
 * `dir` is for tests.
 */
export function portClaims(dir = join(tmpdir(), `bugbot-test-port-blocks-${process.getuid?.() ?? 'user'}`)): string {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) {
    throw new Error(`${dir} (where tests claim blocks of ports) is not a folder of this user's (uid ${process.getuid?.()}): remove it`);
  }
  return dir;
}

/**
 * Claim a block of ports for this process in `claims`; one a dead process claimed is
 * taken over. A claim that cannot be read or removed counts as taken.
 */
export function claimBlock(block: number, claims: string): boolean {
  const path = join(claims, String(block));
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
      let holder: number;
      try {
        holder = Number(readFileSync(path, 'utf8').trim());
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile: try again
        return false;
      }
      // Empty: claimed a moment ago, its pid not written yet.
      if (!holder || holder === process.pid || existsSync(`/proc/${holder}`)) return false;
      try {
        rmSync(path, { force: true });
      } catch {
        return false; // not ours to remove (EACCES, EPERM): taken
      }
    }
  }
  return false;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function setupPipeline(t: TestContext, flags: ConfigFile = {}): Promise<PipelineEnv> {
  const dir = tempDir(t, 'bugbot-e2e-');
  const target = createTargetRepo(dir);
  const model = await startScriptedModel();
  t.after(() => model.close());
  const home = join(dir, 'home');
  const basePort = await freeBasePort(8, t);
  const config: ConfigFile = {
    home,
    workers: 1,
    target: { repo: target.repo, devCommand: 'npm run dev', testCommand: 'npm test', basePort, baseBranch: 'main', stagingBranch: 'staging' },
    intake: { settleSeconds: 0 },
    harness: { idleTimeoutSeconds: 60, heartbeatSeconds: 1 },
    ...flags,
  };
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return { dir, target, model, configPath, home, env: { ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: 'sk-scripted-test' } };
}

/** A real Grafana webhook payload (shared fixture) re-labelled as the pet shop's stray-owner error. */
export function strayOwnerAlert(): unknown {
  const body = fixtureJson<{ alerts: Array<Record<string, unknown>> }>('grafana', 'webhook_firing_docs.json');
  const alert = body.alerts[0]!;
  alert.labels = { alertname: 'PetshopUnhandledError', service: 'petshop', method: 'GET', route: '/api/pets/5', severity: 'critical' };
  alert.annotations = {
    summary: 'Unhandled error on GET /api/pets/:id',
    message: "TypeError: Cannot read properties of undefined (reading 'name')",
    stack: "TypeError: Cannot read properties of undefined (reading 'name')\n    at getPet (src/pets.ts:14:94)\n    at route (src/server.ts:57:17)",
  };
  alert.startsAt = new Date().toISOString();
  alert.fingerprint = `stray-${Date.now()}`;
  body.alerts = [alert];
  return body;
}

const FIX_FROM = 'ownerName: pet.owner!.name';
const FIX_TO = 'ownerName: pet.owner?.name ?? null';

/** Scripts of the happy path: research plans, implement fixes and tests, review approves, docs records. */
export function happyPathScripts(env: PipelineEnv, n = 1): Record<string, Step[]> {
  return {
    research: [
      tool('Read', { file_path: join(worktreeOf(env, undefined, n), 'src/pets.ts') }, 'Reading the handler on the failing path.'),
      (req) =>
        tool('Write', {
          file_path: planPathOf(req),
          content: [
            '## Root cause',
            'src/pets.ts getPet dereferences `pet.owner!.name`; strays have no owner, so it throws a TypeError (500).',
            '## Affected files',
            '- src/pets.ts',
            '## Steps',
            '1. Return `ownerName: null` when the pet has no owner.',
            '## Test strategy',
            'test/pets.test.ts already has "a stray (no owner) is shown with ownerName null"; it fails before the fix.',
            '## Risks',
            'None: the response shape already allows null.',
          ].join('\n'),
        }),
      say('Plan written.'),
    ],
    implement: [
      tool('Read', { file_path: join(worktreeOf(env, undefined, n), 'src/pets.ts') }),
      tool('Edit', { file_path: join(worktreeOf(env, undefined, n), 'src/pets.ts'), old_string: FIX_FROM, new_string: FIX_TO }),
      tool('Bash', { command: 'npm test', description: 'run the tests' }),
      tool('Bash', { command: 'git add -A && git commit -m "Show strays with ownerName null instead of failing"', description: 'commit' }),
      say('Fixed: strays no longer throw.'),
    ],
    review: [
      tool('Bash', { command: 'npm test', description: 'run the tests' }),
      tool('StructuredOutput', { verdict: 'approved', reasons: [], edits: 0 }),
      say('Approved.'),
    ],
    docs: [
      tool('Read', { file_path: join(worktreeOf(env, undefined, n), 'docs/pets-api.md') }),
      (req) => {
        const wt = worktreeOf(env, req, n);
        return tool('Edit', {
          file_path: join(wt, 'docs/pets-api.md'),
          old_string: 'For them `ownerName` is\n`null`.',
          new_string: 'For them `ownerName` is\n`null`; the handler must never dereference `owner` without checking it.',
        });
      },
      tool('Bash', { command: 'git add -A && git commit -m "docs: strays have no owner"', description: 'commit docs' }),
      say('Docs updated.'),
    ],
  };
}

/** The worktree of the (single) running ticket, from the prompt's environment or the home layout. */
export function worktreeOf(env: PipelineEnv, req?: MessagesRequest, n = 1): string {
  const sys = req ? (typeof req.system === 'string' ? req.system : (req.system ?? []).map((s) => s.text).join('\n')) : '';
  const m = /(\/[^\s'"`]*\/worktrees\/ticket-\d+-run-\d+)/.exec(sys);
  if (m) return m[1]!;
  // Before any request: the worktree of ticket n, run n (the n-th claim, one run each).
  return join(env.home, 'worktrees', `ticket-${n}-run-${n}`);
}

export function readOutcomes(home: string): Array<Record<string, unknown>> {
  try {
    return readFileSync(join(home, 'outcomes.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch {
    return [];
  }
}
