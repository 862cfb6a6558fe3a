// Prebuilt bundles (lib/bundle.ts): used only while every source in them is unchanged,
// and only by the folder they were built for; they behave as the sources do.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { BUNDLES, buildBundles, freshBundle, PACKAGE_ROOT } from '../../lib/bundle.ts';
import type { BuildResult, BundleName } from '../../lib/bundle.ts';

test('a bundle is fresh while its sources keep their size and mtime, stale after any change', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bugbot-bundle-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'bundles');
  mkdirSync(join(dir, 'x-0123456789ab'), { recursive: true });
  writeFileSync(join(dir, 'x-0123456789ab', 'main.mjs'), 'export {};\n');
  writeFileSync(join(root, 'a.ts'), 'export const a = 1;\n');
  const st = statSync(join(root, 'a.ts'));
  const manifest = (inputs: Record<string, [number, number]>, builtFor: string | null = root) =>
    writeFileSync(join(dir, 'x.json'), JSON.stringify({ dir: 'x-0123456789ab', ...(builtFor === null ? {} : { root: builtFor }), esbuild: '0', inputs }));

  manifest({ 'a.ts': [st.size, st.mtimeMs] });
  assert.equal(freshBundle('x', dir, root), join(dir, 'x-0123456789ab', 'main.mjs'));
  assert.equal(freshBundle('y', dir, root), null, 'no manifest: no bundle');
  manifest({ 'a.ts': [st.size, st.mtimeMs] }, '/elsewhere/bugbot');
  assert.equal(freshBundle('x', dir, root), null, 'a bundle built for another folder is stale');
  manifest({ 'a.ts': [st.size, st.mtimeMs] }, null);
  assert.equal(freshBundle('x', dir, root), null, 'a manifest naming no root is stale');
  manifest({ 'a.ts': [st.size, st.mtimeMs] });
  assert.ok(freshBundle('x', dir, root));

  utimesSync(join(root, 'a.ts'), st.atime, new Date(st.mtimeMs + 5000));
  assert.equal(freshBundle('x', dir, root), null, 'a touched source makes it stale');
  manifest({ 'a.ts': [st.size, statSync(join(root, 'a.ts')).mtimeMs] });
  assert.ok(freshBundle('x', dir, root));
  writeFileSync(join(root, 'a.ts'), 'export const a = 12;\n');
  assert.equal(freshBundle('x', dir, root), null, 'an edited source makes it stale');
  manifest({ 'gone.ts': [1, 1] });
  assert.equal(freshBundle('x', dir, root), null, 'a deleted source makes it stale');
  writeFileSync(join(dir, 'x.json'), '{not json');
  assert.equal(freshBundle('x', dir, root), null, 'a damaged manifest is ignored');
});

test('bugbot build makes every bundle; the CLI and the MCP servers run from them as from the sources', { timeout: 120_000 }, async () => {
  const results = await buildBundles();
  assert.deepEqual(results.filter((r) => r.status === 'failed'), []);
  for (const name of ['cli', 'mcp-browser', 'mcp-loki', 'mcp-db', 'intake-writer', 'email-parser']) assert.ok(freshBundle(name), `${name} is fresh after a build`);

  // The CLI bundle answers like the sources, and finds the harness and prompts beside
  // its sources (import.meta of the sources, not of the bundle).
  const run = (env: Record<string, string>) =>
    execFileSync(process.execPath, [join(PACKAGE_ROOT, 'bin/bugbot.js'), '--help'], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(run({}), run({ BUGBOT_NO_BUNDLE: '1' }));
  // ...and that is the bundle answering: the command loads it, not the sources (the
  // comparison above holds just as well when both runs are the sources). A loader hook
  // notes every module the run loads.
  const loaded = (env: Record<string, string>): string[] => {
    const trace = join(tmpdir(), `bugbot-bundle-trace-${process.pid}.txt`);
    rmSync(trace, { force: true });
    const hooks = `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) { appendFileSync(${JSON.stringify(trace)}, url + '\\n'); return next(url, context); }`;
    const preload = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
    execFileSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(preload)}`, join(PACKAGE_ROOT, 'bin/bugbot.js'), '--help'], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    const urls = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
    rmSync(trace, { force: true });
    return urls;
  };
  const bundled = loaded({});
  assert.ok(bundled.includes(pathToFileURL(freshBundle('cli')!).href), `the CLI's bundle is loaded:\n${bundled.join('\n')}`);
  assert.ok(!bundled.some((u) => u.endsWith('/control/cli.ts')), `the sources are not:\n${bundled.join('\n')}`);
  const sources = loaded({ BUGBOT_NO_BUNDLE: '1' });
  assert.ok(sources.some((u) => u.endsWith('/control/cli.ts')), `BUGBOT_NO_BUNDLE runs the sources:\n${sources.join('\n')}`);
  const where = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', `const m = await import(${JSON.stringify(freshBundle('cli'))}); console.log(typeof m.main)`],
    { encoding: 'utf8' },
  );
  assert.equal(where.trim(), 'function');

  // Each MCP server bundle starts and answers initialize over stdio.
  for (const name of ['mcp-browser', 'mcp-loki', 'mcp-db'] as const) {
    const settings = join(tmpdir(), `bugbot-bundle-${name}-${process.pid}.json`);
    writeFileSync(settings, JSON.stringify(name === 'mcp-db' ? { driver: 'sqlite', sqlitePath: join(tmpdir(), `bugbot-bundle-${process.pid}.sqlite`), tables: {} } : {}));
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'test', version: '1' } } });
    const out = execFileSync(process.execPath, [freshBundle(name)!, '--settings', settings], { input: init + '\n', encoding: 'utf8', timeout: 30_000 });
    rmSync(settings, { force: true });
    rmSync(join(tmpdir(), `bugbot-bundle-${process.pid}.sqlite`), { force: true });
    assert.match(out, /"serverInfo":\{"name":"bugbot-/, `${name} answered initialize`);
  }
});

/** Builds into a scratch folder, not the package's own cache (tests may run side by side). */
function scratch(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bugbot-bundles-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('bundles build from any working directory', { timeout: 120_000 }, async (t) => {
  // The README's quick start runs `npx bugbot start` from the user's own folder; esbuild
  // names its inputs relative to the working directory unless told otherwise.
  // A process of its own: esbuild keeps the working directory its service started in.
  const dir = join(scratch(t), 'bundles');
  const script = `import { buildBundles } from ${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'lib/bundle.ts')).href)};
console.log(JSON.stringify(await buildBundles({ force: true, dir: ${JSON.stringify(dir)} })));`;
  const out = execFileSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script], { cwd: tmpdir(), encoding: 'utf8', timeout: 100_000 });
  const results = JSON.parse(out.trim().split('\n').at(-1)!) as BuildResult[];
  assert.deepEqual(results.filter((r) => r.status !== 'built'), []);
  for (const name of ['cli', 'mcp-browser', 'mcp-loki', 'mcp-db', 'intake-writer', 'email-parser']) {
    assert.ok(freshBundle(name, dir), `${name} is fresh after a build from ${tmpdir()}`);
    const manifest = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { root: string; inputs: Record<string, unknown> };
    assert.equal(manifest.root, PACKAGE_ROOT);
    assert.ok(Object.keys(manifest.inputs).includes(BUNDLES[name as BundleName]), `${name}'s manifest names its entry relative to the package root`);
  }
});

test('a copied installation does not run the original\'s bundles, and a failed build there is reported as failed', { timeout: 120_000 }, async (t) => {
  const work = scratch(t);
  const dir = join(work, 'bundles');
  assert.deepEqual((await buildBundles({ dir })).filter((r) => r.status === 'failed'), []);
  // `cp -a` of the installation (which keeps mtimes to the nanosecond): the sources the
  // bundles hold, node_modules (shared here by a link, the bundles being elsewhere) and
  // the bundles folder.
  const copy = join(work, 'copy');
  const copyDir = join(copy, 'bundles');
  const names = Object.keys(BUNDLES) as BundleName[];
  const top = new Set<string>();
  for (const name of names) {
    const { inputs } = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { inputs: Record<string, unknown> };
    for (const file of Object.keys(inputs)) top.add(file.split('/')[0]!);
  }
  mkdirSync(copy);
  execFileSync('cp', ['-a', ...[...top].map((f) => join(PACKAGE_ROOT, f)), dir, copy]);
  symlinkSync(join(PACKAGE_ROOT, 'node_modules'), join(copy, 'node_modules'));
  for (const name of names) {
    assert.ok(freshBundle(name, dir), `${name} is fresh where it was built`);
    assert.equal(freshBundle(name, copyDir, copy), null, `${name}: the copy's bundles hold the original's paths, so they are stale there`);
  }

  // A build that fails in the copy (there: the cache not writable by the service user;
  // here: a source whose size and mtime did not change) is a failure, not "fresh".
  const cli = join(copy, BUNDLES.cli);
  const good = readFileSync(cli);
  const breakCli = () => {
    const { atime, mtime } = statSync(cli);
    writeFileSync(cli, '('.repeat(good.length));
    utimesSync(cli, atime, mtime);
  };
  const restoreCli = () => {
    const { atime, mtime } = statSync(cli);
    writeFileSync(cli, good);
    utimesSync(cli, atime, mtime);
  };
  breakCli();
  const failed = await buildBundles({ root: copy, dir: copyDir });
  assert.equal(failed.find((r) => r.name === 'cli')?.status, 'failed', JSON.stringify(failed));
  assert.equal(freshBundle('cli', copyDir, copy), null);

  // Built there, the copy's bundles are its own: they name the copy's sources.
  restoreCli();
  const built = await buildBundles({ root: copy, dir: copyDir });
  assert.deepEqual(built.filter((r) => r.status === 'failed'), []);
  const entry = freshBundle('cli', copyDir, copy);
  assert.ok(entry, 'the copy builds its own bundles');
  const code = readdirSync(dirname(entry))
    .map((f) => readFileSync(join(dirname(entry), f), 'utf8'))
    .join('\n');
  assert.ok(code.includes(JSON.stringify(join(copy, 'control'))), 'the bundle locates files beside the copy\'s sources');
  assert.ok(!code.includes(JSON.stringify(join(PACKAGE_ROOT, 'control'))), 'and not beside the original\'s');

  // A forced rebuild that fails is reported as failed even though the manifest is fresh.
  breakCli();
  const forced = await buildBundles({ root: copy, dir: copyDir, force: true });
  assert.equal(forced.find((r) => r.name === 'cli')?.status, 'failed', JSON.stringify(forced));
  restoreCli();
});
