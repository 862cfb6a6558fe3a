/**
 * What the dashboard reads of the files the agent writes in its run's `agent/` folder
 * (plan.md, verdict.json, the review's diff.patch): only as files, never through a link
 * the agent planted there, and diff.patch only where the fix's own diff cannot be had.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createGitTarget, fileTicket, finishAwaiting, pushFixBranch } from '../support/approval.ts';
import { buildTestApp, tempDir } from '../support/helpers.ts';

// The agent's sandbox hides the local key (server.json) from it, but lets it write agent/,
// and this process, which reads the key, showed plan.md as what the link pointed at: on a
// page any program on loopback may fetch, the dev server running the agent's code too.
test("a link the agent planted in its agent/ folder is not followed: the key in server.json stays off the ticket and approvals pages", async (t) => {
  const key = randomBytes(24).toString('base64url');
  const { app, intake, store, config } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' } }, localKey: key });
  const serverJson = join(config.home, 'server.json');
  writeFileSync(serverJson, JSON.stringify({ pid: process.pid, url: 'http://127.0.0.1:7777', key }) + '\n', { mode: 0o600 });
  const id = fileTicket(intake, 'Linked plan', 'it broke');
  const { ticketDir } = finishAwaiting({ store, config, ticketId: id });
  for (const name of ['plan.md', 'verdict.json', 'diff.patch']) {
    rmSync(join(ticketDir, 'agent', name), { force: true });
    symlinkSync(serverJson, join(ticketDir, 'agent', name));
  }
  for (const path of [`/tickets/${id}`, '/approvals']) {
    const res = await app.request(`http://localhost${path}`);
    assert.equal(res.status, 200, path);
    const html = await res.text();
    assert.ok(!html.includes(key), `${path} shows the file the link points at`);
    assert.doesNotMatch(html, /unreadable verdict\.json|&quot;url&quot;/, path);
  }
  assert.match(await (await app.request(`http://localhost/tickets/${id}`)).text(), /No plan \(research did not write one\)/);

  // The agent's own files, as files, are shown as before.
  rmSync(join(ticketDir, 'agent', 'plan.md'));
  writeFileSync(join(ticketDir, 'agent', 'plan.md'), '# Plan\n\nRoot cause: the basket forgets its last item.\n');
  assert.match(await (await app.request(`http://localhost/tickets/${id}`)).text(), /Root cause: the basket forgets its last item\./);
});

// diff.patch is the agent's to write (after the review read it too): shown in place of the
// fix's diff whenever git gave none, it stood for a commit still there, which Approve merges.
test("the review's diff.patch stands in only for a fix no longer in the repository, not for one git could not diff", async (t) => {
  const dir = tempDir(t);
  const target = createGitTarget(dir);
  const { app, intake, store, config } = buildTestApp(t, {
    flags: { intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' }, target: { repo: target.repo, baseBranch: 'release' } },
  });
  const id = fileTicket(intake, 'Greeting', 'it broke');
  const fix = finishAwaiting({ store, config, ticketId: id }, (branch) => pushFixBranch(target, branch, 'greeting.txt', 'hello, fixed\n'));
  const fake = ['diff --git a/README.md b/README.md', '--- a/README.md', '+++ b/README.md', '@@ -1 +1 @@', '-typo', '+typo fixed', ''].join('\n');
  writeFileSync(join(fix.ticketDir, 'agent', 'diff.patch'), fake);
  for (const path of [`/tickets/${id}`, '/approvals']) {
    const html = await (await app.request(`http://localhost${path}`)).text();
    assert.doesNotMatch(html, /typo fixed|the diff the review phase saw/, `${path}: the fix's commit is there; the agent's file is not its diff`);
    assert.match(html, /No diff: the base branch release is not in the target repository/, path);
  }
  // Once the fix's commit and branch are gone, the diff the review saw is all there is.
  target.git('branch', '-D', fix.branch);
  target.git('update-ref', '-d', `refs/remotes/origin/${fix.branch}`);
  target.originGit('branch', '-D', fix.branch);
  target.git('gc', '--quiet', '--prune=now');
  writeFileSync(join(fix.ticketDir, 'push.env'), `branch=${fix.branch}\ncommit=${'e'.repeat(40)}\n`);
  const gone = await (await app.request(`http://localhost/tickets/${id}`)).text();
  assert.match(gone, /the diff the review phase saw against release/);
  assert.match(gone, /typo fixed/);
});
