import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalizeMessage, templateRoute } from '../../control/intake/normalize.ts';
import { SYSTEMS, groupingAccuracy, loadSystem, parseCsv, resolveLoghubDir } from '../../bench/grouping/lib.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Asserts that both messages normalize to `expected`. */
function sameTemplate(a: string, b: string, expected: string): void {
  assert.equal(normalizeMessage(a), expected);
  assert.equal(normalizeMessage(b), expected);
}

test('templateRoute: numeric ids share a route', () => {
  assert.equal(templateRoute('/api/pets/1'), '/api/pets/:id');
  assert.equal(templateRoute('/api/pets/999'), '/api/pets/:id');
  assert.equal(templateRoute('/api/pets/999/toys/3?limit=10#top'), '/api/pets/:id/toys/:id');
});

test('templateRoute: uuid, hex and opaque tokens are ids, names are not', () => {
  assert.equal(templateRoute('/orders/550e8400-e29b-41d4-a716-446655440000/items'), '/orders/:id/items');
  assert.equal(templateRoute('/v2/54fadb412c4e40cdbaed9335e4c35a9e/servers'), '/v2/:id/servers');
  assert.equal(templateRoute('/files/QmFzZTY0VG9rZW4xMjM0NTY3OA==/'), '/files/:id/');
  assert.equal(templateRoute('https://api.example.com/v1/users/42?x=1'), '/v1/users/:id');
  assert.equal(templateRoute('/v1/users/me'), '/v1/users/me');
});

test('normalizeMessage: paths with ids give one template', () => {
  sameTemplate('Not found: /api/pets/1', 'Not found: /api/pets/999', 'Not found: <*>');
});

test('normalizeMessage: uuids, hex, ips, hosts and ports are masked', () => {
  sameTemplate('order 550e8400-e29b-41d4-a716-446655440000 not found',
    'order 123e4567-e89b-12d3-a456-426614174000 not found', 'order <uuid> not found');
  sameTemplate('bad pointer 0x7fed806eb5d', 'bad pointer deadbeefcafe', 'bad pointer <*>');
  sameTemplate('connect ECONNREFUSED 127.0.0.1:5432', 'connect ECONNREFUSED db.internal.example.com:6379',
    'connect ECONNREFUSED <*>');
  sameTemplate('peer [fe80::1ff:fe23:4567:890a] left', 'peer [10.0.0.7] left', 'peer <*> left');
});

test('normalizeMessage: timestamps, dates, durations and sizes are masked', () => {
  sameTemplate('2024-01-05T12:34:56.789Z job failed', 'Fri Jun 17 07:07:00 2005 job failed', '<*> job failed');
  sameTemplate('took 1.5 s, read 2 MB (2.1 KB) ok', 'took 300 ms, read 17 KB ok', 'took <*> read <*> ok');
  sameTemplate('lifetime <1 sec', 'lifetime 00:01', 'lifetime <*>');
});

test('normalizeMessage: key=value keeps the key, masks the value', () => {
  sameTemplate('login uid=0 rhost=10.1.2.3', 'login uid=501 rhost=host.example.org', 'login uid=<*> rhost=<*>');
  sameTemplate('session (HWID=1973) up', 'session (HWID=22) up', 'session (HWID=<*>) up');
  sameTemplate('job=7,state=failed,retry=2', 'job=1234,state=failed,retry=0', 'job=<*>,state=failed,retry=<*>');
  assert.notEqual(normalizeMessage('job=7,state=failed'), normalizeMessage('job=7,state=done'));
  assert.equal(normalizeMessage('mail to bob@example.com bounced'), 'mail to <email> bounced');
  assert.equal(normalizeMessage('fetch https://x.io/a?b=1 failed'), 'fetch <url> failed');
});

test('normalizeMessage: different messages stay different', () => {
  assert.notEqual(normalizeMessage('connection refused'), normalizeMessage('connection reset'));
  assert.notEqual(normalizeMessage('connect ECONNREFUSED 10.0.0.1:80'), normalizeMessage('connect ECONNRESET 10.0.0.1:80'));
  assert.notEqual(normalizeMessage('user not found'), normalizeMessage('user already exists'));
  // Month and day names are words unless they sit next to other date parts.
  assert.equal(normalizeMessage('May cause data loss'), 'May cause data loss');
});

test('normalizeMessage: names after "user" are masked, whitespace is collapsed', () => {
  sameTemplate('session opened for user alice', 'session   opened for user bob\t', 'session opened for user <*>');
  assert.equal(normalizeMessage(''), '');
});

test('parseCsv: quoted fields with commas, doubled quotes and newlines', () => {
  assert.deepEqual(parseCsv('a,b,c\n1,"x, ""y""",\n2,"multi\nline",z\n'), [
    ['a', 'b', 'c'],
    ['1', 'x, "y"', ''],
    ['2', 'multi\nline', 'z'],
  ]);
});

test('groupingAccuracy: a line counts only when its group matches exactly', () => {
  // Group {0,1} matches E1 exactly; {2,3} mixes E2 and E3, so neither line counts.
  assert.equal(groupingAccuracy(['a', 'a', 'b', 'b'], ['E1', 'E1', 'E2', 'E3']), 0.5);
  // Splitting E1 over two groups makes both of its lines wrong.
  assert.equal(groupingAccuracy(['a', 'b', 'c'], ['E1', 'E1', 'E2']), 1 / 3);
});

test('Loghub-2k: mean grouping accuracy over the 16 systems stays >= 0.90', () => {
  const dir = resolveLoghubDir(repoRoot); // throws with the missing path: the test fails, never skips
  const scores = SYSTEMS.map((s) => {
    const log = loadSystem(dir, s);
    assert.equal(log.contents.length, 2000, `${s}: expected 2,000 labelled lines`);
    return groupingAccuracy(log.contents.map(normalizeMessage), log.eventIds);
  });
  const mean = scores.reduce((x, y) => x + y, 0) / scores.length;
  assert.ok(mean >= 0.9, `mean GA ${mean.toFixed(4)} < 0.90 (${SYSTEMS.map((s, i) => `${s} ${scores[i]!.toFixed(3)}`).join(', ')})`);
});
