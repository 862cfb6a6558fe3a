/**
 * The browser MCP server without a transport: tests connect a client to it directly or
 * spawn main.ts; main.ts binds it to stdio.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { BrowserSettings } from '../../lib/mcp/browser-settings.ts';
import { createServer, stderrLog } from '../shared/serve.ts';
import type { z } from 'zod';
import { literalMask } from '../../lib/redact.ts';
import { registerTools, ToolError, type ToolDef } from '../shared/tool.ts';
import { BrowserSession, errorText, type BrowserToolContext } from './browser.ts';
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

/**
 * A secret as a page may print it: as typed, URL- and form-encoded (a login form that
 * sends its fields in the URL), inside a JSON string (`console.log(JSON.stringify(body))`
 * writes `Pw\"x` for `Pw"x`) and HTML-escaped (a page echoing the form's value).
 */
function encodings(secret: string): string[] {
  const forms = [secret, encodeURIComponent(secret), new URLSearchParams({ v: secret }).toString().slice(2), JSON.stringify(secret).slice(1, -1)];
  // Serializers differ in what they escape besides `&`: a text node `<` and `>`, an
  // attribute `"` (and, in recent Chromium, `<` and `>`), other escapers `'` too.
  for (const angle of [true, false]) {
    for (const quot of ['&quot;', '"']) {
      for (const apos of ['&#39;', '&#x27;', "'"]) {
        let v = secret.replace(/&/g, '&amp;');
        if (angle) v = v.replace(/</g, '&lt;').replace(/>/g, '&gt;');
        forms.push(v.replace(/"/g, quot).replace(/'/g, apos));
      }
    }
  }
  return forms;
}

/**
 * The seeded users' secrets the roles name (`{ env: NAME }`), in each form `encodings`
 * gives: never in what the model reads (a login form that sends them in its URL would
 * show them in the page's address, an error or an HTTP log entry). The session masks
 * page text before it cuts it (console entries, errors, titles), so no cut leaves a
 * prefix of a secret that this mask no longer matches.
 */
function secretMask(settings: BrowserSettings, env: NodeJS.ProcessEnv): (text: string) => string {
  const values: string[] = [];
  for (const role of Object.values(settings.roles)) {
    for (const v of Object.values(role.form?.fields ?? {})) {
      const secret = typeof v === 'object' ? env[v.env] : undefined;
      if (secret && secret.length >= 3) values.push(...encodings(secret));
    }
  }
  return literalMask(values);
}

/**
 * Every browser tool: what it answers is masked (secretMask); one that failed may have
 * failed on a page that stopped answering, which is then closed (recoverIfHung) and the
 * error says so, or every later call would wait on it too. Playwright's own errors reach
 * the model without their call log.
 */
function guarded(tool: ToolDef<z.ZodRawShape, BrowserToolContext>, session: BrowserSession, mask: (text: string) => string): ToolDef<z.ZodRawShape, BrowserToolContext> {
  return {
    ...tool,
    handler: async (args, ctx) => {
      try {
        const result = await tool.handler(args, ctx);
        return { ...result, content: result.content.map((c) => (c.type === 'text' ? { ...c, text: mask(c.text) } : c)) };
      } catch (err) {
        const recovered = await session.recoverIfHung();
        const said = mask(err instanceof ToolError ? err.message : `${tool.name} failed: ${errorText(err, mask)}`);
        if (recovered) throw new ToolError(`${said} ${recovered}`);
        if (err instanceof ToolError) throw new ToolError(said);
        // Unexpected: logged with its stack by registerTools, told to the model cleaned.
        const cleaned = new Error(errorText(err, mask));
        cleaned.stack = mask(String((err as Error).stack));
        throw cleaned;
      }
    },
  };
}

/** Builds the server and its (not yet launched) browser. */
export function createBrowserServer(opts: BrowserServerOptions): BrowserServer {
  const log = opts.log ?? stderrLog('browser');
  const policy = new OriginPolicy(opts.settings.origins);
  const env = opts.env ?? {};
  const mask = secretMask(opts.settings, env);
  const session = new BrowserSession(opts.settings, policy, log, env, mask);
  const server = createServer('bugbot-browser', '0.1.0', instructions(opts.settings, policy));
  registerTools(server, browserTools.map((tool) => guarded(tool, session, mask)), { session, settings: opts.settings, policy, secret: (name) => env[name] }, log);
  return { server, session, close: () => session.close() };
}
