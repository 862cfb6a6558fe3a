// Grouping bench: Grouping Accuracy of normalizeMessage on the 16 Loghub-2k systems
// (group = identical normalized string) against Drain's published numbers, plus
// single-threaded throughput. Exits non-zero when a target is missed.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalizeMessage } from '../../control/intake/normalize.ts';
import { DRAIN_GA, SYSTEMS, groupingAccuracy, loadSystem, resolveLoghubDir } from './lib.ts';
import type { LabelledLog } from './lib.ts';

const TARGET_GA = 0.9;
const TARGET_LINES_PER_S = 200_000;
const WARMUP_PASSES = 5;
const MIN_MEASURE_MS = 3_000;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function loadAll(): LabelledLog[] {
  try {
    const dir = resolveLoghubDir(repoRoot);
    return SYSTEMS.map((s) => loadSystem(dir, s));
  } catch (err) {
    console.error(`bench:grouping: ${(err as Error).message}`);
    process.exit(2);
  }
}

function gaTable(logs: LabelledLog[]): number {
  console.log(`${'system'.padEnd(12)} ${'ours'.padStart(6)} ${'drain'.padStart(6)}  (Drain: published GA, SOURCE.md)`);
  let ours = 0;
  let drain = 0;
  for (const log of logs) {
    const ga = groupingAccuracy(log.contents.map(normalizeMessage), log.eventIds);
    const d = DRAIN_GA[log.system];
    ours += ga;
    drain += d;
    console.log(`${log.system.padEnd(12)} ${ga.toFixed(3).padStart(6)} ${d.toFixed(3).padStart(6)}`);
  }
  const mean = ours / logs.length;
  console.log(`${'mean'.padEnd(12)} ${mean.toFixed(4).padStart(6)} ${(drain / logs.length).toFixed(4).padStart(6)}`);
  return mean;
}

/** Lines per second over repeated passes of every line, after a warm-up so the JIT has settled. */
function throughput(lines: string[]): { linesPerS: number; passes: number } {
  let sink = 0; // consumed below so the calls cannot be optimised away
  for (let p = 0; p < WARMUP_PASSES; p++) for (const l of lines) sink += normalizeMessage(l).length;
  let passes = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (elapsedMs < MIN_MEASURE_MS) {
    for (const l of lines) sink += normalizeMessage(l).length;
    passes++;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  if (sink === 0) throw new Error('normalizer produced only empty strings');
  return { linesPerS: (lines.length * passes) / (elapsedMs / 1000), passes };
}

const logs = loadAll();
const meanGa = gaTable(logs);
const allLines = logs.flatMap((l) => l.contents);
const { linesPerS, passes } = throughput(allLines);
console.log(`\nthroughput: ${Math.round(linesPerS).toLocaleString('en-US')} lines/s (${passes} passes over ${allLines.length.toLocaleString('en-US')} lines, single thread)`);

const gaOk = meanGa >= TARGET_GA;
const speedOk = linesPerS >= TARGET_LINES_PER_S;
console.log(`${gaOk ? 'PASS' : 'FAIL'} mean GA ${meanGa.toFixed(3)} >= ${TARGET_GA}`);
console.log(`${speedOk ? 'PASS' : 'FAIL'} throughput ${Math.round(linesPerS)} >= ${TARGET_LINES_PER_S} lines/s`);
if (!gaOk || !speedOk) process.exitCode = 1;
