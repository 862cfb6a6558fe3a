/** Settings of the loki MCP server (the `mcp.loki` section of bugbot.config.json). */
import { z } from 'zod';

export const lokiSettingsSchema = z.object({}).strict().prefault({});
export type LokiSettings = z.output<typeof lokiSettingsSchema>;
