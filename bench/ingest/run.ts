/**
 * bench/ingest: an alert storm at 50 connections against bugbot's /triggers/grafana
 * (auth, parsing, redaction, fingerprinting, dedupe, durable commit) and against a
 * plain Hono endpoint that only parses the same JSON, in the same run, alternating.
 *
 * The load generator is wrk (C, one thread: it leaves the two servers most of the
 * machine; `apt-get install wrk`), or autocannon (`--generator autocannon`, Node: it
 * takes about a core of its own, which a server using two threads pays for).
 *
 * Targets: bugbot >= 0.6x the plain endpoint's requests/s, p99 <= 25 ms, and exactly
 * one ticket per fingerprint. Usage: npm run bench:ingest [-- --seconds 10 --rounds 3]
 */
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSample, idlePercent, spreadNote, stealNote, stealPercent } from '../steadiness.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '5' },
    generator: { type: 'string', default: 'wrk' },
    connections: { type: 'string', default: '50' },
    fingerprints: { type: 'string', default: '5' },
  },
});
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const CONNECTIONS = Number(args.connections);
const FINGERPRINTS = Number(args.fingerprints);
const WARMUP = Number(args.warmup);
const GENERATOR = args.generator;
if (GENERATOR !== 'wrk' && GENERATOR !== 'autocannon') throw new Error(`--generator: wrk or autocannon, not ${GENERATOR}`);
if (GENERATOR === 'wrk' && spawnSync('wrk', ['--version']).error) {
  console.error('bench/ingest: wrk is not installed (apt-get install wrk), or run it with --generator autocannon');
  process.exit(2);
}
const STORM_LUA = join(root, 'bench/ingest/storm.lua');

const ERRORS = [
  (n: number) => `TypeError: Cannot read properties of undefined (reading 'owner') for pet ${n}`,
  (n: number) => `Error: payment ${n} rejected: card ending ${1000 + (n % 9000)} declined`,
  (n: number) => `RangeError: order total ${n}.50 exceeds limit for account acct_${n.toString(36)}${n % 10}`,
  (n: number) => `Error: connect ECONNREFUSED 10.0.${n % 255}.${(n >> 8) % 255}:5432`,
  (n: number) => `SyntaxError: Unexpected token < in JSON at position ${n}`,
  (n: number) => `Error: timeout after ${n} ms waiting for lock on invoice ${n * 7}`,
];

let seq = 0;
let sentToBugbot = 0;
/** One Grafana webhook with one firing alert; ids in the URL and message vary per request. */
function body(target?: 'bugbot'): string {
  const n = seq++;
  if (target === 'bugbot') sentToBugbot++;
  const kind = n % FINGERPRINTS;
  return JSON.stringify({
    receiver: 'bugbot',
    status: 'firing',
    version: '1',
    groupKey: `{}:{alertname="E${kind}"}`,
    alerts: [
      {
        status: 'firing',
        labels: { alertname: `E${kind}`, service: 'petstore', route: `/api/pets/${n}`, method: 'GET' },
        annotations: { summary: `errors in petstore (${kind})`, message: ERRORS[kind % ERRORS.length]!(n) },
        startsAt: new Date(Date.UTC(2026, 10, 21) + n).toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        // Grafana's own form, 16 hex digits (other text in this field is hashed into the event's key).
        fingerprint: n.toString(16).padStart(16, '0'),
        values: { B: 1, C: 1 },
      },
    ],
  });
}

function startServer(cmd: string[], env: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; url: string }> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(cmd[0]!, cmd.slice(1), { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolvePromise({ proc, url: m[1]! });
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${out}`)));
  });
}

type Target = 'plain' | 'bugbot';

interface Storm {
  /** Percent of the CPU time the host took during the storm. */
  steal: number;
  /** Percent of the CPU time nothing used during the storm. */
  idle: number;
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  non2xx: number;
  errors: number;
}

function autocannonLoad(url: string, target: Target, opts: { connections: number; duration: number }) {
  return autocannon({
    url: `${url}/triggers/grafana`,
    ...opts,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: body(target === 'bugbot' ? 'bugbot' : undefined) }),
      },
    ],
  });
}

/** One storm of `seconds` at `connections`; every request a fresh alert. */
async function storm(url: string, target: Target, connections: number, seconds: number): Promise<Storm> {
  const from = cpuSample();
  const r = await generate(url, target, connections, seconds);
  const to = cpuSample();
  return { ...r, steal: stealPercent(from, to), idle: idlePercent(from, to) };
}

async function generate(url: string, target: Target, connections: number, seconds: number): Promise<Omit<Storm, 'steal' | 'idle'>> {
  if (GENERATOR === 'autocannon') {
    const r = await autocannonLoad(url, target, { connections, duration: seconds });
    return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, ok: r['2xx'], non2xx: r.non2xx, errors: r.errors + r.timeouts };
  }
  const first = seq;
  const out = await new Promise<string>((resolvePromise, reject) =>
    execFile(
      'wrk',
      ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', STORM_LUA, url, '--', String(first), String(FINGERPRINTS), '1'],
      (err, stdout, stderr) => (err ? reject(new Error(`wrk failed: ${stderr || err.message}`)) : resolvePromise(stdout)),
    ),
  );
  const line = out.split('\n').find((l) => l.startsWith('wrk-result '));
  if (!line) throw new Error(`wrk printed no result:\n${out}`);
  const r = JSON.parse(line.slice('wrk-result '.length)) as Record<string, number>;
  seq += r.sent!;
  if (target === 'bugbot') sentToBugbot += r.sent!;
  return {
    rps: r.requests! / (r.duration_us! / 1e6),
    p50: Math.round(r.p50_us! / 1000),
    p99: Math.round(r.p99_us! / 1000),
    ok: r.requests! - r.non2xx!,
    non2xx: r.non2xx!,
    errors: r.connect! + r.read! + r.write! + r.timeout!,
  };
}

function stop(proc: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (proc.exitCode !== null) return r();
    proc.removeAllListeners('exit');
    proc.once('exit', () => r());
    proc.kill('SIGTERM');
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bugbot-bench-ingest-'));
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home: join(dir, 'home'), intake: { settleSeconds: 30 } }));

  const rows: Array<{ round: number; plain: Storm; bugbot: Storm }> = [];
  let totalOk = 0;
  const bugbot = await startServer([process.execPath, 'bin/bugbot.js', '--config', configPath, 'start', '--port', '0'], { BUGBOT_LOG_LEVEL: 'warn' });
  const plain = await startServer([process.execPath, '--import', 'tsx', 'bench/ingest/plain-server.ts'], {});
  try {
    // Warm both up (JIT, statement and page caches) with a storm of their own, unmeasured.
    await storm(plain.url, 'plain', CONNECTIONS, WARMUP);
    totalOk += (await storm(bugbot.url, 'bugbot', CONNECTIONS, WARMUP)).ok;
    for (let round = 1; round <= ROUNDS; round++) {
      const p = await storm(plain.url, 'plain', CONNECTIONS, SECONDS);
      const b = await storm(bugbot.url, 'bugbot', CONNECTIONS, SECONDS);
      totalOk += b.ok;
      rows.push({ round, plain: p, bugbot: b });
    }
  } finally {
    await stop(plain.proc);
    await stop(bugbot.proc);
  }

  const db = new Database(join(dir, 'home', 'bugbot.db'), { readonly: true });
  const events = (db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  const tickets = (db.prepare('SELECT COUNT(*) AS n FROM tickets').get() as { n: number }).n;
  const distinct = (db.prepare('SELECT COUNT(DISTINCT fingerprint) AS n FROM tickets').get() as { n: number }).n;
  db.close();
  rmSync(dir, { recursive: true, force: true });

  const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((a, r) => a + f(r), 0) / rows.length;
  const ratio = sum((r) => r.bugbot.rps) / sum((r) => r.plain.rps);
  const p99 = Math.max(...rows.map((r) => r.bugbot.p99));

  console.log(`bench/ingest: ${GENERATOR}, ${CONNECTIONS} connections, ${SECONDS}s per storm, ${ROUNDS} round(s), ${FINGERPRINTS} distinct errors`);
  console.log('round  plain req/s  p99 ms  | bugbot req/s  p50 ms  p99 ms  non-2xx  errors | ratio  | steal %    | idle %');
  for (const r of rows) {
    console.log(
      `${String(r.round).padEnd(6)} ${r.plain.rps.toFixed(0).padStart(11)} ${String(r.plain.p99).padStart(7)}  | ${r.bugbot.rps.toFixed(0).padStart(12)} ${String(r.bugbot.p50).padStart(7)} ${String(r.bugbot.p99).padStart(7)} ${String(r.bugbot.non2xx).padStart(8)} ${String(r.bugbot.errors).padStart(7)} | ${(r.bugbot.rps / r.plain.rps).toFixed(2)}x  | ${r.plain.steal.toFixed(1)} / ${r.bugbot.steal.toFixed(1)}  | ${r.plain.idle.toFixed(0)} / ${r.bugbot.idle.toFixed(0)}`,
    );
  }
  for (const note of [
    stealNote(Math.max(...rows.flatMap((r) => [r.plain.steal, r.bugbot.steal]))),
    spreadNote('the plain endpoint', rows.map((r) => r.plain.rps), 'req/s'),
  ]) {
    if (note) console.log(note);
  }
  console.log(`events acknowledged ${totalOk}, stored ${events}; tickets ${tickets} for ${distinct} distinct fingerprints (expected ${FINGERPRINTS})`);
  const checks: Array<[string, boolean]> = [
    [`throughput ratio ${ratio.toFixed(2)}x >= 0.60x`, ratio >= 0.6],
    [`p99 ${p99} ms <= 25 ms`, p99 <= 25],
    [`one ticket per fingerprint (${tickets} tickets, ${FINGERPRINTS} errors)`, tickets === FINGERPRINTS && distinct === FINGERPRINTS],
    // Neither generator counts replies that arrive after a storm's deadline, so a few
    // more events than acknowledged may be stored; never fewer, never more than sent.
    [`every acknowledged event stored (${totalOk} acked, ${events} stored, ${sentToBugbot} sent)`, events >= totalOk && events <= sentToBugbot],
  ];
  for (const [what, ok] of checks) console.log(`${ok ? 'PASS' : 'FAIL'}  ${what}`);
  if (checks.some(([, ok]) => !ok)) process.exitCode = 1;
}

await main();
