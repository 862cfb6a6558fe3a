/**
 * Files of a run's `agent/` folder (plan.md, verdict.json, diff.patch, the notes), as the
 * harness reads and writes them: outside any sandbox, as the operator, who can read the
 * local key in <home>/server.json, ~/.ssh and other tickets' reports and write ~/.bashrc.
 * The agent's sessions write that folder, so whatever stands at a name there may be a
 * symbolic link (or a FIFO, a device) of its making: plan.md → server.json would put the
 * key into the next prompt, verdict.json → ~/.bashrc would have the harness write there.
 * The control plane reads and writes that folder through these too (the dashboard, the
 * pull request's body, the docs search's pre-context).
 *
 *   readAgentFile(path)        the text of a regular file; null when there is none (missing,
 *                              a link, anything else): O_NOFOLLOW in the open itself, then
 *                              fstat (a check before the open would race a swap)
 *   readAgentFileHead(path, n) the same, its first n bytes and whether there was more
 *   writeAgentFile(path, data) a new file renamed over the name: a link standing there is
 *                              replaced, never written through
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * A descriptor of PATH opened for reading when it is a regular file, else null (missing, a
 * symbolic link, a folder, a FIFO, a socket, a device). O_NONBLOCK: a FIFO planted there
 * opens without waiting for a writer, and is then refused as no regular file.
 */
function openRegular(path) {
  let fd;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    // ELOOP: a link (O_NOFOLLOW); ENXIO: a socket.
    if (err.code === 'ENOENT' || err.code === 'ELOOP' || err.code === 'ENXIO' || err.code === 'ENOTDIR') return null;
    throw err;
  }
  try {
    if (fstatSync(fd).isFile()) return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  closeSync(fd);
  return null;
}

/** The text of PATH when it is a regular file, else null. */
export function readAgentFile(path) {
  const fd = openRegular(path);
  if (fd === null) return null;
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** At most MAX bytes of PATH when it is a regular file (and whether there was more), else null. */
export function readAgentFileHead(path, max) {
  const fd = openRegular(path);
  if (fd === null) return null;
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, max));
    const n = readSync(fd, buf, 0, buf.length, 0);
    return { text: buf.subarray(0, n).toString('utf8'), truncated: size > max };
  } finally {
    closeSync(fd);
  }
}

/**
 * Write DATA to PATH by a new file beside it (O_EXCL | O_NOFOLLOW: nothing that stands at
 * the temporary name is opened; its mode is what a plain write would give, the umask's),
 * renamed over PATH: the rename replaces the directory entry, whatever it was.
 */
export function writeAgentFile(path, data) {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o666);
  try {
    try {
      writeFileSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // gone already
    }
    throw err;
  }
}
