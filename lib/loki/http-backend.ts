/**
 * The Loki HTTP backend: GET /loki/api/v1/query_range with a timeout, bearer or basic
 * auth and the tenant header (X-Scope-OrgID). Responses are validated before use:
 * streams (with or without `stats`) and, for raw metric LogQL, matrices.
 * https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-logs-within-a-range-of-time
 */
import { z } from 'zod';
import { buildLogQL } from './logql.ts';
import { toNs } from './time-range.ts';
import { LokiError, type Backend, type BackendResult, type LogQuery, type QueryStats } from './types.ts';

export interface HttpBackendOptions {
  url: string;
  token?: string;
  basic?: { user: string; password: string };
  tenant?: string;
  timeoutMs: number;
  defaultSelector: string;
  /** Masks secrets in Loki's error text before it is shown. */
  redact: (s: string) => string;
}

// Loki answers are bounded by `limit`; anything far larger is not a Loki answer.
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

const streamsSchema = z.array(
  z.object({ stream: z.record(z.string(), z.string()), values: z.array(z.tuple([z.string().regex(/^\d+$/), z.string()], z.unknown())) }),
);
const matrixSchema = z.array(
  z.object({ metric: z.record(z.string(), z.string()), values: z.array(z.tuple([z.number(), z.string()])) }),
);
const responseSchema = z.object({
  status: z.literal('success'),
  data: z.object({ resultType: z.string(), result: z.array(z.unknown()), stats: z.unknown().optional() }),
});
const statsSchema = z.object({
  summary: z.object({ totalLinesProcessed: z.number(), totalBytesProcessed: z.number(), execTime: z.number() }),
});

export function createHttpBackend(opts: HttpBackendOptions): Backend {
  const base = opts.url.replace(/\/+$/, '');
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  else if (opts.basic) headers.authorization = `Basic ${Buffer.from(`${opts.basic.user}:${opts.basic.password}`).toString('base64')}`;
  if (opts.tenant) headers['x-scope-orgid'] = opts.tenant;

  const run = async (logql: string, q: Pick<LogQuery, 'range' | 'limit' | 'direction'>, signal?: AbortSignal) => {
    const params = new URLSearchParams({
      query: logql,
      start: String(toNs(q.range.start)),
      end: String(toNs(q.range.end)),
      limit: String(q.limit),
      direction: q.direction,
    });
    const body = await get(`${base}/loki/api/v1/query_range?${params}`, headers, opts, signal);
    return parse(body, logql, q.limit, opts.redact);
  };
  return {
    kind: 'http',
    where: `Loki at ${base}`,
    query: (q, signal) => run(buildLogQL(q, opts.defaultSelector), q, signal),
    queryLogQL: run,
  };
}

async function get(url: string, headers: Record<string, string>, opts: HttpBackendOptions, signal?: AbortSignal): Promise<string> {
  const where = `Loki at ${opts.url}`;
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  // The timeout covers the whole answer: the body too, which comes after the headers.
  const failed = (err: unknown, said: (cause: string) => string): LokiError => {
    if (err instanceof LokiError) return err;
    if (signal?.aborted) return new LokiError('the Loki query was cancelled');
    if (timeout.aborted) return new LokiError(`${where} did not answer within ${opts.timeoutMs} ms (mcp.loki.timeoutMs): narrow the time range or add label matchers`);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return new LokiError(`${where} ${said(cause?.code ?? cause?.message ?? (err as Error).message)}`);
  };
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: signal ? AbortSignal.any([timeout, signal]) : timeout });
  } catch (err) {
    throw failed(err, (cause) => `is unreachable (${cause}): check mcp.loki.url and that Loki is running`);
  }
  let text: string;
  try {
    text = await readCapped(res);
  } catch (err) {
    throw failed(err, (cause) => `broke its answer off (${cause})`);
  }
  // Redacted whole, then cut: a secret cut in half first could slip past its pattern.
  if (!res.ok) throw new LokiError(httpProblem(res.status, opts.redact(text.trim()).slice(0, 500), where));
  return text;
}

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > MAX_RESPONSE_BYTES) {
      // Leaving the loop cancels the body (the stream is locked to it until then).
      throw new LokiError(`Loki's answer exceeded ${MAX_RESPONSE_BYTES} bytes: narrow the query or lower limit`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function httpProblem(status: number, body: string, where: string): string {
  const said = body ? `: ${body}` : '';
  if (status === 401 || status === 403) {
    return `${where} refused the request (${status})${said}. Check the credentials named by mcp.loki.tokenEnv or basicUserEnv/basicPasswordEnv, and mcp.loki.tenant`;
  }
  if (status === 400) return `Loki rejected the query (400)${said}`;
  if (status === 429) return `Loki is rate-limiting queries (429)${said}: wait, or narrow the range and limit`;
  return `${where} answered ${status}${said}`;
}

function parse(text: string, logql: string, limit: number, redact: (s: string) => string): BackendResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // A proxy's or gateway's page, say: as redacted as any other text Loki's side sends.
    throw new LokiError(`Loki's answer is not JSON (is mcp.loki.url the Loki API root?): ${redact(text).slice(0, 200)}`);
  }
  const res = responseSchema.safeParse(json);
  if (!res.success) throw new LokiError(`Loki's answer is not a query_range response: ${lokiSaid(z.prettifyError(res.error), redact)}`);
  const { resultType, result, stats } = res.data.data;
  const parsedStats = statsSchema.safeParse(stats);
  const base = { query: logql, notes: [], stats: parsedStats.success ? toStats(parsedStats.data.summary) : undefined };
  if (resultType === 'streams') {
    const streams = shape(streamsSchema, result, 'streams', redact);
    const entries = streams.flatMap((s) => s.values.map(([ts, line]) => ({ ts: BigInt(ts), labels: s.stream, line })));
    entries.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    return { ...base, entries, limitReached: entries.length >= limit };
  }
  if (resultType === 'matrix') {
    const series = shape(matrixSchema, result, 'matrix', redact).map((s) => ({ labels: s.metric, values: s.values }));
    return { ...base, entries: [], series, limitReached: false };
  }
  throw new LokiError(`Loki answered with resultType ${lokiSaid(JSON.stringify(resultType), redact)}; only streams and matrix results are supported`);
}

/** Most of Loki's side's text an error shows. */
const MAX_SAID_CHARS = 500;

/**
 * Text from Loki's answer in an error (a resultType it echoed, a schema error naming its
 * keys and values): redacted whole, then cut, like an HTTP error's body; a secret cut in
 * half first could slip past its pattern.
 */
function lokiSaid(text: string, redact: (s: string) => string): string {
  const r = redact(text);
  return r.length > MAX_SAID_CHARS ? `${r.slice(0, MAX_SAID_CHARS)}… [${r.length - MAX_SAID_CHARS} more chars]` : r;
}

function shape<T>(schema: z.ZodType<T>, result: unknown, type: string, redact: (s: string) => string): T {
  const r = schema.safeParse(result);
  if (!r.success) throw new LokiError(`Loki's ${type} result has an unexpected shape: ${lokiSaid(z.prettifyError(r.error), redact)}`);
  return r.data;
}

function toStats(s: z.infer<typeof statsSchema>['summary']): QueryStats {
  return { linesProcessed: s.totalLinesProcessed, bytesProcessed: s.totalBytesProcessed, execSeconds: s.execTime };
}
