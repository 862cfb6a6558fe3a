/**
 * The `bugbot` command as a user runs it: a real process, real files.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, tempDir, waitFor } from '../support/helpers.ts';
import { pathWithout, spawnLogged, startBugbot } from '../support/process.ts';
import { readOnlyDisk } from '../support/tmpfs.ts';

const BIN = join(repoRoot, 'bin/bugbot.js');

/** Make dir a git checkout with an origin, as target.repo must be for workers to claim. */
function gitCheckout(dir: string): void {
  for (const args of [['init', '-q', dir], ['-C', dir, 'remote', 'add', 'origin', join(dir, 'origin.git')]]) {
    const r = spawnSync('git', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
}

/**
 * Run the CLI. `asUser`: bound by file permissions as bugbot's own user is: as root (CI), the
 * process keeps uid 0 but loses the capabilities that override them (setpriv), as in
 * test/unit/retention.test.ts.
 */
function bugbot(args: string[], opts: { cwd: string; input?: string; env?: NodeJS.ProcessEnv; timeout?: number; asUser?: boolean }) {
  const [cmd, argv] =
    opts.asUser && process.getuid?.() === 0
      ? ['setpriv', ['--bounding-set=-dac_override,-dac_read_search,-fowner', '--', process.execPath, BIN, ...args]]
      : [process.execPath, [BIN, ...args]];
  const r = spawnSync(cmd, argv, {
    cwd: opts.cwd,
    input: opts.input,
    encoding: 'utf8',
    env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn', ...opts.env },
    timeout: opts.timeout ?? 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help lists the commands', (t) => {
  const dir = tempDir(t);
  const r = bugbot(['--help'], { cwd: dir });
  assert.equal(r.code, 0);
  for (const cmd of ['start', 'init', 'fingerprint', 'watch', 'enqueue', 'tickets', 'ticket', 'claim', 'status']) {
    assert.match(r.stdout, new RegExp(`\\b${cmd}\\b`));
  }
});

test('init writes a commented starter config that loads; a broken config reports every problem with exit 2', (t) => {
  const dir = tempDir(t);
  const r = bugbot(['init'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /then run: npx bugbot start$/m, 'a command that works in a checkout too (bugbot is not on PATH there)');
  assert.match(readFileSync(join(dir, 'bugbot.config.json'), 'utf8'), /^\/\/ bugbot configuration/);
  assert.equal(bugbot(['init'], { cwd: dir }).code, 2, 'does not overwrite');
  const cfg = bugbot(['config'], { cwd: dir, env: { BUGBOT_API_TOKEN: 'tok-secret-value', SLACK_BOT_TOKEN: '' } });
  assert.equal(cfg.code, 0, cfg.stderr);
  const shown = JSON.parse(cfg.stdout) as { server: { port: number }; secrets: Record<string, string> };
  assert.equal(shown.server.port, 7777);
  assert.equal(shown.secrets.BUGBOT_API_TOKEN, 'set', 'each secret variable is shown as set or unset');
  assert.equal(shown.secrets.SLACK_BOT_TOKEN, 'unset');
  assert.doesNotMatch(cfg.stdout, /tok-secret-value/, 'never its value');

  writeFileSync(join(dir, 'bugbot.config.json'), '{ "workers": 12, "server": { "port": -1 } }');
  const bad = bugbot(['tickets'], { cwd: dir });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /workers/);
  assert.match(bad.stderr, /server\.port/);
});

test('init writes where start will read: the --config path or $BUGBOT_CONFIG; --output may name a folder', (t) => {
  const dir = tempDir(t);
  const named = bugbot(['--config', 'ops/bugbot.json', 'init'], { cwd: dir });
  assert.equal(named.code, 2, 'a folder that is not there is said so');
  assert.match(named.stderr, /^bugbot: .*ops\/bugbot\.json: folder .*ops does not exist\n$/);
  mkdirSync(join(dir, 'ops'));
  const r = bugbot(['--config', 'ops/bugbot.json', 'init'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /then run: npx bugbot --config "ops\/bugbot\.json" start$/m);
  assert.ok(existsSync(join(dir, 'ops/bugbot.json')) && !existsSync(join(dir, 'bugbot.config.json')));
  assert.equal(bugbot(['--config', 'ops/bugbot.json', 'config'], { cwd: dir }).code, 0, 'start reads what init wrote');
  const env = bugbot(['init'], { cwd: dir, env: { BUGBOT_CONFIG: join(dir, 'env.json') } });
  assert.equal(env.code, 0, env.stderr);
  assert.ok(existsSync(join(dir, 'env.json')));
  // A folder: the starter goes in under its default name; a second time, not overwritten.
  const folder = bugbot(['init', '-o', 'ops'], { cwd: dir });
  assert.equal(folder.code, 0, folder.stderr);
  assert.match(readFileSync(join(dir, 'ops/bugbot.config.json'), 'utf8'), /^\/\/ bugbot configuration/);
  assert.match(bugbot(['init', '-o', 'ops'], { cwd: dir }).stderr, /ops\/bugbot\.config\.json already exists \(use --force to overwrite\)/);
  // A path ending in "/" is a folder too, made if it is not there.
  const slash = bugbot(['init', '-o', 'conf/'], { cwd: dir });
  assert.equal(slash.code, 0, slash.stderr);
  assert.ok(statSync(join(dir, 'conf')).isDirectory() && existsSync(join(dir, 'conf/bugbot.config.json')));
});

test('usage errors exit 2 with the usage hint; expected failures are one line, no stack; a closed pipe ends the output quietly', (t) => {
  const dir = tempDir(t);
  for (const args of [['tickets', '-n', '0'], ['ticket', 'abc'], ['ticket', '99999999999999999999'], ['bogus'], ['tickets', '--bogus'], ['enqueue']]) {
    const r = bugbot(args, { cwd: dir });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^error: .*\n\(run bugbot --help for usage\)/, args.join(' '));
  }
  assert.equal(bugbot(['--help'], { cwd: dir }).code, 0);

  for (const [args, re, code] of [
    // A value the command cannot take is a usage error; a file that is not there, a failure.
    [['enqueue', '-t', ' '], /^bugbot: invalid ticket: --title: title is required\n$/, 2],
    [['enqueue', '-t', 'x', '--stack-file', join(dir, 'missing.txt')], /^bugbot: --stack-file .*missing\.txt does not exist\n$/, 2],
    [['enqueue', '-t', 'x', '--stack-file', dir], /^bugbot: --stack-file .* is not a file\n$/, 2],
    [['init', '-o', join(dir, 'no/such/dir/c.json')], /^bugbot: --output .*c\.json: folder .*no\/such\/dir does not exist\n$/, 2],
    [['init', '--target', join(dir, 'nope')], /^bugbot: --target .*nope does not exist\n$/, 2],
    [['init', '--target', BIN], /^bugbot: --target .* is not a directory \(give the repository's folder\)\n$/, 2],
    [['init', '--target', dir, '-o', 'x.json'], /^bugbot: --output writes a config file; with --target, starter docs go into the repository: give one or the other\n$/, 2],
    [['outcomes'], /^bugbot: no bugbot home at .* \(no bugbot\.db there\)/, 2],
  ] as Array<[string[], RegExp, number]>) {
    const r = bugbot(args, { cwd: dir });
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${args.join(' ')}: no stack trace`);
  }
  assert.equal(existsSync(join(dir, '.bugbot')), false, 'a refused enqueue makes no home');

  const folder = bugbot(['watch', dir], { cwd: dir });
  assert.equal(folder.code, 2);
  assert.match(folder.stderr, /is a directory: name the log files in it/);
  // A pipe: refused at once, not watched (opening one waits for a writer; it has no offset to resume from).
  const fifo = join(dir, 'app.pipe');
  execFileSync('mkfifo', [fifo]);
  const pipe = bugbot(['watch', fifo], { cwd: dir });
  assert.equal(pipe.code, 2, pipe.stderr);
  assert.match(pipe.stderr, /app\.pipe is not a regular file \(a pipe, a socket or a device\)/);

  // More than a pipe holds (64 KiB), so the writer meets the closed pipe: distinct reports
  // (numbers would be masked and merge them into one ticket).
  const words = ['checkout', 'search', 'login', 'cart', 'invoice', 'profile', 'upload', 'export', 'billing', 'signup', 'avatar', 'coupon'];
  for (const w of words) assert.equal(bugbot(['enqueue', '-t', `The ${w} page is blank`, '-m', `${w} fails. `.repeat(800)], { cwd: dir }).code, 0);
  const listed = bugbot(['tickets', '-n', '1000', '--json'], { cwd: dir });
  assert.ok(listed.stdout.length > 96 * 1024, `the listing outgrows a pipe (${listed.stdout.length} bytes)`);
  const piped = spawnSync('bash', ['-c', `"$0" "$1" tickets -n 1000 --json | head -c 10 >/dev/null; echo "\${PIPESTATUS[0]}"`, process.execPath, BIN], { cwd: dir, encoding: 'utf8', env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn' } });
  assert.equal(piped.stdout.trim(), '0', `bugbot tickets | head: ${piped.stderr}`);
  assert.doesNotMatch(piped.stderr, /EPIPE/);

  const status = bugbot(['status'], { cwd: dir });
  assert.equal(status.code, 0);
  assert.match(status.stdout, /^control plane: not running \(start it with bugbot start/);
});

test('fingerprint --explain groups ids together and shows what went in', (t) => {
  const dir = tempDir(t);
  const input = [
    JSON.stringify({ message: 'Pet 1 not found', route: 'GET /api/pets/1', service: 'pets' }),
    JSON.stringify({ message: 'Pet 999 not found', route: 'GET /api/pets/999', service: 'pets' }),
    'not json',
  ].join('\n');
  const r = bugbot(['fingerprint', '--explain'], { cwd: dir, input });
  assert.equal(r.code, 1, 'a bad line makes the exit status 1');
  assert.match(r.stderr, /line 3/);
  const fps = [...r.stdout.matchAll(/^([0-9a-f]{16}) /gm)].map((m) => m[1]);
  assert.equal(fps.length, 2);
  assert.equal(fps[0], fps[1]);
  assert.match(r.stdout, /route\s+GET \/api\/pets\/:id/);
  assert.match(r.stdout, /message\s+Pet <\*> not found/);
  // Alerts as intake fingerprints them (source): two rules that word their figures alike
  // stay apart by the rule's name, which --explain shows; an unknown source is that line's error.
  const rules = bugbot(['fingerprint', '--explain'], {
    cwd: dir,
    input: [
      JSON.stringify({ source: 'grafana', message: '12.5% of requests failed in the last 5m', service: 'web', labels: { alertname: 'CheckoutRequestsFailing' } }),
      JSON.stringify({ source: 'grafana', message: '3.1% of requests failed in the last 5m', service: 'web', labels: { alertname: 'LoginRequestsFailing' } }),
      JSON.stringify({ source: 'pagerduty', message: 'x' }),
    ].join('\n'),
  });
  assert.equal(rules.code, 1);
  const ruleFps = [...rules.stdout.matchAll(/^([0-9a-f]{16}) /gm)].map((m) => m[1]);
  assert.equal(new Set(ruleFps).size, 2, rules.stdout);
  assert.match(rules.stdout, /^ {2}rule {5}CheckoutRequestsFailing /m);
  assert.match(rules.stderr, /line 3: "source" must be one of grafana, alertmanager, /);
  // A log line's or an alert's name for the message does too; a line with none says which names it takes.
  const named = bugbot(['fingerprint'], { cwd: dir, input: `${JSON.stringify({ error: 'Pet 7 not found' })}\n${JSON.stringify({ level: 'error' })}\n` });
  assert.match(named.stdout, /^[0-9a-f]{16}\tPet 7 not found$/m);
  assert.match(named.stderr, /line 2: needs a "message" string \(or "msg", "error", "title"\)/);
  // A label that is not a string is that line's error; the lines after it are still read.
  const labels = bugbot(['fingerprint'], { cwd: dir, input: `${JSON.stringify({ message: 'a', labels: { fingerprint: 5 } })}\n${JSON.stringify({ message: 'b' })}\n` });
  assert.equal(labels.code, 1);
  assert.match(labels.stderr, /^line 1: labels\.fingerprint must be a string, not number\n$/);
  assert.match(labels.stdout, /^[0-9a-f]{16}\tb$/m);
  // What it prints is what intake would store: redacted.
  const secret = bugbot(['fingerprint'], { cwd: dir, input: `${JSON.stringify({ message: 'login failed for bob@example.com password=hunter2hunter2' })}\n` });
  assert.match(secret.stdout, /^[0-9a-f]{16}\tlogin failed for <email:[0-9a-f]+> password=\[REDACTED\]$/m);
});

test("only start asks for the server's secrets: a config bound to the network still lists tickets and shows what start would refuse", (t) => {
  const dir = tempDir(t);
  const env = { BUGBOT_API_TOKEN: '', BUGBOT_DASHBOARD_TOKEN: '', BUGBOT_EMAIL_TOKEN: '', BUGBOT_HASH_SALT: '' };
  writeFileSync(
    join(dir, 'bugbot.config.json'),
    JSON.stringify({ home: join(dir, 'home'), server: { host: '0.0.0.0' }, triggers: { grafana: { tokenEnv: 'NOPE_TOKEN' }, email: { rawTokenEnv: 'NOPE_RAW_TOKEN' } }, dashboard: { tokenEnv: 'NOPE_DASH_TOKEN' } }),
  );
  assert.equal(bugbot(['enqueue', '-t', 'Checkout page is blank'], { cwd: dir, env }).code, 0);
  const list = bugbot(['tickets'], { cwd: dir, env });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /Checkout page is blank/);
  const cfg = bugbot(['config'], { cwd: dir, env });
  assert.equal(cfg.code, 0, cfg.stderr);
  assert.equal((JSON.parse(cfg.stdout) as { server: { host: string } }).server.host, '0.0.0.0');
  assert.match(cfg.stderr, /bugbot start would refuse to start with this environment:\n {2}- triggers\.grafana\.tokenEnv names NOPE_TOKEN, which is not set/);
  // A credential with a default name, named otherwise on purpose: unset, start refuses too.
  assert.match(cfg.stderr, /- dashboard\.tokenEnv names NOPE_DASH_TOKEN, which is not set/);
  assert.match(cfg.stderr, /- triggers\.email\.rawTokenEnv names NOPE_RAW_TOKEN, which is not set/);
  assert.match(cfg.stderr, /set BUGBOT_API_TOKEN so the API is not open/);
  assert.match(cfg.stderr, /bugbot start would warn:\n {2}- BUGBOT_HASH_SALT is not set: reporters' email addresses and user ids are hashed with bugbot's public default salt/);
  assert.doesNotMatch(bugbot(['config'], { cwd: dir, env: { ...env, BUGBOT_HASH_SALT: 'a-long-random-secret-salt' } }).stderr, /would warn/);
  const start = bugbot(['start', '--port', '1'], { cwd: dir, env });
  assert.equal(start.code, 2);
  assert.match(start.stderr, /names NOPE_TOKEN, which is not set/);
  assert.match(start.stderr, /set BUGBOT_API_TOKEN so the API is not open/);
});

test('commands that read a home refuse one that is not there (run from the wrong folder), and make none; status says which home and what a start would lack', (t) => {
  const dir = tempDir(t);
  for (const args of [['status'], ['tickets'], ['ticket', '1'], ['cancel', '1'], ['requeue', '1'], ['claim', '1']]) {
    const r = bugbot(args, { cwd: dir });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`no bugbot home at ${join(dir, '.bugbot')} \\(no bugbot\\.db there\\), and no bugbot\\.config\\.json here: run this where your bugbot\\.config\\.json is`));
  }
  assert.equal(existsSync(join(dir, '.bugbot')), false, 'no empty home made');
  // Right after bugbot init: the config is found, its home is not made yet.
  assert.equal(bugbot(['init'], { cwd: dir }).code, 0);
  const fresh = bugbot(['tickets'], { cwd: dir });
  assert.equal(fresh.code, 2);
  assert.match(fresh.stderr, new RegExp(`no bugbot home at ${join(dir, '.bugbot')} yet \\(the home of ${join(dir, 'bugbot.config.json')}\\): bugbot start \\(or bugbot enqueue\\) creates it`));
  // A blank name is no one to claim or decide as.
  const blank = bugbot(['claim', '1', '--by', ' '], { cwd: dir });
  assert.equal(blank.code, 2, blank.stderr);
  assert.match(blank.stderr, /--by <name>.*expected a name/);
  // Once there is one: its path, and what a start from this shell would lack (no server to ask).
  assert.equal(bugbot(['enqueue', '-t', 'Search is slow'], { cwd: dir }).code, 0);
  const status = bugbot(['status'], { cwd: dir, env: { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '', ANTHROPIC_BASE_URL: '' } });
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`^home: ${join(dir, '.bugbot')}$`, 'm'));
  assert.match(status.stdout, /a bugbot start from this shell would hold the workers: .*no model credentials/);
});

test('enqueue, tickets, ticket, claim and status work on the same home', (t) => {
  const dir = tempDir(t);
  const home = ['--home', join(dir, 'home')];
  const e = bugbot([...home, 'enqueue', '-t', 'Checkout page is blank', '-m', 'Blank page after paying', '-s', 'shop'], { cwd: dir });
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /ticket 1 created \(queued/);
  const list = bugbot([...home, 'tickets'], { cwd: dir });
  assert.match(list.stdout, /1\s+queued\s+\w+\s+1\s+shop\s+Checkout page is blank/);
  const json = JSON.parse(bugbot([...home, 'tickets', '--json', '--state', 'queued'], { cwd: dir }).stdout) as { tickets: unknown[] };
  assert.equal(json.tickets.length, 1);
  const one = bugbot([...home, 'ticket', '1'], { cwd: dir });
  assert.match(one.stdout, /triage\s+queue: filed by a person/);
  // Its occurrences, newest first, each with where it came from.
  assert.match(one.stdout, /\noccurrences:\n {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}manual\n/);
  assert.match(one.stdout, /history:/);
  const claim = bugbot([...home, 'claim', '1', '--by', 'alice'], { cwd: dir });
  assert.match(claim.stdout, /ticket 1: deferred \(claimed by alice/);
  // Someone else's claim is not taken over by accident.
  const bob = bugbot([...home, 'claim', '1', '--by', 'bob'], { cwd: dir });
  assert.deepEqual([bob.code, bob.stderr.trim()], [1, 'bugbot: ticket 1 is claimed by alice: ask them, or take it over with --force']);
  assert.match(bugbot([...home, 'claim', '1', '--by', 'bob', '--force'], { cwd: dir }).stdout, /claimed by bob/);
  assert.match(bugbot([...home, 'claim', '1', '--by', 'bob'], { cwd: dir }).stdout, /claimed by bob/, "one's own claim again is fine");
  assert.equal(bugbot([...home, 'claim', '1', '--release', '--by', 'alice'], { cwd: dir }).code, 1, "releasing someone else's claim needs --force too");
  assert.equal(bugbot([...home, 'claim', '1', '--release', '--by', 'alice', '--force'], { cwd: dir }).code, 0);
  // The history names who released it, and whose claim it was.
  assert.match(bugbot([...home, 'ticket', '1'], { cwd: dir }).stdout, /alice\s+unclaimed: over bob's claim/);
  assert.match(bugbot([...home, 'claim', '1', '--by', 'bob'], { cwd: dir }).stdout, /claimed by bob/);
  assert.match(bugbot([...home, 'status'], { cwd: dir }).stdout, /deferred 1/);
  assert.equal(bugbot([...home, 'ticket', '42'], { cwd: dir }).code, 1);
  assert.equal(bugbot([...home, 'tickets', '--state', 'bogus'], { cwd: dir }).code, 2);
});

test('watch tails a log file and its errors become tickets', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'app.log');
  writeFileSync(log, '{"level":30,"msg":"started"}\n');
  const w = spawnLogged(t, process.execPath, [BIN, '--home', join(dir, 'home'), 'watch', log, '--service', 'petstore'], {
    cwd: dir,
    env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn', BUGBOT_SETTLE_SECONDS: '0' },
  });
  await waitFor(() => /watching/.test(w.output()), 15_000, 'watch to start');
  appendFileSync(
    log,
    JSON.stringify({ level: 50, msg: 'Cannot read properties of undefined', err: { stack: 'TypeError: x\n    at getPet (/app/pets.ts:1:1)' }, req: { method: 'GET', url: '/api/pets/3' } }) + '\n',
  );
  await waitFor(() => /1 error event\(s\) stored/.test(w.output()), 15_000, 'the error to be stored');
  w.proc.kill('SIGTERM');
  await w.exited;
  const list = JSON.parse(bugbot(['--home', join(dir, 'home'), 'tickets', '--json'], { cwd: dir }).stdout) as {
    tickets: Array<{ source: string; service: string; route: string; state: string }>;
  };
  assert.equal(list.tickets.length, 1);
  assert.equal(list.tickets[0]!.source, 'logfile');
  assert.equal(list.tickets[0]!.service, 'petstore');
  assert.equal(list.tickets[0]!.route, 'GET /api/pets/3');

  // Truncated in place (copytruncate) while nothing watched, and grown back past where the
  // watch stopped: read from its start on the next watch, not from the old offset.
  const before = readFileSync(log, 'utf8').length;
  writeFileSync(log, JSON.stringify({ level: 50, msg: 'Payment provider refused the refund request' }) + '\n');
  while (readFileSync(log, 'utf8').length <= before + 100) appendFileSync(log, '{"level":30,"msg":"request served"}\n');
  const again = spawnLogged(t, process.execPath, [BIN, '--home', join(dir, 'home'), 'watch', log, '--service', 'petstore'], {
    cwd: dir,
    env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn', BUGBOT_SETTLE_SECONDS: '0' },
  });
  await waitFor(() => /1 error event\(s\) stored/.test(again.output()), 15_000, 'the error written since the truncation to be stored');
  again.proc.kill('SIGTERM');
  await again.exited;
  const titles = (JSON.parse(bugbot(['--home', join(dir, 'home'), 'tickets', '--json'], { cwd: dir }).stdout) as { tickets: Array<{ title: string }> }).tickets.map((x) => x.title);
  assert.ok(titles.some((x) => /refund request/.test(x)), titles.join(' | '));

  // --from-start: a file never read before is read from its beginning (its old errors too).
  const old = join(dir, 'old.log');
  writeFileSync(old, JSON.stringify({ level: 50, msg: 'Payment webhook rejected a valid transaction as a duplicate' }) + '\n');
  const fromStart = spawnLogged(t, process.execPath, [BIN, '--home', join(dir, 'home'), 'watch', old, '--from-start'], {
    cwd: dir,
    env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn', BUGBOT_SETTLE_SECONDS: '0' },
  });
  await waitFor(() => /old\.log: 1 error event\(s\) stored/.test(fromStart.output()), 15_000, 'the error already in the file to be stored');
  fromStart.proc.kill('SIGTERM');
  await fromStart.exited;
});

test('watch says when a file is not there yet, and reads it whole once it appears', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'later.log');
  const w = spawnLogged(t, process.execPath, [BIN, '--home', join(dir, 'home'), 'watch', log], {
    cwd: dir,
    env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn', BUGBOT_SETTLE_SECONDS: '0' },
  });
  // Two writes to stdout: wait for the second, not the first (a busy machine splits them).
  await waitFor(() => /does not exist yet/.test(w.output()), 15_000, 'watch to start');
  assert.match(w.output(), /^watching /);
  assert.match(w.output(), new RegExp(`^ {2}${log.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist yet: read from its start once it appears$`, 'm'));
  writeFileSync(log, JSON.stringify({ level: 50, msg: 'Inventory sync crashed on a missing SKU' }) + '\n');
  await waitFor(() => /later\.log: 1 error event\(s\) stored/.test(w.output()), 15_000, 'the error in the new file to be stored');
  w.proc.kill('SIGTERM');
  await w.exited;
});

// Review finding: cancel wrote the database and left the running control plane to notice at
// its next heartbeat (up to 15 s), while approve, skip and requeue went through it.
test('cancel goes through the running control plane with this shell\'s credentials, else the database', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home: join(dir, 'home') }));
  const b = await startBugbot(t, { configPath, cwd: dir, env: { BUGBOT_API_TOKEN: 'tok-server-side-0123456789' } });
  for (const title of ['Search is slow', 'Cart is empty', 'Login loops']) assert.equal(bugbot(['--config', configPath, 'enqueue', '-t', title], { cwd: dir }).code, 0);
  const done = bugbot(['--config', configPath, 'cancel', '1', '--by', 'alice'], { cwd: dir, env: { BUGBOT_API_TOKEN: 'tok-server-side-0123456789' } });
  assert.equal(done.code, 0, done.stderr);
  assert.equal(done.stdout, `ticket 1: queued → dropped (via the control plane at ${b.url})\n`);
  const detail = (await (await fetch(`${b.url}/api/tickets/1`, { headers: { authorization: 'Bearer tok-server-side-0123456789' } })).json()) as { audit: Array<{ actor: string; action: string }> };
  assert.ok(detail.audit.some((a) => a.actor === 'alice' && /cancel/.test(a.action)), JSON.stringify(detail.audit));
  // Review finding: a name beyond Latin-1 made fetch throw (a header cannot carry it as
  // such), and the cancel went to the database quietly, the worker stopped only at its
  // next heartbeat; a name the API refuses was taken by that database cancel.
  const wide = bugbot(['--config', configPath, 'cancel', '3', '--by', '张伟'], { cwd: dir, env: { BUGBOT_API_TOKEN: 'tok-server-side-0123456789' } });
  assert.equal(wide.stdout, `ticket 3: queued → dropped (via the control plane at ${b.url})\n`, wide.stderr);
  const third = (await (await fetch(`${b.url}/api/tickets/3`, { headers: { authorization: 'Bearer tok-server-side-0123456789' } })).json()) as { audit: Array<{ actor: string; action: string }> };
  assert.ok(third.audit.some((a) => a.actor === '张伟' && /cancel/.test(a.action)), JSON.stringify(third.audit));
  // A Latin-1 name sent as such by another client stays itself.
  const latin = await fetch(`${b.url}/api/tickets/2/cancel`, { method: 'POST', headers: { authorization: 'Bearer tok-server-side-0123456789', 'x-bugbot-user': 'José' } });
  assert.equal(latin.status, 200, await latin.text());
  const second = (await (await fetch(`${b.url}/api/tickets/2`, { headers: { authorization: 'Bearer tok-server-side-0123456789' } })).json()) as { audit: Array<{ actor: string }> };
  assert.ok(second.audit.some((a) => a.actor === 'José'), JSON.stringify(second.audit));
  for (const name of ['slack:U123', 'github', 'x'.repeat(101)]) {
    const refused = bugbot(['--config', configPath, 'cancel', '2', '--by', name], { cwd: dir, env: { BUGBOT_API_TOKEN: '' } });
    assert.equal(refused.code, 2, refused.stdout);
    assert.match(refused.stderr, /option '--by <name>' argument .* is invalid\. (".*" is a name bugbot gives its own actors|a name of 1 to 100 characters)/);
  }
  // A shell without the server's API token: the cancel is made in the database, as with no control plane.
  assert.equal(bugbot(['--config', configPath, 'enqueue', '-t', 'Refunds fail'], { cwd: dir }).code, 0);
  const local = bugbot(['--config', configPath, 'cancel', '4'], { cwd: dir, env: { BUGBOT_API_TOKEN: '' } });
  assert.equal(local.code, 0, local.stderr);
  assert.equal(local.stdout, 'ticket 4: queued → dropped\n');
  b.proc.kill('SIGTERM');
  await b.exited;
});

// Review finding: status divided by the CLI's own worker count ("2/1 busy" under a
// start with another), and showed the runs of a dead control plane as busy workers.
test("status counts the server's own workers, and says when no control plane backs the runs it lists", { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home, workers: 1 }));
  const b = await startBugbot(t, { configPath, cwd: dir, env: { BUGBOT_WORKERS: '2' } });
  const live = bugbot(['--config', configPath, 'status'], { cwd: dir, env: { BUGBOT_WORKERS: '' } });
  assert.equal(live.code, 0, live.stderr);
  assert.match(live.stdout, /^workers: 0\/2 busy$/m);
  // The dashboard's login link of this start (it changes with every start), as start printed it.
  const key = (JSON.parse(readFileSync(join(home, 'server.json'), 'utf8')) as { key: string }).key;
  assert.ok(live.stdout.includes(`dashboard: ${b.url}/  (to approve or cancel from it, open ${b.url}/login?key=${key})\n`), live.stdout);
  assert.equal((JSON.parse(bugbot(['--config', configPath, 'status', '--json'], { cwd: dir, env: { BUGBOT_WORKERS: '' } }).stdout) as { slots: number }).slots, 2);
  b.proc.kill('SIGTERM');
  assert.equal((await b.exited).code, 0);
  // A run left running in the database (its control plane killed): listed, and said to be unconfirmed.
  assert.equal(bugbot(['--config', configPath, 'enqueue', '-t', 'Search is slow'], { cwd: dir }).code, 0);
  const db = new Database(join(home, 'bugbot.db'));
  const now = new Date().toISOString();
  db.prepare(`UPDATE tickets SET state = 'running' WHERE id = 1`).run();
  db.prepare(`INSERT INTO runs (ticket_id, attempt, worker_id, port, state, lease_until, heartbeat_at, started_at) VALUES (1, 1, 1, 4101, 'running', ?, ?, ?)`).run(now, now, now);
  db.close();
  const stale = bugbot(['--config', configPath, 'status'], { cwd: dir });
  assert.equal(stale.code, 0, stale.stderr);
  assert.match(stale.stdout, /^workers: 1\/1 busy\n {2}\(from the database: no control plane answers, so these runs' workers may be gone; the next start reconciles them\)$/m);
  assert.match(stale.stdout, /worker 1 \(port 4101\): ticket 1 Search is slow/);
});

test('start names what the workers lack (the sandbox\'s bubblewrap and socat, grep) and how to install it', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home: join(dir, 'home') }));
  const path = pathWithout(join(dir, 'bin'), ['bwrap', 'socat', 'grep']);
  const b = await startBugbot(t, { configPath, cwd: dir, env: { PATH: path } });
  assert.match(b.output(), /WARNING +fixes cannot run: bwrap, socat, grep not found \(apt-get install bubblewrap socat grep\)/, b.output());
  // bugbot init && bugbot start in a folder that is no checkout: said at start, not learnt from a failed ticket.
  assert.match(b.output(), /; target\.repo \S+ is not a git repository \(set target\.repo to a checkout of the repository to fix\)/, b.output());
  b.proc.kill('SIGTERM');
  assert.equal((await b.exited).code, 0);
});

test('without model credentials the workers hold: tickets wait in the queue, and start, status, the API and the dashboard say why', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home: join(dir, 'home'), workers: 1, intake: { settleSeconds: 0 } }));
  gitCheckout(dir);
  const noModel = { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '', ANTHROPIC_BASE_URL: '' };
  const b = await startBugbot(t, { configPath, cwd: dir, env: noModel });
  assert.match(
    b.output(),
    /WARNING +fixes cannot run: no model credentials \(start bugbot with ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN set\); tickets wait in the queue until then/,
    b.output(),
  );
  const filed = await fetch(`${b.url}/api/tickets`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Checkout shows a blank page', message: 'TypeError: cart is undefined' }),
  });
  assert.equal(filed.status, 201, await filed.clone().text());
  const id = ((await filed.json()) as { ticket: { id: number } }).ticket.id;
  // Two dispatcher polls later the ticket is still queued, with no run: nothing was claimed to fail.
  await new Promise((r) => setTimeout(r, 4500));
  const ticket = (await (await fetch(`${b.url}/api/tickets/${id}`)).json()) as { ticket: { state: string }; runs: unknown[] };
  assert.equal(ticket.ticket.state, 'queued');
  assert.deepEqual(ticket.runs, []);
  const workers = (await (await fetch(`${b.url}/api/workers`)).json()) as { workers: unknown[]; held: string | null };
  assert.deepEqual(workers.workers, []);
  assert.match(workers.held ?? '', /^no model credentials/);
  const status = bugbot(['--config', configPath, 'status'], { cwd: dir, env: noModel });
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /queued 1/);
  assert.match(status.stdout, /held: no model credentials \(start bugbot with ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN set\); tickets wait in the queue/);
  const page = await (await fetch(`${b.url}/`, { headers: { accept: 'text/html' } })).text();
  assert.match(page, /Workers hold: no model credentials/);
  b.proc.kill('SIGTERM');
  assert.equal((await b.exited).code, 0);
});

test('held workers resume once what they lacked is installed, without a restart', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const configPath = join(dir, 'bugbot.config.json');
  // The target's origin is no repository: once claimed, the run fails at its fetch (nothing to fix here).
  writeFileSync(configPath, JSON.stringify({ home: join(dir, 'home'), workers: 1, intake: { settleSeconds: 0 }, target: { repo: dir } }));
  gitCheckout(dir);
  const bin = pathWithout(join(dir, 'bin'), ['socat']);
  const b = await startBugbot(t, { configPath, cwd: dir, env: { PATH: bin, ANTHROPIC_API_KEY: 'sk-test' } });
  assert.match(b.output(), /fixes cannot run: socat not found \(apt-get install socat\); tickets wait in the queue/);
  const filed = await fetch(`${b.url}/api/tickets`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Search is slow', message: 'GET /api/search takes 4 s' }),
  });
  const id = ((await filed.json()) as { ticket: { id: number } }).ticket.id;
  const runs = async () => ((await (await fetch(`${b.url}/api/tickets/${id}`)).json()) as { runs: unknown[] }).runs;
  await new Promise((r) => setTimeout(r, 2500));
  assert.deepEqual(await runs(), [], 'held: not claimed');
  // socat arrives (as an apt-get install would put it on PATH).
  const socat = spawnSync('sh', ['-c', 'command -v socat'], { encoding: 'utf8' }).stdout.trim();
  assert.ok(socat, 'socat is installed on this machine');
  symlinkSync(socat, join(bin, 'socat'));
  await waitFor(async () => ((await (await fetch(`${b.url}/api/workers`)).json()) as { held: string | null }).held === null, 30_000, 'the hold to lift');
  await waitFor(async () => (await runs()).length > 0, 30_000, 'the ticket to be claimed');
  b.proc.kill('SIGTERM');
  assert.equal((await b.exited).code, 0);
});

test('a settling ticket\'s severity reads "pending": triage decides it', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home: join(dir, 'home'), intake: { settleSeconds: 300 } }));
  const b = await startBugbot(t, { configPath, cwd: dir, env: { ANTHROPIC_API_KEY: 'sk-test' } });
  const res = await fetch(`${b.url}/triggers/latency`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ service: 'petstore', route: 'GET /api/search', p95_ms: 2400, threshold_ms: 500 }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const list = bugbot(['--config', configPath, 'tickets'], { cwd: dir });
  assert.match(list.stdout, /1\s+settling\s+pending\s+1\s+petstore/, list.stdout);
  const one = bugbot(['--config', configPath, 'ticket', '1'], { cwd: dir });
  assert.match(one.stdout, /severity\s+pending \(decided at triage\)/, one.stdout);
  const page = await (await fetch(`${b.url}/tickets/1`, { headers: { accept: 'text/html' } })).text();
  assert.match(page, /pending \(decided at triage\)/);
  b.proc.kill('SIGTERM');
  assert.equal((await b.exited).code, 0);
});

test('start prints where it listens and what it watches; SIGTERM stops it cleanly', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const configPath = join(dir, 'bugbot.config.json');
  const log = join(dir, 'app.log');
  writeFileSync(log, '');
  // Slack's bot token without its signing secret: the events route answers 503, and the banner says so.
  writeFileSync(configPath, JSON.stringify({ home: join(dir, 'home'), watch: { files: [log] }, triggers: { slack: { apiUrl: 'http://127.0.0.1:9/api/' } } }));
  gitCheckout(dir);
  // Started from another folder, as in a user's project: bugbot still uses its own tsconfig (JSX).
  const b = await startBugbot(t, { configPath, cwd: dir, env: { ANTHROPIC_API_KEY: 'sk-test', SLACK_BOT_TOKEN: 'xoxb-test' } });
  await waitFor(() => /watching: /.test(b.output()), 10_000, 'the banner');
  const out = b.output();
  assert.match(out, /POST http:\/\/127\.0\.0\.1:\d+\/triggers\/grafana/);
  assert.match(out, /no auth configured: loopback only/);
  assert.match(out, /\/slack\/events +Slack app_mention in threads {2}\(answers 503 until SLACK_SIGNING_SECRET is set\)/);
  assert.doesNotMatch(out, /cannot run/, 'this machine has what the workers need, and the target is a checkout');
  assert.match(out, new RegExp(`watching: ${log.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const health = await fetch(`${b.url}/healthz`);
  assert.equal(health.status, 200);
  const dashboard = await fetch(`${b.url}/`, { headers: { accept: 'text/html' } });
  assert.equal(dashboard.status, 200, await dashboard.clone().text());
  assert.match(await dashboard.text(), /<h1>Overview<\/h1>/);
  assert.doesNotMatch(out, /can be read by other users/, 'a home bugbot made is private');
  b.proc.kill('SIGTERM');
  const exit = await b.exited;
  assert.equal(exit.code, 0);
  // A home made open before (or by hand): said at start.
  chmodSync(join(dir, 'home'), 0o755);
  const again = await startBugbot(t, { configPath, cwd: dir, env: { ANTHROPIC_API_KEY: 'sk-test' } });
  await waitFor(() => /watching: /.test(again.output()), 10_000, 'the banner');
  assert.match(again.output(), new RegExp(`WARNING +${join(dir, 'home')} can be read by other users of this machine .*chmod go-rwx it`));
  assert.doesNotMatch(again.output(), /bugbot\.db can be read/);
  again.proc.kill('SIGTERM');
  assert.equal((await again.exited).code, 0);
});

// Review finding: a run the machine could not host failed its ticket at attempt 1 and the
// slot claimed the next at once: one environment problem failed the whole queue in seconds.
test('a run the machine cannot host (its ticket folder cannot be made; bash cannot be spawned; the slot\'s port is taken) is requeued with its attempt not counted, the workers pause and say why, and the control plane stays up', { timeout: 120_000 }, async (t) => {
  for (const how of ['folder', 'spawn', 'port'] as const) {
    const dir = tempDir(t);
    const home = join(dir, 'home');
    const configPath = join(dir, 'bugbot.config.json');
    let target: Record<string, unknown> = { repo: dir };
    if (how === 'port') {
      // Something else listens on worker 1's port (another bugbot home's dev server, say).
      const other = createServer().listen(0, '127.0.0.1');
      await once(other, 'listening');
      t.after(() => other.close());
      target = { ...target, devCommand: 'npm run dev', basePort: (other.address() as AddressInfo).port - 1 };
    }
    writeFileSync(configPath, JSON.stringify({ home, workers: 1, intake: { settleSeconds: 0 }, target }));
    gitCheckout(dir);
    const env: NodeJS.ProcessEnv = { ANTHROPIC_API_KEY: 'sk-test' };
    if (how === 'folder') {
      mkdirSync(home, { recursive: true });
      writeFileSync(join(home, 'tickets'), 'not a folder');
    } else if (how === 'spawn') {
      env.PATH = pathWithout(join(dir, 'bin'), ['bash']);
    }
    const b = await startBugbot(t, { configPath, cwd: dir, env });
    for (const title of ['Search is slow', 'Checkout is blank']) {
      const filed = await fetch(`${b.url}/api/tickets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title }) });
      assert.equal(filed.status, 201);
    }
    const reason = {
      folder: /^could not prepare the ticket folder: .*; the machine could not host it: requeued \(this attempt not counted\), and the workers pause$/,
      spawn: /^worker could not be started \(spawn bash ENOENT\); the machine could not host it: requeued \(this attempt not counted\)/,
      port: /^port \d+ \(target\.basePort \+ worker 1\) is taken by another process: .*; no ticket can cause this: requeued \(this attempt not counted, however often\), and this worker pauses$/,
    }[how];
    type Detail = { ticket: { state: string; attempt: number }; runs: Array<{ state: string; reason: string | null }> };
    const detail = (id: number) => fetch(`${b.url}/api/tickets/${id}`).then((r) => r.json() as Promise<Detail>);
    const first = await waitFor(
      async () => {
        const d = await detail(1);
        return d.runs.length && d.runs[0]!.state !== 'running' ? d : undefined;
      },
      30_000,
      `the ${how} failure to be recorded`,
    );
    assert.match(first.runs[0]!.reason ?? '', reason, how);
    assert.equal(first.ticket.state, 'queued', `${how}: back in the queue`);
    assert.equal(first.ticket.attempt, 0, `${how}: the attempt is not counted`);
    const workers = (await (await fetch(`${b.url}/api/workers`)).json()) as { held: string | null };
    // The port is its slot's alone (the other slots' may be free): the slot pauses; with one worker, that is every slot.
    const paused = how === 'port' ? /^paused: every worker's slot failed a run the machine could not host \(port .+\); trying again at \d{4}-/ : /^paused after a run the machine could not host \(.+\); trying again at \d{4}-/;
    assert.match(workers.held ?? '', paused, how);
    // Paused: neither ticket is tried again meanwhile (the slot used to take the next at once).
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal((await detail(1)).runs.length, 1, how);
    assert.equal((await detail(2)).runs.length, 0, `${how}: the next ticket waits too`);
    assert.equal((await fetch(`${b.url}/healthz`)).status, 200, `${how}: the control plane is up`);
    const rows = readFileSync(join(home, 'outcomes.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { state: string; reason: string });
    assert.ok(rows.some((r) => r.state === 'queued' && reason.test(r.reason)), `${how}: an outcome row says why`);
    b.proc.kill('SIGTERM');
    assert.equal((await b.exited).code, 0);
  }
});

test('outcomes reads past a torn line, says how many lines it skipped, and masks denial inputs an older harness archived', (t) => {
  const dir = tempDir(t);
  const home = join(dir, '.bugbot');
  mkdirSync(home, { recursive: true });
  const finished = new Date().toISOString();
  const row = (over: object) => JSON.stringify({ run_id: 1, ticket_id: 1, outcome: 'clean', state: 'pushed', finished, trigger_to_push_s: 60, cost_usd: 0.5, stages: {}, denials: [], revision: 1, ...over });
  const denial = { phase: 'implement', by: 'hook', tool: 'Write', reason: 'protected', input: { file_path: '.env', content: 'DATABASE_URL=postgres://admin:hunter2@db/prod' } };
  writeFileSync(join(home, 'outcomes.jsonl'), `${row({})}\n{"run_id": 2, "tick\n${row({ run_id: 3, outcome: 'messy', denials: [denial] })}\n`);
  const r = bugbot(['--home', home, 'outcomes'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /2 run\(s\) on 1 ticket\(s\)/);
  assert.match(r.stderr, /skipped 1 unreadable line/);
  const json = bugbot(['--home', home, 'outcomes', '--json'], { cwd: dir });
  assert.equal(json.code, 0, json.stderr);
  assert.doesNotMatch(json.stdout, /hunter2/);
  assert.match(json.stdout, /"summary": ".env"/);
});

test('outcomes leaves out a run dated after now (a clock set wrong) and says so: it is in no window up to now', (t) => {
  const dir = tempDir(t);
  const home = join(dir, '.bugbot');
  mkdirSync(home, { recursive: true });
  const row = (id: number, finished: string, s: number) => JSON.stringify({ run_id: id, ticket_id: id, outcome: 'clean', state: 'pushed', finished, trigger_to_push_s: s, cost_usd: 0.5, stages: {}, denials: [], revision: 1 });
  const later = new Date(Date.now() + 400 * 86_400_000).toISOString();
  writeFileSync(join(home, 'outcomes.jsonl'), `${row(1, new Date().toISOString(), 500)}\n${row(2, later, 100_000)}\n`);
  const r = bugbot(['--home', home, 'outcomes', '--since', '1h'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /1 run\(s\) on 1 ticket\(s\)/);
  assert.match(r.stdout, /median time from trigger to push: 500 s/);
  assert.match(r.stderr, /left out 1 run\(s\) dated after now/);
});

/** A character a terminal acts on rather than shows (C0 but newline and tab, DEL, C1). */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const TERMINAL_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

// Review finding: what a trigger wrote (a customer's email subject, a log line, a title filed
// through the API) went to the terminal raw: `bugbot tickets` and `bugbot ticket` had the
// terminal obey its escape sequences (clear the screen, set the clipboard by OSC 52,
// recolour), and a carriage return hid the text before it on its line.
test('tickets, ticket and fingerprint show the control characters of what a trigger wrote instead of sending them to the terminal; --json keeps the text, escaped', (t) => {
  const dir = tempDir(t);
  const home = ['--home', join(dir, 'home')];
  const title = 'Checkout \x1b]52;c;cm0gLXJmIH4=\x07fails \x1b[2J';
  // U+061C, the Arabic letter mark, is a bidirectional control too (review finding: it went out raw).
  const message = 'first line\r\nsecond \x1b[31mred\x1b[0m\rhidden \x9b2J \u202egnirts \u061c1,2';
  const e = bugbot([...home, 'enqueue', '-t', title, '-m', message, '-s', 'web\tshop'], { cwd: dir });
  assert.equal(e.code, 0, e.stderr);
  const list = bugbot([...home, 'tickets'], { cwd: dir });
  assert.equal(list.code, 0, list.stderr);
  assert.doesNotMatch(list.stdout, TERMINAL_CONTROL, JSON.stringify(list.stdout));
  assert.match(list.stdout, /^1 +queued +\w+ +1 +web\\x09shop +Checkout \\x1b\]52;c;cm0gLXJmIH4=\\x07fails \\x1b\[2J$/m, list.stdout);
  const one = bugbot([...home, 'ticket', '1'], { cwd: dir });
  assert.equal(one.code, 0, one.stderr);
  assert.doesNotMatch(one.stdout, TERMINAL_CONTROL, JSON.stringify(one.stdout));
  assert.match(one.stdout, /^ticket 1: Checkout \\x1b\]52;c;cm0gLXJmIH4=\\x07fails \\x1b\[2J$/m);
  assert.doesNotMatch(one.stdout, /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/, JSON.stringify(one.stdout));
  assert.ok(one.stdout.includes('\nmessage:\n  first line\n  second \\x1b[31mred\\x1b[0m\\x0dhidden \\x9b2J \\u202egnirts \\u061c1,2\n'), one.stdout);
  // --json is read on terminals too: DEL, C1 and the bidi controls (which JSON leaves raw) are
  // \u escapes, the same string to a JSON reader.
  for (const args of [['ticket', '1', '--json'], ['tickets', '--json']]) {
    const out = bugbot([...home, ...args], { cwd: dir }).stdout;
    assert.doesNotMatch(out, /[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/, `${args.join(' ')}: ${JSON.stringify(out)}`);
    assert.ok(out.includes('hidden \\u009b2J \\u202egnirts \\u061c1,2'), out);
  }
  const json = JSON.parse(bugbot([...home, 'ticket', '1', '--json'], { cwd: dir }).stdout) as { ticket: { title: string; message: string } };
  assert.equal(json.ticket.title, title, 'the text as stored');
  assert.equal(json.ticket.message, message);
  const fp = bugbot(['fingerprint', '--explain'], { cwd: dir, input: `${JSON.stringify({ message: 'Pet \x1b[2J not found', route: 'GET /pets\x1b[1A' })}\n` });
  assert.equal(fp.code, 0, fp.stderr);
  assert.doesNotMatch(fp.stdout, TERMINAL_CONTROL, JSON.stringify(fp.stdout));
  assert.match(fp.stdout, /route +GET \/pets\\x1b\[1A$/m);
  const plain = bugbot(['fingerprint'], { cwd: dir, input: `${JSON.stringify({ message: 'Pet \x1b[2J not found' })}\n` });
  assert.match(plain.stdout, /^[0-9a-f]{16}\tPet \\x1b\[2J not found\n$/);
});

// A claimed ticket under an alert storm (an audit line per decision change), a ticket run
// many times, or one with thousands of reporters printed a terminal's worth of scrolling.
test('ticket shows the start and the latest of a long history, the latest runs, and says how to see every one', (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  assert.equal(bugbot(['--home', home, 'enqueue', '-t', 'Search is slow'], { cwd: dir }).code, 0);
  const db = new Database(join(home, 'bugbot.db'));
  const at = '2026-11-21T10:00:00.000Z';
  for (let i = 1; i <= 100; i++) db.prepare(`INSERT INTO audit (ticket_id, at, actor, action, detail) VALUES (1, ?, 'intake', 'note', ?)`).run(at, `entry ${i}`);
  for (let i = 1; i <= 25; i++) {
    db.prepare(`INSERT INTO runs (ticket_id, attempt, worker_id, state, lease_until, heartbeat_at, started_at, finished_at, outcome, reason) VALUES (1, 1, 1, 'finished', ?, ?, ?, ?, 'failed', ?)`).run(at, at, at, at, `reason ${i}`);
  }
  db.close();
  const r = bugbot(['--home', home, 'ticket', '1'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  // (Each run's line is followed by its folder's.)
  const runs = r.stdout.split('\nruns:\n')[1]!.split('\n\n')[0]!.split('\n').filter((l) => !l.startsWith('    folder '));
  assert.equal(runs[0], '  (5 earlier runs not shown: bugbot ticket 1 --json lists every one)');
  assert.deepEqual([runs.length, runs[1]!.includes('(reason 6)'), runs.at(-1)!.includes('(reason 25)')], [21, true, true]);
  const json = JSON.parse(bugbot(['--home', home, 'ticket', '1', '--json'], { cwd: dir }).stdout) as { runs: unknown[]; audit: Array<{ action: string }> };
  assert.equal(json.runs.length, 25, '--json lists every run');
  assert.ok(json.audit.length > 100);
  const history = r.stdout.split('\nhistory:\n')[1]!.trimEnd().split('\n');
  assert.equal(history.length, 51, history.join('\n'));
  assert.match(history[0]!, / created/, 'how it came to be');
  assert.equal(history[10], `  … ${json.audit.length - 50} entries between (bugbot ticket 1 --json lists every one)`);
  assert.match(history.at(-1)!, /note: entry 100$/);
});

// Review finding: a run's reason says "see tests.log", but neither ticket nor --json said
// where that log is (only the worktree's path, removed when the run ended).
test("ticket names each run's folder, where its logs are, and says when it is gone", (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  assert.equal(bugbot(['--home', home, 'enqueue', '-t', 'Search is slow'], { cwd: dir }).code, 0);
  const db = new Database(join(home, 'bugbot.db'));
  const at = '2026-11-21T10:00:00.000Z';
  const run = db.prepare(`INSERT INTO runs (ticket_id, attempt, worker_id, state, lease_until, heartbeat_at, started_at, finished_at, outcome, reason, worktree, folder_removed_at) VALUES (1, ?, 1, 'finished', ?, ?, ?, ?, 'failed', ?, ?, ?)`);
  run.run(1, at, at, at, at, 'tests failed: see tests.log', join(home, 'worktrees', 'ticket-1-run-1'), at);
  run.run(2, at, at, at, at, 'the dev server never answered: see devserver.log', join(home, 'worktrees', 'ticket-1-run-2'), null);
  run.run(3, at, at, at, at, 'worker not started', null, null);
  db.close();
  mkdirSync(join(home, 'tickets', '1', 'run-2'), { recursive: true });
  const r = bugbot(['--home', home, 'ticket', '1'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const runs = r.stdout.split('\nruns:\n')[1]!.split('\n\n')[0]!.split('\n');
  assert.deepEqual(runs.filter((l) => l.startsWith('    folder ')), [
    `    folder ${join(home, 'tickets', '1', 'run-1')} (removed by retention on ${at})`,
    `    folder ${join(home, 'tickets', '1', 'run-2')}`,
    `    folder ${join(home, 'tickets', '1', 'run-3')} (not there: never made, or removed)`,
  ]);
  assert.match(runs[2]!, /^ {2}run 2 attempt 2 on worker 1: finished → failed \(the dev server never answered: see devserver\.log\)$/);
  const json = JSON.parse(bugbot(['--home', home, 'ticket', '1', '--json'], { cwd: dir }).stdout) as { runs: Array<{ folder: string; folder_exists: boolean; folder_removed_at: string | null }> };
  assert.deepEqual(
    json.runs.map((x) => [x.folder, x.folder_exists, x.folder_removed_at]),
    [
      [join(home, 'tickets', '1', 'run-1'), false, at],
      [join(home, 'tickets', '1', 'run-2'), true, null],
      [join(home, 'tickets', '1', 'run-3'), false, null],
    ],
  );
});

// Review finding: claiming a ticket whose run was under way printed its state and triage
// reason ("ticket 1: running (filed by a person; ...)"), as if the bot now kept off it: its
// worker goes on and may still push its fix.
test('claim says what a claim does not stop: a run under way goes on (cancel stops it); a fix awaiting approval waits for a person', (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  for (const title of ['Search is slow', 'Cart is empty']) assert.equal(bugbot(['--home', home, 'enqueue', '-t', title], { cwd: dir }).code, 0);
  const db = new Database(join(home, 'bugbot.db'));
  db.prepare(`UPDATE tickets SET state = 'running' WHERE id = 1`).run();
  db.prepare(`UPDATE tickets SET state = 'awaiting_approval' WHERE id = 2`).run();
  db.close();
  const running = bugbot(['--home', home, 'claim', '1', '--by', 'alice'], { cwd: dir });
  assert.equal(running.code, 0, running.stderr);
  assert.equal(running.stdout, 'ticket 1: claimed by alice, but its run goes on (bugbot cancel 1 stops it)\n');
  const waiting = bugbot(['--home', home, 'claim', '2', '--by', 'alice'], { cwd: dir });
  assert.equal(waiting.code, 0, waiting.stderr);
  assert.equal(waiting.stdout, 'ticket 2: claimed by alice; its fix waits for a person to approve it, never automatically while claimed (bugbot approve 2, or bugbot skip 2)\n');
  const released = bugbot(['--home', home, 'claim', '1', '--by', 'alice', '--release'], { cwd: dir });
  assert.equal(released.stdout, 'ticket 1: claim released (it is running)\n');
  assert.match(bugbot(['claim', '--help'], { cwd: dir }).stdout, /a run under way goes on/);
});

// Review finding: a home that could not be used came out as the call that failed
// ("EEXIST: file already exists, mkdir '…'", "attempt to write a readonly database"), exit
// 1, without saying it was bugbot's home or what to do about it.
test('a home that is a file, lies under one, or is not writable by this user is refused by name with exit 2', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'afile');
  writeFileSync(file, '');
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const [home, why] of [
    [file, 'is a file, not a folder'],
    [join(file, 'sub'), `cannot be made: ${esc(file)} is a file, not a folder`],
  ] as Array<[string, string]>) {
    for (const args of [['enqueue', '-t', 'Search is slow'], ['watch', join(dir, 'app.log')], ['start', '--port', '0']]) {
      const r = bugbot(['--home', home, ...args], { cwd: dir, timeout: 20_000 });
      assert.equal(r.code, 2, `${home} ${args[0]}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^bugbot: the bugbot home ${esc(home)} ${why}: name a folder with --home \\(or BUGBOT_HOME, or home in the config\\)\\n$`), r.stderr);
    }
  }
  // Made by another user, or made read-only: this user cannot use it.
  const home = join(dir, 'home');
  assert.equal(bugbot(['--home', home, 'enqueue', '-t', 'Search is slow'], { cwd: dir }).code, 0);
  chmodSync(join(home, 'bugbot.db'), 0o400);
  chmodSync(home, 0o500);
  t.after(() => existsSync(home) && chmodSync(home, 0o700));
  for (const args of [['enqueue', '-t', 'Cart is empty'], ['claim', '1'], ['start', '--port', '0']]) {
    const r = bugbot(['--home', home, ...args], { cwd: dir, asUser: true, timeout: 20_000 });
    assert.equal(r.code, 2, `${args[0]}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^bugbot: the bugbot home ${esc(home)} is not writable by this user \\(permission denied\\): run bugbot as the user who owns it, or name another home with --home\\n$`), r.stderr);
  }
  // A command that only reads opens it read-only, which SQLite cannot do here (no bugbot.db-shm, none to be made).
  const read = bugbot(['--home', home, 'tickets'], { cwd: dir, asUser: true, timeout: 20_000 });
  assert.equal(read.code, 2, `${read.stdout}${read.stderr}`);
  assert.match(read.stderr, new RegExp(`^bugbot: the bugbot home ${esc(home)} is not writable by this user \\(permission denied\\), and its database cannot be read in place: .*Copy the home somewhere writable \\(cp -a\\) and name the copy with --home\\n$`), read.stderr);
  chmodSync(home, 0o700);
});

// Review finding: on a home whose file system went read-only, status, tickets and ticket
// were refused as "not writable by this user ...: run bugbot as the user who owns it":
// wrong advice, and reading needs no writing.
test('a home on a read-only file system: commands that read work, those that write say the file system is read-only', { timeout: 60_000 }, (t) => {
  const dir = tempDir(t);
  const { disk, readOnly, writable } = readOnlyDisk(t, '32m');
  const home = join(disk, 'home');
  const run = (...args: string[]) => bugbot(['--home', home, ...args], { cwd: dir });
  assert.equal(run('enqueue', '-t', 'Search is slow').code, 0);
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  // A control plane has the database open (its bugbot.db-shm is there): it reads in place.
  const server = new Database(join(home, 'bugbot.db'));
  t.after(() => server.open && server.close());
  server.prepare('SELECT count(*) FROM tickets').get();
  readOnly();
  const tickets = run('tickets');
  assert.equal(tickets.code, 0, tickets.stderr);
  assert.match(tickets.stdout, /1\s+queued\s+.*Search is slow/);
  const one = run('ticket', '1', '--json');
  assert.equal(one.code, 0, one.stderr);
  assert.equal((JSON.parse(one.stdout) as { ticket: { title: string } }).ticket.title, 'Search is slow');
  const status = run('status');
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^tickets: queued 1$/m);
  assert.match(status.stdout, new RegExp(`^home: ${esc(home)} \\(read-only file system: read only, nothing can be stored there\\)$`, 'm'));
  assert.equal(run('outcomes').code, 0);
  for (const args of [['enqueue', '-t', 'Cart is empty'], ['claim', '1']]) {
    const r = run(...args);
    assert.equal(r.code, 2, `${args[0]}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^bugbot: the bugbot home ${esc(home)} is on a read-only file system: nothing can be stored there \\(remount it read-write, or name another home with --home\\); commands that only read \\(status, tickets, ticket, transcript, outcomes\\) still work\\n$`), args[0]);
  }

  // No process has it open (a clean stop removed bugbot.db-shm), and none can be made: said, with what to do.
  writable();
  server.close();
  readOnly();
  const r = run('tickets');
  assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^bugbot: the bugbot home ${esc(home)} is on a read-only file system, and its database cannot be read in place: SQLite needs bugbot\\.db-shm beside it, which only a process that may write there makes\\. Copy the home somewhere writable \\(cp -a\\) and name the copy with --home\\n$`));
});

// Review finding: an empty --home or --config (`--home "$BUGBOT_DIR"` with the variable
// unset) was taken for no flag at all: the command used ./.bugbot or ./bugbot.config.json.
test('an empty --home, --config or --host is a usage error, not the default', (t) => {
  const dir = tempDir(t);
  for (const args of [['--home', '', 'enqueue', '-t', 'Search is slow'], ['--home=', 'enqueue', '-t', 'Search is slow'], ['--config', '', 'config'], ['start', '--host', '', '--port', '0']]) {
    const r = bugbot(args, { cwd: dir, timeout: 20_000 });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^error: option '.+' argument '' is invalid\. expected a (path|host name or address), not an empty string\n/, args.join(' '));
  }
  assert.equal(existsSync(join(dir, '.bugbot')), false, 'no default home made');
});

// Review finding: watch took a log file it may not read, or one in a folder it may not look
// into (said to "not exist yet"), and sat there for ever after one JSON warning.
test('watch refuses a log file this user may not read, and one in a folder it may not look into', (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'app.log');
  writeFileSync(log, '');
  chmodSync(log, 0o000);
  const closed = join(dir, 'closed');
  mkdirSync(closed);
  writeFileSync(join(closed, 'app.log'), '');
  chmodSync(closed, 0o000);
  t.after(() => existsSync(closed) && chmodSync(closed, 0o700));
  for (const [file, message] of [
    [log, `${log} cannot be read by this user (permission denied)`],
    [join(closed, 'app.log'), `${join(closed, 'app.log')} cannot be read by this user (permission denied on its folder)`],
  ] as Array<[string, string]>) {
    const r = bugbot(['--home', join(dir, 'home'), 'watch', file], { cwd: dir, asUser: true, timeout: 15_000 });
    assert.equal(r.code, 2, `${file}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr, `bugbot: ${message}: run bugbot watch as a user who may read it\n`);
  }
  chmodSync(closed, 0o700);
});

// Review finding: a field of the wrong type was dropped without a word (a stack given as an
// array of frames was fingerprinted without its frames), where a wrong "message" or
// "labels" is that line's error.
test('fingerprint takes a line whose stack, route, service or kind has the wrong type as that line\'s error', (t) => {
  const dir = tempDir(t);
  const input = [
    { message: 'a', stack: ['at getPet (/app/pets.ts:1:1)'] },
    { message: 'b', service: 5 },
    { message: 'c', route: ['GET /pets'] },
    { message: 'd', kind: 'bogus' },
    { message: 'null is absent', route: null, stack: null },
    { message: 'e', stack: 'TypeError: e\n    at getPet (/app/pets.ts:1:1)' },
  ].map((o) => JSON.stringify(o)).join('\n');
  const r = bugbot(['fingerprint'], { cwd: dir, input });
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    [
      'line 1: "stack" must be a string, not an array',
      'line 2: "service" must be a string, not number',
      'line 3: "route" must be a string, not an array',
      'line 4: "kind" must be one of error, latency, report',
      '',
    ].join('\n'),
  );
  assert.match(r.stdout, /^[0-9a-f]{16}\tnull is absent\n[0-9a-f]{16}\te\n$/);
});

// Review finding: enqueue named what it refused by the API's field ("stack: Too big"), not by
// the flag the user gave (--stack-file).
test('enqueue names the flag whose value it refuses', (t) => {
  const dir = tempDir(t);
  const stack = join(dir, 'stack.txt');
  writeFileSync(stack, 'x'.repeat(100_001));
  const r = bugbot(['enqueue', '-t', 'x'.repeat(301), '--stack-file', stack], { cwd: dir });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'bugbot: invalid ticket: --title: Too big: expected string to have <=300 characters; --stack-file: Too big: expected string to have <=100000 characters\n');
  assert.equal(existsSync(join(dir, '.bugbot')), false);
});

// Review finding: `--stack-file` read the file whole before checking its length: a log named
// by mistake took a gigabyte of memory, and one past 512 MB failed (exit 1) with V8's "Cannot
// create a string longer than 0x1fffffe8 characters".
test('enqueue refuses a --stack-file too long to be a stack trace unread, by its size; one at the limit is filed', (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'app.log');
  writeFileSync(log, '');
  truncateSync(log, 1024 ** 3);
  const r = bugbot(['enqueue', '-t', 'Checkout is blank', '--stack-file', log], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, `bugbot: --stack-file ${log} is ${1024 ** 3} bytes: a stack trace is at most 100000 characters (give the trace, not the whole log)\n`);
  assert.equal(existsSync(join(dir, '.bugbot')), false, 'a refused enqueue makes no home');
  // 100,000 characters of three bytes each: the longest file that can be one.
  const widest = join(dir, 'stack.txt');
  writeFileSync(widest, '€'.repeat(100_000));
  assert.equal(bugbot(['enqueue', '-t', 'Checkout is blank', '--stack-file', widest], { cwd: dir }).code, 0);
  appendFileSync(widest, 'x');
  assert.match(bugbot(['enqueue', '-t', 'Search is slow', '--stack-file', widest], { cwd: dir }).stderr, /is 300001 bytes: a stack trace is at most 100000 characters/);
});

// Review finding (a new user): `bugbot ticket 0` said "no ticket 0" (exit 1) and, with a
// server up, `approve 0` passed on its API's "id must be between 1 and ..."; `-n abc` said
// "expected a non-negative integer" of a flag that takes no 0.
test('a ticket id, a run and a count are positive integers: anything else is a usage error saying so', (t) => {
  const dir = tempDir(t);
  const usage = (args: string[], what: string) => {
    const r = bugbot(args, { cwd: dir });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^error: ${what} is invalid.*\\. expected a positive integer\\n\\(run bugbot --help for usage\\)`), args.join(' '));
  };
  for (const cmd of ['ticket', 'transcript', 'claim', 'cancel', 'approve', 'skip', 'requeue']) {
    usage([cmd, '0'], "command-argument value '0'");
    usage([cmd, 'abc'], "command-argument value 'abc'");
  }
  for (const args of [['tickets', '-n', 'abc'], ['tickets', '-n', '0'], ['transcript', '1', '--run', 'abc'], ['approve', '1', '--run', '0'], ['skip', '1', '--run', '-1']]) {
    usage(args, `option '.+' argument '${args.at(-1)}'`);
  }
  // A port may be 0 (a free one).
  assert.match(bugbot(['start', '--port', 'abc'], { cwd: dir }).stderr, /argument 'abc' is invalid\. expected a non-negative integer\n/);
  assert.equal(existsSync(join(dir, '.bugbot')), false);
});

// Review finding (a new user): `enqueue -t $'a\nb' -m ...` filed "a" and dropped "b" without a
// word. As the API files it, a title's first line is the title and the whole text the message.
test('enqueue: a title of several lines is the message under its first line, or refused beside --message', (t) => {
  const dir = tempDir(t);
  const both = bugbot(['enqueue', '-t', 'Checkout is blank\nafter paying', '-m', 'since Monday'], { cwd: dir });
  assert.equal(both.code, 2);
  assert.equal(both.stderr, 'bugbot: invalid ticket: --title: must be one line when a message is given (the title is its first line: put the rest in the message)\n');
  assert.equal(existsSync(join(dir, '.bugbot')), false, 'a refused enqueue makes no home');
  // Lines around it, and the blank ones a shell's $(...) leaves, are not more lines.
  assert.equal(bugbot(['enqueue', '-t', 'Search is slow\n', '-m', 'since Monday'], { cwd: dir }).code, 0);
  assert.equal(bugbot(['enqueue', '-t', 'Checkout is blank\nafter paying'], { cwd: dir }).code, 0);
  const shown = JSON.parse(bugbot(['ticket', '2', '--json'], { cwd: dir }).stdout) as { ticket: { title: string; message: string } };
  assert.deepEqual([shown.ticket.title, shown.ticket.message], ['Checkout is blank', 'Checkout is blank\nafter paying']);
});
