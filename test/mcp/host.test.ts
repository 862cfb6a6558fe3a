/**
 * MCP servers started ahead of their sessions: a real server (loki, through tsx) on a
 * Unix socket (BUGBOT_MCP_SOCKET) reached by a real MCP client through the `socat` shim
 * the phases' MCP configs use, and harness/lib/mcp-host.mjs, which starts the servers,
 * restarts one that dies, and stops everything when its worker is gone.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { repoRoot, tempDir, waitFor } from '../support/helpers.ts';
import { alive, descendants } from '../support/procs.ts';

const LOKI = [process.execPath, '--import', 'tsx', join(repoRoot, 'mcp/loki/main.ts')];

/** A session as Claude Code opens one from a phase's MCP config: `socat STDIO UNIX-CONNECT:...`. */
async function session(t: TestContext, socket: string, retries = 200): Promise<Client> {
  const client = new Client({ name: 'host-test', version: '0.0.0' });
  await client.connect(new StdioClientTransport({ command: 'socat', args: ['STDIO', `UNIX-CONNECT:${socket},retry=${retries},interval=0.05`], stderr: 'ignore' }));
  t.after(() => client.close());
  return client;
}

const toolNames = async (c: Client) => (await c.listTools()).tools.map((x) => x.name).sort();

/** A process killed at the end of the test if still running; `log()` is its stderr so far. */
function started(t: TestContext, cmd: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; log: () => string } {
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, log: () => stderr };
}

const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)));

test('on a socket, every connection is a session of its own: one after another and side by side', async (t) => {
  const socket = join(tempDir(t, 'bugbot-mcp-sock-'), 'loki.sock');
  const { child: server, log } = started(t, LOKI, { BUGBOT_MCP_SOCKET: socket });
  const first = await session(t, socket);
  const names = await toolNames(first);
  assert.deepEqual(names, ['loki_query', 'loki_user_breadcrumbs']);
  const second = await session(t, socket);
  assert.deepEqual(await toolNames(second), names, 'a second session beside the first');
  await first.close();
  const third = await session(t, socket);
  assert.deepEqual(await toolNames(third), names, 'a session after one ended');
  assert.equal(server.exitCode, null, 'the server outlives its sessions');
  server.kill('SIGTERM');
  await exited(server);
  assert.equal(server.exitCode, 0, log());
});

test('on a socket, the server stops once its stdin closes (whoever started it is gone)', async (t) => {
  const socket = join(tempDir(t, 'bugbot-mcp-sock-'), 'loki.sock');
  const { child: server, log } = started(t, LOKI, { BUGBOT_MCP_SOCKET: socket });
  await session(t, socket);
  server.stdin!.end();
  await exited(server);
  assert.match(log(), /shutting down \(stdin closed\)/);
});

function host(t: TestContext, servers: Record<string, { command: string; args: string[]; env?: Record<string, string> }>) {
  const dir = tempDir(t, 'bugbot-mcp-host-');
  const spec = join(dir, 'mcp-host.json');
  const sockets: Record<string, string> = {};
  const entries: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(servers)) {
    sockets[name] = join(dir, 'mcp', `${name}.sock`);
    entries[name] = { env: {}, ...s, socket: sockets[name] };
  }
  writeFileSync(spec, JSON.stringify({ servers: entries }));
  // The worker it belongs to: a process the test can end.
  const worker = started(t, ['sleep', '300'], {}).child;
  const { child: proc, log } = started(t, [process.execPath, join(repoRoot, 'harness/lib/mcp-host.mjs'), '--spec', spec, '--parent', String(worker.pid), '--cwd', repoRoot, '--log-dir', dir], { LOKI_CANARY: 'must-not-pass' });
  return { dir, sockets, worker, proc, log };
}

test('mcp-host: starts each server with only its own environment, restarts one that dies, stops with its worker', { timeout: 60_000 }, async (t) => {
  const { dir, sockets, worker, proc, log } = host(t, { loki: { command: LOKI[0]!, args: LOKI.slice(1), env: { LOKI_TOKEN: 'tok-1' } } });
  const client = await session(t, sockets.loki!);
  assert.deepEqual(await toolNames(client), ['loki_query', 'loki_user_breadcrumbs']);

  const [server] = descendants(proc.pid!).filter((p) => p.cmd.includes('mcp/loki/main.ts'));
  assert.ok(server, 'the loki server runs under the host');
  const names = readFileSync(`/proc/${server.pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => kv.slice(0, kv.indexOf('=')));
  assert.deepEqual(names.filter((n) => !['PATH', 'HOME', 'LANG', 'TMPDIR', 'LOKI_TOKEN', 'BUGBOT_MCP_SOCKET'].includes(n)), [], `server env: ${names.join(' ')}`);

  // kill -9 the server: the session loses it, the next one gets a new server.
  process.kill(server.pid, 'SIGKILL');
  await waitFor(() => /loki exited \(SIGKILL\)/.test(log()), 5000, 'the host to see the server die');
  const again = await session(t, sockets.loki!);
  assert.deepEqual(await toolNames(again), ['loki_query', 'loki_user_breadcrumbs'], 'a new session after the server was killed');
  assert.match(readFileSync(join(dir, 'mcp-loki.log'), 'utf8'), /ready on .*loki\.sock/);

  // The worker ends (here: killed, so no trap ran): the host and its servers follow.
  const all = descendants(proc.pid!).map((p) => p.pid);
  worker.kill('SIGKILL');
  await exited(proc);
  await waitFor(() => all.every((pid) => !alive(pid)), 10_000);
  assert.equal(existsSync(sockets.loki!), false, 'the socket is removed');
});

test('mcp-host: a server that keeps failing is given up, and sessions then fail at once instead of waiting', { timeout: 60_000 }, async (t) => {
  const { sockets, log } = host(t, { broken: { command: process.execPath, args: ['-e', 'process.exit(2)'] } });
  await waitFor(() => /given up/.test(log()), 20_000);
  const began = Date.now();
  await assert.rejects(session(t, sockets.broken!));
  assert.ok(Date.now() - began < 3000, `failed after ${Date.now() - began} ms, not after the shim's 10 s of retries`);
});
