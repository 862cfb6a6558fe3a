/**
 * A small disk to fill: a tmpfs mounted for one test. Tests run as root (CI does); without
 * the right to mount, the test fails saying so, never skips.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/**
 * Mount a fresh tmpfs of `size` (mount's form: "1m") in a folder of its own; `unmount()`
 * takes the topmost mount off it (lazily when busy). The caller removes `dir` after.
 */
function mountTmpfs(size: string): { dir: string; disk: string; unmount(): void } {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and must run as root (CI does)');
  // Not tempDir(): its removal would run before the unmount (after-hooks run in order).
  const dir = mkdtempSync(join(tmpdir(), 'bugbot-disk-'));
  const disk = join(dir, 'disk');
  mkdirSync(disk);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', disk], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not mount a tmpfs at ${disk} (needs root and mount rights): ${(err as Error).message}`);
  }
  const unmount = () => {
    try {
      execFileSync('umount', [disk], { stdio: 'ignore' });
    } catch {
      execFileSync('umount', ['-l', disk], { stdio: 'ignore' });
    }
  };
  return { dir, disk, unmount };
}

/** A fresh tmpfs of `size` (mount's form: "1m"), unmounted and removed when the test ends. */
export function smallDisk(t: TestContext, size: string): string {
  const { dir, disk, unmount } = mountTmpfs(size);
  t.after(() => {
    unmount();
    rmSync(dir, { recursive: true, force: true });
  });
  return disk;
}

/** Take every free byte of the disk holding `dir`; returns the filler, whose removal gives the space back. */
export function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  const fs = statfsSync(dir);
  writeFileSync(filler, Buffer.alloc(fs.bavail * fs.bsize));
  return filler;
}

/**
 * A tmpfs for one test that `readOnly()` turns read-only the way a file system remounted
 * read-only under a running process is: by a read-only bind mount over it, so files already
 * open for writing stay so (a plain remount refuses while any is: EBUSY). `writable()`
 * takes the bind mount off. Unmounted and removed when the test ends.
 */
export function readOnlyDisk(t: TestContext, size: string): { disk: string; readOnly(): void; writable(): void } {
  const { dir, disk, unmount } = mountTmpfs(size);
  let bound = false;
  t.after(() => {
    if (bound) unmount();
    unmount();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    disk,
    readOnly() {
      if (bound) return;
      execFileSync('mount', ['--bind', disk, disk], { stdio: 'pipe' });
      bound = true;
      execFileSync('mount', ['-o', 'remount,ro,bind', disk], { stdio: 'pipe' });
    },
    writable() {
      if (!bound) return;
      unmount();
      bound = false;
    },
  };
}
