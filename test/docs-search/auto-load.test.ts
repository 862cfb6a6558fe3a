/**
 * The auto-load table in a target's CLAUDE.md (format: docs/docs-search.md), and
 * `initTargetDocs`, which writes a starter one without overwriting anything.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { AUTO_LOAD_END, AUTO_LOAD_START, missingAutoLoadDocs, parseAutoLoad, renderAutoLoad, updateAutoLoad, type AutoLoadRow } from '../../control/docs-search/auto-load.ts';
import { initTargetDocs } from '../../control/docs-search/init-target.ts';
import { tempRepo } from './support.ts';

const CLAUDE = `# Pet shop — operating manual

A small pet shop API.

<!-- bugbot:auto-load:start -->
| topic | docs |
|---|---|
| payments, webhooks, duplicate deliveries | docs/payments.md |
| search, performance | \`docs/performance.md\`, [search](docs/search.md) |
<!-- bugbot:auto-load:end -->

## Commands

- \`npm test\`
`;

test('parse reads bare, backticked and linked paths', () => {
  const t = parseAutoLoad(CLAUDE);
  assert.deepEqual(t, {
    found: true,
    problems: [],
    rows: [
      { topic: 'payments, webhooks, duplicate deliveries', docs: ['docs/payments.md'] },
      { topic: 'search, performance', docs: ['docs/performance.md', 'docs/search.md'] },
    ],
  });
});

test('update replaces the table in place and keeps every other byte; parse(update) round-trips', () => {
  const rows: AutoLoadRow[] = [
    { topic: 'payments | refunds', docs: ['docs/payments.md'] },
    { topic: 'logging', docs: ['docs/logging.md', 'docs/errors.md'] },
  ];
  const updated = updateAutoLoad(CLAUDE, rows);
  assert.deepEqual(parseAutoLoad(updated), { found: true, problems: [], rows });
  const outside = (s: string) => s.replace(/<!-- bugbot:auto-load:start -->[\s\S]*<!-- bugbot:auto-load:end -->/, '');
  assert.equal(outside(updated), outside(CLAUDE));
  assert.equal(updateAutoLoad(updated, parseAutoLoad(CLAUDE).rows), updateAutoLoad(CLAUDE, parseAutoLoad(CLAUDE).rows));

  const topic = fc.string({ minLength: 1, maxLength: 30 }).map((s) => s.replace(/[\r\n,`]/g, ' ').trim()).filter((s) => s.length > 0 && !/^:?-{3,}:?$/.test(s));
  const path = fc.stringMatching(/^docs\/[a-z0-9-]{1,12}\.md$/);
  fc.assert(
    fc.property(fc.array(fc.record({ topic, docs: fc.array(path, { minLength: 1, maxLength: 3 }) }), { maxLength: 6 }), (generated) => {
      const rs = generated.map((r) => ({ topic: r.topic, docs: r.docs }));
      assert.deepEqual(parseAutoLoad(updateAutoLoad('# T\n\nbody\n', rs)).rows, rs);
    }),
  );
});

test('without a table, the block goes after the title; without a title, first', () => {
  const rows = [{ topic: 'x', docs: ['docs/x.md'] }];
  assert.equal(updateAutoLoad('# Title\n\nText.\n', rows), `# Title\n\n${renderAutoLoad(rows)}\n\nText.\n`);
  assert.equal(updateAutoLoad('Text.\n', rows), `${renderAutoLoad(rows)}\n\nText.\n`);
  assert.equal(updateAutoLoad('', rows), `${renderAutoLoad(rows)}\n`);
});

test('odd tables are reported as problems, never thrown', () => {
  assert.deepEqual(parseAutoLoad('# no table here'), { found: false, rows: [], problems: [] });
  assert.match(parseAutoLoad('<!-- bugbot:auto-load:start -->\n| topic | docs |').problems[0]!, /has no <!-- bugbot:auto-load:end -->/);
  const odd = parseAutoLoad(
    ['<!-- bugbot:auto-load:start -->', '| subject | files |', '|---|---|', '| a | b | c |', 'loose text', '| only topic |  |', '| ok | docs/ok.md |', '<!-- bugbot:auto-load:end -->'].join('\n'),
  );
  assert.deepEqual(odd.rows, [{ topic: 'ok', docs: ['docs/ok.md'] }]);
  assert.deepEqual(odd.problems.map((p) => p.split(':')[0]), ['line 2', 'line 4', 'line 5', 'line 6']);
});

test('missingAutoLoadDocs names rows whose docs are gone', () => {
  const rows = parseAutoLoad(CLAUDE).rows;
  assert.deepEqual(missingAutoLoadDocs(rows, (p) => p !== 'docs/search.md'), [{ topic: 'search, performance', doc: 'docs/search.md' }]);
});

test('initTargetDocs on an empty repository writes docs/README.md and CLAUDE.md, then never overwrites', (t) => {
  const { repo } = tempRepo(t, {});
  assert.deepEqual(initTargetDocs(repo), { written: ['docs/README.md', 'CLAUDE.md'], kept: [] });
  const claude = readFileSync(join(repo, 'CLAUDE.md'), 'utf8');
  const table = parseAutoLoad(claude);
  assert.deepEqual(table.rows.map((r) => r.docs), [['docs/README.md']]);
  assert.deepEqual(missingAutoLoadDocs(table.rows, (p) => existsSync(join(repo, p))), []);
  assert.match(readFileSync(join(repo, 'docs/README.md'), 'utf8'), /^# Docs\n/);

  const again = initTargetDocs(repo);
  assert.deepEqual(again.written, []);
  assert.deepEqual(again.kept.map((k) => k.path), ['docs/', 'CLAUDE.md']);
  assert.equal(readFileSync(join(repo, 'CLAUDE.md'), 'utf8'), claude);
});

test('initTargetDocs with docs and a CLAUDE.md lacking a table: adds only the table, rows from doc titles', (t) => {
  const own = '# My manual\n\nDo not touch this.\n';
  const { repo } = tempRepo(t, { 'CLAUDE.md': own, 'docs/ops/deploy.md': '# Deploying\n\ntext\n', 'docs/untitled.md': 'no title\n' });
  const r = initTargetDocs(repo);
  assert.deepEqual(r.written, ['CLAUDE.md (added the auto-load table)']);
  assert.deepEqual(r.kept, [{ path: 'docs/', reason: 'already holds 2 markdown file(s)' }]);
  const text = readFileSync(join(repo, 'CLAUDE.md'), 'utf8');
  assert.deepEqual(parseAutoLoad(text).rows, [
    { topic: 'Deploying', docs: ['docs/ops/deploy.md'] },
    { topic: 'untitled', docs: ['docs/untitled.md'] },
  ]);
  assert.ok(text.startsWith('# My manual\n\n<!-- bugbot:auto-load:start -->'));
  assert.ok(text.endsWith('\n\nDo not touch this.\n'));
  assert.throws(() => initTargetDocs(join(repo, 'missing')), /is not a directory/);
});

test('initTargetDocs writes through no link: a docs folder or CLAUDE.md pointing elsewhere is kept, saying so', (t) => {
  const outside = tempRepo(t, { 'README.md': 'not this repository\'s' }).repo;
  const { repo } = tempRepo(t, { 'src/a.ts': 'x' });
  symlinkSync(outside, join(repo, 'docs'));
  symlinkSync(join(outside, 'README.md'), join(repo, 'CLAUDE.md'));
  const r = initTargetDocs(repo);
  assert.deepEqual(r.written, []);
  assert.deepEqual(r.kept.map((k) => k.path), ['docs/README.md', 'CLAUDE.md']);
  assert.match(r.kept[0]!.reason, /docs is a link: not written through/);
  assert.equal(readFileSync(join(outside, 'README.md'), 'utf8'), "not this repository's", 'nothing written outside the repository');
});

test('updateAutoLoad keeps a CRLF file CRLF and a byte-order mark first', () => {
  const rows = [{ topic: 'payments', docs: ['docs/payments.md'] }];
  const crlf = updateAutoLoad('# My Project\r\n\r\nIntro.\r\n', rows);
  assert.doesNotMatch(crlf.replace(/\r\n/g, ''), /\n/, 'no bare LF');
  assert.match(crlf, /^# My Project\r\n\r\n<!-- bugbot:auto-load:start -->\r\n/);
  const bom = updateAutoLoad('\uFEFF# Title\nText\n', rows);
  assert.ok(bom.startsWith('\uFEFF# Title\n\n<!-- bugbot:auto-load:start -->'), JSON.stringify(bom.slice(0, 40)));
});

test('docs cells: a comma inside a link is no separator; link titles and #anchors are not part of the path (review-phase0)', () => {
  const table = (docs: string) => `${AUTO_LOAD_START}\n| topic | docs |\n|---|---|\n| pay | ${docs} |\n${AUTO_LOAD_END}\n`;
  const docs = (cell: string) => parseAutoLoad(table(cell)).rows[0]?.docs;
  assert.deepEqual(docs('[Payments, refunds](docs/payments.md), `docs/b.md`'), ['docs/payments.md', 'docs/b.md']);
  assert.deepEqual(docs('[a](docs/a.md "Payments, refunds"), [b](<docs/b.md> \'B\')'), ['docs/a.md', 'docs/b.md']);
  assert.deepEqual(docs('docs/a.md#refunds, ./docs/b.md, [c](docs/c.md#top)'), ['docs/a.md', 'docs/b.md', 'docs/c.md']);
});

test('marker lines inside a code fence are an example, not the table, and an update leaves them alone (review-phase0)', () => {
  const example = ['```markdown', AUTO_LOAD_START, '| topic | docs |', '|---|---|', '| ex | docs/ex.md |', AUTO_LOAD_END, '```'].join('\n');
  const real = [AUTO_LOAD_START, '| topic | docs |', '|---|---|', '| real | docs/real.md |', AUTO_LOAD_END].join('\n');
  const text = `# T\n\nThe table looks like this:\n\n${example}\n\n${real}\n`;
  assert.deepEqual(parseAutoLoad(text).rows, [{ topic: 'real', docs: ['docs/real.md'] }]);
  const rows = [{ topic: 'new', docs: ['docs/new.md'] }];
  assert.equal(updateAutoLoad(text, rows), `# T\n\nThe table looks like this:\n\n${example}\n\n${renderAutoLoad(rows)}\n`);
  // Only an example: there is no table, and the update adds one after the title.
  const onlyExample = `# T\n\n${example}\n`;
  assert.deepEqual(parseAutoLoad(onlyExample), { found: false, rows: [], problems: [] });
  assert.equal(updateAutoLoad(onlyExample, rows), `# T\n\n${renderAutoLoad(rows)}\n\n${example}\n`);
  // An unclosed fence is text (as when indexing): the markers after it still count.
  assert.deepEqual(parseAutoLoad(`# T\n\n~~~\n\n${real}\n`).rows, [{ topic: 'real', docs: ['docs/real.md'] }]);
});

test('a CLAUDE.md of 60,000 unclosed fences is read in time in line with its length; the table after them is found', () => {
  // Each opener's closer was looked for line by line: 20,000 of them took 4 s, 60,000 half a minute.
  const text = `# Manual\n\n${'````x\n'.repeat(60_000)}\n${renderAutoLoad([{ topic: 'payments', docs: ['docs/payments.md'] }])}\n`;
  const started = performance.now();
  const table = parseAutoLoad(text);
  const ms = performance.now() - started;
  assert.deepEqual(table.rows, [{ topic: 'payments', docs: ['docs/payments.md'] }]);
  assert.ok(ms < 5000, `${Math.round(ms)} ms`);
});
