/**
 * Which process holds something (an approval being merged), in a form that outlives it:
 * "<host>/<boot id>/<pid>/<start time>". A PID alone is reused once its process is gone;
 * with the boot and the process's start time (clock ticks since boot, /proc/<pid>/stat)
 * it names one process only. Linux /proc; elsewhere there is no identity and callers
 * fall back to what they did without one (a time limit).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ...": comm may hold spaces and parentheses; starttime is field 22.
    const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return ticks && /^\d+$/.test(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

/** The identity of a running process (this one by default); null where /proc cannot tell. */
export function processIdentity(pid: number = process.pid): string | null {
  const boot = bootId();
  const start = startTicks(pid);
  return boot && start ? `${hostname()}/${boot}/${pid}/${start}` : null;
}

/**
 * Whether the process an identity names is provably gone: this machine booted since, or
 * no process with that PID and start time runs now. False when it runs, and when this
 * machine cannot tell (another host's identity, a malformed one, no /proc).
 */
export function processGone(identity: string): boolean {
  const parts = identity.split('/');
  if (parts.length < 4) return false;
  const [boot, pid, start] = parts.slice(-3) as [string, string, string];
  if (parts.slice(0, -3).join('/') !== hostname() || !/^\d+$/.test(pid)) return false;
  const now = bootId();
  if (!now) return false;
  if (now !== boot) return true;
  return startTicks(Number(pid)) !== start;
}
