/**
 * Full-text search: ticket text with FTS5 syntax never reaches FTS5 as syntax, results
 * say why they matched, and the ranking finds the section a ticket is about.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { indexDocs } from '../../control/docs-search/index.ts';
import { buildFtsQuery, searchDocs } from '../../control/docs-search/search.ts';
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
