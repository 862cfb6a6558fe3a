#!/usr/bin/env node
// Starts a ticket's MCP servers once, before any Claude Code session needs them, and keeps
// them for the whole run. Each server listens on a Unix socket in the ticket folder
// (BUGBOT_MCP_SOCKET, mcp/shared/serve.ts) and serves every connection as a fresh session;
// each phase's MCP config reaches it through `socat STDIO UNIX-CONNECT:<socket>`, which
// starts in milliseconds where a server takes a few hundred (Claude Code waits for its
// MCP servers before its first request).
//
// Usage: node mcp-host.mjs --spec FILE --parent PID [--cwd DIR] [--log-dir DIR]
//   FILE (config/mcp-host.json, written by the control plane):
//     { "servers": { "<name>": { "command", "args": [], "env": {}, "socket" } } }
// Each server gets PATH, HOME, LANG and TMPDIR from this process, its own "env" (the
// secrets its settings name) and nothing else; its stderr goes to <log-dir>/<name>.log.
// A server that dies is started again (a few times), so a session that lost it gets it
// back on its next call; one that keeps dying is replaced by a listener that closes every
// connection, so sessions see it fail at once instead of waiting out their shim's
// retries. Everything stops on SIGTERM/SIGINT/SIGHUP, or once PID (the
// worker) is gone, however it ended.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: { spec: { type: 'string' }, parent: { type: 'string' }, cwd: { type: 'string' }, 'log-dir': { type: 'string' } },
});
if (!o.spec || !o.parent) {
  process.stderr.write('usage: mcp-host.mjs --spec FILE --parent PID [--cwd DIR] [--log-dir DIR]\n');
  process.exit(2);
}
const log = (msg) => process.stderr.write(`[mcp-host] ${msg}\n`);
const spec = JSON.parse(readFileSync(o.spec, 'utf8'));
const parent = Number(o.parent);
const MAX_RESTARTS = 5;
const base = {};
for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR']) if (process.env[k] !== undefined) base[k] = process.env[k];

/** name -> { child, restarts } */
const running = new Map();
let stopping = false;

function start(name, restarts) {
  const s = spec.servers[name];
  mkdirSync(dirname(s.socket), { recursive: true, mode: 0o700 });
  const logFd = o['log-dir'] ? openSync(join(o['log-dir'], `mcp-${name}.log`), 'a') : 'inherit';
  // stdin stays a pipe from this process: the server stops when it closes (this host is gone).
  const child = spawn(s.command, s.args, {
    cwd: o.cwd ?? process.cwd(),
    env: { ...base, ...s.env, BUGBOT_MCP_SOCKET: s.socket },
    stdio: ['pipe', 'ignore', logFd],
  });
  if (typeof logFd === 'number') closeSync(logFd);
  running.set(name, { child, restarts });
  child.on('error', (err) => log(`${name}: ${err.message}`));
  child.on('exit', (code, signal) => {
    if (stopping) return;
    const again = restarts < MAX_RESTARTS;
    log(`${name} exited (${signal ?? code})${again ? '; starting it again' : `; given up after ${MAX_RESTARTS} restarts`}`);
    if (again) setTimeout(() => stopping || start(name, restarts + 1), 100 * (restarts + 1));
    else giveUp(name);
  });
}

function giveUp(name) {
  running.delete(name);
  const socket = spec.servers[name].socket;
  rmSync(socket, { force: true });
  createServer((conn) => conn.destroy()).listen(socket);
}

function stop(why) {
  if (stopping) return;
  stopping = true;
  log(`stopping (${why})`);
  const children = [...running.values()].map((r) => r.child).filter((c) => c.exitCode === null && c.signalCode === null);
  const gone = children.map((c) => new Promise((r) => c.once('exit', r)));
  for (const c of children) c.kill('SIGTERM');
  const hard = setTimeout(() => {
    for (const c of children) c.kill('SIGKILL');
  }, 5000);
  Promise.all(gone).then(() => {
    clearTimeout(hard);
    for (const s of Object.values(spec.servers)) rmSync(s.socket, { force: true });
    process.exit(0);
  });
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.once(sig, () => stop(sig));
setInterval(() => {
  try {
    process.kill(parent, 0);
  } catch {
    stop(`worker ${parent} is gone`);
  }
}, 500);
for (const name of Object.keys(spec.servers)) start(name, 0);
log(`started ${Object.keys(spec.servers).join(', ')}`);
