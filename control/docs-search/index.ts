/**
 * Incremental indexing of a target repository's docs. A file is re-read every run but
 * re-chunked and re-embedded only when its content hash changed; files that no longer
 * match the globs leave the index. Embedding failures leave full-text search intact and
 * the files unembedded, so the next run retries exactly those.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chunkMarkdown, type Chunk } from './chunk.ts';
import { describeEmbedError, type Embedder } from './embed.ts';
import { findDocFiles, readDocFile, type DocFile } from './files.ts';
import type { DocsSettings } from './settings.ts';
import type { ChunkRow, DocsStore } from './store.ts';

/** Bump when chunking changes, so existing indexes are rebuilt instead of mixing two chunkings. */
const CHUNKER_VERSION = 1;
/** Parsed files (and their bytes) held before one write transaction: few transactions, bounded memory. */
const FLUSH_FILES = 200;
const FLUSH_BYTES = 32 * 1024 * 1024;

export interface IndexReport {
  repo: string;
  /** Files matching the globs. */
  scanned: number;
  /** New or changed files (re-chunked). */
  changed: number;
  unchanged: number;
  /** Files that left the index (deleted, or no longer matching the globs). */
  removed: number;
  /** Files matched but not indexed, with why (empty, binary, unreadable). */
  skipped: Array<{ path: string; reason: string }>;
  /** Files indexed with a caveat (truncated, unclosed fence, chunks left out). */
  notes: Array<{ path: string; note: string }>;
  embeddedFiles: number;
  embeddedChunks: number;
  /** Totals in the index after this run. */
  files: number;
  chunks: number;
  vectors: number;
  /** off: no endpoint configured; ok; failed: the endpoint failed (see warnings); unavailable: sqlite-vec missing. */
  vectorState: 'off' | 'ok' | 'failed' | 'unavailable';
  warnings: string[];
  ms: number;
}

export interface IndexOptions {
  repo: string;
  settings: DocsSettings;
  store: DocsStore;
  embedder: Embedder | null;
}

interface Pending {
  path: string;
  hash: string;
  bytes: number;
  note: string | null;
  chunks: Chunk[];
}

/** Bring the index of `repo` up to date. Throws only when the repository itself is missing. */
export async function indexDocs(opts: IndexOptions): Promise<IndexReport> {
  const started = performance.now();
  const { repo, settings, store, embedder } = opts;
  if (!existsSync(repo) || !statSync(repo).isDirectory()) throw new Error(`target repository ${repo} is not a directory`);

  const chunker = JSON.stringify([CHUNKER_VERSION, settings.maxChunkChars, settings.maxChunksPerFile, settings.maxFileBytes]);
  if (store.meta('chunker') !== chunker) {
    store.tx(() => {
      for (const path of store.files().keys()) store.removeFile(path);
      store.setMeta('chunker', chunker);
    });
  }

  const known = store.files();
  const paths = findDocFiles(repo, settings.globs);
  const report: IndexReport = {
    repo, scanned: paths.length, changed: 0, unchanged: 0, removed: 0, skipped: [], notes: [],
    embeddedFiles: 0, embeddedChunks: 0, files: 0, chunks: 0, vectors: 0, vectorState: 'off', warnings: [], ms: 0,
  };

  let pending: Pending[] = [];
  let pendingBytes = 0;
  const flush = () => {
    const batch = pending;
    pending = [];
    pendingBytes = 0;
    store.tx(() => {
      for (const p of batch) store.replaceFile(p.path, p, p.chunks);
    });
  };
  for (const path of paths) {
    const file = readFile(join(repo, path), settings.maxFileBytes);
    if (known.get(path)?.hash === file.hash) {
      report.unchanged++;
      continue;
    }
    report.changed++;
    pending.push(toPending(path, file, settings));
    pendingBytes += Math.min(file.bytes, settings.maxFileBytes);
    if (pending.length >= FLUSH_FILES || pendingBytes >= FLUSH_BYTES) flush();
  }
  flush();

  const seen = new Set(paths);
  const gone = [...known.keys()].filter((p) => !seen.has(p));
  store.tx(() => gone.forEach((p) => store.removeFile(p)));
  report.removed = gone.length;

  for (const f of store.files().values()) {
    if (f.chunks === 0) report.skipped.push({ path: f.path, reason: f.note ?? 'no chunks' });
    else if (f.note) report.notes.push({ path: f.path, note: f.note });
  }

  if (embedder) await embedPending(store, embedder, report);
  Object.assign(report, store.counts());
  report.ms = Math.round(performance.now() - started);
  return report;
}

function readFile(path: string, maxBytes: number): DocFile {
  try {
    return readDocFile(path, maxBytes);
  } catch (err) {
    // Unreadable now (permissions, vanished mid-scan): a hash that never repeats retries it next run.
    return { kind: 'skip', hash: `unreadable:${Date.now()}`, bytes: 0, reason: `unreadable: ${(err as Error).message}` };
  }
}

function toPending(path: string, file: DocFile, settings: DocsSettings): Pending {
  if (file.kind === 'skip') return { path, hash: file.hash, bytes: file.bytes, note: file.reason, chunks: [] };
  const { chunks, notes } = chunkMarkdown(file.text, { maxChunkChars: settings.maxChunkChars, maxChunks: settings.maxChunksPerFile });
  if (file.truncated) notes.unshift(`indexed the first ${settings.maxFileBytes} of ${file.bytes} bytes`);
  if (!chunks.length) notes.unshift('headings only, no text');
  return { path, hash: file.hash, bytes: file.bytes, note: notes.length ? notes.join('; ') : null, chunks };
}

/** The text a chunk is embedded as: its heading path gives a short section its context. */
export function embeddingText(c: Pick<ChunkRow, 'headingPath' | 'text'>): string {
  return `${c.headingPath.join(' > ')}\n\n${c.text}`;
}

async function embedPending(store: DocsStore, embedder: Embedder, report: IndexReport): Promise<void> {
  if (store.vecError) {
    report.vectorState = 'unavailable';
    report.warnings.push(`${store.vecError}; full-text search only`);
    return;
  }
  const vecKey = store.meta('vec_key');
  if (vecKey !== undefined && vecKey !== embedder.key) store.tx(() => store.resetVectors());
  report.vectorState = 'ok';

  const todo = [...store.files().values()].filter((f) => f.chunks > 0 && !f.embedded);
  const left = new Map(todo.map((f) => [f.path, f.chunks]));
  const hashes = new Map(todo.map((f) => [f.path, f.hash]));
  const chunks = store.chunksOf(todo.map((f) => f.path));
  for (let i = 0; i < chunks.length; i += embedder.batchSize) {
    const batch = chunks.slice(i, i + embedder.batchSize);
    let vectors: Float32Array[];
    try {
      vectors = await embedder.embed(batch.map(embeddingText));
    } catch (err) {
      report.vectorState = 'failed';
      report.warnings.push(`${describeEmbedError(embedder.baseURL, err)}; ${left.size} file(s) have no vectors yet (full-text search covers them; the next index run retries)`);
      return;
    }
    const dims = vectors[0]!.length;
    const storedDims = store.meta('vec_dims');
    if (storedDims !== undefined && Number(storedDims) !== dims) {
      // Same endpoint and model name, different vectors: the server changed models. Start over next run.
      store.tx(() => store.resetVectors());
      report.vectorState = 'failed';
      report.warnings.push(`the embeddings endpoint now returns ${dims}-dimensional vectors, not ${storedDims}; vectors were dropped and will be rebuilt by the next index run`);
      return;
    }
    store.tx(() => {
      store.ensureVectors(embedder.key, dims);
      store.writeVectors(batch.map((c, j) => ({ id: c.id, vector: vectors[j]! })));
      for (const c of batch) {
        const n = left.get(c.path)! - 1;
        if (n > 0) {
          left.set(c.path, n);
          continue;
        }
        left.delete(c.path);
        if (store.markEmbedded(c.path, hashes.get(c.path)!)) report.embeddedFiles++;
      }
    });
    report.embeddedChunks += batch.length;
  }
}
