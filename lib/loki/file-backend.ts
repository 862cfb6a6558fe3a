/**
 * The file backend, for installs without Loki: JSON-lines log files read line by line
 * and filtered the way the equivalent LogQL would filter them. Fields of the line act
 * as labels (nested keys flattened with `_`), plus `filename`. Memory stays bounded:
 * only about twice `limit` matching lines are held at any time. Labels and `contains`
 * are matched on redacted values, as the reader will see them: matching raw ones would
 * let a caller test a masked secret (`password=~"h.*"`) by whether a line comes back.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { plural } from './format.ts';
import { flattenJson, lineTime, parseJsonObject, redactedValue } from './fields.ts';
import { jsRegex, pipeline, selector, validateMatchers } from './logql.ts';
import { toNs } from './time-range.ts';
import { LokiError, type Backend, type BackendResult, type LogEntry, type LogQuery } from './types.ts';

type Predicate = (fields: Record<string, string>, line: string) => boolean;

export interface FileBackendOptions {
  /** The client's redaction of a text: what labels and `contains` are matched against. */
  redact: (s: string) => string;
  /** A query's whole read of the files stops after this long (mcp.loki.timeoutMs), as an HTTP request to Loki does. */
  timeoutMs: number;
}

export function createFileBackend(files: string[], opts: FileBackendOptions): Backend {
  const where = files.length === 1 ? `log file ${files[0]}` : `${files.length} log files`;
  return {
    kind: 'file',
    where,
    query: async (q, signal) => {
      const timeout = AbortSignal.timeout(opts.timeoutMs);
      const either = signal ? AbortSignal.any([timeout, signal]) : timeout;
      let onAbort = () => {};
      // Raced as well: a read that waits on the file (a pipe with nothing more to say) checks no signal.
      const aborted = new Promise<never>((_resolve, reject) => {
        onAbort = () => reject(either.reason as Error);
        either.addEventListener('abort', onAbort, { once: true });
      });
      try {
        return await Promise.race([scanFiles(files, q, opts.redact, either), aborted]);
      } catch (err) {
        // Its own limit, not the caller's cancel: named, with what to do about it.
        if (timeout.aborted && !signal?.aborted) {
          throw new LokiError(`reading ${where} took longer than ${opts.timeoutMs} ms (mcp.loki.timeoutMs): narrow the time range or add label matchers`);
        }
        throw err;
      } finally {
        either.removeEventListener('abort', onAbort);
      }
    },
  };
}

async function scanFiles(files: string[], q: LogQuery, redact: (s: string) => string, signal?: AbortSignal): Promise<BackendResult> {
  const match = compile(q, redact);
  const startNs = toNs(q.range.start);
  const endNs = toNs(q.range.end);
  const kept: LogEntry[] = [];
  const notes: string[] = [];
  let matched = 0;
  let unreadable = 0;
  let skipped = 0;

  for (const file of files) {
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(file)).mtimeMs;
    } catch (err) {
      unreadable++;
      notes.push(`${file}: not readable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      continue;
    }
    // A file last written before the range began (a rotated one) holds no line in it.
    if (mtimeMs < q.range.start.getTime()) continue;
    const input = createReadStream(file, { encoding: 'utf8' });
    const stop = () => input.destroy();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const raw of createInterface({ input, crlfDelay: Infinity })) {
        signal?.throwIfAborted();
        const line = raw.trim();
        if (!line) continue;
        const obj = parseJsonObject(line);
        const ts = obj && lineTime(obj);
        if (!obj || ts === undefined) {
          skipped++;
          continue;
        }
        if (ts < startNs || ts >= endNs) continue;
        if (!match({ ...flattenJson(obj), filename: file }, line)) continue;
        matched++;
        kept.push({ ts, labels: { filename: file }, line });
        if (kept.length >= 2 * q.limit) trim(kept, q);
      }
    } finally {
      signal?.removeEventListener('abort', stop);
      input.destroy();
    }
    signal?.throwIfAborted();
  }
  if (files.length === 0 || unreadable === files.length) {
    throw new LokiError(`no log file could be read (${notes.join('; ') || 'mcp.loki.files is empty'}): check mcp.loki.files`);
  }
  if (skipped) notes.push(`${plural(skipped, 'line')} skipped: not JSON objects with a time field (time, timestamp, ts, @timestamp, date)`);
  trim(kept, q);
  return { query: selector(q.matchers) + pipeline(q), entries: kept, limitReached: matched > q.limit, notes };
}

// Sort oldest first and keep the `limit` lines the direction asks for.
function trim(entries: LogEntry[], q: LogQuery): void {
  entries.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  const extra = entries.length - q.limit;
  if (extra <= 0) return;
  if (q.direction === 'backward') entries.splice(0, extra);
  else entries.splice(q.limit);
}

function compile(q: LogQuery, redact: (s: string) => string): Predicate {
  validateMatchers(q.matchers);
  const checks: Predicate[] = q.matchers.map((m) => {
    const value = (f: Record<string, string>) => redactedValue(m.name, f[m.name] ?? '', redact);
    if (m.op === '=') return (f) => value(f) === m.value;
    if (m.op === '!=') return (f) => value(f) !== m.value;
    const re = jsRegex(m.value, true);
    if (!re) {
      throw new LokiError(
        `regex ${JSON.stringify(m.value)} for ${m.name} is not one the file backend can run: it needs RE2-style syntax that runs in linear time (no backreferences or lookaround)`,
      );
    }
    return m.op === '=~' ? (f) => re.test(value(f)) : (f) => !re.test(value(f));
  });
  const anyOf = q.anyOf?.map((s) => s.toLowerCase());
  if (anyOf?.length) {
    checks.push((_f, line) => {
      const lower = line.toLowerCase();
      return anyOf.some((s) => lower.includes(s));
    });
  }
  const field = q.field;
  if (field) checks.push((f) => (field.value === undefined ? Boolean(f[field.label]) : f[field.label] === field.value));
  // Last, so only the lines that pass every other check are redacted for it.
  const contains = q.contains;
  if (contains.length) {
    checks.push((_f, line) => {
      const redacted = redact(line);
      return contains.every((c) => redacted.includes(c));
    });
  }
  return (f, line) => checks.every((c) => c(f, line));
}
