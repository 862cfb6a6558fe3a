/**
 * Markdown chunking and file reading: headings and their paths, code fences, huge
 * sections and files, broken markdown, empty and binary files, globs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { chunkMarkdown } from '../../control/docs-search/chunk.ts';
import { findDocFiles, globToRegExp, readDocFile } from '../../control/docs-search/files.ts';
import { indexDocs } from '../../control/docs-search/index.ts';
import { searchDocs } from '../../control/docs-search/search.ts';
import { repoRoot } from '../support/helpers.ts';
import { openStore, settings, tempRepo } from './support.ts';

const opts = { maxChunkChars: 2000, maxChunks: 400 };

test('chunks follow ATX and setext headings, with the heading path', () => {
  const md = ['Intro text.', '', '# Title', '', 'About.', '', '## Setup', 'Install it.', '', 'Usage', '-----', '', 'Run it.', '', '### Flags', '', '--fast', '', '# Other', 'x'].join('\n');
  const { chunks } = chunkMarkdown(md, opts);
  assert.deepEqual(
    chunks.map((c) => [c.headingPath.join(' > '), c.line]),
    [
      ['', 1],
      ['Title', 3],
      ['Title > Setup', 7],
      ['Title > Usage', 10],
      ['Title > Usage > Flags', 15],
      ['Other', 19],
    ],
  );
  assert.equal(chunks[3]!.heading, 'Usage');
  assert.match(chunks[2]!.text, /^## Setup\nInstall it\.$/);
});

test('a # line inside a code fence is code, and the fence stays in its section', () => {
  const md = ['# Deploy', '', '```sh', '# not a heading', 'make deploy', '```', '', '~~~~', '## still code', '~~~~', '', '## Rollback', 'undo'].join('\n');
  const { chunks, notes } = chunkMarkdown(md, opts);
  assert.deepEqual(chunks.map((c) => c.heading), ['Deploy', 'Rollback']);
  assert.match(chunks[0]!.text, /# not a heading[\s\S]*## still code/);
  assert.deepEqual(notes, []);
});

test('broken markdown: an unclosed fence is text, so later headings still count; odd headings never throw', () => {
  const md = ['# A', '```js', 'let x = 1;', '', '## B', 'text', '#no-space is not a heading', '####### seven hashes', '## C ##', '---', '=== alone'].join('\n');
  const { chunks, notes } = chunkMarkdown(md, opts);
  assert.deepEqual(chunks.map((c) => c.heading), ['A', 'B', 'C']);
  assert.match(notes.join(), /unclosed code fence at line 2/);
  assert.match(chunks[1]!.text, /#no-space is not a heading\n####### seven hashes/);
});

test('a crafted doc line is chunked in time in line with its length; closing #s still go', () => {
  // "#", 10,000 spaces and a U+2028 once took 200 s, and 100 KB hours. In a process of its
  // own with a limit: a backtracking pattern would hold this thread.
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/support/crafted-text.ts', 'chunk'], { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.stdout, 'ok\n', `crafted docs were not chunked within 20 s (${r.signal ?? `status ${r.status}`}): ${r.stderr}`);
  const heads = ['# Title ##', '## Title ##  ', '## C#', '# a # b', '#\tTab', '#   ', '# #', '  ### Deep  #'].map((h) => chunkMarkdown(`${h}\n\ntext`, opts).chunks[0]!.heading);
  assert.deepEqual(heads, ['Title', 'Title', 'C#', 'a # b', 'Tab', '(untitled)', '(untitled)', 'Deep']);
  assert.deepEqual(chunkMarkdown('# A\n\n```js \u2028\n# code\n```\n\n## B\nx', opts).chunks.map((c) => c.heading), ['A', 'B'], 'an opener with a U+2028 in its info string opens');
});

test('front matter is skipped and is not read as a setext heading', () => {
  const { chunks } = chunkMarkdown(['---', 'title: x', 'tags: [a]', '---', '# Real', 'body'].join('\n'), opts);
  assert.deepEqual(chunks.map((c) => [c.heading, c.line]), [['Real', 5]]);
});

test('a huge section is split at paragraphs, lines and mid-line, never over the limit, same heading', () => {
  const para = (n: number) => `word${n} `.repeat(40).trim();
  const md = ['# Big', '', ...Array.from({ length: 30 }, (_, i) => `${para(i)}\n`), 'x'.repeat(1500)].join('\n');
  const { chunks } = chunkMarkdown(md, { maxChunkChars: 600, maxChunks: 400 });
  assert.ok(chunks.length > 10);
  for (const c of chunks) {
    assert.ok(c.text.length <= 600, `chunk of ${c.text.length} chars`);
    assert.equal(c.heading, 'Big');
  }
  assert.deepEqual(chunks.map((c) => c.part), chunks.map((_, i) => i));
  const all = chunks.map((c) => c.text).join('');
  assert.equal((all.match(/x/g) ?? []).length, 1500, 'nothing is lost when a line is cut');
  const emoji = chunkMarkdown('# E\n\n' + 'a🐕'.repeat(500), { maxChunkChars: 302, maxChunks: 400 }).chunks;
  assert.ok(emoji.every((c) => !/[\uD800-\uDBFF]$|^[\uDC00-\uDFFF]/.test(c.text)), 'no surrogate pair is split');
});

test('a file with too many sections keeps the first maxChunks and says so', () => {
  const md = Array.from({ length: 50 }, (_, i) => `## S${i}\ntext`).join('\n');
  const { chunks, notes } = chunkMarkdown(md, { maxChunkChars: 2000, maxChunks: 10 });
  assert.equal(chunks.length, 10);
  assert.match(notes.join(), /kept the first 10 of 50 chunks/);
});

test('the chunk cap cuts the longest sections first: every section keeps its first piece (review-phase0)', () => {
  const long = (n: number) => Array.from({ length: n }, (_, i) => `paragraph ${i} ${'words '.repeat(15)}`).join('\n\n');
  const md = ['# Guide', '', '## Huge', '', long(60), '', '## Middle', '', long(6), '', '## Small', '', 'one line', '', '## Last', '', 'the end'].join('\n');
  const { chunks, notes } = chunkMarkdown(md, { maxChunkChars: 200, maxChunks: 12 });
  assert.equal(chunks.length, 12);
  const count = (h: string) => chunks.filter((c) => c.heading === h).length;
  assert.deepEqual(['Huge', 'Middle', 'Small', 'Last'].map(count), [5, 5, 1, 1]);
  assert.deepEqual(chunks.filter((c) => c.heading === 'Huge').map((c) => c.part), [0, 1, 2, 3, 4], 'a cut section keeps its first pieces');
  assert.match(notes.join(), /kept 12 of \d+ chunks: the longest sections were cut short \(Guide › Huge; Guide › Middle\)/);
});

test('an inline image of 1 MB is left out, and the sections after it are indexed (review-phase0)', async (t) => {
  const png = Buffer.from(Array.from({ length: 700_000 }, (_, i) => (i * 7919) % 251)).toString('base64');
  const wrapped = (png.slice(0, 76 * 40).match(/.{1,76}/g) ?? []).join('\n');
  const guide = ['# Guide', '', '## Screenshots', '', `![dashboard](data:image/png;base64,${png})`, '', '## Key', '', '```', wrapped, '```', '',
    '## Refund policy', '', 'Refunds are idempotent: a repeated refund_id refunds nothing.', '', '| a |', `|${'-'.repeat(300)}|`, ''].join('\n');
  const { chunks, notes } = chunkMarkdown(guide, opts);
  assert.deepEqual(chunks.map((c) => [c.heading, c.line]), [['Screenshots', 3], ['Key', 7], ['Refund policy', 52]], 'line numbers stay true');
  assert.equal(chunks[0]!.text, `## Screenshots\n\n![dashboard](data:image/png;base64,[${png.length} characters of encoded data left out])`);
  assert.match(chunks[1]!.text, /^## Key\n\n```\n\[3040 characters of encoded data left out\]\n+```$/);
  assert.ok(chunks[2]!.text.includes('-'.repeat(300)), 'a long table rule is not encoded data');
  assert.match(notes.join(), /left out 2 run\(s\) of encoded data/);

  const { repo, home } = tempRepo(t, { 'docs/guide.md': guide });
  const store = openStore(t, home);
  const r = await indexDocs({ repo, settings: settings(), store, embedder: null });
  assert.equal(r.chunks, 3);
  const hits = await searchDocs(store, 'refund policy', { k: 1, embedder: null });
  assert.equal(hits.hits[0]?.heading, 'Refund policy');
});

test('readDocFile: empty and binary files are skipped with a reason; a huge file is cut at a line', (t) => {
  const { repo } = tempRepo(t, {
    'empty.md': '',
    'blank.md': '  \n\n\t\n',
    'image.md': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d]),
    'latin.md': Buffer.from(Array.from({ length: 400 }, (_, i) => 0xe0 + (i % 16))),
    'huge.md': '# Huge\n' + 'é line of text\n'.repeat(10_000),
  });
  const read = (name: string) => readDocFile(join(repo, name), 4096);
  const reason = (name: string) => {
    const f = read(name);
    return f.kind === 'skip' ? f.reason : 'indexed';
  };
  assert.deepEqual(['empty.md', 'blank.md', 'image.md', 'latin.md'].map(reason), ['empty', 'empty', 'binary (NUL bytes)', 'binary (not UTF-8 text)']);
  const huge = read('huge.md');
  assert.ok(huge.kind === 'text' && huge.truncated);
  assert.ok(huge.kind === 'text' && Buffer.byteLength(huge.text) <= 4096 && huge.text.endsWith('text'));
});

test('indexing lists skipped and capped files in the report, and keeps going', async (t) => {
  const { repo, home } = tempRepo(t, {
    'docs/empty.md': '',
    'docs/bin.md': Buffer.from([0, 1, 2, 3]),
    'docs/big.md': '# Big\n' + 'some words here\n'.repeat(2000),
    'docs/ok.md': '# Fine\n\n## Part\n\ntext\n',
  });
  const store = openStore(t, home);
  const r = await indexDocs({ repo, settings: settings({ maxFileBytes: 8192 }), store, embedder: null });
  assert.equal(r.scanned, 4);
  assert.deepEqual(r.skipped.map((s) => `${s.path}: ${s.reason}`).sort(), ['docs/bin.md: binary (NUL bytes)', 'docs/empty.md: empty']);
  assert.deepEqual(r.notes.map((n) => n.path), ['docs/big.md']);
  assert.match(r.notes[0]!.note, /indexed the first 8192 of \d+ bytes/);
  assert.equal(r.files, 2);
});

test('globs: **, *, ?, braces; .git and node_modules are never entered', (t) => {
  assert.ok(globToRegExp('docs/**/*.md').test('docs/a.md'));
  assert.ok(globToRegExp('docs/**/*.md').test('docs/x/y/a.md'));
  assert.ok(!globToRegExp('docs/**/*.md').test('docs/a.mdx'));
  assert.ok(!globToRegExp('docs/*.md').test('docs/x/a.md'));
  assert.ok(globToRegExp('{README,CLAUDE}.md').test('CLAUDE.md'));
  assert.ok(globToRegExp('v?.md').test('v1.md'));
  const { repo } = tempRepo(t, {
    'CLAUDE.md': 'x',
    'docs/a.md': 'x',
    'docs/sub/b.md': 'x',
    'docs/c.txt': 'x',
    'docs/node_modules/d.md': 'x',
    '.git/e.md': 'x',
    'README.md': 'x',
  });
  assert.deepEqual(findDocFiles(repo, ['docs/**/*.md', 'CLAUDE.md', 'missing/**/*.md', 'NOPE.md']), ['CLAUDE.md', 'docs/a.md', 'docs/sub/b.md']);
  assert.deepEqual(findDocFiles(repo, ['./**/*.md']), ['CLAUDE.md', 'README.md', 'docs/a.md', 'docs/sub/b.md']);
});

test("a glob's base folder that is a link out of the repository finds nothing there; one inside it is walked", (t) => {
  const outside = tempRepo(t, { 'private.md': "another reporter's brief", 'sub/deep.md': 'x' }).repo;
  const { repo } = tempRepo(t, { 'CLAUDE.md': 'x', 'real/in.md': 'x' });
  symlinkSync(outside, join(repo, 'docs'));
  symlinkSync(join(repo, 'real'), join(repo, 'guides'));
  assert.deepEqual(findDocFiles(repo, ['docs/**/*.md', 'docs/sub/*.md', 'guides/**/*.md', 'CLAUDE.md']), ['CLAUDE.md', 'guides/in.md']);
  // A repository reached through a link of its own is still itself.
  const alias = join(outside, 'alias');
  symlinkSync(repo, alias);
  assert.deepEqual(findDocFiles(alias, ['**/*.md']), ['CLAUDE.md', 'real/in.md']);
});

test('a link into .git (or node_modules) is no doc: the index would hold the repository config, a remote credential with it', (t) => {
  const { repo } = tempRepo(t, { 'CLAUDE.md': 'x', '.git/config': '[remote "origin"]\n\turl = https://bot:ghp_SECRET@git.example.com/x.git\n', 'node_modules/pkg/README.md': 'x' });
  symlinkSync('../.git/config', join(repo, 'docs-git.md'));
  mkdirSync(join(repo, 'docs'));
  symlinkSync('../.git', join(repo, 'docs', 'git'));
  symlinkSync('../node_modules/pkg/README.md', join(repo, 'docs', 'pkg.md'));
  assert.deepEqual(findDocFiles(repo, ['*.md', 'docs/**/*', 'docs/git/config']), ['CLAUDE.md']);
});

test('a chain of 1,500 nested folders is walked in time in line with its depth', (t) => {
  // Each folder's real path was resolved again, component by component: 49 s here.
  const { repo } = tempRepo(t, { 'CLAUDE.md': 'x' });
  const deep = join(repo, 'docs', ...Array<string>(1500).fill('d'));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'deep.md'), '# Deep\n\ntext\n');
  const started = performance.now();
  assert.deepEqual(findDocFiles(repo, ['docs/**/*.md']).map((p) => p.split('/').length), [1502]);
  const ms = performance.now() - started;
  assert.ok(ms < 8000, `${Math.round(ms)} ms`);
});

test("a link under a doc's name to a file of another kind is no doc: docs/env.md → ../.env would put the checkout's secrets into pre-context.md", (t) => {
  const { repo } = tempRepo(t, { 'README.md': '# App', '.env': 'STRIPE_KEY=sk_live_x\n', '.env.md': 'x', 'config/app.json': '{}', 'AGENTS.md': '# Agents' });
  mkdirSync(join(repo, 'docs'));
  symlinkSync('../.env', join(repo, 'docs', 'env.md'));
  symlinkSync('../.env', join(repo, 'docs', 'env'));
  symlinkSync('../.env.md', join(repo, 'docs', 'hidden.md'));
  symlinkSync('../config/app.json', join(repo, 'docs', 'config.md'));
  symlinkSync('../README.md', join(repo, 'docs', 'readme.MD'));
  symlinkSync('AGENTS.md', join(repo, 'CLAUDE.md'));
  assert.deepEqual(findDocFiles(repo, ['docs/**/*', 'docs/env.md', 'CLAUDE.md']), ['CLAUDE.md', 'docs/readme.MD']);
});
