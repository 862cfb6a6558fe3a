/**
 * Which label matchers Loki may run on the raw values (lib/loki/shown.ts), and raw LogQL's
 * selector values read as Loki's lexer reads them (Go string literals): a value read here
 * as harmless must not be a raw email to Loki.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planMatchers, shownLabelTest } from '../../lib/loki/shown.ts';
import type { LabelMatcher } from '../../lib/loki/types.ts';
import { createRedactor } from '../../lib/redact.ts';
import { goUnquote, selectorMatchers } from '../../mcp/loki/secret-labels.ts';

const redact = createRedactor({ salt: 'unit' });

test('Go string literals unquote as strconv.Unquote does; what Go refuses is undefined', () => {
  const cases: Array<[string, string | undefined]> = [
    ['"plain"', 'plain'],
    ['"\\x61lice\\100example\\u002ecom"', 'alice@example.com'],
    ['"\\U0001F319 \\xc3\\xa9 \\t\\"\\\\"', '🌙 é \t"\\'],
    ['`raw \\x61\r`', 'raw \\x61'],
    ['"\\q"', undefined],
    ["\"\\'\"", undefined],
    ['"\\400"', undefined],
    ['"\\ud800"', undefined],
    ['"\\x6"', undefined],
  ];
  for (const [literal, value] of cases) assert.equal(goUnquote(literal), value, literal);
  assert.deepEqual(selectorMatchers('sum(count_over_time({job = "web",user_email=~`a.*`}[5m])) / count_over_time({x!="\\x61"}[5m])'), [
    { name: 'job', op: '=', value: 'web' },
    { name: 'user_email', op: '=~', value: 'a.*' },
    { name: 'x', op: '!=', value: 'a' },
  ]);
});

test('Loki gets only matchers the shown values decide; hashes are matched on the shown values; raw hidden values are refused', () => {
  const m = (name: string, op: LabelMatcher['op'], value: string): LabelMatcher => ({ name, op, value });
  const hash = redact.hashUser('42');
  const plan = planMatchers(
    [m('job', '=', 'web'), m('env', '=~', 'prod|api\\.v2'), m('level', '!~', '.+'), m('user_id', '!=', ''), m('app', '=~', 'web-.*'), m('user_id', '=', hash), m('env', '=~', 'a@b\\.com|c')],
    redact.text,
  );
  assert.deepEqual(plan.loki.map((x) => x.name), ['job', 'env', 'level', 'user_id']);
  assert.deepEqual(plan.shown, [m('app', '=~', 'web-.*'), m('user_id', '=', `<${hash}>`), m('env', '=~', 'a@b\\.com|c')]);
  const keep = shownLabelTest(plan.shown.slice(0, 2), redact.text);
  assert.equal(keep({ app: 'web-1', user_id: '42' }), true);
  assert.equal(keep({ app: 'web-1', user_id: '43' }), false);
  for (const hidden of [m('user_id', '=', '42'), m('user_email', '!=', 'a@b.com'), m('service_name', '=', 'password=x')]) {
    assert.throws(() => planMatchers([m('job', '=', 'web'), hidden], redact.text), /answers never show this value as given/, JSON.stringify(hidden));
  }
});
