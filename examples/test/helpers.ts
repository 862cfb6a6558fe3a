import type { AddressInfo } from 'node:net';
import { after } from 'node:test';
import { createApp } from '../src/server.ts';
import { seedStore, type Store } from '../src/store.ts';

/** Start the app on a free port; closed after the test file. */
export async function startApp(store: Store = seedStore()): Promise<{ url: string; store: Store }> {
  const server = createApp(store);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  after(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, store };
}
