/**
 * Review finding: what a ticket's reporters were told was read whole (every row, each with
 * its notice: the whole ticket, reporters included) and listed whole by the API, the
 * ticket page and `bugbot ticket --json`; a fix told to each reporter of an email flood
 * made all three huge. Now they read the latest messages only, and count the rest.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  finishNotification,
  keepUntoldFix,
  latestNotice,
  NOTIFICATIONS_LISTED,
  notificationCounts,
  notificationSummaries,
  recordNotification,
} from '../../control/queue/notifications.ts';
import { Store } from '../../control/queue/store.ts';
import { buildTestApp, repoRoot } from '../support/helpers.ts';

const MESSAGES = 260;
const FAILED_EVERY = 10;

/** A fix told to each of MESSAGES reporters by email; every tenth mail refused, the last one still waiting. */
function flood(store: Store, ticketId: number): void {
  // The notice carries the ticket with its reporters: big, and never needed to list who was told.
  const notice = { kind: 'fixed', ticket: { id: ticketId, reporters: Array.from({ length: MESSAGES }, (_, i) => `reporter-${i}@customer.test`) } };
  keepUntoldFix(store, { ticketId, dedupeKey: `untold-${ticketId}`, notice });
  for (let i = 0; i < MESSAGES; i++) {
    const id = recordNotification(store, { ticketId, kind: 'fixed', dedupeKey: `flood-${ticketId}-${i}`, notice, target: { via: 'email', reporter: i } })!;
    if (i === MESSAGES - 1) continue;
    if (i % FAILED_EVERY === 0) finishNotification(store, id, 'failed', 1, 'EENVELOPE');
    else finishNotification(store, id, 'sent', 1);
  }
}

const failed = Math.ceil((MESSAGES - 1) / FAILED_EVERY);
const counts = { total: MESSAGES, pending: 1, sent: MESSAGES - 1 - failed, failed };

function setup(t: Parameters<typeof buildTestApp>[0]) {
  const app = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } } });
  const at = new Date().toISOString();
  const [r] = app.intake.accept([{ source: 'manual', kind: 'error', title: 'Flooded', message: 'it broke', labels: {}, count: 1, firstSeen: at, lastSeen: at, human: true, sourceEventId: 'flooded' }]);
  const id = r!.ticketId!;
  flood(app.store, id);
  return { ...app, id };
}

test('the latest messages, oldest first, without their notices; the rest counted by state', (t) => {
  const { store, id } = setup(t);
  const read: string[] = [];
  const stmt = store.stmt.bind(store);
  store.stmt = ((sql: string) => (read.push(sql), stmt(sql))) as typeof store.stmt;
  const latest = notificationSummaries(store, id);
  store.stmt = stmt;
  assert.equal(latest.length, NOTIFICATIONS_LISTED);
  assert.deepEqual(
    latest.map((n) => n.to.reporter),
    Array.from({ length: NOTIFICATIONS_LISTED }, (_, i) => MESSAGES - NOTIFICATIONS_LISTED + i),
  );
  assert.equal(latest.at(-1)!.state, 'pending');
  assert.deepEqual(read.filter((sql) => /notice_json|\*/.test(sql)), [], 'no notice read');
  assert.deepEqual(notificationSummaries(store, id, 3).map((n) => n.to.reporter), [MESSAGES - 3, MESSAGES - 2, MESSAGES - 1]);
  // The fix kept for later reporters is no message: neither listed nor counted.
  assert.deepEqual(notificationCounts(store, id), counts);
  assert.deepEqual(notificationCounts(store, id + 1), { total: 0, pending: 0, sent: 0, failed: 0 });
});

test('GET /api/tickets/:id lists the latest messages and counts them all', async (t) => {
  const { app, id } = setup(t);
  const body = (await (await app.request(`/api/tickets/${id}`)).json()) as { notifications: Array<{ to: { reporter: number } }>; notificationCounts: unknown };
  assert.equal(body.notifications.length, NOTIFICATIONS_LISTED);
  assert.equal(body.notifications.at(-1)!.to.reporter, MESSAGES - 1);
  assert.deepEqual(body.notificationCounts, counts);
});

test("the ticket page lists the latest 50 messages and says how many there are", async (t) => {
  const { app, id } = setup(t);
  const html = await (await app.request(`/tickets/${id}`, { headers: { accept: 'text/html' } })).text();
  const list = /<ul id="notifications">(.*?)<\/ul>/s.exec(html)?.[1] ?? '';
  assert.equal(list.match(/<li /g)?.length, 50);
  assert.match(list, new RegExp(`email to reporter ${MESSAGES}: <b>pending</b>`));
  assert.match(
    html,
    new RegExp(`id="notifications-cut">${MESSAGES} messages: ${counts.sent} sent, ${counts.failed} failed, 1 waiting; the latest 50 below \\(/api/tickets/${id} lists the latest ${NOTIFICATIONS_LISTED}\\)`),
  );
});

test('bugbot ticket: the latest 20 and a count of the rest by state; --json the latest 200 and the counts', (t) => {
  const { config, id } = setup(t);
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--home', config.home, ...args], {
      cwd: config.home,
      encoding: 'utf8',
      env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn' },
      timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const text = cli('ticket', String(id));
  const told = /\nreporters told:\n((?: {2}.*\n)+)/.exec(text)?.[1]?.split('\n').filter(Boolean) ?? [];
  assert.equal(
    told[0],
    `  (${MESSAGES - 20} earlier messages not shown; ${MESSAGES} in all: ${counts.sent} sent, ${counts.failed} failed, 1 waiting; bugbot ticket ${id} --json lists the latest ${NOTIFICATIONS_LISTED})`,
  );
  assert.equal(told.length, 21);
  assert.equal(told.at(-1), `  fixed → email to reporter ${MESSAGES}: pending`);
  const json = JSON.parse(cli('ticket', String(id), '--json')) as { notifications: unknown[]; notificationCounts: unknown };
  assert.equal(json.notifications.length, NOTIFICATIONS_LISTED);
  assert.deepEqual(json.notificationCounts, counts);
});

test("a ticket's messages are found through an index (migration 15), and its latest notice of a kind is one row", (t) => {
  const { store, config, id } = setup(t);
  recordNotification(store, { ticketId: id, kind: 'fixed', dedupeKey: 'newest', notice: { kind: 'fixed', newest: true }, target: { via: 'email', reporter: 0 } });
  assert.deepEqual(JSON.parse(latestNotice(store, id, 'fixed')!), { kind: 'fixed', newest: true });
  assert.equal(latestNotice(store, id, 'failed'), undefined);
  // An outbox of schema 14 gets the index; a lookup by ticket then searches it, not the table.
  store.db.exec('DROP INDEX notifications_ticket; PRAGMA user_version = 14;');
  store.close();
  const again = new Store(join(config.home, 'bugbot.db'));
  t.after(() => again.close());
  const plan = again.db.prepare('EXPLAIN QUERY PLAN SELECT notice_json FROM notifications WHERE ticket_id = ? AND kind = ? ORDER BY id DESC LIMIT 1').all(id, 'fixed') as Array<{ detail: string }>;
  assert.match(plan.map((p) => p.detail).join('\n'), /USING INDEX notifications_ticket/);
});
