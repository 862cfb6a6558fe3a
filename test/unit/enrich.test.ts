/**
 * The Loki client's pure parts (LogQL building and escaping, time ranges, the raw
 * LogQL guard) and alert enrichment (`control/triggers/enrich.ts`) over real log
 * files and a Loki that cannot be reached.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { createApp } from '../../control/app.ts';
import type { ConfigFile } from '../../control/config.ts';
import type { Logger } from '../../control/log.ts';
import { openServices } from '../../control/services.ts';
import { enrichWithLoki } from '../../control/triggers/enrich.ts';
import type { TriggerEvent } from '../../control/types.ts';
import { createLokiClient } from '../../lib/loki/client.ts';
import { checkRawLogQL } from '../../lib/loki/guard.ts';
import { buildLogQL, quote } from '../../lib/loki/logql.ts';
import { parseDuration, resolveTimeRange } from '../../lib/loki/time-range.ts';
import type { LogQuery } from '../../lib/loki/types.ts';
import { lokiSettingsSchema } from '../../lib/mcp/loki-settings.ts';
import { fixtureJson, postJson, tempDir, testConfig, waitFor } from '../support/helpers.ts';
import { freePort } from '../support/process.ts';

const range = { start: new Date('2025-03-01T09:00:00Z'), end: new Date('2025-03-01T11:00:00Z') };
const query = (q: Partial<LogQuery>): LogQuery => ({ matchers: [], contains: [], range, limit: 10, direction: 'backward', ...q });

describe('LogQL builder', () => {
  test('quotes values so no character can end the string', () => {
    assert.equal(quote('a"b\\c\nd\te\u0001🌙'), '"a\\"b\\\\c\\nd\\te\\u0001🌙"');
    // LogQL unquotes like Go; for these escapes Go and JSON agree, so JSON.parse must give the value back.
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => JSON.parse(quote(s)) === s));
    const grafana = fixtureJson<{ data: { result: Array<{ stream: Record<string, string> }> } }>(
      'loki',
      'query_range_streams_with_stats_grafana_testdata.json',
    );
    for (const { stream } of grafana.data.result) {
      for (const v of Object.values(stream)) assert.equal(JSON.parse(quote(v)), v);
    }
  });

  test('renders matchers, line filters, the error filter and the user field', () => {
    const q = query({
      matchers: [
        { name: 'service_name', op: '=', value: 'web' },
        { name: 'level', op: '=~', value: 'error|warn' },
      ],
      contains: ['/api/pets/12', 'say "hi"'],
      anyOf: ['error', 'a.b'],
    });
    assert.equal(buildLogQL(q, '{job=~".+"}'), '{service_name="web", level=~"error|warn"} |= "/api/pets/12" |= "say \\"hi\\"" |~ "(?i)(?:error|a\\\\.b)"');
    const user = query({ field: { label: 'user_id', parser: 'json', value: '4"2' } });
    assert.equal(buildLogQL(user, '{job=~".+"}'), '{job=~".+"} | json | user_id="4\\"2"');
    const anyUser = query({ matchers: [{ name: 'level', op: '!=', value: 'debug' }], field: { label: 'uid', parser: 'logfmt' } });
    assert.equal(buildLogQL(anyUser, '{job=~".+"}'), '{job=~".+", level!="debug"} | logfmt | uid!=""');
  });

  test('rejects every bad label name at once', () => {
    const q = query({ matchers: [{ name: 'bad-name', op: '=', value: 'x' }, { name: '1st', op: '=', value: 'y' }, { name: 'ok', op: '=', value: 'z' }] });
    assert.throws(() => buildLogQL(q, '{a="b"}'), /label name "bad-name" is not valid.*; label name "1st" is not valid/);
  });
});

describe('time ranges and the raw LogQL guard', () => {
  test('durations, ISO bounds and the maximum span', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('soon'), undefined);
    const now = new Date('2025-03-01T12:00:00Z');
    assert.deepEqual(resolveTimeRange('15m', { now, maxRangeHours: 24 }), { start: new Date('2025-03-01T11:45:00Z'), end: now });
    const anchor = new Date('2025-03-01T10:00:00Z');
    assert.deepEqual(resolveTimeRange('1h', { now, maxRangeHours: 24, anchor }).start, new Date('2025-03-01T09:00:00Z'));
    assert.throws(() => resolveTimeRange('48h', { now, maxRangeHours: 24 }), /time_range spans 48h; at most 24h is allowed/);
    assert.throws(() => resolveTimeRange({ start: 'monday', end: '2025-03-01T10:00:00Z' }, { now, maxRangeHours: 24 }), /start "monday" is not an ISO-8601 time/);
    assert.throws(
      () => resolveTimeRange({ start: '2025-03-01T10:00:00Z', end: '2025-03-01T09:00:00Z' }, { now, maxRangeHours: 24 }),
      /must be before its end/,
    );
    // A duration too long to be a date: refused like any other too long, not a NaN further on.
    assert.throws(() => resolveTimeRange('100000000000000d', { now, maxRangeHours: 24 }), /^LokiError: time_range is longer than the 24h allowed: use a duration like/);
  });

  test("raw LogQL's range vectors look back no further than maxRangeHours", () => {
    const bounds = { maxLines: 200, maxRangeHours: 24 };
    const check = (logql: string) => () => checkRawLogQL({ logql, hasTimeRange: true, limit: 5, alsoGiven: [] }, bounds);
    assert.doesNotThrow(check('sum(count_over_time({app="x"}[24h]))'));
    assert.doesNotThrow(check('rate({app="x"}[1h30m]) / rate({app="y"}[23h59m60s])'));
    assert.doesNotThrow(check('{app="x[365d]"}'), 'a label value is not a range');
    assert.throws(check('sum(count_over_time({app="x"}[365d]))'), /the range `\[365d\]` looks back further than 24h \(mcp\.loki\.maxRangeHours\)/);
    assert.throws(check('rate({app="x"}[2w]) + rate({app="x"}[ 1d1ms ])'), /the ranges `\[2w\]` and `\[1d1ms\]` look back further than 24h/);
  });

  test('raw LogQL needs a range, a limit and a stream selector', () => {
    const bounds = { maxLines: 200, maxRangeHours: 24 };
    assert.throws(
      () => checkRawLogQL({ logql: 'rate(x[5m])', hasTimeRange: false, alsoGiven: [] }, bounds),
      /explicit time_range .*; raw LogQL needs an explicit limit \(1 to 200\); raw LogQL must contain a stream selector/,
    );
    assert.doesNotThrow(() => checkRawLogQL({ logql: '{app="x"}', hasTimeRange: true, limit: 5, alsoGiven: [] }, bounds));
  });

  // Review finding (Loki raw LogQL): pipeline stages run on unredacted lines, so they could
  // rewrite a secret past redaction or test its value; only selectors and line counts pass.
  test('raw LogQL takes stream selectors and line counts, never a pipeline stage', () => {
    const bounds = { maxLines: 200, maxRangeHours: 24 };
    const check = (logql: string) => () => checkRawLogQL({ logql, hasTimeRange: true, limit: 5, alsoGiven: [] }, bounds);
    for (const ok of [
      '{app="x", env=~`prod|dev`, a!="}|=\\"", b!~"x"}',
      'sum by (level, app) (count_over_time({app="x"}[5m]))',
      'sum(rate({job="varlogs"}[10m])) by (level)',
      'topk(3, sum without (pod) (rate({app="x"}[1h30m]))) * 100 > 0.5',
    ]) {
      assert.doesNotThrow(check(ok), ok);
    }
    const refused: Array<[string, RegExp]> = [
      ['{app="x"} | line_format "{{ __line__ | b64enc }}"', /^LokiError: raw LogQL may only select streams and count their lines: `\| line_format` is not allowed\. /],
      ['{app="x"} | json | line_format `{{ trunc 1 .password }}`', /`\| json` and `\| line_format` are not allowed/],
      ['{app="x"} |= "a" |~ "b" != "c" !~ "d" |> "e"', /the line filters `\|=`, `\|~`, `!=`, `!~` and `\|>` are not allowed/],
      ['{app="x"} | logfmt | pin > 5000', /`\| logfmt` and `\| pin`/],
      ['count_over_time({app="x"} | json | password=~"h.*" [5m])', /`\| json` and `\| password`/],
      ['sum(bytes_rate({app="x"}[5m]))', /`bytes_rate` is not allowed/],
      ['vector(1) or {app="x"}', /`vector` and `or` are not allowed/],
      ['{app="x"} "text"', /a quoted string outside a stream selector/],
      ["{app='x'}", /a stream selector that is not label matchers/],
      ['{app="x"} # |= "y"', /`#` is not allowed/],
    ];
    for (const [logql, named] of refused) {
      assert.throws(check(logql), named, logql);
      assert.throws(check(logql), /Pipeline stages run on the unredacted lines.*filter lines with labels and contains instead/, logql);
    }
  });
});

describe('enrichWithLoki', () => {
  const line = (o: object) => JSON.stringify(o);

  function fileClient(t: TestContext) {
    const log = join(tempDir(t, 'bugbot-enrich-'), 'app.log');
    writeFileSync(
      log,
      [
        line({ time: '2025-03-01T09:58:00Z', level: 'info', service: 'checkout', msg: 'POST /api/orders/991 started' }),
        line({ time: '2025-03-01T09:59:00Z', level: 'error', service: 'checkout', msg: 'TypeError: total is undefined at POST /api/orders/991', api_key: 'sk_live_abcdefghijklmnopqrstuv' }),
        line({ time: '2025-03-01T09:59:30Z', level: 'error', service: 'search', msg: 'Error: index missing at POST /api/orders/991' }),
        line({ time: '2025-03-01T09:59:40Z', level: 'error', service: 'checkout', msg: 'Error: payment gateway timeout' }),
      ].join('\n') + '\n',
    );
    return createLokiClient(lokiSettingsSchema.parse({ files: [log], serviceLabel: 'service' }), { get: () => undefined });
  }

  const alert = (over: Partial<TriggerEvent> = {}): TriggerEvent => ({
    source: 'alertmanager',
    kind: 'error',
    service: 'checkout',
    title: 'HighErrorRate',
    message: 'Error rate above 5% on checkout',
    route: 'POST /api/orders/991?debug=1',
    labels: {},
    count: 1,
    firstSeen: '2025-03-01T10:00:00.000Z',
    lastSeen: '2025-03-01T10:00:00.000Z',
    human: false,
    sourceEventId: 'fp:1',
    ...over,
  });

  test('an error alert without a stack gets the latest matching error lines, redacted', async (t) => {
    const client = fileClient(t);
    const withStack = alert({ stack: 'Error: x\n    at handler (src/a.ts:1:1)', sourceEventId: 'fp:2' });
    const latency = alert({ kind: 'latency', sourceEventId: 'fp:3' });
    const resolved = alert({ status: 'resolved', sourceEventId: 'fp:4' });
    const [enriched, ...rest] = await enrichWithLoki([alert(), withStack, latency, resolved], client, { now: () => new Date('2025-03-01T10:30:00Z') });
    assert.deepEqual(rest, [withStack, latency, resolved]);
    const stack = enriched!.stack ?? '';
    assert.match(stack, /^Latest error lines from log file .* \{service="checkout"\} \|= "\/api\/orders\/991" \|~ /);
    assert.match(stack, /TypeError: total is undefined at POST \/api\/orders\/991/);
    assert.ok(!stack.includes('index missing'), 'another service');
    assert.ok(!stack.includes('started'), 'not an error line');
    assert.ok(!stack.includes('payment gateway'), 'a more specific match (the route) was found first');
    assert.ok(!stack.includes('sk_live_abcdefghijklmnopqrstuv') && stack.includes('[REDACTED'), stack);
  });

  test('falls back to the service when route and message find nothing; no match leaves the event alone', async (t) => {
    const client = fileClient(t);
    const now = () => new Date('2025-03-01T10:30:00Z');
    const [byService] = await enrichWithLoki([alert({ route: 'GET /health' })], client, { now, maxLines: 1 });
    assert.match(byService!.stack ?? '', /Error: payment gateway timeout/);
    assert.match(byService!.stack ?? '', /\[limit reached: .*Only the newest 1 are attached\.\]/);
    const lonely = alert({ service: 'billing', route: undefined });
    assert.deepEqual(await enrichWithLoki([lonely], client, { now }), [lonely]);
  });

  test('an unreachable Loki leaves events unchanged, logs once and never throws', async () => {
    const port = await freePort();
    const client = createLokiClient(lokiSettingsSchema.parse({ url: `http://127.0.0.1:${port}`, timeoutMs: 2000 }), { get: () => undefined });
    const warnings: Array<[string, Record<string, unknown> | undefined]> = [];
    const logger = { warn: (msg: string, f?: Record<string, unknown>) => void warnings.push([msg, f]), debug: () => {} };
    const events = [alert(), alert({ service: 'search', sourceEventId: 'fp:9' })];
    assert.deepEqual(await enrichWithLoki(events, client, { logger }), events);
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]![1]?.error), /is unreachable \(ECONNREFUSED\)/);
  });
});

// Review finding: enrichWithLoki had no caller, while mcp.md promised that error alerts
// without a stack get the matching log lines. The alert webhook now looks them up for the
// tickets it created, after its commit and reply, with intake on this thread or on its
// writer thread, so a slow Loki holds no acknowledgement.
describe('alert webhooks get log lines as the stack of the tickets they create (mcp.loki)', () => {
  function app(t: TestContext, loki: { files?: string[]; url?: string }, writerThread: boolean) {
    const home = tempDir(t, 'bugbot-enrich-app-');
    const config = testConfig(home, { mcp: { loki } } as ConfigFile, { BUGBOT_HASH_SALT: 'enrich-test' });
    const warnings: string[] = [];
    const logger: Logger = { debug: () => {}, info: () => {}, error: () => {}, warn: (m, f) => void warnings.push(`${m} ${JSON.stringify(f)}`), child: () => logger };
    const s = openServices(config, logger, { writerThread });
    t.after(async () => {
      await s.writer?.close();
      s.store.close();
    });
    return { ...s, warnings, app: createApp({ config, store: s.store, intake: s.intake, logger }) };
  }

  const webhook = (fingerprint: string, startsAt: string) => ({
    version: '4',
    status: 'firing',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'PetErrors', service: 'pets', route: 'GET /api/pets/17' },
        annotations: { message: "TypeError: Cannot read properties of undefined (reading 'owner')" },
        startsAt,
        fingerprint,
      },
    ],
  });

  function logFile(t: TestContext): string {
    const log = join(tempDir(t, 'bugbot-enrich-log-'), 'app.log');
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString();
    writeFileSync(
      log,
      [
        JSON.stringify({ time: at(3), level: 'info', service_name: 'pets', msg: 'GET /api/pets/17 started', route: '/api/pets/17' }),
        JSON.stringify({
          time: at(1),
          level: 'error',
          service_name: 'pets',
          msg: "TypeError: Cannot read properties of undefined (reading 'owner')",
          stack: "TypeError: Cannot read properties of undefined (reading 'owner')\n    at getPet (/srv/app/routes/pets.js:42:17)",
          route: '/api/pets/17',
          session: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abcdefghijk',
        }),
      ].join('\n') + '\n',
    );
    return log;
  }

  for (const writerThread of [false, true]) {
    test(`a log file's matching error lines become the new ticket's stack, redacted (${writerThread ? "intake's writer thread" : 'intake on the HTTP thread'})`, async (t) => {
      const { app: a, store, writer } = app(t, { files: [logFile(t)] }, writerThread);
      // Which thread committed it: the writer's calls are counted (it still does the work).
      let viaWriter = 0;
      if (writer) {
        const submit = writer.submit.bind(writer);
        const submitAlerts = writer.submitAlerts.bind(writer);
        writer.submit = (...args) => (viaWriter++, submit(...args));
        writer.submitAlerts = (...args) => (viaWriter++, submitAlerts(...args));
      }
      const res = await postJson(a, '/triggers/grafana', webhook('9900000000000001', new Date(Date.now() - 2 * 60_000).toISOString()));
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(viaWriter > 0, writerThread, writerThread ? 'committed by the writer thread' : 'committed on this thread');
      const id = ((await res.json()) as { results: Array<{ ticket: number }> }).results[0]!.ticket;
      const stack = await waitFor(() => store.getTicket(id)!.stack, 5000, 'the log lines');
      assert.match(stack, /^Latest error lines from log file .*app\.log/);
      assert.match(stack, /at getPet \(\/srv\/app\/routes\/pets\.js:42:17\)/);
      assert.ok(!stack.includes('eyJhbGciOiJIUzI1NiJ9') && !stack.includes('started'), stack);
      assert.ok(store.auditTrail(id).some((x) => x.action === 'stack-from-logs'));
      // The fingerprint is the alert's own: the same alert again (another id) joins the ticket.
      const again = (await (await postJson(a, '/triggers/grafana', webhook('9900000000000002', new Date(Date.now() - 60_000).toISOString()))).json()) as { results: Array<{ ticket: number; status: string }> };
      assert.deepEqual([again.results[0]!.status, again.results[0]!.ticket], ['merged', id]);
    });
  }

  test('a Loki that does not answer holds no acknowledgement: the webhook is answered at once, the ticket keeps no stack', async (t) => {
    const asked: string[] = [];
    const loki: Server = createServer((req) => void asked.push(req.url ?? ''));
    await new Promise<void>((r) => loki.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => { loki.closeAllConnections(); loki.close(() => r()); }));
    const { port } = loki.address() as { port: number };
    const { app: a, store, warnings, writer } = app(t, { url: `http://127.0.0.1:${port}` }, true);
    await writer!.start();
    const started = performance.now();
    const res = await postJson(a, '/triggers/grafana', webhook('9900000000000003', new Date(Date.now() - 2 * 60_000).toISOString()));
    const took = performance.now() - started;
    assert.equal(res.status, 200);
    const id = ((await res.json()) as { results: Array<{ ticket: number }> }).results[0]!.ticket;
    await waitFor(() => asked.length > 0, 5000, 'the Loki query');
    // Far below the lookup's 5 s budget (enrich.ts) it would have waited out, with room for a loaded machine.
    assert.ok(took < 2500, `answered after ${Math.round(took)} ms`);
    assert.equal(store.getTicket(id)!.stack, null);
    // Loki goes away: the lookup fails, is logged, and the ticket stays as it came.
    loki.closeAllConnections();
    await waitFor(() => warnings.length > 0, 8000, 'the warning');
    assert.match(warnings[0]!, /loki enrichment failed/);
    assert.equal(store.getTicket(id)!.stack, null);
  });
});
