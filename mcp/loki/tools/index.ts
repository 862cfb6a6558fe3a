/**
 * The loki server's tools. The client's expected refusals (LokiError: a bad matcher,
 * an unbounded range, Loki unreachable, slow or breaking its answer off) become ToolErrors
 * here, in one place, so the model gets their message as an isError result without a
 * stack trace in the logs.
 */
import type { z } from 'zod';
import { LokiError } from '../../../lib/loki/index.ts';
import { ToolError, type ToolDef } from '../../shared/tool.ts';
import type { LokiToolContext } from '../server.ts';
import { lokiQuery } from './loki-query.ts';
import { lokiUserBreadcrumbs } from './loki-user-breadcrumbs.ts';

type AnyLokiTool = ToolDef<z.ZodRawShape, LokiToolContext>;

function refusalsAsToolErrors<S extends z.ZodRawShape>(tool: ToolDef<S, LokiToolContext>): AnyLokiTool {
  const wrapped: ToolDef<S, LokiToolContext> = {
    ...tool,
    async handler(args, ctx) {
      try {
        return await tool.handler(args, ctx);
      } catch (err) {
        throw err instanceof LokiError ? new ToolError(err.message) : err;
      }
    },
  };
  // registerTools holds tools of every shape; the SDK validates arguments against
  // each tool's own shape before its handler runs, so erasing the shape is safe.
  return wrapped as unknown as AnyLokiTool;
}

export const lokiTools: AnyLokiTool[] = [refusalsAsToolErrors(lokiQuery), refusalsAsToolErrors(lokiUserBreadcrumbs)];
