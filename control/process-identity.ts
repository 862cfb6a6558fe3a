/**
 * Which process holds something (an approval being merged), in a form that outlives it:
 * "<host>/<boot id>/<pid namespace>/<pid>/<start time>". A PID alone is reused once its
 * process is gone; with the boot, the PID namespace and the process's start time (clock
 * ticks since boot, /proc/<pid>/stat) it names one process only. Linux /proc; elsewhere
 * there is no identity and callers fall back to what they did without one (a time limit).
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** A process's start time; 'gone' when no such process exists, null when it cannot be read. */
function startTicks(pid: number): string | 'gone' | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ...": comm may hold spaces and parentheses; starttime is field 22.
    const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return ticks && /^\d+$/.test(ticks) ? ticks : null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : null;
  }
}

/** This process's PID namespace (its /proc/self/ns/pid link), or null. */
function pidNamespace(): string | null {
  try {
    return /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** The identity of a running process of this PID namespace (this one by default); null where /proc cannot tell. */
export function processIdentity(pid: number = process.pid): string | null {
  const boot = bootId();
  const ns = pidNamespace();
  const start = startTicks(pid);
  return boot && ns && start && start !== 'gone' ? `${hostname()}/${boot}/${ns}/${pid}/${start}` : null;
}

/**
 * Whether the process an identity names is provably gone: this machine booted since, or
 * no process with that PID and start time runs now in the same PID namespace. False when
 * it runs, and whenever this process cannot tell: another host's or PID namespace's
 * identity, a malformed one, no /proc, a /proc entry it may not read.
 */
export function processGone(identity: string): boolean {
  const parts = identity.split('/');
  if (parts.length < 5) return false;
  const [boot, ns, pid, start] = parts.slice(-4) as [string, string, string, string];
  if (parts.slice(0, -4).join('/') !== hostname() || !/^\d+$/.test(pid)) return false;
  const now = bootId();
  if (!now) return false;
  if (now !== boot) return true;
  if (pidNamespace() !== ns) return false;
  const current = startTicks(Number(pid));
  return current !== null && current !== start;
}

/**
 * Whether the process an identity names provably runs now: this host, this boot, this PID
 * namespace, and its PID's process started when it did. False whenever this cannot be
 * told (the cases processGone cannot tell either) and when it is gone.
 */
export function processAlive(identity: string): boolean {
  const parts = identity.split('/');
  if (parts.length < 5) return false;
  const [boot, ns, pid, start] = parts.slice(-4) as [string, string, string, string];
  if (parts.slice(0, -4).join('/') !== hostname() || !/^\d+$/.test(pid)) return false;
  if (bootId() !== boot || pidNamespace() !== ns) return false;
  return startTicks(Number(pid)) === start;
}
