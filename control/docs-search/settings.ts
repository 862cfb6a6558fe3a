/**
 * Settings of docs retrieval: the future `docs` section of bugbot.config.json.
 * Everything has a default, so `docsSettingsSchema.parse({})` is a working setup
 * (full-text search only; vectors need `embeddings.baseURL`).
 */
import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { readAgentFileHead } from '../../harness/lib/agent-file.mjs';

const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name (A-Z, 0-9, _)');

/** An OpenAI-compatible `/v1/embeddings` endpoint; vectors are on only when `baseURL` is set. */
export const embeddingsSettingsSchema = z
  .object({
    /** e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`; unset = full-text search only. */
    baseURL: z.string().url().optional(),
    model: z.string().min(1).default('text-embedding-3-small'),
    /** Environment variable holding the API key; local servers usually need none. */
    apiKeyEnv: envName.default('OPENAI_API_KEY'),
    /** Ask the model for vectors of this size (text-embedding-3-* support it). */
    dimensions: z.number().int().positive().optional(),
    timeoutMs: z.number().int().positive().default(10_000),
    /** Retries per request; an unreachable endpoint costs (maxRetries + 1) attempts before the fallback. */
    maxRetries: z.number().int().min(0).max(5).default(1),
    /** Chunks per request. */
    batchSize: z.number().int().min(1).max(2048).default(64),
  })
  .strict()
  .prefault({});

export const docsSettingsSchema = z
  .object({
    /** Files to index, relative to the target repository (`*`, `**`, `?`, `{a,b}`). */
    globs: z.array(z.string().min(1)).min(1).default(['docs/**/*.md', 'CLAUDE.md']),
    /** SQLite file of the index; default `<home>/docs-index/<hash of the repository>.db`; relative = under home. */
    indexPath: z.string().min(1).optional(),
    /** Bytes of a file that are indexed; the rest of a larger file is left out (and reported). */
    maxFileBytes: z.number().int().positive().default(2 * 1024 * 1024),
    /** Longer sections are split at paragraph, then line, boundaries. */
    maxChunkChars: z.number().int().min(200).default(2000),
    /** Chunks kept per file; the rest are left out (and reported). */
    maxChunksPerFile: z.number().int().positive().default(400),
    /** Size budget of pre-context.md in bytes. */
    preContextBytes: z.number().int().min(512).default(12_000),
    /** Chunks listed in pre-context.md at most. */
    preContextK: z.number().int().min(1).max(50).default(6),
    embeddings: embeddingsSettingsSchema,
  })
  .strict()
  .prefault({});

export type DocsSettings = z.output<typeof docsSettingsSchema>;
export type EmbeddingsSettings = z.output<typeof embeddingsSettingsSchema>;

/**
 * Where the index of `repo` lives: one database per repository, shared by its git
 * worktrees (the harness searches from a fresh worktree per ticket, and re-embedding
 * every doc for each one would waste the endpoint's time).
 */
export function resolveIndexPath(home: string, repo: string, settings: DocsSettings): string {
  if (settings.indexPath) return isAbsolute(settings.indexPath) ? settings.indexPath : resolve(home, settings.indexPath);
  const id = createHash('sha256').update(repoIdentity(resolve(repo))).digest('hex').slice(0, 16);
  return join(home, 'docs-index', `${id}.db`);
}

/** The git common directory (the same for a repository and all its worktrees), else the path itself. */
function repoIdentity(repo: string): string {
  const dotGit = join(repo, '.git');
  try {
    if (statSync(dotGit).isDirectory()) return realpathSync(dotGit);
    // A worktree: `.git` is a file naming its private git dir, whose `commondir` points back
    // to the shared one. Both are read only as regular files: a run's agent can write them,
    // and a FIFO planted there held the read, and the harness's refresh with it, forever.
    const gitdir = /^gitdir:\s*(.+)$/m.exec(readAgentFileHead(dotGit, 4096)?.text ?? '')?.[1]?.trim();
    if (gitdir) {
      const own = resolve(repo, gitdir);
      let common = own;
      try {
        const commondir = readAgentFileHead(join(own, 'commondir'), 4096)?.text.trim();
        if (commondir) common = resolve(own, commondir);
      } catch {
        // unreadable; a submodule's git dir has none at all: it is its own repository
      }
      return realpathSync(common);
    }
  } catch {
    // not a git checkout (or unreadable): the directory is the identity
  }
  return repo;
}
