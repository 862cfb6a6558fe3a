/**
 * createLokiServer: the loki MCP server without a transport (main.ts binds stdio;
 * tests may connect an in-memory client). Read-only by construction: the client
 * only ever issues query_range reads or reads files.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createLokiClient, type LokiClient } from '../../lib/loki/index.ts';
import type { LokiSettings } from '../../lib/mcp/loki-settings.ts';
import { createServer, stderrLog } from '../shared/serve.ts';
import { registerTools } from '../shared/tool.ts';
import { lokiTools } from './tools/index.ts';

export interface LokiToolContext {
  client: LokiClient;
  settings: LokiSettings;
  now: () => Date;
}

const INSTRUCTIONS =
  'Read-only access to the application logs. Use loki_query for what a service logged around an error and ' +
  'loki_user_breadcrumbs for what one user did before it. Output is redacted and capped; narrow queries ' +
  '(labels, contains, a shorter time_range) when told a result was truncated.';

/** `env` supplies the secrets the settings name (tokenEnv, basic auth, hashSaltEnv). */
export function createLokiServer(
  settings: LokiSettings,
  env: NodeJS.ProcessEnv,
  opts: { now?: () => Date; log?: (msg: string) => void } = {},
): McpServer {
  const client = createLokiClient(settings, { get: (name) => (name ? env[name] : undefined) });
  const server = createServer('bugbot-loki', '0.1.0', INSTRUCTIONS);
  // Reading files on this machine is not an open world; querying a Loki server is.
  const openWorld = client.backend !== 'file';
  const tools = lokiTools.map((t) => ({ ...t, annotations: { ...t.annotations, openWorldHint: openWorld } }));
  registerTools(server, tools, { client, settings, now: opts.now ?? (() => new Date()) }, opts.log ?? stderrLog('loki'));
  return server;
}
