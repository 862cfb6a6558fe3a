/**
 * `docs index` and `docs-search` end to end through commander: each test builds a fresh
 * program with registerDocsCommands (control/cli.ts wires it into `bugbot` itself).
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command, CommanderError } from 'commander';
import { startEmbedServer } from '../../bench/docs/embed-server.ts';
import { registerDocsCommands, type DocsCommandConfig } from '../../control/docs-search/cli.ts';
import type { DocsSettings } from '../../control/docs-search/settings.ts';
import { SAMPLE_DOCS, settings, tempRepo } from './support.ts';

/** Run one command line; returns what it printed. Throws what the command throws. */
async function bugbot(args: string[], cfg: DocsCommandConfig, docs?: DocsSettings): Promise<{ out: string; err: string }> {
  let out = '';
  let err = '';
  const program = new Command('bugbot').exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
  registerDocsCommands(program, () => cfg, docs, { out: (s) => (out += s), err: (s) => (err += s) });
  await program.parseAsync(['node', 'bugbot', ...args]);
  return { out, err };
}

test('docs index reports scanned, changed, unchanged, removed and skipped files; --json says the same', async (t) => {
  const { repo, home } = tempRepo(t, { ...SAMPLE_DOCS, 'docs/empty.md': '' });
  const cfg = { home, target: { repo } };
  const first = await bugbot(['docs', 'index'], cfg);
  assert.match(first.out, /scanned 4 file\(s\): 4 changed, 0 unchanged, 0 removed, 1 skipped; vectors off \(no embeddings endpoint\); \d+ ms/);
  assert.match(first.out, /index .*docs-index.*\.db: 3 file\(s\), 5 chunks, 0 vectors/);
  assert.match(first.out, /skipped docs\/empty\.md: empty/);

  const json = JSON.parse((await bugbot(['docs', 'index', '--json'], cfg)).out) as Record<string, unknown>;
  assert.deepEqual([json.scanned, json.changed, json.unchanged, json.chunks], [4, 0, 4, 5]);
  assert.match(String(json.indexPath), new RegExp(`^${home}/docs-index/[0-9a-f]{16}\\.db$`));

  await assert.rejects(bugbot(['docs', 'index', '--repo', join(repo, 'nope')], cfg), (e: CommanderError) => e.exitCode === 2);
});

test('docs-search in a repository with no docs says which files it looks for, not to index again', async (t) => {
  const { repo, home } = tempRepo(t, { 'src/main.ts': 'export {};\n' });
  const cfg = { home, target: { repo } };
  const r = await bugbot(['docs-search', 'checkout crash'], cfg);
  assert.equal(r.out, 'the docs index is empty: no file of the repository matches docs.globs (docs/**/*.md, CLAUDE.md); write docs there, or set docs.globs\n');
  assert.equal((await bugbot(['docs-search', 'checkout crash', '--no-refresh'], cfg)).out, 'the docs index is empty (run: bugbot docs index)\n');
});

test('docs-search prints ranked sections; --json, --k, --query-file and --pre-context', async (t) => {
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const cfg = { home, target: { repo: join(home, 'elsewhere') } };
  const text = await bugbot(['docs-search', 'customer charged twice: "duplicate" (retry*', '--repo', repo], cfg);
  assert.match(text.out, /^1\. docs\/payments\.md:7 {2}Payments › Duplicate deliveries {2}\[/);
  assert.match(text.out, /why: heading matches .*duplicate/);

  const json = JSON.parse((await bugbot(['docs-search', 'stray owner', '--json', '-k', '1', '--repo', repo], cfg)).out) as { hits: Array<{ heading: string }>; mode: string };
  assert.deepEqual([json.hits.length, json.hits[0]!.heading, json.mode], [1, 'Owners and strays', 'fts']);

  const ticket = join(home, 'ticket.md');
  writeFileSync(ticket, '# Ticket 7: pet search misses words\n\nSearching pets by name ignores the second word.\n');
  const pre = join(home, 'pre-context.md');
  const r = await bugbot(['docs-search', '--query-file', ticket, '--pre-context', pre, '--repo', repo], cfg);
  assert.match(r.err, /wrote .*pre-context\.md \(\d section\(s\), \d+ bytes\)/);
  const md = readFileSync(pre, 'utf8');
  assert.match(md, /## 1\. `docs\/pets\.md` › Pets API › Search \(line 7\)/);
  assert.ok(Buffer.byteLength(md) <= settings().preContextBytes);

  await assert.rejects(bugbot(['docs-search'], cfg), (e: CommanderError) => e.exitCode === 2 && /--query-file/.test(e.message));
  await assert.rejects(bugbot(['docs-search', 'x', '-k', '0'], cfg), CommanderError);
  // A huge k was SQLite's "datatype mismatch" (exit 1), and past 4096 the vector search failed as if the endpoint had.
  await assert.rejects(bugbot(['docs-search', 'x', '-k', '99999999999999999999', '--repo', repo], cfg), (e: CommanderError) => /from 1 to 1000/.test(e.message));
  assert.match((await bugbot(['docs-search', 'stray', '-k', '1000', '--repo', repo], cfg)).out, /Owners and strays/);
});

test('docs-search refreshes the index first: an edited doc is found without running docs index', async (t) => {
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const cfg = { home, target: { repo } };
  await bugbot(['docs', 'index'], cfg);
  writeFileSync(join(repo, 'docs/refunds.md'), '# Refunds\n\n## Partial refunds\n\nA partial refund keeps the order open.\n');
  assert.match((await bugbot(['docs-search', 'partial refund'], cfg)).out, /docs\/refunds\.md/);
  assert.doesNotMatch((await bugbot(['docs-search', 'anything at all', '--no-refresh'], cfg)).out, /refunds/);
});

test('with --pre-context nothing fails the ticket: a broken index or endpoint becomes a warning in the file', async (t) => {
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  mkdirSync(join(home, 'not-a-db'), { recursive: true });
  const broken = settings({ indexPath: 'not-a-db' });
  const pre = join(home, 'pre.md');
  const r = await bugbot(['docs-search', 'duplicate', '--pre-context', pre], { home, target: { repo } }, broken);
  assert.match(r.err, /warning: docs retrieval failed: the docs index .*not-a-db could not be opened for writing \(unable to open database file\): bugbot must be able to write it and its folder/);
  assert.equal(r.out, 'nothing was searched: docs retrieval failed (see the warning)\n', 'the log says so too, not that the index is empty');
  assert.match(readFileSync(pre, 'utf8'), /> \*\*Warning:\*\* docs retrieval failed: .*\n[\s\S]*Nothing was retrieved \(see the warning above\)/);
  assert.doesNotMatch(readFileSync(pre, 'utf8'), /The docs index is empty/, 'a failure is not an empty index');

  // An index SQLite cannot read (overwritten, a crash on a full disk) is moved aside and built again.
  const corrupt = settings({ indexPath: 'corrupt.db' });
  writeFileSync(join(home, 'corrupt.db'), 'garbage, not a database '.repeat(200));
  const fixed = await bugbot(['docs-search', 'duplicate deliveries', '--pre-context', pre], { home, target: { repo } }, corrupt);
  assert.match(fixed.err, /warning: the docs index .*corrupt\.db could not be read .*moved to .*corrupt\.db\.corrupt-\d+ and built again/);
  assert.match(readFileSync(pre, 'utf8'), /Duplicate deliveries/);
  await assert.rejects(bugbot(['docs-search', 'duplicate'], { home, target: { repo } }, broken));

  const gone = { home, target: { repo: join(home, 'no-such-worktree') } };
  await assert.rejects(bugbot(['docs-search', 'duplicate'], gone), (e: CommanderError) => e.exitCode === 2);
  await bugbot(['docs-search', 'duplicate', '--pre-context', pre], gone);
  assert.match(readFileSync(pre, 'utf8'), /could not refresh the docs index: .*no-such-worktree is not a directory/);

  const srv = await startEmbedServer();
  t.after(() => srv.close());
  srv.failWith = 502;
  const down = settings({ embeddings: { baseURL: srv.baseURL, maxRetries: 0 } });
  await bugbot(['docs-search', 'duplicate deliveries', '--pre-context', pre], { home, target: { repo } }, down);
  const md = readFileSync(pre, 'utf8');
  assert.match(md, /embeddings endpoint .* failed: HTTP 502/);
  assert.match(md, /Duplicate deliveries/);
});

test('an index damaged past its header is moved aside and built again, not failed on by every run', async (t) => {
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const cfg = { home, target: { repo } };
  const { indexPath } = JSON.parse((await bugbot(['docs', 'index', '--json'], cfg)).out) as { indexPath: string };
  // A torn page of the files table: the header and schema read fine, the first query of the refresh does not.
  const smash = () => {
    const db = new Database(indexPath);
    const page = db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'files'").pluck().get() as number;
    const size = db.pragma('page_size', { simple: true }) as number;
    db.close();
    const fd = openSync(indexPath, 'r+');
    writeSync(fd, Buffer.alloc(size, 0xa5), 0, size, (page - 1) * size);
    closeSync(fd);
  };
  smash();
  const pre = join(home, 'pre.md');
  const r = await bugbot(['docs-search', 'duplicate deliveries', '--pre-context', pre], cfg);
  assert.match(r.err, /warning: the docs index .* could not be read \(database disk image is malformed\): moved to .*\.corrupt-\d+ and built again/);
  assert.match(readFileSync(pre, 'utf8'), /Duplicate deliveries/);
  assert.doesNotMatch(readFileSync(pre, 'utf8'), /retrieval failed/);

  smash();
  const again = await bugbot(['docs', 'index'], cfg);
  assert.match(again.err, /moved to .*\.corrupt-\d+ and built again/);
  assert.match(again.out, /3 file\(s\), 5 chunks/);
  assert.match((await bugbot(['docs-search', 'stray owner', '--no-refresh'], cfg)).out, /Owners and strays/);
});

test("what the repository's docs say reaches the terminal with its control characters shown, never obeyed", async (t) => {
  // An escape sequence in a doc (OSC 52 sets the clipboard) and a line break in a file name forging a line.
  const evil = '\x1b]52;c;cm0gLXJmIH4=\x07';
  const { repo, home } = tempRepo(t, {
    [`docs/stray\n1. docs/ok.md:1  Forged  [9.0]\u202e.md`]: `# Strays ${evil}\n\n## Owner ${evil}\n\nA stray has no owner. ${evil}\u009b2J\n`,
    'docs/\x1b[2J.md': '',
  });
  const cfg = { home, target: { repo } };
  const index = await bugbot(['docs', 'index'], cfg);
  const search = await bugbot(['docs-search', 'stray owner'], cfg);
  const json = await bugbot(['docs-search', 'stray owner', '--json'], cfg);
  for (const out of [index.out, search.out, json.out]) {
    // eslint-disable-next-line no-control-regex -- control characters are what must not be there
    assert.doesNotMatch(out, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/, out);
  }
  assert.match(search.out, /^1\. docs\/stray\\x0a1\. docs\/ok\.md:1 {2}Forged {2}\[9\.0\]\\u202e\.md:3 {2}Strays \\x1b\]52;c;cm0gLXJmIH4=\\x07 › Owner/);
  assert.match(search.out, /A stray has no owner\. \\x1b\]52;c;cm0gLXJmIH4=\\x07\\x9b2J/);
  assert.equal(search.out.split('\n').filter((l) => /^\d+\. /.test(l)).length, 1, 'one hit, one line');
  assert.match(index.out, /skipped docs\/\\x1b\[2J\.md: empty/);
  const parsed = JSON.parse(json.out) as { hits: Array<{ path: string; text: string }> };
  assert.ok(parsed.hits[0]!.text.includes(`${evil}\u009b2J`), 'the JSON reader gets the text as it is');
});

test('settings and the API key come from the loaded config when it has them', async (t) => {
  const srv = await startEmbedServer();
  t.after(() => srv.close());
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const cfg: DocsCommandConfig = {
    home,
    target: { repo },
    docs: settings({ embeddings: { baseURL: srv.baseURL, apiKeyEnv: 'DOCS_TEST_KEY' } }),
    secrets: { get: (name) => (name === 'DOCS_TEST_KEY' ? 'sk-from-config' : undefined) },
  };
  const r = await bugbot(['docs-search', 'stray owner', '--pre-context', join(home, 'pre.md')], cfg, settings());
  assert.equal(srv.lastAuthorization, 'Bearer sk-from-config');
  assert.match(r.out, /semantic match/);
  assert.match(readFileSync(join(home, 'pre.md'), 'utf8'), /fused with semantic search/);
});
