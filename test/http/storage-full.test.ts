/**
 * The database on a full disk under an alert storm: each request is refused with 507
 * (nothing stored, the sender retries), and the log says so once in a while with a count,
 * not once per request.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createApp } from '../../control/app.ts';
import { Intake } from '../../control/intake/index.ts';
import { createLogger } from '../../control/log.ts';
import { Store } from '../../control/queue/store.ts';
import { createRedactor } from '../../lib/redact.ts';
import { fixtureJson, postJson, testConfig } from '../support/helpers.ts';
import { fillDisk, smallDisk } from '../support/tmpfs.ts';

test('a storm on a full disk: every request 507, one log line saying the disk is full, with how many were refused', async (t) => {
  const home = smallDisk(t, '2m');
  const config = testConfig(home, { intake: { settleSeconds: 0 } });
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const lines: string[] = [];
  const app = createApp({ config, store, intake: new Intake({ store, config, redactor: createRedactor() }), logger: createLogger({ write: (l) => lines.push(l) }) });
  fillDisk(home);
  const body = fixtureJson<{ alerts: Array<Record<string, unknown>> }>('grafana', 'webhook_firing_docs.json');
  for (let i = 0; i < 50; i++) {
    const alert = { ...body.alerts[0]!, fingerprint: `f${i}`, annotations: { summary: `Error ${i} ${'x'.repeat(4000)}` } };
    const res = await postJson(app, '/triggers/grafana', { ...body, alerts: [alert] });
    assert.equal(res.status, 507, await res.text());
  }
  const storage = lines.filter((l) => l.includes('storage failed'));
  assert.equal(storage.length, 1, storage.join('\n'));
  assert.match(storage[0]!, /"msg":"storage failed: the disk holding bugbot's home is full; requests refused \(507\) until it takes writes again".*"refused":1/);
});
