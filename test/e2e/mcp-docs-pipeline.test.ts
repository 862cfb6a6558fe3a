/**
 * The pipeline with its MCP servers and docs loop, REAL Claude Code CLI:
 * - research calls the browser, Loki (file backend) and database (SQLite) tools
 *   through the CLI, and their results are in the transcript;
 * - phase 0 writes a pre-context naming the right doc; the docs phase edits that doc
 *   and the auto-load table; the next ticket's pre-context sees the new text.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ConfigFile } from '../../control/config.ts';
import { waitFor } from '../support/helpers.ts';
import { happyPathScripts, readOutcomes, setupPipeline, strayOwnerAlert, worktreeOf } from '../support/pipeline.ts';
import { startBugbot } from '../support/process.ts';
import { say, tool, type Step } from '../support/scripted-model.ts';

function toolResults(transcript: string): Map<string, string> {
  const names = new Map<string, string>();
  const out = new Map<string, string>();
  for (const line of transcript.split('\n').filter(Boolean)) {
    const e = JSON.parse(line) as { type: string; message?: { content?: Array<Record<string, unknown>> } };
    for (const b of e.message?.content ?? []) {
      if (b.type === 'tool_use') names.set(String(b.id), String(b.name));
      if (b.type === 'tool_result') out.set(names.get(String(b.tool_use_id)) ?? '?', JSON.stringify(b.content));
    }
  }
  return out;
}

test('MCP tools through the real CLI, and the docs loop from one ticket to the next', { timeout: 300_000 }, async (t) => {
  const envBase = await setupPipeline(t);
  const dir = envBase.dir;
  // Logs for the Loki file backend, and a small production-like database with a sensitive column.
  const logFile = join(dir, 'petshop.log');
  writeFileSync(
    logFile,
    [
      { time: new Date(Date.now() - 60_000).toISOString(), level: 'info', service: 'petshop', msg: 'GET /api/pets/5', user_id: 'u-42' },
      { time: new Date(Date.now() - 30_000).toISOString(), level: 'error', service: 'petshop', msg: "TypeError: Cannot read properties of undefined (reading 'name')", user_id: 'u-42' },
    ]
      .map((l) => JSON.stringify(l))
      .join('\n') + '\n',
  );
  const dbFile = join(dir, 'prod.sqlite');
  const db = new Database(dbFile);
  db.exec(`CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT, owner_email TEXT);
           INSERT INTO pets VALUES (5, 'Pet 5', 'CANARY-owner@example.com');`);
  db.close();
  const config = JSON.parse(readFileSync(envBase.configPath, 'utf8')) as ConfigFile & { target: Record<string, unknown> };
  // Fixes land on staging and the next ticket starts from staging: the docs loop needs both on one line.
  config.target.baseBranch = 'staging';
  config.mcp = {
    loki: { files: [logFile] },
    db: { driver: 'sqlite', sqlitePath: dbFile, tables: { pets: ['id', 'name'] }, sensitive: { pets: ['owner_email'] } },
  };
  writeFileSync(envBase.configPath, JSON.stringify(config, null, 2));
  envBase.target.git('push', '--quiet', 'origin', 'main:staging');

  const happy = happyPathScripts(envBase);
  const mcpCalls: Step[] = [
    tool('mcp__browser__browser_navigate', { url: '/api/pets/5' }),
    tool('mcp__loki__loki_query', { labels: { service: 'petshop' }, time_range: '1h', contains: 'TypeError' }),
    tool('mcp__db__db_query', { sql: 'SELECT id, name FROM pets WHERE id = 5' }),
    tool('mcp__db__db_query', { sql: 'SELECT owner_email FROM pets' }),
  ];
  envBase.model.script('research', [...mcpCalls, ...happy.research!]);
  envBase.model.script('implement', happy.implement!);
  envBase.model.script('review', happy.review!);
  // Docs: the happy-path doc edit plus a new row in the auto-load table.
  envBase.model.script('docs', [
    ...happy.docs!.slice(0, 2),
    (req) => tool('Read', { file_path: join(worktreeOf(envBase, req), 'CLAUDE.md') }),
    (req) =>
      tool('Edit', {
        file_path: join(worktreeOf(envBase, req), 'CLAUDE.md'),
        old_string: '| pets API, owners, strays | docs/pets-api.md |',
        new_string: '| pets API, owners, strays, null owner crash | docs/pets-api.md |',
      }),
    tool('Bash', { command: 'git add -A && git commit -m "docs: strays have no owner"', description: 'commit docs' }),
    say('Docs updated.'),
  ]);

  const bugbot = await startBugbot(t, { configPath: envBase.configPath, env: envBase.env });
  await fetch(`${bugbot.url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(strayOwnerAlert()) });
  await waitFor(() => readOutcomes(envBase.home).length === 1, 200_000, 'the first run');
  const first = readOutcomes(envBase.home)[0] as { state: string; reason: string };
  assert.equal(first.state, 'pushed', first.reason);

  const run1 = join(envBase.home, 'tickets', '1', 'run-1');
  const results = toolResults(readFileSync(join(run1, 'stage-research.jsonl'), 'utf8'));
  assert.match(results.get('mcp__browser__browser_navigate') ?? '', /200|Pet 5|api\/pets\/5/, results.get('mcp__browser__browser_navigate'));
  assert.match(results.get('mcp__loki__loki_query') ?? '', /Cannot read properties of undefined/);
  const dbOut = [...readFileSync(join(run1, 'stage-research.jsonl'), 'utf8').matchAll(/"tool_result"[^\n]*/g)].map((m) => m[0]).join('\n');
  assert.match(dbOut, /Pet 5/);
  assert.match(dbOut, /owner_email/, 'the refusal names the column');
  assert.doesNotMatch(dbOut, /CANARY-owner/, 'the sensitive value never reaches the transcript');
  const stats = JSON.parse(readFileSync(join(run1, 'stats-research.json'), 'utf8')) as { mcp_servers: Array<{ name: string; status: string }> };
  assert.deepEqual(stats.mcp_servers.map((s) => `${s.name}:${s.status}`).sort(), ['browser:connected', 'db:connected', 'loki:connected']);

  // Phase 0 named the right doc for this bug.
  const pre1 = readFileSync(join(run1, 'agent', 'pre-context.md'), 'utf8');
  assert.match(pre1, /docs\/pets-api\.md/);
  // The docs phase changed the doc and the auto-load table on staging.
  assert.match(envBase.target.originGit('show', 'staging:CLAUDE.md'), /null owner crash \| docs\/pets-api\.md/);

  // The next ticket about the same area sees the new text in its pre-context.
  envBase.model.script('research', [say('No plan: this check only needs phase 0.')]);
  await fetch(`${bugbot.url}/api/tickets`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Pets without an owner show an error', message: 'Opening a stray pet page dereferences the owner' }),
  });
  await waitFor(() => readOutcomes(envBase.home).length === 2, 120_000, 'the second run');
  const pre2 = readFileSync(join(envBase.home, 'tickets', '2', 'run-2', 'agent', 'pre-context.md'), 'utf8');
  assert.match(pre2, /must never dereference `owner` without checking it/);
});
