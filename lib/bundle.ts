/**
 * Prebuilt JavaScript for the processes a worker starts many times: the `bugbot` CLI
 * (phase 0 runs `bugbot docs-search` per ticket) and the MCP servers (started by every
 * Claude Code session, which waits for them before its first request), and the
 * control plane's intake writer thread and email parser thread. Run through tsx, each
 * start pays for the loader and for transpiling; a bundle built once by esbuild starts in
 * about a third of the time.
 *
 * Bundles live in `node_modules/.cache/bugbot/` inside bugbot's own package, so the
 * packages they leave out (native modules, Playwright) resolve as from the sources. A
 * manifest records the package root it was built for and every source file that went in
 * with its size and mtime: a bundle whose sources changed, or that was built for another
 * folder, is stale and not used (callers fall back to tsx) until the next build.
 * `bugbot start` builds them; so does `bugbot build`, from any working directory.
 *
 * The sources' `import.meta.url` / `import.meta.dirname` keep pointing at the sources
 * (they locate prompts, the harness and worker files), so a bundle behaves as they do;
 * those are absolute paths, hence the root in the manifest: a copy of an installation
 * (`cp -a` keeps sizes and mtimes) must not run the original's code.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Esbuild from 'esbuild';
import { BUNDLE_DIR, PACKAGE_ROOT, freshBundle } from './bundle-fresh.mjs';

export { BUNDLE_DIR, PACKAGE_ROOT, freshBundle };

export const BUNDLES = {
  cli: 'control/cli.ts',
  'mcp-browser': 'mcp/browser/main.ts',
  'mcp-loki': 'mcp/loki/main.ts',
  'mcp-db': 'mcp/db/main.ts',
  'intake-writer': 'control/writer-thread.ts',
  'email-parser': 'control/triggers/email-parse-thread.ts',
} as const;
export type BundleName = keyof typeof BUNDLES;

/**
 * Packages left to Node's resolution: native bindings, packages that load files beside
 * their code (libpg-query's WebAssembly, sqlite-vec's extension), Playwright's own
 * loader, and the build tools.
 */
const EXTERNAL = ['better-sqlite3', 'sqlite-vec', 'libpg-query', 'playwright-core', 'pg-native', 'fsevents', '@anthropic-ai/claude-code', 'esbuild', 'tsx'];
/** Spelled in pieces: this file is bundled too, and its own copy must keep the words intact. */
const META = ['import', 'meta'].join('.');
/** Superseded builds are removed this long after they were replaced (a running process may still load their chunks). */
const KEEP_OLD_MS = 7 * 24 * 3600_000;

interface Manifest {
  /** The folder (under BUNDLE_DIR) holding this build: `<name>-<hash>`. */
  dir: string;
  /** The package root it was built for: the bundle holds absolute paths under it. */
  root: string;
  esbuild: string;
  /** Source path (relative to the package root) → [size, mtimeMs]. */
  inputs: Record<string, [number, number]>;
}

export interface BuildResult {
  name: BundleName;
  status: 'fresh' | 'built' | 'failed';
  error?: string;
}

/**
 * Build every stale bundle (every one, with `force`). Never throws: a bundle that fails
 * to build is reported and its callers keep running the sources through tsx.
 * `root` and `dir` (the package root, the bundles' folder) are for tests.
 */
export async function buildBundles(opts: { force?: boolean; root?: string; dir?: string } = {}): Promise<BuildResult[]> {
  const { root = PACKAGE_ROOT, dir = BUNDLE_DIR } = opts;
  const names = Object.keys(BUNDLES) as BundleName[];
  let esbuild: typeof Esbuild;
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    return names.map((name) => ({ name, status: 'failed', error: `esbuild is not installed: ${(err as Error).message}` }));
  }
  const out: BuildResult[] = [];
  for (const name of names) {
    if (!opts.force && freshBundle(name, dir, root)) {
      out.push({ name, status: 'fresh' });
      continue;
    }
    const before = manifestText(name, dir);
    try {
      await buildOne(esbuild, name, root, dir);
      out.push({ name, status: 'built' });
    } catch (err) {
      // Another process may have built it meanwhile: then its manifest is fresh for this
      // root (and, where this build was forced, not the one there before).
      if (freshBundle(name, dir, root) && (!opts.force || manifestText(name, dir) !== before)) out.push({ name, status: 'fresh' });
      else out.push({ name, status: 'failed', error: (err as Error).message.split('\n').slice(0, 4).join(' ') });
    }
  }
  return out;
}

function manifestText(name: BundleName, dir: string): string | null {
  try {
    return readFileSync(join(dir, `${name}.json`), 'utf8');
  } catch {
    return null;
  }
}

async function buildOne(esbuild: typeof Esbuild, name: BundleName, root: string, bundleDir: string): Promise<void> {
  mkdirSync(bundleDir, { recursive: true });
  const tmp = join(bundleDir, `.${name}-tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    const result = await esbuild.build({
      // The metafile's input paths are relative to this folder (the process's working
      // directory by default: `bugbot start` may run from anywhere).
      absWorkingDir: root,
      entryPoints: { main: join(root, BUNDLES[name]) },
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      tsconfig: join(root, 'tsconfig.json'),
      external: EXTERNAL,
      metafile: true,
      logLevel: 'silent',
      legalComments: 'none',
      // CommonJS packages inside an ES module bundle still call require().
      banner: { js: `import { createRequire as __bugbotRequire } from 'node:module'; const require = __bugbotRequire(${META}.url);` },
      plugins: [sourceMeta()],
    });
    const inputs: Manifest['inputs'] = {};
    // bugbot's own sources, relative to the root (dependencies, in node_modules here or
    // above it when bugbot is itself installed as one, are package-lock.json's business).
    for (const input of Object.keys(result.metafile.inputs)) {
      const rel = relative(root, resolve(root, input));
      if (rel.split('/')[0] === '..' || rel.includes('node_modules/')) continue;
      const st = statSync(join(root, rel));
      inputs[rel] = [st.size, st.mtimeMs];
    }
    // Changed dependencies, compiler settings or this recipe change what a bundle would hold.
    for (const f of ['package-lock.json', 'package.json', 'tsconfig.json', 'lib/bundle.ts']) {
      if (!existsSync(join(root, f))) continue;
      const st = statSync(join(root, f));
      inputs[f] = [st.size, st.mtimeMs];
    }
    const hash = createHash('sha256');
    for (const f of readdirSync(tmp).sort()) hash.update(f).update(readFileSync(join(tmp, f)));
    const dir = `${name}-${hash.digest('hex').slice(0, 12)}`;
    if (!existsSync(join(bundleDir, dir))) renameSync(tmp, join(bundleDir, dir));
    // The manifest names the new build last, in one rename: a process starting meanwhile
    // loads the old build or the new one, never half of one.
    const manifest: Manifest = { dir, root, esbuild: esbuild.version, inputs };
    const replaced = previousDir(name, bundleDir);
    writeFileSync(join(bundleDir, `.${name}.json.${process.pid}`), JSON.stringify(manifest));
    renameSync(join(bundleDir, `.${name}.json.${process.pid}`), join(bundleDir, `${name}.json`));
    // The replaced build's mtime says when it was replaced: it is kept a while for
    // processes still running from it (their later dynamic imports load its chunks).
    if (replaced && replaced !== dir && existsSync(join(bundleDir, replaced))) {
      const now = new Date();
      utimesSync(join(bundleDir, replaced), now, now);
    }
    pruneOld(name, dir, bundleDir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The folder the current manifest of `name` names, if any. */
function previousDir(name: BundleName, bundleDir: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(bundleDir, `${name}.json`), 'utf8')) as Manifest).dir;
  } catch {
    return null;
  }
}

/** Remove builds of `name` replaced more than KEEP_OLD_MS ago. */
function pruneOld(name: BundleName, current: string, bundleDir: string): void {
  const prefix = `${name}-`;
  for (const entry of readdirSync(bundleDir)) {
    if (!entry.startsWith(prefix) || entry === current || !/^[0-9a-f]{12}$/.test(entry.slice(prefix.length))) continue;
    const path = join(bundleDir, entry);
    if (Date.now() - statSync(path).mtimeMs > KEEP_OLD_MS) rmSync(path, { recursive: true, force: true });
  }
}
/** Keeps `import.meta.url` / `.dirname` / `.filename` of bugbot's sources pointing at the sources. */
function sourceMeta(): Esbuild.Plugin {
  return {
    name: 'bugbot-source-meta',
    setup(build) {
      build.onLoad({ filter: /\.(tsx?|mjs)$/ }, (args) => {
        if (args.path.includes('/node_modules/')) return undefined;
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes(`${META}.`)) return undefined;
        const contents = source
          .replaceAll(`${META}.url`, JSON.stringify(pathToFileURL(args.path).href))
          .replaceAll(`${META}.dirname`, JSON.stringify(dirname(args.path)))
          .replaceAll(`${META}.filename`, JSON.stringify(args.path));
        return { contents, loader: args.path.endsWith('.tsx') ? 'tsx' : args.path.endsWith('.mjs') ? 'js' : 'ts' };
      });
    },
  };
}
