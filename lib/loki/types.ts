/**
 * The vocabulary of the Loki client: a structured query both backends understand
 * (the HTTP backend renders it as LogQL, the file backend evaluates it), the
 * entries they return, and the one error type for expected refusals.
 */

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface LabelMatcher {
  name: string;
  op: MatchOp;
  value: string;
}

export interface TimeRange {
  start: Date;
  /** Exclusive, as in Loki's query_range. */
  end: Date;
}

export type Direction = 'backward' | 'forward';

export interface LogQuery {
  /** May be empty: the HTTP backend then uses `defaultSelector`, the file backend reads every line. */
  matchers: LabelMatcher[];
  /** Each must occur in the line (LogQL `|= "..."`). */
  contains: string[];
  /** Case-insensitive alternatives the line must contain one of (rendered as `|~ "(?i)a|b"`). */
  anyOf?: string[];
  /** Parse the line and keep those whose `label` field (or stream label) is non-empty / equals `value`. */
  field?: { label: string; parser: 'json' | 'logfmt'; value?: string };
  range: TimeRange;
  limit: number;
  /** backward keeps the newest `limit` lines of the range, forward the oldest. */
  direction: Direction;
}

export interface LogEntry {
  /** Nanoseconds since the epoch (Loki's precision). */
  ts: bigint;
  /** Stream labels (HTTP) or the file name (file backend). */
  labels: Record<string, string>;
  line: string;
}

export interface Series {
  labels: Record<string, string>;
  /** [unix seconds, value] as Loki returns them. */
  values: Array<[number, string]>;
}

export interface QueryStats {
  linesProcessed: number;
  bytesProcessed: number;
  execSeconds: number;
}

/** What a backend returns; the client redacts it before anyone sees it. */
export interface BackendResult {
  /** The LogQL sent (HTTP) or a LogQL-like description of the filter (file). */
  query: string;
  /** Oldest first. */
  entries: LogEntry[];
  /** Metric (matrix) results of raw LogQL. */
  series?: Series[];
  /** More lines matched than the limit let through. */
  limitReached: boolean;
  stats?: QueryStats;
  /** Things the reader should know (skipped files, unreadable lines). */
  notes: string[];
}

export interface Backend {
  readonly kind: 'http' | 'file';
  /** A short description for logs and results (never credentials). */
  readonly where: string;
  query(q: LogQuery, signal?: AbortSignal): Promise<BackendResult>;
  /** Raw LogQL: the HTTP backend only. */
  queryLogQL?(logql: string, q: Pick<LogQuery, 'range' | 'limit' | 'direction'>, signal?: AbortSignal): Promise<BackendResult>;
}

/** An expected refusal or failure whose message says what was wrong and what is allowed. */
export class LokiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LokiError';
  }
}
