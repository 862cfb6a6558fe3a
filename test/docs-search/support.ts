/**
 * Docs-search test support: temp repositories written from a map of files, and an
 * index over them, all removed after the test.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { docsSettingsSchema, type DocsSettings } from '../../control/docs-search/settings.ts';
import { DocsStore } from '../../control/docs-search/store.ts';

export function tempDir(t: TestContext, prefix = 'bugbot-docs-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Write `files` (relative path → contents) under `dir`. */
export function writeFiles(dir: string, files: Record<string, string | Buffer>): void {
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), body);
  }
}

/** A temp repository holding `files`, and a temp home beside it. */
export function tempRepo(t: TestContext, files: Record<string, string | Buffer>): { repo: string; home: string } {
  const base = tempDir(t);
  const repo = join(base, 'repo');
  mkdirSync(repo);
  writeFiles(repo, files);
  return { repo, home: join(base, 'home') };
}

/** An index database in `home`, closed after the test. */
export function openStore(t: TestContext, home: string, name = 'index.db'): DocsStore {
  const store = new DocsStore(join(home, name));
  t.after(() => store.close());
  return store;
}

export function settings(over: Record<string, unknown> = {}): DocsSettings {
  return docsSettingsSchema.parse(over);
}

/** A small docs set with distinct topics, used by several tests. */
export const SAMPLE_DOCS: Record<string, string> = {
  'CLAUDE.md': '# Manual\n\n## Commands\n\nRun `npm test` for the whole suite.\n',
  'docs/payments.md': [
    '# Payments',
    '',
    '## Payment webhook',
    '',
    'The provider posts `payment.succeeded` events with a transaction id and an amount.',
    '',
    '## Duplicate deliveries',
    '',
    'The provider retries until it gets a 2xx, so an event can arrive twice. A repeated',
    'transaction id is a duplicate and records nothing.',
    '',
  ].join('\n'),
  'docs/pets.md': [
    '# Pets API',
    '',
    '## Owners and strays',
    '',
    'A stray has no owner; its ownerName is null.',
    '',
    '## Search',
    '',
    'Searching pets by name looks every word up in a name index.',
    '',
  ].join('\n'),
};
