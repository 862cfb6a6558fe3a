/**
 * What the SQL guard lets through, built once from the settings: tables and their
 * allowed columns, functions, operators and cast types. Everything else is refused.
 */
import { FORBIDDEN_FUNCTIONS, type DbSettings } from '../../lib/mcp/db-settings.ts';

export interface TablePolicy {
  /** The settings key: `table` or `schema.table`, matched exactly against the query. */
  key: string;
  columns: ReadonlySet<string>;
  sensitive: ReadonlySet<string>;
}

export interface Policy {
  tables: ReadonlyMap<string, TablePolicy>;
  functions: ReadonlySet<string>;
  allowWrites: boolean;
}

/** Read-only, side-effect-free built-ins useful for debugging queries. */
export const DEFAULT_FUNCTIONS = [
  'count', 'sum', 'avg', 'min', 'max', 'bool_and', 'bool_or', 'every', 'array_agg', 'string_agg',
  'stddev', 'variance', 'percentile_cont', 'percentile_disc', 'mode',
  'row_number', 'rank', 'dense_rank', 'lag', 'lead', 'first_value', 'last_value', 'ntile',
  'lower', 'upper', 'length', 'char_length', 'btrim', 'ltrim', 'rtrim', 'substring', 'substr', 'position',
  'strpos', 'replace', 'split_part', 'left', 'right', 'concat', 'concat_ws', 'starts_with', 'md5',
  'abs', 'round', 'ceil', 'ceiling', 'floor', 'trunc', 'greatest', 'least', 'coalesce', 'nullif',
  'now', 'date_trunc', 'date_part', 'extract', 'age', 'to_char', 'to_timestamp', 'timezone', 'make_interval',
  'jsonb_extract_path_text', 'json_extract_path_text', 'jsonb_array_length', 'json_array_length', 'jsonb_typeof',
  'array_length', 'cardinality',
  // What LIKE ... ESCAPE and SIMILAR TO turn into (pg_catalog.like_escape / similar_to_escape).
  'like_escape', 'similar_to_escape',
];

/** Built-in operators (comparison, arithmetic, text, pattern, json, array, range). */
export const ALLOWED_OPERATORS: ReadonlySet<string> = new Set([
  '=', '<>', '!=', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', '^', '||',
  '~~', '~~*', '!~~', '!~~*', '~', '~*', '!~', '!~*',
  '->', '->>', '#>', '#>>', '@>', '<@', '?', '?|', '?&', '&&',
]);

/** Cast targets (after the parser's renaming: int → int4, boolean → bool, ...). */
export const ALLOWED_TYPES: ReadonlySet<string> = new Set([
  'int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'text', 'varchar', 'bpchar', 'bool',
  'date', 'time', 'timetz', 'timestamp', 'timestamptz', 'interval', 'uuid', 'json', 'jsonb',
]);

/** The policy for one server: `allowWrites` only from the harness's command-line flag. */
export function buildPolicy(settings: DbSettings, allowWrites: boolean): Policy {
  const tables = new Map<string, TablePolicy>();
  for (const [key, cols] of Object.entries(settings.tables)) {
    const sensitive = new Set(settings.sensitive[key] ?? []);
    // The settings schema refuses overlaps; filtering again keeps the guard safe on its own.
    tables.set(key, { key, columns: new Set(cols.filter((c) => !sensitive.has(c))), sensitive });
  }
  const functions = new Set([...DEFAULT_FUNCTIONS, ...settings.functions].filter((f) => !FORBIDDEN_FUNCTIONS.some((re) => re.test(f))));
  return { tables, functions, allowWrites };
}

/**
 * Drop allowed columns the database does not have. PostgreSQL reads `t.name` as the
 * function call `name(t)` when t has no such column, so a listed-but-missing column
 * called `to_json` would return the whole row, sensitive columns included.
 */
export function restrictToExisting(policy: Policy, existing: ReadonlyMap<string, ReadonlyMap<string, string>>): Policy {
  const tables = new Map<string, TablePolicy>();
  for (const [key, t] of policy.tables) {
    const cols = existing.get(key);
    tables.set(key, { ...t, columns: new Set([...t.columns].filter((c) => cols?.has(c))) });
  }
  return { ...policy, tables };
}
