/** The db server's tools. */
import type { z } from 'zod';
import type { ToolDef } from '../../shared/tool.ts';
import type { DbCtx } from '../backend.ts';
import { dbDescribeTool } from './db-describe.ts';
import { dbQueryTool } from './db-query.ts';

/** The tool list; `allowWrites` (the harness's flag) picks db_query's variant. */
export function dbTools(allowWrites: boolean): Array<ToolDef<z.ZodRawShape, DbCtx>> {
  return [dbQueryTool(allowWrites), dbDescribeTool];
}
