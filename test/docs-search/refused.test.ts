/**
 * An embeddings server that refuses some inputs (413 for an input over its length limit,
 * as TEI and vLLM do): the refused chunk is left without a vector and everything else is
 * embedded; an endpoint refusing every input is a failure like any other (review-phase0).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { hashedEmbedding } from '../../bench/docs/embed-server.ts';
import { createEmbedder } from '../../control/docs-search/embed.ts';
import { indexDocs } from '../../control/docs-search/index.ts';
import { searchDocs } from '../../control/docs-search/search.ts';
import { openStore, SAMPLE_DOCS, settings, tempRepo } from './support.ts';

interface LimitedServer {
  baseURL: string;
  requests: number;
  /** Answer 400 to every request (a misconfigured endpoint), whatever its input. */
  refuseAll: boolean;
}

/** An OpenAI-compatible `POST /v1/embeddings` on loopback refusing a request holding any input over `maxChars`. */
async function limitedServer(t: TestContext, maxChars: number): Promise<LimitedServer> {
  const state: LimitedServer = { baseURL: '', requests: 0, refuseAll: false };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      state.requests++;
      const { input } = JSON.parse(body) as { input: string[] };
      const refuse = state.refuseAll ? 400 : input.some((x) => x.length > maxChars) ? 413 : 0;
      if (refuse) {
        res.writeHead(refuse, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `Input validation error: inputs must have less than ${maxChars} characters` } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: input.map((x, index) => ({ object: 'embedding', index, embedding: Array.from(hashedEmbedding(x, 64)) })) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  state.baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return state;
}

const LONG = {
  ...SAMPLE_DOCS,
  'docs/long.md': ['# Operations', '', '## Disaster recovery', '', 'Restore the nightly snapshot. '.repeat(50), '', '## Backups', '', 'Snapshots run nightly.', ''].join('\n'),
};

test('a chunk the endpoint refuses alone (413) gets no vector; the rest is embedded and the run goes on', async (t) => {
  const srv = await limitedServer(t, 1000);
  // Two chunks a request: the long chunk shares its batch with a short one.
  const cfg = settings({ embeddings: { baseURL: srv.baseURL, model: 'limited', maxRetries: 0, batchSize: 2 } });
  const embedder = createEmbedder(cfg.embeddings, undefined)!;
  const { repo, home } = tempRepo(t, LONG);
  const store = openStore(t, home);

  const first = await indexDocs({ repo, settings: cfg, store, embedder });
  assert.equal(first.vectorState, 'ok');
  assert.deepEqual(first.warnings, []);
  assert.equal(first.refusedChunks, 1);
  assert.equal(first.vectors, first.chunks - 1, 'every chunk but the refused one has a vector');
  assert.equal(first.embeddedFiles, 4, 'its file counts as embedded without it');
  assert.deepEqual(first.notes.map((n) => n.path), ['docs/long.md']);
  assert.match(first.notes[0]!.note, /refused 1 chunk\(s\) \(HTTP 413; line 3\): no vector for them, full-text search still finds them/);

  srv.requests = 0;
  const again = await indexDocs({ repo, settings: cfg, store, embedder });
  assert.deepEqual([again.changed, again.embeddedFiles, srv.requests], [0, 0, 0], 'nothing is sent again');

  const r = await searchDocs(store, 'restore after a disaster', { k: 3, embedder });
  assert.equal(r.mode, 'hybrid');
  const dr = r.hits.find((h) => h.heading === 'Disaster recovery');
  assert.ok(dr && dr.similarity === undefined, 'full-text search finds the chunk without a vector');
});

test('an endpoint refusing every input (400) stops the run like any other failure: nothing is marked embedded', async (t) => {
  const srv = await limitedServer(t, 1000);
  srv.refuseAll = true;
  const cfg = settings({ embeddings: { baseURL: srv.baseURL, model: 'limited', maxRetries: 0, batchSize: 4 } });
  const embedder = createEmbedder(cfg.embeddings, undefined)!;
  const { repo, home } = tempRepo(t, LONG);
  const store = openStore(t, home);

  const failed = await indexDocs({ repo, settings: cfg, store, embedder });
  assert.equal(failed.vectorState, 'failed');
  assert.match(failed.warnings.join(), /failed: HTTP 400.*4 file\(s\) have no vectors yet/);
  assert.deepEqual([failed.embeddedFiles, failed.refusedChunks, failed.vectors], [0, 0, 0]);
  assert.ok(srv.requests <= 8, `one batch halved, then one probe: ${srv.requests} requests`);

  srv.refuseAll = false;
  const fixed = await indexDocs({ repo, settings: cfg, store, embedder });
  assert.deepEqual([fixed.vectorState, fixed.embeddedFiles, fixed.refusedChunks], ['ok', 4, 1]);
});
