/**
 * bench/soak: mixed trigger traffic against a running `bugbot start` while eight
 * workers run scripted tickets with the real Claude Code CLI (the model is scripted and
 * slow on purpose, so workers stay busy without eating the CPU).
 *
 * Reports: events acknowledged vs stored (must be equal), tickets vs distinct
 * fingerprints (never two open tickets for one), control-plane RSS at start / peak / end and its trend, and p99 ingest
 * latency while workers are busy. Targets: stored = acknowledged, peak RSS ≤ 300 MB,
 * no growth trend (RSS over the last half within 10% of the first half's).
 *
 * Usage: npm run bench:soak [-- --seconds 900 --rate 60]
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fixtureJson } from '../../test/support/helpers.ts';
import { freeBasePort, planPathOf } from '../../test/support/pipeline.ts';
import { launchBugbot } from '../../test/support/process.ts';
import { say, startScriptedModel, tool } from '../../test/support/scripted-model.ts';
import { createTargetRepo } from '../../test/support/target-repo.ts';
import { OPEN_STATES } from '../../control/types.ts';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '900' }, rate: { type: 'string', default: '60' } } });
const SECONDS = Number(args.seconds);
const RATE = Number(args.rate);
const WORKERS = 8;

const dir = mkdtempSync(join(tmpdir(), 'bugbot-bench-soak-'));
const target = createTargetRepo(dir);
const model = await startScriptedModel({ defaultText: 'ok' });
// Every ticket: a slow research that writes a plan, a slow implement that changes nothing.
model.script('research', [{ delayMs: 15_000, then: (req) => tool('Write', { file_path: planPathOf(req), content: '## Root cause\nunknown\n' }) }, say('Plan written.')]);
model.script('implement', [{ delayMs: 15_000, then: say('Nothing to change.') }]);
model.script('review', [tool('StructuredOutput', { verdict: 'approved', reasons: [], edits: 0 }), say('Approved.')]);
model.script('docs', [say('Nothing to record.')]);

const home = join(dir, 'home');
const configPath = join(dir, 'bugbot.config.json');
writeFileSync(
  configPath,
  JSON.stringify({
    home,
    workers: WORKERS,
    target: { repo: target.repo, devCommand: 'npm run dev', testCommand: 'npm test', basePort: await freeBasePort(WORKERS) },
    intake: { settleSeconds: 2, settleCapSeconds: 10 },
    triage: { minSeverity: 'low' },
    harness: { heartbeatSeconds: 2, idleTimeoutSeconds: 120 },
    queue: { maxAttempts: 1 },
  }),
);
const { proc: bugbot, url } = await launchBugbot(configPath, { ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: 'sk-soak' });

function rssMb(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${bugbot.pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// --- traffic: one request of each kind in turn, at RATE requests/s -------------------
const grafana = fixtureJson<{ alerts: Array<Record<string, unknown>> }>('grafana', 'webhook_firing_docs.json');
const alertmanager = fixtureJson<{ alerts: Array<Record<string, unknown>> }>('alertmanager', 'webhook_firing_zulip.json');
const services = ['checkout', 'payments', 'search', 'accounts'];
let seq = 0;
/** New errors appear over time (a new fingerprint every ~40 requests); most traffic repeats known ones. */
const errorKind = () => (Math.random() < 0.025 ? seq : Math.floor(Math.random() * Math.max(1, seq / 40)));

function request(): { kind: string; path: string; init: RequestInit } {
  const n = ++seq;
  const k = errorKind();
  const svc = services[k % services.length]!;
  const json = (path: string, body: unknown, headers: Record<string, string> = {}) => ({ path, init: { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) } });
  switch (n % 5) {
    case 0: {
      const body = structuredClone(grafana);
      const a = body.alerts[0]!;
      a.labels = { alertname: `Error${k}`, service: svc, severity: 'critical' };
      a.annotations = { summary: `Unhandled error ${k}`, message: `TypeError: cannot read property 'x${k}' of undefined (request ${n})` };
      a.fingerprint = `soak-g-${k}`;
      a.startsAt = new Date(Date.now() - n).toISOString();
      body.alerts = [a];
      return { kind: 'grafana', ...json('/triggers/grafana', body) };
    }
    case 1: {
      const body = structuredClone(alertmanager);
      const a = body.alerts[0]!;
      a.labels = { alertname: `Crash${k}`, service: svc, severity: 'critical' };
      a.annotations = { summary: `Crash loop ${k}`, description: `Error: worker ${k} crashed with status 137` };
      a.fingerprint = `soak-a-${k}`;
      a.startsAt = new Date(Date.now() - n).toISOString();
      body.alerts = [a];
      return { kind: 'alertmanager', ...json('/triggers/grafana', body) };
    }
    case 2:
      return { kind: 'latency', ...json('/triggers/latency', { id: `soak-l-${n}`, service: svc, route: `GET /api/items/${k % 7}`, p95_ms: 900 + (n % 500), threshold_ms: 800 }) };
    case 3:
      return { kind: 'manual', ...json('/api/tickets', { title: `Report ${k}: the ${svc} page shows an error`, message: `Error: ${svc} failed for item ${k}`, service: svc }, { 'idempotency-key': `soak-m-${n}` }) };
    default: {
      const raw = [
        `From: customer${k}@example.com`,
        'To: bugs@bugbot.example',
        `Subject: Checkout broken ${k}`,
        `Message-ID: <soak-${n}@example.com>`,
        'Date: ' + new Date().toUTCString(),
        'Content-Type: text/plain; charset=utf-8',
        '',
        `Hi, the ${svc} page fails with "Error: failed for item ${k}" when I pay. It is broken since this morning.`,
        '',
      ].join('\r\n');
      return { kind: 'email', path: '/triggers/email/raw', init: { method: 'POST', headers: { 'content-type': 'message/rfc822' }, body: raw } };
    }
  }
}

const acknowledged: Record<string, number> = {};
let acknowledgedEvents = 0;
let refused = 0;
const latencies: Array<{ ms: number; busy: boolean }> = [];
let busyWorkers = 0;
const rss: Array<{ at: number; mb: number }> = [{ at: 0, mb: rssMb() }];
const t0 = Date.now();
const sampler = setInterval(() => rss.push({ at: (Date.now() - t0) / 1000, mb: rssMb() }), 1000);
const workersPoll = setInterval(() => {
  fetch(`${url}/api/workers`)
    .then((r) => r.json() as Promise<{ workers: unknown[] }>)
    .then((w) => (busyWorkers = w.workers.length))
    .catch(() => undefined);
}, 1000);
let lastReport = 0;

async function send(): Promise<void> {
  const r = request();
  const started = performance.now();
  const res = await fetch(url + r.path, r.init);
  const body = (await res.json()) as { accepted?: number; status?: string };
  latencies.push({ ms: performance.now() - started, busy: busyWorkers > 0 });
  if (res.ok) {
    acknowledged[r.kind] = (acknowledged[r.kind] ?? 0) + 1;
    acknowledgedEvents += r.kind === 'manual' ? (body.status === 'duplicate' ? 0 : 1) : (body.accepted ?? 0);
  } else {
    refused++;
    if (refused <= 5) console.error(`${r.kind} → ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  }
}

const inflight = new Set<Promise<void>>();
const end = t0 + SECONDS * 1000;
let next = performance.now();
while (Date.now() < end) {
  next += 1000 / RATE;
  const p = send().finally(() => inflight.delete(p));
  inflight.add(p);
  const wait = next - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const s = Math.floor((Date.now() - t0) / 1000);
  if (s >= lastReport + 30) {
    lastReport = s;
    console.error(`  ${s}s: ${seq} sent, ${busyWorkers} workers busy, rss ${rss.at(-1)!.mb.toFixed(0)} MB`);
  }
}
await Promise.all(inflight);
clearInterval(sampler);
clearInterval(workersPoll);
const endRss = rssMb();

bugbot.kill('SIGTERM');
await new Promise((r) => bugbot.once('exit', r));
await model.close();

const db = new Database(join(home, 'bugbot.db'), { readonly: true });
const stored = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
const tickets = (db.prepare('SELECT count(*) AS n FROM tickets').get() as { n: number }).n;
const fingerprints = (db.prepare('SELECT count(DISTINCT fingerprint) AS n FROM tickets').get() as { n: number }).n;
const regressions = (db.prepare('SELECT count(*) AS n FROM tickets WHERE regression_of IS NOT NULL').get() as { n: number }).n;
// Dedupe's invariant: never two open tickets for one fingerprint (a fingerprint whose
// ticket failed or was fixed may get a new one later).
const doubleOpen = (
  db.prepare(`SELECT count(*) AS n FROM (SELECT fingerprint FROM tickets WHERE state IN (${OPEN_STATES.map(() => '?').join(',')}) GROUP BY fingerprint HAVING count(*) > 1)`).get(...OPEN_STATES) as { n: number }
).n;
const byState = db.prepare('SELECT state, count(*) AS n FROM tickets GROUP BY state ORDER BY state').all() as Array<{ state: string; n: number }>;
const runs = (db.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n;
db.close();

const p = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};
const busy = latencies.filter((l) => l.busy).map((l) => l.ms);
const peak = Math.max(...rss.map((r) => r.mb));
const half = Math.floor(rss.length / 2);
const mean = (xs: Array<{ mb: number }>) => xs.reduce((a, r) => a + r.mb, 0) / Math.max(1, xs.length);
const firstHalf = mean(rss.slice(Math.floor(rss.length * 0.1), half));
const secondHalf = mean(rss.slice(half));

console.log(`\nbench:soak — ${SECONDS} s at ${RATE} requests/s, ${WORKERS} workers (scripted model, real Claude Code CLI)\n`);
console.log(`| measure | value |\n|---|---|`);
console.log(`| requests sent / refused | ${seq} / ${refused} |`);
console.log(`| acknowledged by kind | ${Object.entries(acknowledged).map(([k, n]) => `${k} ${n}`).join(', ')} |`);
console.log(`| events acknowledged / stored | ${acknowledgedEvents} / ${stored} |`);
console.log(`| tickets / distinct fingerprints (regressions) | ${tickets} / ${fingerprints} (${regressions}) |`);
console.log(`| tickets by state | ${byState.map((s) => `${s.state} ${s.n}`).join(', ')} |`);
console.log(`| runs | ${runs} |`);
console.log(`| RSS start / peak / end | ${rss[0]!.mb.toFixed(0)} / ${peak.toFixed(0)} / ${endRss.toFixed(0)} MB |`);
console.log(`| RSS mean, first half / second half | ${firstHalf.toFixed(0)} / ${secondHalf.toFixed(0)} MB |`);
console.log(`| ingest latency p50 / p99 (workers busy, ${busy.length} requests) | ${p(busy, 0.5).toFixed(1)} / ${p(busy, 0.99).toFixed(1)} ms |`);
console.log(`| ingest latency p99 (all) | ${p(latencies.map((l) => l.ms), 0.99).toFixed(1)} ms |`);

const checks: Array<[string, boolean]> = [
  ['stored = acknowledged', stored === acknowledgedEvents],
  ['no fingerprint with two open tickets', doubleOpen === 0],
  ['peak RSS ≤ 300 MB', peak <= 300],
  ['no RSS growth trend (second half ≤ 1.1 × first half)', secondHalf <= firstHalf * 1.1],
  ['workers were busy', busy.length > 0],
];
console.log('');
for (const [name, ok] of checks) console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}`);
rmSync(dir, { recursive: true, force: true });
process.exit(checks.every(([, ok]) => ok) ? 0 : 1);
