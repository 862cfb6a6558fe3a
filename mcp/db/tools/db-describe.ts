/**
 * db_describe: the tables and columns the agent may use (never the sensitive ones),
 * with their types as the database reports them, plus the limits and functions.
 */
import { defineTool, text } from '../../shared/tool.ts';
import type { DbCtx } from '../backend.ts';

/** The db_describe tool. */
export const dbDescribeTool = defineTool({
  name: 'db_describe',
  title: 'List the queryable tables and columns',
  description:
    'List the tables and columns db_query may use, with their types, plus the allowed functions and the row and time ' +
    'limits. Call it before writing a query; columns not listed here (including sensitive ones) are refused.',
  input: {},
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  handler: async (_args, ctx: DbCtx) => {
    const { settings, policy } = ctx;
    const keys = [...policy.tables.keys()];
    let types: Map<string, Map<string, string>> | undefined;
    let typeNote = '';
    try {
      types = await ctx.backend.columnTypes(keys);
    } catch (err) {
      typeNote = ` (column types unavailable: ${(err as Error).message})`;
    }
    const lines = [
      `Database: ${settings.driver === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, ${policy.allowWrites ? 'writes enabled (INSERT / UPDATE / DELETE on these columns)' : 'read-only'}.`,
      `Limits: at most ${settings.rowLimit} rows per query, ${settings.statementTimeoutMs} ms per statement, cells cut at ${settings.maxCellBytes} bytes.`,
      `Tables and the columns you may use${typeNote}:`,
    ];
    for (const t of policy.tables.values()) {
      const found = types?.get(t.key);
      const missing = types && found?.size === 0 ? ' (table not found in the database)' : '';
      const cols = [...t.columns].map((c) => {
        const type = found?.get(c);
        if (type) return `${c} ${type}`;
        return found && found.size > 0 ? `${c} (not in the database)` : c;
      });
      lines.push(`- ${t.key}${missing}: ${cols.join(', ')}`);
    }
    if (policy.tables.size === 0) lines.push('- (none configured: ask a maintainer to list tables in mcp.db.tables)');
    lines.push(`Functions: ${[...policy.functions].sort().join(', ')}.`);
    lines.push('Write PostgreSQL syntax, name every column (no *), pass values as $1, $2 ... params.');
    return text(lines.join('\n'));
  },
});
