import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, constants as fsConstants, mkdtempSync, openSync, readdirSync, renameSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inAppFrames } from '../../control/intake/fingerprint.ts';
import { createLogParser } from '../../control/triggers/logfile.ts';
import { LogTailer, type LogTailerOptions, type OffsetStore } from '../../control/triggers/logfile-tail.ts';
import { Store } from '../../control/queue/store.ts';
import type { TriggerEvent } from '../../control/types.ts';

/** Feeds text to a fresh parser with real byte offsets, then flushes. */
function parseAll(text: string, file = '/var/log/app.log', service?: string): TriggerEvent[] {
  const p = createLogParser({ file, service, now: () => new Date('2024-05-01T00:00:00Z') });
  const out: TriggerEvent[] = [];
  let offset = 0;
  for (const line of text.split('\n').slice(0, -1)) {
    out.push(...p.push(line, offset));
    offset += Buffer.byteLength(line) + 1;
  }
  return [...out, ...p.flush()];
}

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

describe('log parser: JSON lines', () => {
  test('a pino error among info lines becomes one event with stack, route and service', () => {
    const info = JSON.stringify({ level: 30, time: 1714521600000, name: 'pets-api', msg: 'listening' });
    const error = JSON.stringify({
      level: 50,
      time: 1714521601000,
      name: 'pets-api',
      msg: 'Cannot read properties of undefined (reading "id")',
      req: { method: 'post', url: '/api/pets/123?token=secret' },
      err: { type: 'TypeError', message: 'boom', stack: 'TypeError: boom\n    at handler (/app/src/pets.js:12:20)' },
    });
    const text = `${info}\n${error}\n${info}\n`;
    const events = parseAll(text);
    assert.equal(events.length, 1);
    const [ev] = events;
    assert.ok(ev);
    assert.equal(ev.source, 'logfile');
    assert.equal(ev.kind, 'error');
    assert.equal(ev.human, false);
    assert.equal(ev.count, 1);
    assert.equal(ev.service, 'pets-api');
    assert.equal(ev.route, 'POST /api/pets/123');
    assert.equal(ev.title, 'Cannot read properties of undefined (reading "id")');
    assert.equal(ev.stack, 'TypeError: boom\n    at handler (/app/src/pets.js:12:20)');
    assert.deepEqual(ev.labels, { file: 'app.log', level: 'error' });
    assert.equal(ev.firstSeen, '2024-05-01T00:00:01.000Z');
    assert.equal(ev.lastSeen, ev.firstSeen);
    assert.equal(ev.sourceEventId, `/var/log/app.log:${info.length + 1}:${sha1(error)}`);
  });

  test('string levels (winston, structlog, severity), fallbacks and non-error lines', () => {
    const lines = [
      { level: 'warn', message: 'slow' },
      { level: 'ERROR', message: 'db down', stack: 'Error: db down', method: 'GET', path: '/health' },
      { severity: 'CRITICAL', message: 'disk full', timestamp: '2024-05-01T10:00:00+02:00', app: 'worker' },
      { event: 'payment failed', level: 'error', exception: 'Traceback (most recent call last):\n...', timestamp: 1714521600 },
      { level: 60, err: { message: 'fatal thing' } },
      { level: 40, msg: 'not an error' },
    ];
    const events = parseAll(lines.map((l) => JSON.stringify(l)).join('\n') + '\n', 'app.log', 'default-svc');
    assert.deepEqual(
      events.map((e) => [e.title, e.labels.level, e.service, e.route ?? null]),
      [
        ['db down', 'error', 'default-svc', 'GET /health'],
        ['disk full', 'critical', 'worker', null],
        ['payment failed', 'error', 'default-svc', null],
        ['fatal thing', 'fatal', 'default-svc', null],
      ],
    );
    assert.equal(events[1]?.firstSeen, '2024-05-01T08:00:00.000Z');
    assert.equal(events[2]?.firstSeen, '2024-05-01T00:00:00.000Z', 'epoch seconds');
    assert.match(events[2]?.stack ?? '', /^Traceback/);
    assert.equal(events[3]?.firstSeen, '2024-05-01T00:00:00.000Z', 'no timestamp: the clock');
  });
});

describe('log parser: the JSON of other loggers', () => {
  test('zap, logstash-logback, ECS, python-json-logger and Serilog: their stacks, times, levels and error words are read', () => {
    const lines = [
      // zap: `stacktrace`, `ts` in epoch seconds, the error a bare string beside msg.
      { level: 'error', ts: 1714521601.5, msg: 'charge failed', error: 'card declined', stacktrace: 'main.charge\n\t/src/pay.go:31' },
      // logstash-logback
      { '@timestamp': '2024-05-01T00:00:02Z', level: 'ERROR', message: 'request failed', stack_trace: 'java.lang.NullPointerException: pet\n\tat com.acme.PetService.get(PetService.java:42)' },
      // ECS (Java/.NET)
      { '@timestamp': '2024-05-01T00:00:03Z', 'log.level': 'error', message: 'request failed', 'error.stack_trace': 'java.lang.IllegalStateException: pool\n\tat com.acme.Pool.take(Pool.java:9)' },
      // python-json-logger
      { asctime: 'x', levelname: 'ERROR', message: 'job failed', exc_info: 'Traceback (most recent call last):\n  File "job.py", line 3, in run\nKeyError: id' },
      // Serilog compact JSON
      { '@t': '2024-05-01T00:00:05Z', '@l': 'Error', '@mt': 'Payment {Id} failed', Id: 7, '@x': 'System.InvalidOperationException: closed\n   at Acme.Pay.Run()' },
      // Serilog's Information has no @l: not an error.
      { '@t': '2024-05-01T00:00:06Z', '@mt': 'listening' },
    ];
    const events = parseAll(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    assert.deepEqual(
      events.map((e) => [e.message, e.stack?.split('\n')[0], e.firstSeen]),
      [
        ['charge failed', 'card declined', '2024-05-01T00:00:01.500Z'],
        ['request failed', 'java.lang.NullPointerException: pet', '2024-05-01T00:00:02.000Z'],
        ['request failed', 'java.lang.IllegalStateException: pool', '2024-05-01T00:00:03.000Z'],
        ['job failed', 'Traceback (most recent call last):', '2024-05-01T00:00:00.000Z'],
        ['Payment {Id} failed', 'System.InvalidOperationException: closed', '2024-05-01T00:00:05.000Z'],
      ],
    );
    // Two different exceptions under one message are two errors, not one.
    assert.notEqual(events[1]!.stack, events[2]!.stack);
  });

  test("a JSON record cut short is read by its own level and message, not a nested object's", () => {
    const p = createLogParser({ file: 'app.log', now: () => new Date('2024-05-01T00:00:00Z') });
    const cut = (o: string) => [...p.push(o, 0, { cut: true }), ...p.flush()];
    assert.deepEqual(cut('{"ctx":{"level":"error","msg":"inner"},"level":"info","msg":"big payload","body":"xxxx'), []);
    assert.deepEqual(cut('{"note":"level \\"error\\" in text","level":"info","body":"xxx'), []);
    assert.deepEqual(cut('{"level":50,"msg":"boom","body":"xxxx').map((e) => e.title), ['boom [line cut: over 0 KiB]']);
  });
});

describe('log parser: levels in plain text', () => {
  test("an exception named in an INFO, WARN or DEBUG record is not an error entry; Apache's [error], logrus's level=error, klog's E-lines and a Rust panic are", () => {
    const text = [
      '2024-01-01 10:00:00 INFO user clicked Error: button label',
      '2024-01-01 10:00:01 INFO retrying after TimeoutException',
      'WARN: retrying TimeoutException',
      'DEBUG no errors found (ERROR count=0)',
      '2015-07-29 17:41:44,747 - INFO  [QuorumPeer] - Got user-level KeeperException when processing',
      '[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6',
      'time="2024-05-01T00:00:07Z" level=error msg="db down"',
      "E1122 10:00:08.000000    1234 reflector.go:138] failed to list pods",
      "thread 'main' panicked at src/main.rs:3:5:",
      'index out of bounds: the len is 3 but the index is 7',
      '[Wed Oct 11 14:32:52.123 2026] [core:error] [pid 123] AH00126: Invalid URI in request',
      '[DEBUG-pool-1] ERROR c.e.Job - failed',
      'I1122 10:00:10.000000    1234 sync.go:50] retrying after Error: timeout',
      '2024-01-01 10:00:09 ERROR payment failed: NullPointerException',
      '',
    ].join('\n');
    assert.deepEqual(
      parseAll(text).map((e) => [e.title, e.labels.level]),
      [
        ['[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6', 'error'],
        ['time="2024-05-01T00:00:07Z" level=error msg="db down"', 'error'],
        ['E1122 10:00:08.000000    1234 reflector.go:138] failed to list pods', 'error'],
        ['index out of bounds: the len is 3 but the index is 7', 'error'],
        ['[Wed Oct 11 14:32:52.123 2026] [core:error] [pid 123] AH00126: Invalid URI in request', 'error'],
        ['[DEBUG-pool-1] ERROR c.e.Job - failed', 'error'],
        ['payment failed: NullPointerException', 'error'],
      ],
    );
  });

  // Review finding: a log written in colour (Spring Boot's ansi.enabled=always, FORCE_COLOR,
  // pm2 keeping a program's colours) hid its level words: the escape before a level ends in
  // the letter `m`, so `\bERROR\b` found no word boundary, a coloured ERROR record was lost
  // and a coloured WARN naming an exception was taken for an error.
  test('colour codes (ANSI escape sequences) are not part of the line: levels are read through them and titles carry none', () => {
    const text = [
      '2024-05-01 10:00:00.123 \x1b[31mERROR\x1b[0;39m \x1b[35m4242\x1b[0;39m --- [nio-8080-exec-1] \x1b[36mo.a.c.c.C.[dispatcherServlet]\x1b[0;39m : Servlet.service() threw exception',
      'java.lang.NullPointerException: Cannot invoke "Pet.getName()" because "pet" is null',
      '\tat com.example.PetController.show(PetController.java:42)',
      '2024-05-01 10:00:01.000 \x1b[33mWARN\x1b[0;39m retrying after TimeoutException',
      '\x1b[1m\x1b[31mERROR\x1b[39m\x1b[22m payment failed',
      '2024-05-01 10:00:02.000 \x1b[32mINFO\x1b[0;39m ok',
      '',
    ].join('\n');
    const events = parseAll(text);
    assert.deepEqual(
      events.map((e) => [e.title, e.labels.level]),
      [
        ['4242 --- [nio-8080-exec-1] o.a.c.c.C.[dispatcherServlet] : Servlet.service() threw exception', 'error'],
        ['payment failed', 'error'],
      ],
    );
    assert.equal(events[0]?.stack, 'java.lang.NullPointerException: Cannot invoke "Pet.getName()" because "pet" is null\n\tat com.example.PetController.show(PetController.java:42)');
    assert.ok(!events.some((e) => JSON.stringify(e).includes('\\u001b')), 'no escape is kept');
  });
});

describe('log parser: plain text', () => {
  test('a Java exception with Caused by and "... N more" is one event, emitted at the next record', () => {
    const trace = [
      '2024-05-01 10:00:00.123 ERROR [http-nio-8080-exec-1] c.e.PetController - Request failed',
      'java.lang.IllegalStateException: pet not found',
      '\tat com.example.PetController.get(PetController.java:42)',
      '\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)',
      'Caused by: java.lang.NullPointerException: null',
      '\tat com.example.PetRepo.find(PetRepo.java:17)',
      '\t... 52 more',
    ];
    const p = createLogParser({ file: 'app.log' });
    let offset = 0;
    for (const line of trace) {
      assert.deepEqual(p.push(line, offset), []);
      offset += Buffer.byteLength(line) + 1;
    }
    assert.equal(p.pendingOffset(), 0);
    const events = p.push('2024-05-01 10:00:01.000 INFO  [main] c.e.App - still alive', offset);
    assert.equal(events.length, 1);
    assert.equal(p.pendingOffset(), undefined);
    const [ev] = events;
    assert.ok(ev);
    assert.equal(ev.title, '[http-nio-8080-exec-1] c.e.PetController - Request failed');
    assert.equal(ev.message.split('\n')[1], 'java.lang.IllegalStateException: pet not found');
    assert.equal(ev.stack, trace.slice(1).join('\n'));
    assert.equal(ev.labels.level, 'error');
    assert.equal(ev.sourceEventId, `app.log:0:${sha1(trace.join('\n') + '\n')}`);
    assert.deepEqual(p.flush(), []);
  });

  test('a Node stack trace is one event, emitted by flush()', () => {
    const trace = [
      "TypeError: Cannot read properties of undefined (reading 'id')",
      '    at getPet (/app/src/routes/pets.js:12:20)',
      '    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)',
      '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
    ];
    const events = parseAll(`server started\n${trace.join('\n')}\n`);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.title, trace[0]);
    assert.equal(events[0]?.stack, trace.join('\n'));
    assert.equal(events[0]?.sourceEventId.split(':')[1], String('server started\n'.length));
  });

  test('a chained Python traceback is one event titled by its final exception line', () => {
    const trace = [
      '2024-05-01 10:00:00,123 ERROR app: checkout failed',
      'Traceback (most recent call last):',
      '  File "/app/shop.py", line 10, in checkout',
      '    price = prices[item]',
      "KeyError: 'sku-1'",
      '',
      'During handling of the above exception, another exception occurred:',
      '',
      'Traceback (most recent call last):',
      '  File "/app/shop.py", line 12, in checkout',
      '    raise ValueError("unknown item")',
      'ValueError: unknown item',
    ];
    const events = parseAll(`${trace.join('\n')}\n\n2024-05-01 10:00:01,000 INFO app: next\n`);
    assert.equal(events.length, 1);
    const [ev] = events;
    assert.ok(ev);
    assert.equal(ev.message, 'app: checkout failed\nValueError: unknown item');
    assert.equal(ev.stack, trace.slice(1).join('\n'), 'blank lines inside kept, trailing ones dropped');
    assert.equal(ev.firstSeen, new Date('2024-05-01T10:00:00.123').toISOString());
  });

  test('an uncaught Python traceback ends at its final line; consecutive records are separate', () => {
    const text = [
      'Traceback (most recent call last):',
      '  File "/app/main.py", line 3, in <module>',
      '    main()',
      'RuntimeError: boom',
      'back to normal',
      'FATAL out of memory',
      'ERROR db unreachable',
      '',
    ].join('\n');
    const events = parseAll(text);
    assert.deepEqual(
      events.map((e) => [e.title, e.labels.level, e.stack?.split('\n').length ?? 0]),
      [
        ['RuntimeError: boom', 'error', 4],
        ['out of memory', 'fatal', 0],
        ['db unreachable', 'error', 0],
      ],
    );
  });

  test("a Go panic on stderr is one event with its goroutines' stacks (function lines unindented), until the next record", () => {
    const text = [
      '2026-11-21T10:00:00Z INFO started',
      'panic: runtime error: invalid memory address or nil pointer dereference',
      '[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a5b6c]',
      '',
      'goroutine 1 [running]:',
      'github.com/acme/pay/api.(*Server).Charge(0xc000010000, {0x1})',
      '\t/src/pay/api/server.go:31 +0x1d',
      'main.main()',
      '\t/src/pay/main.go:10 +0x25',
      'exit status 2',
      '2026-11-21T10:00:01Z INFO restarted',
      'fatal error: all goroutines are asleep - deadlock!',
      '',
    ].join('\n');
    const events = parseAll(text);
    assert.deepEqual(
      events.map((e) => [e.title, e.stack?.split('\n').length ?? 0]),
      [
        ['panic: runtime error: invalid memory address or nil pointer dereference', 9],
        ['fatal error: all goroutines are asleep - deadlock!', 0],
      ],
    );
    assert.deepEqual(inAppFrames(events[0]!.stack!, 5), ['server.go:api.(*Server).Charge', 'main.go:main.main']);
  });

  test("a panic Go's net/http recovered and Ruby's uncaught exception are one event each with their stacks; INFO lines saying panic or Error are not errors", () => {
    const go = [
      '2024/05/01 10:00:00 http: panic serving 10.0.0.1:5678: runtime error: invalid memory address or nil pointer dereference',
      'goroutine 7 [running]:',
      'net/http.(*conn).serve.func1()',
      '\t/usr/local/go/src/net/http/server.go:1898 +0xbe',
      'panic({0x6b5e40?, 0x8c1f40?})',
      '\t/usr/local/go/src/runtime/panic.go:770 +0x132',
      'main.handler({0x7a1b28?, 0xc0001360e0?}, 0xc000150000?)',
      '\t/app/main.go:12 +0x1d',
      'net/http.HandlerFunc.ServeHTTP(0x0?, {0x7a1b28?, 0xc0001360e0?}, 0x0?)',
      '\t/usr/local/go/src/net/http/server.go:2166 +0x29',
      'created by net/http.(*Server).Serve in goroutine 1',
      '\t/usr/local/go/src/net/http/server.go:3285 +0x4b4',
    ];
    // Ruby 3.4 quotes 'method'; earlier versions `method'.
    const ruby = ["/app/cart.rb:12:in 'Cart#total': undefined method 'price' for nil (NoMethodError)", "\tfrom /app/checkout.rb:3:in 'Checkout#run'", "\tfrom /app/main.rb:7:in '<main>'"];
    const ruby33 = ["/app/cart.rb:12:in `total': undefined method `price' for nil:NilClass (NoMethodError)", "\tfrom /app/main.rb:7:in `<main>'"];
    const text = [
      ...go,
      '2024/05/01 10:00:01 INFO http: panic serving 10.0.0.2:1234: recovered, answered 500',
      ...ruby,
      'I, [2024-05-01T10:00:02 #1]  INFO -- : retried after a panic: NoMethodError in the cart (NoMethodError)',
      ...ruby33,
      '2024-05-01 10:00:03 INFO app.rb:12:in block: panic averted (NoMethodError)',
      '',
    ].join('\n');
    const events = parseAll(text);
    assert.deepEqual(
      events.map((e) => [e.title, e.stack]),
      [
        ['http: panic serving 10.0.0.1:5678: runtime error: invalid memory address or nil pointer dereference', go.join('\n')],
        [ruby[0], ruby.join('\n')],
        [ruby33[0], ruby33.join('\n')],
      ],
    );
    assert.deepEqual(inAppFrames(events[0]!.stack!, 5), ['main.go:main.handler']);
  });

  test('a huge stack is capped; the id still covers every line', () => {
    const frames = Array.from({ length: 1000 }, (_, i) => `    at f${i} (/app/x.js:${i}:1)`);
    const [a] = parseAll(`Error: deep\n${frames.join('\n')}\n`);
    const [b] = parseAll(`Error: deep\n${frames.slice(0, 999).join('\n')}\n`);
    assert.ok(a && b);
    const lines = a.stack?.split('\n') ?? [];
    assert.ok(lines.length <= 201, `${lines.length} lines`);
    assert.ok(Buffer.byteLength(a.stack ?? '') <= 32 * 1024);
    assert.match(lines.at(-1) ?? '', /^\.\.\. \d+ more lines truncated$/);
    assert.notEqual(a.sourceEventId, b.sourceEventId);
  });

  test('without offsets the line number is used', () => {
    const p = createLogParser({ file: 'x.log' });
    p.push('hello');
    assert.match(p.push('ERROR nope')[0]?.sourceEventId ?? p.flush()[0]?.sourceEventId ?? '', /^x\.log:2:[0-9a-f]{40}$/);
  });
});

// ---- tailer ----

class MemoryStore implements OffsetStore {
  readonly map = new Map<string, { inode: number; offset: number; generation: number; fingerprint?: string }>();
  get(path: string) {
    return this.map.get(path);
  }
  set(path: string, inode: number, offset: number, generation = 0, fingerprint?: string) {
    this.map.set(path, { inode, offset, generation, ...(fingerprint === undefined ? {} : { fingerprint }) });
  }
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LogTailer', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function setup(over: Partial<LogTailerOptions> = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'bugbot-logfile-'));
    const file = join(dir, 'app.log');
    const store = new MemoryStore();
    const got: { events: TriggerEvent[]; file: string; offset: number }[] = [];
    const logs: string[] = [];
    const logger = { info: (m: string) => logs.push(`info ${m}`), warn: (m: string) => logs.push(`warn ${m}`) };
    const make = (o: Partial<LogTailerOptions> = {}) => {
      const t = new LogTailer({
        files: [file],
        store,
        pollMs: 10,
        // Short, so single-line records (held in case a stack follows) come out quickly.
        idleFlushMs: 20,
        rotateWaitMs: 30,
        logger,
        onEvents: (events, f, offset) => void got.push({ events, file: f, offset }),
        ...over,
        ...o,
      });
      cleanups.push(() => t.stop());
      return t;
    };
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const titles = () => got.flatMap((g) => g.events.map((e) => e.title));
    return { dir, file, store, got, logs, make, titles };
  }

  test('starts at the end of an existing file and picks up appended lines', async () => {
    const { file, store, got, make, titles } = setup();
    writeFileSync(file, 'ERROR old news\nINFO ok\n');
    const t = make();
    t.start();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, 'ERROR first\nINFO fine\n');
    await waitFor(() => got.length === 1, 'first event');
    appendFileSync(file, JSON.stringify({ level: 'error', message: 'second' }) + '\n');
    await waitFor(() => got.length === 2, 'second event');
    await t.stop();
    await t.stop();
    assert.deepEqual(titles(), ['first', 'second']);
    assert.equal(got[0]?.file, file);
    assert.equal(store.get(file)?.offset, statSync(file).size);
    assert.equal(store.get(file)?.inode, statSync(file).ino);
  });

  test('a line past 1 MB is one line: its head parsed once (a JSON record by its level and message), the rest skipped to its newline', async () => {
    const { file, store, got, make, titles } = setup();
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    const big = 'x'.repeat(3 * 1024 * 1024);
    appendFileSync(file, `${JSON.stringify({ level: 'error', msg: 'big payload failed', body: big })}\n`);
    appendFileSync(file, `ERROR start ${big} Error: tail\n`);
    appendFileSync(file, `INFO ${big} Exception in the skipped part\n`);
    appendFileSync(file, 'ERROR after the long lines\n');
    await waitFor(() => titles().includes('after the long lines'), 'the line after', 10_000);
    await t.stop();
    assert.deepEqual(
      titles().map((x) => x.slice(0, 30)),
      ['big payload failed [line cut: ', `start ${'x'.repeat(24)}`, 'after the long lines'],
    );
    assert.equal(got.flatMap((g) => g.events).length, 3, 'no piece of a long line read as a line of its own');
  });

  test('a long line cut off by a truncation (copytruncate) or a restart mid-line: what follows is read as it should be', async () => {
    const { file, store, make, titles } = setup();
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, `INFO ${'y'.repeat(1536 * 1024)}`);
    await waitFor(() => (store.get(file)?.offset ?? -1) === 0 && titles().length === 0, 'the head of the long line read');
    await sleep(50);
    truncateSync(file, 0);
    appendFileSync(file, 'ERROR payment service down\n');
    await waitFor(() => titles().includes('payment service down'), 'the error after the truncation', 10_000);
    // A restart in the middle of a long line goes on skipping it: its tail is no line of its own.
    appendFileSync(file, `INFO ${'z'.repeat(1536 * 1024)}`);
    await sleep(100);
    await t.stop();
    const again = make();
    again.start();
    appendFileSync(file, ' and the rest mentions an ERROR here\nERROR second error\n');
    await waitFor(() => titles().includes('second error'), 'the error after the long line', 10_000);
    await again.stop();
    assert.deepEqual(titles(), ['payment service down', 'second error']);
  });

  test('a line written in two writes is parsed once complete', async () => {
    const { file, store, got, make, titles } = setup();
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    const line = JSON.stringify({ level: 50, msg: 'split in two', name: 'svc' });
    appendFileSync(file, line.slice(0, 20));
    await sleep(50);
    assert.equal(got.length, 0);
    assert.equal(store.get(file)?.offset, 0, 'the partial line is not committed');
    appendFileSync(file, `${line.slice(20)}\n`);
    await waitFor(() => got.length === 1, 'event');
    await t.stop();
    assert.deepEqual(titles(), ['split in two']);
    assert.equal(got[0]?.offset, Buffer.byteLength(line) + 1);
  });

  test('follows rotation: drains the renamed file, then reads the new one from byte 0', async () => {
    const { file, store, got, make, titles } = setup();
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    const oldInode = statSync(file).ino;
    appendFileSync(file, 'ERROR before rotation\n');
    renameSync(file, `${file}.1`);
    appendFileSync(`${file}.1`, 'ERROR late write to the old file\n');
    writeFileSync(file, 'ERROR in the new file\n');
    await waitFor(() => titles().length === 3, 'three events');
    await t.stop();
    assert.deepEqual(titles().sort(), ['before rotation', 'in the new file', 'late write to the old file']);
    // The new file's first line is at offset 0 like the old one's: the inode and the path's
    // next generation tell them apart (the new file may get an inode an earlier one had).
    const newInode = statSync(file).ino;
    assert.match(got.at(-1)?.events[0]?.sourceEventId ?? '', new RegExp(`app\\.log:${newInode}\\.1:0:`));
    const firstOld = got.flatMap((g) => g.events).find((e) => e.title === 'before rotation')!;
    assert.match(firstOld.sourceEventId, new RegExp(`app\\.log:${oldInode}:0:`));
    assert.notEqual(store.get(file)?.inode, oldInode);
    assert.equal(store.get(file)?.offset, statSync(file).size);
  });

  test('a truncated file is read again from the start', async () => {
    const { file, store, make, titles } = setup();
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, 'ERROR a fairly long line before the truncation\n');
    await waitFor(() => titles().length === 1, 'first');
    writeFileSync(file, 'ERROR short\n');
    await waitFor(() => titles().length === 2, 'second');
    await t.stop();
    assert.deepEqual(titles(), ['a fairly long line before the truncation', 'short']);
  });

  test('after a truncation in place (copytruncate) the same line at the same offset is a new event, across restarts too', async () => {
    const { file, store, got, make, titles } = setup();
    writeFileSync(file, '');
    const first = make();
    first.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    const inode = statSync(file).ino;
    const line = 'ERROR payment failed: card declined\n';
    appendFileSync(file, line);
    await waitFor(() => titles().length === 1, 'first');
    truncateSync(file, 0);
    await waitFor(() => store.get(file)?.generation === 1, 'the truncation seen');
    appendFileSync(file, line);
    await waitFor(() => titles().length === 2, 'the same line again');
    await first.stop();
    const ids = got.flatMap((g) => g.events.map((e) => e.sourceEventId));
    assert.match(ids[0]!, new RegExp(`app\\.log:${inode}:0:`), 'the first generation keeps the ids it always had');
    assert.match(ids[1]!, new RegExp(`app\\.log:${inode}\\.1:0:`));
    assert.notEqual(ids[0], ids[1], 'two occurrences, not a duplicate');
    // Truncated again while nothing was watching: the next start counts that generation too.
    truncateSync(file, 0);
    const second = make();
    second.start();
    await waitFor(() => store.get(file)?.generation === 2, 'the truncation found at the start');
    appendFileSync(file, line);
    await waitFor(() => titles().length === 3, 'the line after the restart');
    await second.stop();
    assert.match(got.at(-1)!.events[0]!.sourceEventId, new RegExp(`app\\.log:${inode}\\.2:0:`));
    assert.equal(store.get(file)?.generation, 2);
  });

  test('regression: copytruncate while stopped, the file grown back past the saved offset, is read from its start as a new generation', async () => {
    const { file, store, make, titles, logs } = setup();
    writeFileSync(file, '');
    const first = make();
    first.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, '2024-05-01 00:00:01 ERROR before the rotation\n2024-05-01 00:00:02 INFO fine\n');
    await waitFor(() => store.get(file)?.offset === statSync(file).size, 'all read');
    await first.stop();
    const saved = store.get(file)!;
    assert.ok(saved.fingerprint, 'the offset is saved with what comes before it');
    // The nightly copytruncate, then more written than there was when the watcher stopped.
    truncateSync(file, 0);
    appendFileSync(file, `2024-05-02 00:00:01 ERROR after the rotation\n${'2024-05-02 00:00:02 INFO padding the file out\n'.repeat(3)}`);
    assert.ok(statSync(file).size > saved.offset);
    const second = make();
    second.start();
    await waitFor(() => titles().length === 2, 'the error written since the rotation');
    await second.stop();
    assert.deepEqual(titles(), ['before the rotation', 'after the rotation']);
    assert.equal(store.get(file)?.generation, saved.generation + 1, 'its ids are not the old content\'s');
    assert.ok(logs.some((l) => l.includes('truncated while not followed')));
  });

  // Review finding: a program whose log is its stdout redirected with `>` (not `>>`) writes
  // on at its own offset after a copytruncate, and the file starts with a hole of NUL bytes
  // as long as it was: the first line after the hole was titled with NULs, and after a hole
  // past 1 MiB it was skipped as the tail of an overlong line.
  test('regression: after a copytruncate under a writer without O_APPEND, the NUL bytes before its next line are skipped', async () => {
    const { file, store, make, titles } = setup();
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    const writer = openSync(file, 'r+');
    cleanups.push(() => closeSync(writer));
    let at = 0;
    const write = (text: string) => {
      at += writeSync(writer, text, at);
    };
    for (const size of [4 * 1024, 1536 * 1024]) {
      write(`2024-05-01 00:00:00 ERROR before a ${size}-byte hole\n`);
      while (at < size) write('2024-05-01 00:00:01 INFO request served\n');
      await waitFor(() => store.get(file)?.offset === at, 'all read');
      truncateSync(file, 0);
      write(`2024-05-01 00:00:02 ERROR after a ${size}-byte hole\n`);
      await waitFor(() => titles().includes(`after a ${size}-byte hole`), 'the line after the hole', 10_000);
    }
    await t.stop();
    // Each line once, in order, no NUL in a title. A read the tailer had under way when the
    // file was cut may return the line written after the hole, at the old offset, before the
    // cut is seen: that line is then read again from the start (a race the writer's and the
    // tailer's timing decide, as in production).
    assert.deepEqual([...new Set(titles())], ['before a 4096-byte hole', 'after a 4096-byte hole', 'before a 1572864-byte hole', 'after a 1572864-byte hole']);
    assert.ok(titles().every((x) => !x.includes('\0')));
  });

  test('an offset saved without a fingerprint (older state) is trusted as it is', async () => {
    const { file, store, make, titles, logs } = setup();
    writeFileSync(file, 'ERROR read before the upgrade\nINFO ok\n');
    store.map.set(file, { inode: statSync(file).ino, offset: statSync(file).size, generation: 0 });
    appendFileSync(file, 'ERROR after the upgrade\n');
    const t = make();
    t.start();
    await waitFor(() => titles().length === 1, 'the appended error');
    await t.stop();
    assert.deepEqual(titles(), ['after the upgrade']);
    assert.equal(store.get(file)?.generation, 0);
    assert.ok(!logs.some((l) => l.includes('truncated')));
  });

  test('regression: truncated and grown back past where it was between two polls, it is read from its start', async () => {
    const where = { file: '' };
    const delivered: string[] = [];
    const { file, store, make, logs } = setup({
      onEvents: (events) => {
        delivered.push(...events.map((e) => e.title));
        // Inside the tailer's poll, after its last read: the next poll is the first to see
        // the file again, and it is longer than before.
        if (delivered.length === 1) {
          truncateSync(where.file, 0);
          appendFileSync(where.file, `2024-05-02 00:00:01 ERROR after the rotation\n${'2024-05-02 00:00:02 INFO padding the file out\n'.repeat(3)}`);
        }
      },
    });
    where.file = file;
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, '2024-05-01 00:00:01 ERROR before the rotation\n');
    await waitFor(() => delivered.length === 2, 'the error written after the truncation');
    await t.stop();
    assert.deepEqual(delivered, ['before the rotation', 'after the rotation']);
    assert.equal(store.get(file)?.generation, 1);
    assert.ok(logs.some((l) => l.includes('was truncated')));
  });

  test('regression: rename rotation: what the application writes to the renamed file before it reopens its log is read, before the new file', async () => {
    const where = { file: '' };
    const { file, store, make, titles } = setup({
      rotateWaitMs: 100,
      logger: {
        info: (m: string) => {
          // Written right when the rename is seen, in the poll that saw it: an application
          // reloaded by postrotate a moment after the rename.
          if (m.includes('was rotated')) appendFileSync(`${where.file}.1`, 'ERROR written to the old file after the rename\n');
        },
        warn: () => undefined,
      },
    });
    where.file = file;
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, 'ERROR before the rotation\n');
    await waitFor(() => titles().length === 1, 'the first error');
    renameSync(file, `${file}.1`);
    writeFileSync(file, 'ERROR in the new file\n');
    await waitFor(() => titles().includes('in the new file'), 'the new file read');
    await t.stop();
    assert.deepEqual(titles(), ['before the rotation', 'written to the old file after the rename', 'in the new file'], 'each once, the old file first');
    assert.equal(store.get(file)?.inode, statSync(file).ino);
    assert.equal(store.get(file)?.offset, statSync(file).size);
  });

  // Review finding: an application that never reopens its log (stdout redirected to the
  // file, no postrotate reload) goes on writing to the renamed file; once that file was
  // closed, its errors were dropped without a word.
  test('a renamed file still written to when its wait ends is named in a warning: the application does not reopen its log', async () => {
    const { file, logs, make, titles } = setup({ rotateWaitMs: 200 });
    writeFileSync(file, '');
    const t = make();
    t.start();
    appendFileSync(file, 'ERROR before the rotation\n');
    await waitFor(() => titles().length === 1, 'the first error');
    renameSync(file, `${file}.1`);
    writeFileSync(file, '');
    for (let i = 0; !logs.some((l) => l.includes('closed the old')); i++) {
      appendFileSync(`${file}.1`, '2024-05-01 00:00:01 INFO still here\n');
      await sleep(20);
      assert.ok(i < 200, 'the old file is closed');
    }
    await t.stop();
    assert.deepEqual(
      logs.filter((l) => l.startsWith('warn')).map((l) => l.replace(/\d+ ms/, 'N ms')),
      [`warn logfile: ${file} was renamed, and the renamed file was still written to N ms later: the application does not reopen its log, and what it writes there from now on is not read (have it reopen its log after a rotation, with a postrotate reload, or rotate with copytruncate)`],
    );
  });

  // The waits were timed on the wall clock: NTP stepping it an hour forward ended the old
  // file's wait at once, and what the application still wrote to it was never read.
  test("a step of the wall clock does not cut the renamed file's wait short", async (t) => {
    const { file, titles, logs, make } = setup({ rotateWaitMs: 60_000 });
    writeFileSync(file, '');
    const tail = make();
    tail.start();
    appendFileSync(file, 'ERROR before the rotation\n');
    await waitFor(() => titles().length === 1, 'the first error');
    renameSync(file, `${file}.1`);
    writeFileSync(file, 'ERROR in the new file\n');
    await waitFor(() => logs.some((l) => l.includes('was rotated')), 'the rename seen');
    const realNow = Date.now;
    Date.now = () => realNow() + 3_600_000;
    t.after(() => (Date.now = realNow));
    appendFileSync(`${file}.1`, 'ERROR late write to the old file\n');
    await waitFor(() => titles().length === 2, 'the late write');
    await tail.stop();
    Date.now = realNow;
    assert.deepEqual(titles(), ['before the rotation', 'late write to the old file'], 'still on the old file, an hour of wall clock later');
  });

  test('a restart while a renamed file is still read: nothing read twice, the new file read whole', async () => {
    const { file, store, make, titles, logs } = setup({ rotateWaitMs: 60_000 });
    writeFileSync(file, '');
    const first = make();
    first.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, 'ERROR before the rotation\n');
    await waitFor(() => titles().length === 1, 'the first error');
    const oldInode = statSync(file).ino;
    renameSync(file, `${file}.1`);
    writeFileSync(file, 'ERROR in the new file\n');
    await waitFor(() => logs.some((l) => l.includes('was rotated')), 'the rename seen');
    appendFileSync(`${file}.1`, 'ERROR late write to the old file\n');
    await waitFor(() => titles().length === 2, 'the late write');
    // A crash now: what a restart sees is this copy of the store.
    const crashed = new MemoryStore();
    for (const [k, v] of store.map) crashed.map.set(k, { ...v });
    assert.equal(crashed.get(file)?.inode, oldInode, 'the old file is still the one saved');
    await first.stop();
    assert.deepEqual(titles(), ['before the rotation', 'late write to the old file'], 'the new file waits for the old one');
    const second = make({ store: crashed });
    second.start();
    await waitFor(() => titles().length === 3, 'the new file');
    await second.stop();
    assert.deepEqual(titles(), ['before the rotation', 'late write to the old file', 'in the new file']);
    assert.equal(crashed.get(file)?.offset, statSync(file).size);
  });

  test('resumes from the persisted offset without duplicates; never commits past an open trace', async () => {
    const { file, store, got, make, titles } = setup({ idleFlushMs: 60_000 });
    writeFileSync(file, '');
    const first = make();
    first.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, 'ERROR one\nINFO x\n');
    await waitFor(() => titles().length === 1, 'one');
    const traceStart = statSync(file).size;
    appendFileSync(file, 'Error: two\n    at a (/x.js:1:1)\n');
    await waitFor(() => store.get(file)?.offset === traceStart, 'commit up to the open trace');
    await sleep(30);
    assert.equal(store.get(file)?.offset, traceStart, 'the open trace stays uncommitted');
    // A crash now: what a restart sees is this copy of the store.
    const crashed = new MemoryStore();
    for (const [k, v] of store.map) crashed.map.set(k, { ...v });
    await first.stop();
    got.length = 0;

    appendFileSync(file, '    at b (/x.js:2:2)\nINFO y\nERROR three\n');
    const second = make({ store: crashed });
    second.start();
    await waitFor(() => titles().length === 1, 'two');
    await second.stop();
    assert.deepEqual(titles(), ['Error: two', 'three']);
    assert.equal(got[0]?.events[0]?.stack?.split('\n').length, 3, 'the trace re-read whole');
    assert.match(got[0]?.events[0]?.sourceEventId ?? '', new RegExp(`:${traceStart}:`));
    assert.equal(crashed.get(file)?.offset, statSync(file).size);

    // A clean restart reads nothing again.
    got.length = 0;
    const third = make({ store: crashed });
    third.start();
    await sleep(40);
    await third.stop();
    assert.deepEqual(titles(), []);
  });

  test('stop() drains appended lines and flushes an open trace', async () => {
    const { file, store, got, make } = setup({ idleFlushMs: 60_000 });
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, 'Error: at shutdown\n    at x (/x.js:1:1)\n');
    await t.stop();
    assert.equal(got.length, 1);
    assert.equal(got[0]?.events[0]?.stack, 'Error: at shutdown\n    at x (/x.js:1:1)');
    assert.equal(store.get(file)?.offset, statSync(file).size);
  });

  // Review finding: stop() read a file's whole backlog before it resolved (`bugbot watch
  // --from-start` on a big log, or a noisy log after a day down): Ctrl-C or SIGTERM took as
  // long as storing every error left in it.
  test('stop() during a backlog stops within a read or two; the next start reads the rest, nothing twice or lost', async () => {
    const lines = 250_000;
    const { file, store, got, make } = setup({
      fromStart: true,
      // Storing takes its time: reading to the end would take many of them.
      onEvents: async (events, f, offset) => {
        got.push({ events, file: f, offset });
        await sleep(25);
      },
    });
    writeFileSync(file, Array.from({ length: lines }, (_, i) => `2024-05-01 00:00:00 ERROR order ${i} failed\n`).join(''));
    const first = make();
    first.start();
    await waitFor(() => got.length === 1, 'the first batch');
    const stopping = performance.now();
    await first.stop();
    const took = performance.now() - stopping;
    const batches = got.length;
    assert.ok(batches < 10, `stopped after ${batches} batches (${Math.round(took)} ms), not at the end of a ${statSync(file).size}-byte backlog`);
    const saved = store.get(file)!.offset;
    assert.ok(saved < statSync(file).size, 'the rest is left for the next start');
    const second = make();
    second.start();
    await waitFor(() => store.get(file)?.offset === statSync(file).size, 'the rest read', 30_000);
    await second.stop();
    const orders = got.flatMap((g) => g.events.map((e) => Number(/order (\d+)/.exec(e.title)?.[1])));
    assert.equal(orders.length, lines, 'each error once');
    assert.deepEqual(orders, Array.from({ length: lines }, (_, i) => i), 'in order, none lost');
  });

  test('an idle file flushes its open trace after idleFlushMs', async () => {
    const { file, store, got, make } = setup({ idleFlushMs: 30 });
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, 'Error: quiet\n    at x (/x.js:1:1)\n');
    await waitFor(() => got.length === 1, 'idle flush');
    await t.stop();
    assert.equal(got[0]?.events[0]?.title, 'Error: quiet');
  });

  test('a callback error is logged, does not advance the offset, and is retried', async () => {
    let fail = 2;
    const delivered: TriggerEvent[] = [];
    const { file, store, logs, make } = setup({
      onEvents: (events) => {
        if (fail-- > 0) throw new Error('queue unavailable');
        delivered.push(...events);
      },
    });
    writeFileSync(file, '');
    const t = make();
    t.start();
    await waitFor(() => store.get(file) !== undefined, 'open');
    appendFileSync(file, 'ERROR must not be lost\n');
    await waitFor(() => logs.some((l) => l.startsWith('warn') && l.includes('queue unavailable')), 'warning');
    assert.equal(store.get(file)?.offset, 0);
    await waitFor(() => delivered.length === 1, 'retry');
    await t.stop();
    assert.equal(delivered[0]?.title, 'must not be lost');
    assert.equal(store.get(file)?.offset, statSync(file).size);
    assert.equal(logs.filter((l) => l.includes('queue unavailable')).length, 1, 'repeated failures logged once');
  });

  // Review finding: a file waited for was read from its start only if it appeared while the
  // tailer ran: one made while it was stopped (the application's first start between two
  // watches, a reboot) was then taken for a file never seen, and read from its end.
  test('a file waited for that appears while nothing watches is read from its start by the next start', async () => {
    const { file, logs, make, titles } = setup();
    const first = make();
    first.start();
    await waitFor(() => logs.some((l) => l.includes('waiting for')), 'the waiting notice');
    await first.stop();
    writeFileSync(file, 'ERROR written before the watch came back\n');
    const second = make();
    second.start();
    await waitFor(() => titles().length === 1, 'the error already in the file');
    appendFileSync(file, 'ERROR written after\n');
    await waitFor(() => titles().length === 2, 'the error after');
    await second.stop();
    assert.deepEqual(titles(), ['written before the watch came back', 'written after']);
  });

  // Review finding: a named pipe (`bugbot watch <(kubectl logs -f ...)`, a FIFO in the list)
  // blocked its open until a writer came: no other file was read, and stop() (Ctrl-C) never
  // returned; a pipe already open (`... | bugbot watch /dev/stdin`) failed every read with "ESPIPE".
  test('a pipe is refused with a message that says why; the other files are followed and stop() returns', async () => {
    const { dir, file, got, logs, make } = setup();
    const fifo = join(dir, 'pipe.log');
    execFileSync('mkfifo', [fifo]);
    writeFileSync(file, '');
    const tail = make({ files: [fifo, file] });
    // Before the tailer's stop(): lets an open blocked on the pipe return, so that this test ends where it fails.
    cleanups.push(() => {
      try {
        closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
      } catch {
        // No reader: nothing is blocked.
      }
    });
    tail.start();
    await waitFor(() => logs.some((l) => l.includes(`following ${file}`)), 'the regular file followed');
    appendFileSync(file, 'ERROR next to a pipe\n');
    await waitFor(() => got.length === 1, 'the error in the regular file');
    await sleep(50);
    await Promise.race([tail.stop(), sleep(2000).then(() => assert.fail('stop() did not return'))]);
    assert.equal(got[0]?.events[0]?.title, 'next to a pipe');
    const refused = logs.filter((l) => l.includes(fifo));
    assert.deepEqual(refused, [`warn logfile: ${fifo} is not a regular file (a pipe, a socket or a device): log files are followed by byte offset, so that a restart resumes where it stopped; have the program write its log to a file and watch that`], 'said once');
  });

  // Review finding: a failure between opening a file and following it (the store unreadable)
  // left the descriptor open, one more each poll until the process ran out of them.
  test('a store that fails while a file is being opened leaks no descriptor; the file is followed once it answers', async () => {
    let failures = 30;
    const memory = new MemoryStore();
    const failing: OffsetStore = {
      get: (p) => {
        if (failures > 0 && failures--) throw new Error('disk I/O error');
        return memory.get(p);
      },
      set: (...args) => memory.set(...args),
    };
    const { file, got, logs, make } = setup({ store: failing });
    writeFileSync(file, '');
    const before = readdirSync('/proc/self/fd').length;
    const t = make();
    t.start();
    await waitFor(() => memory.get(file) !== undefined, 'the file followed');
    const open = readdirSync('/proc/self/fd').length - before;
    assert.ok(open <= 2, `${open} more descriptors open, for one followed file`);
    assert.equal(logs.filter((l) => l.includes('disk I/O error')).length, 1);
    appendFileSync(file, 'ERROR after the store came back\n');
    await waitFor(() => got.length === 1, 'the error');
    await t.stop();
  });

  test('a missing file is waited for (logged once) and read from the start when it appears', async () => {
    const { file, got, logs, make } = setup();
    const t = make();
    t.start();
    await waitFor(() => logs.some((l) => l.includes('waiting for')), 'the waiting notice');
    await sleep(100);
    assert.equal(logs.filter((l) => l.includes('waiting for')).length, 1, 'logged once, not each poll');
    writeFileSync(file, 'ERROR born with an error\n');
    await waitFor(() => got.length === 1, 'event');
    await t.stop();
    assert.equal(got[0]?.events[0]?.title, 'born with an error');
  });
});

test('epoch times in seconds, milliseconds, microseconds (zerolog) and nanoseconds (zap, UnixNano) all read as the same moment', () => {
  const at = Date.parse('2026-11-21T10:00:00Z');
  const lines = [at / 1000, at, at * 1000, at * 1e6].map((time, i) => JSON.stringify({ level: 'error', time, msg: `TypeError: boom ${'abcd'[i]}` }));
  const events = parseAll(lines.join('\n') + '\n');
  assert.deepEqual(events.map((e) => e.firstSeen), Array(4).fill('2026-11-21T10:00:00.000Z'));
});

test("the store keeps a tailed file's truncation count and fingerprint with its offset (0 and none for a file saved without)", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bugbot-offsets-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new Store(join(dir, 'bugbot.db'));
  t.after(() => store.close());
  store.setOffset('/var/log/a.log', 42, 100, 3, '100:0123abcd');
  store.setOffset('/var/log/b.log', 43, 7);
  assert.deepEqual(store.getOffset('/var/log/a.log'), { inode: 42, offset: 100, generation: 3, fingerprint: '100:0123abcd' });
  assert.deepEqual(store.getOffset('/var/log/b.log'), { inode: 43, offset: 7, generation: 0, fingerprint: null });
});
