// Property-based tests of the fingerprint normalizer (issue 7, fuzzing):
// control/intake/normalize.ts and control/intake/fingerprint.ts. They never throw, are
// deterministic, keep their output bounded and single-spaced, and normalizing a
// normalized message or route template changes nothing. Variable parts (ids, numbers,
// addresses) never split a group.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { extractErrorText, extractUrlPath, fingerprintEvent, inAppFrames, normalizeSubject, templateRouteWithMethod } from '../../control/intake/fingerprint.ts';
import { normalizeMessage, templateRoute } from '../../control/intake/normalize.ts';
import { EVENT_KINDS, type TriggerEvent } from '../../control/types.ts';
import { hostileText, RUNS } from './arbitraries.ts';

/** Pieces log lines are made of, so generated text hits the normalizer's special cases. */
const piece = fc.constantFrom(
  'a', 'x', '1', '42', '-7', '3.14', '.', ':', '/', '=', ',', '<', '>', '*', ' ', '  ', '\t', '\n', '(', ')', '[', ']', '"', "'", '@', '-', '_',
  'user', 'host', 'not', 'may', 'Fri', 'Jun', 'KB', 'ms', '://', '?', '#', '0x', '0xdeadbeef', 'deadbeef01', '12:30:01', '2026-11-21T10:00:00Z',
  '10.0.0.1', 'fe80::1', 'a.example.com', 'b@c.io', 'http://h.io/p?q=1', '/var/log/app.log', 'C:\\x', '~/x', './x',
  '123e4567-e89b-12d3-a456-426614174000', 'uid=0', 'key:value', 'label....7', '<*>', '<url>', '<email>', '<uuid>', 'é', '💥', '\u200b',
);
const logLike = fc.string({ unit: piece, maxLength: 24 });
const anyText = fc.oneof(logLike, hostileText);

describe('normalizeMessage (fuzz)', () => {
  it('never throws, is deterministic, single-spaced and at most 3× the input', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const out = normalizeMessage(text);
        assert.equal(normalizeMessage(text), out);
        assert.ok(!/\s\s|^\s|\s$|[\n\t\r]/.test(out), `whitespace left in ${JSON.stringify(out.slice(0, 80))}`);
        assert.ok(out.length <= 3 * text.length, `${out.length} chars from ${text.length}`);
      }),
      { numRuns: RUNS.pure },
    );
  });

  it('is idempotent: a normalized message normalizes to itself', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const once = normalizeMessage(text);
        assert.equal(normalizeMessage(once), once, `from ${JSON.stringify(text)}`);
      }),
      { numRuns: RUNS.pure * 4 },
    );
  });

  it('regression (issue 7): normalized output is a fixed point', () => {
    // Shrunk counterexamples: placeholders were re-read as names, and a name masked after
    // the date pass left its neighbouring month for the next pass.
    for (const [input, once] of [
      ['user a://a', 'user <url>'],
      ['host b@c.io', 'host <email>'],
      ['host /a]', 'host <*>]'],
      ['host\n@\nmay', 'host <*>'],
    ] as const) {
      assert.equal(normalizeMessage(input), once, input);
      assert.equal(normalizeMessage(once), once, once);
    }
  });

  it('ids, numbers, addresses and times of one kind in one template never split the group', () => {
    // One kind per pair: uuids and emails keep typed placeholders of their own by design.
    const kinds = [
      fc.integer().map(String),
      fc.uuid(),
      fc.ipV4(),
      // Local parts as mail providers hand them out; RFC 5322 also allows "!#/{}" there.
      fc.emailAddress().filter((a) => /^[\w.+-]+@/.test(a)),
      fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
      fc.stringMatching(/^[0-9a-f]{12,24}$/),
    ];
    const pair = fc.nat({ max: kinds.length - 1 }).chain((k) => fc.tuple(kinds[k]!, kinds[k]!));
    const templates = fc.constantFrom(
      (v: string) => `Timeout after ${v} waiting for lock`,
      (v: string) => `Failed password for user ${v} from host`,
      (v: string) => `GET /api/pets failed: id=${v}, retry=3`,
      (v: string) => `connection to ${v} refused (attempt 2/5)`,
      (v: string) => `[${v}] worker crashed`,
    );
    fc.assert(
      fc.property(templates, pair, (tpl, [a, b]) => {
        assert.equal(normalizeMessage(tpl(a)), normalizeMessage(tpl(b)), `${tpl(a)} vs ${tpl(b)}`);
      }),
      { numRuns: RUNS.pure },
    );
  });

  it('stays linear on adversarial input (200 KB in well under a second)', () => {
    for (const unit of ['.', 'a:', '1.', 'a@', 'a.b', '[', ')', 'a=', '((', 'a.', '<*>', 'user ', 'may 1 ']) {
      const text = unit.repeat(Math.ceil(200_000 / unit.length));
      const started = performance.now();
      normalizeMessage(text);
      templateRoute(text);
      const ms = performance.now() - started;
      assert.ok(ms < 1_500, `${JSON.stringify(unit)} × ${text.length / unit.length}: ${Math.round(ms)} ms`);
    }
  });
});

describe('route templates (fuzz)', () => {
  const route = fc.oneof(
    fc.string({ unit: fc.constantFrom('/', 'api', 'pets', '42', '0xdeadbeef', 'aGVsbG8gd29ybGQ1MjM0', '?', 'x=1', '#', 'frag', '://', 'http', 'h.io', ' ', 'GET ', '\t'), maxLength: 14 }),
    hostileText,
    fc.webUrl({ withQueryParameters: true, withFragments: true }),
  );

  it('never throw, drop query and fragment, and template a template to itself', () => {
    fc.assert(
      fc.property(route, (r) => {
        const t = templateRoute(r);
        assert.ok(!/[?#]/.test(t), `query left in ${JSON.stringify(t)}`);
        assert.equal(templateRoute(t), t, `templateRoute not idempotent from ${JSON.stringify(r)}`);
        const m = templateRouteWithMethod(r);
        assert.equal(templateRouteWithMethod(m), m, `templateRouteWithMethod not idempotent from ${JSON.stringify(r)}`);
      }),
      { numRuns: RUNS.pure * 2 },
    );
  });

  it('regression (issue 7): only a leading scheme is stripped, and no trailing space is left', () => {
    // Shrunk counterexamples: "/proxy/http://x/y" became "/y"; "/a/b ?q" kept a space, "GET ?x" too.
    assert.equal(templateRoute('/proxy/http://x/y'), '/proxy/http://x/y');
    assert.equal(templateRouteWithMethod('GET /r/https://evil.example/a/1'), 'GET /r/https://evil.example/a/:id');
    assert.equal(templateRoute('https://h.io/api/pets/5?x=1'), '/api/pets/:id');
    assert.equal(templateRoute('/a/b ?q'), '/a/b');
    assert.equal(templateRouteWithMethod('GET ?x'), 'GET');
  });
});

describe('fingerprintEvent (fuzz)', () => {
  const event: fc.Arbitrary<TriggerEvent> = fc.record({
    source: fc.constantFrom('grafana', 'alertmanager', 'latency', 'email', 'slack', 'manual', 'logfile'),
    kind: fc.constantFrom(...EVENT_KINDS),
    title: anyText,
    message: anyText,
    service: fc.option(anyText, { nil: undefined }),
    route: fc.option(anyText, { nil: undefined }),
    stack: fc.option(fc.oneof(anyText, fc.array(fc.constantFrom('    at f (/app/src/a.ts:1:2)', '  File "/app/x.py", line 3, in g', '\tat com.x.Y.z(Y.java:9)', 'main.go:12', 'x', '    at async h (node:internal/x:1:1)'), { maxLength: 30 }).map((l) => l.join('\n'))), { nil: undefined }),
    labels: fc.dictionary(fc.constantFrom('fingerprint', 'bugbot_fingerprint', 'env'), anyText, { maxKeys: 2 }),
    count: fc.constant(1),
    firstSeen: fc.constant('2026-11-21T10:00:00.000Z'),
    lastSeen: fc.constant('2026-11-21T10:00:00.000Z'),
    human: fc.boolean(),
    sourceEventId: fc.string(),
  });

  it('never throws, is deterministic, a 16-hex digest with at most the asked-for frames', () => {
    fc.assert(
      fc.property(event, fc.integer({ min: 0, max: 8 }), (e, frames) => {
        const fp = fingerprintEvent(e, { frames });
        assert.match(fp.fingerprint, /^[0-9a-f]{16}$/);
        assert.deepEqual(fingerprintEvent(e, { frames }), fp);
        assert.ok(fp.parts.frames.length <= frames);
        // Free text is fingerprinted by a bounded excerpt (500 characters, then normalized).
        if (fp.parts.method === 'report-error') assert.ok(fp.parts.message.length <= 1_500);
      }),
      { numRuns: RUNS.pure },
    );
  });

  it('free-text helpers never throw and return bounded excerpts', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const err = extractErrorText(text);
        if (err !== undefined) assert.ok(err.length <= 500 && text.includes(err.slice(0, 20)));
        const path = extractUrlPath(text);
        if (path !== undefined) assert.ok(path.startsWith('/') && text.includes(path));
        assert.equal(normalizeSubject(text), normalizeSubject(text));
        assert.ok(inAppFrames(text, 5).length <= 5);
      }),
      { numRuns: RUNS.pure },
    );
  });
});
