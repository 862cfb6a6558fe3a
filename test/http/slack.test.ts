import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import { createApp } from '../../control/app.ts';
import { StartRefused, startServer } from '../../control/main.ts';
import { lockHome, readServerInfo } from '../../control/server-info.ts';
import { loadConfig } from '../../control/config.ts';
import { Intake } from '../../control/intake/index.ts';
import { createRedactor } from '../../lib/redact.ts';
import { createLogger, silentLogger } from '../../control/log.ts';
import { Store } from '../../control/queue/store.ts';
import type { Ticket } from '../../control/types.ts';
import { createSlackTrigger, type SlackTrigger } from '../../control/triggers/slack.ts';
import { ErrorCode } from '@slack/web-api';
import { formatThread, heldNote, MAX_REPORT_CHARS, mentionEvent, RATE_LIMIT_MAX_WAIT_S, stripBotMention, withRateLimit, type Mention } from '../../control/triggers/slack-thread.ts';
import { FakeClock, tempDir } from '../support/helpers.ts';
import { startBugbot } from '../support/process.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = resolve(repoRoot, '../shared/fixtures/slack');
if (!existsSync(fixtures)) throw new Error(`Slack fixtures not found at ${fixtures}`);
const fixtureText = (name: string) => readFileSync(resolve(fixtures, name), 'utf8');
const fixture = (name: string) => JSON.parse(fixtureText(name)) as Record<string, unknown>;

const SECRET = 'test-signing-secret';
const BOT_TOKEN = 'xoxb-test-token';
const APP_TOKEN = 'xapp-test-token';
// auth.test has no fixture; these ids are ours. The camunda fixture sanitised every id to
// XXXXXXXX, so the bot must be someone else for its mention to count as a person's.
const BOT_USER = 'UBUGBOT01';
const BOT_ID = 'BBUGBOT01';
/** Channel for which the stub answers conversations.replies with the thread_not_found fixture. */
const MISSING_CHANNEL = 'CMISSING01';

interface Posted {
  channel: string;
  thread_ts: string;
  text: string;
  authorization: string | undefined;
}

/**
 * A local Slack: the Web API serving the documented responses from the fixtures, and
 * a minimal Socket Mode WebSocket (RFC 6455 handshake and unfragmented frames only).
 */
class SlackStub {
  readonly posted: Posted[] = [];
  readonly repliesCalls: Record<string, string | undefined>[] = [];
  /** While set, conversations.replies waits for it: proves the ack does not wait on the Web API. */
  hold: Promise<void> | undefined;
  /** Threads of our own, by channel, served in the documented response's shape (messages, has_more). */
  readonly threads = new Map<string, Array<{ type: 'message'; user?: string; bot_id?: string; subtype?: string; text: string; ts: string; attachments?: Array<Record<string, unknown>> }>>();
  /** JSON messages the Socket Mode client sent (its acks). */
  readonly received: Record<string, unknown>[] = [];
  /** While `times` > 0, chat.postMessage answers 429 with this Retry-After (Slack's rate limit). */
  limited: { retryAfter: number; times: number } | undefined;
  limitedHits = 0;
  /** chat.postMessage to these channels fails: 'reset' drops the connection (ECONNRESET), anything else is Slack's error code. */
  readonly failPosts = new Map<string, string>();
  /** Every chat.postMessage call's channel, failed ones too. */
  readonly postAttempts: string[] = [];
  private server: Server | undefined;
  private socket: Socket | undefined;

  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      if (req.url === '/api/chat.postMessage' && this.limited && this.limited.times > 0) {
        this.limited.times--;
        this.limitedHits++;
        req.resume();
        res.writeHead(429, { 'retry-after': String(this.limited.retryAfter), 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error: 'ratelimited' }));
        return;
      }
      void this.handle(req).then((body) => {
        if (req.socket.destroyed) return;
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        res.end(body);
      });
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket) => this.upgrade(req, socket));
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    return `http://127.0.0.1:${this.port()}/api/`;
  }

  private port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  /** Send one Socket Mode message (https://docs.slack.dev/apis/events-api/using-socket-mode). */
  send(message: Record<string, unknown>): void {
    this.socket!.write(wsFrame(1, Buffer.from(JSON.stringify(message))));
  }

  private upgrade(req: IncomingMessage, socket: Socket): void {
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    this.socket = socket;
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1]! & 0x7f;
        let off = 2;
        if (len === 126) [len, off] = [buf.length >= 4 ? buf.readUInt16BE(2) : Infinity, 4];
        else if (len === 127) [len, off] = [buf.length >= 10 ? Number(buf.readBigUInt64BE(2)) : Infinity, 10];
        // Client frames are always masked (RFC 6455 §5.3).
        if (buf.length < off + 4 + len) return;
        const mask = buf.subarray(off, off + 4);
        const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len));
        for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
        const opcode = buf[0]! & 0x0f;
        buf = buf.subarray(off + 4 + len);
        if (opcode === 1) this.received.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>);
        else if (opcode === 9) socket.write(wsFrame(10, payload));
        else if (opcode === 8) socket.end(wsFrame(8, payload));
      }
    });
    socket.on('error', () => undefined);
    this.send({ type: 'hello', num_connections: 1, connection_info: { app_id: 'A0TEST' } });
  }

  private async handle(req: IncomingMessage): Promise<string> {
    let raw = '';
    for await (const chunk of req) raw += String(chunk);
    const params = Object.fromEntries(new URLSearchParams(raw));
    switch (req.url) {
      case '/api/auth.test':
        return JSON.stringify({ ok: true, url: 'https://example.slack.com/', team: 'T', user: 'bugbot', team_id: 'T0TEST', user_id: BOT_USER, bot_id: BOT_ID });
      case '/api/conversations.replies':
        this.repliesCalls.push({ ...params, authorization: req.headers.authorization ?? '' });
        await this.hold;
        if (this.threads.has(params.channel!)) return JSON.stringify({ ok: true, messages: this.threads.get(params.channel!), has_more: false });
        return fixtureText(params.channel === MISSING_CHANNEL ? 'conversations_replies_error_openapi_example.json' : 'conversations_replies_response_openapi_example.json');
      case '/api/apps.connections.open':
        // A token Slack does not know: the documented error (auth.test's and every method's).
        if (req.headers.authorization !== `Bearer ${APP_TOKEN}`) return JSON.stringify({ ok: false, error: 'invalid_auth' });
        return JSON.stringify({ ok: true, url: `ws://127.0.0.1:${this.port()}/link` });
      case '/api/chat.postMessage': {
        this.postAttempts.push(params.channel!);
        const fail = this.failPosts.get(params.channel!);
        if (fail === 'reset') {
          req.socket.destroy();
          return '';
        }
        if (fail) return JSON.stringify({ ok: false, error: fail });
        this.posted.push({ channel: params.channel!, thread_ts: params.thread_ts!, text: params.text!, authorization: req.headers.authorization });
        return JSON.stringify({ ok: true, channel: params.channel, ts: '1700000000.000100' });
      }
      default:
        return JSON.stringify({ ok: false, error: 'unknown_method' });
    }
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }
}

/** One unmasked, unfragmented server frame. */
function wsFrame(opcode: number, payload: Buffer): Buffer {
  const head =
    payload.length < 126
      ? Buffer.from([0x80 | opcode, payload.length])
      : Buffer.from([0x80 | opcode, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('POST /slack/events', () => {
  const stub = new SlackStub();
  let dir: string;
  let store: Store;
  let slack: SlackTrigger;
  let app: Hono;
  let intake: Intake;

  before(async () => {
    const apiUrl = await stub.listen();
    dir = mkdtempSync(join(tmpdir(), 'bugbot-slack-'));
    const config = loadConfig({
      env: { SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: BOT_TOKEN },
      flags: { home: dir, triggers: { slack: { apiUrl } } },
      cwd: dir,
    });
    store = new Store(join(dir, 'bugbot.db'));
    intake = new Intake({ store, config, redactor: createRedactor() });
    slack = createSlackTrigger({ config, store, intake, logger: silentLogger });
    app = createApp({ config, store, intake, logger: silentLogger, slack });
    await slack.start();
  });

  after(async () => {
    await slack.stop();
    await slack.stop();
    store.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function post(body: string, opts: { ts?: number; secret?: string; headers?: Record<string, string>; contentType?: string } = {}) {
    const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
    const signature = 'v0=' + createHmac('sha256', opts.secret ?? SECRET).update(`v0:${ts}:${body}`).digest('hex');
    return app.request('/slack/events', {
      method: 'POST',
      headers: {
        'content-type': opts.contentType ?? 'application/json',
        'x-slack-request-timestamp': ts,
        'x-slack-signature': signature,
        ...opts.headers,
      },
      body,
    });
  }

  /** An app_mention envelope like the camunda fixture, with our own ids and text. */
  function mention(eventId: string, event: Record<string, unknown>): string {
    const base = fixture('event_callback_app_mention_in_thread_camunda_docs.json');
    return JSON.stringify({ ...base, event_id: eventId, event: { ...(base.event as object), ...event } });
  }

  const tickets = (): Ticket[] => store.listTickets({ limit: 1000 });
  const ticketBySourceEvent = (id: string): Ticket | undefined => {
    const row = store.stmt('SELECT ticket_id FROM events WHERE source = ? AND source_event_id = ?').get('slack', id) as { ticket_id: number | null } | undefined;
    return row?.ticket_id ? store.getTicket(row.ticket_id) : undefined;
  };

  it('answers url_verification with the challenge', async () => {
    const body = fixtureText('url_verification_zulip.json');
    const res = await post(body);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { challenge: (JSON.parse(body) as { challenge: string }).challenge });
  });

  const camunda = fixtureText('event_callback_app_mention_in_thread_camunda_docs.json');

  it('stores a signed app_mention before acking, then files the thread and replies in it', async () => {
    let release!: () => void;
    stub.hold = new Promise<void>((r) => (release = r));
    const started = Date.now();
    const res = await post(camunda);
    const elapsed = Date.now() - started;
    assert.equal(res.status, 200);
    assert.ok(elapsed < 3000, `acked in ${elapsed} ms`);
    const reply = (await res.json()) as { accepted: number; results: { status: string; ticket: number }[] };
    assert.equal(reply.accepted, 1);
    assert.equal(reply.results[0]!.status, 'created');

    // Acked while conversations.replies is still being held: the report is already stored.
    const t = ticketBySourceEvent('XXXXXXXX');
    assert.ok(t, 'ticket exists before the thread was read');
    assert.equal(t.id, reply.results[0]!.ticket);
    assert.equal(t.source, 'slack');
    assert.equal(t.kind, 'report');
    assert.equal(t.human, true);
    assert.deepEqual(t.reporter, { kind: 'slack', id: 'XXXXXXXX', thread: 'XXXXXXXX:1687864866.335329' });
    assert.match(t.message, /say hello/);
    assert.equal(stub.posted.length, 0, 'no reply before the thread was read');

    release();
    stub.hold = undefined;
    const enriched = await until('thread in the ticket', () => {
      const now = store.getTicket(t.id)!;
      return now.message.includes('three for the land') && now;
    });
    // The fixture's thread does not hold the mention itself, so it comes last. A member's
    // id is hashed (docs/architecture.md, redaction), the same member the same hash (the fixture's redacted
    // XXXXXXXX is no Slack id).
    const member = /^(<@user:[0-9a-f]{12}>): island$/.exec(enriched.message.split('\n')[0]!)?.[1] ?? 'no hashed member';
    assert.deepEqual(enriched.message.split('\n'), [
      `${member}: island`,
      `${member}: one island`,
      `${member}: two island`,
      `${member}: three for the land`,
      '<@XXXXXXXX>: <@XXXXXXXX> say hello',
    ]);
    assert.doesNotMatch(JSON.stringify(store.getTicket(t.id)), /U061F7AUR/);
    const call = stub.repliesCalls[0]!;
    assert.deepEqual([call.channel, call.ts, call.authorization], ['XXXXXXXX', '1687864866.335329', `Bearer ${BOT_TOKEN}`]);
    // The fixture says has_more with a next_cursor; served again for that cursor, the repeated cursor ends the loop.
    assert.equal(stub.repliesCalls.length, 2);
    assert.equal(stub.repliesCalls[1]!.cursor, 'bmV4dF90czoxNDg0Njc4MjkwNTE3MDkx');

    const posted = await until('chat.postMessage', () => stub.posted[0]);
    assert.equal(posted.channel, 'XXXXXXXX');
    assert.equal(posted.thread_ts, '1687864866.335329');
    assert.equal(posted.authorization, `Bearer ${BOT_TOKEN}`);
    assert.match(posted.text, new RegExp(`^Thanks — I opened ticket #${t.id} \\(queued, `));
  });

  it('acks a retry of a stored event and ignores it', async () => {
    const events = store.countEvents();
    const count = tickets().length;
    const posts = stub.posted.length;
    const res = await post(camunda, { headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { ignored: string; duplicates: number };
    assert.match(body.ignored, /already received/);
    assert.equal(body.duplicates, 1);
    assert.equal(store.countEvents(), events);
    assert.equal(tickets().length, count);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(stub.posted.length, posts, 'no second reply');
  });

  it('refuses a forged signature with 401 and stores nothing', async () => {
    const events = store.countEvents();
    const res = await post(mention('EvFORGED', { text: 'forged' }), { secret: 'not-the-secret' });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'unauthorized');
    assert.match(body.error.message, /X-Slack-Signature does not match/);
    assert.equal(store.countEvents(), events);
    assert.equal(ticketBySourceEvent('EvFORGED'), undefined);

    const unsigned = await app.request('/slack/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(unsigned.status, 401);
    assert.match(((await unsigned.json()) as { error: { message: string } }).error.message, /missing X-Slack-Signature/);
  });

  it('refuses a correctly signed request older than 5 minutes', async () => {
    const res = await post(mention('EvSTALE', { text: 'stale' }), { ts: Math.floor(Date.now() / 1000) - 301 });
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /stale request.*window 300 s/);
    assert.equal(ticketBySourceEvent('EvSTALE'), undefined);
  });

  it('answers 400 for malformed JSON and for a body without type', async () => {
    const bad = await post('{"type": "event_callback",');
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /body is not valid JSON/);
    const untyped = await post('{"token": "x"}');
    assert.equal(untyped.status, 400);
    assert.match(((await untyped.json()) as { error: { message: string } }).error.message, /no "type" field/);
  });

  it('answers 400 naming the field for a signed app_mention it could neither file nor answer, and stores nothing', async () => {
    const before = store.countEvents();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ text: { a: 1 } }, /"text" must be a string/],
      [{ channel: undefined }, /"channel" must be a non-empty string/],
      [{ ts: 17 }, /"ts" must be a non-empty string/],
      [{ thread_ts: ['x'] }, /"thread_ts" must be a string/],
    ];
    for (const [i, [event, re]] of cases.entries()) {
      const res = await post(mention(`EvMalformed${i}`, event));
      assert.equal(res.status, 400, JSON.stringify(event));
      assert.match(((await res.json()) as { error: { message: string } }).error.message, re);
    }
    assert.equal(store.countEvents(), before);
  });

  it('keeps the mention text when conversations.replies fails (thread_not_found)', async () => {
    const res = await post(
      mention('EvMISSING', { channel: MISSING_CHANNEL, user: 'U0REPORTER', text: `<@${BOT_USER}> the checkout page goes blank after paying` }),
    );
    assert.equal(res.status, 200);
    const posted = await until('reply in the missing thread', () => stub.posted.find((p) => p.channel === MISSING_CHANNEL));
    assert.match(posted.text, /I opened ticket/);
    const t = ticketBySourceEvent('EvMISSING');
    assert.ok(t);
    // The bot's own mention is stripped; the text is the person's, unchanged by the failed read.
    assert.equal(t.message, 'the checkout page goes blank after paying');
    assert.ok(stub.repliesCalls.some((c) => c.channel === MISSING_CHANNEL));
  });

  it('tells a second reporter of the same error that it is already tracked', async () => {
    const error = "TypeError: Cannot read properties of undefined (reading 'total')";
    const first = await post(
      mention('EvERR1', { channel: 'CSHOP00001', user: 'U0ALICE', thread_ts: '1700000001.000100', text: `<@${BOT_USER}> cart is broken:\n${error}` }),
    );
    assert.equal(first.status, 200);
    await until('first reply', () => stub.posted.find((p) => p.thread_ts === '1700000001.000100'));
    const second = await post(
      mention('EvERR2', { channel: 'CSHOP00002', user: 'U0BOB', thread_ts: '1700000002.000200', text: `<@${BOT_USER}> me too\n${error}` }),
    );
    assert.equal(second.status, 200);
    const body = (await second.json()) as { results: { status: string; ticket: number }[] };
    assert.equal(body.results[0]!.status, 'merged');
    const posted = await until('merged reply', () => stub.posted.find((p) => p.thread_ts === '1700000002.000200'));
    assert.equal(posted.channel, 'CSHOP00002');
    const t = ticketBySourceEvent('EvERR1')!;
    assert.equal(ticketBySourceEvent('EvERR2')!.id, t.id);
    assert.match(posted.text, new RegExp(`^This is already tracked as ticket #${t.id} \\(2 reports, queued\\)`));
    assert.deepEqual(
      store.getTicket(t.id)!.reporters.map((r) => r.thread),
      ['CSHOP00001:1700000001.000100', 'CSHOP00002:1700000002.000200'],
    );
    // The merged mention did not replace the first reporter's thread with its own.
    assert.equal(stub.repliesCalls.filter((c) => c.channel === 'CSHOP00002').length, 0);
  });

  // Review finding: a mention was grouped by its own words, so two threads whose mentions
  // both said "can you fix this?" made one ticket, and the second thread was never read.
  it('groups a mention without an error or URL by its thread: two threads, two tickets; a follow-up joins its thread', async () => {
    const ask = `<@${BOT_USER}> can you fix this?`;
    const a = await post(mention('EvASK1', { channel: 'CASK000001', user: 'U0ALICE', ts: '1700000101.000100', thread_ts: '1700000100.000100', text: ask }));
    const b = await post(mention('EvASK2', { channel: 'CASK000002', user: 'U0BOB', ts: '1700000201.000100', thread_ts: '1700000200.000100', text: ask }));
    assert.equal(((await a.json()) as { results: { status: string }[] }).results[0]!.status, 'created');
    assert.equal(((await b.json()) as { results: { status: string }[] }).results[0]!.status, 'created');
    const ta = ticketBySourceEvent('EvASK1')!;
    const tb = ticketBySourceEvent('EvASK2')!;
    assert.notEqual(ta.id, tb.id);
    await until('second thread read', () => stub.repliesCalls.some((c) => c.channel === 'CASK000002'));

    // A mention that quoted an error, then "any update?" in the same thread: one ticket.
    const error = "RangeError: Invalid time value at formatDate (dates.ts:14)";
    await post(mention('EvASK3', { channel: 'CASK000003', user: 'U0CAROL', ts: '1700000301.000100', thread_ts: '1700000300.000100', text: `<@${BOT_USER}> ${error}` }));
    const followUp = await post(
      mention('EvASK4', { channel: 'CASK000003', user: 'U0CAROL', ts: '1700000302.000100', thread_ts: '1700000300.000100', text: `<@${BOT_USER}> any update?` }),
    );
    assert.equal(((await followUp.json()) as { results: { status: string }[] }).results[0]!.status, 'merged');
    assert.equal(ticketBySourceEvent('EvASK4')!.id, ticketBySourceEvent('EvASK3')!.id);
    // "any update?" elsewhere is another thread's report, not this one.
    await post(mention('EvASK5', { channel: 'CASK000004', user: 'U0DAN', ts: '1700000401.000100', thread_ts: '1700000400.000100', text: `<@${BOT_USER}> any update?` }));
    assert.notEqual(ticketBySourceEvent('EvASK5')!.id, ticketBySourceEvent('EvASK3')!.id);
  });

  // Review finding: Slack sends an edited mention again (a new event_id, the same ts, an
  // `edited` field); fixing a typo filed the report a second time and the bot answered twice.
  it('files an edited mention once: the edit is acknowledged and ignored, with no second reply', async () => {
    const event = { channel: 'CEDIT00001', user: 'U0ERIN', ts: '1700000501.000100', thread_ts: '1700000500.000100', text: `<@${BOT_USER}> cart.totl is undefined on checkout` };
    const first = await post(mention('EvEDIT1', event));
    assert.equal(((await first.json()) as { results: { status: string }[] }).results[0]!.status, 'created');
    await until('first reply', () => stub.posted.find((p) => p.channel === 'CEDIT00001'));
    const before = tickets().length;
    const edit = await post(
      mention('EvEDIT2', { ...event, text: `<@${BOT_USER}> cart.total is undefined on checkout`, edited: { user: 'U0ERIN', ts: '1700000509.000000' } }),
    );
    assert.equal(edit.status, 200);
    assert.equal(tickets().length, before, 'no second ticket');
    assert.equal(ticketBySourceEvent('EvEDIT2'), undefined, 'the edit was not stored');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(stub.posted.filter((p) => p.channel === 'CEDIT00001').length, 1, 'one reply');
  });

  // Review finding: a person's report was triaged on the mention alone and queued at once,
  // before its thread was read: "@bugbot what is going on here?" under a stack trace was
  // dropped as a question, and a worker could claim the ticket (its brief written from
  // the mention) before the thread was stored.
  it('triages a report on its whole thread, and nothing claims it before the thread is read', async () => {
    stub.threads.set('CTHREAD001', [
      { type: 'message', user: 'U0IVY', text: 'checkout is down for everyone:\nTypeError: Cannot read properties of undefined (reading \'total\')\n    at cartTotal (src/cart.ts:41:12)', ts: '1700000900.000100' },
      { type: 'message', user: 'U0JAY', text: `<@${BOT_USER}> what is going on here?`, ts: '1700000901.000100' },
    ]);
    let release!: () => void;
    stub.hold = new Promise<void>((r) => (release = r));
    try {
      const res = await post(mention('EvTHREAD1', { channel: 'CTHREAD001', user: 'U0JAY', ts: '1700000901.000100', thread_ts: '1700000900.000100', text: `<@${BOT_USER}> what is going on here?` }));
      assert.equal(res.status, 200);
      const held = ticketBySourceEvent('EvTHREAD1')!;
      assert.equal(held.state, 'settling', 'waits for its thread: not queued, so no worker claims it');
    } finally {
      release();
      stub.hold = undefined;
    }
    const posted = await until('the reply', () => stub.posted.find((p) => p.channel === 'CTHREAD001'));
    const t = ticketBySourceEvent('EvTHREAD1')!;
    assert.match(t.message, /TypeError: Cannot read properties of undefined/);
    assert.equal(t.classification, 'bug', t.triageReason ?? '');
    assert.equal(t.state, 'queued');
    assert.match(posted.text, new RegExp(`^Thanks — I opened ticket #${t.id} \\(queued, `));
    assert.match(t.message, /at cartTotal/);
  });

  // Review finding: an alerting app's post (Alertmanager's, Grafana's Slack notifier) carries
  // the alert in an attachment's title and text, with no text of its own: the thread under it
  // read as an empty line, and "@bugbot can you fix this?" was triaged as a question.
  it("reads an app's post from its attachments (an alert the thread is about), but not link previews", async () => {
    stub.threads.set('CALERT0001', [
      {
        type: 'message',
        subtype: 'bot_message',
        bot_id: 'B0ALERTMGR',
        text: '',
        ts: '1700001000.000100',
        attachments: [
          {
            color: 'danger',
            title: '[FIRING:1] CheckoutErrors (shop-api critical)',
            title_link: 'http://alertmanager.shop.test/#/alerts',
            text: "TypeError: Cannot read properties of undefined (reading 'total')\n    at cartTotal (src/cart.ts:41:12)",
            fields: [{ title: 'route', value: 'POST /api/checkout', short: true }],
            fallback: '[FIRING:1] CheckoutErrors | http://alertmanager.shop.test/#/alerts',
          },
        ],
      },
      {
        type: 'message',
        user: 'U0KIM',
        text: 'same as <https://status.shop.test/incidents/42>',
        ts: '1700001001.000100',
        attachments: [{ from_url: 'https://status.shop.test/incidents/42', title: 'Incident 42', text: 'a preview of the status page', fallback: 'Status: Incident 42' }],
      },
      { type: 'message', user: 'U0KIM', text: `<@${BOT_USER}> can you fix this?`, ts: '1700001002.000100' },
    ]);
    const res = await post(mention('EvALERT1', { channel: 'CALERT0001', user: 'U0KIM', ts: '1700001002.000100', thread_ts: '1700001000.000100', text: `<@${BOT_USER}> can you fix this?` }));
    assert.equal(res.status, 200);
    await until('the reply', () => stub.posted.find((p) => p.channel === 'CALERT0001'));
    const t = ticketBySourceEvent('EvALERT1')!;
    assert.match(t.message, /^<app:B0ALERTMGR>: \[FIRING:1\] CheckoutErrors \(shop-api critical\)\n {2}TypeError: Cannot read properties of undefined \(reading 'total'\)\n\s+at cartTotal/);
    assert.match(t.message, /\n {2}route: POST \/api\/checkout\n/);
    assert.doesNotMatch(t.message, /preview of the status page|Incident 42/);
    assert.equal(t.classification, 'bug', t.triageReason ?? '');
  });

  // Review finding: a failure to store the thread (the database busy or full) escaped the
  // listener, so the person who asked never got the reply, though their ticket existed.
  it('still replies when the thread cannot be stored in the ticket', async () => {
    const enrich = intake.threadRead.bind(intake);
    intake.threadRead = () => {
      throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    };
    try {
      const res = await post(mention('EvENRICH', { channel: 'CENRICH001', user: 'U0HANK', ts: '1700000801.000100', thread_ts: '1700000800.000100', text: `<@${BOT_USER}> the cart page 500s` }));
      assert.equal(res.status, 200);
      const posted = await until('the reply', () => stub.posted.find((p) => p.channel === 'CENRICH001'));
      assert.match(posted.text, /I opened ticket/);
      assert.equal(ticketBySourceEvent('EvENRICH')!.message, 'the cart page 500s', 'the ticket keeps the mention');
    } finally {
      intake.threadRead = enrich;
    }
  });

  it("waits out Slack's rate limit (Retry-After) and then replies", async () => {
    stub.limited = { retryAfter: 1, times: 1 };
    const hits = stub.limitedHits;
    const started = Date.now();
    await post(mention('EvRATE1', { channel: 'CRATE00001', user: 'U0FRANK', ts: '1700000601.000100', thread_ts: '1700000600.000100', text: `<@${BOT_USER}> the invoice page 500s` }));
    const posted = await until('reply after the rate limit', () => stub.posted.find((p) => p.channel === 'CRATE00001'));
    assert.match(posted.text, /I opened ticket/);
    assert.equal(stub.limitedHits - hits, 1);
    assert.ok(Date.now() - started >= 900, 'waited for Retry-After');
    stub.limited = undefined;
  });

  it('replies under a top-level mention (no thread_ts) by starting a thread on it', async () => {
    const body = fixture('event_callback_app_mention_vercel_chat.json');
    const res = await post(JSON.stringify({ ...body, event_id: 'EvVERCEL' }));
    assert.equal(res.status, 200);
    const t = ticketBySourceEvent('EvVERCEL');
    assert.ok(t);
    assert.deepEqual(t.reporter, { kind: 'slack', id: 'U00FAKEUSER1', thread: 'C00FAKECHAN1:1771287144.743569' });
    const posted = await until('reply to the top-level mention', () => stub.posted.find((p) => p.channel === 'C00FAKECHAN1'));
    assert.equal(posted.thread_ts, '1771287144.743569');
  });

  it("ignores mentions by the bot itself or by any app (bot_id)", async () => {
    const events = store.countEvents();
    for (const [id, event] of [
      ['EvSELF', { user: BOT_USER, text: `<@${BOT_USER}> I am the bot` }],
      ['EvAPP', { user: 'U0OTHER', bot_id: 'B0OTHERAPP', text: `<@${BOT_USER}> beep` }],
    ] as const) {
      const res = await post(mention(id, event));
      assert.equal(res.status, 200);
      assert.match(((await res.json()) as { ignored: string }).ignored, /bot/);
      assert.equal(ticketBySourceEvent(id), undefined);
    }
    assert.equal(store.countEvents(), events);
  });

  it('verifies and acks an interactivity payload (form-encoded)', async () => {
    const count = tickets().length;
    const form = new URLSearchParams({ payload: fixtureText('block_actions_button_in_thread_vercel_chat.json') }).toString();
    const res = await post(form, { contentType: 'application/x-www-form-urlencoded' });
    assert.equal(res.status, 200);
    assert.equal(tickets().length, count);
    const forged = await post(form, { contentType: 'application/x-www-form-urlencoded', secret: 'wrong' });
    assert.equal(forged.status, 401);
    const noPayload = await post('command=%2Fbugbot', { contentType: 'application/x-www-form-urlencoded' });
    assert.equal(noPayload.status, 400);
  });
});

// Review finding: the WebClient waited out Retry-After in full before each of its retries,
// and stop() waits for replies: a 60 s Retry-After held `bugbot stop` for about 3 minutes.
describe('Slack rate limits and stopping', () => {
  it('a stop cuts a wait on a long Retry-After short: the reply is given up, not waited for', async () => {
    const stub = new SlackStub();
    const apiUrl = await stub.listen();
    const dir = mkdtempSync(join(tmpdir(), 'bugbot-slack-rate-'));
    const config = loadConfig({ env: { SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: BOT_TOKEN }, flags: { home: dir, triggers: { slack: { apiUrl } } }, cwd: dir });
    const store = new Store(join(dir, 'bugbot.db'));
    const intake = new Intake({ store, config, redactor: createRedactor() });
    const slack = createSlackTrigger({ config, store, intake, logger: silentLogger });
    const app = createApp({ config, store, intake, logger: silentLogger, slack });
    try {
      await slack.start();
      stub.limited = { retryAfter: 15, times: 100 };
      const base = fixture('event_callback_app_mention_in_thread_camunda_docs.json');
      const body = JSON.stringify({ ...base, event_id: 'EvRATE2', event: { ...(base.event as object), channel: 'CRATE00002', user: 'U0GINA', ts: '1700000701.000100', thread_ts: '1700000700.000100', text: `<@${BOT_USER}> search is down` } });
      const ts = String(Math.floor(Date.now() / 1000));
      const res = await app.request('/slack/events', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': ts, 'x-slack-signature': 'v0=' + createHmac('sha256', SECRET).update(`v0:${ts}:${body}`).digest('hex') },
        body,
      });
      assert.equal(res.status, 200);
      await until('the reply hit the rate limit', () => stub.limitedHits > 0);
      const started = Date.now();
      await slack.stop();
      assert.ok(Date.now() - started < 3000, `stopped in ${Date.now() - started} ms`);
      assert.equal(stub.posted.length, 0, 'given up, not posted');
      assert.equal(stub.limitedHits, 1, 'no retry after the stop');
    } finally {
      await slack.stop();
      store.close();
      await stub.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`withRateLimit: retries after Retry-After up to ${RATE_LIMIT_MAX_WAIT_S} s, fails at once past it, and passes other errors through`, async () => {
    const limited = (after: number) => Object.assign(new Error('rate limited'), { code: ErrorCode.RateLimitedError, retryAfter: after });
    const never = new AbortController().signal;
    let calls = 0;
    assert.equal(await withRateLimit(async () => (++calls === 1 ? Promise.reject(limited(0)) : 'ok'), never), 'ok');
    assert.equal(calls, 2);
    calls = 0;
    await assert.rejects(withRateLimit(async () => { calls++; throw limited(RATE_LIMIT_MAX_WAIT_S + 1); }, never), /rate limited/);
    assert.equal(calls, 1, 'a Retry-After past the cap is not waited for');
    calls = 0;
    await assert.rejects(withRateLimit(async () => { calls++; throw new Error('invalid_auth'); }, never), /invalid_auth/);
    assert.equal(calls, 1);
  });
});

describe('Slack Socket Mode', () => {
  const stub = new SlackStub();
  let dir: string;
  let store: Store;
  let slack: SlackTrigger;
  let app: Hono;
  let intake: Intake;

  before(async () => {
    const apiUrl = await stub.listen();
    dir = mkdtempSync(join(tmpdir(), 'bugbot-slack-socket-'));
    const config = loadConfig({
      env: { SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_APP_TOKEN: APP_TOKEN },
      flags: { home: dir, triggers: { slack: { apiUrl, socketMode: true } } },
      cwd: dir,
    });
    store = new Store(join(dir, 'bugbot.db'));
    intake = new Intake({ store, config, redactor: createRedactor() });
    slack = createSlackTrigger({ config, store, intake, logger: silentLogger });
    app = createApp({ config, store, intake, logger: silentLogger, slack });
    await slack.start();
  });

  after(async () => {
    await slack.stop();
    store.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const envelope = (id: string, retry: number) => ({
    envelope_id: id,
    type: 'events_api',
    accepts_response_payload: false,
    retry_attempt: retry,
    retry_reason: retry ? 'timeout' : '',
    payload: fixture('event_callback_app_mention_in_thread_camunda_docs.json'),
  });

  it('registers no HTTP route', async () => {
    assert.equal((await app.request('/slack/events', { method: 'POST', body: '{}' })).status, 404);
  });

  it('files an app_mention before acking its envelope, then replies in the thread', async () => {
    stub.send(envelope('env-1', 0));
    await until('ack of env-1', () => stub.received.find((m) => m.envelope_id === 'env-1'));
    const t = store.listTickets()[0];
    assert.ok(t, 'ticket stored by the time the ack went out');
    assert.deepEqual(t.reporter, { kind: 'slack', id: 'XXXXXXXX', thread: 'XXXXXXXX:1687864866.335329' });
    const posted = await until('reply', () => stub.posted[0]);
    assert.equal(posted.thread_ts, '1687864866.335329');
    assert.match(posted.text, new RegExp(`I opened ticket #${t.id}`));
    await until('thread in the ticket', () => store.getTicket(t.id)!.message.includes('three for the land'));
  });

  it('does not ack an event it could not store; the redelivery is filed and acked', async () => {
    const payload = fixture('event_callback_app_mention_in_thread_camunda_docs.json') as { event_id: string; event: { ts: string } };
    const other = { ...payload, event_id: 'Ev-not-stored', event: { ...payload.event, ts: '1687864999.000100' } };
    const accept = intake.accept.bind(intake);
    let refused = 0;
    intake.accept = () => {
      refused++;
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    const events = store.countEvents();
    stub.send({ ...envelope('env-3', 0), payload: other });
    // The refusal itself is awaited (a slow machine may not have read the envelope yet when
    // the store is made to work again); the window after it is for an ack that must not come.
    await until('the store to refuse env-3', () => refused > 0, 30_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(stub.received.find((m) => m.envelope_id === 'env-3'), undefined, 'not acknowledged: Slack sends it again');
    intake.accept = accept;
    stub.send({ ...envelope('env-4', 1), payload: other });
    await until('ack of env-4', () => stub.received.find((m) => m.envelope_id === 'env-4'));
    assert.equal(store.countEvents(), events + 1, 'the redelivered mention is filed, once');
  });

  it('acks a redelivered envelope of the same event and files nothing new', async () => {
    const events = store.countEvents();
    const replies = stub.posted.length;
    stub.send(envelope('env-2', 1));
    await until('ack of env-2', () => stub.received.find((m) => m.envelope_id === 'env-2'));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(store.countEvents(), events);
    assert.equal(stub.posted.length, replies);
  });
});

describe('bugbot start with Slack Socket Mode', () => {
  it('a Socket Mode connection Slack refuses refuses the start, naming Slack, and leaves nothing running', async (t) => {
    const stub = new SlackStub();
    const apiUrl = await stub.listen();
    const home = mkdtempSync(join(tmpdir(), 'bugbot-slack-start-'));
    t.after(async () => {
      await stub.close();
      rmSync(home, { recursive: true, force: true });
    });
    const config = loadConfig({
      // Not the app-level token the stub knows: apps.connections.open answers invalid_auth.
      env: { SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_APP_TOKEN: 'xapp-revoked-token' },
      flags: { home, server: { port: 0 }, triggers: { slack: { apiUrl, socketMode: true } } },
      cwd: home,
    });
    const lines: string[] = [];
    let err: unknown;
    try {
      const running = await startServer(config, silentLogger, (l) => lines.push(l));
      await running.stop();
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof StartRefused, `refused, not ${String(err)}`);
    assert.match(err.message, /^Slack Socket Mode could not connect: invalid_auth \(is SLACK_APP_TOKEN an app-level token of this app/);
    assert.deepEqual(lines, [], 'no banner: bugbot did not start');
    // Everything it had started is stopped: the home is free for the next start.
    const lock = lockHome(home);
    assert.ok(lock, 'the home lock is released');
    lock.release();
    assert.equal(readServerInfo(home), null, 'no server.json left behind');
  });
});

// Review finding: a mention held for its thread when bugbot was stopped or killed was
// triaged on the mention alone once its hold ended, and nobody read its thread or answered
// in it: the person who asked never heard back, and the report lacked the thread.
describe('bugbot start after a kill -9 while a mention was held for its thread', () => {
  const stub = new SlackStub();
  const env = { SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: BOT_TOKEN };
  let apiUrl: string;

  before(async () => {
    apiUrl = await stub.listen();
  });
  after(() => stub.close());

  const readsOf = (channel: string) => stub.repliesCalls.filter((c) => c.channel === channel).length;
  const postsTo = (channel: string) => stub.posted.filter((p) => p.channel === channel);

  /** A signed app_mention to a running bugbot, answered with what it filed. */
  async function mentionTo(url: string, eventId: string, event: Record<string, unknown>): Promise<number> {
    const base = fixture('event_callback_app_mention_in_thread_camunda_docs.json');
    const body = JSON.stringify({ ...base, event_id: eventId, event: { ...(base.event as object), ...event } });
    const ts = String(Math.floor(Date.now() / 1000));
    const res = await fetch(`${url}/slack/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': ts, 'x-slack-signature': 'v0=' + createHmac('sha256', SECRET).update(`v0:${ts}:${body}`).digest('hex') },
      body,
    });
    assert.equal(res.status, 200, await res.clone().text());
    const reply = (await res.json()) as { results: { status: string; ticket: number }[] };
    assert.equal(reply.results[0]!.status, 'created');
    return reply.results[0]!.ticket;
  }

  /**
   * `bugbot start` (a process of its own) with the Slack trigger: files a mention in
   * `channel` and is killed (SIGKILL) while that mention's thread is being read, before its
   * ticket is triaged or anyone answered. `beforeKill` runs first, against the same process.
   */
  async function killedWhileHeld(t: TestContext, channel: string, text: string, beforeKill?: (url: string) => Promise<void>) {
    const dir = tempDir(t, 'bugbot-slack-held-');
    const configPath = join(dir, 'bugbot.config.json');
    writeFileSync(configPath, JSON.stringify({ home: join(dir, 'home'), triggers: { slack: { apiUrl } } }));
    const first = await startBugbot(t, { configPath, env });
    await beforeKill?.(first.url);
    let release!: () => void;
    stub.hold = new Promise<void>((r) => (release = r));
    try {
      const ticketId = await mentionTo(first.url, `Ev${channel}`, { channel, user: 'U0JAY', ts: '1700002001.000100', thread_ts: '1700002000.000100', text: `<@${BOT_USER}> ${text}` });
      await until('the thread read under way', () => readsOf(channel) > 0, 10_000);
      first.proc.kill('SIGKILL');
      assert.equal((await first.exited).signal, 'SIGKILL');
      return { dir, configPath, ticketId };
    } finally {
      stub.hold = undefined;
      release();
    }
  }

  it('reads the thread and answers in it at the next start, once; a mention answered before the kill is not answered again', { timeout: 90_000 }, async (t) => {
    stub.threads.set('CHELD00001', [
      { type: 'message', user: 'U0IVY', text: "checkout is down for everyone:\nTypeError: Cannot read properties of undefined (reading 'total')\n    at cartTotal (src/cart.ts:41:12)", ts: '1700002000.000100' },
      { type: 'message', user: 'U0JAY', text: `<@${BOT_USER}> what is going on here?`, ts: '1700002001.000100' },
    ]);
    const { dir, configPath, ticketId } = await killedWhileHeld(t, 'CHELD00001', 'what is going on here?', async (url) => {
      // The first process got as far as answering this one.
      await mentionTo(url, 'EvANSWERED', { channel: 'CANSWER001', user: 'U0KIM', ts: '1700002101.000100', thread_ts: '1700002100.000100', text: `<@${BOT_USER}> the search page 500s` });
      await until('the answer before the kill', () => postsTo('CANSWER001').length > 0, 10_000);
    });
    const reads = readsOf('CHELD00001');
    const answeredReads = readsOf('CANSWER001');

    const config = loadConfig({ env, path: configPath, cwd: dir, flags: { server: { port: 0 } } });
    let server = await startServer(config, silentLogger, () => undefined);
    let stopped = false;
    t.after(() => (stopped ? undefined : server.stop()));
    const posted = await until('the answer after the restart', () => postsTo('CHELD00001')[0], 10_000);
    assert.ok(readsOf('CHELD00001') > reads, 'the thread was read again');
    const ticket = server.services.store.getTicket(ticketId)!;
    assert.match(ticket.message, /TypeError: Cannot read properties of undefined/, 'the report holds the thread');
    assert.equal(ticket.classification, 'bug', ticket.triageReason ?? '');
    assert.equal(ticket.state, 'queued', 'triaged on the thread');
    assert.equal(posted.thread_ts, '1700002000.000100');
    assert.match(posted.text, new RegExp(`^Thanks — I opened ticket #${ticketId} \\(queued, `));
    await server.stop();
    stopped = true;
    assert.equal(postsTo('CHELD00001').length, 1);
    assert.equal(postsTo('CANSWER001').length, 1, 'the mention answered before the kill is not answered again');
    assert.equal(readsOf('CANSWER001'), answeredReads, 'nor its thread read again');

    // The start after: everything was answered.
    const heldReads = readsOf('CHELD00001');
    server = await startServer(config, silentLogger, () => undefined);
    stopped = false;
    await server.stop();
    stopped = true;
    assert.equal(postsTo('CHELD00001').length, 1, 'answered once');
    assert.equal(readsOf('CHELD00001'), heldReads);
    assert.equal(postsTo('CANSWER001').length, 1);
  });

  /**
   * In this process: what an earlier process left, a mention in `channel` filed and held for
   * its thread (as admit() files it), unanswered. Returns its ticket.
   */
  function heldByLastProcess(store: Store, intake: Intake, channel: string, text: string): number {
    const mention: Mention = { eventId: `EvLEFT${channel}`, user: 'U0LEE', text: `<@${BOT_USER}> ${text}`, channel, ts: '1700003001.000100', threadTs: '1700003000.000100' };
    const [r] = intake.accept([mentionEvent(mention, { userId: BOT_USER, botId: BOT_ID }, store.now())], { holdSeconds: 90, holdNote: { source: 'slack', note: heldNote(mention) } });
    assert.equal(r!.status, 'created');
    assert.equal(r!.state, 'settling');
    return r!.ticketId!;
  }

  /** A Store, an Intake and a Slack trigger (Events API mode) on a fresh home, logging into `lines`. */
  function inProcess(t: TestContext, lines: string[] = []) {
    const dir = tempDir(t, 'bugbot-slack-resume-');
    const config = loadConfig({ env, flags: { home: dir, triggers: { slack: { apiUrl } } }, cwd: dir });
    const store = new Store(join(dir, 'bugbot.db'));
    const intake = new Intake({ store, config, redactor: createRedactor() });
    const logger = createLogger({ level: 'info', write: (l) => lines.push(l) });
    t.after(() => store.close());
    return { store, intake, trigger: () => createSlackTrigger({ config, store, intake, logger }) };
  }

  // Review finding: a resumed mention had its thread read into its ticket (threadRead replaced
  // the text) even when the ticket was decided already: by the last process, the CLI, or its
  // hold's end while Socket Mode took its time to connect.
  it('answers a resumed mention whose ticket was decided since with its state, and neither reads the thread into it nor triages it again', async (t) => {
    const { store, intake, trigger } = inProcess(t);
    stub.threads.set('CDECIDED01', [
      { type: 'message', user: 'U0IVY', text: "TypeError: Cannot read properties of undefined (reading 'total')", ts: '1700003000.000100' },
      { type: 'message', user: 'U0LEE', text: `<@${BOT_USER}> the cart page 500s`, ts: '1700003001.000100' },
    ]);
    const ticketId = heldByLastProcess(store, intake, 'CDECIDED01', 'the cart page 500s');
    // Its hold ended: triaged on the mention alone, before this start answered it.
    const decided = intake.threadRead(ticketId);
    assert.notEqual(decided.state, 'settling');
    const before = store.getTicket(ticketId)!;
    const slack = trigger();
    t.after(() => slack.stop());
    await slack.start();
    const posted = await until('the answer', () => postsTo('CDECIDED01')[0], 10_000);
    await slack.stop();
    assert.match(posted.text, new RegExp(`^Thanks — I opened ticket #${ticketId} \\(${decided.state}, `));
    const now = store.getTicket(ticketId)!;
    assert.equal(now.message, 'the cart page 500s', 'the text it was decided on stays');
    assert.doesNotMatch(now.message, /TypeError/);
    assert.equal(now.state, before.state);
    assert.equal(now.classification, before.classification);
    assert.equal(now.triageReason, before.triageReason);
    assert.equal(readsOf('CDECIDED01'), 0, 'its thread is not read');
    assert.deepEqual(store.heldReports('slack'), [], 'answered: released');
  });

  // Review finding: a failed answer released the held mention unless a stop had cut a wait
  // short, so a moment's network trouble lost the answer for good.
  it('keeps a held mention whose answer met a network error for the next start; releases one Slack refused for good', { timeout: 30_000 }, async (t) => {
    const lines: string[] = [];
    const { store, intake, trigger } = inProcess(t, lines);
    stub.failPosts.set('CRESET0001', 'reset');
    stub.failPosts.set('CGONE00001', 'channel_not_found');
    t.after(() => stub.failPosts.clear());
    const reset = heldByLastProcess(store, intake, 'CRESET0001', 'search is down');
    const gone = heldByLastProcess(store, intake, 'CGONE00001', 'login is down');
    const slack = trigger();
    t.after(() => slack.stop());
    await slack.start();
    const failed = (ticket: number) => lines.some((l) => (JSON.parse(l) as { ticket?: number; msg: string }).ticket === ticket && /could not reply/.test(l));
    // Waited for before the stop: a stop's cut-short wait is not what is tested here.
    await until('both answers failed', () => failed(reset) && failed(gone), 20_000);
    await slack.stop();
    assert.ok(stub.postAttempts.includes('CRESET0001') && stub.postAttempts.includes('CGONE00001'), stub.postAttempts.join(' '));
    assert.deepEqual(store.heldReports('slack').map((h) => h.ticketId), [reset], lines.join('\n'));

    // The next start answers it, and only it.
    stub.failPosts.clear();
    const next = trigger();
    t.after(() => next.stop());
    await next.start();
    const posted = await until('the answer at the next start', () => postsTo('CRESET0001')[0], 10_000);
    await next.stop();
    assert.match(posted.text, new RegExp(`ticket #${reset}\\b`));
    assert.equal(postsTo('CGONE00001').length, 0);
    assert.deepEqual(store.heldReports('slack'), []);
  });

  it('triages a held mention at once when Slack is off at the next start, and says why in the log', { timeout: 60_000 }, async (t) => {
    const { dir, configPath, ticketId } = await killedWhileHeld(t, 'CHELD00002', 'the cart page 500s');
    const reads = readsOf('CHELD00002');
    const lines: string[] = [];
    // The bot token is gone: the Slack trigger is off.
    const config = loadConfig({ env: { SLACK_SIGNING_SECRET: SECRET }, path: configPath, cwd: dir, flags: { server: { port: 0 } } });
    const server = await startServer(config, createLogger({ level: 'info', write: (l) => lines.push(l) }), () => undefined);
    let stopped = false;
    t.after(() => (stopped ? undefined : server.stop()));
    const ticket = await until('the ticket triaged', () => {
      const now = server.services.store.getTicket(ticketId)!;
      return now.state !== 'settling' && now;
    }, 5_000);
    assert.equal(ticket.state, 'queued', ticket.triageReason ?? '');
    assert.equal(ticket.message, 'the cart page 500s', 'triaged on the mention alone');
    const said = lines.map((l) => JSON.parse(l) as { level: string; msg: string; ticket?: number }).find((l) => l.ticket === ticketId && /thread/.test(l.msg));
    assert.ok(said, lines.join('\n'));
    assert.equal(said.level, 'warn');
    assert.match(said.msg, /SLACK_BOT_TOKEN is not set/);
    await server.stop();
    stopped = true;
    assert.equal(readsOf('CHELD00002'), reads, 'no thread read without Slack');
    assert.equal(postsTo('CHELD00002').length, 0);
  });
});

describe('createSlackTrigger', () => {
  it('refuses Socket Mode without an app-level token', () => {
    const options = { env: { SLACK_BOT_TOKEN: BOT_TOKEN }, flags: { home: tmpdir(), triggers: { slack: { socketMode: true } } }, cwd: tmpdir() };
    // Named with the config's other problems before start (config.test.ts); the trigger checks too.
    assert.throws(() => loadConfig(options), /socketMode is on but SLACK_APP_TOKEN/);
    const config = loadConfig({ ...options, serving: false });
    const store = new Store(':memory:');
    try {
      const intake = new Intake({ store, config, redactor: createRedactor() });
      assert.throws(() => createSlackTrigger({ config, store, intake, logger: silentLogger }), /socketMode is on but SLACK_APP_TOKEN/);
    } finally {
      store.close();
    }
  });
});

// Review finding: with the app's Verification Token pasted as the signing secret (or the
// clock minutes off), every request Slack sent was refused with a 401 logged at debug
// only: mentions went unanswered and the log said nothing.
describe('Slack requests refused for a wrong signing secret or clock', () => {
  it('says so at warn, naming the variable, at most every 10 minutes; requests without Slack headers stay quiet', async (t) => {
    const dir = tempDir(t, 'bugbot-slack-refused-');
    const clock = new FakeClock(Date.now());
    const config = loadConfig({ env: { SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: BOT_TOKEN }, flags: { home: dir }, cwd: dir });
    const store = new Store(join(dir, 'bugbot.db'), { now: clock.now });
    t.after(() => store.close());
    const intake = new Intake({ store, config, redactor: createRedactor() });
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', write: (l) => lines.push(l) });
    const slack = createSlackTrigger({ config, store, intake, logger });
    t.after(() => slack.stop());
    const app = createApp({ config, store, intake, logger: silentLogger, slack });
    const body = fixtureText('url_verification_zulip.json');
    const post = (secret: string, skewSeconds = 0) => {
      const ts = String(Math.floor(clock.now().getTime() / 1000) - skewSeconds);
      const signature = 'v0=' + createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex');
      return app.request('/slack/events', { method: 'POST', headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': ts, 'x-slack-signature': signature }, body });
    };
    const warned = () => lines.filter((l) => l.includes('"level":"warn"') && l.includes('slack request refused'));

    // The Verification Token where the Signing Secret belongs.
    assert.equal((await post('Jhj5dZrVaK7ZwHHjRyZWjbDl')).status, 401);
    assert.equal(warned().length, 1, lines.join('\n'));
    assert.match(warned()[0]!, /SLACK_SIGNING_SECRET/);
    assert.match(warned()[0]!, /X-Slack-Signature does not match/);
    assert.ok(!lines.join('\n').includes(SECRET), 'the secret is never logged');
    assert.equal((await post('Jhj5dZrVaK7ZwHHjRyZWjbDl')).status, 401);
    assert.equal(warned().length, 1, 'not again within 10 minutes');

    clock.advance(11 * 60);
    const unsigned = await app.request('/slack/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(unsigned.status, 401);
    assert.equal(warned().length, 1, 'a request without Slack headers is nobody to tell the operator about');
    // The clock 7 minutes off.
    assert.equal((await post(SECRET, 420)).status, 401);
    assert.equal(warned().length, 2);
    assert.match(warned()[1]!, /stale request: X-Slack-Request-Timestamp is 420 s from now/);
    assert.equal((await post(SECRET)).status, 200);
    assert.equal(warned().length, 2);
  });
});

describe('formatThread', () => {
  const m: Mention = { eventId: 'Ev1', user: 'U2', text: '<@UBOT> please look', channel: 'C1', ts: '3.0', threadTs: '1.0' };
  const bot = { userId: 'UBOT', botId: 'B1' };

  it('orders oldest first, drops the bot, strips its mention, keeps the mention', () => {
    const out = formatThread(
      [
        { ts: '2.0', user: 'UBOT', botId: 'B1', text: 'I am the bot' },
        { ts: '1.0', user: 'U1', text: 'checkout fails\nwith a 500' },
        { ts: '2.5', user: 'U3', text: 'cc <@U1> and <@UBOT|bugbot>' },
      ],
      m,
      bot,
    );
    assert.deepEqual(out.text.split('\n'), ['<@U1>: checkout fails', '  with a 500', '<@U3>: cc <@U1> and', '<@U2>: please look']);
    assert.equal(out.messages, 3);
  });

  // Review finding: every app's message was dropped, so a thread under an alerting app's
  // post ("TypeError … 312 events") lost what it was about.
  it("keeps other apps' messages (an alert the thread is about) and drops only the bot's own", () => {
    const out = formatThread(
      [
        { ts: '1.0', botId: 'B0SENTRY', subtype: 'bot_message', text: 'TypeError: total is undefined at checkout.js:42 (312 events)' },
        { ts: '2.0', user: 'UBOT', botId: 'B1', text: 'Thanks — I opened ticket #3' },
        { ts: '2.1', botId: 'B1', subtype: 'bot_message', text: 'ticket #3 fixed' },
      ],
      m,
      bot,
    );
    assert.deepEqual(out.text.split('\n'), ['<app:B0SENTRY>: TypeError: total is undefined at checkout.js:42 (312 events)', '<@U2>: please look']);
    // Until Slack has said who the bot is, no app's message can be told from its own.
    const unknown = formatThread([{ ts: '1.0', botId: 'B0SENTRY', subtype: 'bot_message', text: 'TypeError' }], m, {});
    assert.deepEqual(unknown.text.split('\n'), ['<@U2>: please look']);
  });

  // Review finding: Slack sends the `&`, `<` and `>` people type as `&amp;`, `&lt;` and
  // `&gt;`; the report kept them so, and the agent read "Unexpected token &lt; in JSON".
  it('decodes what Slack escaped (&amp; &lt; &gt;) in the mention and the thread, once, after the markup', () => {
    const out = formatThread(
      [
        { ts: '1.0', user: 'U1', text: 'SyntaxError: Unexpected token &lt; in JSON at position 0' },
        { ts: '2.0', user: 'U3', text: 'const f = () =&gt; a &amp;&amp; b; I typed &amp;lt; literally, cc <@U1> <https://shop.test/a?b=1&amp;c=2|the page>' },
      ],
      { ...m, text: '<@UBOT> same here &lt;3' },
      bot,
    );
    assert.deepEqual(out.text.split('\n'), [
      '<@U1>: SyntaxError: Unexpected token < in JSON at position 0',
      '<@U3>: const f = () => a && b; I typed &lt; literally, cc <@U1> <https://shop.test/a?b=1&c=2|the page>',
      '<@U2>: same here <3',
    ]);
    const e = mentionEvent({ ...m, text: '<@UBOT> SyntaxError: Unexpected token &lt; in JSON\nat &lt;anonymous&gt;' }, bot, new Date('2026-11-21T10:00:00Z'));
    assert.equal(e.title, 'SyntaxError: Unexpected token < in JSON');
    assert.equal(e.message, 'SyntaxError: Unexpected token < in JSON\nat <anonymous>');
  });

  // Review finding: the label of `<@U…|name>` was matched as `[^>]*`, tried from every `<@U…|`
  // to the end of the text: a thread of messages full of them held the event loop for seconds
  // (CLAUDE.md: patterns on untrusted text run in linear time).
  it('strips mentions in time linear in the text, whatever its shape', () => {
    const crafted = '<@U1|'.repeat(8_000); // 40,000 characters: Slack's longest message
    const started = performance.now();
    assert.equal(stripBotMention(crafted, 'UBOT'), crafted);
    const out = formatThread(Array.from({ length: 30 }, (_, i) => ({ ts: `1.${i}`, user: 'U1', text: crafted })), m, bot);
    const ms = performance.now() - started;
    assert.equal(out.messages, 31);
    assert.ok(ms < 1000, `took ${Math.round(ms)} ms`);
    assert.equal(stripBotMention('hi <@UBOT|bugbot> and <@U1|ann>, <@UBOT>!', 'UBOT'), 'hi and <@U1|ann>, !');
  });

  it(`caps a long thread at ${MAX_REPORT_CHARS} characters, keeping its start and its end`, () => {
    const many = Array.from({ length: 500 }, (_, i) => ({ ts: `${i + 1}.0`, user: 'U1', text: `message ${i} ${'x'.repeat(100)}` }));
    const out = formatThread(many, { ...m, ts: '501.0' }, bot);
    assert.ok(out.text.length <= MAX_REPORT_CHARS, `${out.text.length} chars`);
    assert.match(out.text, /^<@U1>: message 0 /);
    assert.match(out.text, /\[… \d+ messages omitted …\]/);
    assert.match(out.text, /<@U2>: please look$/);
  });
});

describe('POST /slack/events without a Slack trigger', () => {
  // Review finding: a Slack app pointed at a bugbot without its token got a bare 404, where
  // the email routes name what to set.
  it('answers 503 naming what to set, or that the trigger is off', async () => {
    for (const [enabled, said] of [
      [true, /^slack trigger is not configured: set SLACK_BOT_TOKEN \(and SLACK_SIGNING_SECRET\)$/],
      [false, /^slack trigger is off \(triggers\.slack\.enabled is false\)$/],
    ] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'bugbot-slack-off-'));
      const config = loadConfig({ env: {}, flags: { home: dir, triggers: { slack: { enabled } } }, cwd: dir });
      const store = new Store(join(dir, 'bugbot.db'));
      const app = createApp({ config, store, intake: new Intake({ store, config, redactor: createRedactor() }), logger: silentLogger });
      const res = await app.request('/slack/events', { method: 'POST', body: '{}' });
      assert.equal(res.status, 503);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, said);
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
