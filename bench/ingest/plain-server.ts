/**
 * The baseline for bench/ingest: a plain Hono endpoint on the same HTTP stack that
 * only parses the same JSON body and answers. Prints its URL on stdout.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
app.post('/triggers/grafana', async (c) => {
  const body = (await c.req.json()) as { alerts?: unknown[] };
  return c.json({ accepted: body.alerts?.length ?? 0 });
});
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
  process.stdout.write(`listening on http://127.0.0.1:${info.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
