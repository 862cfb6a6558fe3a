/**
 * A loopback HTTP proxy that Chromium must send everything through, and that opens
 * connections only to allowed origins. The route guard in browser.ts sees the first
 * request of each chain, but Playwright continues redirect hops itself without calling
 * route handlers (microsoft/playwright#33882), and WebSockets are not routed at all: a
 * page could leave the dev server by a 302 or a `new WebSocket(...)`. Here every hop and
 * every tunnel is checked at the network edge.
 */
import { Agent, request as httpRequest, createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { OriginPolicy } from './origins.ts';

export interface GuardProxy {
  /** `http://127.0.0.1:<port>`, for Chromium's --proxy-server. */
  url: string;
  close(): Promise<void>;
}

/** Where the proxy listens: an IP literal, the one host Chromium's resolver rules leave alone (browser.ts). */
export const GUARD_PROXY_HOST = '127.0.0.1';

/** Headers that describe one hop (RFC 9110 §7.6.1) and must not be forwarded. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function forwardable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_HEADERS.has(k)));
}

/**
 * Starts the proxy on GUARD_PROXY_HOST (an ephemeral port). `onBlocked` hears every refused
 * request or tunnel (`GET http://evil.test/x`, `CONNECT evil.test:443`) with its host:port.
 */
export async function startGuardProxy(policy: OriginPolicy, onBlocked: (what: string, authority: string) => void): Promise<GuardProxy> {
  const sockets = new Set<Socket>();
  // Our own pool, so closing the proxy also drops its kept-alive connections to the dev server.
  const agent = new Agent({ keepAlive: true });
  const refusal = (what: string) => `bugbot browser guard: refused ${what}; ${policy.describe()}\n`;

  const server: Server = createServer((req, res) => {
    // A proxied request carries the absolute URL in the request line.
    const target = req.url ?? '';
    if (!policy.allows(target)) {
      onBlocked(`${req.method} ${target}`, URL.canParse(target) ? new URL(target).host : target);
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' }).end(refusal(`${req.method} ${target}`));
      return;
    }
    const url = new URL(target);
    if (url.protocol !== 'http:') {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('bugbot browser guard: https goes through CONNECT\n');
      return;
    }
    const upstream = httpRequest(
      { agent, host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || 80, method: req.method, path: url.pathname + url.search, headers: forwardable(req.headers) },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.statusMessage, forwardable(up.headers));
        up.pipe(res);
        up.on('error', () => res.destroy());
      },
    );
    upstream.on('error', (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' }).end(`bugbot browser guard: ${url.origin} is not answering (${err.message}); is the dev server running?\n`);
    });
    // Chromium gave up on the response (navigated away from an event stream): stop reading it.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });

  // HTTPS and WebSockets arrive as CONNECT host:port tunnels.
  server.on('connect', (req, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(req.url ?? '');
    if (!m || !policy.allowsAuthority(m[1]!, m[2]!)) {
      onBlocked(`CONNECT ${req.url}`, req.url ?? '');
      client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\n${refusal(`CONNECT ${req.url}`)}`);
      return;
    }
    const upstream = connect(Number(m[2]), m[1]!.replace(/^\[|\]$/g, ''), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, GUARD_PROXY_HOST, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${GUARD_PROXY_HOST}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
