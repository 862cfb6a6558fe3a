// Blocks of worker ports claimed by files (test/support/pipeline.ts `freeBasePort`, also
// used by `npm run demo`): in a folder of the user's own, and a claim this process cannot
// remove is taken, never a crash.
import assert from 'node:assert/strict';
import fs, { mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { claimBlock, freeBasePort, portClaims } from '../support/pipeline.ts';

test("the claims folder is the user's own", async (t) => {
  const dir = portClaims();
  assert.ok(dir.endsWith(`-${process.getuid!()}`), `${dir} names the uid`);
  const st = statSync(dir);
  assert.equal(st.uid, process.getuid!());
  const base = await freeBasePort(2, t);
  assert.ok(statSync(join(dir, String((base - 20_000) / 10))).isFile(), 'the block is claimed there');

  // That name made first by someone else (here: a file, a link to another folder) is
  // refused, not used.
  const scratch = mkdtempSync(join(tmpdir(), 'bugbot-port-claims-'));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  writeFileSync(join(scratch, 'file'), '');
  assert.throws(() => portClaims(join(scratch, 'file')), /not a folder of this user's/);
  symlinkSync(scratch, join(scratch, 'link'));
  assert.throws(() => portClaims(join(scratch, 'link')), /not a folder of this user's/);
});

test('a stale claim that cannot be removed (EACCES) counts as taken', (t) => {
  const claims = mkdtempSync(join(tmpdir(), 'bugbot-port-claims-'));
  t.after(() => rmSync(claims, { recursive: true, force: true }));
  // A claim by a process that is gone (pids never reach 2^22 + 1 on Linux).
  writeFileSync(join(claims, '7'), '4194305');
  // ...that this user may not remove: another user's, in a shared sticky folder.
  const real = fs.rmSync;
  t.mock.method(fs, 'rmSync', (path: fs.PathLike, opts?: fs.RmOptions) => {
    if (String(path) === join(claims, '7')) throw Object.assign(new Error(`EACCES: permission denied, unlink '${String(path)}'`), { code: 'EACCES' });
    real(path, opts);
  });
  syncBuiltinESMExports();
  t.after(() => {
    t.mock.restoreAll();
    syncBuiltinESMExports();
  });
  assert.equal(claimBlock(7, claims), false);
  assert.equal(claimBlock(8, claims), true, 'other blocks are still claimed');
  // Removable, a stale claim is taken over.
  t.mock.restoreAll();
  syncBuiltinESMExports();
  assert.equal(claimBlock(7, claims), true);
  assert.equal(fs.readFileSync(join(claims, '7'), 'utf8'), String(process.pid));
});
