/** Settings of the db MCP server (the `mcp.db` section of bugbot.config.json). */
import { z } from 'zod';

export const dbSettingsSchema = z.object({}).strict().prefault({});
export type DbSettings = z.output<typeof dbSettingsSchema>;
