/**
 * `bugbot docs index` and `bugbot docs-search`: the commands the harness runs before a
 * session (index, then search with --pre-context) and people run to see what the bot
 * would read. Failures throw, so `main()` in control/cli.ts sets the exit code.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { writeAgentFile } from '../../harness/lib/agent-file.mjs';
import { createEmbedder, type Embedder } from './embed.ts';
import { indexDocs, type IndexReport } from './index.ts';
import { renderPreContext } from './precontext.ts';
import { searchDocs, type SearchResult } from './search.ts';
import { docsSettingsSchema, resolveIndexPath, type DocsSettings } from './settings.ts';
import { DocsStore, isDamaged } from './store.ts';

/** What the commands need from the loaded config; `BugbotConfig` satisfies it (with `docs` once wired). */
export interface DocsCommandConfig {
  home: string;
  target: { repo: string };
  docs?: DocsSettings;
  secrets?: { get(envVar: string | undefined): string | undefined };
}

/** Where command output goes; tests capture it. */
export interface DocsIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: DocsIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

/** Sections a search returns at most: more is no answer a person or a session reads, and SQLite takes no LIMIT past 2^63 (nor sqlite-vec a k past 4096). */
const MAX_K = 1000;

function intArg(value: string): number {
  if (!/^[1-9]\d*$/.test(value) || Number(value) > MAX_K) throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_K}`);
  return Number(value);
}

/**
 * Add `docs index` and `docs-search` to `program`. Settings come from the loaded config's
 * `docs` section when it has one, else from `settings`.
 */
export function registerDocsCommands(
  program: Command,
  load: (cmd: Command) => DocsCommandConfig,
  settings: DocsSettings = docsSettingsSchema.parse({}),
  io: DocsIo = processIo,
): void {
  const open = (cmd: Command, repoFlag: string | undefined): Context => {
    const cfg = load(cmd);
    const s = cfg.docs ?? settings;
    const repo = resolve(repoFlag ?? cfg.target.repo);
    // The CLI is the edge where secrets are read: from the config's snapshot when wired, else the environment.
    const apiKey = cfg.secrets ? cfg.secrets.get(s.embeddings.apiKeyEnv) : process.env[s.embeddings.apiKeyEnv];
    const indexPath = resolveIndexPath(cfg.home, repo, s);
    return { settings: s, repo, indexPath, embedder: createEmbedder(s.embeddings, apiKey) };
  };

  program
    .command('docs')
    .description("the target repository's docs index (see docs/docs-search.md)")
    .command('index')
    .description('index the docs of the target repository (incremental: only changed files are re-read and re-embedded)')
    .option('--repo <path>', 'repository to index (default: target.repo)')
    .option('--json', 'JSON output')
    .action(async (o: { repo?: string; json?: boolean }, cmd: Command) => {
      const ctx = open(cmd, o.repo);
      requireRepo(cmd, ctx.repo);
      await DocsStore.using(ctx.indexPath, async (store, rebuilt) => {
        if (rebuilt) io.err(`warning: ${shown(rebuilt)}\n`);
        const report = await indexDocs({ repo: ctx.repo, settings: ctx.settings, store, embedder: ctx.embedder });
        for (const w of report.warnings) io.err(`warning: ${shown(w)}\n`);
        io.out(o.json ? jsonText({ indexPath: ctx.indexPath, ...report }) : formatReport(report, ctx.indexPath));
      });
    });

  program
    .command('docs-search')
    .description("rank sections of the target repository's docs for a ticket's text (brings the index up to date first)")
    .argument('[text]', 'what to look for (ticket title and message); any characters')
    .option('--query-file <file>', 'read the text from a file (e.g. the ticket folder\'s ticket.md)')
    .option('-k, --k <n>', 'sections to return, 1 to 1000 (default 5, or docs.preContextK with --pre-context)', intArg)
    .option('--repo <path>', 'repository to search (default: target.repo)')
    .option('--no-refresh', 'search the index as it is, without re-reading changed files')
    .option('--json', 'JSON output')
    .option('--pre-context <file>', 'also write pre-context.md for the harness (a retrieval problem becomes a warning in the file, not a failure)')
    .action(async (text: string | undefined, o: SearchOpts, cmd: Command) => {
      if (text === undefined && !o.queryFile) cmd.error('error: give the text to search for, or --query-file FILE', { exitCode: 2 });
      if (o.queryFile && !existsSync(o.queryFile)) cmd.error(`error: --query-file ${resolve(o.queryFile)} does not exist`, { exitCode: 2 });
      const query = o.queryFile ? readFileSync(o.queryFile, 'utf8') : text!;
      const ctx = open(cmd, o.repo);
      // With --pre-context a missing repository is only a warning in the file (the index may still hold its docs).
      if (!o.preContext && o.refresh) requireRepo(cmd, ctx.repo);
      const k = o.k ?? (o.preContext ? ctx.settings.preContextK : 5);
      let result: SearchResult;
      try {
        result = await search(ctx, query, k, { refresh: o.refresh, soft: Boolean(o.preContext) });
      } catch (err) {
        if (!o.preContext) throw err;
        // The harness must get its file: a broken index is a warning in it, not a failed ticket.
        result = emptyResult(query, `docs retrieval failed: ${(err as Error).message}`);
      }
      for (const w of result.warnings) io.err(`warning: ${shown(w)}\n`);
      if (o.preContext) {
        if (!existsSync(dirname(resolve(o.preContext)))) cmd.error(`error: --pre-context ${resolve(o.preContext)}: folder ${dirname(resolve(o.preContext))} does not exist`, { exitCode: 2 });
        const md = renderPreContext(result, ctx.settings.preContextBytes);
        // The run's agent/ folder, which the sessions write: a link at the name is replaced,
        // never written through (pre-context.md → ~/.bashrc).
        writeAgentFile(o.preContext, md);
        io.err(`wrote ${o.preContext} (${result.hits.length} section(s), ${Buffer.byteLength(md)} bytes)\n`);
      }
      io.out(o.json ? jsonText(result) : formatHits(result, o.refresh ? ctx.settings.globs : undefined));
    });
}

function requireRepo(cmd: Command, repo: string): void {
  if (!existsSync(repo) || !statSync(repo).isDirectory()) cmd.error(`error: ${repo} is not a directory`, { exitCode: 2 });
}

interface SearchOpts {
  queryFile?: string;
  k?: number;
  repo?: string;
  refresh: boolean;
  json?: boolean;
  preContext?: string;
}

interface Context {
  settings: DocsSettings;
  repo: string;
  indexPath: string;
  embedder: Embedder | null;
}

/** Refresh (incrementally) then search. With `soft`, a failed refresh is a warning and the index is searched as it is. */
async function search(ctx: Context, text: string, k: number, opts: { refresh: boolean; soft: boolean }): Promise<SearchResult> {
  return DocsStore.using(ctx.indexPath, async (store, rebuilt) => {
    const warnings: string[] = rebuilt ? [rebuilt] : [];
    let endpointFailed = false;
    if (opts.refresh) {
      try {
        const report = await indexDocs({ repo: ctx.repo, settings: ctx.settings, store, embedder: ctx.embedder });
        warnings.push(...report.warnings);
        endpointFailed = report.vectorState === 'failed';
      } catch (err) {
        // A damaged index is built again (DocsStore.using), not searched as it is.
        if (!opts.soft || isDamaged(err)) throw err;
        warnings.push(`could not refresh the docs index: ${(err as Error).message}`);
      }
    }
    const result = await searchDocs(store, text, { k, embedder: ctx.embedder, endpointFailed });
    result.warnings.unshift(...warnings);
    return result;
  });
}

function emptyResult(query: string, warning: string): SearchResult {
  return { query, mode: 'fts', vectorState: 'off', hits: [], indexed: { files: 0, chunks: 0, vectors: 0 }, warnings: [warning], failed: true };
}

function formatReport(r: IndexReport, indexPath: string): string {
  const embedded = r.vectorState === 'off' ? 'vectors off (no embeddings endpoint)' : `embedded ${r.embeddedFiles} file(s) (${r.embeddedChunks} chunks), vectors ${r.vectorState}`;
  const lines = [
    `${r.repo}: scanned ${r.scanned} file(s): ${r.changed} changed, ${r.unchanged} unchanged, ${r.removed} removed, ${r.skipped.length} skipped; ${embedded}; ${r.ms} ms`,
    `index ${indexPath}: ${r.files} file(s), ${r.chunks} chunks, ${r.vectors} vectors`,
    ...r.skipped.map((s) => `skipped ${shown(s.path)}: ${shown(s.reason)}`),
    ...r.notes.map((n) => `note ${shown(n.path)}: ${shown(n.note)}`),
  ];
  return lines.join('\n') + '\n';
}

/** `refreshedWith`: the globs the index was just brought up to date with (none: it was searched as it was). */
function formatHits(r: SearchResult, refreshedWith?: string[]): string {
  // Nothing was looked at: the index may well hold docs.
  if (r.failed) return 'nothing was searched: docs retrieval failed (see the warning)\n';
  if (r.indexed.chunks === 0) {
    // Just indexed: running the index again would find the same nothing.
    return refreshedWith
      ? `the docs index is empty: no file of the repository matches docs.globs (${refreshedWith.join(', ')}); write docs there, or set docs.globs\n`
      : 'the docs index is empty (run: bugbot docs index)\n';
  }
  if (!r.hits.length) return `no section matched (${r.indexed.chunks} chunks searched, ${r.mode})\n`;
  const lines: string[] = [];
  r.hits.forEach((h, i) => {
    const where = h.headingPath.length ? shown(h.headingPath.join(' › ')) : '(top)';
    lines.push(`${i + 1}. ${shown(h.path)}:${h.line}  ${where}  [${h.score.toFixed(4)}]`);
    lines.push(`   why: ${shown(h.why)}`);
    const preview = h.text.replace(/\s+/g, ' ').trim();
    lines.push(`   ${shown(preview.length > 160 ? `${preview.slice(0, 160)}…` : preview)}`);
  });
  lines.push(`(${r.mode}, ${r.indexed.chunks} chunks in ${r.indexed.files} file(s))`);
  return lines.join('\n') + '\n';
}

/**
 * One line for a terminal. A doc's name, headings and text are the repository's, which the
 * agent writes (the docs phase, a fix's branch): printed raw, an escape sequence in them
 * would be obeyed (rewrite the lines above, set the clipboard by OSC 52) and a line break
 * in a file name would forge a line of output. Control characters are shown as \xHH and
 * bidirectional controls as \uHHHH, as bugbot's other commands show what agents wrote.
 */
function shown(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it replaces
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${hex(c, 2)}`).replace(BIDI, (c) => `\\u${hex(c, 4)}`);
}

/** --json output: JSON escapes C0 itself; DEL, C1 (a terminal may take \x9b for CSI) and the bidirectional controls are written as \u escapes, the same string to a JSON reader. */
function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\x7f-\x9f]/g, (c) => `\\u${hex(c, 4)}`).replace(BIDI, (c) => `\\u${hex(c, 4)}`) + '\n';
}

/** Bidirectional overrides, isolates and marks: they reorder what follows them on screen ("Trojan Source"). */
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function hex(c: string, width: number): string {
  return c.charCodeAt(0).toString(16).padStart(width, '0');
}
