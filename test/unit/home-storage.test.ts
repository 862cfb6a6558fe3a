// What the control plane does when its home stops taking writes under it: bugbot.db
// deleted or replaced while `bugbot start` runs (the whole path, with a real process, is in
// test/e2e/lifecycle.test.ts), and a home on a file system gone read-only.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createApp } from '../../control/app.ts';
import { Dispatcher } from '../../control/dispatcher/pool.ts';
import { HttpError } from '../../control/http-error.ts';
import { silentLogger } from '../../control/log.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { Intake } from '../../control/intake/index.ts';
import { Store } from '../../control/queue/store.ts';
import { openServices } from '../../control/services.ts';
import { createRedactor } from '../../lib/redact.ts';
import { alertEvent, postJson, tempDir, testConfig, waitFor } from '../support/helpers.ts';
import { readOnlyDisk } from '../support/tmpfs.ts';

function services(t: TestContext, writerThread: boolean) {
  const home = tempDir(t);
  const config = testConfig(home, {});
  const s = openServices(config, silentLogger, { writerThread });
  t.after(async () => {
    await s.writer?.close();
    s.store.close();
  });
  return { ...s, home, config };
}

const gone = () => new HttpError(503, 'database_gone', 'the database file is gone: send it again later');

// Review finding: `rm home/bugbot.db*` under a running bugbot start went unnoticed; both
// connections kept committing to the unlinked file, and every acknowledged event was lost
// at the next start.
test('openServices tells when its database file was deleted or replaced, by a stat of its path', (t) => {
  const deleted = services(t, false);
  const db = join(deleted.home, 'bugbot.db');
  assert.equal(deleted.databaseGone(), null);
  for (const f of ['bugbot.db', 'bugbot.db-wal', 'bugbot.db-shm']) rmSync(join(deleted.home, f), { force: true });
  assert.equal(deleted.databaseGone(), `${db} was deleted`);

  // A copy put in its place (a backup restored over it) is another file: the process still writes the old one.
  const replaced = services(t, false);
  const path = join(replaced.home, 'bugbot.db');
  copyFileSync(path, `${path}.copy`);
  renameSync(`${path}.copy`, path);
  assert.equal(replaced.databaseGone(), `${path} was replaced by another file`);
});

test('a store told to refuse events refuses them (duplicates too) with the error it was given, and stores nothing; the rest of it goes on', (t) => {
  const s = services(t, false);
  const [first] = s.intake.accept([alertEvent({ sourceEventId: 'a' })]);
  assert.equal(first!.status, 'created');
  const err = gone();
  s.store.refuseEvents(err);
  assert.throws(() => s.intake.accept([alertEvent({ sourceEventId: 'b', message: 'RangeError: another one' })]), (e) => e === err);
  assert.throws(() => s.intake.accept([alertEvent({ sourceEventId: 'a' })]), (e) => e === err, 'a duplicate is not acknowledged either');
  assert.equal(s.store.countEvents(), 1);
  assert.equal(s.store.getTicket(first!.ticketId!)!.count, 1);
  // Reads and the rest of the queue are untouched.
  assert.equal(s.store.listTickets().length, 1);
});

test("intake's writer thread, told to refuse, answers every request with that error before it reaches the thread: a webhook gets 503, nothing stored", async (t) => {
  const s = services(t, true);
  await s.writer!.start();
  const app = createApp({ config: s.config, store: s.store, intake: s.intake, logger: silentLogger });
  s.writer!.refuse(gone());
  const res = await postJson(app, '/api/tickets', { title: 'Checkout is blank' });
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), { error: { code: 'database_gone', message: 'the database file is gone: send it again later' } });
  assert.equal(s.store.countEvents(), 0);
});

test('/healthz and /readyz answer 503 with the reason while the database is gone, /readyz while the server stops', async (t) => {
  const s = services(t, false);
  let why: string | null = null;
  const shutdown = new AbortController();
  const app = createApp({ config: s.config, store: s.store, intake: s.intake, logger: silentLogger, databaseGone: () => why, shutdown: shutdown.signal });
  assert.equal((await app.request('/healthz')).status, 200);
  assert.equal((await app.request('/readyz')).status, 200);
  why = "bugbot's database file was deleted";
  const res = await app.request('/healthz');
  assert.equal(res.status, 503);
  const body = (await res.json()) as { ok: boolean; error: { code: string; message: string } };
  assert.deepEqual([body.ok, body.error], [false, { code: 'database_gone', message: why }]);
  const ready = await app.request('/readyz');
  assert.equal(ready.status, 503);
  assert.deepEqual(await ready.json(), { ready: false, error: { code: 'database_gone', message: why } });
  why = null;
  shutdown.abort();
  const stopping = await app.request('/readyz');
  assert.equal(stopping.status, 503);
  assert.equal(((await stopping.json()) as { error: { code: string } }).error.code, 'unavailable');
  assert.equal((await app.request('/healthz')).status, 200, 'alive while it stops');
});

// Review finding: with the home's file system read-only, a run's ticket folder failed as
// "ENOENT: no such file or directory, mkdir '.../agent'" (Node's recursive mkdir), which
// reads as a bug of bugbot's.
test('a ticket folder that cannot be made on a read-only file system says so, not ENOENT', async (t) => {
  const { disk, readOnly } = readOnlyDisk(t, '16m');
  const home = join(disk, 'home');
  mkdirSync(home);
  readOnly();
  // The store elsewhere: only the ticket folders are on the read-only disk.
  const store = new Store(join(tempDir(t), 'bugbot.db'));
  t.after(() => store.close());
  const config = testConfig(home, { intake: { settleSeconds: 0 }, workers: 1, harness: { minFreeDiskMb: 0 } });
  const [filed] = new Intake({ store, config, redactor: createRedactor() }).accept([alertEvent()]);
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger: silentLogger, pollMs: 20 });
  dispatcher.start();
  t.after(() => dispatcher.stop(100));
  const run = await waitFor(
    () => store.stmt('SELECT reason FROM runs WHERE ticket_id = ? AND reason IS NOT NULL').get(filed!.ticketId) as { reason: string } | undefined,
    5_000,
    'the launch to fail',
  );
  assert.match(run.reason, new RegExp(`^could not prepare the ticket folder: ${home.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\S* is on a read-only file system \\(remount it read-write; bugbot's home must be writable\\): ENOENT`));
});
