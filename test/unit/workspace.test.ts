/**
 * A run's temp folder (TMPDIR of everything the run starts): short enough for the Unix
 * sockets made in it, private, and never a folder someone else could have planted.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../../control/dispatcher/phases.ts';
import { prepareWorkspace, releaseRunTmpRoot, runTmpDir, runTmpRoot, workspacePaths } from '../../control/dispatcher/workspace.ts';
import { createRedactor } from '../../lib/redact.ts';
import { claimedRun, tempDir } from '../support/helpers.ts';
import { fillDisk, smallDisk } from '../support/tmpfs.ts';

test('one root per home, made by mkdtemp in the system temp folder, recorded, and short', (t) => {
  const home = tempDir(t);
  assert.equal(runTmpRoot(home), null, 'none until a run needs it');
  const root = runTmpRoot(home, { create: true })!;
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.equal(dirname(root), tmpdir());
  assert.match(root, /\/bugbot-\w{6}$/);
  assert.equal(statSync(root).mode & 0o777, 0o700);
  assert.equal(readFileSync(join(home, 'tmp-root'), 'utf8').trim(), root);
  assert.equal(runTmpRoot(home), root, 'found again (the reconciler sweeps it)');
  assert.equal(runTmpRoot(home, { create: true }), root, 'kept while it is there');
  // Claude Code hands its commands `<TMPDIR>/claude-<uid>` only while that is 44 bytes or less.
  assert.ok(Buffer.byteLength(join(runTmpDir(root, 99999, 99999), 'claude-65534')) <= 44, runTmpDir(root, 99999, 99999));
});

test('a recorded root that is gone, or is a link or not a folder, is replaced by a new one', (t) => {
  const home = tempDir(t);
  const first = runTmpRoot(home, { create: true })!;
  rmSync(first, { recursive: true });
  assert.equal(runTmpRoot(home), null);
  const second = runTmpRoot(home, { create: true })!;
  t.after(() => rmSync(second, { recursive: true, force: true }));
  assert.notEqual(second, first);

  // Someone pointed the record at a link to elsewhere: not followed, not used.
  const elsewhere = join(home, 'elsewhere');
  mkdirSync(elsewhere);
  const link = join(home, 'link');
  symlinkSync(elsewhere, link);
  writeFileSync(join(home, 'tmp-root'), `${link}\n`);
  assert.equal(runTmpRoot(home), null, 'a link is not a root');
  const third = runTmpRoot(home, { create: true })!;
  t.after(() => rmSync(third, { recursive: true, force: true }));
  assert.notEqual(third, link);
});

test('a clean stop removes the temp root when no run left anything in it, and keeps one that holds something', (t) => {
  const home = tempDir(t);
  const root = runTmpRoot(home, { create: true })!;
  t.after(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'left'), '');
  releaseRunTmpRoot(home);
  assert.equal(runTmpRoot(home), root, 'kept: something is in it');
  rmSync(join(root, 'left'));
  releaseRunTmpRoot(home);
  assert.equal(existsSync(root), false, 'an empty root goes');
  assert.equal(existsSync(join(home, 'tmp-root')), false, 'and its record');
  releaseRunTmpRoot(home);
});

test("prepareWorkspace makes the run's temp folder private and hands it to the worker", (t) => {
  const { home, config, ticket, run } = claimedRun(t);
  const ws = prepareWorkspace(config, ticket, run);
  const root = runTmpRoot(home)!;
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.equal(ws.tmp, runTmpDir(root, ticket.id, run.id));
  assert.equal(statSync(ws.tmp).mode & 0o777, 0o700);
  assert.match(readFileSync(join(ws.ticketDir, 'ticket.env'), 'utf8'), new RegExp(`^export BUGBOT_RUN_TMP='${ws.tmp}'$`, 'm'));
  assert.match(readFileSync(join(ws.ticketDir, 'ticket.env'), 'utf8'), /^export BUGBOT_GIT_NAME='bugbot'\nexport BUGBOT_GIT_EMAIL='bugbot@localhost'$/m, "the commits' identity");
  const settings = JSON.parse(readFileSync(join(ws.ticketDir, 'config', 'implement.settings.json'), 'utf8')) as {
    sandbox: { filesystem: { allowWrite: string[]; allowRead: string[]; denyRead: string[] } };
  };
  assert.ok(settings.sandbox.filesystem.allowWrite.includes(ws.tmp));
  assert.ok(settings.sandbox.filesystem.allowRead.includes(ws.tmp));
  assert.ok(settings.sandbox.filesystem.denyRead.includes(root), "other runs' temp folders are not the agent's to read");
  // Phase 0 searches the docs for the ticket's own words, not the brief's template around them.
  const query = readFileSync(join(ws.ticketDir, 'query.txt'), 'utf8');
  assert.equal(query, `${ticket.title}\n${ticket.message}\n`);
  assert.doesNotMatch(query, /Ticket|test command|plan/);
});

test("a run's branch names its start in a form redaction leaves alone (no run of digits a card number could be)", (t) => {
  const { config } = claimedRun(t);
  const redact = createRedactor().text;
  // Every second of a day: ticket-1-20261122071908 (15 digits with a dash) passed the Luhn check one time in ten.
  for (let s = 0; s < 86_400; s += 7) {
    const started = new Date(Date.parse('2026-11-22T00:00:00.000Z') + s * 1000).toISOString();
    const { branch } = workspacePaths(config, { id: 1 }, { id: 1, worker_id: 1, started_at: started });
    const text = `merged ${branch} into staging`;
    assert.equal(redact(text), text, branch);
  }
  assert.equal(workspacePaths(config, { id: 12 }, { id: 3, worker_id: 1, started_at: '2026-11-22T07:19:08.123Z' }).branch, 'bot/ticket-12-20261122T071908');
});

// Review finding: with bugbot.db deleted (or a backup restored) the new database hands out
// ticket and run ids again, and a run's folder of the old one was taken over as it was: its
// `result` line won over the new run's (harness_set_result keeps the first), so a run that
// failed was recorded as the old run's push, and its outcome.json read as the new run's end.
test("a run's folder left by another database's run of the same numbers holds nothing of it once the run starts", (t) => {
  const { config, ticket, run } = claimedRun(t);
  const stale = workspacePaths(config, ticket, run).ticketDir;
  mkdirSync(join(stale, 'home', 'go', 'pkg'), { recursive: true });
  writeFileSync(join(stale, 'result'), 'pushed\tfixed (an older database\'s run)\n');
  writeFileSync(join(stale, 'outcome.json'), JSON.stringify({ state: 'pushed', outcome: 'clean', reason: 'fixed' }));
  writeFileSync(join(stale, 'environment-failure'), 'remote out of reach\n');
  writeFileSync(join(stale, 'home', 'go', 'pkg', 'mod.txt'), '');
  // Go's module cache is read-only: a folder its owner cannot write into.
  chmodSync(join(stale, 'home', 'go', 'pkg'), 0o500);
  t.after(() => existsSync(join(stale, 'home', 'go', 'pkg')) && chmodSync(join(stale, 'home', 'go', 'pkg'), 0o700));

  const ws = prepareWorkspace(config, ticket, run);

  assert.equal(ws.ticketDir, stale);
  for (const f of ['result', 'outcome.json', 'environment-failure', 'home/go']) assert.equal(existsSync(join(ws.ticketDir, f)), false, `${f} is gone`);
  assert.ok(existsSync(join(ws.ticketDir, 'ticket.env')), 'the new run has its own files');
  // The harness's first result of the run is the one kept.
  const set = spawnSync('bash', ['-c', 'source "$1"; harness_set_result failed "research: no plan"; cat "$TICKET_DIR/result"', 'set-result', join(REPO_ROOT, 'harness', 'lib', 'common.sh')], {
    env: { PATH: process.env.PATH, TICKET_DIR: ws.ticketDir },
    encoding: 'utf8',
  });
  assert.equal(set.stdout, 'failed\tresearch: no plan\n');
});

// Review finding: the run's temp folder (in the system's temp folder) was made before the
// ticket folder's files, and a launch that failed on them (a full disk) left it behind:
// no worker ran to remove it, and the pool claims again after each pause.
test('a ticket folder that cannot be written (a full disk) leaves no temp folder of the run behind', (t) => {
  const { config: base, ticket, run } = claimedRun(t);
  const disk = smallDisk(t, '2m');
  const config = { ...base, home: disk };
  // A home that ran before: its temp root is recorded.
  const root = runTmpRoot(disk, { create: true })!;
  t.after(() => rmSync(root, { recursive: true, force: true }));
  fillDisk(disk);

  assert.throws(() => prepareWorkspace(config, ticket, run), /ENOSPC/);
  assert.equal(existsSync(runTmpDir(root, ticket.id, run.id)), false);
});
