/**
 * `bugbot init --target PATH`: give a target repository without docs a starting point
 * that retrieval and the docs phase can build on: `docs/README.md` and a CLAUDE.md whose
 * auto-load table points at it. Nothing that exists is overwritten; an existing CLAUDE.md
 * without a table only gains the table block.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAutoLoad, updateAutoLoad, type AutoLoadRow } from './auto-load.ts';
import { findDocFiles } from './files.ts';

export interface InitTargetResult {
  /** Files created or changed, repository-relative. */
  written: string[];
  /** Files left alone, with why. */
  kept: Array<{ path: string; reason: string }>;
}

const STARTER_README = `# Docs

How this project works, for the people and the agents who change it. bugbot
(the bug-fixing bot) retrieves sections of these files by their headings before it
works on a bug, so give every section a heading that says what it covers.

## Architecture

What the main pieces are, where they live, and how a request flows through them.

## Running and testing

How to start the app locally and run the tests.

## Things that will bite you

Invariants that are easy to break, and why they exist.
`;

const STARTER_CLAUDE = `# CLAUDE.md

Operating manual for changing this repository. The table above says which docs to read
for which topic; keep it true when docs are added, moved or removed.

## Commands

| what | command |
|---|---|
| run | (fill in) |
| tests | (fill in) |
`;

/** Write starter docs into `repo` where it has none. Throws when `repo` is not a directory. */
export function initTargetDocs(repo: string): InitTargetResult {
  if (!existsSync(repo) || !statSync(repo).isDirectory()) throw new Error(`target repository ${repo} is not a directory`);
  const result: InitTargetResult = { written: [], kept: [] };

  const existing = findDocFiles(repo, ['docs/**/*.md']);
  // A docs folder or file that is a link (to elsewhere, maybe out of the repository) is
  // not written through: what it points at is not this repository's to change.
  const linked = ['docs', 'docs/README.md', 'CLAUDE.md'].filter((p) => isLink(join(repo, p)));
  if (existing.length) {
    result.kept.push({ path: 'docs/', reason: `already holds ${existing.length} markdown file(s)` });
  } else if (linked.includes('docs') || linked.includes('docs/README.md') || existsSync(join(repo, 'docs/README.md'))) {
    result.kept.push({ path: 'docs/README.md', reason: linked.length ? `${linked.filter((p) => p !== 'CLAUDE.md').join(', ')} is a link: not written through` : 'already there' });
  } else {
    mkdirSync(join(repo, 'docs'), { recursive: true });
    writeFileSync(join(repo, 'docs/README.md'), STARTER_README, { flag: 'wx' });
    result.written.push('docs/README.md');
  }
  const rows = existing.length ? starterRows(repo, existing) : [{ topic: 'overview: architecture, running and testing', docs: ['docs/README.md'] }];

  const claudePath = join(repo, 'CLAUDE.md');
  if (linked.includes('CLAUDE.md')) {
    result.kept.push({ path: 'CLAUDE.md', reason: 'is a link: not written through' });
  } else if (!existsSync(claudePath)) {
    writeFileSync(claudePath, updateAutoLoad(STARTER_CLAUDE, rows), { flag: 'wx' });
    result.written.push('CLAUDE.md');
  } else {
    const text = readFileSync(claudePath, 'utf8');
    const table = parseAutoLoad(text);
    if (table.found || table.problems.length) {
      result.kept.push({ path: 'CLAUDE.md', reason: table.found ? 'already has an auto-load table' : table.problems.join('; ') });
    } else {
      writeFileSync(claudePath, updateAutoLoad(text, rows));
      result.written.push('CLAUDE.md (added the auto-load table)');
    }
  }
  return result;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** One row per doc, its topic taken from the doc's `# title` (else its file name). */
function starterRows(repo: string, docs: string[]): AutoLoadRow[] {
  return docs.map((doc) => {
    let topic = doc.replace(/^docs\//, '').replace(/\.md$/, '');
    try {
      const title = /^# +(.+)$/m.exec(readFileSync(join(repo, doc), 'utf8').slice(0, 4096));
      if (title) topic = title[1]!.trim();
    } catch {
      // unreadable: the file name is topic enough
    }
    return { topic, docs: [doc] };
  });
}
