/**
 * Test support: temp homes, configs, an app over a real store, and the shared
 * fixtures (read from ../shared, never copied into the repo).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { createApp } from '../../control/app.ts';
import { loadConfig, type BugbotConfig, type ConfigFile } from '../../control/config.ts';
import { Intake } from '../../control/intake/index.ts';
import { createRedactor } from '../../lib/redact.ts';
import { silentLogger } from '../../control/log.ts';
import { claimNext, type RunRow } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import type { Ticket, TriggerEvent } from '../../control/types.ts';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = process.env.BUGBOT_SHARED_DIR ?? resolve(repoRoot, '../shared');

/** Path of a shared fixture; throws (never skips) when the shared folder is missing. */
export function fixturePath(...parts: string[]): string {
  const p = join(sharedDir, 'fixtures', ...parts);
  if (!existsSync(p)) {
    throw new Error(`fixture ${p} is missing: tests read ../shared/fixtures beside the checkout (or set BUGBOT_SHARED_DIR)`);
  }
  return p;
}

export function fixtureText(...parts: string[]): string {
  return readFileSync(fixturePath(...parts), 'utf8');
}

export function fixtureJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(fixtureText(...parts)) as T;
}

/** A temp dir removed after the test unless it failed (then kept for a look). */
export function tempDir(t: TestContext | undefined, prefix = 'bugbot-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t?.after(() => {
    if (process.env.BUGBOT_KEEP_TMP) return;
    // after hooks run in registration order, so processes a test started later (a
    // bugbot start and its workers) may still be writing here: retry, and never fail a
    // test over its scratch folder.
    removeRunTmpRoots(dir);
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    } catch (err) {
      t.diagnostic(`could not remove ${dir}: ${(err as Error).message}`);
    }
  });
  return dir;
}

/**
 * The runs' temp roots the homes in `dir` made in the system's temp folder (recorded in
 * `<home>/tmp-root`, workspace.ts): a control plane that was not stopped cleanly (most
 * tests' stores and pools, a kill -9) leaves its root behind, one empty folder a test.
 */
function removeRunTmpRoots(dir: string): void {
  let homes: string[];
  try {
    homes = [dir, ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name))];
  } catch {
    return;
  }
  for (const home of homes) {
    let root: string;
    try {
      root = readFileSync(join(home, 'tmp-root'), 'utf8').trim();
    } catch {
      continue;
    }
    if (dirname(root) === tmpdir() && basename(root).startsWith('bugbot-')) rmSync(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

export function testConfig(home: string, flags: ConfigFile = {}, env: NodeJS.ProcessEnv = {}): BugbotConfig {
  return loadConfig({ cwd: home, env, flags: { home, ...flags } });
}

/** A mutable clock for settle-window tests. */
export class FakeClock {
  constructor(private t = Date.parse('2026-11-21T10:00:00.000Z')) {}
  now = (): Date => new Date(this.t);
  advance(seconds: number): void {
    this.t += seconds * 1000;
  }
}

export interface TestApp {
  app: ReturnType<typeof createApp>;
  store: Store;
  intake: Intake;
  config: BugbotConfig;
}

export function buildTestApp(
  t: TestContext,
  opts: { flags?: ConfigFile; env?: NodeJS.ProcessEnv; clock?: FakeClock; localKey?: string } = {},
): TestApp {
  const home = tempDir(t);
  const config = testConfig(home, opts.flags, opts.env);
  const store = new Store(join(home, 'bugbot.db'), { now: opts.clock?.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) });
  const app = createApp({ config, store, intake, logger: silentLogger, localKey: opts.localKey });
  return { app, store, intake, config };
}

export function postJson(app: TestApp['app'], path: string, body: unknown, headers: Record<string, string> = {}) {
  return app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Poll until fn returns a truthy value or the timeout passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let eventSeq = 0;
/** A firing Grafana alert for the pet shop's owner bug, with a fresh id; overrides win. */
export function alertEvent(overrides: Partial<TriggerEvent> = {}): TriggerEvent {
  const at = '2026-11-21T10:00:00.000Z';
  return {
    source: 'grafana',
    kind: 'error',
    service: 'petstore',
    title: 'Pet lookup failed',
    message: 'TypeError: Cannot read properties of undefined (reading "owner")',
    route: 'GET /api/pets/1',
    labels: {},
    count: 1,
    firstSeen: at,
    lastSeen: at,
    human: false,
    sourceEventId: `evt-${++eventSeq}`,
    ...overrides,
  };
}

/** A home whose database holds one claimed run (ticket 1, run 1, running) of a manual ticket, on a FakeClock. */
export function claimedRun(
  t: TestContext,
  flags: ConfigFile = {},
): { home: string; clock: FakeClock; config: BugbotConfig; store: Store; ticket: Ticket; run: RunRow } {
  const home = tempDir(t);
  const clock = new FakeClock();
  const config = testConfig(home, { intake: { settleSeconds: 0 }, ...flags });
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const at = clock.now().toISOString();
  new Intake({ store, config, redactor: createRedactor() }).accept([
    { source: 'manual', kind: 'error', title: 'bug', message: 'Error: boom', labels: {}, count: 1, firstSeen: at, lastSeen: at, human: true, sourceEventId: 'm-1' },
  ]);
  const { ticket, run } = claimNext(store, 1, null, 600)!;
  return { home, clock, config, store, ticket: store.getTicket(ticket.id)!, run };
}

/**
 * A worker as the dispatcher keeps one (pool.ts ActiveWorker) with no process behind it,
 * its ticket folder made: for driving the pool's end and heartbeat code directly.
 */
export function fakeWorker(home: string, ticket: Ticket, run: RunRow, opts: { exitCode?: number | null; phase?: string } = {}) {
  const ticketDir = join(home, 'tickets', String(ticket.id), `run-${run.id}`);
  mkdirSync(ticketDir, { recursive: true });
  const child = { pid: undefined, exitCode: opts.exitCode === undefined ? 1 : opts.exitCode, once: () => undefined, on: () => undefined };
  return {
    slot: 1,
    run,
    ticket,
    ws: { ticketDir, worktree: join(home, 'wt-none'), tmp: join(home, 'tmp-none'), branch: 'bot/x', port: 4101 },
    child,
    started: performance.now(),
    cancelled: null as string | null,
    termSent: false,
    progress: { phase: opts.phase ?? 'setup', tokens: 0, cost_usd: 0, tool_calls: 0, tail: [] as string[] },
    timer: setInterval(() => undefined, 60_000).unref(),
  };
}

/** What the pool does when a worker's process exits (pool.ts finished()), for a fakeWorker. */
export function endWorker(dispatcher: object, worker: ReturnType<typeof fakeWorker>, code: number): void {
  (dispatcher as { finished(w: unknown, code: number, signal: null): void }).finished(worker, code, null);
}

/** A queued ticket whose ticket folder cannot be made (a file is in the way): every launch of it fails, as the machine's failure. */
export function blockedTicket(t: TestContext, flags: ConfigFile = {}) {
  const home = tempDir(t);
  const config = testConfig(home, { intake: { settleSeconds: 0 }, ...flags });
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const [filed] = new Intake({ store, config, redactor: createRedactor() }).accept([alertEvent()]);
  const ticket = filed!.ticketId!;
  mkdirSync(join(home, 'tickets'), { recursive: true });
  writeFileSync(join(home, 'tickets', String(ticket)), '');
  return { home, config, store, ticket };
}

/** The dashboard's session cookie a response sets, if any. */
export const cookieOf = (res: Response): string | undefined => /bugbot_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];

/** The CSRF token of the first dashboard form in a page, if any. */
export const csrfOf = (html: string): string | undefined => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
