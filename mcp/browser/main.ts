/**
 * Entry point of the browser MCP server (stdio, or a Unix socket: ../shared/serve.ts):
 *   node --import tsx mcp/browser/main.ts [--settings <file>] [--origin <url>]...
 * The settings file holds the `mcp.browser` section as JSON; BUGBOT_MCP_SETTINGS names it
 * when --settings is absent. Each --origin appends to the allowed origins: the harness
 * passes the worker's dev server here.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { browserSettingsSchema, type BrowserSettings } from '../../lib/mcp/browser-settings.ts';
import { serve, stderrLog } from '../shared/serve.ts';
import { createBrowserServer } from './server.ts';

const log = stderrLog('browser');

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function loadSettings(argv: string[], env: NodeJS.ProcessEnv): BrowserSettings {
  const { values } = parseArgs({
    args: argv,
    options: { settings: { type: 'string' }, origin: { type: 'string', multiple: true } },
  });
  const file = values.settings ?? env.BUGBOT_MCP_SETTINGS;
  let raw: Record<string, unknown> = {};
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read browser settings from ${file}: ${(err as Error).message}`);
    }
    if (!isObject(parsed)) throw new Error(`${file}: expected a JSON object (the mcp.browser settings)`);
    raw = parsed;
  }
  // Flag origins add to the file's; a malformed file value is left for the schema to report.
  if (values.origin?.length) {
    raw = { ...raw, origins: Array.isArray(raw.origins) ? [...(raw.origins as unknown[]), ...values.origin] : (raw.origins ?? values.origin) };
  }
  const result = browserSettingsSchema.safeParse(raw);
  if (!result.success) throw new Error(`invalid browser settings${file ? ` in ${file}` : ''}:\n${z.prettifyError(result.error)}`);
  return result.data;
}

let settings: BrowserSettings;
try {
  settings = loadSettings(process.argv.slice(2), process.env);
} catch (err) {
  log((err as Error).message);
  process.exit(2);
}
const roles = Object.keys(settings.roles);
log(`origins: ${settings.origins.join(', ') || '(none)'}; roles: ${roles.join(', ') || '(none)'}; chromium: ${settings.chromiumPath} (launched on first use)`);
await serve({ name: 'browser', create: () => createBrowserServer({ settings, env: process.env, log }) });
