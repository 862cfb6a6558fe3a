/**
 * A run's temp folder (TMPDIR of everything the run starts): short enough for the Unix
 * sockets Claude Code makes in it, made private, and never a folder someone else planted.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareWorkspace, runTmpDir, runTmpRoot } from '../../control/dispatcher/workspace.ts';
import { claimedRun } from '../support/helpers.ts';

/** The longest name Claude Code gives a socket in TMPDIR (its sandbox's proxy bridge). */
const SOCKET_NAME = `claude-socks-${'f'.repeat(16)}.sock`;

test('under home while that stays short, else under the system temp folder, one per home', () => {
  assert.equal(runTmpDir('/root/.bugbot', 12, 34), '/root/.bugbot/tmp/12-34');
  const long = `/srv/${'deployments/'.repeat(6)}bugbot`;
  const a = runTmpDir(long, 12, 34);
  assert.match(a, new RegExp(`^${tmpdir()}/bugbot-[0-9a-f]{12}/12-34$`));
  assert.equal(runTmpDir(long, 12, 34), a, 'the same home, the same folder (the reconciler finds it again)');
  assert.notEqual(runTmpRoot(`${long}2`), runTmpRoot(long), 'another home, another folder');
  for (const p of [runTmpDir('/root/.bugbot', 99999, 99999), runTmpDir(`/${'x'.repeat(47)}`, 99999, 99999), runTmpDir(long, 99999, 99999)]) {
    assert.ok(Buffer.byteLength(join(p, SOCKET_NAME)) <= 107, `${p}: a socket path in it fits the kernel's 107 bytes`);
  }
});

test("prepareWorkspace makes the run's temp folder private and hands it to the worker", (t) => {
  const { home, config, ticket, run } = claimedRun(t);
  const ws = prepareWorkspace(config, ticket, run);
  assert.equal(ws.tmp, runTmpDir(home, ticket.id, run.id));
  assert.equal(statSync(ws.tmp).mode & 0o777, 0o700);
  assert.equal(statSync(runTmpRoot(home)).mode & 0o777, 0o700);
  assert.match(readFileSync(join(ws.ticketDir, 'ticket.env'), 'utf8'), new RegExp(`^export BUGBOT_RUN_TMP='${ws.tmp}'$`, 'm'));
  const settings = JSON.parse(readFileSync(join(ws.ticketDir, 'config', 'implement.settings.json'), 'utf8')) as {
    sandbox: { filesystem: { allowWrite: string[]; allowRead: string[]; denyRead: string[] } };
  };
  assert.ok(settings.sandbox.filesystem.allowWrite.includes(ws.tmp));
  assert.ok(settings.sandbox.filesystem.allowRead.includes(ws.tmp));
  assert.ok(settings.sandbox.filesystem.denyRead.includes(runTmpRoot(home)), "other runs' temp folders are not the agent's to read");
});

test('a temp folder root that is a link (planted where the folder would go) is refused', (t) => {
  const { home, config, ticket, run } = claimedRun(t);
  const elsewhere = join(home, 'elsewhere');
  mkdirSync(elsewhere);
  symlinkSync(elsewhere, runTmpRoot(home));
  t.after(() => rmSync(runTmpRoot(home), { force: true }));
  assert.throws(() => prepareWorkspace(config, ticket, run), /is not a folder of this user's \(a link/);
});
