import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { logError, logInfo } from './log.ts';
import { handlePaymentWebhook, type PaymentWebhook } from './payments.ts';
import { getPet } from './pets.ts';
import { searchPets } from './search.ts';
import type { Store } from './store.ts';

/** Seeded users for local development; /dev-login signs in as one of them. */
export const DEV_USERS: Record<string, { name: string; plan: string; credits: number }> = {
  free: { name: 'Frida Free', plan: 'free', credits: 10 },
  enterprise: { name: 'Erin Enterprise', plan: 'enterprise', credits: 100000 },
  'no-credits': { name: 'Nico Nocredits', plan: 'pro', credits: 0 },
};

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

function currentUser(req: IncomingMessage): string | undefined {
  const m = /(?:^|;\s*)dev_user=([\w-]+)/.exec(req.headers.cookie ?? '');
  return m && DEV_USERS[m[1]!] ? m[1] : undefined;
}

async function route(store: Store, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const method = req.method ?? 'GET';

  if (method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });

  if (method === 'GET' && url.pathname === '/dev-login') {
    const role = url.searchParams.get('role') ?? '';
    if (!DEV_USERS[role]) return send(res, 400, { error: `unknown role; one of ${Object.keys(DEV_USERS).join(', ')}` });
    res.writeHead(302, { 'set-cookie': `dev_user=${role}; Path=/; HttpOnly`, location: '/' });
    res.end();
    return;
  }

  if (method === 'GET' && url.pathname === '/') {
    const user = currentUser(req);
    const who = user ? `${DEV_USERS[user]!.name} (${DEV_USERS[user]!.plan}, ${DEV_USERS[user]!.credits} credits)` : 'not signed in';
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>Pet shop</title><h1>Pet shop</h1><p id="user">${who}</p>`);
    return;
  }

  if (method === 'GET' && url.pathname === '/api/pets/search') {
    return send(res, 200, { pets: searchPets(store, url.searchParams.get('q') ?? '') });
  }

  const petMatch = /^\/api\/pets\/(\d+)$/.exec(url.pathname);
  if (method === 'GET' && petMatch) {
    const pet = getPet(store, Number(petMatch[1]));
    return pet ? send(res, 200, pet) : send(res, 404, { error: 'no such pet' });
  }

  if (method === 'POST' && url.pathname === '/webhooks/payments') {
    const event = JSON.parse(await readBody(req)) as PaymentWebhook;
    return send(res, 200, handlePaymentWebhook(store, event));
  }

  send(res, 404, { error: `no route for ${method} ${url.pathname}` });
}

export function createApp(store: Store): Server {
  return createServer((req, res) => {
    route(store, req, res).catch((err: unknown) => {
      logError('request failed', err, { method: req.method, url: req.url });
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    });
  });
}

export { logInfo };
