/**
 * The docs index: one SQLite file per target repository, separate from bugbot.db
 * (it is a cache: deleting it only costs a re-index). Every SQL statement of docs
 * retrieval lives here. Tables: `files` (path, content hash), `chunks`, `chunks_fts`
 * (FTS5, BM25) and, once an embeddings endpoint has answered, `chunks_vec` (sqlite-vec,
 * cosine distance; rowid = chunk id).
 */
import Database from 'better-sqlite3';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as sqliteVec from 'sqlite-vec';
import type { Chunk } from './chunk.ts';
import { withIdentifierParts } from './search.ts';

export interface FileRow {
  path: string;
  hash: string;
  bytes: number;
  chunks: number;
  note: string | null;
  /** Every chunk of the file has a vector under the current embeddings key. */
  embedded: number;
}

/** A candidate from one ranker, best first; `section` identifies its file + heading path. */
export interface Ranked {
  id: number;
  score: number;
  section: string;
}

export interface ChunkRow {
  id: number;
  path: string;
  heading: string;
  headingPath: string[];
  line: number;
  part: number;
  text: string;
}

// Chunk ids never come back (AUTOINCREMENT): a process still embedding a file's old chunks
// must not be able to attach their vectors to new chunks that reused the ids.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
  path TEXT PRIMARY KEY, hash TEXT NOT NULL, bytes INTEGER NOT NULL,
  chunks INTEGER NOT NULL, note TEXT, embedded INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, ordinal INTEGER NOT NULL, heading TEXT NOT NULL,
  heading_path TEXT NOT NULL, line INTEGER NOT NULL, part INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_path ON chunks(path, ordinal);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(heading, path, body, tokenize = 'porter unicode61 remove_diacritics 2');
`;

/** BM25 column weights: heading path, file path, body. A term in a heading says more than one in passing. */
const BM25 = 'bm25(chunks_fts, 4.0, 2.0, 1.0)';
const HL_START = '\u0002';
const HL_END = '\u0003';

// Rowids of chunks_fts and chunks_vec are bound as BigInt: better-sqlite3 binds a JS number
// as REAL, FTS5 then ignores `rowid = ?` next to MATCH (every match comes back), and vec0
// refuses a non-integer rowid.
export class DocsStore {
  private readonly db: Database.Database;
  /** Why vectors cannot be used in this process (the sqlite-vec extension did not load), if so. */
  readonly vecError: string | null;
  private readonly cache = new Map<string, Database.Statement>();

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // Two workers may index the same repository at once; the second waits rather than fails.
    this.db.pragma('busy_timeout = 10000');
    let vecError: string | null = null;
    try {
      sqliteVec.load(this.db);
    } catch (err) {
      vecError = `sqlite-vec did not load: ${(err as Error).message}`;
    }
    this.vecError = vecError;
    this.db.exec(SCHEMA);
  }

  /**
   * Run `use` on the index at `path`, closed after. One SQLite cannot read (a crash
   * mid-write on a full disk, a file overwritten) is moved aside and made again: the index
   * is a cache of the docs, and the next refresh fills it. A damaged page past the header
   * shows only when a statement reads it, so a failure of `use` that says the file is
   * damaged does the same, and `use` runs once more on the new index. `rebuilt` then says
   * so (for the caller's warning).
   */
  static async using<T>(path: string, use: (store: DocsStore, rebuilt: string | null) => Promise<T>): Promise<T> {
    let rebuilt: string | null = null;
    let store: DocsStore;
    try {
      store = new DocsStore(path);
    } catch (err) {
      if (path === ':memory:' || !isDamaged(err)) throw unusable(path, err);
      rebuilt = moveAside(path, err);
      store = new DocsStore(path);
    }
    try {
      return await use(store, rebuilt);
    } catch (err) {
      // An index made anew that fails again, or a failure of another kind: the caller's.
      if (rebuilt || path === ':memory:' || !isDamaged(err)) throw unusable(path, err);
      store.close();
      rebuilt = moveAside(path, err);
      store = new DocsStore(path);
      return await use(store, rebuilt);
    } finally {
      store.close();
    }
  }

  close(): void {
    this.db.close();
  }

  /** Prepared once per connection: searches run the same few statements many times. */
  private stmt(sql: string): Database.Statement {
    let st = this.cache.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.cache.set(sql, st);
    }
    return st;
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  meta(key: string): string | undefined {
    const row = this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string | null): void {
    if (value === null) this.stmt('DELETE FROM meta WHERE key = ?').run(key);
    else this.stmt('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  files(): Map<string, FileRow> {
    const rows = this.stmt('SELECT path, hash, bytes, chunks, note, embedded FROM files').all() as FileRow[];
    return new Map(rows.map((r) => [r.path, r]));
  }

  /**
   * Replace everything indexed for one file (call inside `tx`). The full-text row holds
   * the ranked heading path (no file title) and the identifiers' parts besides the text
   * as written; the chunk row keeps the text and heading path that are shown.
   */
  replaceFile(path: string, f: { hash: string; bytes: number; note: string | null }, chunks: Chunk[]): void {
    this.removeFile(path);
    const insFile = this.stmt('INSERT INTO files(path, hash, bytes, chunks, note, embedded) VALUES (?, ?, ?, ?, ?, 0)');
    insFile.run(path, f.hash, f.bytes, chunks.length, f.note);
    const insChunk = this.stmt('INSERT INTO chunks(path, ordinal, heading, heading_path, line, part, text) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const insFts = this.stmt('INSERT INTO chunks_fts(rowid, heading, path, body) VALUES (?, ?, ?, ?)');
    chunks.forEach((c, i) => {
      const id = insChunk.run(path, i, c.heading, JSON.stringify(c.headingPath), c.line, c.part, c.text).lastInsertRowid;
      insFts.run(BigInt(id), withIdentifierParts(c.rankedPath.join(' > ')), withIdentifierParts(path), withIdentifierParts(c.text));
    });
  }

  /** Drop a file and its chunks, full-text rows and vectors (call inside `tx`). */
  removeFile(path: string): void {
    const ids = this.stmt('SELECT id FROM chunks WHERE path = ?').pluck().all(path) as number[];
    const delFts = this.stmt('DELETE FROM chunks_fts WHERE rowid = ?');
    const delVec = this.hasVectors() ? this.stmt('DELETE FROM chunks_vec WHERE rowid = ?') : null;
    for (const id of ids) {
      delFts.run(BigInt(id));
      delVec?.run(BigInt(id));
    }
    this.stmt('DELETE FROM chunks WHERE path = ?').run(path);
    this.stmt('DELETE FROM files WHERE path = ?').run(path);
  }

  /** Forget every vector (the embeddings model or endpoint changed); files must be embedded again. */
  resetVectors(): void {
    this.db.exec('DROP TABLE IF EXISTS chunks_vec; UPDATE files SET embedded = 0;');
    this.setMeta('vec_key', null);
    this.setMeta('vec_dims', null);
  }

  /** The vector table exists and sqlite-vec is loaded to read it. */
  hasVectors(): boolean {
    return !this.vecError && Boolean(this.stmt("SELECT 1 FROM sqlite_master WHERE name = 'chunks_vec'").get());
  }

  /** Create the vector table for `dims`-sized vectors under `key` (endpoint + model). */
  ensureVectors(key: string, dims: number): void {
    if (this.hasVectors()) return;
    this.db.exec(`CREATE VIRTUAL TABLE chunks_vec USING vec0(embedding float[${dims}] distance_metric=cosine)`);
    this.setMeta('vec_key', key);
    this.setMeta('vec_dims', String(dims));
  }

  chunksOf(paths: string[]): ChunkRow[] {
    const stmt = this.stmt('SELECT id, path, heading, heading_path, line, part, text FROM chunks WHERE path = ? ORDER BY ordinal');
    return paths.flatMap((p) => (stmt.all(p) as RawChunk[]).map(toChunkRow));
  }

  getChunk(id: number): ChunkRow | undefined {
    const row = this.stmt('SELECT id, path, heading, heading_path, line, part, text FROM chunks WHERE id = ?').get(id) as RawChunk | undefined;
    return row && toChunkRow(row);
  }

  /** Every distinct (file, heading) in the index, for checking labelled expectations against it. */
  sections(): Array<{ path: string; heading: string }> {
    return this.stmt('SELECT DISTINCT path, heading FROM chunks ORDER BY path, heading').all() as Array<{ path: string; heading: string }>;
  }

  /**
   * Store vectors (call inside `tx`), replacing earlier ones. A chunk that is gone (another
   * process re-indexed its file meanwhile) gets none, so no vector outlives its chunk.
   */
  writeVectors(rows: Array<{ id: number; vector: Float32Array }>): void {
    const exists = this.stmt('SELECT 1 FROM chunks WHERE id = ?');
    const del = this.stmt('DELETE FROM chunks_vec WHERE rowid = ?');
    const ins = this.stmt('INSERT INTO chunks_vec(rowid, embedding) VALUES (?, ?)');
    for (const r of rows) {
      if (!exists.get(r.id)) continue;
      del.run(BigInt(r.id));
      ins.run(BigInt(r.id), r.vector);
    }
  }

  /** Mark a file embedded, unless it changed (another process re-indexed it) since `hash` was read. */
  markEmbedded(path: string, hash: string): boolean {
    return this.stmt('UPDATE files SET embedded = 1 WHERE path = ? AND hash = ?').run(path, hash).changes > 0;
  }

  counts(): { files: number; chunks: number; vectors: number } {
    const files = this.stmt('SELECT count(*) FROM files WHERE chunks > 0').pluck().get() as number;
    const chunks = this.stmt('SELECT count(*) FROM chunks').pluck().get() as number;
    const vectors = this.hasVectors() ? (this.stmt('SELECT count(*) FROM chunks_vec').pluck().get() as number) : 0;
    return { files, chunks, vectors };
  }

  /**
   * Best BM25 matches for an already escaped FTS5 query (lower score = better), each with
   * its section (file + heading path), looked up only for the rows that made the cut.
   */
  ftsSearch(match: string, limit: number): Ranked[] {
    const st = this.stmt(
      `SELECT m.id, m.score, c.path || char(0) || c.heading_path AS section
       FROM (SELECT rowid AS id, ${BM25} AS score FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY score LIMIT ?) m
       JOIN chunks c ON c.id = m.id ORDER BY m.score`,
    );
    return st.all(match, limit) as Ranked[];
  }

  /** Chunks matching an escaped FTS5 query, counted up to `cap` (stopping there keeps it cheap for common words). */
  countMatches(match: string, cap: number): number {
    const st = this.stmt('SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)');
    return st.pluck().get(match, cap) as number;
  }

  /** The query terms as they appear in one chunk's heading path and body (FTS5 highlight, so stemming counts). */
  matchedTerms(match: string, id: number): { heading: string[]; body: string[] } {
    const st = this.stmt(
      `SELECT highlight(chunks_fts, 0, '${HL_START}', '${HL_END}') AS h, highlight(chunks_fts, 2, '${HL_START}', '${HL_END}') AS b
       FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid = ?`,
    );
    const row = st.get(match, BigInt(id)) as { h: string; b: string } | undefined;
    return { heading: marked(row?.h ?? ''), body: marked(row?.b ?? '') };
  }

  /** Nearest chunks by cosine distance (as `score`, lower = better), each with its section. */
  vecSearch(vector: Float32Array, k: number): Ranked[] {
    const st = this.stmt(
      `SELECT v.id, v.distance AS score, c.path || char(0) || c.heading_path AS section
       FROM (SELECT rowid AS id, distance FROM chunks_vec WHERE embedding MATCH ? AND k = ?) v
       JOIN chunks c ON c.id = v.id ORDER BY v.distance`,
    );
    return st.all(vector, k) as Ranked[];
  }
}

/** SQLite says the file is no database or a damaged one (not a lock, a full disk or a permission). */
export function isDamaged(err: unknown): boolean {
  return /^SQLITE_(?:NOTADB|CORRUPT)/.test((err as { code?: string }).code ?? '');
}

/**
 * SQLite's "unable to open database file" and "attempt to write a readonly database" name
 * neither the file nor what to change; other errors pass as they are.
 */
function unusable(path: string, err: unknown): unknown {
  const code = (err as { code?: string }).code ?? '';
  if (!/^SQLITE_(?:CANTOPEN|READONLY)/.test(code)) return err;
  const why = `the docs index ${path} could not be opened for writing (${(err as Error).message}): bugbot must be able to write it and its folder, where SQLite keeps its -wal and -shm files (or set docs.indexPath)`;
  return Object.assign(new Error(why), { code });
}

/** Move a damaged index aside (`<path>.corrupt-<time>`); what to warn about. */
function moveAside(path: string, err: unknown): string {
  const aside = `${path}.corrupt-${Date.now()}`;
  try {
    renameSync(path, aside);
  } catch (e) {
    // Another process sharing the index moved it first.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const extra of ['-wal', '-shm']) rmSync(`${path}${extra}`, { force: true });
  return `the docs index ${path} could not be read (${(err as Error).message}): moved to ${aside} and built again`;
}

interface RawChunk {
  id: number;
  path: string;
  heading: string;
  heading_path: string;
  line: number;
  part: number;
  text: string;
}

function toChunkRow(r: RawChunk): ChunkRow {
  return { id: r.id, path: r.path, heading: r.heading, headingPath: JSON.parse(r.heading_path) as string[], line: r.line, part: r.part, text: r.text };
}

function marked(s: string): string[] {
  const out = new Set<string>();
  for (const m of s.matchAll(new RegExp(`${HL_START}([^${HL_END}]*)${HL_END}`, 'g'))) out.add(m[1]!.toLowerCase());
  return [...out];
}
