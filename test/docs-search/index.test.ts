/**
 * Incremental indexing against a real embeddings server on loopback (through the real
 * `openai` client): only changed files are re-embedded, deleted files leave the index,
 * and an endpoint failure leaves exactly the unembedded files for the next run.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startEmbedServer, type EmbedServer } from '../../bench/docs/embed-server.ts';
import { createEmbedder, type Embedder } from '../../control/docs-search/embed.ts';
import { indexDocs } from '../../control/docs-search/index.ts';
import { searchDocs } from '../../control/docs-search/search.ts';
import { resolveIndexPath, type DocsSettings } from '../../control/docs-search/settings.ts';
import { repoRoot } from '../support/helpers.ts';
import { openStore, SAMPLE_DOCS, settings, tempRepo } from './support.ts';

async function server(t: TestContext): Promise<EmbedServer> {
  const s = await startEmbedServer();
  t.after(() => s.close());
  return s;
}

function withVectors(s: EmbedServer, model = 'test-model'): { settings: DocsSettings; embedder: Embedder } {
  const cfg = settings({ embeddings: { baseURL: s.baseURL, model, maxRetries: 0 } });
  return { settings: cfg, embedder: createEmbedder(cfg.embeddings, undefined)! };
}

test('unchanged files are not re-embedded, an edited file alone is, a deleted file leaves the index', async (t) => {
  const srv = await server(t);
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);
  const opts = { repo, store, ...withVectors(srv) };

  const first = await indexDocs(opts);
  assert.deepEqual([first.changed, first.embeddedFiles, first.vectorState], [3, 3, 'ok']);
  assert.equal(srv.inputs, first.chunks);
  assert.equal(first.vectors, first.chunks);

  srv.reset();
  const again = await indexDocs(opts);
  assert.deepEqual([again.changed, again.unchanged, again.embeddedFiles, srv.requests], [0, 3, 0, 0]);

  utimesSync(join(repo, 'docs/pets.md'), new Date(), new Date(Date.now() + 60_000));
  const touched = await indexDocs(opts);
  assert.deepEqual([touched.changed, touched.embeddedFiles, srv.requests], [0, 0, 0], 'same content, new mtime: nothing to do');

  writeFileSync(join(repo, 'docs/pets.md'), SAMPLE_DOCS['docs/pets.md'] + '\n## Adoption\n\nAdopting a stray needs a form.\n');
  const edited = await indexDocs(opts);
  assert.deepEqual([edited.changed, edited.embeddedFiles], [1, 1]);
  assert.equal(srv.inputs, 3, 'the three sections of pets.md, nothing else');
  assert.ok(srv.texts.every((x) => x.startsWith('Pets API')), srv.texts.join('\n'));

  rmSync(join(repo, 'docs/payments.md'));
  const removed = await indexDocs(opts);
  assert.equal(removed.removed, 1);
  assert.equal(removed.vectors, removed.chunks, 'its vectors went too');
  const r = await searchDocs(store, 'duplicate deliveries transaction', { k: 5, embedder: null });
  assert.ok(r.hits.every((h) => h.path !== 'docs/payments.md'));
});

test('files left unembedded by a failing endpoint are searchable now and embedded by the next run', async (t) => {
  const srv = await server(t);
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);
  const opts = { repo, store, ...withVectors(srv) };

  srv.failWith = 500;
  const failed = await indexDocs(opts);
  assert.equal(failed.vectorState, 'failed');
  assert.match(failed.warnings.join(), /embeddings endpoint http:\/\/127\.0\.0\.1:\d+\/v1 failed: HTTP 500.*3 file\(s\) have no vectors yet/);
  assert.deepEqual([failed.files, failed.vectors], [3, 0]);
  const r = await searchDocs(store, 'stray owner', { k: 1, embedder: null });
  assert.equal(r.hits[0]?.heading, 'Owners and strays');

  srv.failWith = null;
  const retried = await indexDocs(opts);
  assert.deepEqual([retried.changed, retried.embeddedFiles, retried.vectorState], [0, 3, 'ok']);
  assert.equal(retried.vectors, retried.chunks);
});

test('a different embeddings model drops the old vectors and re-embeds every file', async (t) => {
  const srv = await server(t);
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);
  await indexDocs({ repo, store, ...withVectors(srv, 'model-a') });
  srv.reset();
  const b = await indexDocs({ repo, store, ...withVectors(srv, 'model-b') });
  assert.deepEqual([b.changed, b.embeddedFiles, srv.inputs], [0, 3, b.chunks]);
});

test('new chunking settings rebuild the index; narrower globs drop files', async (t) => {
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const store = openStore(t, home);
  await indexDocs({ repo, settings: settings(), store, embedder: null });
  const rebuilt = await indexDocs({ repo, settings: settings({ maxChunkChars: 300 }), store, embedder: null });
  assert.equal(rebuilt.changed, 3);
  const narrow = await indexDocs({ repo, settings: settings({ maxChunkChars: 300, globs: ['docs/pets.md'] }), store, embedder: null });
  assert.deepEqual([narrow.scanned, narrow.removed, narrow.files], [1, 2, 1]);
});

test('two processes sharing an index: a file re-indexed mid-embedding gets no stale vectors and is embedded later', async (t) => {
  const srv = await server(t);
  const { repo, home } = tempRepo(t, SAMPLE_DOCS);
  const a = openStore(t, home);
  const b = openStore(t, home);
  const real = withVectors(srv);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  // Process A's endpoint answers only after process B has re-indexed an edited file.
  const slow = { ...real.embedder, embed: async (texts: string[]) => (await gate, real.embedder.embed(texts)) };
  // Everything before the first embed call is synchronous: A is waiting at the gate now.
  const first = indexDocs({ repo, settings: real.settings, store: a, embedder: slow });
  writeFileSync(join(repo, 'docs/pets.md'), '# Pets API\n\n## Adoption\n\nForms.\n');
  const other = await indexDocs({ repo, settings: real.settings, store: b, embedder: null });
  assert.equal(other.changed, 1);
  release();
  const done = await first;
  assert.equal(done.embeddedFiles, 2, 'pets.md changed under it: not marked embedded');
  assert.deepEqual([done.chunks, done.vectors], [4, 3], 'no vector for a chunk that is gone; Adoption has none yet');
  const next = await indexDocs({ repo, store: b, ...real });
  assert.deepEqual([next.embeddedFiles, next.vectors === next.chunks], [1, true]);
});

test('a missing repository is an error, not an empty index', async (t) => {
  const { home } = tempRepo(t, {});
  const store = openStore(t, home);
  await assert.rejects(indexDocs({ repo: join(home, 'nope'), settings: settings(), store, embedder: null }), /is not a directory/);
});

test("worktrees share their repository's index; a FIFO at .git or commondir (the agent can write both) holds nothing", (t) => {
  const { repo, home } = tempRepo(t, { '.git/HEAD': 'ref: refs/heads/main\n' });
  const worktree = (name: string) => {
    const dir = join(home, name);
    mkdirSync(join(repo, '.git', 'worktrees', name), { recursive: true });
    writeFileSync(join(repo, '.git', 'worktrees', name, 'commondir'), '../..\n');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '.git'), `gitdir: ${join(repo, '.git', 'worktrees', name)}\n`);
    return dir;
  };
  const shared = resolveIndexPath(home, repo, settings());
  assert.equal(resolveIndexPath(home, worktree('a'), settings()), shared);

  const fifoGit = worktree('b');
  rmSync(join(fifoGit, '.git'));
  execFileSync('mkfifo', [join(fifoGit, '.git')]);
  const fifoCommon = worktree('c');
  rmSync(join(repo, '.git', 'worktrees', 'c', 'commondir'));
  execFileSync('mkfifo', [join(repo, '.git', 'worktrees', 'c', 'commondir')]);
  // In a process of its own with a limit: a blocking read of a FIFO would hold this thread.
  const code = `import('./control/docs-search/settings.ts').then((m) => { for (const r of ${JSON.stringify([fifoGit, fifoCommon])}) console.log(m.resolveIndexPath(${JSON.stringify(home)}, r, m.docsSettingsSchema.parse({}))); })`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.signal, null, `reading .git or commondir did not return within 20 s: ${r.stderr}`);
  const paths = r.stdout.trim().split('\n');
  assert.equal(paths.length, 2, r.stderr);
  for (const p of paths) assert.match(p, /\/docs-index\/[0-9a-f]{16}\.db$/);
  assert.notEqual(paths[0], shared, 'a .git that is no file names no repository: the worktree is its own');
});
