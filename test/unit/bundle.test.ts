// Prebuilt bundles (lib/bundle.ts): used only while every source in them is unchanged,
// and they behave as the sources do.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { buildBundles, freshBundle, PACKAGE_ROOT } from '../../lib/bundle.ts';

test('a bundle is fresh while its sources keep their size and mtime, stale after any change', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bugbot-bundle-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'bundles');
  mkdirSync(join(dir, 'x-0123456789ab'), { recursive: true });
  writeFileSync(join(dir, 'x-0123456789ab', 'main.mjs'), 'export {};\n');
  writeFileSync(join(root, 'a.ts'), 'export const a = 1;\n');
  const st = statSync(join(root, 'a.ts'));
  const manifest = (inputs: Record<string, [number, number]>) =>
    writeFileSync(join(dir, 'x.json'), JSON.stringify({ dir: 'x-0123456789ab', esbuild: '0', inputs }));

  manifest({ 'a.ts': [st.size, st.mtimeMs] });
  assert.equal(freshBundle('x', dir, root), join(dir, 'x-0123456789ab', 'main.mjs'));
  assert.equal(freshBundle('y', dir, root), null, 'no manifest: no bundle');

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
  for (const name of ['cli', 'mcp-browser', 'mcp-loki', 'mcp-db', 'intake-writer']) assert.ok(freshBundle(name), `${name} is fresh after a build`);

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
