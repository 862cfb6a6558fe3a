/**
 * A run's diff, from the target repository with real git: the fix (its pushed
 * commit, else its bot branch) against the base branch, since they diverged.
 * Read-only (no optional locks, no external diff or textconv drivers), bounded in
 * bytes and time, and parsed into files and hunks for the side-by-side view.
 */
import { spawn } from 'node:child_process';
import { pinnedGitEnv } from '../git-pin.ts';

export interface DiffLine {
  kind: 'ctx' | 'add' | 'del';
  old: number | null;
  new: number | null;
  text: string;
}

export interface DiffHunk {
  header: string;
  lines: DiffLine[];
}

export interface DiffFile {
  oldPath: string;
  newPath: string;
  status: 'modified' | 'added' | 'deleted' | 'renamed';
  binary: boolean;
  additions: number;
  deletions: number;
  hunks: DiffHunk[];
}

export interface RunDiff {
  base: string;
  ref: string;
  files: DiffFile[];
  truncated: boolean;
}

/** Ref names and commit ids we pass to git: never an option, never a range. */
const SAFE_REF = /^(?!-)(?!.*\.\.)[\w./@+-]{1,200}$/;

interface GitResult {
  code: number | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

function git(repo: string, args: string[], maxBytes = 64 * 1024, timeoutMs = 10_000): Promise<GitResult> {
  let env: NodeJS.ProcessEnv;
  try {
    // The base checkout's own repository, never one a planted `commondir` names (git-pin.ts).
    env = pinnedGitEnv(repo, { PATH: process.env.PATH, HOME: process.env.HOME, LC_ALL: 'C', GIT_OPTIONAL_LOCKS: '0', GIT_TERMINAL_PROMPT: '0' });
  } catch (err) {
    return Promise.resolve({ code: -1, stdout: '', stderr: (err as Error).message, truncated: false });
  }
  return new Promise((resolve) => {
    const child = spawn('git', ['-C', repo, '-c', 'core.quotePath=false', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let truncated = false;
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      if (truncated) return;
      if (bytes + d.length > maxBytes) {
        chunks.push(d.subarray(0, maxBytes - bytes));
        truncated = true;
        child.kill('SIGTERM');
        return;
      }
      chunks.push(d);
      bytes += d.length;
    });
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout: '', stderr: err.message, truncated: false });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: truncated ? 0 : code, stdout: Buffer.concat(chunks).toString('utf8'), stderr, truncated });
    });
  });
}

/** The first candidate naming a commit in the repository, as its full id; null when none does. */
async function resolveCommit(repo: string, candidates: Array<string | null | undefined>): Promise<{ name: string; sha: string } | null> {
  for (const name of candidates) {
    if (!name || !SAFE_REF.test(name)) continue;
    const r = await git(repo, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${name}^{commit}`]);
    const sha = r.stdout.trim();
    if (r.code === 0 && /^[0-9a-f]{40,64}$/.test(sha)) return { name, sha };
  }
  return null;
}

export interface DiffRequest {
  repo: string;
  remote: string;
  baseBranch: string;
  /** The run's pushed commit, if known. */
  commit?: string | null;
  /** The run's bot branch. */
  branch?: string | null;
  /** The commit the run's worktree was made from (push.env base_commit), if recorded. */
  baseCommit?: string | null;
  maxBytes: number;
}

/**
 * Why a run has no diff to show. `gone`: neither its commit nor its branch is in the
 * repository any more (nothing of it left to approve either); any other reason (the base
 * branch missing, git failing or running out of time) leaves the fix itself there.
 */
export interface NoDiff {
  error: string;
  gone?: boolean;
}

/** The run's diff, or a reason there is none (no git, no such branch...). */
export async function runDiff(req: DiffRequest): Promise<RunDiff | NoDiff> {
  const ref = await resolveCommit(req.repo, [
    req.commit,
    req.branch ? `refs/heads/${req.branch}` : null,
    req.branch ? `refs/remotes/${req.remote}/${req.branch}` : null,
  ]);
  if (!ref) return { error: `neither the run's commit nor its branch ${req.branch ?? '(none)'} is in the target repository`, gone: true };
  // The run's own starting commit first: the agent's sandbox could move the remote-tracking
  // ref, and a diff measured from there would hide files from the person approving.
  const base = await resolveCommit(req.repo, [req.baseCommit ?? null, `refs/remotes/${req.remote}/${req.baseBranch}`, `refs/heads/${req.baseBranch}`]);
  if (!base) return { error: `the base branch ${req.baseBranch} is not in the target repository` };
  const r = await git(
    req.repo,
    ['diff', '--no-color', '--no-ext-diff', '--no-textconv', '--src-prefix=a/', '--dst-prefix=b/', '-M', '--unified=3', `${base.sha}...${ref.sha}`, '--'],
    req.maxBytes,
    20_000,
  );
  if (r.code !== 0) return { error: `git diff failed: ${r.stderr.trim() || `status ${r.code}`}` };
  const short = (n: string) => n.replace(/^refs\/(heads|remotes)\//, '');
  const label = req.branch ? `${req.branch} @ ${ref.sha.slice(0, 12)}` : short(ref.name);
  return { base: short(base.name), ref: label, files: parseUnifiedDiff(r.stdout), truncated: r.truncated };
}

/** C escapes git writes in a quoted name, besides octal bytes (\NNN). */
const C_ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };

/**
 * A name git C-quoted (it holds a quote, a backslash, a control character, or, with
 * core.quotePath, a byte past ASCII): `"a/\"x\"\t\303\251"` → `a/"x"<tab>é`. From the
 * opening quote at `s[0]`; the name and where its closing quote ends, or null when it is
 * not one (an unknown escape, no closing quote).
 */
function cUnquote(s: string): { name: string; end: number } | null {
  if (s[0] !== '"') return null;
  const bytes: number[] = [];
  let i = 1;
  while (i < s.length) {
    const ch = s[i]!;
    if (ch === '"') return { name: Buffer.from(bytes).toString('utf8'), end: i + 1 };
    if (ch !== '\\') {
      // A run of plain text at once: a character outside the BMP is two code units.
      const stop = s.slice(i).search(/["\\]/);
      const j = stop === -1 ? s.length : i + stop;
      bytes.push(...Buffer.from(s.slice(i, j), 'utf8'));
      i = j;
      continue;
    }
    const e = s[i + 1];
    const octal = /^[0-3][0-7]{2}/.exec(s.slice(i + 1, i + 4));
    if (octal) {
      bytes.push(parseInt(octal[0], 8));
      i += 4;
    } else if (e !== undefined && Object.hasOwn(C_ESCAPES, e)) {
      bytes.push(C_ESCAPES[e]!);
      i += 2;
    } else return null;
  }
  return null;
}

/**
 * The name of a `---` / `+++` / `rename from` line (what follows the keyword), without
 * `prefix` (a/, b/); null for /dev/null or what cannot be read. Git ends the ---/+++
 * names that hold a space with a tab; a name that holds a tab itself is quoted.
 */
function headerName(raw: string, prefix: string): string | null {
  const text = raw.endsWith('\t') ? raw.slice(0, -1) : raw;
  if (text === '/dev/null') return null;
  let name = text;
  if (text.startsWith('"')) {
    const q = cUnquote(text);
    if (!q || q.end !== text.length) return null;
    name = q.name;
  }
  if (!prefix) return name || null;
  return name.startsWith(prefix) && name.length > prefix.length ? name.slice(prefix.length) : null;
}

/**
 * The names on a `diff --git a/X b/Y` line, where they are certain: both quoted, or the
 * same name twice (a change that is no rename: `a/config.ts b/README.md b/config.ts
 * b/README.md` is one file). A rename's names come from its rename lines, and every
 * change with text from its ---/+++ lines, which the parser reads after this.
 */
function gitLineNames(rest: string): { oldPath: string; newPath: string } {
  if (rest.startsWith('"')) {
    const a = cUnquote(rest);
    if (!a || rest[a.end] !== ' ') return { oldPath: '', newPath: '' };
    return { oldPath: a.name.startsWith('a/') ? a.name.slice(2) : '', newPath: headerName(rest.slice(a.end + 1), 'b/') ?? '' };
  }
  // Unquoted a/ followed by a quoted b/ (a rename to a name git quotes).
  const quotedB = rest.indexOf(' "b/');
  if (rest.startsWith('a/') && quotedB !== -1 && rest.endsWith('"')) {
    const b = headerName(rest.slice(quotedB + 1), 'b/');
    if (b !== null) return { oldPath: rest.slice(2, quotedB), newPath: b };
  }
  const half = (rest.length - 3) / 2;
  if (Number.isInteger(half) && half > 2 && rest.startsWith('a/') && rest.slice(half, half + 3) === ' b/' && rest.slice(2, half) === rest.slice(half + 3)) {
    const name = rest.slice(2, half);
    return { oldPath: name, newPath: name };
  }
  // Different names, unquoted: certain only when " b/" occurs once.
  const at = rest.indexOf(' b/');
  if (rest.startsWith('a/') && at !== -1 && rest.indexOf(' b/', at + 1) === -1) return { oldPath: rest.slice(2, at), newPath: rest.slice(at + 3) };
  return { oldPath: '', newPath: '' };
}

/**
 * Parse `git diff` output (unified, with git's extended headers). A name that cannot be
 * read is left empty (the view says so).
 */
export function parseUnifiedDiff(text: string): DiffFile[] {
  const files: DiffFile[] = [];
  let file: DiffFile | null = null;
  let hunk: DiffHunk | null = null;
  let oldNo = 0;
  let newNo = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('diff --git ')) {
      file = { ...gitLineNames(line.slice('diff --git '.length)), status: 'modified', binary: false, additions: 0, deletions: 0, hunks: [] };
      files.push(file);
      hunk = null;
      continue;
    }
    if (!file) continue;
    if (!hunk) {
      // The names git writes on these lines are exact (quoted where needed); the
      // `diff --git` line's are ambiguous when a name holds " b/".
      if (line.startsWith('new file mode')) file.status = 'added';
      else if (line.startsWith('deleted file mode')) file.status = 'deleted';
      else if (line.startsWith('rename from ')) {
        file.status = 'renamed';
        file.oldPath = headerName(line.slice('rename from '.length), '') ?? '';
      } else if (line.startsWith('rename to ')) file.newPath = headerName(line.slice('rename to '.length), '') ?? '';
      else if (line.startsWith('Binary files ')) file.binary = true;
      else if (line.startsWith('--- ')) {
        const name = headerName(line.slice(4), 'a/');
        if (name !== null) file.oldPath = name;
        else if (line === '--- /dev/null') file.status = 'added';
        continue;
      } else if (line.startsWith('+++ ')) {
        const name = headerName(line.slice(4), 'b/');
        if (name !== null) file.newPath = name;
        else if (line === '+++ /dev/null') file.status = 'deleted';
        continue;
      }
    }
    const h = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$/.exec(line);
    if (h) {
      hunk = { header: line, lines: [] };
      file.hunks.push(hunk);
      oldNo = Number(h[1]);
      newNo = Number(h[2]);
      continue;
    }
    if (!hunk) continue;
    if (line.startsWith('+')) {
      hunk.lines.push({ kind: 'add', old: null, new: newNo++, text: line.slice(1) });
      file.additions++;
    } else if (line.startsWith('-')) {
      hunk.lines.push({ kind: 'del', old: oldNo++, new: null, text: line.slice(1) });
      file.deletions++;
    } else if (line.startsWith(' ')) {
      hunk.lines.push({ kind: 'ctx', old: oldNo++, new: newNo++, text: line.slice(1) });
    }
    // "\ No newline at end of file" and the empty last line carry nothing to show.
  }
  // An added file's old name, a deleted one's new name: the other side's.
  for (const f of files) {
    if (f.status === 'added' && !f.oldPath) f.oldPath = f.newPath;
    if (f.status === 'deleted' && !f.newPath) f.newPath = f.oldPath;
  }
  return files;
}

export interface SideBySideRow {
  left: DiffLine | null;
  right: DiffLine | null;
}

/** Pair a hunk's lines for two columns: a run of deletions faces the additions that replace it. */
export function sideBySide(hunk: DiffHunk): SideBySideRow[] {
  const rows: SideBySideRow[] = [];
  const lines = hunk.lines;
  let i = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.kind === 'ctx') {
      rows.push({ left: l, right: l });
      i++;
      continue;
    }
    const dels: DiffLine[] = [];
    const adds: DiffLine[] = [];
    while (i < lines.length && lines[i]!.kind === 'del') dels.push(lines[i++]!);
    while (i < lines.length && lines[i]!.kind === 'add') adds.push(lines[i++]!);
    for (let k = 0; k < Math.max(dels.length, adds.length); k++) rows.push({ left: dels[k] ?? null, right: adds[k] ?? null });
  }
  return rows;
}
