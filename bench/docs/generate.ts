/**
 * Synthetic markdown for the docs bench's scale run: deterministic (seeded), with a
 * Zipf-distributed vocabulary so common words hit many chunks (the slow case for an
 * OR query) and rare words few, headings, lists and code fences.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const TECH = (
  'request response timeout retry cache queue worker lease ticket webhook signature token session login user ' +
  'payment invoice refund checkout cart order stock price currency customer account email notification slack ' +
  'alert metric latency p95 p99 error exception stack trace log level deploy release branch commit migration ' +
  'schema index query transaction lock deadlock pool connection socket port server client proxy header cookie ' +
  'redirect route handler middleware validation parse encode decode json yaml config secret environment flag ' +
  'feature search filter sort page limit offset batch import export upload download image thumbnail storage ' +
  'bucket backup restore replica shard partition consumer producer topic event stream scheduler cron job'
).split(' ');
const SYLLABLES = 'ka to ri mu se la po ne vi da zu ho qe fi ga ly ob ux en ar'.split(' ');

/** A seeded PRNG (mulberry32), so every run indexes the same files. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Technical words first (most frequent), then made-up words down a long tail. */
export function vocabulary(size: number, rand: () => number): string[] {
  const words = new Set(TECH);
  while (words.size < size) {
    const n = 2 + Math.floor(rand() * 3);
    let w = '';
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(rand() * SYLLABLES.length)];
    words.add(w);
  }
  return [...words];
}

/** Draw words with probability ∝ 1 / rank. */
export function zipfSampler(words: string[], rand: () => number): () => string {
  const cum: number[] = [];
  let total = 0;
  for (let r = 1; r <= words.length; r++) cum.push((total += 1 / r));
  return () => {
    const x = rand() * total;
    let lo = 0;
    let hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return words[lo]!;
  };
}

/** Write `n` markdown files under `<repo>/docs/` (a few subfolders deep); returns their total bytes. */
export function generateDocs(repo: string, n: number, seed: number): { bytes: number; words: string[] } {
  const rand = rng(seed);
  const words = vocabulary(6000, rand);
  const word = zipfSampler(words, rand);
  const sentence = (len: number) => Array.from({ length: len }, word).join(' ');
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const parts = [`# ${sentence(3)}`, '', sentence(25), ''];
    const sections = 3 + Math.floor(rand() * 6);
    for (let s = 0; s < sections; s++) {
      parts.push(`## ${sentence(2 + Math.floor(rand() * 3))}`, '');
      const paragraphs = 1 + Math.floor(rand() * 3);
      for (let p = 0; p < paragraphs; p++) parts.push(sentence(20 + Math.floor(rand() * 50)), '');
      if (rand() < 0.3) parts.push('```ts', `const ${word()} = ${word()}(${word()});`, '# not a heading', '```', '');
      if (rand() < 0.3) parts.push(`- ${sentence(6)}`, `- ${sentence(6)}`, '');
    }
    const dir = join(repo, 'docs', `area-${i % 10}`, `part-${i % 7}`);
    mkdirSync(dir, { recursive: true });
    const text = parts.join('\n');
    writeFileSync(join(dir, `doc-${i}.md`), text);
    bytes += Buffer.byteLength(text);
  }
  return { bytes, words };
}
