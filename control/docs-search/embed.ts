/**
 * Embeddings through the `openai` client, so OpenAI and any OpenAI-compatible server
 * (llama.cpp, Ollama, vLLM, LocalAI, ...) work. Callers turn a failure into a warning and
 * carry on with full-text search: an embeddings outage never fails a ticket.
 */
import type OpenAI from 'openai';
import type { EmbeddingsSettings } from './settings.ts';

/** Characters of a chunk sent for embedding; keeps every input under common model limits (8k tokens). */
const MAX_INPUT_CHARS = 8000;

export interface Embedder {
  readonly baseURL: string;
  /** Names the vector space (endpoint, model, size): vectors under different keys are never mixed. */
  readonly key: string;
  readonly batchSize: number;
  /** One vector per text, in order. Throws on any failure. */
  embed(texts: string[]): Promise<Float32Array[]>;
}

/** An embedder for the configured endpoint, or null when no endpoint is configured. */
export function createEmbedder(settings: EmbeddingsSettings, apiKey: string | undefined): Embedder | null {
  const { baseURL, model, dimensions } = settings;
  if (!baseURL) return null;
  // Loaded on first use: most runs have no embeddings endpoint, and every CLI start pays for imports.
  let client: Promise<OpenAI> | undefined;
  const openai = () =>
    (client ??= import('openai').then(
      ({ default: OpenAIClient }) =>
        new OpenAIClient({
          baseURL,
          // Local servers take no key, but the client insists on one.
          apiKey: apiKey || 'none',
          timeout: settings.timeoutMs,
          maxRetries: settings.maxRetries,
        }),
    ));
  return {
    baseURL,
    key: `${baseURL}|${model}|${dimensions ?? ''}`,
    batchSize: settings.batchSize,
    async embed(texts) {
      if (texts.length === 0) return [];
      const res = await (await openai()).embeddings.create({
        model,
        input: texts.map((t) => t.slice(0, MAX_INPUT_CHARS)),
        // Explicit floats: the client otherwise asks for base64, which not every local server speaks.
        encoding_format: 'float',
        ...(dimensions ? { dimensions } : {}),
      });
      const data = [...res.data].sort((a, b) => a.index - b.index);
      if (data.length !== texts.length) throw new Error(`asked for ${texts.length} embeddings, got ${data.length}`);
      const dims = data[0]!.embedding.length;
      return data.map((d) => {
        if (!Array.isArray(d.embedding) || d.embedding.length !== dims || dims === 0) {
          throw new Error('the endpoint returned vectors of differing or zero size');
        }
        // A vector of nulls, NaNs or zeros points nowhere: every section would be as near.
        let norm = 0;
        for (const x of d.embedding) {
          if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error('the endpoint returned a vector holding a value that is not a finite number');
          norm += x * x;
        }
        if (norm === 0) throw new Error('the endpoint returned a vector of zeros');
        return Float32Array.from(d.embedding);
      });
    },
  };
}

/**
 * The endpoint refused these inputs, not the request: 400 (bad input), 413 (too long for
 * the model, as TEI and vLLM answer) or 422 (validation). Other answers (401/403 a key,
 * 404 a URL or model, 429 a rate limit, 5xx, no answer) are about the endpoint, and
 * splitting a batch would only send the same failure once per chunk.
 */
export function refusesInput(err: unknown): boolean {
  const status = (err as { status?: unknown } | undefined)?.status;
  return status === 400 || status === 413 || status === 422;
}

/** One line saying what went wrong with the endpoint (never the key), down to the root cause (e.g. ECONNREFUSED). */
export function describeEmbedError(baseURL: string, err: unknown): string {
  const parts: string[] = [];
  let e = err as { message?: string; status?: number; cause?: unknown } | undefined;
  if (e?.status) parts.push(`HTTP ${e.status}`);
  for (let depth = 0; e && depth < 4; depth++) {
    const msg = (e.message ?? String(e)).replace(/\.$/, '');
    if (msg && !parts.includes(msg)) parts.push(msg);
    e = e.cause as typeof e;
  }
  return `embeddings endpoint ${baseURL} failed: ${parts.join(': ')}`;
}
