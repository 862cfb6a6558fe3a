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
  const tokens: string[] = [];
  for (const [word] of namesOfEngineMessages(withoutStackLocations(text.replace(FENCE_TAG, ' '))).matchAll(WORD)) {
    // The identifier's own tokens first, then its parts or whole (see identifierExtras).
    for (const t of [...word.split('_').map((w) => w.toLowerCase()), ...identifierExtras(word)]) {
      if (t.length > 1 && !isPlainNumber(t)) tokens.push(t);
    }
  }
  const content = tokens.filter((t) => !STOPWORDS.has(t) && !isIdentifierNoise(t));
  // A query made only of stopwords still deserves an answer.
  const terms = [...new Set(content.length ? content : tokens)].slice(0, MAX_TERMS);
  if (!terms.length) return { match: null, terms };
  return { match: orQuery(terms), terms };
}

/**
 * Only the harness's own fence tags are markup here: the ticket text inside them is the
 * reporter's, and a tag-like word there is content (React's `(<CheckoutForm>)` names the
 * component the ticket is about).
 */
const FENCE_TAG = /<\/?untrusted-data\b[^<>]*>/gi;

/** A word of text as code writes it: letters and digits, perhaps joined by underscores. */
const WORD = /[\p{L}\p{N}_]+/gu;
/** A lower-to-upper step (ownerName, s3Bucket) or an acronym before a word (HTTPServer). */
const CAMEL_STEP = /[\p{Ll}\p{N}]\p{Lu}|\p{Lu}\p{Lu}\p{Ll}/u;
const CAMEL_PART = /\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?[\p{Ll}\p{N}]+|\p{Lu}[\p{Lu}\p{N}]*/gu;
const CASED_WORD = /^[\p{Lu}\p{Ll}\p{N}]+$/u;

/**
 * The words an identifier stands for beyond the tokens FTS5 itself cuts it into (at
 * underscores, never at case): the parts of a camelCase name (ownerName: owner, name;
 * getHTTPResponse: get, http, response) and the whole of a snake_case one (owner_name:
 * ownername, which is also ownerName's token). Indexing and querying both add them, so a
 * ticket's `getPet` meets a doc's "pet" and a doc's `ownerName` a ticket's "name".
 */
function identifierExtras(word: string): string[] {
  if (BUILTIN_ERRORS.has(word)) return [];
  const own = word.split('_').filter(Boolean);
  if (own.length > 1 || (own.length === 1 && CAMEL_STEP.test(own[0]!))) {
    const parts = own.flatMap((w) => (CAMEL_STEP.test(w) && CASED_WORD.test(w) ? (w.match(CAMEL_PART) ?? [w]) : [w]));
    const out = new Set<string>();
    if (own.length > 1) out.add(own.join('').toLowerCase());
    if (parts.length > own.length) for (const p of parts) out.add(p.toLowerCase());
    for (const w of own) out.delete(w.toLowerCase());
    return [...out].filter((t) => t.length > 1);
  }
  return [];
}

/**
 * The language's own error classes stay whole: the "type" of TypeError or the "key" of
 * KeyError is no word of the application's (TypeError lifted every doc mentioning a
 * `type` field). An application's own (PaymentDeclinedError) is split like any name.
 */
const BUILTIN_ERRORS = new Set(
  ('EvalError RangeError ReferenceError SyntaxError TypeError URIError AggregateError InternalError ' +
    'AttributeError KeyError IndexError NameError ValueError ImportError ModuleNotFoundError RuntimeError OSError IOError ' +
    'LookupError ZeroDivisionError AssertionError NotImplementedError RecursionError NoneType ' +
    'NullPointerException IllegalArgumentException IllegalStateException ClassCastException IndexOutOfBoundsException ' +
    'ArrayIndexOutOfBoundsException NumberFormatException UnsupportedOperationException ConcurrentModificationException').split(' '),
);

/**
 * The wording of a runtime's error messages is the same for every such bug, and only the
 * names in it say which one this is: "Cannot read properties of undefined (reading
 * 'name')" is about `name`, and its "read" and "reading" had ranked a section on read
 * endpoints above the doc about the missing value. Each message is cut to its names and
 * the missing value (undefined, null).
 */
function namesOfEngineMessages(text: string): string {
  return ENGINE_MESSAGES.reduce((t, [re, keep]) => t.replace(re, keep), text);
}

const ENGINE_MESSAGES: Array<[RegExp, string]> = [
  // V8 (Node, Chrome): since 2021, and the older form.
  [/Cannot (?:read|set) properties of (undefined|null) \((?:reading|setting) '([^'\n]*)'\)/g, ' $1 $2 '],
  [/Cannot (?:read|set) property '([^'\n]*)' of (undefined|null)/g, ' $2 $1 '],
  [/Cannot destructure property '([^'\n]*)' of '([^'\n]*)' as it is (undefined|null)/g, ' $3 $1 $2 '],
  // The name is taken whole from its start (see SOURCE_LOCATION).
  [/(?<![\w$.])(?=([\w$.]+))\1(?:\(\.\.\.\))? is not (?:a function|a constructor|defined|iterable)/g, ' $1 '],
  // CPython.
  [/'(\w+)' object has no attribute '([^'\n]*)'/g, ' $1 $2 '],
  [/'(\w+)' object is not (?:subscriptable|callable|iterable)/g, ' $1 '],
];

/** `text` with its identifiers' extra words appended, for the full-text index (see identifierExtras). */
export function withIdentifierParts(text: string): string {
  const extra: string[] = [];
  for (const [word] of text.matchAll(WORD)) extra.push(...identifierExtras(word));
  return extra.length ? `${text}\n${extra.join(' ')}` : text;
}

/**
 * Frames and source locations of a stack trace name the code, not the docs: `src`,
 * `server`, `ts` and line numbers matched every layout section instead of the one about
 * the failing behaviour. A frame keeps its function name (`at getPet (src/pets.ts:14:94)`
 * is getPet); frames inside node's internals or node_modules go whole.
 */
function withoutStackLocations(text: string): string {
  return text
    .replace(JS_FRAME, (_, fn: string | undefined, where: string | undefined) => (!fn || /^(?:node:|internal\/)|node_modules/.test(where ?? '') ? '' : fn))
    .replace(PY_FRAME, (_, fn: string | undefined) => fn ?? '')
    .replace(SOURCE_LOCATION, ' ');
}

/**
 * `at fn (file:line:col)`, `at async fn (...)`, Java's `at a.b.C.fn(File.java:12)`, or a bare
 * `at file:line:col`. The name keeps the spaces before its `(`: a `[ \t]*` there was tried
 * from every space of a long run.
 */
const JS_FRAME = /^[ \t]*at[ \t]+(?:async[ \t]+)?(?:new[ \t]+)?(?:(\S.*?)\(([^()\n]*:\d+(?::\d+)?|native|<anonymous>|Native Method|Unknown Source)\)|\S+:\d+(?::\d+)?)[ \t]*$/gm;
/** Python's `File "/app/x.py", line 12, in handler`. */
const PY_FRAME = /^[ \t]*File "[^"\n]*", line \d+(?:, in (\S+))?.*$/gm;
/**
 * `src/pets.ts:14:94`, `file:///srv/app.mjs:3`: a source file with a line number, anywhere in
 * the text. The path is taken whole from its start, then its end is checked: a run tried
 * from each of its characters took 4 s over 40 KB of `a.a.`, growing with the square (a
 * minified bundle's line in a stack trace, a blob in an error message).
 */
const SOURCE_LOCATION = /(?:file:)?(?<![\w@~.+/\\-])(?=([\w@~.+/\\-]+))\1(?<=\.(?:[cm]?[jt]sx?|py|rb|go|java|kt|rs|php|cs|swift|scala|exs?|erl|c|cc|cpp|h|hpp|vue|svelte|dart|lua)):\d+(?::\d+)?/gi;

/**
 * Numbers in a ticket are ids, counts, ports and line numbers (`/api/pets/5`), which no
 * doc is about; HTTP status codes (404, 503) are the exception, since docs say which
 * status an endpoint answers.
 */
function isPlainNumber(t: string): boolean {
  return /^\d+$/.test(t) && !/^[1-5]\d\d$/.test(t);
}

function orQuery(terms: string[]): string {
  return terms.map((t) => `"${t}"`).join(' OR ');
}

/**
 * BM25 candidates without the too-common words (see COMMON_SHARE). When every word found
 * is common, the chunks holding all of them are ranked (far fewer than those holding any),
 * and only when fewer than `limit` hold them all does the plain OR run. A word in no chunk
 * is neither: beside common ones it had left a query that found nothing at all (a ticket's
 * "payments crash" where every section says payments and none crash).
 */
function ftsCandidates(store: DocsStore, terms: string[], chunks: number, limit: number): Ranked[] {
  const cap = Math.max(COMMON_MIN_ROWS, Math.ceil(chunks * COMMON_SHARE));
  if (chunks <= cap || terms.length < 2) return store.ftsSearch(orQuery(terms), limit);
  const counts = new Map(terms.map((t) => [t, store.countMatches(`"${t}"`, cap)]));
  const found = terms.filter((t) => counts.get(t)! > 0);
  const useful = found.filter((t) => counts.get(t)! < cap);
  if (useful.length) return store.ftsSearch(orQuery(useful), limit);
  if (!found.length) return [];
  const all = store.ftsSearch(found.map((t) => `"${t}"`).join(' AND '), limit);
  return all.length >= limit ? all : store.ftsSearch(orQuery(found), limit);
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
