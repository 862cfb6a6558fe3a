// Regression: outcome rows carried the whole `tool_input` of denied calls (a Write's file
// contents, whole commands) into outcomes.jsonl, the file people review. A refusal is now
// recorded at every step by its tool, reason and a short summary (the command, the path):
// the hook's denials.jsonl (harness/hooks/guard.mjs), the watcher's stats
// (harness/lib/run-phase.mjs), outcome.json (harness/lib/outcome.mjs), and the archive
// row (control/outcomes/archive.ts), where the summary is redacted as well. The harness
// scripts run for real here; a small script stands in for the Claude Code CLI.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildOutcomeRow, readOutcome } from '../../control/dispatcher/outcome.ts';
import { OutcomeArchive, archivedDenial, type OutcomeDenial, type OutcomeRow } from '../../control/outcomes/archive.ts';
import type { RunRow } from '../../control/queue/leases.ts';
import type { Ticket } from '../../control/types.ts';
// @ts-expect-error: plain JavaScript module without types (shared by the hook, the watcher and outcome.mjs)
import { clip, denialRecord } from '../../harness/lib/denial.mjs';
import { repoRoot, tempDir } from '../support/helpers.ts';

const GUARD = join(repoRoot, 'harness/hooks/guard.mjs');
const RUN_PHASE = join(repoRoot, 'harness/lib/run-phase.mjs');
const OUTCOME = join(repoRoot, 'harness/lib/outcome.mjs');

const ENV_CONTENT = 'DATABASE_URL=postgres://app:pw@db/x\nSTRIPE_KEY=sk_live_abcdefghijklmnopqrstuvwx\n';
const PUSH = 'git push https://deploy:hunter2hunter2@github.com/acme/shop.git HEAD:main';
/** A banned command over the summary limit, with a credential-bearing URL cut by the limit. */
const LONG = `git push origin HEAD:main ${'--verbose '.repeat(17)}https://deploy:s3cr3tPassw0rd@github.com/acme/shop.git`;
const SECRETS = ['DATABASE_URL', 'postgres://app:pw', 'sk_live_', 'hunter2hunter2', 's3cr3t'];

interface Setup {
  dir: string;
  worktree: string;
  ticketDir: string;
  policy: string;
}

function setup(t: Parameters<typeof tempDir>[0]): Setup {
  const dir = tempDir(t);
  const worktree = join(dir, 'worktrees', 'ticket-1-run-1');
  const ticketDir = join(dir, 'tickets', '1', 'run-1');
  mkdirSync(worktree, { recursive: true });
  mkdirSync(join(ticketDir, 'agent'), { recursive: true });
  const policy = join(dir, 'research.policy.json');
  writeFileSync(policy, JSON.stringify({ phase: 'research', worktree, ticketDir, ticketWrites: ['agent/plan.md'], writeRoots: [] }));
  return { dir, worktree, ticketDir, policy };
}

const hookInput = (tool: string, input: Record<string, unknown>) => JSON.stringify({ hook_event_name: 'PreToolUse', tool_name: tool, tool_input: input });

function assertNoSecret(text: string, where: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${where} holds ${s}:\n${text}`);
}

test('the hook records a denied Write by its path, never its contents', (t) => {
  const s = setup(t);
  const out = execFileSync(process.execPath, [GUARD, '--policy', s.policy], {
    input: hookInput('Write', { file_path: join(s.worktree, '.env'), content: ENV_CONTENT }),
    encoding: 'utf8',
  });
  assert.equal(JSON.parse(out).hookSpecificOutput.permissionDecision, 'deny');
  const rows = readFileSync(join(s.ticketDir, 'denials.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(rows.length, 1);
  assert.deepEqual(Object.keys(rows[0]!).sort(), ['at', 'by', 'phase', 'reason', 'summary', 'tool']);
  assert.equal(rows[0]!.summary, join(s.worktree, '.env'));
  assertNoSecret(JSON.stringify(rows), 'denials.jsonl');
});

test('a long command is cut short, and a word cut at the limit is dropped whole', () => {
  const d = denialRecord({ by: 'hook', tool: 'Bash', input: { command: LONG, description: 'push' }, reason: 'no' }) as OutcomeDenial;
  assert.ok(d.summary!.length <= 201, d.summary!);
  assert.ok(d.summary!.startsWith('git push origin HEAD:main'));
  assert.ok(d.summary!.endsWith('…'));
  assert.ok(!d.summary!.includes('https:'), `no part of the cut URL is kept: ${d.summary}`);
  assert.equal(clip('short', 200), 'short');
  assert.equal(denialRecord({ by: 'allowlist', tool: 'mcp__x__y', input: { blob: 'secret' } }).summary, null, 'no known field: nothing of the input');
});

test('a denied Write and a secret-bearing command reach neither the stats, outcome.json nor the archive row', (t) => {
  const s = setup(t);
  const envPath = join(s.worktree, '.env');
  // Stands in for `claude -p --output-format stream-json`: asks the real hook about each
  // call, as the CLI does, then reports the calls refused and the CLI's own denial list.
  const fake = join(s.dir, 'fake-claude.mjs');
  const calls = [
    { id: 't1', name: 'Write', input: { file_path: envPath, content: ENV_CONTENT } },
    { id: 't2', name: 'Bash', input: { command: PUSH, description: 'push' } },
    { id: 't3', name: 'Bash', input: { command: LONG, description: 'push' } },
  ];
  writeFileSync(
    fake,
    `import { execFileSync } from 'node:child_process';
const calls = ${JSON.stringify(calls)};
const emit = (e) => process.stdout.write(JSON.stringify(e) + '\\n');
emit({ type: 'system', subtype: 'init', mcp_servers: [] });
emit({ type: 'assistant', message: { model: 'm', usage: {}, content: calls.map((c) => ({ type: 'tool_use', ...c })) } });
for (const c of calls) {
  execFileSync(process.execPath, [${JSON.stringify(GUARD)}, '--policy', ${JSON.stringify(s.policy)}], { input: JSON.stringify({ tool_name: c.name, tool_input: c.input }) });
}
emit({ type: 'user', message: { content: calls.map((c) => ({ type: 'tool_result', tool_use_id: c.id, is_error: true, content: 'denied' })) } });
emit({ type: 'result', subtype: 'success', is_error: false, num_turns: 2, total_cost_usd: 0.01, result: 'done',
  permission_denials: [{ tool_name: 'Write', tool_use_id: 't1', tool_input: calls[0].input }] });
`,
  );
  const stats = join(s.ticketDir, 'stats-research.json');
  const r = spawnSync(
    process.execPath,
    [RUN_PHASE, '--phase', 'research', '--log', join(s.ticketDir, 'research.log'), '--stats', stats, '--ticket-dir', s.ticketDir, '--policy', s.policy, '--worktree', s.worktree, '--', process.execPath, fake],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(r.status, 0, r.stderr);

  const st = JSON.parse(readFileSync(stats, 'utf8')) as { denials: Array<Record<string, unknown>>; banned: Array<Record<string, unknown>> };
  assert.deepEqual(
    st.denials.map((d) => `${d.by}:${d.tool}`).sort(),
    ['allowlist:Write', 'hook:Bash', 'hook:Bash', 'hook:Write'],
  );
  for (const d of [...st.denials, ...st.banned]) assert.equal('input' in d, false, JSON.stringify(d));
  assert.ok(st.denials.some((d) => d.tool === 'Write' && d.summary === envPath));
  // The watcher's own copy drops contents and cuts commands; the archive redacts what is
  // left (lib/redact.ts is TypeScript, out of the hook's reach).
  const kept = JSON.stringify([st.denials, st.banned]);
  for (const x of ['DATABASE_URL', 'sk_live_', 's3cr3t']) assert.ok(!kept.includes(x), `stats hold ${x}: ${kept}`);

  execFileSync(process.execPath, [OUTCOME, s.ticketDir]);
  const outcome = readOutcome(s.ticketDir)!;
  assert.equal(outcome.denials.length, 4);
  for (const d of outcome.denials) assert.deepEqual(Object.keys(d).sort(), d.reason === undefined ? ['by', 'phase', 'summary', 'tool'] : ['by', 'phase', 'reason', 'summary', 'tool']);
  assert.ok(!readFileSync(join(s.ticketDir, 'outcome.json'), 'utf8').includes('DATABASE_URL'));

  const row = buildOutcomeRow({
    ticket: { id: 1, fingerprint: 'f', source: 'manual', service: null, firstSeen: '2026-11-21T10:00:00.000Z' } as Ticket,
    run: { id: 1, attempt: 1, worker_id: 1, branch: null, started_at: '2026-11-21T10:00:00.000Z' } as RunRow,
    outcome,
    state: 'failed',
    reason: 'test',
    model: null,
  });
  const archive = new OutcomeArchive(s.dir);
  archive.append(row);
  const line = readFileSync(archive.path, 'utf8');
  assertNoSecret(line, 'outcomes.jsonl');
  const [archived] = archive.readAll();
  const bash = archived!.denials.filter((d) => d.tool === 'Bash').map((d) => d.summary ?? '');
  assert.ok(bash.some((x) => x.startsWith('git push https://[REDACTED]@github.com/acme/shop.git')), bash.join('\n'));
  assert.ok(archived!.denials.some((d) => d.tool === 'Write' && d.summary === envPath && /protected|may only write/.test(d.reason ?? '')));
});

test('the archive drops the input of an older outcome and redacts summaries and reasons', (t) => {
  const home = tempDir(t);
  const legacy = {
    phase: 'implement',
    by: 'hook',
    tool: 'Write',
    input: { file_path: '.env', content: ENV_CONTENT },
    reason: 'bugbot guard: .env is protected',
  } as OutcomeDenial;
  const a = new OutcomeArchive(home, { redact: (x) => x.replace(/hunter2\w*/g, '[MASKED]') });
  a.append({ run_id: 1, denials: [legacy, { phase: 'research', by: 'hook', tool: 'Bash', summary: PUSH, reason: `refused ${PUSH}` }] } as OutcomeRow);
  const text = readFileSync(a.path, 'utf8');
  assertNoSecret(text, 'outcomes.jsonl');
  const [row] = a.readAll();
  assert.deepEqual(row!.denials[0], { phase: 'implement', by: 'hook', tool: 'Write', summary: '.env', reason: 'bugbot guard: .env is protected' });
  assert.match(row!.denials[1]!.summary!, /\[MASKED\]/);
  assert.match(row!.denials[1]!.reason!, /\[MASKED\]/);
  assert.equal(archivedDenial({ phase: 'p', by: 'cli', tool: 'WebFetch', summary: null }, (x) => x).summary, null);
  // The tool's name is the model's choice: redacted and clipped like its input.
  const named = archivedDenial({ phase: 'implement', by: 'cli', tool: `mcp__x__${'a'.repeat(500)}sk-live-123`, summary: null }, (x) => x.replace(/sk-live-\d+/g, '[MASKED]'));
  assert.equal(named.tool, `mcp__x__${'a'.repeat(112)}`);
  const masked = archivedDenial({ phase: 'implement', by: 'cli', tool: 'mcp__sk-live-123', summary: null }, (x) => x.replace(/sk-live-\d+/g, '[MASKED]'));
  assert.equal(masked.tool, 'mcp__[MASKED]');
});

test('by default the archive masks with the built-in redaction rules', (t) => {
  const a = new OutcomeArchive(tempDir(t));
  a.append({ run_id: 1, denials: [{ phase: 'research', by: 'hook', tool: 'Bash', summary: 'psql postgres://app:pw@db/x -c "select 1"', reason: 'no' }] } as OutcomeRow);
  assert.equal(a.readAll()[0]!.denials[0]!.summary, 'psql postgres://[REDACTED]@db/x -c "select 1"');
});

test("a row's reason is redacted too: it can quote git's words, with a remote's URL in them", (t) => {
  const a = new OutcomeArchive(tempDir(t));
  const reason = "push to staging failed after 5 attempts: fatal: unable to access 'https://bot:ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@github.com/acme/shop.git/'";
  a.append({ run_id: 1, reason, denials: [] } as unknown as OutcomeRow);
  const archived = a.readAll()[0]!.reason;
  assert.doesNotMatch(archived, /ghp_A|bot:/);
  assert.match(archived, /^push to staging failed after 5 attempts: fatal: unable to access 'https:\/\/\[REDACTED/);
});
