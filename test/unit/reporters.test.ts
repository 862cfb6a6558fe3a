/**
 * A ticket's reporters: a row each (migration 12), once per reporter and thread, in the
 * order they came; what an older database held in the ticket's row moves over intact.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Intake } from '../../control/intake/index.ts';
import { Store } from '../../control/queue/store.ts';
import { SCHEMA_VERSION } from '../../control/queue/migrations.ts';
import type { Reporter, TriggerEvent } from '../../control/types.ts';
import { createRedactor } from '../../lib/redact.ts';
import { tempDir, testConfig } from '../support/helpers.ts';

const at = '2026-11-21T10:00:00.000Z';
const report = (n: number, reporter: Reporter): TriggerEvent => ({
  source: reporter.kind === 'slack' ? 'slack' : 'email',
  kind: 'report',
  title: 'Checkout shows a blank page',
  message: 'Checkout shows a blank page after I press pay',
  labels: {},
  count: 1,
  firstSeen: at,
  lastSeen: at,
  human: true,
  sourceEventId: `report-${n}`,
  reporter,
});

test("a ticket's reporters come once each, in order, and its Slack thread finds it", (t) => {
  const home = tempDir(t);
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const intake = new Intake({ store, config: testConfig(home, { intake: { settleSeconds: 0 } }), redactor: createRedactor() });
  const people: Reporter[] = [
    { kind: 'email', id: 'ann@example.com', address: 'ann@example.com', thread: '<a1@example.com>' },
    { kind: 'slack', id: 'U0BEN', thread: 'C1:1700000000.000100' },
    { kind: 'email', id: 'cy@example.com', address: 'cy@example.com', thread: '<c1@example.com>' },
  ];
  const results = intake.accept([...people, people[0]!, people[1]!].map((p, i) => report(i, p)));
  const id = results[0]!.ticketId!;
  assert.ok(results.every((r) => r.ticketId === id), 'one ticket');
  assert.deepEqual(store.getTicket(id)!.reporters, people, 'once each, first first');
  assert.deepEqual(store.getTicket(id)!.reporter, people[0]);
  assert.equal(store.ticketOfThread('slack', 'C1:1700000000.000100')?.fingerprint, store.getTicket(id)!.fingerprint);
  assert.equal(store.ticketOfThread('slack', 'C1:other'), undefined);
  assert.equal(store.ticketOfThread('email', 'C1:1700000000.000100'), undefined, 'a thread is its kind\'s');
});

test('migration 12 moves the reporters an older database kept in the ticket row, in order', (t) => {
  const home = tempDir(t);
  const path = join(home, 'bugbot.db');
  let store = new Store(path);
  const intake = new Intake({ store, config: testConfig(home, { intake: { settleSeconds: 0 } }), redactor: createRedactor() });
  const people: Reporter[] = [
    { kind: 'slack', id: 'U0AMY', thread: 'C2:1700000000.000200' },
    { kind: 'email', id: 'bo@example.com', address: 'bo@example.com' },
  ];
  const [a] = intake.accept(people.map((p, i) => report(i, p)));
  const [b] = intake.accept([{ ...report(9, people[0]!), title: 'Refunds fail', message: 'TypeError: refund is undefined', sourceEventId: 'other' }]);
  assert.notEqual(a!.ticketId, b!.ticketId);
  // As schema 11 had it: the list in the row, no table.
  store.db.exec(`
    UPDATE tickets SET reporters_json = (SELECT json_group_array(json(reporter_json)) FROM (SELECT reporter_json FROM ticket_reporters r WHERE r.ticket_id = tickets.id ORDER BY r.id));
    DROP TABLE ticket_reporters;
    PRAGMA user_version = 11;
  `);
  assert.equal(SCHEMA_VERSION, 17);
  store.close();

  store = new Store(path);
  t.after(() => store.close());
  assert.deepEqual(store.getTicket(a!.ticketId!)!.reporters, people);
  assert.deepEqual(store.getTicket(b!.ticketId!)!.reporters, [people[0]]);
  assert.equal(store.ticketOfThread('slack', 'C2:1700000000.000200')?.fingerprint, store.getTicket(b!.ticketId!)!.fingerprint, 'the newest of its tickets');
  assert.deepEqual(store.stmt("SELECT COUNT(*) AS n FROM tickets WHERE reporters_json != '[]'").get(), { n: 0 });
});

// Review finding: migration 12 read every older ticket's list with json_each(), which
// stops on text that is not JSON (an empty or hand-edited column) or on a list of bare
// ids: the migration failed, and with it every start of bugbot on that database.
test('migration 12 moves what it can of odd reporter lists, and the database opens', (t) => {
  const home = tempDir(t);
  const path = join(home, 'bugbot.db');
  let store = new Store(path);
  const intake = new Intake({ store, config: testConfig(home, { intake: { settleSeconds: 0 } }), redactor: createRedactor() });
  const amy: Reporter = { kind: 'slack', id: 'U0AMY', thread: 'C3:1700000000.000300' };
  const ids = intake.accept(['TypeError: a is undefined', 'TypeError: b is undefined', 'TypeError: c is undefined', 'TypeError: d is undefined', 'TypeError: e is undefined'].map((message, i) => ({ ...report(i, amy), title: message, message }))).map((r) => r.ticketId!);
  assert.equal(new Set(ids).size, 5);
  const [empty, garbage, bare, mixed, single] = ids as [number, number, number, number, number];
  // As schema 11 had it, with what an older database may hold.
  store.db.exec('DROP TABLE ticket_reporters; PRAGMA user_version = 11;');
  const set = store.db.prepare('UPDATE tickets SET reporters_json = ? WHERE id = ?');
  set.run('', empty);
  set.run('[{"kind":"slack","id":"U0AMY"', garbage);
  set.run('["U0AMY", 7, null]', bare);
  set.run(JSON.stringify(['U0OLD', amy, { kind: 'slack' }, amy, { ...amy, id: 'U0BEN' }]), mixed);
  set.run(JSON.stringify(amy), single);
  store.close();

  store = new Store(path);
  t.after(() => store.close());
  for (const id of [empty, garbage, bare, single]) assert.deepEqual(store.getTicket(id)!.reporters, [], `ticket ${id}`);
  assert.deepEqual(store.getTicket(mixed)!.reporters, [amy, { ...amy, id: 'U0BEN' }], 'the reporters it names, once each, in order');
  assert.equal(store.ticketOfThread('slack', amy.thread!)?.fingerprint, store.getTicket(mixed)!.fingerprint);
});
