/**
 * Files of a run's `agent/` folder, which the agent's sessions write, as the control plane
 * reads and writes them outside any sandbox: a symbolic link planted there is neither
 * followed (the pull request body would carry the local key or a private key to GitHub)
 * nor written through (docs-search's pre-context would overwrite the operator's files).
 * The harness's side is test/harness/agent-files.bats.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerDocsCommands } from '../../control/docs-search/cli.ts';
import { pullRequestBody } from '../../control/dispatcher/pull-request.ts';
import type { Ticket } from '../../control/types.ts';
import { SAMPLE_DOCS, tempRepo } from '../docs-search/support.ts';
import { tempDir } from '../support/helpers.ts';

const TICKET = {
  id: 7,
  title: 'Strays have no owner',
  source: 'grafana',
  kind: 'alert',
  human: false,
  service: 'petshop',
  route: '/pets',
  severity: 'high',
  count: 1,
  firstSeen: '2025-01-01T00:00:00.000Z',
  lastSeen: '2025-01-01T00:00:00.000Z',
  triageReason: null,
  message: 'TypeError: owner is null',
  stack: null,
} as unknown as Ticket;

/** A run folder whose agent/ holds what `files` says: text, or a link to a path. */
function runFolder(dir: string, files: Record<string, string | { link: string }>): string {
  const ticketDir = join(dir, 'run-1');
  mkdirSync(join(ticketDir, 'agent'), { recursive: true });
  for (const [name, what] of Object.entries(files)) {
    const path = join(ticketDir, 'agent', name);
    if (typeof what === 'string') writeFileSync(path, what);
    else symlinkSync(what.link, path);
  }
  return ticketDir;
}

test('pull request body: plan.md and verdict.json planted as links are not followed, the canary never reaches GitHub', (t) => {
  const dir = tempDir(t);
  // The local key and another ticket's verdict: readable by the control plane, never the agent.
  writeFileSync(join(dir, 'server.json'), '{"key":"CANARY-local-key"}\n');
  writeFileSync(join(dir, 'other-verdict.json'), JSON.stringify({ verdict: 'approved', reasons: ['CANARY-other-ticket'], edits: 0 }));
  const ticketDir = runFolder(dir, { 'plan.md': { link: join(dir, 'server.json') }, 'verdict.json': { link: join(dir, 'other-verdict.json') } });
  const body = pullRequestBody(TICKET, ticketDir, {}, 'bot/ticket-7');
  assert.doesNotMatch(body, /CANARY/);
  assert.match(body, /\(no plan\.md in the run folder\)/);
  assert.match(body, /\(no verdict\.json in the run folder\)/);

  // Regular files are read as before.
  const plain = runFolder(join(dir, 'plain'), {
    'plan.md': '# Plan\n\nRoot cause: the owner join.\n',
    'verdict.json': JSON.stringify({ verdict: 'approved', reasons: ['the test covers it'], edits: 1 }),
  });
  const ok = pullRequestBody(TICKET, plain, {}, 'bot/ticket-7');
  assert.match(ok, /Root cause: the owner join\./);
  assert.match(ok, /Verdict: approved, 1 edit\(s\) by the review/);
});

test('pull request body: a FIFO planted as plan.md is neither read nor waited on', (t) => {
  const dir = tempDir(t);
  const ticketDir = runFolder(dir, {});
  const fifo = join(ticketDir, 'agent', 'plan.md');
  execFileSync('mkfifo', [fifo]);
  // A writer at the other end, as the agent would leave one: a read through the FIFO would
  // get its text (without one, the open would wait for ever). Its own open waits for a
  // reader, which never comes: it is stopped after the test.
  const writer = spawn('sh', ['-c', 'printf CANARY-fifo >"$1"', 'sh', fifo], { stdio: 'ignore' });
  t.after(() => writer.kill('SIGKILL'));
  const body = pullRequestBody(TICKET, ticketDir, {}, 'bot/ticket-7');
  assert.doesNotMatch(body, /CANARY/);
  assert.match(body, /\(no plan\.md in the run folder\)/);
});

test('docs-search --pre-context replaces a link planted at the name, never writes through it', { timeout: 60_000 }, async (t) => {
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  mkdirSync(home, { recursive: true });
  const agent = join(home, 'agent');
  mkdirSync(agent);
  // ~/.bashrc, as far as the harness can tell: the operator's, and run at their next login.
  const bashrc = join(home, 'bashrc');
  writeFileSync(bashrc, 'export PS1=CANARY\n');
  const pre = join(agent, 'pre-context.md');
  symlinkSync(bashrc, pre);
  let err = '';
  const program = new Command('bugbot').exitOverride().configureOutput({ writeOut: () => {}, writeErr: (s) => (err += s) });
  registerDocsCommands(program, () => ({ home, target: { repo } }), undefined, { out: () => {}, err: (s) => (err += s) });
  await program.parseAsync(['node', 'bugbot', 'docs-search', 'stray owner', '--pre-context', pre, '--repo', repo]);
  assert.match(err, /wrote .*pre-context\.md/);
  assert.equal(readFileSync(bashrc, 'utf8'), 'export PS1=CANARY\n');
  assert.ok(lstatSync(pre).isFile(), 'the link was replaced by a regular file');
  assert.match(readFileSync(pre, 'utf8'), /Owners and strays/);
  // No temporary file is left beside it.
  assert.deepEqual(readdirSync(agent), ['pre-context.md']);
});
