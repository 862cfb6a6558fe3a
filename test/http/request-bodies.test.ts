/**
 * Request bodies bugbot cannot read as sent: a compressed one is refused saying so (415),
 * and one whose sender went away before it was all sent is the sender's side, not an
 * error of bugbot's in the log.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { test, type TestContext } from 'node:test';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { createApp } from '../../control/app.ts';
import { Intake } from '../../control/intake/index.ts';
import { createLogger } from '../../control/log.ts';
import { Store } from '../../control/queue/store.ts';
import { createRedactor } from '../../lib/redact.ts';
import { fixtureText, tempDir, testConfig, waitFor } from '../support/helpers.ts';

function app(t: TestContext, lines: string[] = []) {
  const home = tempDir(t);
  const config = testConfig(home);
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const logger = createLogger({ level: 'debug', write: (l) => lines.push(l) });
  return { store, app: createApp({ config, store, intake: new Intake({ store, config, redactor: createRedactor() }), logger }) };
}

test('a compressed body (content-encoding: gzip) is refused with 415 and accept-encoding: identity, on every route that takes one; nothing is stored', async (t) => {
  const { app: a, store } = app(t);
  const alert = fixtureText('grafana', 'webhook_firing_docs.json');
  const mail = 'From: Ann <ann@example.com>\r\nTo: bugs@example.com\r\nSubject: Checkout is broken\r\nMessage-ID: <gz-1@example.com>\r\n\r\nTypeError: total of undefined\r\n';
  const sent: Array<[string, string, string]> = [
    ['/triggers/grafana', 'application/json', alert],
    ['/triggers/latency', 'application/json', alert],
    ['/api/tickets', 'application/json', JSON.stringify({ title: 'Invoice PDF is blank', message: 'empty PDF' })],
    // Read as its compressed bytes, a mail was parsed as one (a 400 at best).
    ['/triggers/email/raw', 'message/rfc822', mail],
  ];
  for (const [path, type, body] of sent) {
    for (const coding of ['gzip', 'x-gzip, identity', 'br']) {
      const res = await a.request(path, { method: 'POST', headers: { 'content-type': type, 'content-encoding': coding }, body: gzipSync(body) });
      assert.equal(res.status, 415, `${path} ${coding}: ${await res.clone().text()}`);
      assert.equal(res.headers.get('accept-encoding'), 'identity');
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'unsupported_content_encoding');
      assert.match(error.message, /^content-encoding ".+" is not accepted: send the body uncompressed$/);
    }
  }
  assert.equal(store.countEvents(), 0);
  // As sent, or said to be as sent, it is taken.
  const plain = await a.request('/triggers/grafana', { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'identity' }, body: alert });
  assert.equal(plain.status, 200, await plain.text());
});

test('a sender that closes its connection before its body is all sent: logged at debug as its own doing, not as an unhandled error of bugbot\'s', async (t) => {
  const lines: string[] = [];
  const { app: a, store } = app(t, lines);
  // Requests the server has handed to the app: a slow machine may not have read a request's
  // head yet when the sender goes, and then no handler ever sees it.
  let arrived = 0;
  const fetch = (...args: Parameters<typeof a.fetch>) => (arrived++, a.fetch(...args));
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  // Declared length and chunked: the body read fails the same way.
  const heads = ['Content-Length: 1000\r\n\r\n{"version": "4", ', 'Transfer-Encoding: chunked\r\n\r\n11\r\n{"version": "4", \r\n'];
  for (const [i, head] of heads.entries()) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(`POST /triggers/grafana HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${head}`);
    // The handler is reading the body when the sender goes.
    await waitFor(() => arrived > i, 30_000, `request ${i + 1} to reach the app`);
    await new Promise((r) => setTimeout(r, 200));
    socket.destroy();
    await waitFor(() => lines.filter((l) => l.includes('/triggers/grafana')).length > i, 5_000, `the aborted request ${i + 1} was handled`);
  }
  const handled = lines.filter((l) => l.includes('/triggers/grafana'));
  assert.equal(handled.length, 2, handled.join('\n'));
  for (const l of handled) assert.match(l, /"level":"debug","msg":"request aborted by the client before its body was read"/);
  assert.equal(store.countEvents(), 0);
});
