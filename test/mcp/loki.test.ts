/**
 * The loki MCP server through a real MCP client over stdio (`node --import tsx
 * mcp/loki/main.ts --settings <file>`): against a local HTTP server answering with
 * Loki's documented responses (../shared/fixtures/loki), and against real JSON-lines
 * files for the file backend.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { createRedactor } from '../../lib/redact.ts';
import { fixtureText, repoRoot, tempDir } from '../support/helpers.ts';
import { freePort, spawnLogged } from '../support/process.ts';

interface Seen {
  path: string;
  params: URLSearchParams;
  headers: IncomingHttpHeaders;
}

/** A local stand-in for Loki: records each request and answers with `answer`. */
async function fakeLoki(t: TestContext, answer: (params: URLSearchParams) => { status: number; body: string } | 'hang' | 'stall') {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://loki');
    seen.push({ path: url.pathname, params: url.searchParams, headers: req.headers });
    const a = answer(url.searchParams);
    if (a === 'hang') return;
    // Headers and the start of an answer, then nothing more.
    if (a === 'stall') return void res.writeHead(200, { 'content-type': 'application/json' }).write('{"status":"success","data":');
    res.writeHead(a.status, { 'content-type': a.status === 200 ? 'application/json' : 'text/plain' }).end(a.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function startServer(t: TestContext, settings: object, env: Record<string, string> = {}) {
  const file = join(tempDir(t, 'bugbot-loki-'), 'loki-settings.json');
  writeFileSync(file, JSON.stringify(settings));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', 'mcp/loki/main.ts', '--settings', file],
    cwd: repoRoot,
    env: { ...getDefaultEnvironment(), ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'loki-test', version: '0.0.0' });
  await client.connect(transport).catch((err: Error) => {
    throw new Error(`loki server did not start: ${err.message}\n${stderr}`);
  });
  t.after(() => client.close());
  const call = async (name: string, args: Record<string, unknown>) => {
    const r = await client.callTool({ name, arguments: args });
    const content = r.content as Array<{ type: string; text?: string }>;
    return { text: content.map((c) => c.text ?? '').join('\n'), isError: r.isError === true };
  };
  return { client, call };
}

const streams = () => fixtureText('loki', 'query_range_streams_docs.json');
const streamsWithStats = () => fixtureText('loki', 'query_range_streams_with_stats_grafana_testdata.json');
const matrix = () => fixtureText('loki', 'query_range_matrix_docs.json');
const iso = (ns: string) => new Date(Number(BigInt(ns) / 1_000_000n)).toISOString();

describe('loki MCP server, HTTP backend', () => {
  test('builds LogQL from matchers and sends limit, range, bearer token and tenant', async (t) => {
    const loki = await fakeLoki(t, () => ({ status: 200, body: streams() }));
    const { call } = await startServer(t, { url: loki.url, tokenEnv: 'LOKI_TOKEN', tenant: 'team-a' }, { LOKI_TOKEN: 'tok-123' });
    const r = await call('loki_query', {
      labels: { job: 'varlogs', level: { op: '!=', value: 'debug' } },
      time_range: { start: '2019-09-23T19:00:00Z', end: '2019-09-23T20:00:00Z' },
      limit: 25,
    });
    assert.equal(r.isError, false, r.text);
    assert.equal(loki.seen.length, 1);
    const [req] = loki.seen;
    assert.equal(req!.path, '/loki/api/v1/query_range');
    assert.equal(req!.params.get('query'), '{job="varlogs", level!="debug"}');
    assert.equal(req!.params.get('limit'), '25');
    assert.equal(req!.params.get('start'), '1569265200000000000');
    assert.equal(req!.params.get('end'), '1569268800000000000');
    assert.equal(req!.params.get('direction'), 'backward');
    assert.equal(req!.headers.authorization, 'Bearer tok-123');
    assert.equal(req!.headers['x-scope-orgid'], 'team-a');
    // Oldest first, whatever order Loki used; labels shared by every line printed once.
    assert.ok(r.text.includes(`${iso('1569266492548155000')} bar`), r.text);
    assert.ok(r.text.indexOf(' bar') < r.text.indexOf(' foo'), r.text);
    assert.match(r.text, /Labels of every line: \{filename="\/var\/log\/myproject\.log", job="varlogs", level="info"\}/);
  });

  test('escapes tricky label values, basic auth, relative range, stats variant', async (t) => {
    const loki = await fakeLoki(t, () => ({ status: 200, body: streamsWithStats() }));
    const env = { LOKI_USER: 'grafana', LOKI_PASS: 's3cret' };
    const { call } = await startServer(t, { url: `${loki.url}/`, basicUserEnv: 'LOKI_USER', basicPasswordEnv: 'LOKI_PASS' }, env);
    // The fixture's own label values: a quote and comma, and an emoji.
    const r = await call('loki_query', { labels: { code: 'one",', location: 'moon🌙' }, time_range: '2h' });
    assert.equal(r.isError, false, r.text);
    const [req] = loki.seen;
    assert.equal(req!.params.get('query'), '{code="one\\",", location="moon🌙"}');
    assert.equal(BigInt(req!.params.get('end')!) - BigInt(req!.params.get('start')!), 2n * 3600n * 1_000_000_000n);
    assert.equal(req!.params.get('limit'), '100');
    assert.equal(req!.headers.authorization, `Basic ${Buffer.from('grafana:s3cret').toString('base64')}`);
    assert.equal(req!.headers['x-scope-orgid'], undefined);
    assert.match(r.text, /^6 lines from Loki at/);
    assert.match(r.text, /Loki processed 55 lines \(7772 bytes\)/);
    assert.ok(r.text.indexOf('log line info 4') < r.text.indexOf('log line error 1'), r.text);
    assert.match(r.text, /\{code="one\\","\} log line error 1/);
  });

  test('raw LogQL only with an explicit range and limit; metric results are shown', async (t) => {
    const loki = await fakeLoki(t, (p) => ({ status: 200, body: p.get('query')!.startsWith('sum(') ? matrix() : streams() }));
    const { call } = await startServer(t, { url: loki.url });
    const logql = 'sum(rate({job="varlogs"}[10m])) by (level)';

    const unbounded = await call('loki_query', { logql });
    assert.equal(unbounded.isError, true);
    assert.match(unbounded.text, /raw LogQL needs an explicit time_range .*at most 24h/);
    assert.match(unbounded.text, /raw LogQL needs an explicit limit \(1 to 200\)/);
    const mixed = await call('loki_query', { logql, labels: { job: 'x' }, time_range: '1h', limit: 5 });
    assert.match(mixed.text, /give either logql or labels, not both/);
    const tooLong = await call('loki_query', { logql, time_range: '48h', limit: 5 });
    assert.match(tooLong.text, /time_range spans 48h; at most 24h is allowed/);
    const tooMany = await call('loki_query', { logql, time_range: '1h', limit: 5000 });
    assert.match(tooMany.text, /limit 5000 is not allowed: use 1 to 200 lines/);
    assert.equal(loki.seen.length, 0, 'no refused query may reach Loki');

    const ok = await call('loki_query', { logql, time_range: '1h', limit: 10 });
    assert.equal(ok.isError, false, ok.text);
    assert.equal(loki.seen[0]!.params.get('query'), logql);
    assert.equal(loki.seen[0]!.params.get('limit'), '10');
    assert.match(ok.text, /^2 series/);
    assert.match(ok.text, /\{level="info"\} 2020-05-07T22:07:01\.000Z=137\.95/);
  });

  test("Loki's refusals, timeouts and bad arguments are isError results naming the problem", async (t) => {
    const loki = await fakeLoki(t, (p) =>
      p.get('query')!.includes('slow') ? 'hang' : p.get('query')!.includes('stall') ? 'stall' : { status: 400, body: 'parse error at line 1, col 9: syntax error: unexpected IDENTIFIER' },
    );
    const { call } = await startServer(t, { url: loki.url });
    const rejected = await call('loki_query', { logql: 'sum(count_over_time({job="x"}))', time_range: '1h', limit: 5 });
    assert.equal(rejected.isError, true);
    assert.match(rejected.text, /Loki rejected the query \(400\): parse error at line 1, col 9/);
    // A server of its own: a short timeout must not also cut the answers above on a busy machine.
    const impatient = await startServer(t, { url: loki.url, timeoutMs: 500 });
    const slow = await impatient.call('loki_query', { labels: { job: 'slow' } });
    assert.equal(slow.isError, true);
    assert.match(slow.text, /did not answer within 500 ms \(mcp\.loki\.timeoutMs\): narrow the time range/);
    // Review finding: the timeout also cut an answer whose body stalled, but the error was
    // the runtime's own ("loki_query failed: The operation was aborted due to timeout").
    const stalled = await impatient.call('loki_query', { labels: { job: 'stall' } });
    assert.equal(stalled.isError, true);
    assert.match(stalled.text, /^Loki at http:\/\/127\.0\.0\.1:\d+ did not answer within 500 ms \(mcp\.loki\.timeoutMs\): narrow the time range/);
    const sent = loki.seen.length;

    const badName = await call('loki_query', { labels: { 'bad-name': 'x', '1st': 'y' } });
    assert.equal(badName.isError, true);
    assert.match(badName.text, /label name "bad-name" is not valid.*label name "1st" is not valid/);
    assert.match((await call('loki_query', {})).text, /labels is required/);
    assert.match((await call('loki_query', { labels: { level: { op: '!=', value: 'debug' } } })).text, /must select streams/);
    assert.match((await call('loki_query', { labels: { job: 'x' }, time_range: 'yesterday' })).text, /time_range "yesterday" is not understood: use a duration like "15m"/);
    const badOp = await call('loki_query', { labels: { job: { op: '>', value: '1' } } });
    assert.equal(badOp.isError, true);
    assert.match(badOp.text, /each label takes a string \(equality\) or \{"op": .* at labels\.job/);
    assert.match((await call('loki_user_breadcrumbs', { time_range: '1h' })).text, /user_id/);
    assert.equal(loki.seen.length, sent, 'bad arguments never reach Loki');
  });

  test('breadcrumbs over HTTP: LogQL on the user field; a hashed id is matched after the query', async (t) => {
    const ns = (at: string) => String(BigInt(Date.parse(at)) * 1_000_000n);
    const values: Array<[string, string]> = [
      [ns('2025-03-01T10:02:30Z'), JSON.stringify({ user_id: 'guest', msg: 'GET /help' })],
      [ns('2025-03-01T10:02:00Z'), JSON.stringify({ user_id: '42', msg: 'POST /cart/checkout' })],
      [ns('2025-03-01T10:01:00Z'), JSON.stringify({ user_id: '77', msg: 'GET /other-user' })],
      [ns('2025-03-01T10:00:30Z'), JSON.stringify({ user_id: 'guest', msg: 'GET /' })],
      [ns('2025-03-01T10:00:00Z'), JSON.stringify({ user_id: '42', msg: 'GET /cart' })],
    ];
    // The documented streams response, with these lines; filtered by user as Loki would for `user_id="42"`.
    const answer = (lines: Array<[string, string]>) => {
      const doc = JSON.parse(streams()) as { data: { result: Array<{ values: unknown }> } };
      doc.data.result[0]!.values = lines;
      return JSON.stringify(doc);
    };
    const loki = await fakeLoki(t, (p) => ({
      status: 200,
      body: answer(p.get('query')!.endsWith('user_id="guest"') ? values.filter(([, l]) => l.includes('"guest"')) : values),
    }));
    const { call } = await startServer(t, { url: loki.url }, { BUGBOT_HASH_SALT: 'test-salt' });
    const args = { time_range: '30m', before: '2025-03-01T10:03:00Z' };

    // A raw id that answers show hashed would confirm a guess (see the test of hashed labels).
    const guess = await call('loki_user_breadcrumbs', { user_id: '42', labels: { service_name: 'web' }, ...args });
    assert.equal(guess.isError, true, guess.text);
    assert.equal(loki.seen.length, 0);
    // One they show as it is goes to Loki as written.
    const raw = await call('loki_user_breadcrumbs', { user_id: 'guest', labels: { service_name: 'web' }, ...args });
    assert.equal(raw.isError, false, raw.text);
    const byId = loki.seen[0]!.params;
    assert.equal(byId.get('query'), '{service_name="web"} | json | user_id="guest"');
    assert.equal(byId.get('limit'), '200');
    assert.equal(byId.get('start'), ns('2025-03-01T09:33:00Z'));
    assert.equal(byId.get('end'), ns('2025-03-01T10:03:00Z'));
    assert.match(raw.text, /^2 lines of /);
    assert.ok(raw.text.indexOf('GET /"') < raw.text.indexOf('GET /help'), raw.text);

    // A ticket only knows the hash: Loki is asked for every line with a user (up to scanLines), the hash picks 42's.
    const hash = createRedactor({ salt: 'test-salt' }).hashUser('42');
    const hashed = await call('loki_user_breadcrumbs', { user_id: hash, ...args });
    assert.equal(hashed.isError, false, hashed.text);
    const byHash = loki.seen[1]!.params;
    assert.equal(byHash.get('query'), '{service_name=~".+"} | json | user_id!=""');
    assert.equal(byHash.get('limit'), '5000');
    assert.match(hashed.text, new RegExp(`^2 lines of ${hash} `));
    assert.ok(!hashed.text.includes('other-user') && !hashed.text.includes('guest'), hashed.text);
    assert.ok(hashed.text.indexOf('GET /cart') < hashed.text.indexOf('POST /cart/checkout'), hashed.text);
    assert.ok(hashed.text.includes(`"user_id":"<${hash}>"`) && !hashed.text.includes('"user_id":"42"'), hashed.text);
  });

  // Review finding (Loki raw LogQL): Loki runs pipeline stages on the unredacted line, so
  // `line_format` could rewrite a secret past the redaction rules and a line filter or a
  // parser + label filter could test it, one character at a time, by the count of lines.
  test('raw LogQL with a pipeline stage is refused, naming it, before it reaches Loki', async (t) => {
    const loki = await fakeLoki(t, (p) => ({ status: 200, body: p.get('query')!.startsWith('{') ? streams() : matrix() }));
    const { call } = await startServer(t, { url: loki.url });
    const bounds = { time_range: '1h', limit: 10 };
    const refused: Array<[string, RegExp]> = [
      ['{app="api"} | line_format "{{ __line__ | replace \\"pass\\" \\"p4ss\\" }}"', /`\| line_format` is not allowed/],
      ['{app="api"} | label_format x=`{{ b64enc .password }}`', /`\| label_format`/],
      ['{app="api"} |= "hunter"', /the line filter `\|=`/],
      ['{app="api"} != "hunter2" !~ `h.*`', /the line filters `!=` and `!~`/],
      ['{app="api"} | json | password=~"h.*"', /`\| json` and `\| password`/],
      ['sum(count_over_time({app="api"} |~ "password=h" [5m]))', /the line filter `\|~`/],
      ['sum(bytes_over_time({app="api"}[5m]))', /`bytes_over_time`/],
      ['label_replace(rate({app="api"}[5m]), "x", "$1", "app", "(.*)")', /`label_replace`/],
      ['{app="api"} # |= "x"', /`#`/],
      ['{app="api" | json}', /stream selector/],
    ];
    for (const [logql, named] of refused) {
      const r = await call('loki_query', { logql, ...bounds });
      assert.equal(r.isError, true, `accepted: ${logql}\n${r.text}`);
      assert.match(r.text, named);
      assert.match(r.text, /filter lines with labels and contains instead/);
    }
    assert.equal(loki.seen.length, 0, 'no refused query may reach Loki');

    for (const logql of ['{app="api", env=~"prod|dev", q!="a\\"}|"}', 'topk(3, sum by (level) (count_over_time({app=`api`}[5m]))) / 2']) {
      const ok = await call('loki_query', { logql, ...bounds });
      assert.equal(ok.isError, false, ok.text);
    }
    assert.equal(loki.seen.length, 2);
  });

  // Review finding (Loki contains oracle): `contains` went to Loki as `|= "..."`, which
  // matches the raw line, so counting the lines that `password":"h`, `"i`, ... let
  // through recovered a masked value. It must match the redacted line the reader sees.
  test('contains matches the redacted lines, so a masked secret never counts as a match', async (t) => {
    const ns = (at: string) => String(BigInt(Date.parse(at)) * 1_000_000n);
    const values: Array<[string, string]> = [
      [ns('2025-03-01T10:02:00Z'), 'auth failed token=abc123XYZ on /login'],
      [ns('2025-03-01T10:01:00Z'), JSON.stringify({ msg: 'GET /hunter-guide' })],
      [ns('2025-03-01T10:00:00Z'), JSON.stringify({ msg: 'POST /login', password: 'hunter2' })],
    ];
    // Loki's own semantics: every `|= "..."` keeps the raw lines that contain it.
    const loki = await fakeLoki(t, (p) => {
      const filters = p.get('query')!.split(' |= ').slice(1).map((s) => JSON.parse(s) as string);
      const doc = JSON.parse(streams()) as { data: { result: Array<{ values: unknown }> } };
      doc.data.result[0]!.values = values.filter(([, l]) => filters.every((f) => l.includes(f))).slice(0, Number(p.get('limit')));
      return { status: 200, body: JSON.stringify(doc) };
    });
    const { call } = await startServer(t, { url: loki.url, scanLines: 3 });
    const range = { start: '2025-03-01T09:00:00Z', end: '2025-03-01T11:00:00Z' };
    const count = async (contains: string | string[], limit?: number) => {
      const r = await call('loki_query', { labels: { job: 'varlogs' }, contains, time_range: range, limit });
      assert.equal(r.isError, false, r.text);
      return { n: Number(/^(\d+) lines? from/.exec(r.text)?.[1]), text: r.text };
    };

    for (const probe of ['hunter2', '"password":"h', 'token=abc', ['login', 'abc1']]) {
      const { n, text } = await count(probe);
      assert.equal(n, 0, `${JSON.stringify(probe)} matched inside a secret:\n${text}`);
      assert.match(text, /\[no lines matched\]/);
    }
    assert.equal((await count('hunter')).n, 1, 'text outside the secret still matches');
    const masked = await count(['"password":"[REDACTED]"', 'POST']);
    assert.equal(masked.n, 1, 'the redacted text is what is searched');
    assert.ok(!masked.text.includes('hunter2'), masked.text);
    assert.match(masked.text, /for \{job="varlogs"\}, then lines containing "\\"password\\":\\"\[REDACTED\]\\"" and "POST" \(matched after redaction\)/);

    const sent = loki.seen.map((s) => s.params);
    assert.ok(sent.every((p) => p.get('query') === '{job="varlogs"}' && p.get('limit') === '100'), 'Loki filters nothing: it never sees contains');
    const windowed = await count('login', 2);
    assert.equal(windowed.n, 2, windowed.text);
    assert.equal(loki.seen.at(-1)!.params.get('limit'), '3', 'at least scanLines lines are read');
    assert.match(windowed.text, /\[note: only the newest 3 lines of the range were searched \(mcp\.loki\.scanLines\)\]/);
  });

  // Review findings: a gateway's HTML page came back unredacted; an answer over the size
  // cap failed with "ReadableStream is locked" instead of saying so.
  test("Loki's side's text is redacted whatever its shape, and an oversized answer says so", async (t) => {
    const page = '<html>gateway debug: password=hunter2 Authorization: Bearer abcdefghijklmnop</html>';
    const huge = 'x'.repeat(33 * 1024 * 1024);
    let answer: { status: number; body: string } = { status: 200, body: page };
    const loki = await fakeLoki(t, () => answer);
    const { call } = await startServer(t, { url: loki.url });
    const notJson = await call('loki_query', { labels: { job: 'api' } });
    assert.equal(notJson.isError, true);
    assert.match(notJson.text, /Loki's answer is not JSON \(is mcp\.loki\.url the Loki API root\?\)/);
    for (const secret of ['hunter2', 'abcdefghijklmnop']) assert.ok(!notJson.text.includes(secret), notJson.text);
    // The error text is cut at 500 characters: in the middle of this token.
    answer = { status: 500, body: `${'e'.repeat(470)} Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789` };
    const cut = await call('loki_query', { labels: { job: 'api' } });
    assert.match(cut.text, /answered 500: e+/);
    assert.ok(!cut.text.includes('abcdefg'), `redacted before it is cut: ${cut.text.slice(-80)}`);
    answer = { status: 200, body: huge };
    const big = await call('loki_query', { labels: { job: 'api' } });
    assert.equal(big.isError, true);
    assert.match(big.text, /Loki's answer exceeded 33554432 bytes: narrow the query or lower limit/);
  });

  // Review findings: `"password":"correct horse battery staple"` as a stream label showed
  // `[REDACTED] horse battery staple` (the pair rule's unquoted form stops at a space), a
  // label named after a token showed the token, and a matcher on such a label was
  // evaluated by Loki on the raw value: an oracle on what the answer masks.
  test('a stream label holding a secret is masked whole, names too, and cannot be matched', async (t) => {
    const ns = String(BigInt(Date.parse('2025-03-01T10:00:00Z')) * 1_000_000n);
    const stream = { service_name: 'api', password: 'correct horse battery staple', api_key: 'sk live 1234 5678', sk_live_abcdefghijklmnopqrstuv: 'x' };
    const loki = await fakeLoki(t, () => ({ status: 200, body: JSON.stringify({ status: 'success', data: { resultType: 'streams', result: [{ stream, values: [[ns, 'hello']] }] } }) }));
    const { call } = await startServer(t, { url: loki.url });
    const range = { start: '2025-03-01T09:00:00Z', end: '2025-03-01T11:00:00Z' };
    const r = await call('loki_query', { labels: { service_name: 'api' }, time_range: range });
    assert.equal(r.isError, false, r.text);
    assert.match(r.text, /password="\[REDACTED\]", api_key="\[REDACTED\]", \[REDACTED:api-key\]="\[REDACTED\]"/);
    for (const leak of ['horse', '1234', 'abcdefghijklmnop']) assert.ok(!r.text.includes(leak), `${leak} in:\n${r.text}`);

    const probe = await call('loki_query', { labels: { service_name: 'api', password: { op: '=~', value: 'correct h.*' } }, time_range: range });
    assert.equal(probe.isError, true);
    assert.match(probe.text, /password holds secrets: its value is masked in every answer, and Loki would match it unredacted/);
    assert.equal(loki.seen.length, 1, 'the probe never reached Loki');
  });

  // Review finding: the matcher form refused a matcher on a label that holds secrets, but raw
  // LogQL's stream selectors went to Loki as written, and Loki matches them on the raw
  // values: `count_over_time({service_name="api", password=~"h.*"}[1h])`, then `"hu.*"`, ...
  // spelled the password out by whether a count came back.
  test('raw LogQL may not match a label that holds secrets either, in any of its selectors', async (t) => {
    const loki = await fakeLoki(t, () => ({ status: 200, body: matrix() }));
    const { call } = await startServer(t, { url: loki.url });
    const bounds = { time_range: '1h', limit: 10 };
    const refused: Array<[string, RegExp]> = [
      ['sum(count_over_time({service_name="api", password=~"h.*"}[1h]))', /^password holds secrets/],
      ['{service_name="api",api_key="sk-1"}', /^api_key holds secrets/],
      ['count_over_time({service_name="api"}[5m]) / count_over_time({ service_name = "api" , session_id !~ `x.*` }[5m])', /^session_id holds secrets/],
      ['rate({service_name="a}{", Authorization=~"Bearer a.*", password="x"}[5m])', /^Authorization, password hold secrets/],
    ];
    for (const [logql, named] of refused) {
      const r = await call('loki_query', { logql, ...bounds });
      assert.equal(r.isError, true, `accepted: ${logql}\n${r.text}`);
      assert.match(r.text, named);
      assert.match(r.text, /Loki would match (it|them) unredacted/);
    }
    assert.equal(loki.seen.length, 0, 'no probe may reach Loki');
    // A value that merely mentions a secret's name is no matcher on it (one answers would
    // show masked, `password=x`, cannot be matched: see the test of hashed labels).
    const ok = await call('loki_query', { logql: 'sum by (level) (count_over_time({service_name="api_key", path=~"/password|/login"}[5m]))', ...bounds });
    assert.equal(ok.isError, false, ok.text);
    assert.equal(loki.seen.length, 1);
    const masked = await call('loki_query', { logql: 'count_over_time({service_name="password=x"}[5m])', ...bounds });
    assert.match(masked.text, /service_name= could test a value answers show hashed or masked/);
    assert.equal(loki.seen.length, 1);
  });

  // Review finding (hashed labels): Loki matched `user_email=~"a.*"` (and `=`, `!=`, `!~`)
  // on the raw value, so `"a.*"`, then `"al.*"`, ... spelled an address out by whether lines
  // came back, though answers only ever showed its hash; `user_id="42"` confirmed a guessed
  // id. Loki may only match what the values as shown decide; the rest is matched here.
  test('a label shown hashed cannot be probed on its raw value; the hash an answer showed matches', async (t) => {
    const salt = 'test-salt';
    const redactor = createRedactor({ salt });
    const ns = (at: string) => String(BigInt(Date.parse(at)) * 1_000_000n);
    const all = [
      { stream: { job: 'web', user_email: 'alice@example.com', user_id: '42' }, values: [[ns('2025-03-01T10:01:00Z'), '{"user_id":"42","msg":"GET /cart"}']] },
      { stream: { job: 'web', user_email: 'bob@example.com', user_id: '77' }, values: [[ns('2025-03-01T10:00:00Z'), '{"user_id":"77","msg":"GET /other"}']] },
    ];
    // Loki's semantics: selectors match the raw label values (a missing label is ""), whole.
    const test = (op: string, want: string, got: string) =>
      op === '=' ? got === want : op === '!=' ? got !== want : op === '=~' ? new RegExp(`^(?:${want})$`).test(got) : !new RegExp(`^(?:${want})$`).test(got);
    const loki = await fakeLoki(t, (p) => {
      const query = p.get('query')!;
      const matchers = [...query.slice(0, query.indexOf('}')).matchAll(/(\w+)(=~|!~|!=|=)("(?:[^"\\]|\\.)*")/g)];
      const result = all.filter((s) => matchers.every(([, name, op, v]) => test(op!, JSON.parse(v!) as string, (s.stream as Record<string, string>)[name!] ?? '')));
      return { status: 200, body: JSON.stringify({ status: 'success', data: { resultType: 'streams', result } }) };
    });
    const { call } = await startServer(t, { url: loki.url }, { BUGBOT_HASH_SALT: salt });
    const range = { start: '2025-03-01T09:00:00Z', end: '2025-03-01T11:00:00Z' };
    const query = (labels: Record<string, unknown>) => call('loki_query', { labels: { job: 'web', ...labels }, time_range: range });
    const count = async (labels: Record<string, unknown>) => {
      const r = await query(labels);
      assert.equal(r.isError, false, r.text);
      // Past the header, which echoes the guess.
      const shown = r.text.split('\n').slice(1).join('\n');
      assert.ok(!shown.includes('alice') && !shown.includes('"42"'), r.text);
      return Number(/^(\d+) lines? from/.exec(r.text)?.[1]);
    };

    // The same answer whatever the guess: the regex is matched on the shown <email:...>.
    for (const [op, same] of [['=~', 0], ['!~', 2]] as const) {
      for (const guess of ['a.*', 'al.*', 'alice@example\\.com', 'b.*', 'z.*', '.*@.*']) {
        assert.equal(await count({ user_email: { op, value: guess } }), same, `user_email${op}${guess}`);
      }
    }
    assert.equal(await count({ user_id: { op: '=~', value: '4.*' } }), 0);
    assert.ok(
      loki.seen.every((s) => s.params.get('query') === '{job="web"}' && s.params.get('limit') === '5000'),
      `Loki never matched a guess: ${loki.seen.map((s) => s.params.get('query')).join(' ')}`,
    );

    // `=` / `!=` against a raw value no answer shows: refused, saying what to do instead.
    const sent = loki.seen.length;
    for (const labels of [{ user_email: 'alice@example.com' }, { user_id: '42' }, { user_id: { op: '!=', value: '42' } }, { user_email: { op: '!=', value: 'bob@example.com' } }]) {
      const r = await query(labels);
      assert.equal(r.isError, true, `${JSON.stringify(labels)}: ${r.text}`);
      assert.match(r.text, /answers never show this value as given .* would confirm a guess\. Match a label with the value an answer or the ticket showed, a hash included/);
      assert.ok(!r.text.includes('alice') && !r.text.includes(redactor.hashUser('42')), r.text);
    }
    assert.equal(loki.seen.length, sent, 'no guess reached Loki');

    // The hash an answer showed finds the stream, matched here on the shown values.
    const email = redactor.text('alice@example.com');
    const byEmail = await query({ user_email: email });
    assert.equal(byEmail.isError, false, byEmail.text);
    assert.match(byEmail.text, new RegExp(`^1 line from .* for \\{job="web"\\}, then streams whose labels as shown match \\{user_email="${email}"\\}`));
    assert.match(byEmail.text, /GET \/cart/);
    assert.equal(await count({ user_id: redactor.hashUser('42') }), 1, 'a ticket\'s user:<hash>');
    assert.equal(await count({ user_id: { op: '!=', value: `<${redactor.hashUser('42')}>` } }), 1);
    assert.equal(loki.seen.at(-1)!.params.get('query'), '{job="web"}');

    // What the shown values decide still goes to Loki, at the asked limit.
    assert.equal(await count({ job: { op: '=~', value: 'web|api' }, user_id: { op: '!=', value: '' }, level: { op: '!~', value: '.+' } }), 2);
    assert.equal(loki.seen.at(-1)!.params.get('query'), '{job=~"web|api", user_id!="", level!~".+"}');
    assert.equal(loki.seen.at(-1)!.params.get('limit'), '100');
  });

  test('raw LogQL may not match a hashed label on its raw value, however the value is spelled', async (t) => {
    const loki = await fakeLoki(t, () => ({ status: 200, body: matrix() }));
    const { call } = await startServer(t, { url: loki.url }, { BUGBOT_HASH_SALT: 'test-salt' });
    const hash = createRedactor({ salt: 'test-salt' }).hashUser('42');
    const bounds = { time_range: '1h', limit: 10 };
    for (const logql of [
      'sum(count_over_time({job="web", user_email=~"a.*"}[1h]))',
      'count_over_time({job="web", user_email!~`b.*`}[1h])',
      '{job="web", user_id="42"}',
      '{job="web", user_id!="42"}',
      '{job="web", user_email="\\x61lice@example.com"}',
      '{job="web", user_email="\\u0061lice\\100example.com"}',
      `{job="web", user_id="<${hash}>"}`,
      '{job=~"web|api", user_id=~"42|77"}',
      '{job="web", q="\\q"}',
    ]) {
      const r = await call('loki_query', { logql, ...bounds });
      assert.equal(r.isError, true, `accepted: ${logql}\n${r.text}`);
      assert.match(r.text, /^raw LogQL's selectors go to Loki as written, and Loki matches them on the raw label values, before redaction: (user_email|user_id|q)(=~|!~|=|!=) could test/);
      assert.match(r.text, /use loki_query's labels instead/);
    }
    assert.equal(loki.seen.length, 0, 'no probe may reach Loki');
    for (const logql of ['sum by (level) (count_over_time({job=~"web|api", user_id!="", user_email=~".+", level!~"debug|trace"}[5m]))', '{job="web", user_id="admin"}']) {
      const r = await call('loki_query', { logql, ...bounds });
      assert.equal(r.isError, false, `${logql}\n${r.text}`);
    }
    assert.equal(loki.seen.length, 2);
  });

  test('breadcrumbs take the hash a ticket shows, an email\'s too; a raw id answers show hashed is refused', async (t) => {
    const salt = 'test-salt';
    const redactor = createRedactor({ salt });
    const ns = (at: string) => String(BigInt(Date.parse(at)) * 1_000_000n);
    const values = [
      [ns('2025-03-01T10:01:00Z'), JSON.stringify({ user_email: 'Alice@Example.com', msg: 'GET /cart' })],
      [ns('2025-03-01T10:00:00Z'), JSON.stringify({ user_email: 'bob@example.com', msg: 'GET /other' })],
    ];
    const loki = await fakeLoki(t, () => ({ status: 200, body: JSON.stringify({ status: 'success', data: { resultType: 'streams', result: [{ stream: { job: 'web' }, values }] } }) }));
    const { call } = await startServer(t, { url: loki.url, userLabel: 'user_email' }, { BUGBOT_HASH_SALT: salt });
    const args = { time_range: '30m', before: '2025-03-01T10:03:00Z' };
    for (const guess of ['alice@example.com', 'Alice@Example.com']) {
      const r = await call('loki_user_breadcrumbs', { user_id: guess, ...args });
      assert.equal(r.isError, true, r.text);
      assert.match(r.text, /^user_id: answers show this id as a one-way hash, never as given, and matching it on the raw lines would confirm a guess\. Give the hash/);
    }
    assert.equal(loki.seen.length, 0, 'no guess reached Loki');
    const shown = redactor.text('Alice@Example.com');
    const r = await call('loki_user_breadcrumbs', { user_id: shown, ...args });
    assert.equal(r.isError, false, r.text);
    assert.equal(loki.seen[0]!.params.get('query'), '{service_name=~".+"} | json | user_email!=""');
    assert.match(r.text, /^1 line of email:[0-9a-f]{12} /);
    assert.ok(r.text.includes(`"user_email":"${shown}"`) && !r.text.includes('other'), r.text);
  });

  // Review finding: a private key logged one line per entry had its BEGIN line masked and
  // its body and END lines shown (and `contains: "MIIEow"` found them).
  test('a private key logged one line per entry is masked whole, its stream read in time order', async (t) => {
    const ns = (s: number) => String(BigInt(Date.parse('2025-03-01T10:00:00Z')) * 1_000_000n + BigInt(s) * 1_000_000_000n);
    const key = ['-----BEGIN RSA PRIVATE KEY-----', 'MIIEowIBAAKCAQEAx7Hq3Zk0ZK8V1Qe2u9o1m4X5c3b2a1d0e9f8g7h6i5j4k3l2', 'm1n0o9p8q7r6s5t4u3v2w1x0y9z8A7B6C5D4E3F2G1H0I9J8K7L6M5N4O3P2Q1R0', '-----END RSA PRIVATE KEY-----'];
    // Newest first, as Loki sends a backward query, with another stream's lines in between.
    const api = { stream: { service_name: 'api' }, values: ['loading config', ...key, 'done'].map((l, i) => [ns(2 * i), l]).reverse() };
    const web = { stream: { service_name: 'web' }, values: [1, 3, 5].map((i) => [ns(i), `GET /health ${i}`]) };
    const loki = await fakeLoki(t, () => ({ status: 200, body: JSON.stringify({ status: 'success', data: { resultType: 'streams', result: [api, web] } }) }));
    const { call } = await startServer(t, { url: loki.url });
    const range = { start: '2025-03-01T09:00:00Z', end: '2025-03-01T11:00:00Z' };
    const r = await call('loki_query', { labels: { service_name: { op: '=~', value: 'api|web' } }, time_range: range });
    assert.equal(r.isError, false, r.text);
    assert.equal(r.text.match(/\[REDACTED:private-key\]/g)?.length, 4, r.text);
    assert.match(r.text, /loading config/);
    assert.match(r.text, /GET \/health 3/);
    for (const leak of ['MIIEow', 'm1n0o9', 'END RSA']) assert.ok(!r.text.includes(leak), `${leak} in:\n${r.text}`);
    const found = await call('loki_query', { labels: { service_name: 'api' }, contains: 'MIIEow', time_range: range });
    assert.match(found.text, /^0 lines from /);
  });

  // Review finding: text from Loki's answer in an error (an echoed resultType, a schema
  // error naming a label key) was neither redacted nor cut: a 5 MB resultType made a 5 MB error.
  test("text from Loki's answer in an error is redacted and cut", async (t) => {
    let body = '';
    const loki = await fakeLoki(t, () => ({ status: 200, body }));
    const { call } = await startServer(t, { url: loki.url });
    const answers = [
      { resultType: `password=hunter2 ${'x'.repeat(5_000_000)}`, result: [] },
      { resultType: 'streams', result: [{ stream: { [`api_token_${'A'.repeat(100_000)}`]: 1 }, values: [] }] },
      { resultType: 'streams', result: [{ stream: { a: 'b' }, values: Array.from({ length: 20_000 }, (_, i) => [String(i), i]) }] },
    ];
    for (const data of answers) {
      body = JSON.stringify({ status: 'success', data });
      const r = await call('loki_query', { labels: { job: 'api' } });
      assert.equal(r.isError, true);
      assert.ok(r.text.length < 1_500, `${r.text.length} characters: ${r.text.slice(0, 200)}`);
      assert.match(r.text, /… \[\d+ more chars\]/);
      assert.ok(!r.text.includes('hunter2'), r.text.slice(0, 200));
    }
  });

  test('an unreachable Loki is a clear isError and the server keeps serving', async (t) => {
    const port = await freePort();
    const { client, call } = await startServer(t, { url: `http://127.0.0.1:${port}` });
    for (let i = 0; i < 2; i++) {
      const r = await call('loki_query', { labels: { job: 'api' } });
      assert.equal(r.isError, true);
      assert.match(r.text, new RegExp(`Loki at http://127\\.0\\.0\\.1:${port} is unreachable \\(ECONNREFUSED\\): check mcp\\.loki\\.url`));
    }
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((x) => x.name).sort(), ['loki_query', 'loki_user_breadcrumbs']);
    for (const tool of tools) assert.deepEqual([tool.annotations?.readOnlyHint, tool.annotations?.openWorldHint], [true, true]);
  });
});

test('invalid settings: every problem on stderr, exit status 2', async (t) => {
  const file = join(tempDir(t, 'bugbot-loki-'), 'loki-settings.json');
  writeFileSync(file, JSON.stringify({ url: 'ftp://loki', maxLines: 0, basicUserEnv: 'LOKI_USER', colour: 'blue' }));
  const s = spawnLogged(t, process.execPath, ['--import', 'tsx', 'mcp/loki/main.ts', '--settings', file]);
  assert.equal((await s.exited).code, 2);
  for (const problem of [/url: must be an http\(s\) URL/, /maxLines: Too small/, /basicPasswordEnv: basicUserEnv and basicPasswordEnv go together/, /Unrecognized key: "colour"/]) {
    assert.match(s.output(), problem);
  }
});

describe('loki MCP server, file backend', () => {
  const salt = 'test-salt';
  const hash = createRedactor({ salt }).hashUser('42');
  const line = (o: object) => JSON.stringify(o);

  function writeLogs(t: TestContext) {
    const dir = tempDir(t, 'bugbot-loki-logs-');
    const web = join(dir, 'web.log');
    const api = join(dir, 'api.log');
    writeFileSync(
      web,
      [
        line({ time: '2025-03-01T10:00:00.000Z', level: 'info', service: 'web', user_id: '42', msg: 'GET /cart' }),
        line({ time: '2025-03-01T10:01:00.000Z', level: 'info', service: 'web', user_id: '77', msg: 'GET /other-user' }),
        // pino style: epoch milliseconds
        line({ time: Date.parse('2025-03-01T10:02:00.000Z'), level: 'info', service: 'web', user_id: '42', msg: 'POST /login password=hunter2' }),
        line({ time: '2025-03-01T10:03:00.000Z', level: 'error', service: 'web', user_id: '42', msg: 'POST /checkout failed', authorization: 'Bearer abcdefghijklmnop123' }),
        line({ time: '2025-03-01T10:05:00.000Z', level: 'info', service: 'web', user_id: '42', msg: 'GET /after-the-error' }),
        'not json at all',
      ].join('\n') + '\n',
    );
    writeFileSync(api, line({ ts: '2025-03-01T10:02:30.000Z', level: 'info', service: 'api', user: { id: '42' }, msg: 'GET /api/cart/items' }) + '\n');
    return [web, api];
  }

  test("a user's breadcrumbs: oldest first, before the error, redacted, by hash; a raw id shown hashed is refused", async (t) => {
    const { client, call } = await startServer(t, { files: writeLogs(t) }, { BUGBOT_HASH_SALT: salt });
    const args = { time_range: '10m', before: '2025-03-01T10:04:00Z' };
    const guess = await call('loki_user_breadcrumbs', { user_id: '42', ...args });
    assert.equal(guess.isError, true, guess.text);
    assert.match(guess.text, /answers show this id as a one-way hash, never as given, and matching it on the raw lines would confirm a guess/);
    const r = await call('loki_user_breadcrumbs', { user_id: hash, ...args });
    assert.equal(r.isError, false, r.text);
    const order = ['GET /cart', 'POST /login', 'GET /api/cart/items', 'POST /checkout failed'].map((s) => r.text.indexOf(s));
    assert.ok(order.every((i, k) => i > 0 && (k === 0 || i > order[k - 1]!)), `oldest first:\n${r.text}`);
    assert.ok(!r.text.includes('GET /other-user'), 'another user');
    assert.ok(!r.text.includes('after-the-error'), 'lines after the error');
    for (const secret of ['hunter2', 'abcdefghijklmnop123', '"user_id":"42"']) assert.ok(!r.text.includes(secret), `${secret} leaked:\n${r.text}`);
    assert.match(r.text, /password=\[REDACTED\]/);
    assert.ok(r.text.includes(`"user_id":"<${hash}>"`), r.text);
    assert.match(r.text, /^4 lines of user:[0-9a-f]{12} /);
    assert.match(r.text, /1 line skipped: not JSON objects with a time field/);

    const byHash = await call('loki_user_breadcrumbs', { user_id: `<${hash}>`, ...args });
    const body = (s: string) => s.split('\n').filter((l) => l.startsWith('2025-'));
    assert.deepEqual(body(byHash.text), body(r.text));

    const { tools } = await client.listTools();
    for (const tool of tools) assert.deepEqual([tool.annotations?.readOnlyHint, tool.annotations?.openWorldHint], [true, false]);
  });

  test('loki_query filters by fields and contains; raw LogQL needs the HTTP backend', async (t) => {
    const { call } = await startServer(t, { files: writeLogs(t) });
    const range = { start: '2025-03-01T09:00:00Z', end: '2025-03-01T11:00:00Z' };
    const r = await call('loki_query', { labels: { level: 'error', service: { op: '=~', value: 'we.' } }, contains: 'checkout', time_range: range });
    assert.equal(r.isError, false, r.text);
    assert.match(r.text, /^1 line from 2 log files for \{level="error", service=~"we\."\} \|= "checkout"/);
    assert.match(r.text, /^2025-03-01T10:03:00\.000Z \{.*POST \/checkout failed/m);
    const raw = await call('loki_query', { logql: '{service="web"}', time_range: range, limit: 5 });
    assert.equal(raw.isError, true);
    assert.match(raw.text, /raw LogQL needs the Loki HTTP backend \(mcp\.loki\.url\)/);
    // The answer repeats what it matched: a megabyte of `contains` would fill it past maxBytes.
    const huge = await call('loki_query', { labels: { level: 'error' }, contains: 'x'.repeat(501), time_range: range });
    assert.equal(huge.isError, true);
    assert.match(huge.text, /contains/);
  });

  // Review finding (Loki contains oracle), file backend: contains and the fields used as
  // labels were matched on the raw line, an oracle on masked values.
  test('contains and field matchers see the redacted line: no oracle on a masked secret', async (t) => {
    const { call } = await startServer(t, { files: writeLogs(t) });
    const range = { start: '2025-03-01T09:00:00Z', end: '2025-03-01T11:00:00Z' };
    const count = async (args: Record<string, unknown>) => {
      const r = await call('loki_query', { time_range: range, ...args });
      assert.equal(r.isError, false, r.text);
      assert.ok(!r.text.includes('hunter2') && !r.text.includes('abcdefghijklmnop123'), r.text);
      return Number(/^(\d+) lines? from/.exec(r.text)?.[1]);
    };
    const web = { service: 'web' };
    assert.equal(await count({ labels: web, contains: 'password=h' }), 0);
    assert.equal(await count({ labels: web, contains: 'Bearer abc' }), 0);
    assert.equal(await count({ labels: web, contains: 'password=[REDACTED]' }), 1);
    assert.equal(await count({ labels: { ...web, msg: { op: '=~', value: '.*hunter.*' } } }), 0);
    assert.equal(await count({ labels: { ...web, authorization: { op: '=~', value: 'Bearer a.*' } } }), 0);
    assert.equal(await count({ labels: { ...web, authorization: { op: '!~', value: 'Bearer a.*' } } }), 5);
    // A field with anything masked in it is masked whole (see the test below).
    assert.equal(await count({ labels: { ...web, msg: { op: '=~', value: 'POST /login.*' } } }), 0);
    assert.equal(await count({ labels: { ...web, msg: '[REDACTED]' } }), 1);
    assert.equal(await count({ labels: { ...web, msg: { op: '=~', value: 'GET /cart' } } }), 1);
    assert.equal(await count({ labels: { ...web, authorization: { op: '=~', value: '.+' } } }), 1);
    // A user id is matched as shown, its hash; the raw id is refused as with Loki, not a silent "no lines".
    assert.equal(await count({ labels: { ...web, user_id: `<${createRedactor().hashUser('42')}>` } }), 4);
    assert.equal(await count({ labels: { ...web, user_id: createRedactor().hashUser('42') } }), 4, 'as a ticket writes it');
    const raw = await call('loki_query', { labels: { ...web, user_id: '42' }, time_range: range });
    assert.equal(raw.isError, true, raw.text);
    assert.match(raw.text, /^user_id=: answers never show this value as given/);
  });

  // Review finding: `"password":"correct horse battery staple"` was matched as
  // `[REDACTED] horse battery staple` (the pair rule's unquoted form stops at a space), so
  // `password=~"\\[REDACTED\\] h.*"`, `"... ho.*"`, ... spelled out the hidden words.
  test('a field with a masked part is masked whole: a matcher cannot probe past the mask', async (t) => {
    const file = join(tempDir(t, 'bugbot-loki-pw-'), 'app.log');
    writeFileSync(file, [line({ time: '2025-03-01T10:00:00.000Z', msg: 'login', password: 'correct horse battery staple' }), line({ time: '2025-03-01T10:01:00.000Z', msg: 'login', password: 'hunter2;x=1' })].join('\n') + '\n');
    const { call } = await startServer(t, { files: [file] });
    const range = { start: '2025-03-01T09:00:00Z', end: '2025-03-01T11:00:00Z' };
    const count = async (password: unknown) => {
      const r = await call('loki_query', { labels: { msg: 'login', password }, time_range: range });
      assert.equal(r.isError, false, r.text);
      return Number(/^(\d+) lines? from/.exec(r.text)?.[1]);
    };
    for (const value of ['\\[REDACTED\\] h.*', '\\[REDACTED\\] .+', '\\[REDACTED\\];x=1', '.*horse.*']) assert.equal(await count({ op: '=~', value }), 0, value);
    assert.equal(await count('[REDACTED]'), 2);
  });

  // Review finding: a pattern that backtracks for ever ((.*)*x over a line of 40 "a"s)
  // held the file backend's only thread, and every session of the ticket with it.
  test('label regexes run in linear time, as Loki runs them; what needs backtracking is refused, naming why', async (t) => {
    const dir = tempDir(t, 'bugbot-loki-redos-');
    const file = join(dir, 'app.log');
    writeFileSync(file, [0, 1, 2].map((i) => line({ time: `2025-03-01T10:0${i}:00.000Z`, service: 'web', msg: 'a'.repeat(40 + i) })).join('\n') + '\n');
    const { client } = await startServer(t, { files: [file] });
    const range = { start: '2025-03-01T09:00:00Z', end: '2025-03-01T11:00:00Z' };
    const query = async (value: string) => {
      const r = await client.callTool({ name: 'loki_query', arguments: { labels: { service: 'web', msg: { op: '=~', value } }, time_range: range } }, undefined, { timeout: 15_000 });
      return { text: (r.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n'), isError: r.isError === true };
    };
    for (const evil of ['(.*)*x', '(a|aa)*b', '(a*)*b']) {
      const r = await query(evil);
      assert.equal(r.isError, false, r.text);
      assert.match(r.text, /^0 lines from log file /, evil);
    }
    assert.match((await query("(a+)+")).text, /^3 lines from log file /);
    const backref = await query('(a)\\1.*');
    assert.equal(backref.isError, true);
    assert.match(backref.text, /not one the file backend can run: it needs RE2-style syntax that runs in linear time \(no backreferences or lookaround\)/);
  });

  test('a read of the log files past mcp.loki.timeoutMs stops there, naming the limit; the server keeps serving', async (t) => {
    const dir = tempDir(t, 'bugbot-loki-slow-');
    // A file too big to read in 100 ms, and a pipe that says one line and then nothing more.
    const big = join(dir, 'big.log');
    writeFileSync(big, (line({ time: '2025-03-01T10:00:00.000Z', service: 'web', msg: `GET /cart ${'x'.repeat(80)}` }) + '\n').repeat(300_000));
    const pipe = join(dir, 'pipe.log');
    execFileSync('mkfifo', [pipe]);
    spawnLogged(t, 'bash', ['-c', 'exec 3>"$1"; echo "$2" >&3; exec sleep 120', 'writer', pipe, line({ time: new Date().toISOString(), service: 'web', msg: 'hello' })]);
    const now = Date.now();
    const ranges = new Map([
      [big, { start: '2025-03-01T09:00:00Z', end: '2025-03-01T11:00:00Z' }],
      [pipe, { start: new Date(now - 3_600_000).toISOString(), end: new Date(now + 3_600_000).toISOString() }],
    ]);
    for (const [file, range] of ranges) {
      const files = [file];
      const { call } = await startServer(t, { files, timeoutMs: 100 });
      for (const attempt of [1, 2]) {
        const started = Date.now();
        const r = await call('loki_query', { labels: { service: 'web' }, contains: 'never there', time_range: range });
        assert.equal(r.isError, true, `${files[0]} ${attempt}: ${r.text}`);
        assert.match(r.text, /^reading log file .+ took longer than 100 ms \(mcp\.loki\.timeoutMs\): narrow the time range or add label matchers/);
        assert.ok(Date.now() - started < 5_000, `${Date.now() - started} ms`);
      }
    }
  });

  test('results hitting the line and byte caps say they were truncated', async (t) => {
    const dir = tempDir(t, 'bugbot-loki-big-');
    const big = join(dir, 'big.log');
    const pad = 'x'.repeat(300);
    const lines = Array.from({ length: 10 }, (_, i) => line({ time: `2025-03-01T10:0${i}:00.000Z`, service: 'web', user_id: '42', msg: `req ${i} ${pad}` }));
    writeFileSync(big, lines.join('\n') + '\n');
    const { call } = await startServer(t, { files: [big], maxLines: 3, maxBytes: 1024 });
    const range = { start: '2025-03-01T09:00:00Z', end: '2025-03-01T11:00:00Z' };
    const r = await call('loki_query', { labels: { service: 'web' }, time_range: range });
    assert.equal(r.isError, false, r.text);
    assert.match(r.text, /\[limit reached: more lines may match than were returned\. These are the newest 3\./);
    assert.match(r.text, /\[truncated: the newest \d of 3 lines shown; output is capped at 1024 bytes\./);
    assert.ok(Buffer.byteLength(r.text) <= 1024, `${Buffer.byteLength(r.text)} bytes`);
    assert.ok(r.text.includes('req 9') && !r.text.includes('req 6'), r.text);

    const crumbs = await call('loki_user_breadcrumbs', { user_id: createRedactor().hashUser('42'), time_range: range });
    assert.match(crumbs.text, /\[limit reached: .*These are the latest 3 before the end of the range/);
    assert.match(crumbs.text, /\[truncated: /);
  });
});
