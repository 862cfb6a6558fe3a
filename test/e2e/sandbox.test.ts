/**
 * The OS sandbox around the agent's shell commands, on its own (no guard hook, so only
 * the sandbox stands in the way), with the REAL Claude Code CLI and the settings the
 * control plane writes for a phase (control/dispatcher/phases.ts):
 * - with bubblewrap: work inside the folder succeeds; writes to the root filesystem, to
 *   bugbot's state and to the base checkout's git hooks and config fail (Claude Code's
 *   Linux sandbox leaves /tmp, /home, /root and /var writable, so bugbot denies those
 *   files by name), and so do connections off loopback;
 * - without bubblewrap on PATH: every command is refused (fail closed), none runs unsandboxed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ConfigFile } from '../../control/config.ts';
import { guardOperatorHome, phaseFiles } from '../../control/dispatcher/phases.ts';
import { repoRoot, tempDir, testConfig } from '../support/helpers.ts';
import { pathWithout } from '../support/process.ts';
import { say, startScriptedModel, tool, type ScriptedModel } from '../support/scripted-model.ts';

const claude = join(repoRoot, 'node_modules/.bin/claude');

function requireBinary(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, name))) return join(dir, name);
  throw new Error(`${name} is not installed: run scripts/install-test-deps.sh (Debian package ${name === 'bwrap' ? 'bubblewrap' : name})`);
}

/** One implement-phase session in `worktree` with the control plane's settings for it, but without the guard hook. */
async function session(
  t: TestContext,
  model: ScriptedModel,
  opts: { path?: string; prepare?: (home: string) => { flags: ConfigFile; prompt: string }; worktree?: string } = {},
) {
  const home = tempDir(t, 'bugbot-sandbox-');
  const worktree = join(home, opts.worktree ?? 'worktree');
  const ticketDir = join(home, 'ticket');
  // The run's temp folder (runTmpDir): the worker's TMPDIR, which the session inherits.
  const tmp = join(home, 'tmp', '1-1');
  for (const d of [worktree, join(ticketDir, 'config'), join(ticketDir, 'home'), tmp]) mkdirSync(d, { recursive: true });
  const prepared = opts.prepare?.(home);
  const config = testConfig(home, prepared?.flags ?? {});
  const { args, files } = phaseFiles('implement', { config, ticketDir, worktree, port: 1, tmp });
  const settingsName = 'implement.settings.json';
  const settings = JSON.parse(files[settingsName]!) as { hooks?: unknown; sandbox: unknown };
  delete settings.hooks;
  for (const [name, content] of Object.entries(files)) writeFileSync(join(ticketDir, 'config', name), name === settingsName ? JSON.stringify(settings) : content);
  const child = spawn(claude, [...args, '--allowedTools', 'Bash'], {
    cwd: worktree,
    env: {
      PATH: opts.path ?? process.env.PATH,
      HOME: join(ticketDir, 'home'),
      TMPDIR: tmp,
      CLAUDE_CONFIG_DIR: join(ticketDir, 'claude-config'),
      ANTHROPIC_BASE_URL: model.url,
      ANTHROPIC_API_KEY: 'sk-sandbox-test',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      CLAUDE_CODE_SUBPROCESS_ENV_SCRUB: '1',
      MCP_CONNECTION_NONBLOCKING: '1',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin.end(`<!-- bugbot-phase: implement -->\nRun the commands. ${prepared?.prompt ?? ''}`);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const results = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { type: string; message?: { content?: Array<{ type: string; content?: unknown; is_error?: boolean }> } })
    .filter((e) => e.type === 'user')
    .flatMap((e) => (e.message?.content ?? []).filter((b) => b.type === 'tool_result'))
    .map((b) => ({ text: JSON.stringify(b.content), isError: Boolean(b.is_error) }));
  return { home, worktree, tmp, code, results, out };
}

function listener(t: TestContext): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const srv = createServer((s) => {
    n++;
    s.end();
  });
  t.after(() => new Promise<void>((r) => srv.close(() => r())));
  return new Promise((resolve) => srv.listen(0, '0.0.0.0', () => resolve({ port: (srv.address() as { port: number }).port, connections: () => n })));
}

/** An address of this machine that is not loopback (the sandbox allows only loopback). */
function outsideAddress(): string {
  const route = readFileSync('/proc/net/fib_trie', 'utf8');
  const m = [...route.matchAll(/\|-- (\d+\.\d+\.\d+\.\d+)\n\s+\/32 host LOCAL/g)].map((x) => x[1]!).find((a) => !a.startsWith('127.'));
  if (!m) throw new Error('this machine has no non-loopback IPv4 address to aim the network probe at');
  return m;
}

// Review finding: the sandbox kept read-only only the operator's files that existed, and a
// new user's home has none: the agent made ~/.gitconfig and ~/.config/git/attributes naming
// a clean filter, and the harness's own git ran it outside any sandbox with the model key
// in its environment. What is missing is made (guardOperatorHome) before the session.
test("the operator's start-up and git files missing from the home are made before a run and cannot be written from the sandbox", { timeout: 120_000 }, async (t) => {
  requireBinary('bwrap');
  requireBinary('socat');
  const model = await startScriptedModel();
  t.after(() => model.close());
  // The home of the user running bugbot: under /tmp, which the sandbox leaves writable, as it does /home and /root.
  const operator = tempDir(t, 'bugbot-operator-home-');
  const targets = ['.gitconfig', '.config/git/attributes', '.config/git/config', '.bash_profile', '.ssh/config', '.local/bin/git', '.npmrc', '.config/systemd/user/x.service'].map((p) => join(operator, p));
  model.script('implement', [
    // ~/.ssh is hidden (unreadable): an empty scratch folder inside the sandbox, whose writes stay there (checked on the host below).
    tool('Bash', { command: targets.map((f) => `(mkdir -p ${dirname(f)}; echo evil >> ${f}) 2>&1 | tail -1; grep -qs evil ${f} && echo MADE ${f}`).join('; '), description: 'write the operator home' }),
    say('Done.'),
  ]);
  const saved = process.env.HOME;
  t.after(() => {
    process.env.HOME = saved;
  });
  const s = await session(t, model, {
    prepare: () => {
      // What the dispatcher does before a run; the settings then name what exists.
      assert.deepEqual(guardOperatorHome(operator).failed, []);
      process.env.HOME = operator;
      return { flags: {}, prompt: '' };
    },
  });
  process.env.HOME = saved;
  assert.equal(s.results.length, 1, s.out.slice(-2000));
  assert.deepEqual([...s.results[0]!.text.matchAll(/MADE (\S+?)(?:\\n|")/g)].map((m) => m[1]), [join(operator, '.ssh/config')], s.results[0]!.text);
  for (const f of targets) {
    let content = '';
    try {
      content = readFileSync(f, 'utf8');
    } catch {
      // not there: not written either
    }
    assert.doesNotMatch(content, /evil/, `${f} written from the sandbox`);
  }
});

test('the sandbox: work in the folder runs; bugbot\'s state, the base checkout\'s git hooks and config, and the root filesystem are not writable; no connection off loopback', { timeout: 120_000 }, async (t) => {
  requireBinary('bwrap');
  requireBinary('socat');
  const model = await startScriptedModel();
  t.after(() => model.close());
  // A folder on the root filesystem (the sandbox leaves /tmp, /home, /root, /var writable).
  const outside = mkdtempSync('/bugbot-sandbox-outside-');
  t.after(() => rmSync(outside, { recursive: true, force: true }));
  const { port, connections } = await listener(t);
  const addr = outsideAddress();
  // bugbot's own code, which the harness runs for every later ticket: a file of its own in
  // the harness folder (removed after), standing for the scripts beside it.
  const ownCode = join(repoRoot, 'harness', 'lib', `.sandbox-probe-${process.pid}`);
  writeFileSync(ownCode, 'original\n');
  t.after(() => rmSync(ownCode, { force: true }));
  const protectedFiles = (home: string, repo: string) => [join(home, 'bugbot.db'), join(home, 'outcomes.jsonl'), join(home, 'server.json'), join(repo, '.git', 'config'), join(repo, '.git', 'hooks', 'post-commit'), ownCode];
  model.script('implement', [
    tool('Bash', { command: 'echo inside > made-inside.txt && cat made-inside.txt', description: 'write in the folder' }),
    (req) => {
      const home = /SANDBOX_HOME=([\w/.-]+)/.exec(JSON.stringify(req.messages[0]))?.[1] ?? '';
      const repo = join(home, 'repo');
      const writes = [`${outside}/escaped.txt`, ...protectedFiles(home, repo)].map((f) => `(echo tampered >> ${f}) 2>&1 | tail -1`);
      return tool('Bash', { command: writes.join('; '), description: 'write outside' });
    },
    tool('Bash', { command: `node -e "require('net').connect(${port}, '${addr}').on('connect', () => console.log('CONNECTED')).on('error', (e) => console.log('refused', e.code))"`, description: 'network' }),
    say('Done.'),
  ]);
  const s = await session(t, model, {
    prepare: (home) => {
      const repo = join(home, 'repo');
      mkdirSync(join(repo, '.git', 'hooks'), { recursive: true });
      for (const f of protectedFiles(home, repo)) writeFileSync(f, 'original\n');
      return { flags: { target: { repo } }, prompt: `SANDBOX_HOME=${home}` };
    },
  });
  assert.equal(s.results.length, 3, s.out.slice(-2000));
  assert.equal(readFileSync(join(s.worktree, 'made-inside.txt'), 'utf8'), 'inside\n', 'work in the folder runs');
  assert.equal(existsSync(join(outside, 'escaped.txt')), false, 'nothing written on the root filesystem');
  for (const f of protectedFiles(s.home, join(s.home, 'repo'))) assert.equal(readFileSync(f, 'utf8'), 'original\n', `${f} untouched`);
  assert.match(s.results[1]!.text, /Read-only file system|Permission denied|not permitted/i, s.results[1]!.text);
  assert.doesNotMatch(s.results[2]!.text, /CONNECTED/);
  assert.equal(connections(), 0, `no connection reached ${addr}:${port}`);
});

test('the sandbox: other tickets\' folders and temp folders, this ticket\'s config (MCP credentials), its MCP servers\' sockets and the outcomes archive are out of reach; its agent/ folder, home and temp folder are not', { timeout: 120_000 }, async (t) => {
  requireBinary('bwrap');
  requireBinary('socat');
  const model = await startScriptedModel();
  t.after(() => model.close());
  let serverLog = '';
  const initialize = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'agent', version: '1' } } });
  model.script('implement', [
    (req) => {
      const home = /SANDBOX_HOME=([\w/.-]+)/.exec(JSON.stringify(req.messages[0]))?.[1] ?? '';
      const secret = [
        join(home, 'tickets', '2', 'run-2', 'agent', 'ticket.md'),
        join(home, 'ticket', 'config', 'research.mcp.json'),
        join(home, 'outcomes.jsonl'),
        join(home, 'tmp', '2-2', 'claude-0', 'task.output'),
      ];
      // The harness's MCP servers listen in the ticket folder (harness/lib/mcp-host.mjs): a
      // session reaches them through its MCP config, the agent's commands must not.
      const socket = `(echo '${initialize}' | socat -t2 - UNIX-CONNECT:${join(home, 'ticket', 'mcp', 'loki.sock')}) 2>&1 | tail -1`;
      return tool('Bash', { command: [...secret.map((f) => `(cat ${f}) 2>&1 | tail -1`), socket].join('; '), description: 'read what is not ours' });
    },
    (req) => {
      const home = /SANDBOX_HOME=([\w/.-]+)/.exec(JSON.stringify(req.messages[0]))?.[1] ?? '';
      return tool('Bash', {
        command: `cat ${join(home, 'ticket', 'agent', 'plan.md')} && echo mine > "$HOME/own.txt" && cat "$HOME/own.txt" && echo "tmp=$TMPDIR" && echo scratch > "$TMPDIR/own-tmp.txt" && cat "$TMPDIR/own-tmp.txt"`,
        description: 'read what is ours',
      });
    },
    say('Done.'),
  ]);
  const s = await session(t, model, {
    prepare: (home) => {
      mkdirSync(join(home, 'tickets', '2', 'run-2', 'agent'), { recursive: true });
      writeFileSync(join(home, 'tickets', '2', 'run-2', 'agent', 'ticket.md'), 'CANARY-other-customer-report\n');
      mkdirSync(join(home, 'ticket', 'config'), { recursive: true });
      writeFileSync(join(home, 'ticket', 'config', 'research.mcp.json'), '{"env":{"DB_URL":"postgres://ro:CANARY-mcp-password@db/app"}}\n');
      writeFileSync(join(home, 'outcomes.jsonl'), '{"title":"CANARY-outcome"}\n');
      // Another run's temp folder: Claude Code keeps its sessions' task output there.
      mkdirSync(join(home, 'tmp', '2-2', 'claude-0'), { recursive: true });
      writeFileSync(join(home, 'tmp', '2-2', 'claude-0', 'task.output'), 'CANARY-other-run-output\n');
      mkdirSync(join(home, 'ticket', 'agent'), { recursive: true });
      writeFileSync(join(home, 'ticket', 'agent', 'plan.md'), 'PLAN-OF-THIS-TICKET\n');
      const server = spawn(process.execPath, ['--import', 'tsx', 'mcp/loki/main.ts'], { cwd: repoRoot, env: { ...process.env, BUGBOT_MCP_SOCKET: join(home, 'ticket', 'mcp', 'loki.sock') }, stdio: ['pipe', 'ignore', 'pipe'] });
      server.stderr.on('data', (d: Buffer) => (serverLog += d.toString()));
      t.after(() => server.kill('SIGKILL'));
      mkdirSync(join(home, 'ticket', 'mcp'), { recursive: true });
      return { flags: {}, prompt: `SANDBOX_HOME=${home}` };
    },
  });
  assert.equal(s.results.length, 2, s.out.slice(-2000));
  assert.match(serverLog, /ready on .*loki\.sock/, 'the MCP server was listening');
  // The same command outside the sandbox gets an answer: the server was reachable, only not from inside.
  const outside = execFileSync('bash', ['-c', `echo '${initialize}' | socat -t2 - UNIX-CONNECT:${join(s.home, 'ticket', 'mcp', 'loki.sock')}`], { encoding: 'utf8' });
  assert.match(outside, /"result"/, outside);
  assert.doesNotMatch(s.results[0]!.text, /"result"|serverInfo/, `no MCP answer: ${s.results[0]!.text}`);
  assert.doesNotMatch(s.results[0]!.text, /CANARY/, s.results[0]!.text);
  assert.match(s.results[0]!.text, /Permission denied|No such file|not permitted/i, s.results[0]!.text);
  assert.match(s.results[1]!.text, /PLAN-OF-THIS-TICKET/, s.results[1]!.text);
  assert.match(s.results[1]!.text, /mine/, s.results[1]!.text);
  // Its commands' temp files go in the run's temp folder, which the worker removes.
  const tmpLine = /tmp=(\S+?)(?:\\n|")/.exec(s.results[1]!.text)?.[1] ?? '';
  assert.ok(tmpLine === s.tmp || tmpLine.startsWith(`${s.tmp}/`), `TMPDIR ${tmpLine} is in the run's folder ${s.tmp}`);
  assert.match(s.results[1]!.text, /scratch/, s.results[1]!.text);
});

test("the sandbox: the other runs' worktrees, the test gate's and the approvals' checkouts are out of reach, and the base checkout's installed dependencies read-only; its own worktree is not", { timeout: 120_000 }, async (t) => {
  requireBinary('bwrap');
  requireBinary('socat');
  const model = await startScriptedModel();
  t.after(() => model.close());
  // What a session could otherwise change: another ticket's fix in progress, the checkout
  // this run's test gate is testing (a failing test made to pass), an approval's merge, and
  // the modules every later run copies.
  const targets = (home: string) => ({
    otherRun: join(home, 'worktrees', 'ticket-2-run-2', 'src', 'app.ts'),
    gate: join(home, 'worktrees', 'ticket-1-run-1.gate', 'test', 'app.test.ts'),
    approval: join(home, 'approvals', 'ticket-3-1', 'src', 'app.ts'),
    deps: join(home, 'repo', 'node_modules', 'dep', 'index.js'),
    lock: join(home, 'repo', 'package-lock.json'),
  });
  model.script('implement', [
    (req) => {
      const home = /SANDBOX_HOME=([\w/.-]+)/.exec(JSON.stringify(req.messages[0]))?.[1] ?? '';
      const files = Object.values(targets(home));
      return tool('Bash', {
        command: [...files.map((f) => `(cat ${f}) 2>&1 | tail -1; (echo tampered >> ${f}) 2>&1 | tail -1`), 'echo mine > own.txt && cat own.txt'].join('; '),
        description: 'reach past the worktree',
      });
    },
    say('Done.'),
  ]);
  const s = await session(t, model, {
    worktree: join('worktrees', 'ticket-1-run-1'),
    prepare: (home) => {
      for (const f of Object.values(targets(home))) {
        mkdirSync(dirname(f), { recursive: true });
        writeFileSync(f, 'CANARY-original\n');
      }
      mkdirSync(join(home, 'repo', '.git', 'hooks'), { recursive: true });
      return { flags: { target: { repo: join(home, 'repo') } }, prompt: `SANDBOX_HOME=${home}` };
    },
  });
  assert.equal(s.results.length, 1, s.out.slice(-2000));
  for (const f of Object.values(targets(s.home))) assert.equal(readFileSync(f, 'utf8'), 'CANARY-original\n', `${f} untouched`);
  assert.equal(readFileSync(join(s.worktree, 'own.txt'), 'utf8'), 'mine\n', 'its own worktree is writable');
  // The base checkout's modules stay readable (a session may read a dependency's code); the others are out of sight.
  assert.equal(s.results[0]!.text.match(/CANARY/g)?.length ?? 0, 2, s.results[0]!.text);
});

test('the sandbox: other processes of the same user (the worker, Claude Code itself) and their environments are out of sight', { timeout: 120_000 }, async (t) => {
  requireBinary('bwrap');
  requireBinary('socat');
  const model = await startScriptedModel();
  t.after(() => model.close());
  // A process holding a secret in its environment, as the worker and the CLI hold the model key.
  const holder = spawn('sleep', ['60'], { env: { ...process.env, HOLDER_SECRET: 'CANARY-proc-environ' }, stdio: 'ignore' });
  t.after(() => holder.kill('SIGKILL'));
  model.script('implement', [
    tool('Bash', { command: `(cat /proc/${holder.pid}/environ | tr '\\0' '\\n' | grep HOLDER) 2>&1 | tail -1; (grep -l CANARY-proc /proc/[0-9]*/environ) 2>/dev/null | wc -l`, description: 'look at other processes' }),
    say('Done.'),
  ]);
  const s = await session(t, model);
  assert.equal(s.results.length, 1, s.out.slice(-2000));
  assert.doesNotMatch(s.results[0]!.text, /CANARY-proc-environ/, s.results[0]!.text);
  assert.match(s.results[0]!.text, /No such file|Permission denied|not permitted/i, s.results[0]!.text);
});

test('without bubblewrap the sandbox fails closed: no command runs unsandboxed', { timeout: 120_000 }, async (t) => {
  const model = await startScriptedModel();
  t.after(() => model.close());
  const path = pathWithout(join(tempDir(t, 'bugbot-nobwrap-'), 'bin'), ['bwrap']);
  model.script('implement', [tool('Bash', { command: 'echo ran > ran.txt', description: 'anything' }), say('Done.')]);
  const s = await session(t, model, { path });
  assert.equal(existsSync(join(s.worktree, 'ran.txt')), false, 'the command did not run');
  assert.ok(s.results.length === 0 || s.results.every((r) => r.isError), `refused: ${JSON.stringify(s.results)}`);
  assert.match(s.out, /sandbox|bubblewrap|bwrap/i, 'says why');
});
