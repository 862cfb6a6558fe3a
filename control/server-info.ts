/**
 * `<home>/server.json`: where the running `bugbot start` of this home listens, so CLI
 * commands that need the server's process (an approval whose notifications the server
 * sends) can ask it instead of acting on the database alone. Written when it listens,
 * removed when it stops; a file left by a killed server names a dead process and is ignored.
 *
 * It also holds the server's local key (readable by its owner only): on loopback without
 * an API token, the API's actions (approve, skip, requeue, cancel) need it, so code that
 * merely runs on the machine (a dev server reloading the agent's edits) cannot act.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServerInfo {
  pid: number;
  url: string;
  /** Bearer credential for the API's actions when no API token is configured. */
  key: string;
}

const file = (home: string) => join(home, 'server.json');

export function writeServerInfo(home: string, url: string, key: string): void {
  rmSync(file(home), { force: true });
  writeFileSync(file(home), JSON.stringify({ pid: process.pid, url, key } satisfies ServerInfo) + '\n', { mode: 0o600 });
}

/** Remove the file if it is this process's (a newer server may have replaced it). */
export function removeServerInfo(home: string): void {
  if (readServerInfo(home)?.pid === process.pid) rmSync(file(home), { force: true });
}

/** The live server of this home, or null (none started, or it died without cleaning up). */
export function readServerInfo(home: string): ServerInfo | null {
  let info: ServerInfo;
  try {
    info = JSON.parse(readFileSync(file(home), 'utf8')) as ServerInfo;
  } catch {
    return null;
  }
  if (!Number.isInteger(info.pid) || typeof info.url !== 'string' || typeof info.key !== 'string') return null;
  try {
    process.kill(info.pid, 0);
  } catch (err) {
    // EPERM: alive but someone else's; ESRCH: gone.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  return info;
}

/** A fresh local key for one run of `bugbot start`. */
export function newLocalKey(): string {
  return randomBytes(24).toString('base64url');
}
