/** browser_console_logs: recent console messages, page errors and blocked requests. */
import { z } from 'zod';
import { defineTool, text } from '../../shared/tool.ts';
import type { BrowserToolContext } from '../browser.ts';
import { formatEntry } from '../console-log.ts';

/** At most this much text in one answer. */
const MAX_RESULT_CHARS = 40_000;

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
    // Oldest first, as many as fit in MAX_RESULT_CHARS (a model reads ~25k tokens of a
    // tool's answer); the rest are one call away (after=).
    const lines: string[] = [];
    let size = 0;
    for (const e of entries) {
      const line = formatEntry(e);
      if (lines.length && size + line.length + 1 > MAX_RESULT_CHARS) break;
      lines.push(line);
      size += line.length + 1;
    }
    const last = entries[lines.length - 1]!;
    const more = lines.length < entries.length ? `; ${entries.length - lines.length} newer entries did not fit in this answer: call again with after=${last.id}` : '';
    const header = `${lines.length} entries, #${entries[0]!.id} to #${last.id}${dropped}${more}:`;
    return text([header, ...lines].join('\n'));
  },
});
