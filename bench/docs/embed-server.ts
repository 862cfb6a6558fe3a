/**
 * A deterministic OpenAI-compatible embeddings server on loopback, for the docs bench and
 * the docs-search tests: `POST /v1/embeddings` answers hashed bag-of-words vectors (word
 * stems plus character trigrams, so "fingerprinting" lands near "fingerprint"). It counts
 * requests and inputs, so a test can prove what was (re-)embedded, and can be told to fail.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EmbedServer {
  /** Base URL for the `openai` client, ending in /v1. */
  baseURL: string;
  /** Requests answered with vectors, and texts embedded, since start or `reset()`. */
  requests: number;
  inputs: number;
  /** Every text embedded, in order (tests check which chunks were sent). */
  texts: string[];
  /** The Authorization header of the last request (tests check which key was sent). */
  lastAuthorization: string | undefined;
  /** When set, every request gets this HTTP status and an error body. */
  failWith: number | null;
  reset(): void;
  close(): Promise<void>;
}

const STOP = new Set(
  ('a an and are as at be been but by can could did do does for from had has have how i if in into is it its me my no not of on ' +
    'or our so than that the their them then there these they this those to too us was we were what when where which while who ' +
    'why will with would you your after before again all also any because both each just more most only other same should some ' +
    'such up very get got see near one two new old via per out off over under about').split(' '),
);

function stems(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 1 && !STOP.has(w))
    .map((w) => w.replace(/(ing|ed|es|s)$/, ''));
}

/**
 * The vector the server returns for `text`: L2-normalised, `dims` long. Features are
 * hashed into the dimensions, so few dimensions mean collisions, i.e. noise: 256 is
 * enough for tests, the bench's recall run uses 4096.
 */
export function hashedEmbedding(text: string, dims: number): Float32Array {
  const v = new Float32Array(dims);
  const add = (feature: string, weight: number) => {
    const h = fnv1a(feature);
    const i = h % dims;
    v[i] = v[i]! + (h & 0x80000000 ? -1 : 1) * weight;
  };
  for (const stem of stems(text)) {
    add(`w:${stem}`, 1);
    // Character trigrams put misspellings and word variants near each other.
    const padded = `^${stem}$`;
    for (let i = 0; i + 3 <= padded.length; i++) add(`t:${padded.slice(i, i + 3)}`, 0.3);
  }
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dims; i++) v[i]! /= norm;
  return v;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Start the server on a free loopback port. */
export async function startEmbedServer(opts: { dims?: number } = {}): Promise<EmbedServer> {
  const dims = opts.dims ?? 256;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      state.lastAuthorization = req.headers.authorization;
      if (state.failWith !== null) return reply(state.failWith, { error: { message: 'embeddings are down (test)', type: 'server_error' } });
      if (req.method !== 'POST' || req.url !== '/v1/embeddings') return reply(404, { error: { message: `no route ${req.method} ${req.url}` } });
      let body: { model?: string; input?: string | string[]; encoding_format?: string };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      } catch {
        return reply(400, { error: { message: 'body is not JSON' } });
      }
      const inputs = typeof body.input === 'string' ? [body.input] : body.input;
      if (!Array.isArray(inputs) || !body.model) return reply(400, { error: { message: 'needs model and input' } });
      state.requests++;
      state.inputs += inputs.length;
      state.texts.push(...inputs);
      const data = inputs.map((text, index) => {
        const vec = hashedEmbedding(text, dims);
        const embedding = body.encoding_format === 'base64' ? Buffer.from(vec.buffer).toString('base64') : Array.from(vec);
        return { object: 'embedding', index, embedding };
      });
      reply(200, { object: 'list', data, model: body.model, usage: { prompt_tokens: 0, total_tokens: 0 } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const state: EmbedServer = {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests: 0,
    inputs: 0,
    texts: [],
    lastAuthorization: undefined,
    failWith: null,
    reset() {
      state.requests = 0;
      state.inputs = 0;
      state.texts = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        // The openai client keeps connections alive; without this, close() waits for them to time out.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return state;
}
