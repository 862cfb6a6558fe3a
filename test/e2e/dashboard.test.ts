/**
 * The dashboard end to end (issue 6): real Chromium (playwright-core, Debian's
 * chromium) against a real `bugbot start` whose store was seeded through the intake
 * and queue APIs (tickets in several states, a regression pair, a fix awaiting
 * approval on a bot branch of a real bare origin) and whose outcomes archive holds
 * rows over several days. Every page renders with that data (screenshots are saved
 * under $BUGBOT_TEST_ARTIFACTS/dashboard, default a temp folder), a worker started
 * by the real dispatcher appears on the overview without a reload, charts draw the
 * archive's numbers, approving from the dashboard moves the fix to staging, and
 * strangers, forged posts and an unguarded exposed start are refused.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadConfig, type BugbotConfig, type ConfigFile } from '../../control/config.ts';
import { buildOutcomeRow, readOutcome } from '../../control/dispatcher/outcome.ts';
import { workspacePaths } from '../../control/dispatcher/workspace.ts';
import { Intake } from '../../control/intake/index.ts';
import { OutcomeArchive, type OutcomeRow } from '../../control/outcomes/archive.ts';
import { claimNext, finishRun, setRunProcess } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import type { TicketState, TriggerEvent } from '../../control/types.ts';
import { createRedactor } from '../../lib/redact.ts';
import { finishAwaiting, pushFixBranch } from '../support/approval.ts';
import { repoRoot, tempDir, waitFor } from '../support/helpers.ts';
import { setupPipeline, worktreeOf, type PipelineEnv } from '../support/pipeline.ts';
import { spawnLogged, startBugbot } from '../support/process.ts';
import { tool } from '../support/scripted-model.ts';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = `dash-${process.pid}-${Date.now()}-token`;
const SALT = `salt-${process.pid}-never-shown`;
const LIGHT_DEV_SERVER = `node -e "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT, '127.0.0.1')"`;
const DAY = 86_400_000;

function artifactsDir(): string {
  const root = process.env.BUGBOT_TEST_ARTIFACTS;
  if (!root) return mkdtempSync(join(tmpdir(), 'bugbot-dashboard-screens-'));
  const dir = join(root, 'dashboard');
  mkdirSync(dir, { recursive: true });
  return dir;
}

interface Seeded {
  awaiting: number;
  pushed: number;
  regression: number;
  deferred: number;
  dropped: number;
  human: number;
  fixCommit: string;
  docsCommit: string;
}

/** The store and archive, filled before `bugbot start` opens them: several days of history. */
function seed(env: PipelineEnv, config: BugbotConfig): Seeded {
  let clock = Date.now() - 4 * DAY;
  const store = new Store(join(config.home, 'bugbot.db'), { now: () => new Date(clock) });
  const intake = new Intake({ store, config, redactor: createRedactor({ salt: SALT }) });
  const archive = new OutcomeArchive(config.home);
  let seq = 0;
  const event = (over: Partial<TriggerEvent>): TriggerEvent => {
    const at = new Date(clock).toISOString();
    return {
      source: 'grafana',
      kind: 'error',
      service: 'petshop',
      title: 'Unhandled error on GET /api/pets/:id',
      message: "TypeError: Cannot read properties of undefined (reading 'name')",
      route: 'GET /api/pets/5',
      labels: {},
      count: 1,
      firstSeen: at,
      lastSeen: at,
      human: false,
      sourceEventId: `dash-seed-${++seq}`,
      ...over,
    };
  };
  const accept = (e: TriggerEvent) => intake.accept([e])[0]!.ticketId!;
  const src = readFileSync(join(env.target.repo, 'src/pets.ts'), 'utf8');
  const docs = readFileSync(join(env.target.repo, 'docs/pets-api.md'), 'utf8');
  env.target.git('push', '--quiet', 'origin', 'main:staging');

  /** Claim the ticket and finish its run in `state`, leaving a worker's files and an outcome row. */
  const finish = (ticketId: number, state: TicketState, label: 'clean' | 'messy' | 'failed', reason: string, fix?: { file: string; content: string }) => {
    const claim = claimNext(store, 1, null, 600);
    assert.equal(claim?.ticket.id, ticketId, `ticket ${ticketId} is the next to claim`);
    const ws = workspacePaths(config, { id: ticketId }, claim!.run);
    setRunProcess(store, claim!.run.id, { branch: ws.branch, worktree: ws.worktree });
    const pushed = fix ? pushFixBranch(env.target, ws.branch, fix.file, fix.content, `bugbot: fix ticket ${ticketId}`) : null;
    mkdirSync(join(ws.ticketDir, 'agent'), { recursive: true });
    // The plan quotes a secret the config names: the dashboard must mask it.
    writeFileSync(join(ws.ticketDir, 'agent', 'plan.md'), `## Root cause\nTicket ${ticketId}: the handler dereferences a missing owner.\nSalt seen in a log: ${SALT}\n`);
    writeFileSync(join(ws.ticketDir, 'agent', 'verdict.json'), JSON.stringify({ verdict: label === 'failed' ? 'needs-rework' : 'approved', reasons: ['covered by test/pets.test.ts'], edits: 1 }));
    if (pushed) writeFileSync(join(ws.ticketDir, 'push.env'), `branch=${ws.branch}\ncommit=${pushed.commit}\npushed_to=${state === 'pushed' ? 'staging' : ws.branch}\n`);
    clock += 20 * 60_000;
    const stage = (tokens: number, s: number) => ({ tokens, tool_calls: Math.round(tokens / 500), cost_usd: tokens / 100_000, duration_s: s });
    writeFileSync(
      join(ws.ticketDir, 'outcome.json'),
      JSON.stringify({
        state,
        outcome: label,
        reason,
        started: claim!.run.started_at,
        finished: new Date(clock).toISOString(),
        stages: { research: stage(4000, 60), implement: stage(9000, 240), review: { ...stage(3000, 90), edits: 1 }, docs: stage(1000, 30) },
        branch: ws.branch,
        commit: pushed?.commit ?? null,
        pushed_to: pushed ? (state === 'pushed' ? 'staging' : ws.branch) : null,
        diff: pushed ? { files: 1, insertions: 1, deletions: 1 } : null,
        tests: { passed: 7, failed: 0 },
        cost_usd: 0.17,
        denials: [],
      }),
    );
    finishRun(store, claim!.run.id, { ticketState: state, outcome: label, reason });
    const outcome = readOutcome(ws.ticketDir);
    store.saveStages(claim!.run.id, outcome!.stages);
    archive.append(buildOutcomeRow({ ticket: store.getTicket(ticketId)!, run: claim!.run, outcome, state, reason, model: null }));
    return pushed?.commit ?? '';
  };

  // A fix that went out two days ago, then recurred: a regression pair.
  const pushed = accept(event({}));
  clock += 3 * 3_600_000;
  accept(event({ count: 4 }));
  clock += DAY;
  accept(event({ count: 2 }));
  const docsCommit = finish(pushed, 'pushed', 'clean', 'pushed to staging', {
    file: 'docs/pets-api.md',
    content: docs.replace('`null`.', '`null`; never dereference `owner` unchecked.'),
  });
  clock += DAY;
  const regression = accept(event({ count: 3 }));
  finish(regression, 'failed', 'failed', 'the test command failed with new failures (npm test)');

  // A person's report: fixed on its bot branch, waiting for approval.
  clock += 3_600_000;
  const awaiting = accept(event({ source: 'manual', human: true, title: 'Strays crash the pet page', message: 'GET /api/pets/5 answers 500: owner is undefined', route: undefined }));
  const fix = finishAwaiting({ store, config, archive, ticketId: awaiting }, (branch) =>
    pushFixBranch(env.target, branch, 'src/pets.ts', src.replace('ownerName: pet.owner!.name', 'ownerName: pet.owner?.name ?? null'), 'Show strays with ownerName null'),
  );
  const fixCommit = readFileSync(join(fix.ticketDir, 'push.env'), 'utf8').match(/^commit=(\w+)/m)![1]!;

  // Needs a person: its rebase onto staging conflicted.
  const human = accept(event({ service: 'billing', title: 'Checkout total is NaN', message: 'TypeError: total.toFixed is not a function in checkout', route: 'POST /api/checkout' }));
  finish(human, 'needs_human', 'failed', 'rebase onto staging conflicts in: src/pets.ts', {
    file: 'src/pets.ts',
    content: src.replace('ownerName: pet.owner!.name', "ownerName: pet.owner ? pet.owner.name : 'nobody'"),
  });

  // Below the minimum severity, and a feature request: neither is worked on.
  const deferred = accept(event({ title: 'Thumbnail render took long', message: 'image resize slow for big uploads', route: 'GET /img/:id' }));
  const dropped = accept(event({ source: 'slack', kind: 'report', human: true, title: 'idea', message: 'Feature request: it would be great to have dark mode', route: undefined }));
  store.close();

  // Earlier history for the charts: three days of runs from several sources and services.
  const base = archive.latest().find((r) => r.ticket_id === pushed)!;
  const history: Array<[number, string, string, OutcomeRow['outcome'], number, number | null]> = [
    // days ago, source, service, outcome, cost, trigger→push seconds
    [6, 'grafana', 'petshop', 'clean', 0.4, 1800],
    [6, 'slack', 'petshop', 'failed', 0.2, null],
    [5, 'grafana', 'petshop', 'clean', 0.3, 2400],
    [5, 'email', 'billing', 'messy', 0.9, 5400],
    [5, 'slack', 'billing', 'clean', 0.5, 3000],
  ];
  history.forEach(([daysAgo, source, service, outcome, cost, push], i) => {
    const finished = new Date(Date.now() - daysAgo * DAY).toISOString();
    archive.append({
      ...base,
      run_id: 9000 + i,
      ticket_id: i % 2 ? dropped : pushed,
      fingerprint: `fp-history-${i % 3}`,
      trigger_source: source,
      service,
      started: finished,
      finished,
      outcome,
      state: outcome === 'failed' ? 'failed' : 'pushed',
      cost_usd: cost,
      trigger_to_push_s: push,
      stages: { research: { tokens: 1000, tool_calls: 3, cost_usd: 0.01, duration_s: 30 }, implement: { tokens: 2000 * (i + 1), tool_calls: 9, cost_usd: 0.05, duration_s: 120 } },
    });
  });
  return { awaiting, pushed, regression, deferred, dropped, human, fixCommit, docsCommit };
}

/** The archive as the dashboard reads it: the latest revision of each run. */
function latestRows(home: string): OutcomeRow[] {
  return new OutcomeArchive(home).latest();
}

async function shot(page: Page, dir: string, name: string): Promise<void> {
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

async function attr(page: Page, selector: string, name: string): Promise<string | null> {
  return page.locator(selector).first().getAttribute(name);
}

test('the dashboard: pages with real data, live workers, charts from the archive, approval, access', { timeout: 180_000 }, async (t: TestContext) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (or run scripts/install-test-deps.sh)`);
  const shots = artifactsDir();
  t.diagnostic(`dashboard screenshots: ${shots}`);
  process.stdout.write(`# dashboard screenshots: ${shots}\n`);
  // Kept under BUGBOT_TEST_ARTIFACTS, or for a look when the test failed; else removed
  // (each run left a folder of screenshots in the temp folder).
  let passed = false;
  t.after(() => {
    if (passed && !process.env.BUGBOT_TEST_ARTIFACTS) rmSync(shots, { recursive: true, force: true });
  });

  const env = await setupPipeline(t, {
    workers: 1,
    harness: { idleTimeoutSeconds: 120, heartbeatSeconds: 1, pushMode: 'approve' },
    triage: { regressionGraceSeconds: 0 },
    dashboard: { requireLogin: true, liveIntervalMs: 300 },
  } as ConfigFile);
  const cfgFile = JSON.parse(readFileSync(env.configPath, 'utf8')) as { target: Record<string, unknown> };
  cfgFile.target.devCommand = LIGHT_DEV_SERVER;
  writeFileSync(env.configPath, JSON.stringify(cfgFile, null, 2));
  const runEnv = { ...env.env, BUGBOT_DASHBOARD_TOKEN: TOKEN, BUGBOT_HASH_SALT: SALT };
  const config = loadConfig({ path: env.configPath, env: runEnv });
  const ids = seed(env, config);

  // Research reads the handler, then the model takes its time: the worker stays on the overview.
  env.model.script('research', [(req) => tool('Read', { file_path: join(worktreeOf(env, req), 'src/pets.ts') }, 'Reading the handler.'), { stall: true }]);
  const bugbot = await startBugbot(t, { configPath: env.configPath, env: runEnv });
  const url = bugbot.url;
  assert.match(bugbot.output(), new RegExp(`dashboard: ${url.replace(/[.]/g, '\\.')}/\\s+\\(login required\\)`));

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => /Content Security Policy|Refused to/.test(m.text()) && pageErrors.push(m.text()));

  await t.test('strangers are turned away: login redirect for pages, 401 for everything else', async () => {
    const html = await fetch(`${url}/approvals`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(html.status, 303);
    assert.equal(html.headers.get('location'), '/login?next=%2Fapprovals');
    for (const path of ['/', `/tickets/${ids.pushed}`, '/outcomes', '/outcomes/export', '/live']) {
      const r = await fetch(`${url}${path}`);
      assert.equal(r.status, 401, `${path} without a login`);
      assert.doesNotMatch(await r.text(), /Strays crash|TypeError/);
    }
    const post = await fetch(`${url}/approvals/${ids.awaiting}/approve`, { method: 'POST', headers: { origin: url, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    assert.equal(post.status, 401);
    const wrong = await fetch(`${url}/tickets/${ids.pushed}`, { headers: { authorization: 'Bearer not-the-token' } });
    assert.equal(wrong.status, 401);
    // A control character where the login goes on: the form goes on to the overview instead.
    const odd = await fetch(`${url}/login?next=/%01`);
    assert.equal(odd.status, 200);
    assert.match(await odd.text(), /name="next" value="\/"/);
  });

  await t.test('the login form lets a person in (HttpOnly, SameSite=Strict session cookie)', async () => {
    await page.goto(`${url}/`);
    assert.match(page.url(), /\/login\?next=%2F$/);
    await shot(page, shots, '01-login');
    await page.fill('#token', 'wrong');
    await page.click('button[type=submit]');
    assert.match(await page.locator('[role=alert]').innerText(), /not right/);
    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForURL(`${url}/`), page.click('button[type=submit]')]);
    const cookie = (await context.cookies()).find((c) => c.name === 'bugbot_session');
    assert.ok(cookie, 'a session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
  });

  await t.test('overview: the queue by state, the latest tickets, recent outcomes', async () => {
    await page.goto(`${url}/`);
    const count = (s: string) => attr(page, `#live-queue [data-state=${s}]`, 'data-count');
    assert.equal(await count('awaiting_approval'), '1');
    assert.equal(await count('needs_human'), '1');
    assert.equal(await count('regressed'), '1');
    assert.equal(await count('failed'), '1');
    assert.equal(await count('deferred'), '1');
    assert.equal(await count('dropped'), '1');
    assert.equal(await page.locator('#tickets tr[data-ticket]').count(), 6);
    assert.match(await page.locator(`#tickets tr[data-ticket="${ids.regression}"]`).innerText(), /regression of #\d+/);
    assert.match(await page.locator('#live-workers').innerText(), /No worker is running \(1 slot; 0 queued\)/);
    assert.ok((await page.locator('#live-outcomes tr[data-run]').count()) >= 5);
    await shot(page, shots, '02-overview');
  });

  await t.test('ticket: triage, occurrences over days, phases, plan, verdict, side-by-side diff, commit, regression link', async () => {
    await page.goto(`${url}/tickets/${ids.pushed}`);
    assert.equal(await page.locator('#triage .decision').innerText(), 'queue');
    assert.match(await page.locator('#triage .reason').innerText(), /severity high/);
    assert.ok((await page.locator('#chart-occurrences rect[data-series=occurrences]').count()) >= 2, 'occurrences on two days at least');
    const occ = await page.locator('#chart-occurrences rect').evaluateAll((els) => els.reduce((a, e) => a + Number(e.getAttribute('data-value')), 0));
    assert.equal(occ, 7, 'occurrence counts 1 + 4 + 2 before the fix');
    assert.equal(await page.locator('#phases tr[data-phase]').count(), 4);
    assert.match(await page.locator('#phases tr[data-phase=implement]').innerText(), /4m 0s\s+9,000\s+18\s+\$0\.0900/);
    assert.match(await page.locator('#plan').innerText(), /dereferences a missing owner/);
    assert.match(await page.locator('#plan').innerText(), /\[secret\]/);
    assert.equal(await page.locator('#verdict .verdict').innerText(), 'approved');
    assert.equal(await page.locator('#outcome .commit').innerText(), ids.docsCommit);
    const file = page.locator('#diff .diff-file[data-path="docs/pets-api.md"]');
    assert.equal(await file.count(), 1);
    assert.match(await file.locator('td.del').first().innerText(), /`null`\.$/);
    assert.match(await file.locator('td.add').first().innerText(), /never dereference `owner` unchecked/);
    assert.equal(await page.locator(`#related [data-relation=regressed_by] a[href="/tickets/${ids.regression}"]`).count(), 1);
    assert.doesNotMatch(await page.content(), new RegExp(SALT), 'no secret on the page');
    await shot(page, shots, '03-ticket-pushed');

    await page.goto(`${url}/tickets/${ids.regression}`);
    assert.equal(await page.locator(`#related [data-relation=regression_of] a[href="/tickets/${ids.pushed}"]`).count(), 1);
    assert.ok(await page.locator('#timeline li[data-action=regression]').count());
    await shot(page, shots, '04-ticket-regression');
  });

  await t.test('outcomes: charts draw the archive, filters narrow them, the export is the same slice', async () => {
    // Read after the start: its regression re-check may have appended revisions.
    const rows = latestRows(config.home);
    await page.goto(`${url}/outcomes`);
    assert.equal(await attr(page, '#summary', 'data-runs'), String(rows.length));
    const byDay = new Map<string, Record<string, number>>();
    for (const r of rows) {
      const d = (byDay.get(r.finished.slice(0, 10)) ?? byDay.set(r.finished.slice(0, 10), { clean: 0, messy: 0, failed: 0 }).get(r.finished.slice(0, 10)))!;
      d[r.outcome] = (d[r.outcome] ?? 0) + 1;
    }
    assert.ok(byDay.size >= 4, 'rows over several days');
    for (const [day, counts] of byDay) {
      for (const [series, n] of Object.entries(counts)) {
        assert.equal(await attr(page, `#chart-outcomes rect[data-label="${day}"][data-series=${series}]`, 'data-value'), String(n), `${day} ${series}`);
      }
    }
    const implementTokens = rows.reduce((a, r) => a + (r.stages.implement?.tokens ?? 0), 0);
    assert.equal(await attr(page, '#chart-tokens rect[data-label=implement]', 'data-value'), String(implementTokens));
    assert.ok(await page.locator('#chart-push-time rect[data-value]:not([data-value="0"])').count());
    assert.ok(await page.locator('#chart-cost rect[data-series=clean]').count());
    const topFp = rows.filter((r) => r.fingerprint === rows[rows.length - 1]!.fingerprint).length;
    assert.ok(topFp >= 1 && (await page.locator('#chart-fingerprints rect').count()) >= 3);
    await shot(page, shots, '05-outcomes');

    await page.selectOption('select[name=source]', 'slack');
    await Promise.all([page.waitForURL(/source=slack/), page.click('form.filters button[type=submit]')]);
    const slack = rows.filter((r) => r.trigger_source === 'slack');
    assert.equal(await attr(page, '#summary', 'data-runs'), String(slack.length));
    assert.equal(await page.locator('#runs tr[data-run]').count(), slack.length);
    await shot(page, shots, '06-outcomes-slack');
    const href = await attr(page, '#export', 'href');
    assert.equal(href, '/outcomes/export?source=slack');
    const exported = await page.evaluate(async (h) => {
      const r = await fetch(h);
      return { type: r.headers.get('content-type'), text: await r.text() };
    }, href!);
    assert.match(exported.type ?? '', /^application\/x-ndjson/);
    // Every revision of the matching runs, as archived; their latest revisions are what the page drew.
    const lines = exported.text.trim().split('\n').map((l) => JSON.parse(l) as OutcomeRow);
    const archived = new OutcomeArchive(config.home).readAll().filter((r) => r.trigger_source === 'slack');
    assert.deepEqual(lines, archived);
    assert.deepEqual([...new Set(lines.map((l) => l.run_id))].sort(), slack.map((r) => r.run_id).sort());
  });

  await t.test('approvals: the diff in view; approve from the dashboard moves the fix to staging', async () => {
    const res = await page.goto(`${url}/approvals`);
    assert.equal(res?.headers()['cache-control'], 'no-store', 'a page is no cache\'s to keep');
    const card = page.locator(`#approval-${ids.awaiting}`);
    assert.match(await card.locator('.diff-file[data-path="src/pets.ts"] td.add').first().innerText(), /pet\.owner\?\.name \?\? null/);
    assert.match(await card.locator('.diff-file[data-path="src/pets.ts"] td.del').first().innerText(), /pet\.owner!\.name/);
    assert.equal(await page.locator(`#approval-${ids.human} [data-action=approve]`).count(), 0, 'needs_human has no approve button');
    assert.equal(await page.locator(`#approval-${ids.human} [data-action=requeue]`).count(), 1);
    await shot(page, shots, '07-approvals');
    assert.doesNotMatch(env.target.originGit('show', 'staging:src/pets.ts'), /pet\.owner\?\.name/);

    const [posted] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith(`/approvals/${ids.awaiting}/approve`)),
      card.locator('[data-action=approve] button').click(),
    ]);
    assert.equal(posted.status(), 303);
    const flash = await page.locator('.flash').first().innerText();
    assert.match(flash, /merged .* into staging/, `${flash}\n${bugbot.output()}`);
    await shot(page, shots, '08-approved');
    assert.match(env.target.originGit('show', 'staging:src/pets.ts'), /ownerName: pet\.owner\?\.name \?\? null/);
    assert.match(env.target.originGit('log', '--format=%s', 'staging'), /Show strays with ownerName null/);
    const apiRes = await fetch(`${url}/api/tickets/${ids.awaiting}`);
    assert.equal(apiRes.headers.get('cache-control'), 'no-store');
    const api = (await apiRes.json()) as { ticket: { state: string }; audit: Array<{ actor: string; action: string }> };
    assert.equal(api.ticket.state, 'pushed');
    assert.ok(api.audit.some((a) => a.actor === 'dashboard:token'), JSON.stringify(api.audit));
  });

  await t.test('forged posts are refused: no CSRF token, another origin, or the cookie without the action key', async () => {
    const cookie = (await context.cookies()).find((c) => c.name === 'bugbot_session')!;
    const csrf = await page.locator('input[name=_csrf]').first().inputValue();
    const post = (body: string, origin: string) =>
      fetch(`${url}/approvals/${ids.human}/cancel`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: `bugbot_session=${cookie.value}`, origin, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
    const noToken = await post('return_to=%2Fapprovals', url);
    assert.equal(noToken.status, 403);
    assert.match(await noToken.text(), /CSRF token/);
    const otherSite = await post(`_csrf=${encodeURIComponent(csrf)}`, 'http://evil.example');
    assert.equal(otherSite.status, 403);
    const json = await fetch(`${url}/approvals/${ids.human}/cancel`, { method: 'POST', headers: { cookie: `bugbot_session=${cookie.value}`, origin: url, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(json.status, 403);
    const api = (await (await fetch(`${url}/api/tickets/${ids.human}`)).json()) as { ticket: { state: string } };
    assert.equal(api.ticket.state, 'needs_human', 'nothing was cancelled');
    // The cookie and a page's CSRF token are not enough (a dev server the operator opens
    // on another port of the host receives the cookie): the action key the login left in
    // the dashboard origin's local storage is needed too.
    const cookieOnly = await post(`_csrf=${encodeURIComponent(csrf)}&return_to=%2Fapprovals`, url);
    assert.equal(cookieOnly.status, 403);
    assert.match(await cookieOnly.text(), /action key/);
    const storage = (await context.storageState()).origins.find((o) => o.origin === url);
    const actionKey = storage?.localStorage.find((i) => i.name === 'bugbot-action-key')?.value;
    assert.ok(actionKey, `the login stored the action key: ${JSON.stringify(storage)}`);
    assert.ok(!(await page.content()).includes(actionKey), 'pages do not carry it');
    // Where it comes back to holds a control character, which Node's server refuses in a
    // Location header: the cancel is done either way, so the answer is the default page, not a 500.
    const ok = await post(`_csrf=${encodeURIComponent(csrf)}&_action=${encodeURIComponent(actionKey)}&return_to=%2Fapprovals%7F`, url);
    assert.equal(ok.status, 303, 'the same post with its token and the action key goes through');
    assert.equal(ok.headers.get('location'), '/approvals');
  });

  await t.test('a worker appears on the overview without a reload (SSE), with its phase and a live tail', async () => {
    await page.goto(`${url}/`);
    // A locator, not waitForFunction: its polling evaluates a string in the page, which the
    // dashboard's Content-Security-Policy (no unsafe-eval) refuses.
    await page.locator('#live-dot.on').waitFor();
    await page.evaluate('window.notReloaded = true');
    const filed = await fetch(`${url}/api/tickets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Pet page shows the wrong owner', message: 'GET /api/pets/3 shows another owner name', service: 'petshop' }),
    });
    assert.equal(filed.status, 201, await filed.clone().text());
    const id = ((await filed.json()) as { ticket: { id: number } }).ticket.id;
    const worker = page.locator(`#live-workers [data-ticket="${id}"]`);
    await worker.waitFor({ timeout: 30_000 });
    await waitFor(async () => (await worker.locator('.phase').innerText()) === 'research', 40_000, 'the research phase');
    await waitFor(async () => /Read \S*src\/pets\.ts/.test(await worker.locator('.phase-tail').innerText().catch(() => '')), 30_000, 'the phase tail');
    assert.match(await worker.innerText(), /Pet page shows the wrong owner/);
    assert.equal(await worker.locator('td.num').nth(1).innerText(), String(config.target.basePort + 1), 'the worker port');
    assert.equal(await page.evaluate('window.notReloaded'), true, 'the page was not reloaded');
    await shot(page, shots, '09-live-worker');

    // Cancel from its ticket page: the worker stops and leaves the overview, still live.
    await page.goto(`${url}/tickets/${id}`);
    assert.match(await page.locator('#live-run').innerText(), /research/);
    await Promise.all([page.waitForURL(`${url}/tickets/${id}`), page.locator('[data-action=cancel] button').click()]);
    assert.match(await page.locator('.flash').first().innerText(), /cancelled \(was running, now failed\)/);
    await page.goto(`${url}/`);
    await page.locator('#live-workers [data-workers="0"]').waitFor({ timeout: 30_000 });
    assert.match(await page.locator(`#tickets tr[data-ticket="${id}"]`).innerText(), /failed/);
  });

  assert.deepEqual(pageErrors, [], 'no script errors or CSP violations');
  await browser.close();
  passed = true;
});

test('bugbot start refuses a dashboard that would be open: exposed or requireLogin without a credential', { timeout: 60_000 }, async (t) => {
  const env = tempDir(t, 'bugbot-dash-refuse-');
  const cases: Array<[string, ConfigFile, NodeJS.ProcessEnv]> = [
    ['requireLogin', { dashboard: { requireLogin: true } }, {}],
    [
      'exposed',
      { server: { host: '0.0.0.0' }, triggers: { grafana: { tokenEnv: 'G_TOKEN' }, latency: { tokenEnv: 'L_TOKEN' } } },
      { BUGBOT_API_TOKEN: 'api-token-1', G_TOKEN: 'g-token-1', L_TOKEN: 'l-token-1', BUGBOT_EMAIL_TOKEN: 'email-token-1' },
    ],
  ];
  for (const [name, flags, extra] of cases) {
    const path = join(env, `${name}.json`);
    writeFileSync(path, JSON.stringify({ home: join(env, name), ...flags }));
    const s = spawnLogged(t, process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--config', path, 'start', '--port', '0'], {
      env: { ...process.env, BUGBOT_DASHBOARD_TOKEN: '', ...extra },
    });
    const { code } = await s.exited;
    assert.equal(code, 2, `${name}: exit status\n${s.output()}`);
    assert.match(s.output(), /the dashboard needs a login: set BUGBOT_DASHBOARD_TOKEN \(dashboard\.tokenEnv\)/, name);
    assert.doesNotMatch(s.output(), /listening on/, name);
  }
});
