import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { constants, open, stat, type FileHandle } from 'node:fs/promises';
import type { TriggerEvent } from '../types.ts';
import { createLogParser, type LogParser } from './logfile.ts';

/**
 * Where each file's resume position survives restarts. `generation`: how many times the
 * file (this inode) was truncated in place; 0 when absent. `fingerprint`: the length and
 * hash of the bytes before `offset`, an opaque string, absent when `offset` is 0. State
 * saved without one is trusted as it is. Inode 0 (no file's): the path was waited for
 * before it existed, so the file that appears there is read from its start.
 */
export interface OffsetStore {
  get(path: string): { inode: number; offset: number; generation?: number; fingerprint?: string | null } | undefined;
  set(path: string, inode: number, offset: number, generation?: number, fingerprint?: string): void;
}

/** The subset of `console` the tailer writes to. */
export interface TailLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

/**
 * Receives the events parsed from one read; called only with a non-empty batch.
 * `newOffset` is the resume offset committed once this returns (or resolves).
 */
export type OnLogEvents = (events: TriggerEvent[], file: string, newOffset: number) => void | Promise<void>;

export interface LogTailerOptions {
  files: string[];
  onEvents: OnLogEvents;
  store: OffsetStore;
  /** Service for lines that do not name one. */
  service?: string;
  /** Default 500. */
  pollMs?: number;
  /** Emit a buffered stack trace once its file has been quiet this long. Default max(1000, 2 × pollMs). */
  idleFlushMs?: number;
  /** Read a file with no stored offset from its beginning instead of its end. Default false. */
  fromStart?: boolean;
  /**
   * How long a renamed or removed file is still read after the rename is seen, before the
   * new file at its path is: logrotate's `create` with a postrotate reload leaves the
   * application writing to the old file for a moment. Default 5000.
   */
  rotateWaitMs?: number;
  logger?: TailLogger;
}

const CHUNK_BYTES = 256 * 1024;
// What stop() still reads of each file: what was appended since the last poll, not a
// backlog (a restart resumes at the saved offset), or Ctrl-C would wait for all of it.
const FINAL_READ_BYTES = 4 * CHUNK_BYTES;
// A line longer than this is cut: its first MAX_LINE_BYTES are parsed as the line, the
// rest is skipped up to its newline, so a runaway writer cannot exhaust memory.
const MAX_LINE_BYTES = 1024 * 1024;
const EMPTY = Buffer.alloc(0);
// How much of what comes before an offset tells whether a file is still the one that was
// read up to there (see fingerprint()). Log lines carry timestamps, so 256 bytes of them
// are all but never written twice.
const PRINT_BYTES = 256;

interface Tracked {
  path: string;
  parser: LogParser;
  fh?: FileHandle;
  inode: number;
  /** Truncations in place of this inode (see pollFile). */
  generation: number;
  /** Next byte to read. */
  readPos: number;
  /** Bytes after the last newline: an incomplete line, parsed once it ends. */
  carry: Buffer;
  /** The last PRINT_BYTES bytes before readPos, as read: still there if the file was not truncated. */
  tail: Buffer;
  /** When (performance.now(): the wall clock may be stepped) the path was seen to name another file or none: the old one is read until rotateWaitMs later. */
  rotatedAt?: number;
  /**
   * Where the line past MAX_LINE_BYTES that is being skipped up to its newline starts (its
   * head was parsed): the offset committed meanwhile, so a restart reads its head again
   * (the same event id, a duplicate) and goes on skipping.
   */
  skipFrom?: number;
  lastDataAt: number;
  /** The file appeared or was replaced while we watched: read it from byte 0. */
  fresh: boolean;
  waiting: boolean;
  lastWarning?: string;
  /** The file's size when the tailer started (where a first read without an offset begins). */
  endAtStart?: number;
  /** A batch the callback rejected, redelivered before anything new is read. */
  retry?: { events: TriggerEvent[]; offset: number };
}

/**
 * Follows log files like `tail -F` by polling (fs.watch misses events on many
 * filesystems), turning appended error entries into TriggerEvents.
 */
export class LogTailer {
  private readonly opts: LogTailerOptions;
  private readonly pollMs: number;
  private readonly idleFlushMs: number;
  private readonly rotateWaitMs: number;
  private readonly logger: TailLogger;
  private readonly buf = Buffer.alloc(CHUNK_BYTES);
  private tracked: Tracked[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  private stopped: Promise<void> = Promise.resolve();

  constructor(opts: LogTailerOptions) {
    this.opts = opts;
    this.pollMs = opts.pollMs ?? 500;
    this.idleFlushMs = opts.idleFlushMs ?? Math.max(1000, 2 * this.pollMs);
    this.rotateWaitMs = opts.rotateWaitMs ?? 5000;
    this.logger = opts.logger ?? console;
  }

  /** Starts polling; a no-op while already running. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.tracked = this.opts.files.map((path) => ({
      path,
      parser: createLogParser({ file: path, service: this.opts.service }),
      inode: 0,
      generation: 0,
      readPos: 0,
      carry: EMPTY,
      tail: EMPTY,
      lastDataAt: performance.now(),
      fresh: false,
      waiting: false,
      // "From the end" means the end as of start(): a line appended before the first
      // (asynchronous) poll is still read.
      endAtStart: sizeNow(path),
    }));
    // Wait for a previous stop() to finish closing before the first poll.
    this.inFlight = this.stopped.then(() => this.loop());
  }

  /**
   * Stops polling, reads what was appended since the last poll, emits any buffered stack
   * trace and closes the files. A backlog (more than FINAL_READ_BYTES) is left where it
   * is, for the next start. Resolves when done; safe to call repeatedly.
   */
  stop(): Promise<void> {
    if (!this.running) return this.stopped;
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    // Captured: a start() right after this replaces this.tracked before we finish.
    const tracked = this.tracked;
    this.stopped = this.inFlight.then(async () => {
      await this.pollAll(tracked, true);
      for (const t of tracked) await t.fh?.close().catch(() => undefined);
    });
    return this.stopped;
  }

  private async loop(): Promise<void> {
    await this.pollAll(this.tracked, false);
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.inFlight = this.loop();
    }, this.pollMs);
  }

  private async pollAll(tracked: Tracked[], final: boolean): Promise<void> {
    for (const t of tracked) {
      try {
        await this.pollFile(t, final);
      } catch (err) {
        this.warn(t, `logfile: ${t.path}: ${(err as Error).message}`);
      }
    }
  }

  private async pollFile(t: Tracked, final: boolean): Promise<void> {
    if (t.retry && !(await this.deliver(t, t.retry.events, t.retry.offset))) return;
    if (!t.fh && !(await this.open(t))) return;
    const fh = t.fh;
    if (!fh) return;
    // Truncated in place (copytruncate): shorter than where we are, or grown back past it
    // between two polls, when the bytes before it are no longer those we read.
    if ((await fh.stat()).size < t.readPos || !(await endsWith(fh, t.readPos, t.tail))) {
      // What is buffered is complete, the rest is new.
      this.logger.info(`logfile: ${t.path} was truncated; reading from the start`);
      const events = t.parser.flush();
      t.readPos = 0;
      t.carry = EMPTY;
      t.tail = EMPTY;
      t.skipFrom = undefined;
      // Its offsets start at 0 again under the same inode: the same line at an offset the
      // old content had would get a stored event's id and be taken for a duplicate (an
      // error logged first thing after every rotation, a regression after a fix). Each
      // truncation is a generation of its own, part of every later id.
      t.generation++;
      t.parser.setInode(t.inode, t.generation);
      if (!(await this.deliver(t, events, 0))) return;
    }
    const { read, atEnd } = await this.drain(t, fh, final ? 'final' : 'poll');
    if (t.retry) return;
    if (t.rotatedAt === undefined && (await statIfExists(t.path))?.ino !== t.inode) {
      // Rotated away or deleted. The old handle still reads the old file, and the
      // application may go on writing to it until it reopens its log (a reload after the
      // rename, as fluentd's rotate_wait and filebeat's close_renamed allow for): it is
      // read for rotateWaitMs more, and only then the new file, so that the old file's
      // lines come first and the saved offset, still the old file's, never runs ahead of
      // what was read of the new one (a restart meanwhile reads the new file whole).
      t.rotatedAt = performance.now();
      this.logger.info(`logfile: ${t.path} was rotated or removed; reading the old file for ${this.rotateWaitMs} ms more`);
    }
    if (t.rotatedAt !== undefined && (final || performance.now() - t.rotatedAt >= this.rotateWaitMs)) {
      // Once more, to its end (nothing reads it after this): the writer may have added lines since the read above.
      await this.drain(t, fh, 'all');
      if (t.retry) return;
      if (!(await this.deliver(t, t.parser.flush(), this.commitPoint(t)))) return;
      // Written to until late in the wait: not a reload that reopens the log a moment after
      // the rename, but a writer that never does (stdout redirected to the file).
      const late = t.lastDataAt - t.rotatedAt;
      if (!final && late >= this.rotateWaitMs / 2) {
        this.logger.warn(
          `logfile: ${t.path} was renamed, and the renamed file was still written to ${Math.round(late)} ms later: the application does not reopen its log, and what it writes there from now on is not read (have it reopen its log after a rotation, with a postrotate reload, or rotate with copytruncate)`,
        );
      }
      await fh.close();
      t.fh = undefined;
      t.fresh = true;
      t.rotatedAt = undefined;
      this.logger.info(`logfile: closed the old ${t.path}`);
      return;
    }
    if (final && !atEnd) {
      // An open trace is left open: its end may be in what was not read, and the next start
      // reads it again whole from the saved offset.
      this.logger.info(`logfile: stopped before the end of ${t.path}; the next start reads it from byte ${this.commitPoint(t)}`);
      return;
    }
    const idle = read === 0 && performance.now() - t.lastDataAt >= this.idleFlushMs;
    if (t.parser.pendingOffset() !== undefined && (final || idle)) {
      await this.deliver(t, t.parser.flush(), this.commitPoint(t));
    }
  }

  /** Opens the file at its resume position; false while it does not exist or is no regular file. */
  private async open(t: Tracked): Promise<boolean> {
    let fh: FileHandle;
    try {
      // A pipe, a socket or a device is not opened at all: opening a FIFO waits for a writer
      // (no other file would be read, and stop() would never return), and one opened and
      // closed again would end a writer's pipe under it. Non-blocking in case it became one
      // since the stat (no effect on a regular file).
      if (!(await stat(t.path)).isFile()) return this.notAFile(t);
      fh = await open(t.path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      t.fresh = true;
      if (!t.waiting) {
        this.logger.info(`logfile: waiting for ${t.path} to appear`);
        // Saved as waited for (inode 0 is no file's): if it appears while nothing watches,
        // the next start reads it from its start too, not from its end as a file never seen.
        if (this.opts.store.get(t.path) === undefined) this.opts.store.set(t.path, 0, 0);
      }
      t.waiting = true;
      return false;
    }
    try {
      return await this.follow(t, fh);
    } catch (err) {
      // Not yet followed: closed, or every poll that fails here (the store unreadable) would leak a descriptor.
      if (t.fh !== fh) await fh.close().catch(() => undefined);
      throw err;
    }
  }

  private notAFile(t: Tracked): false {
    t.fresh = true;
    this.warn(t, `logfile: ${t.path} is not a regular file (a pipe, a socket or a device): log files are followed by byte offset, so that a restart resumes where it stopped; have the program write its log to a file and watch that`);
    return false;
  }

  /** Takes `fh` as the file at `t.path` and finds where to read it from. */
  private async follow(t: Tracked, fh: FileHandle): Promise<boolean> {
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      return this.notAFile(t);
    }
    const saved = this.opts.store.get(t.path);
    // A stored offset counts only for the same file (inode), only if it still fits, and
    // only if what comes before it is what was read (a nightly copytruncate, then a
    // restart once the file has grown back past the offset: resuming there would skip
    // what was written since and start mid-line); a file rotated while we were down is
    // read whole (its predecessor's tail is lost).
    let resume = !t.fresh && saved !== undefined && saved.inode === st.ino && saved.offset <= st.size;
    if (resume && saved?.fingerprint && (await fingerprintAt(fh, saved.offset, saved.fingerprint)) !== saved.fingerprint) {
      this.logger.info(`logfile: ${t.path} is not what was read up to byte ${saved.offset} (truncated while not followed); reading it from the start`);
      resume = false;
    }
    if (resume && saved) t.readPos = saved.offset;
    else if (t.fresh) t.readPos = 0;
    else t.readPos = saved || this.opts.fromStart ? 0 : Math.min(t.endAtStart ?? st.size, st.size);
    // Every time the path is read again from another place than where it stopped (a
    // truncation while we were down, a rotation, a file made again: its inode may be one
    // an earlier file of this path had, with ids already stored), another generation.
    t.generation = saved === undefined ? 0 : (saved.generation ?? 0) + (resume ? 0 : 1);
    t.fh = fh;
    t.inode = st.ino;
    t.parser.setInode(st.ino, t.generation);
    t.carry = EMPTY;
    t.tail = await bytesBefore(fh, t.readPos, PRINT_BYTES);
    t.skipFrom = undefined;
    t.waiting = false;
    t.lastDataAt = performance.now();
    this.opts.store.set(t.path, t.inode, t.readPos, t.generation, fingerprint(t.tail));
    this.logger.info(`logfile: following ${t.path} from byte ${t.readPos}`);
    return true;
  }

  /**
   * Reads to the current end of file and returns the bytes read and whether it got there;
   * stops early if delivery fails. `poll` also stops once stop() is called, `final` (stop()'s
   * own read) after FINAL_READ_BYTES; `all` reads to the end whatever happens.
   */
  private async drain(t: Tracked, fh: FileHandle, mode: 'poll' | 'final' | 'all'): Promise<{ read: number; atEnd: boolean }> {
    let read = 0;
    for (;;) {
      if ((mode === 'poll' && !this.running) || (mode === 'final' && read >= FINAL_READ_BYTES)) return { read, atEnd: false };
      const { bytesRead } = await fh.read(this.buf, 0, CHUNK_BYTES, t.readPos);
      if (bytesRead === 0) return { read, atEnd: true };
      read += bytesRead;
      t.lastDataAt = performance.now();
      const events = this.parse(t, this.buf.subarray(0, bytesRead));
      if (!(await this.deliver(t, events, this.commitPoint(t)))) return { read, atEnd: false };
    }
  }

  private parse(t: Tracked, chunk: Buffer): TriggerEvent[] {
    const data = t.carry.length > 0 ? Buffer.concat([t.carry, chunk]) : chunk;
    const base = t.readPos - t.carry.length;
    t.readPos += chunk.length;
    const recent = chunk.length >= PRINT_BYTES ? chunk : Buffer.concat([t.tail, chunk]);
    t.tail = Buffer.from(recent.subarray(recent.length - Math.min(PRINT_BYTES, recent.length)));
    const events: TriggerEvent[] = [];
    let start = 0;
    if (t.skipFrom !== undefined) {
      const nl = data.indexOf(0x0a);
      if (nl === -1) {
        t.carry = EMPTY;
        return events;
      }
      start = nl + 1;
      t.skipFrom = undefined;
    }
    start = afterNuls(data, start);
    for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
      events.push(...t.parser.push(data.toString('utf8', start, nl), base + start));
      start = afterNuls(data, nl + 1);
    }
    if (data.length - start > MAX_LINE_BYTES) {
      // One line, its head: not pieces that each read as a line of their own.
      events.push(...t.parser.push(data.toString('utf8', start, start + MAX_LINE_BYTES), base + start, { cut: true }));
      t.skipFrom = base + start;
      start = data.length;
    }
    // Copy: `chunk` is the shared read buffer and is overwritten by the next read.
    t.carry = Buffer.from(data.subarray(start));
    return events;
  }

  /** First byte not yet turned into delivered events: an incomplete line or an open stack trace. */
  private commitPoint(t: Tracked): number {
    return Math.min(t.readPos - t.carry.length, t.parser.pendingOffset() ?? Infinity, t.skipFrom ?? Infinity);
  }

  /** Hands events to the callback, then persists the offset; false (and queued for retry) if it threw. */
  private async deliver(t: Tracked, events: TriggerEvent[], offset: number): Promise<boolean> {
    try {
      if (events.length > 0) await this.opts.onEvents(events, t.path, offset);
    } catch (err) {
      t.retry = { events, offset };
      this.warn(t, `logfile: ${t.path}: event handler failed, retrying: ${(err as Error).message}`);
      return false;
    }
    t.retry = undefined;
    t.lastWarning = undefined;
    this.opts.store.set(t.path, t.inode, offset, t.generation, await this.fingerprintOf(t, offset));
    return true;
  }

  /**
   * The fingerprint of what comes before `offset`, from memory when it is where reading
   * stopped. None (the offset is then trusted) when it cannot be read: the events are
   * delivered already, and a failed read must not lose their commit.
   */
  private async fingerprintOf(t: Tracked, offset: number): Promise<string | undefined> {
    if (offset === t.readPos) return fingerprint(t.tail);
    if (!t.fh) return undefined;
    try {
      return fingerprint(await bytesBefore(t.fh, offset, PRINT_BYTES));
    } catch {
      return undefined;
    }
  }

  /** Logs a problem once per streak: a failure that repeats every poll would flood the log. */
  private warn(t: Tracked, msg: string): void {
    if (msg !== t.lastWarning) this.logger.warn(msg);
    t.lastWarning = msg;
  }
}

/**
 * The first byte at or after `i` that is not NUL. A program that writes its log without
 * O_APPEND (its stdout redirected with `>`, not `>>`) goes on at its own offset after a
 * copytruncate, and the file starts with a hole as long as it was, read as NUL bytes: no
 * line, and it would otherwise run into the line written after it.
 */
function afterNuls(data: Buffer, i: number): number {
  while (i < data.length && data[i] === 0) i++;
  return i;
}

/** Up to `max` bytes that end at `offset` (fewer if the file is now shorter). */
async function bytesBefore(fh: FileHandle, offset: number, max: number): Promise<Buffer> {
  const n = Math.min(max, offset);
  const buf = Buffer.alloc(n);
  const { bytesRead } = n > 0 ? await fh.read(buf, 0, n, offset - n) : { bytesRead: 0 };
  return buf.subarray(0, bytesRead);
}

/** Whether the file still holds `expected` just before `offset`. */
async function endsWith(fh: FileHandle, offset: number, expected: Buffer): Promise<boolean> {
  if (expected.length === 0) return true;
  return (await bytesBefore(fh, offset, expected.length)).equals(expected);
}

/** "length:hash" of the bytes before an offset; none for none (offset 0 always fits). */
function fingerprint(bytes: Buffer): string | undefined {
  if (bytes.length === 0) return undefined;
  return `${bytes.length}:${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}`;
}

/** The fingerprint, made like `saved`, of what the file now holds before `offset`. */
async function fingerprintAt(fh: FileHandle, offset: number, saved: string): Promise<string | undefined> {
  const length = Number(/^(\d+):/.exec(saved)?.[1] ?? NaN);
  if (!(length > 0 && length <= offset)) return undefined;
  const bytes = await bytesBefore(fh, offset, length);
  return bytes.length === length ? fingerprint(bytes) : undefined;
}

function sizeNow(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

async function statIfExists(path: string): Promise<{ ino: number } | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
