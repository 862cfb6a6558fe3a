/**
 * server.json names the running `bugbot start` of a home; one left by a killed server is
 * ignored, also once its PID names another process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { processIdentity } from '../../control/process-identity.ts';
import { lockHome, readServerInfo, removeServerInfo, writeServerInfo } from '../../control/server-info.ts';
import { tempDir } from '../support/helpers.ts';

test("this server's server.json reads back, and goes when it stops", (t) => {
  const home = tempDir(t);
  const lock = lockHome(home);
  assert.ok(lock);
  t.after(() => lock.release());
  writeServerInfo(lock, 'http://127.0.0.1:7777', 'k');
  assert.deepEqual(readServerInfo(home), { pid: process.pid, url: 'http://127.0.0.1:7777', key: 'k', identity: processIdentity() });
  removeServerInfo(home);
  assert.equal(readServerInfo(home), null);
});

// Review finding: a server killed with kill -9 (the OOM killer) leaves server.json behind,
// and once its PID was reused, readServerInfo took the new process for the server: bugbot
// status said "not answering", and bugbot cancel said the running server would stop the
// worker, so it never asked the worker the killed server left going to stop.
test("a server.json whose PID now names another process is a dead server's", async (t) => {
  const home = tempDir(t);
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => other.kill('SIGKILL'));
  await new Promise((resolve) => other.once('spawn', resolve));
  const pid = other.pid!;
  const now = processIdentity(pid);
  assert.ok(now, 'Linux /proc');
  // The same PID, started at another time: the killed server's.
  const killed = now.replace(/\/(\d+)$/, (_, ticks: string) => `/${Number(ticks) - 1}`);
  // As while a start holds the home (without its lock, no server.json names a live server).
  const lock = lockHome(home);
  assert.ok(lock);
  t.after(() => lock.release());
  writeFileSync(join(home, 'server.json'), JSON.stringify({ pid, url: 'http://127.0.0.1:7777', key: 'k', identity: killed }));
  assert.equal(readServerInfo(home), null);
  // A file written before server.json held an identity: as before, by its PID.
  writeFileSync(join(home, 'server.json'), JSON.stringify({ pid, url: 'http://127.0.0.1:7777', key: 'k' }));
  assert.equal(readServerInfo(home)?.pid, pid);
});
