/**
 * One tool per file: `defineTool` ties a zod input shape to its handler so the
 * handler's argument types are inferred, and `registerTools` adds them to a server
 * with the one catch where calls are dispatched: a thrown error becomes an
 * `isError` result whose text the model can act on, never a crashed server.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';

export interface ToolDef<Shape extends z.ZodRawShape, Ctx> {
  /** Verb-first and prefixed: browser_navigate, loki_query, db_query. */
  name: string;
  title: string;
  /** A prompt for the model: when to use the tool and its limits. */
  description: string;
  input: Shape;
  annotations: ToolAnnotations;
  // Method syntax on purpose: parameters of methods are checked bivariantly, so a
  // list of tools with different input shapes can share one registry type.
  handler(args: z.infer<z.ZodObject<Shape>>, ctx: Ctx): Promise<CallToolResult>;
}

export function defineTool<Shape extends z.ZodRawShape, Ctx>(def: ToolDef<Shape, Ctx>): ToolDef<Shape, Ctx> {
  return def;
}

/** An expected refusal: its message goes to the model as an isError result. */
export class ToolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolError';
  }
}

export function text(s: string): CallToolResult {
  return { content: [{ type: 'text', text: s }] };
}

export function errorResult(s: string): CallToolResult {
  return { content: [{ type: 'text', text: s }], isError: true };
}

export function registerTools<Ctx>(
  server: McpServer,
  tools: Array<ToolDef<z.ZodRawShape, Ctx>>,
  ctx: Ctx,
  log: (msg: string) => void,
): void {
  for (const tool of tools) {
    server.registerTool(
      tool.name,
      { title: tool.title, description: tool.description, inputSchema: tool.input, annotations: tool.annotations },
      async (args: unknown) => {
        try {
          return await tool.handler(args as z.infer<z.ZodObject<z.ZodRawShape>>, ctx);
        } catch (err) {
          if (err instanceof ToolError) return errorResult(err.message);
          log(`${tool.name} failed: ${(err as Error).stack ?? String(err)}`);
          return errorResult(`${tool.name} failed: ${(err as Error).message}`);
        }
      },
    );
  }
}
