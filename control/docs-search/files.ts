/**
 * Finding and reading the docs of a target repository: glob matching (Node 20 has no
 * fs.glob), a bounded read, and the checks that keep empty and binary files out.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, extname, isAbsolute, join, relative, sep } from 'node:path';

/** Directories never worth walking into. */
const SKIP_DIRS = new Set(['.git', 'node_modules']);

/** A glob as a regular expression over `/`-separated relative paths: `*`, `**`, `?`, `{a,b}`. */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${globBody(glob)}$`);
}

function globBody(glob: string): string {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    const segmentStart = i === 0 || glob[i - 1] === '/';
    if (c === '*' && glob[i + 1] === '*' && segmentStart && (glob[i + 2] === '/' || i + 2 === glob.length)) {
      // `**/` is zero or more directories; a trailing `**` is everything below.
      re += glob[i + 2] === '/' ? '(?:[^/]+/)*' : '.*';
      i += 2;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '{' && glob.indexOf('}', i) > i) {
      const close = glob.indexOf('}', i);
      re += `(?:${glob.slice(i + 1, close).split(',').map(globBody).join('|')})`;
      i = close;
    } else re += c.replace(/[.+^$()|[\]\\]/g, '\\$&');
  }
  return re;
}

/** Relative paths (with `/`) of the regular files under `repo` that match any glob, sorted. */
export function findDocFiles(repo: string, globs: string[]): string[] {
  const root = realpathSync(repo);
  const found = new Set<string>();
  // Globs sharing a literal base directory share one walk of it.
  const byBase = new Map<string, RegExp[]>();
  for (const raw of globs) {
    const glob = raw.replace(/^(?:\.\/)+/, '');
    const segments = glob.split('/');
    const firstWild = segments.findIndex((s) => /[*?{]/.test(s));
    if (firstWild === -1) {
      if (isFileInside(root, join(root, ...segments))) found.add(segments.join('/'));
      continue;
    }
    const base = segments.slice(0, firstWild).join('/');
    byBase.set(base, [...(byBase.get(base) ?? []), globToRegExp(glob)]);
  }
  for (const [base, res] of byBase) {
    for (const rel of walk(root, base)) if (res.some((re) => re.test(rel))) found.add(rel);
  }
  return [...found].sort();
}

/**
 * The files below `base`. A glob's base may be a link (docs -> ../elsewhere): only what
 * lies inside is walked. Below it only real folders are entered (a link to one is no
 * directory entry), so they are inside too without resolving each one's path again: that
 * took time growing with the square of the depth (a chain of 1,500 folders, 49 s).
 */
function walk(root: string, base: string): string[] {
  if (!isInside(root, join(root, base))) return [];
  const out: string[] = [];
  const todo = [base];
  while (todo.length) {
    const dir = todo.pop()!;
    let entries;
    try {
      entries = readdirSync(join(root, dir), { withFileTypes: true });
    } catch {
      continue; // a glob whose base directory does not exist matches nothing
    }
    for (const e of entries) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) todo.push(rel);
      } else if (e.isFile() || (e.isSymbolicLink() && isFileInside(root, join(root, rel)))) {
        out.push(rel);
      }
    }
  }
  return out;
}

/**
 * A regular file whose real path stays inside the repository (a symlink to /etc/passwd is
 * not a doc) and is of the same kind as the name that reached it (see sameKind).
 */
function isFileInside(root: string, path: string): boolean {
  try {
    return existsSync(path) && statSync(path).isFile() && isInside(root, path) && sameKind(path, realpathSync(path));
  } catch {
    return false;
  }
}

/**
 * A link leads to a file of its own kind: the same extension, and a hidden file only from a
 * hidden name. `docs/env.md` → `../.env` would put the checkout's secrets into the index,
 * and from there into a session's pre-context; `docs/readme.md` → `../README.md` is a doc.
 */
function sameKind(path: string, real: string): boolean {
  const [name, target] = [basename(path), basename(real)];
  return extname(name).toLowerCase() === extname(target).toLowerCase() && (name.startsWith('.') || !target.startsWith('.'));
}

/**
 * Whether path, links resolved, is the repository or below it, and not inside a folder
 * never entered (a link into .git would index its config, a remote's credentials with it);
 * false when it is not there.
 */
function isInside(root: string, path: string): boolean {
  try {
    const rel = relative(realpathSync(root), realpathSync(path));
    return !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel) && !rel.split(sep).some((part) => SKIP_DIRS.has(part));
  } catch {
    return false;
  }
}

export type DocFile =
  | { kind: 'text'; hash: string; bytes: number; text: string; truncated: boolean }
  | { kind: 'skip'; hash: string; bytes: number; reason: string };

/**
 * Read at most `maxBytes` of a file. The hash covers the size and the bytes read, so a
 * change anywhere in a small file (and to the size or indexed part of a huge one) is seen.
 */
export function readDocFile(path: string, maxBytes: number): DocFile {
  const size = statSync(path).size;
  const buf = Buffer.alloc(Math.min(size, maxBytes));
  const fd = openSync(path, 'r');
  let got = 0;
  try {
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
  } finally {
    closeSync(fd);
  }
  const data = buf.subarray(0, got);
  const hash = createHash('sha256').update(String(size)).update('\0').update(data).digest('hex');
  if (data.subarray(0, 8192).includes(0)) return { kind: 'skip', hash, bytes: size, reason: 'binary (NUL bytes)' };
  let text = data.toString('utf8');
  const sample = text.slice(0, 4096);
  const bad = sample.length - sample.replaceAll('\uFFFD', '').length;
  if (bad > sample.length / 10) return { kind: 'skip', hash, bytes: size, reason: 'binary (not UTF-8 text)' };
  const truncated = size > got;
  if (truncated) {
    // Cut at the last full line so no half character or half line is indexed.
    const nl = text.lastIndexOf('\n');
    text = nl > 0 ? text.slice(0, nl) : text.replace(/\uFFFD+$/, '');
  }
  if (!text.trim()) return { kind: 'skip', hash, bytes: size, reason: 'empty' };
  return { kind: 'text', hash, bytes: size, text, truncated };
}
