// Which prebuilt bundle (lib/bundle.ts) may be used: plain JavaScript, because
// bin/bugbot.js asks before any TypeScript can load. A bundle is fresh when it was built
// for this package root and every source that went into it still has the size and mtime
// its manifest recorded.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BUNDLE_DIR = join(PACKAGE_ROOT, 'node_modules', '.cache', 'bugbot');

/**
 * The bundle's entry file when it is fresh, else null (the caller runs the sources):
 * one read of the manifest, a stat per source file. `dir` and `root` (the bundles'
 * folder, the package root) are for tests.
 */
export function freshBundle(name, dir = BUNDLE_DIR, root = PACKAGE_ROOT) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'));
  } catch {
    return null;
  }
  if (typeof manifest?.dir !== 'string' || typeof manifest.inputs !== 'object') return null;
  // A bundle holds its sources' absolute paths (import.meta, the package root): one built
  // for another folder (this installation copied with `cp -a` or `rsync -a`, which keep
  // sizes and mtimes, or moved) would run that folder's code. Manifests from before the
  // root was recorded have none: stale, rebuilt once.
  if (manifest.root !== root) return null;
  for (const [file, [size, mtime]] of Object.entries(manifest.inputs)) {
    try {
      const st = statSync(join(root, file));
      if (st.size !== size || st.mtimeMs !== mtime) return null;
    } catch {
      return null;
    }
  }
  const entry = join(dir, manifest.dir, 'main.mjs');
  try {
    statSync(entry);
  } catch {
    return null;
  }
  return entry;
}
