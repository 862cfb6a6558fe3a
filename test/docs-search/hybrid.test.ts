/**
 * Hybrid search with a real embeddings server on loopback through the real `openai`
 * client, and every way the endpoint can let us down: each ends in full-text results and
 * a warning that pre-context.md shows, never an error.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startEmbedServer } from '../../bench/docs/embed-server.ts';
import { createEmbedder } from '../../control/docs-search/embed.ts';
import { indexDocs } from '../../control/docs-search/index.ts';
import { renderPreContext } from '../../control/docs-search/precontext.ts';
import { searchDocs } from '../../control/docs-search/search.ts';
import { openStore, SAMPLE_DOCS, settings, tempRepo } from './support.ts';

test('hybrid: vectors find what words miss, fused with BM25, and say so', async (t) => {
  const srv = await startEmbedServer();
  t.after(() => srv.close());
  const cfg = settings({ embeddings: { baseURL: srv.baseURL, model: 'test-model' } });
  const embedder = createEmbedder(cfg.embeddings, 'sk-test')!;
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);
  await indexDocs({ repo, settings: cfg, store, embedder });

  // Misspelled: no word matches, but the trigram-hashed vectors are close.
  const typo = await searchDocs(store, 'paymnet webhok', { k: 3, embedder });
  assert.equal(typo.mode, 'hybrid');
  assert.equal(typo.hits[0]?.heading, 'Payment webhook');
  assert.match(typo.hits[0]!.why, /^semantic match \(similarity 0\.\d\d\)$/);

  srv.reset();
  const both = await searchDocs(store, 'stray pets without an owner', { k: 3, embedder });
  assert.equal(srv.inputs, 1, 'the query was embedded once');
  assert.equal(both.hits[0]?.heading, 'Owners and strays');
  assert.match(both.hits[0]!.why, /text matches .*stray.*; semantic match/);
  assert.deepEqual(both.warnings, []);
  assert.match(renderPreContext(both, 4000), /fused with semantic search/);
});

test('endpoint failing at query time: full-text results, and pre-context.md warns', async (t) => {
  const srv = await startEmbedServer();
  t.after(() => srv.close());
  const cfg = settings({ embeddings: { baseURL: srv.baseURL, maxRetries: 0 } });
  const embedder = createEmbedder(cfg.embeddings, undefined)!;
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);
  await indexDocs({ repo, settings: cfg, store, embedder });

  srv.failWith = 503;
  const r = await searchDocs(store, 'duplicate deliveries', { k: 3, embedder });
  assert.deepEqual([r.mode, r.vectorState], ['fts', 'failed']);
  assert.equal(r.hits[0]?.heading, 'Duplicate deliveries');
  const md = renderPreContext(r, 6000);
  assert.match(md, /> \*\*Warning:\*\* embeddings endpoint http:\/\/127\.0\.0\.1:\d+\/v1 failed: HTTP 503.*full-text search only/);
  assert.match(md, /vectors were unavailable/);
  assert.match(md, /Duplicate deliveries/);
});

test('endpoint unreachable from the start: the index is FTS-only, searches say vectors are missing', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const cfg = settings({ embeddings: { baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, timeoutMs: 2000 } });
  const embedder = createEmbedder(cfg.embeddings, undefined)!;
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);

  const report = await indexDocs({ repo, settings: cfg, store, embedder });
  assert.equal(report.vectorState, 'failed');
  assert.match(report.warnings.join(), /failed: Connection error/);
  assert.equal(report.files, 3);

  const r = await searchDocs(store, 'search pets by name', { k: 2, embedder });
  assert.deepEqual([r.mode, r.vectorState], ['fts', 'missing']);
  assert.equal(r.hits[0]?.heading, 'Search');
  assert.match(renderPreContext(r, 3000), /no vectors from the configured embeddings model/);
});

test('an endpoint answering nonsense is a failure like any other', async (t) => {
  const bad = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', data: [{ index: 0, embedding: [] }] }));
  });
  await new Promise<void>((resolve) => bad.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    bad.closeAllConnections();
    bad.close();
  });
  const { port } = bad.address() as AddressInfo;
  const cfg = settings({ embeddings: { baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 } });
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);
  const report = await indexDocs({ repo, settings: cfg, store, embedder: createEmbedder(cfg.embeddings, undefined) });
  assert.equal(report.vectorState, 'failed');
  assert.match(report.warnings.join(), /asked for \d+ embeddings, got 1|differing or zero size/);
});

test('vectors of zeros, nulls or NaN point nowhere: the index falls back to full text, saying why', async (t) => {
  for (const [what, value, why] of [
    ['zeros', 0, /vector of zeros/],
    ['nulls', null, /not a finite number/],
    ['NaN as a string', 'NaN', /not a finite number/],
  ] as const) {
    const odd = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const n = (JSON.parse(body) as { input: string[] }).input.length;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: Array.from({ length: n }, (_, index) => ({ index, embedding: [value, value, value, value] })) }));
      });
    });
    await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      odd.closeAllConnections();
      odd.close();
    });
    const { port } = odd.address() as AddressInfo;
    const cfg = settings({ embeddings: { baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 } });
    const { repo, home } = tempRepo(t, SAMPLE_DOCS);
    const store = openStore(t, home);
    const report = await indexDocs({ repo, settings: cfg, store, embedder: createEmbedder(cfg.embeddings, undefined) });
    assert.equal(report.vectorState, 'failed', what);
    assert.match(report.warnings.join(), why, what);
  }
});
