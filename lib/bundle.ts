/**
 * Prebuilt JavaScript for the processes a worker starts many times: the `bugbot` CLI
 * (phase 0 runs `bugbot docs-search` per ticket) and the MCP servers (started by every
 * Claude Code session, which waits for them before its first request), and the
 * control plane's intake writer thread. Run through tsx, each start pays for the loader
 * and for transpiling; a bundle built once by esbuild starts in about a third of the time.
 *
 * Bundles live in `node_modules/.cache/bugbot/` inside bugbot's own package, so the
 * packages they leave out (native modules, Playwright) resolve as from the sources. A
 * manifest records every source file that went in with its size and mtime: a bundle
 * whose sources changed is stale and not used (callers fall back to tsx) until the next
 * build. `bugbot start` builds them; so does `bugbot build`.
 *
 * The sources' `import.meta.url` / `import.meta.dirname` keep pointing at the sources
 * (they locate prompts, the harness and worker files), so a bundle behaves as they do.
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
 */
export async function buildBundles(opts: { force?: boolean } = {}): Promise<BuildResult[]> {
  const names = Object.keys(BUNDLES) as BundleName[];
  let esbuild: typeof Esbuild;
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    return names.map((name) => ({ name, status: 'failed', error: `esbuild is not installed: ${(err as Error).message}` }));
  }
  const out: BuildResult[] = [];
  for (const name of names) {
    if (!opts.force && freshBundle(name)) {
      out.push({ name, status: 'fresh' });
      continue;
    }
    try {
      await buildOne(esbuild, name);
      out.push({ name, status: 'built' });
    } catch (err) {
      // Another process may have built it meanwhile.
      if (freshBundle(name)) out.push({ name, status: 'fresh' });
      else out.push({ name, status: 'failed', error: (err as Error).message.split('\n').slice(0, 4).join(' ') });
    }
  }
  return out;
}

async function buildOne(esbuild: typeof Esbuild, name: BundleName): Promise<void> {
  mkdirSync(BUNDLE_DIR, { recursive: true });
  const tmp = join(BUNDLE_DIR, `.${name}-tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    const result = await esbuild.build({
      entryPoints: { main: join(PACKAGE_ROOT, BUNDLES[name]) },
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      tsconfig: join(PACKAGE_ROOT, 'tsconfig.json'),
      external: EXTERNAL,
      metafile: true,
      logLevel: 'silent',
      legalComments: 'none',
      // CommonJS packages inside an ES module bundle still call require().
      banner: { js: `import { createRequire as __bugbotRequire } from 'node:module'; const require = __bugbotRequire(${META}.url);` },
      plugins: [sourceMeta()],
    });
    const inputs: Manifest['inputs'] = {};
    for (const input of Object.keys(result.metafile.inputs)) {
      if (input.includes('node_modules/')) continue;
      const abs = resolve(PACKAGE_ROOT, input);
      const st = statSync(abs);
      inputs[relative(PACKAGE_ROOT, abs)] = [st.size, st.mtimeMs];
    }
    // Changed dependencies, compiler settings or this recipe change what a bundle would hold.
    for (const f of ['package-lock.json', 'package.json', 'tsconfig.json', 'lib/bundle.ts']) {
      if (!existsSync(join(PACKAGE_ROOT, f))) continue;
      const st = statSync(join(PACKAGE_ROOT, f));
      inputs[f] = [st.size, st.mtimeMs];
    }
    const hash = createHash('sha256');
    for (const f of readdirSync(tmp).sort()) hash.update(f).update(readFileSync(join(tmp, f)));
    const dir = `${name}-${hash.digest('hex').slice(0, 12)}`;
    if (!existsSync(join(BUNDLE_DIR, dir))) renameSync(tmp, join(BUNDLE_DIR, dir));
    // The manifest names the new build last, in one rename: a process starting meanwhile
    // loads the old build or the new one, never half of one.
    const manifest: Manifest = { dir, esbuild: esbuild.version, inputs };
    const replaced = previousDir(name);
    writeFileSync(join(BUNDLE_DIR, `.${name}.json.${process.pid}`), JSON.stringify(manifest));
    renameSync(join(BUNDLE_DIR, `.${name}.json.${process.pid}`), join(BUNDLE_DIR, `${name}.json`));
    // The replaced build's mtime says when it was replaced: it is kept a while for
    // processes still running from it (their later dynamic imports load its chunks).
    if (replaced && replaced !== dir && existsSync(join(BUNDLE_DIR, replaced))) {
      const now = new Date();
      utimesSync(join(BUNDLE_DIR, replaced), now, now);
    }
    pruneOld(name, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The folder the current manifest of `name` names, if any. */
function previousDir(name: BundleName): string | null {
  try {
    return (JSON.parse(readFileSync(join(BUNDLE_DIR, `${name}.json`), 'utf8')) as Manifest).dir;
  } catch {
    return null;
  }
}

/** Remove builds of `name` replaced more than KEEP_OLD_MS ago. */
function pruneOld(name: BundleName, current: string): void {
  const prefix = `${name}-`;
  for (const entry of readdirSync(BUNDLE_DIR)) {
    if (!entry.startsWith(prefix) || entry === current || !/^[0-9a-f]{12}$/.test(entry.slice(prefix.length))) continue;
    const path = join(BUNDLE_DIR, entry);
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
