// Review finding (model triage, phase 0): the classifier's timeout killed only the process
// it spawned. With `harness.claude` a wrapper that runs the CLI as its child, timeout 1 s
// and concurrency 2, two rounds of calls left 4 CLIs running (the limit freed at each
// timeout, not when the processes were gone) and 4 bugbot-triage-* folders behind.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { REPO_ROOT } from '../../control/dispatcher/phases.ts';
import { createModelClassifier, KILL_GRACE_MS } from '../../control/intake/model-classifier.ts';
import { tempDir, waitFor } from '../support/helpers.ts';

/**
 * A `claude` shim that runs "the CLI" (a sleep) as its child and writes both pids down.
 * With an answer file it prints that answer and exits, leaving a helper behind; without,
 * it ignores SIGTERM (as does its child, which inherits that) and never answers.
 */
const WRAPPER = `#!/bin/bash
echo $$ >> "$PIDS_FILE"
if [ -e "$ANSWER_FILE" ]; then
  sleep 30 >/dev/null 2>&1 &
  echo $! >> "$PIDS_FILE"
  cat "$ANSWER_FILE"
  exit 0
fi
trap '' TERM
sleep 30 &
echo $! >> "$PIDS_FILE"
wait
`;

/** Whether a process still runs (a zombie, killed but not yet reaped, does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** The classifier's temp folders go under a folder of this test's own (TMPDIR), to be counted. */
function ownTmp(t: TestContext): { dir: string; folders: () => string[] } {
  const dir = tempDir(t);
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  t.after(() => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
  });
  return { dir, folders: () => readdirSync(dir).filter((f) => f.startsWith('bugbot-triage-')) };
}

test('a timed-out CLI keeps its slot until its whole process group is gone, and leaves no folder', { timeout: 30_000 }, async (t) => {
  const tmp = ownTmp(t);
  const wrapper = join(tmp.dir, 'claude-shim.sh');
  writeFileSync(wrapper, WRAPPER);
  chmodSync(wrapper, 0o755);
  const pidsFile = join(tmp.dir, 'pids');
  const answerFile = join(tmp.dir, 'answer.json');
  const pids = () => (existsSync(pidsFile) ? readFileSync(pidsFile, 'utf8').trim().split('\n').map(Number) : []);
  // Whatever a failed run leaves is ended here, by the pids the shim wrote.
  t.after(() => pids().forEach((pid) => alive(pid) && process.kill(pid, 'SIGKILL')));
  const classify = createModelClassifier({
    claude: wrapper,
    promptsDir: join(REPO_ROOT, 'prompts'),
    env: { PIDS_FILE: pidsFile, ANSWER_FILE: answerFile },
    timeoutMs: 300,
    concurrency: 2,
  });

  const stuck = await Promise.all([classify('Checkout fails with a 500'), classify('Export is broken')]);
  for (const r of stuck) assert.match(r.reason, /model classifier unavailable: no answer within 300 ms/);
  await waitFor(() => pids().length === 4, 5_000, 'both shims and their children');

  // Two calls' processes still run: a third starts none, and the rules decide.
  const third = await classify('Login is broken');
  assert.equal(third.by, 'rules');
  assert.match(third.reason, /model classifier busy: 2 call\(s\) under way/);
  assert.equal(pids().length, 4, 'no third CLI was started');

  await waitFor(() => pids().every((pid) => !alive(pid)), KILL_GRACE_MS + 5_000, 'the process groups killed after the grace period');
  await waitFor(() => tmp.folders().length === 0, 5_000, 'the temp folders removed');

  // The slots are free again; an answering CLI's leftover helper goes with it.
  writeFileSync(answerFile, JSON.stringify({ structured_output: { classification: 'question', reason: 'asks how to export' } }));
  const answered = await classify('How do I export my invoices?');
  assert.equal(answered.by, 'model', answered.reason);
  assert.equal(answered.classification, 'question');
  assert.equal(pids().length, 6);
  await waitFor(() => pids().every((pid) => !alive(pid)), 5_000, 'the helper the CLI left behind killed');
  await waitFor(() => tmp.folders().length === 0, 5_000, 'the temp folder removed');
});

test('a CLI that cannot be started leaves no folder and gives its slot back', async (t) => {
  const tmp = ownTmp(t);
  for (const claude of [join(tmp.dir, 'no-such-claude'), 'claude\0']) {
    const classify = createModelClassifier({ claude, promptsDir: join(REPO_ROOT, 'prompts'), env: {}, concurrency: 1 });
    for (const text of ['Checkout fails with a 500', 'Export is broken']) {
      const r = await classify(text);
      assert.equal(r.by, 'rules');
      assert.match(r.reason, /model classifier unavailable/, 'not busy: the slot was given back');
    }
    await waitFor(() => tmp.folders().length === 0, 5_000, `no temp folder left by ${JSON.stringify(claude)}`);
  }
});

// Review finding: a CLI that left a process outside its group (setsid, a daemon) holding
// its output kept its slot for good: 'close' never came, and the group kill cannot reach it.
test('a CLI that leaves a process of its own session holding its output still answers and gives its slot back', { timeout: 30_000 }, async (t) => {
  const tmp = ownTmp(t);
  const cli = join(tmp.dir, 'claude-escapes.sh');
  const pidFile = join(tmp.dir, 'escaped.pid');
  writeFileSync(cli, `#!/bin/bash\nsetsid sleep 20 &\necho $! > "${pidFile}"\ncat >/dev/null\necho '{"structured_output":{"classification":"bug","reason":"checkout fails"}}'\n`);
  chmodSync(cli, 0o755);
  t.after(() => {
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      // gone already
    }
  });
  const classify = createModelClassifier({ claude: cli, promptsDir: join(REPO_ROOT, 'prompts'), env: {}, concurrency: 1, timeoutMs: 5_000 });
  const first = await classify('Checkout fails with a 500');
  assert.equal(first.by, 'model', first.reason);
  const second = await classify('Export is broken');
  assert.equal(second.by, 'model', 'the slot was given back');
  await waitFor(() => tmp.folders().length === 0, 5_000, 'the temp folder removed');
});

/** A `claude` that answers at once with `answer`, and counts its calls in `calls`. */
function answeringCli(dir: string, answer: string): { cli: string; calls: () => number } {
  const cli = join(dir, 'claude-answers.sh');
  const callsFile = join(dir, 'calls');
  writeFileSync(cli, `#!/bin/bash\ncat >/dev/null\necho x >> "${callsFile}"\nprintf '%s' '${answer}'\n`);
  chmodSync(cli, 0o755);
  return { cli, calls: () => (existsSync(callsFile) ? readFileSync(callsFile, 'utf8').trim().split('\n').length : 0) };
}

// Review finding: only the calls at once were limited. Each report of a flood of emails
// (anyone can write to the bug inbox, and a report can ask the model to think at length)
// was a model call of its own, one after another, for as long as the flood lasted.
test('calls beyond the hourly limit go to the rules, saying so, until an hour has passed', async (t) => {
  const tmp = ownTmp(t);
  const { cli, calls } = answeringCli(tmp.dir, JSON.stringify({ structured_output: { classification: 'question', reason: 'asks how to export' } }));
  let clock = Date.parse('2025-03-01T10:00:00Z');
  const classify = createModelClassifier({ claude: cli, promptsDir: join(REPO_ROOT, 'prompts'), env: {}, callsPerHour: 2, now: () => clock });
  for (let i = 0; i < 2; i++) assert.equal((await classify('How do I export my invoices?')).by, 'model');
  clock += 30 * 60_000;
  const over = await classify('Checkout fails with a 500 error');
  assert.equal(over.by, 'rules');
  assert.equal(over.classification, 'bug');
  assert.match(over.reason, /\(model classifier over its limit: 2 calls in the last hour\)$/);
  assert.equal(calls(), 2, 'no CLI started beyond the limit');
  clock += 30 * 60_000;
  const again = await classify('How do I export my invoices?');
  assert.equal(again.by, 'model', again.reason);
  assert.equal(calls(), 3);
});

// Review finding: the CLI's output was decoded read by read, so a character cut between two
// reads reached the ticket's reason as replacement characters.
test("a character cut between two of the CLI's writes is read whole", async (t) => {
  const tmp = ownTmp(t);
  const cli = join(tmp.dir, 'claude-split.sh');
  // 日 is E6 97 A5 in UTF-8: its first byte ends the first write.
  writeFileSync(cli, `#!/bin/bash\ncat >/dev/null\nprintf '{"structured_output":{"classification":"bug","reason":"\\xe6'\nsleep 0.3\nprintf '\\x97\\xa5本の表示が壊れている"}}'\n`);
  chmodSync(cli, 0o755);
  const classify = createModelClassifier({ claude: cli, promptsDir: join(REPO_ROOT, 'prompts'), env: {} });
  const r = await classify('日本の表示が壊れている');
  assert.equal(r.by, 'model', r.reason);
  assert.equal(r.reason, 'model: 日本の表示が壊れている');
});
