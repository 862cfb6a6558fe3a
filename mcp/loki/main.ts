/**
 * Entry point of the loki MCP server: `node --import tsx mcp/loki/main.ts --settings <file>`
 * (or BUGBOT_MCP_SETTINGS=<file>). The file holds the `mcp.loki` settings; secrets come
 * from the environment variables those settings name. Every problem is reported at
 * once on stderr before exiting with status 2. Stdio, or a Unix socket: ../shared/serve.ts.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { lokiSecretProblems } from '../../lib/loki/index.ts';
import { lokiSettingsSchema, type LokiSettings } from '../../lib/mcp/loki-settings.ts';
import { serve, stderrLog } from '../shared/serve.ts';
import { createLokiServer } from './server.ts';

const log = stderrLog('loki');

function loadSettings(): LokiSettings {
  let path = process.env.BUGBOT_MCP_SETTINGS;
  try {
    path = parseArgs({ options: { settings: { type: 'string' } }, strict: true }).values.settings ?? path;
  } catch (err) {
    fail([`${(err as Error).message}; usage: main.ts [--settings <file>]`]);
  }
  let raw: unknown = {};
  if (path) {
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      fail([`cannot read settings file ${path}: ${(err as Error).message}`]);
    }
  } else {
    log('no --settings file or BUGBOT_MCP_SETTINGS: using defaults (no backend configured)');
  }
  const parsed = lokiSettingsSchema.safeParse(raw);
  if (!parsed.success) fail(parsed.error.issues.map((i) => `${i.path.join('.') || '(settings)'}: ${i.message}`));
  const problems = lokiSecretProblems(parsed.data, { get: (name) => (name ? process.env[name] : undefined) });
  if (problems.length) fail(problems);
  return parsed.data;
}

function fail(problems: string[]): never {
  log(`invalid settings:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(2);
}

const settings = loadSettings();
log(`backend: ${settings.url ? `Loki at ${settings.url}` : settings.files.length ? `${settings.files.length} log files` : 'none'}`);
await serve({ name: 'loki', create: () => ({ server: createLokiServer(settings, process.env) }) });
