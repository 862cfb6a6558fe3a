/**
 * How steady the machine was while a benchmark ran: the CPU time the hypervisor took
 * (the "steal" column of /proc/stat), and how much the reference measurement (the plain
 * endpoint, the bare start-up) moved between repetitions. On a shared virtual machine
 * the host can slow everything without any steal being counted; the reference's spread
 * shows that too. The benchmarks print both, so a run measured on a busy host reads as such.
 */
import { readFileSync } from 'node:fs';

export interface CpuSample {
  steal: number;
  /** Idle, waiting for I/O included. */
  idle: number;
  total: number;
}

/** Jiffies of all CPUs so far: stolen, idle, and in all. Zeros where /proc/stat is missing. */
export function cpuSample(): CpuSample {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is counted in user already)
    return { steal: fields[7] ?? 0, idle: (fields[3] ?? 0) + (fields[4] ?? 0), total: fields.slice(0, 8).reduce((a, b) => a + b, 0) };
  } catch {
    return { steal: 0, idle: 0, total: 0 };
  }
}

/** Percent of the CPU time between two samples that the host took. */
export function stealPercent(from: CpuSample, to: CpuSample): number {
  const total = to.total - from.total;
  return total > 0 ? (100 * (to.steal - from.steal)) / total : 0;
}

/**
 * Percent of the CPU time between two samples that nothing used. A server that leaves the
 * machine idle under a storm is waiting on something (a lock-step between threads, I/O),
 * not short of CPU.
 */
export function idlePercent(from: CpuSample, to: CpuSample): number {
  const total = to.total - from.total;
  return total > 0 ? (100 * (to.idle - from.idle)) / total : 0;
}

/** A line for the end of a benchmark's report, or none when the host took (almost) nothing. */
export function stealNote(percent: number): string | null {
  return percent >= 2
    ? `note: the host took ${percent.toFixed(1)}% of this machine's CPU time during the run (steal, /proc/stat): its timings are noisier than usual`
    : null;
}

/** A line saying how far a reference measurement moved between repetitions, when it moved more than 15 %. */
export function spreadNote(what: string, values: number[], unit: string): string | null {
  if (values.length < 2) return null;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const spread = (hi - lo) / lo;
  return spread > 0.15
    ? `note: ${what} moved from ${Math.round(lo)} to ${Math.round(hi)} ${unit} between repetitions (${Math.round(spread * 100)}%): the machine's speed changed during the run, so compare within a row, not across runs`
    : null;
}
