/**
 * Querying the docs index: BM25 over FTS5 always; cosine over sqlite-vec when the index
 * and the configured endpoint both have vectors; reciprocal rank fusion of the two.
 * Ticket text is arbitrary (quotes, parentheses, AND/NEAR, `*`), so it never reaches
 * FTS5 as syntax: it is cut into word tokens, and each token is quoted.
 */
import { describeEmbedError, type Embedder } from './embed.ts';
import type { ChunkRow, DocsStore, Ranked } from './store.ts';

/** RRF constant from Cormack et al. (2009); dampens the gap between rank 1 and rank 2. */
const RRF_K = 60;
/** Candidates each ranker contributes to the fusion. */
const CANDIDATES = 50;
/** Terms kept from a long ticket text (in order of appearance: the title first); a stack trace should not turn into a 500-term OR. */
const MAX_TERMS = 64;
const MAX_QUERY_EMBED_CHARS = 4000;
/**
 * In a large index, a word found in more than this share of the chunks (and at least
 * COMMON_MIN_ROWS of them) is left out of the ranking query: its BM25 weight is close to
 * nothing, yet scoring it means scoring most of the index (several times slower over the
 * bench's 1,000 files). Small indexes never reach the floor, so they keep every word.
 */
const COMMON_SHARE = 0.25;
const COMMON_MIN_ROWS = 1000;

/** Words too common to say anything about which section is meant. */
const STOPWORDS = new Set(
  ('a an and are as at be been but by can could did do does doing for from had has have how i if in into is it its ' +
    'me my no not of on or our so than that the their them then there these they this those to too us was we were ' +
    'what when where which while who why will with would you your after before again all also any because both each ' +
    'just more most only other same should some such up very get got see seems near').split(' '),
);

export type VectorState = 'off' | 'ok' | 'failed' | 'unavailable' | 'missing';

export interface SearchHit extends ChunkRow {
  /** Higher is better: fused RRF score, or BM25 relevance when full-text search ran alone. */
  score: number;
  /** Query terms found in the section heading and in the text (stemmed matches included). */
  headingTerms: string[];
  terms: string[];
  /** Cosine similarity, when the vector search ranked this chunk among its candidates. */
  similarity?: number;
  /** Why it matched, in words. */
  why: string;
}

export interface SearchResult {
  query: string;
  mode: 'fts' | 'hybrid';
  vectorState: VectorState;
  hits: SearchHit[];
  indexed: { files: number; chunks: number; vectors: number };
  /** Plain sentences for people and for pre-context.md (endpoint down, index without vectors, ...). */
  warnings: string[];
  /** The search could not run at all (the index could not be opened): nothing was looked at. */
  failed?: boolean;
}

/** Ticket text → a safe FTS5 query: distinct word tokens, quoted, OR-ed. `match` is null when no word is left. */
export function buildFtsQuery(text: string): { match: string | null; terms: string[] } {
  // Markup tags (the harness wraps ticket text in <untrusted-data>) are not what the ticket is about.
  const words = text.replace(/<\/?[A-Za-z][\w-]*(?:\s[^<>]*)?>/g, ' ');
  const tokens = words.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((t) => t.length > 1 || /\d/.test(t));
  const content = tokens.filter((t) => !STOPWORDS.has(t) && !isIdentifierNoise(t));
  // A query made only of stopwords still deserves an answer.
  const terms = [...new Set(content.length ? content : tokens)].slice(0, MAX_TERMS);
  if (!terms.length) return { match: null, terms };
  return { match: orQuery(terms), terms };
}

function orQuery(terms: string[]): string {
  return terms.map((t) => `"${t}"`).join(' OR ');
}

/**
 * BM25 candidates without the too-common words (see COMMON_SHARE). When every word is
 * common, the chunks holding all of them are ranked (far fewer than those holding any),
 * and only when fewer than `limit` hold them all does the plain OR run.
 */
function ftsCandidates(store: DocsStore, terms: string[], chunks: number, limit: number): Ranked[] {
  const cap = Math.max(COMMON_MIN_ROWS, Math.ceil(chunks * COMMON_SHARE));
  if (chunks <= cap || terms.length < 2) return store.ftsSearch(orQuery(terms), limit);
  const useful = terms.filter((t) => store.countMatches(`"${t}"`, cap) < cap);
  if (useful.length) return store.ftsSearch(orQuery(useful), limit);
  const all = store.ftsSearch(terms.map((t) => `"${t}"`).join(' AND '), limit);
  return all.length >= limit ? all : store.ftsSearch(orQuery(terms), limit);
}

/** Hashes, ids and long numbers from tickets (fingerprints, request ids, timestamps) match no doc and crowd out real terms. */
function isIdentifierNoise(t: string): boolean {
  return t.length > 40 || /^\d{5,}$/.test(t) || (t.length >= 8 && /^[0-9a-f]+$/.test(t) && /\d/.test(t));
}

export interface SearchOptions {
  k: number;
  embedder: Embedder | null;
  /** The endpoint already failed moments ago (during the index refresh): don't wait on it again. */
  endpointFailed?: boolean;
}

/** The `k` best chunks for `query`. Never throws for the query's content or an embeddings failure. */
export async function searchDocs(store: DocsStore, query: string, opts: SearchOptions): Promise<SearchResult> {
  const { match, terms } = buildFtsQuery(query);
  const warnings: string[] = [];
  const indexed = store.counts();
  const fts = match ? ftsCandidates(store, terms, indexed.chunks, Math.max(CANDIDATES, opts.k)) : [];
  const { state, vec } = opts.endpointFailed
    ? { state: 'failed' as const, vec: [] }
    : await vectorCandidates(store, query, opts.embedder, Math.max(CANDIDATES, opts.k), warnings);

  const hybrid = state === 'ok';
  const hits: SearchHit[] = [];
  for (const f of fuse(fts, vec).slice(0, opts.k)) {
    const row = store.getChunk(f.id);
    if (!row) continue;
    const m = match ? store.matchedTerms(match, f.id) : { heading: [], body: [] };
    const hit: SearchHit = { ...row, score: hybrid ? f.score : (f.bm25 ?? 0), headingTerms: m.heading, terms: m.body, why: '' };
    if (f.similarity !== undefined) hit.similarity = f.similarity;
    hit.why = explain(hit);
    hits.push(hit);
  }
  return { query, mode: hybrid ? 'hybrid' : 'fts', vectorState: state, hits, indexed, warnings };
}

interface Fused {
  /** The chunk that stands for the section: its best piece by BM25, else by vectors. */
  id: number;
  score: number;
  bm25?: number;
  similarity?: number;
}

/**
 * Reciprocal rank fusion over sections, not chunks: a long section split into pieces is
 * one answer, and the evidence for it adds up even when the two rankers prefer different
 * pieces of it. Each ranker's list is reduced to its sections, best piece first.
 */
function fuse(fts: Ranked[], vec: Ranked[]): Fused[] {
  const sections = new Map<string, Fused>();
  const rank = (list: Ranked[], apply: (e: Fused, r: Ranked) => void) => {
    let n = 0;
    const seen = new Set<string>();
    for (const r of list) {
      if (seen.has(r.section)) continue;
      seen.add(r.section);
      const e = sections.get(r.section) ?? { id: r.id, score: 0 };
      e.score += 1 / (RRF_K + ++n);
      apply(e, r);
      sections.set(r.section, e);
    }
  };
  rank(fts, (e, r) => (e.bm25 = -r.score));
  rank(vec, (e, r) => (e.similarity = 1 - r.score));
  return [...sections.values()].sort((a, b) => b.score - a.score);
}

async function vectorCandidates(
  store: DocsStore,
  query: string,
  embedder: Embedder | null,
  n: number,
  warnings: string[],
): Promise<{ state: VectorState; vec: Ranked[] }> {
  if (!embedder) return { state: 'off', vec: [] };
  if (!query.trim()) return { state: 'ok', vec: [] }; // nothing to embed, and endpoints refuse empty input
  if (store.vecError) {
    warnings.push(`${store.vecError}; full-text search only`);
    return { state: 'unavailable', vec: [] };
  }
  if (!store.hasVectors() || store.meta('vec_key') !== embedder.key) {
    warnings.push('the docs index has no vectors from the configured embeddings model yet (run `bugbot docs index` with the endpoint reachable); full-text search only');
    return { state: 'missing', vec: [] };
  }
  try {
    const [v] = await embedder.embed([query.slice(0, MAX_QUERY_EMBED_CHARS)]);
    if (v!.length !== Number(store.meta('vec_dims'))) throw new Error(`query vector has ${v!.length} dimensions, the index ${store.meta('vec_dims')}`);
    return { state: 'ok', vec: store.vecSearch(v!, n) };
  } catch (err) {
    warnings.push(`${describeEmbedError(embedder.baseURL, err)}; full-text search only`);
    return { state: 'failed', vec: [] };
  }
}

function explain(h: SearchHit): string {
  const parts: string[] = [];
  const body = h.terms.filter((t) => !h.headingTerms.includes(t));
  if (h.headingTerms.length) parts.push(`heading matches ${h.headingTerms.join(', ')}`);
  if (body.length) parts.push(`text matches ${body.join(', ')}`);
  if (h.similarity !== undefined) parts.push(`semantic match (similarity ${h.similarity.toFixed(2)})`);
  return parts.join('; ') || 'ranked by fusion';
}
