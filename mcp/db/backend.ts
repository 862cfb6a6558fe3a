/**
 * What the tools need from a database: run one guarded statement within the
 * limits, and report the types of the configured tables' columns. PostgreSQL
 * (postgres.ts) and SQLite (sqlite.ts) implement it.
 */
import type { DbSettings } from '../../lib/mcp/db-settings.ts';
import type { GuardedSql } from './guard.ts';
import type { Policy } from './policy.ts';

export type Param = string | number | boolean | null;

export interface Limits {
  rowLimit: number;
  statementTimeoutMs: number;
  /** Longer cells are cut (by the database where it can: see CutCell). */
  maxCellBytes: number;
}

/**
 * A cell the database cut before sending it: its first characters, and the whole value's
 * length in bytes (undefined: only known to be longer than `head`).
 */
export class CutCell {
  constructor(
    readonly head: string,
    readonly bytes?: number,
  ) {}
}

/**
 * The most a db_query reply carries, all cells together (JSON): maxCellBytes bounds one
 * cell, this the many (a row of hundreds of wide columns, or a few hundred wide rows).
 * A backend may stop reading once the rows it has are more than this (see `overflow`).
 */
export const MAX_REPLY_BYTES = 256 * 1024;

/** What a reply shows of each cell of a row wider than MAX_REPLY_BYTES, when it is the first. */
export function replyCellShare(columns: number): number {
  return Math.max(16, Math.floor(MAX_REPLY_BYTES / Math.max(1, columns) / 2));
}

export interface QueryResult {
  columns: string[];
  rows: unknown[][];
  /** More rows existed than the row limit; only the first rowLimit are in `rows`. */
  truncated: boolean;
  /**
   * Reading stopped at the last row of `rows`, which cannot be in a reply whole: the rows
   * so far pass MAX_REPLY_BYTES, or it alone is wider (its long cells may come cut to
   * replyCellShare). How many rows follow it is not known.
   */
  overflow?: boolean;
  /** Rows written by INSERT / UPDATE / DELETE. */
  changes?: number;
}

export interface DbBackend {
  run(q: GuardedSql, params: Param[]): Promise<QueryResult>;
  /** Column name → type for each configured table key; a missing table maps to an empty map. */
  columnTypes(tables: string[]): Promise<Map<string, Map<string, string>>>;
  close(): Promise<void>;
}

/** The refusal text for a query stopped by the time limit, shared by both backends. */
export function timeoutMessage(ms: number): string {
  return `query cancelled: it ran past the ${ms} ms statement timeout. Narrow it (a WHERE on an indexed column, fewer joins, an aggregate) and try again`;
}

/** What the db tools are handed. */
export interface DbCtx {
  /** The policy as configured (what db_describe shows). */
  policy: Policy;
  /** The policy the guard enforces: configured columns the database really has. */
  verifiedPolicy: () => Promise<Policy>;
  backend: DbBackend;
  settings: DbSettings;
}
