// Loghub-2k loading and Grouping Accuracy, shared by the grouping bench and its
// regression test so both measure exactly the same thing.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The 16 Loghub-2k systems, in the order SOURCE.md lists them. */
export const SYSTEMS = [
  'Android', 'Apache', 'BGL', 'HDFS', 'HPC', 'Hadoop', 'HealthApp', 'Linux',
  'Mac', 'OpenSSH', 'OpenStack', 'Proxifier', 'Spark', 'Thunderbird', 'Windows', 'Zookeeper',
] as const;

/** A Loghub-2k system name. */
export type SystemName = (typeof SYSTEMS)[number];

/** Drain's published GA per system, copied from the dataset's SOURCE.md. */
export const DRAIN_GA: Readonly<Record<SystemName, number>> = {
  Android: 0.911, Apache: 1.0, BGL: 0.963, HDFS: 0.998, HPC: 0.887, Hadoop: 0.948,
  HealthApp: 0.78, Linux: 0.69, Mac: 0.787, OpenSSH: 0.788, OpenStack: 0.733,
  Proxifier: 0.527, Spark: 0.92, Thunderbird: 0.955, Windows: 0.997, Zookeeper: 0.967,
};

/** One system's labelled lines: message text and ground-truth EventId, index-aligned. */
export interface LabelledLog {
  system: SystemName;
  contents: string[];
  eventIds: string[];
}

/**
 * Locates the Loghub-2k folder: `$LOGHUB_DIR`, else `../shared/data/loghub_2k` beside
 * the repo. Throws with a clear message when it is missing, because a silently empty
 * benchmark would report nothing useful.
 */
export function resolveLoghubDir(repoRoot: string): string {
  const dir = process.env['LOGHUB_DIR'] ?? resolve(repoRoot, '../shared/data/loghub_2k');
  if (!existsSync(join(dir, 'SOURCE.md'))) {
    throw new Error(`Loghub-2k data not found at ${dir} (expected SOURCE.md and <Sys>/<Sys>_2k.log_structured.csv); set LOGHUB_DIR to its location`);
  }
  return dir;
}

/**
 * Parses RFC 4180 CSV: quoted fields may hold commas, newlines and doubled quotes.
 * Returns rows of fields; a trailing newline does not produce an empty row.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === '"' && field === '') {
      // Quoted field: read to the closing quote, unescaping "" pairs.
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) throw new Error('CSV: unterminated quoted field');
        field += text.slice(i, q);
        if (text[q + 1] === '"') { field += '"'; i = q + 2; } else { i = q + 1; break; }
      }
    } else if (c === ',') {
      row.push(field); field = ''; i++;
    } else if (c === '\n' || c === '\r') {
      row.push(field); field = ''; rows.push(row); row = [];
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
    } else {
      field += c; i++;
    }
  }
  if (field !== '' || row.length > 0) { row.push(field); rows.push(row); }
  return rows;
}

/** Reads `<Sys>_2k.log_structured.csv`, taking the Content and EventId columns by header name. */
export function loadSystem(dir: string, system: SystemName): LabelledLog {
  const path = join(dir, system, `${system}_2k.log_structured.csv`);
  if (!existsSync(path)) throw new Error(`Loghub-2k file missing: ${path}`);
  const [header, ...rows] = parseCsv(readFileSync(path, 'utf8'));
  const ci = header?.indexOf('Content') ?? -1;
  const ei = header?.indexOf('EventId') ?? -1;
  if (ci < 0 || ei < 0) throw new Error(`${path}: no Content/EventId columns`);
  return {
    system,
    contents: rows.map((r) => r[ci] ?? ''),
    eventIds: rows.map((r) => r[ei] ?? ''),
  };
}

/**
 * Grouping Accuracy (Zhu et al. 2019): a line is correct when the lines sharing its
 * predicted key are exactly the lines sharing its EventId. Returns the correct fraction.
 */
export function groupingAccuracy(keys: readonly string[], eventIds: readonly string[]): number {
  const truthSize = new Map<string, number>();
  for (const id of eventIds) truthSize.set(id, (truthSize.get(id) ?? 0) + 1);
  const groups = new Map<string, number[]>();
  keys.forEach((k, i) => {
    const g = groups.get(k);
    if (g) g.push(i); else groups.set(k, [i]);
  });
  let correct = 0;
  for (const members of groups.values()) {
    // A predicted group is right iff it is pure and holds its whole truth group.
    const id = eventIds[members[0]!]!;
    if (members.length === truthSize.get(id) && members.every((i) => eventIds[i] === id)) {
      correct += members.length;
    }
  }
  return keys.length === 0 ? 0 : correct / keys.length;
}
