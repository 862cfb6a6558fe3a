/**
 * Settings of the db MCP server (the `mcp.db` section of bugbot.config.json).
 * Only what the agent may see is configured here; the connection URL is a secret and
 * comes from the environment variable `urlEnv` names. Writes cannot be switched on
 * from settings: only the harness's explicit `--allow-writes` flag does that.
 */
import { z } from 'zod';
import { envName } from './env-name.ts';

/**
 * Functions that read files, other tables or sessions, run SQL given as text, sleep,
 * change settings, sequences or the server's state, or reach other servers. Listing one
 * in `functions` is a config error.
 */
export const FORBIDDEN_FUNCTIONS: readonly RegExp[] = [
  /^pg_sleep/, /^set_config$/, /^current_setting$/, /^dblink/, /^(nextval|setval|currval|lastval)$/,
  /^lo_/, /^pg_read_/, /^pg_ls_/, /^pg_stat_/, /^pg_(terminate|cancel|signal)_backend$/, /^pg_(try_)?advisory/,
  /^pg_notify$/, /^(query|table|database|cursor)_to_xml/, /^(schema|database)_to_xml/, /^xpath/,
  /^row_to_json$/, /^txid_current/, /^pg_current_xact_id/, /^pg_reload_conf$/, /^pg_rotate_logfile$/,
  // SQL given as text: ts_stat('SELECT secret FROM t') reads any table the role can.
  /^ts_stat$/, /^ts_rewrite$/,
  // Replication, backups, WAL, snapshots and maintenance: the server's state, not data.
  /^pg_logical_/, /^pg_replication_/, /^pg_create_/, /^pg_drop_replication/, /^pg_promote$/, /^pg_switch_wal$/,
  /^pg_(start|stop)_backup$/, /^pg_backup_/, /^pg_wal_replay_/, /^pg_export_snapshot$/, /^pg_import_/,
  /^pg_log_backend_memory_contexts$/, /^pg_file_/, /^pg_logdir_/, /^brin_/, /^gin_clean_pending_list$/,
];

const identifier = z.string().min(1).max(63);
/** Keys are `table` (schema public) or `schema.table`, as stored (usually lowercase). */
const tableKey = z.string().regex(/^[^.\s]+(\.[^.\s]+)?$/, 'expected "table" or "schema.table"');

export const dbSettingsSchema = z
  .object({
    driver: z.enum(['postgres', 'sqlite']).default('postgres'),
    /** Environment variable holding the read-only connection URL (postgres). */
    urlEnv: envName.default('BUGBOT_DB_READONLY_URL'),
    /** Environment variable holding the URL used with `--allow-writes` (postgres). */
    writeUrlEnv: envName.default('BUGBOT_DB_WRITE_URL'),
    /** SQLite database file; relative paths resolve against the settings file's folder. */
    sqlitePath: z.string().min(1).optional(),
    /** The columns the agent may read (and, with `--allow-writes`, write), per table. */
    tables: z.record(tableKey, z.array(identifier).min(1)).default({}),
    /** Columns never visible, even if listed in `tables`; listing one in both is an error. */
    sensitive: z.record(tableKey, z.array(identifier)).default({}),
    /** Functions allowed on top of the built-in list (count, sum, lower, date_trunc, ...). */
    functions: z.array(z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a lowercase function name without schema')).default([]),
    statementTimeoutMs: z.number().int().min(100).max(600_000).default(5000),
    rowLimit: z.number().int().min(1).max(10_000).default(200),
    /** Longer cell values are cut, so one huge JSON blob cannot flood the model's context. */
    maxCellBytes: z.number().int().min(16).max(1_000_000).default(2000),
  })
  .strict()
  .superRefine((s, ctx) => {
    for (const [table, cols] of Object.entries(s.sensitive)) {
      for (const col of cols) {
        if (s.tables[table]?.includes(col)) {
          ctx.addIssue({ code: 'custom', path: ['tables', table], message: `column ${table}.${col} is listed in both tables and sensitive` });
        }
      }
    }
    for (const fn of s.functions) {
      if (FORBIDDEN_FUNCTIONS.some((re) => re.test(fn))) {
        ctx.addIssue({ code: 'custom', path: ['functions'], message: `function ${fn} can never be allowed (it escapes the read-only sandbox)` });
      }
    }
    if (s.driver === 'sqlite' && !s.sqlitePath) {
      ctx.addIssue({ code: 'custom', path: ['sqlitePath'], message: 'driver "sqlite" needs sqlitePath' });
    }
  })
  .prefault({});
export type DbSettings = z.output<typeof dbSettingsSchema>;
