/**
 * Incremental indexing of a target repository's docs. A file is re-read every run but
 * re-chunked and re-embedded only when its content hash changed; files that no longer
 * match the globs leave the index. Embedding failures leave full-text search intact and
 * the files unembedded, so the next run retries exactly those.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chunkMarkdown, type Chunk } from './chunk.ts';
import { describeEmbedError, refusesInput, type Embedder } from './embed.ts';
import { findDocFiles, readDocFile, type DocFile } from './files.ts';
import type { DocsSettings } from './settings.ts';
import type { ChunkRow, DocsStore } from './store.ts';

/**
 * Bump when chunking or what the full-text index holds changes, so existing indexes are
 * rebuilt instead of mixing two. 2: identifiers split into their parts, a file's single
 * H1 out of the weighted heading column, encoded data left out, the cap per section.
 */
const CHUNKER_VERSION = 2;
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
  /** Chunks the embeddings endpoint refused on their own (too long for its model): searched by full text only. */
  refusedChunks: number;
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
    embeddedFiles: 0, embeddedChunks: 0, refusedChunks: 0, files: 0, chunks: 0, vectors: 0, vectorState: 'off', warnings: [], ms: 0,
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

/** The endpoint answered vectors of another size than the index holds (checked per batch). */
class VectorSizeChanged extends Error {
  constructor(
    readonly dims: number,
    readonly stored: string,
  ) {
    super(`the embeddings endpoint now returns ${dims}-dimensional vectors, not ${stored}`);
  }
}

/**
 * Embed the chunks of every file not embedded yet, a batch at a time. A batch the
 * endpoint refuses for its input (embed.ts `refusesInput`: 413 for a chunk over the
 * model's length limit) is halved until the refused chunks stand alone; those are left
 * without a vector, the rest of the batch is embedded, and the run goes on. A chunk that
 * was refused on its own counts as done, so its file is marked embedded: it is not sent
 * again until the file or the embeddings settings change, and full-text search still
 * finds it. Any other failure stops the run with a warning, leaving the files not yet
 * embedded for the next run.
 */
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
  // Call inside a transaction: a file whose chunks are all done is marked embedded.
  const settle = (done: ChunkRow[]) => {
    for (const c of done) {
      const n = left.get(c.path)! - 1;
      if (n > 0) {
        left.set(c.path, n);
        continue;
      }
      left.delete(c.path);
      if (store.markEmbedded(c.path, hashes.get(c.path)!)) report.embeddedFiles++;
    }
  };
  // Vectors under this key prove the endpoint takes ordinary input; without them, a
  // refusal could be a misconfigured endpoint refusing everything (see the probe below).
  let accepted = store.hasVectors();
  const refused: Array<{ chunk: ChunkRow; err: unknown }> = [];
  const embedBatch = async (batch: ChunkRow[]): Promise<void> => {
    let vectors: Float32Array[];
    try {
      vectors = await embedder.embed(batch.map(embeddingText));
    } catch (err) {
      if (!refusesInput(err)) throw err;
      if (batch.length === 1) refused.push({ chunk: batch[0]!, err });
      else {
        const half = Math.ceil(batch.length / 2);
        await embedBatch(batch.slice(0, half));
        await embedBatch(batch.slice(half));
      }
      return;
    }
    const dims = vectors[0]!.length;
    const storedDims = store.meta('vec_dims');
    if (storedDims !== undefined && Number(storedDims) !== dims) throw new VectorSizeChanged(dims, storedDims);
    store.tx(() => {
      store.ensureVectors(embedder.key, dims);
      store.writeVectors(batch.map((c, j) => ({ id: c.id, vector: vectors[j]! })));
      settle(batch);
    });
    accepted = true;
    report.embeddedChunks += batch.length;
  };

  try {
    for (let i = 0; i < chunks.length; i += embedder.batchSize) {
      await embedBatch(chunks.slice(i, i + embedder.batchSize));
      if (!refused.length) continue;
      // Every input refused so far: one short input tells a chunk too long for the model
      // from an endpoint that refuses everything (a wrong model name answers 400 on some
      // servers), which must stop the run like any other failure.
      if (!accepted) {
        try {
          await embedder.embed([embeddingText(refused[0]!.chunk).slice(0, 200)]);
          accepted = true;
        } catch {
          throw refused[0]!.err;
        }
      }
      const done = refused.splice(0);
      store.tx(() => settle(done.map((r) => r.chunk)));
      noteRefused(report, done);
    }
  } catch (err) {
    report.vectorState = 'failed';
    if (err instanceof VectorSizeChanged) {
      // Same endpoint and model name, different vectors: the server changed models. Start over next run.
      store.tx(() => store.resetVectors());
      report.warnings.push(`${err.message}; vectors were dropped and will be rebuilt by the next index run`);
      return;
    }
    report.warnings.push(`${describeEmbedError(embedder.baseURL, err)}; ${left.size} file(s) have no vectors yet (full-text search covers them; the next index run retries)`);
  }
}

function noteRefused(report: IndexReport, done: Array<{ chunk: ChunkRow; err: unknown }>): void {
  report.refusedChunks += done.length;
  const byPath = new Map<string, Array<{ chunk: ChunkRow; err: unknown }>>();
  for (const r of done) byPath.set(r.chunk.path, [...(byPath.get(r.chunk.path) ?? []), r]);
  for (const [path, rs] of byPath) {
    const status = (rs[0]!.err as { status?: number }).status;
    const lines = rs.map((r) => r.chunk.line).join(', ');
    report.notes.push({ path, note: `the embeddings endpoint refused ${rs.length} chunk(s) (HTTP ${status}; line ${lines}): no vector for them, full-text search still finds them` });
  }
}
