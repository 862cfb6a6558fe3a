/**
 * The browser MCP server without a transport: tests connect a client to it directly or
 * spawn main.ts; main.ts binds it to stdio.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { BrowserSettings } from '../../lib/mcp/browser-settings.ts';
import { createServer, stderrLog } from '../shared/serve.ts';
import { registerTools } from '../shared/tool.ts';
import { BrowserSession } from './browser.ts';
import { OriginPolicy } from './origins.ts';
import { browserTools } from './tools/index.ts';

export interface BrowserServerOptions {
  settings: BrowserSettings;
  /**
   * The environment, read once at the edge: the role settings name variables in it
   * (seeded passwords) and Chromium inherits its harmless part (PATH, HOME, locale).
   */
  env?: NodeJS.ProcessEnv;
  log?: (msg: string) => void;
}

export interface BrowserServer {
  server: McpServer;
  session: BrowserSession;
  /** Closes Chromium; the caller closes the transport. */
  close(): Promise<void>;
}

function instructions(settings: BrowserSettings, policy: OriginPolicy): string {
  const roles = Object.entries(settings.roles).map(([name, r]) => `- ${name}: ${r.description}`);
  return [
    "A headless Chromium confined to the worker's dev server: " + policy.describe() + '.',
    'Requests to any other origin (links, redirects, fetch, images, WebSockets) are blocked and listed in browser_console_logs.',
    roles.length ? `Roles for browser_dev_login:\n${roles.join('\n')}` : 'No dev-login roles are configured.',
  ].join('\n');
}

/** Builds the server and its (not yet launched) browser. */
export function createBrowserServer(opts: BrowserServerOptions): BrowserServer {
  const log = opts.log ?? stderrLog('browser');
  const policy = new OriginPolicy(opts.settings.origins);
  const env = opts.env ?? {};
  const session = new BrowserSession(opts.settings, policy, log, env);
  const server = createServer('bugbot-browser', '0.1.0', instructions(opts.settings, policy));
  registerTools(server, browserTools, { session, settings: opts.settings, policy, secret: (name) => env[name] }, log);
  return { server, session, close: () => session.close() };
}
