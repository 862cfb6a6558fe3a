/**
 * Who runs this home. `<home>/bugbot.lock.db` is the home's lock: one `bugbot start` holds
 * it from before it changes anything (reconciling runs, the store) until it exits, so a
 * second one cannot take over a live control plane's runs. It is an exclusive SQLite
 * transaction never committed: SQLite's POSIX advisory lock on the file, which the OS
 * drops when the process dies however it dies (a `kill -9` leaves nothing stale behind,
 * unlike a pid file, whose pid may meanwhile name another process).
 *
 * `<home>/server.json`: where the running `bugbot start` of this home listens, so CLI
 * commands that need the server's process (an approval whose notifications the server
 * sends) can ask it instead of acting on the database alone. Written by the lock's holder
 * when it listens, removed by that process when it stops; a file left by a killed server
 * names a dead process (or, its PID reused, another one: the file holds the server's
 * process identity) and is ignored, as is any file while no process holds the lock.
 *
 * It also holds the server's local key (readable by its owner only): on loopback without
 * an API token, the API's actions (approve, skip, requeue, cancel) need it, so code that
 * merely runs on the machine (a dev server reloading the agent's edits) cannot act.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processGone, processIdentity } from './process-identity.ts';

export interface ServerInfo {
  pid: number;
  url: string;
  /** Bearer credential for the API's actions when no API token is configured. */
  key: string;
  /** The server's process identity (process-identity.ts): its PID, once reused, names another process. */
  identity?: string | null;
}

/** This process's hold on a home: the only one that may write its server.json. */
export interface HomeLock {
  readonly home: string;
  /** Idempotent; exiting releases it too. */
  release(): void;
}

const file = (home: string) => join(home, 'server.json');

/**
 * Locks this process holds, by home. Also keeps each connection reachable: a connection
 * the garbage collector finalizes would close, and its lock go with it.
 */
const held = new Map<string, Database.Database>();

/**
 * How long a start waits for the home's lock: a command asking homeLocked() holds a shared
 * lock on the file for one statement, and a start at that instant must not be turned away
 * as if another control plane ran. A live one holds it for good: refused after this wait.
 */
const LOCK_WAIT_MS = 1_000;

/**
 * Take the home's lock for this process, or null when another process holds it (a live
 * `bugbot start` of this home). Waits at most LOCK_WAIT_MS.
 */
export function lockHome(home: string): HomeLock | null {
  if (held.has(home)) return null;
  mkdirSync(home, { recursive: true, mode: 0o700 });
  // A held lock is SQLITE_BUSY after LOCK_WAIT_MS, not after the default 5 s of retries.
  const db = new Database(join(home, 'bugbot.lock.db'), { timeout: LOCK_WAIT_MS });
  try {
    // The rollback journal (SQLite's default, never WAL here): EXCLUSIVE then keeps every
    // other connection out, readers included.
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') return null;
    throw err;
  }
  held.set(home, db);
  return {
    home,
    release() {
      if (held.get(home) !== db) return;
      held.delete(home);
      db.close();
    },
  };
}

/**
 * Whether a process holds the home's lock (a `bugbot start` of it is running or starting
 * up), asked without taking it and without making anything: false when there is no lock
 * file. A read of the file needs the shared lock the holder's exclusive one keeps out;
 * it holds that for one statement, which a start at that instant waits out (LOCK_WAIT_MS).
 */
export function homeLocked(home: string): boolean {
  if (held.has(home)) return true;
  let db: Database.Database;
  try {
    db = new Database(join(home, 'bugbot.lock.db'), { readonly: true, fileMustExist: true, timeout: 0 });
  } catch {
    return false;
  }
  try {
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return false;
  } catch (err) {
    return (err as { code?: string }).code === 'SQLITE_BUSY';
  } finally {
    db.close();
  }
}

/** Tell CLI commands where this server listens (replacing what a killed server left). */
export function writeServerInfo(lock: HomeLock, url: string, key: string): void {
  const tmp = `${file(lock.home)}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, JSON.stringify({ pid: process.pid, url, key, identity: processIdentity() } satisfies ServerInfo) + '\n', { mode: 0o600 });
  // A rename: a CLI command reading meanwhile sees the old file or the new one, never half.
  renameSync(tmp, file(lock.home));
}

/** Remove the file if this process wrote it. */
export function removeServerInfo(home: string): void {
  if (readServerInfo(home)?.pid === process.pid) rmSync(file(home), { force: true });
}

/**
 * The live server of this home, or null (none started, or it died without cleaning up).
 * Only while a process holds the home's lock: a file a killed server left may name a PID
 * its identity cannot rule out (written in another PID namespace: a container sharing the
 * home; no /proc to read) that some other process has now.
 */
export function readServerInfo(home: string): ServerInfo | null {
  let info: ServerInfo;
  try {
    info = JSON.parse(readFileSync(file(home), 'utf8')) as ServerInfo;
  } catch {
    return null;
  }
  if (!Number.isInteger(info.pid) || typeof info.url !== 'string' || typeof info.key !== 'string') return null;
  if (!homeLocked(home)) return null;
  try {
    process.kill(info.pid, 0);
  } catch (err) {
    // EPERM: alive but someone else's; ESRCH: gone.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  // Alive, but another process with the killed server's PID (files written before
  // server.json held an identity are taken by their PID, as then).
  if (typeof info.identity === 'string' && processGone(info.identity)) return null;
  return info;
}

/** A fresh local key for one run of `bugbot start`. */
export function newLocalKey(): string {
  return randomBytes(24).toString('base64url');
}
