// Property-based tests of the log-file line parser, control/triggers/logfile.ts (issue 7,
// fuzzing): any sequence of lines (JSON records from mutated pino/winston/structlog lines,
// plain-text traces, junk) never throws, gives the same events every time it is read, and
// every event is bounded: one-line title of at most 200 characters, message and stack of
// at most 32 KiB, real timestamps, an id made of the file and the entry's offset.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createLogParser } from '../../control/triggers/logfile.ts';
import type { TriggerEvent } from '../../control/types.ts';
import { cutSurrogate, hostileText, junkValue, mutated, RUNS } from './arbitraries.ts';

const FILE = '/var/log/pets/app.log';
const MAX_TEXT_BYTES = 32 * 1024;

const PINO = {
  level: 50,
  time: 1714521601000,
  name: 'pets-api',
  msg: 'Cannot read properties of undefined (reading "id")',
  req: { method: 'post', url: '/api/pets/123?token=secret' },
  err: { type: 'TypeError', message: 'boom', stack: 'TypeError: boom\n    at handler (/app/src/pets.js:12:20)' },
};
const STRUCTLOG = { event: 'payment failed', level: 'error', exception: 'Traceback (most recent call last):\n  File "/app/pay.py", line 3, in pay\nValueError: x', timestamp: 1714521600 };

const textLine = fc.oneof(
  fc.constantFrom(
    '2024-05-01 10:00:00,123 ERROR [main] Request failed',
    '[2024-05-01T10:00:00Z] FATAL: out of memory',
    'java.lang.NullPointerException: x',
    '\tat com.pets.Api.get(Api.java:42)',
    '    at handler (/app/src/pets.js:12:20)',
    'Caused by: java.io.IOException: closed',
    '... 12 more',
    'Traceback (most recent call last):',
    '  File "/app/x.py", line 3, in g',
    'During handling of the above exception, another exception occurred:',
    'ValueError: bad',
    'StopIteration',
    'INFO all good',
    'Error: something',
    'Exception in thread "main" java.lang.RuntimeException',
    '2024/05/01 10:00:00 http: panic serving 10.0.0.1:5678: runtime error: index out of range [3] with length 3',
    'goroutine 7 [running]:',
    'main.handler({0x7a1b28?, 0xc0001360e0?}, 0xc000150000?)',
    "/app/cart.rb:12:in 'Cart#total': undefined method 'price' for nil (NoMethodError)",
    "/app/cart.rb:12:in `total': undefined method `price' for nil:NilClass (NoMethodError)",
    "\tfrom /app/main.rb:7:in '<main>'",
    '',
    '   ',
    '\r',
    '{',
    '{"level":',
  ),
  hostileText.map((s) => s.replace(/\n/g, ' ')),
  // Long lines as a short mixed run repeated: cheap to shrink, and every UTF-8 length at the cut.
  fc
    .tuple(fc.constantFrom('ERROR ', 'Traceback ', '    at ', 'Error: ', ''), fc.string({ unit: fc.constantFrom('x', '💥', 'é', ' ', '€'), minLength: 1, maxLength: 7 }), fc.integer({ min: 2_000, max: 12_000 }))
    .map(([p, s, n]) => p + s.repeat(n)),
);
const jsonLine = fc
  .oneof(mutated(PINO), mutated(STRUCTLOG), fc.record({ level: junkValue, severity: junkValue, msg: junkValue, time: junkValue, req: junkValue }).map((value) => ({ value, paths: [] })))
  .map((m) => (JSON.stringify(m.value) ?? 'null').replace(/\n/g, ' '));
const lines = fc.array(fc.oneof({ weight: 3, arbitrary: textLine }, { weight: 2, arbitrary: jsonLine }), { maxLength: 40 });

/** Feeds the lines with real byte offsets, then flushes, as the tailer does. */
function parseAll(input: string[], service?: string): TriggerEvent[] {
  const p = createLogParser({ file: FILE, service, now: () => new Date('2026-11-21T10:00:00Z') });
  const out: TriggerEvent[] = [];
  let offset = 0;
  for (const line of input) {
    out.push(...p.push(line, offset));
    const pending = p.pendingOffset();
    assert.ok(pending === undefined || pending <= offset, 'an open entry starts at or before the current line');
    offset += Buffer.byteLength(line) + 1;
  }
  out.push(...p.flush());
  assert.equal(p.pendingOffset(), undefined, 'nothing is open after a flush');
  return out;
}

test('createLogParser: any lines → deterministic, bounded, well-formed error events', () => {
  fc.assert(
    fc.property(lines, fc.option(fc.string({ maxLength: 10 }), { nil: undefined }), (input, service) => {
      const events = parseAll(input, service);
      assert.deepEqual(parseAll(input, service), events, 'the same file gives the same events');
      assert.ok(events.length <= input.length, `${events.length} events from ${input.length} lines`);
      const ids = new Set<string>();
      // What the lines say once JSON escapes ("\ud800") are read.
      const decoded = input.map((l) => {
        try {
          return JSON.parse(l) as unknown;
        } catch {
          return l;
        }
      });
      for (const ev of events) {
        assert.equal(ev.source, 'logfile');
        assert.equal(ev.kind, 'error');
        assert.equal(ev.labels.file, 'app.log');
        assert.ok(ev.title.length <= 200 && !ev.title.includes('\n'), `title ${JSON.stringify(ev.title.slice(0, 40))}`);
        assert.ok(!cutSurrogate(ev.title, decoded), `title cut inside a character: ${JSON.stringify(ev.title.slice(-3))}`);
        assert.ok(Buffer.byteLength(ev.message) <= MAX_TEXT_BYTES, `message of ${Buffer.byteLength(ev.message)} bytes`);
        assert.ok(ev.message.length > 0);
        if (ev.stack !== undefined) assert.ok(Buffer.byteLength(ev.stack) <= MAX_TEXT_BYTES, `stack of ${Buffer.byteLength(ev.stack)} bytes`);
        assert.ok(!ev.message.includes('\ufffd') || input.some((l) => /\ufffd|[\ud800-\udfff]|\\u[dD][89a-fA-F]/.test(l)), 'no character cut into U+FFFD');
        assert.ok(!Number.isNaN(Date.parse(ev.firstSeen)) && ev.firstSeen === ev.lastSeen);
        assert.match(ev.sourceEventId, new RegExp(`^${FILE.replace(/[./]/g, '\\$&')}:\\d+:[0-9a-f]{40}$`));
        assert.ok(!ids.has(ev.sourceEventId), 'one id per entry');
        ids.add(ev.sourceEventId);
        if (service !== undefined && service !== '' && ev.service === undefined) assert.fail('the file service fills in');
      }
    }),
    { numRuns: RUNS.pure },
  );
});

test('regression (issue 7): a message cut at 32 KiB ends on a whole character', () => {
  // Counterexample: a long line of emoji was cut inside a 4-byte character, leaving a
  // trailing U+FFFD and, for other cuts, 32,770 bytes.
  const [ev] = parseAll([`ERROR x${'💥'.repeat(9_000)}`]);
  assert.ok(ev);
  assert.ok(Buffer.byteLength(ev.message) <= MAX_TEXT_BYTES);
  assert.ok(!ev.message.includes('\ufffd'));
  assert.ok(ev.message.endsWith('💥'));
});

test('regression (issue 7): a 200-character title never ends on half an emoji', () => {
  // Shrunk counterexample: "Error: " + "💥" × 150 gave a title ending in "\ud83d".
  const [ev] = parseAll([`Error: ${'💥'.repeat(150)}`]);
  assert.ok(ev);
  assert.equal(ev.title, `Error: ${'💥'.repeat(96)}`);
});
