/**
 * Full-text search: ticket text with FTS5 syntax never reaches FTS5 as syntax, results
 * say why they matched, and the ranking finds the section a ticket is about.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { docsQuery } from '../../control/dispatcher/workspace.ts';
import { indexDocs } from '../../control/docs-search/index.ts';
import { buildFtsQuery, searchDocs } from '../../control/docs-search/search.ts';
import { repoRoot } from '../support/helpers.ts';
import { openStore, SAMPLE_DOCS, settings, tempRepo } from './support.ts';

const NASTY = [
  '"foo" AND (bar* OR NEAR',
  'NEAR(payment webhook, 2)',
  'payment:webhook',
  '^duplicate',
  '"unterminated',
  '***',
  ')))(((',
  'a OR',
  'NOT',
  '- -- --- +',
  "owner's name is null; DROP TABLE chunks; --",
  '{heading body}: stray',
  'col:value "x" * ^ ( ) : + - NEAR AND OR NOT',
  '',
  '   ',
  '\u0000\u0001 binary-ish \uFFFD',
  'ünïcödé wörds 日本語 🐕 stray',
];

test('buildFtsQuery quotes word tokens only, drops stopwords and ids, keeps order', () => {
  assert.deepEqual(buildFtsQuery('"foo" AND (bar* OR NEAR'), { match: '"foo" OR "bar"', terms: ['foo', 'bar'] });
  assert.deepEqual(buildFtsQuery('The stray has no owner').terms, ['stray', 'owner']);
  assert.deepEqual(buildFtsQuery('it is what it is').terms, ['it', 'is', 'what'], 'only stopwords: keep them');
  assert.deepEqual(buildFtsQuery('error 9f86d081884c7d659a2feaa0c55ad015 at 1732182000123 in pets.ts').terms, ['error', 'pets', 'ts']);
  assert.deepEqual(buildFtsQuery('<untrusted-data source="slack">owner is null</untrusted-data>').terms, ['owner', 'null']);
  assert.equal(buildFtsQuery('').match, null);
  assert.equal(buildFtsQuery('()*"').match, null);
});

test('queries full of FTS5 syntax never throw', async (t) => {
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);
  await indexDocs({ repo, settings: settings(), store, embedder: null });
  for (const q of NASTY) {
    const r = await searchDocs(store, q, { k: 5, embedder: null });
    assert.equal(r.mode, 'fts', q);
  }
  const stray = await searchDocs(store, "owner's name is null; DROP TABLE chunks; --", { k: 5, embedder: null });
  assert.equal(stray.hits[0]?.heading, 'Owners and strays');
  await fc.assert(
    fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 80 }), async (q) => {
      const r = await searchDocs(store, q, { k: 3, embedder: null });
      assert.ok(r.hits.length <= 3);
    }),
    { numRuns: 300 },
  );
});

test('hits come best first with the file, heading path, line and the words that matched', async (t) => {
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);
  await indexDocs({ repo, settings: settings(), store, embedder: null });
  const r = await searchDocs(store, 'Payment provider delivered the same event twice: duplicates recorded', { k: 3, embedder: null });
  const top = r.hits[0]!;
  assert.equal(top.path, 'docs/payments.md');
  assert.deepEqual(top.headingPath, ['Payments', 'Duplicate deliveries']);
  assert.equal(top.line, 7);
  assert.ok(top.terms.includes('twice'), top.why);
  assert.ok(top.headingTerms.includes('duplicate'), 'stemmed: duplicates matches Duplicate');
  assert.match(top.why, /heading matches .*duplicate/);
  assert.match(top.why, /text matches .*provider/);
  assert.ok(r.hits.every((h, i) => i === 0 || h.score <= r.hits[i - 1]!.score));
  assert.equal(r.vectorState, 'off');
  assert.deepEqual(r.warnings, []);
});

test('an empty index and a query with no match both answer with no hits', async (t) => {
  const { repo, home } = tempRepo(t, {});
  const store = openStore(t, home);
  await indexDocs({ repo, settings: settings(), store, embedder: null });
  const empty = await searchDocs(store, 'anything', { k: 5, embedder: null });
  assert.deepEqual([empty.hits.length, empty.indexed.chunks], [0, 0]);

  const full = tempRepo(t, SAMPLE_DOCS);
  const store2 = openStore(t, full.home);
  await indexDocs({ repo: full.repo, settings: settings(), store: store2, embedder: null });
  const none = await searchDocs(store2, 'kubernetes helm chart', { k: 5, embedder: null });
  assert.equal(none.hits.length, 0);
  assert.ok(none.indexed.chunks > 0);
});

test('buildFtsQuery: identifiers give their parts, stack locations and plain numbers go, only the fence tags are markup (review-phase0)', () => {
  assert.deepEqual(buildFtsQuery('getPet reads ownerName and owner_name').terms, ['getpet', 'pet', 'reads', 'ownername', 'owner', 'name']);
  assert.deepEqual(buildFtsQuery('XMLHttpRequest').terms, ['xmlhttprequest', 'xml', 'http', 'request']);
  assert.deepEqual(
    buildFtsQuery('Warning: Cannot update a component (<CheckoutForm>) while rendering').terms,
    ['warning', 'cannot', 'update', 'component', 'checkoutform', 'checkout', 'form', 'rendering'],
    'a tag-like word in the ticket is content',
  );
  assert.deepEqual(buildFtsQuery('<untrusted-data source="alert">refund</untrusted-data >').terms, ['refund']);
  const stack = 'boom\n    at getPet (src/pets.ts:14:94)\n    at async route (/srv/app/src/server.ts:57:17)\n    at /srv/app/src/main.ts:3:1\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)';
  assert.deepEqual(buildFtsQuery(stack).terms, ['boom', 'getpet', 'pet', 'route']);
  assert.deepEqual(buildFtsQuery('failed in lib/pay.py:88 and src/cart.tsx:12:5 on pets/5 port 3000').terms, ['failed', 'pets', 'port']);
  assert.deepEqual(buildFtsQuery('GET /api/pets/999 returns 500 instead of 404').terms, ['api', 'pets', 'returns', '500', 'instead', '404'], 'HTTP statuses stay');
  assert.deepEqual(buildFtsQuery("TypeError: Cannot read properties of undefined (reading 'name')").terms, ['typeerror', 'undefined', 'name']);
  assert.deepEqual(buildFtsQuery("AttributeError: 'NoneType' object has no attribute 'owner'").terms, ['attributeerror', 'nonetype', 'owner']);
});

test('crafted ticket text is read in time in line with its length, and stack locations still go', () => {
  // 40 KB of "a." once took 4 s and a 1 MB line of a minified bundle most of an hour. In a
  // process of its own with a limit: a backtracking pattern would hold this thread.
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/support/crafted-text.ts', 'query'], { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.stdout, 'ok\n', `crafted queries were not read within 20 s (${r.signal ?? `status ${r.status}`}): ${r.stderr}`);
  assert.deepEqual(buildFtsQuery('at getPet   (src/pets.ts:14:94)\nlook at file:///srv/app.mjs:3 and x:cart.py:9').terms, ['getpet', 'pet', 'look']);
  assert.deepEqual(buildFtsQuery('x-pets.load(...) is not a function; main.go:12:1 foo.xc:1').terms, ['pets', 'load', 'foo', 'xc']);
});

test('in a large index, a common word beside words found nowhere still ranks its sections', async (t) => {
  // 1,200 sections all about payments: the word is left out of the ranking as too common,
  // and "crash" is in none of them. The query had been left with "crash" alone: no hit.
  const files: Record<string, string> = {};
  for (let i = 0; i < 1200; i++) files[`docs/f${i}.md`] = `# Doc ${i}\n\n## Topic ${i}\n\nPayments note ${i === 7 ? 'about refunds' : 'in passing'}.\n`;
  const { repo, home } = tempRepo(t, files);
  const store = openStore(t, home);
  const report = await indexDocs({ repo, settings: settings(), store, embedder: null });
  assert.equal(report.chunks, 1200);
  const r = await searchDocs(store, 'payments crash', { k: 5, embedder: null });
  assert.equal(r.hits.length, 5);
  assert.ok(r.hits.every((h) => h.terms.includes('payments')), r.hits.map((h) => h.why).join('; '));
  const both = await searchDocs(store, 'payments crash refunds', { k: 5, embedder: null });
  assert.equal(both.hits[0]?.path, 'docs/f7.md', 'a word found in few sections still ranks alone');
  assert.equal((await searchDocs(store, 'crash outage', { k: 5, embedder: null })).hits.length, 0);
});

test('indexed identifiers are split too: ownerName meets "owner name", and owner_name meets ownerName', async (t) => {
  const { repo, home } = tempRepo(t, {
    'docs/a.md': '# A\n\n## Strays\n\nFor them `ownerName` is null.\n\n## Other\n\nNothing here.\n',
    'docs/b.md': '# B\n\n## Columns\n\nThe `owner_name` column.\n',
  });
  const store = openStore(t, home);
  await indexDocs({ repo, settings: settings(), store, embedder: null });
  const words = await searchDocs(store, 'the name of the owner', { k: 5, embedder: null });
  assert.deepEqual(words.hits.map((h) => h.heading).sort(), ['Columns', 'Strays']);
  const camel = await searchDocs(store, 'ownerName', { k: 5, embedder: null });
  assert.deepEqual(camel.hits.map((h) => h.heading).sort(), ['Columns', 'Strays']);
});

test("a file's single H1 is shown in the heading path but not weighed as every section's heading", async (t) => {
  const { repo, home } = tempRepo(t, {
    'CLAUDE.md': '# Pet shop\n\n## Layout\n\nsrc/server.ts routes requests.\n',
    'docs/two.md': '# Shop one\n\ntext\n\n# Shop two\n\n## Layout\n\nmore text\n',
  });
  const store = openStore(t, home);
  await indexDocs({ repo, settings: settings(), store, embedder: null });
  const r = await searchDocs(store, 'pet layout', { k: 5, embedder: null });
  const layout = r.hits.find((h) => h.path === 'CLAUDE.md')!;
  assert.deepEqual(layout.headingPath, ['Pet shop', 'Layout']);
  assert.deepEqual(layout.headingTerms, ['layout'], layout.why);
  const shop = await searchDocs(store, 'shop layout', { k: 5, embedder: null });
  const two = shop.hits.find((h) => h.path === 'docs/two.md' && h.heading === 'Layout')!;
  assert.deepEqual(two.headingTerms.sort(), ['layout', 'shop'], 'a file with two H1s keeps them');
});

test('an index built by the previous chunker is rebuilt', async (t) => {
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);
  await indexDocs({ repo, settings: settings(), store, embedder: null });
  const s = settings();
  store.setMeta('chunker', JSON.stringify([1, s.maxChunkChars, s.maxChunksPerFile, s.maxFileBytes]));
  const again = await indexDocs({ repo, settings: s, store, embedder: null });
  assert.equal(again.changed, 3, 'identifiers were not split in it: every file is indexed again');
});

test("the stray-owner alert finds the example app's doc on owners and strays (review-phase0)", async (t) => {
  const { home } = tempRepo(t, {});
  const store = openStore(t, home);
  const examples = resolve(import.meta.dirname, '../../examples');
  await indexDocs({ repo: examples, settings: settings(), store, embedder: null });
  // The ticket test/support/pipeline.ts `strayOwnerAlert` makes, as the harness queries it.
  const stack = "TypeError: Cannot read properties of undefined (reading 'name')\n    at getPet (src/pets.ts:14:94)\n    at route (src/server.ts:57:17)";
  const query = docsQuery({
    title: 'Unhandled error on GET /api/pets/:id',
    service: 'petshop',
    route: 'GET /api/pets/5',
    message: "TypeError: Cannot read properties of undefined (reading 'name')",
    stack,
  });
  const r = await searchDocs(store, query, { k: 6, embedder: null });
  const rank = r.hits.findIndex((h) => h.path === 'docs/pets-api.md' && h.heading === 'Owners and strays');
  assert.ok(rank >= 0 && rank < 3, `Owners and strays ranks ${rank + 1}: ${r.hits.map((h) => `${h.path} › ${h.heading}`).join(' | ')}`);
  assert.ok(!r.hits.slice(0, 3).some((h) => h.heading === 'Layout'), 'the stack frames no longer point at the layout section');
});
