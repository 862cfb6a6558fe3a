/**
 * Entry point of the db MCP server (stdio, or a Unix socket: ../shared/serve.ts).
 * Usage: node --import tsx mcp/db/main.ts [--settings <file>] [--allow-writes]
 * The settings file holds the `mcp.db` section as JSON (or BUGBOT_MCP_SETTINGS names
 * it). The connection URL is read from the environment variable the settings name
 * (`urlEnv`, or `writeUrlEnv` with --allow-writes), never from the file.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { dbSettingsSchema, type DbSettings } from '../../lib/mcp/db-settings.ts';
import { serve, stderrLog } from '../shared/serve.ts';
import { createDbServer } from './server.ts';

const log = stderrLog('db');

function fail(msg: string): never {
  log(msg);
  process.exit(2);
}

function parseArgs(argv: string[]): { settingsPath?: string; allowWrites: boolean } {
  let settingsPath: string | undefined;
  let allowWrites = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--settings') settingsPath = argv[++i] ?? fail('--settings needs a file');
    else if (a === '--allow-writes') allowWrites = true;
    else fail(`unknown argument ${a}; usage: main.ts [--settings <file>] [--allow-writes]`);
  }
  return { settingsPath: settingsPath ?? process.env.BUGBOT_MCP_SETTINGS, allowWrites };
}

function loadSettings(path: string | undefined): DbSettings {
  let raw: unknown = {};
  if (path) {
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      fail(`cannot read settings ${path}: ${(err as Error).message}`);
    }
  }
  const parsed = dbSettingsSchema.safeParse(raw);
  if (!parsed.success) {
    fail(`invalid settings${path ? ` in ${path}` : ''}:\n${parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n')}`);
  }
  return parsed.data;
}

const { settingsPath, allowWrites } = parseArgs(process.argv.slice(2));
const settings = loadSettings(settingsPath);
let url: string | undefined;
let sqlitePath: string | undefined;
if (settings.driver === 'postgres') {
  const env = allowWrites ? settings.writeUrlEnv : settings.urlEnv;
  url = process.env[env] || fail(`set ${env} to the ${allowWrites ? 'write-enabled' : 'read-only'} PostgreSQL connection URL`);
} else {
  sqlitePath = resolve(settingsPath ? dirname(settingsPath) : process.cwd(), settings.sqlitePath!);
}
if (allowWrites) log('writes enabled by --allow-writes');
await serve({ name: 'db', create: () => createDbServer({ settings, allowWrites, url, sqlitePath, log }) });
