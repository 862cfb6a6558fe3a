/** browser_console_logs: recent console messages, page errors and blocked requests. */
import { z } from 'zod';
import { defineTool, text } from '../../shared/tool.ts';
import type { BrowserToolContext } from '../browser.ts';
import { formatEntry } from '../console-log.ts';

export const browserConsoleLogs = defineTool({
  name: 'browser_console_logs',
  title: 'Read console logs and page errors',
  description:
    'Recent console messages (console.log/warn/error), uncaught page errors with stacks, failed requests, HTTP ' +
    'errors (status >= 400) and requests blocked for leaving the dev server, oldest first, each numbered. ' +
    'Pass after=<last number you saw> to get only newer entries. Only the most recent entries are kept and long ' +
    'ones are cut.',
  input: {
    after: z.number().int().min(0).optional().describe('Only entries numbered above this'),
  },
  annotations: { title: 'Read console logs and page errors', readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  handler: async ({ after }, { session }: BrowserToolContext) => {
    const buffer = session.console;
    const entries = buffer.after(after ?? 0);
    if (!entries.length) {
      const since = after ? ` after #${after}` : '';
      return text(`No console messages, page errors or blocked requests${since}.`);
    }
    const dropped = buffer.droppedCount() ? ` (${buffer.droppedCount()} older entries were dropped)` : '';
    const header = `${entries.length} entries, #${entries[0]!.id} to #${entries.at(-1)!.id}${dropped}:`;
    return text([header, ...entries.map(formatEntry)].join('\n'));
  },
});
