/** Settings of the browser MCP server (the `mcp.browser` section of bugbot.config.json). */
import { z } from 'zod';

export const browserSettingsSchema = z.object({}).strict().prefault({});
export type BrowserSettings = z.output<typeof browserSettingsSchema>;
