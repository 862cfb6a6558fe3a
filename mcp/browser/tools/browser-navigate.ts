/** browser_navigate: open a page of the worker's dev server. */
import { z } from 'zod';
import { defineTool, text, ToolError } from '../../shared/tool.ts';
import { describePage, errorText, leaveForeignPage, waitForListener, type BrowserToolContext } from '../browser.ts';
import { newEntriesNote } from '../console-log.ts';

export const browserNavigate = defineTool({
  name: 'browser_navigate',
  title: 'Open a dev server page',
  description:
    "Open a URL in the headless browser and wait for its load event. Give a full URL on the worker's dev server " +
    "or a path such as /settings/billing (resolved against the current page, else the first allowed origin). " +
    'Only the dev server origins are allowed: other sites, file:, data: and chrome: URLs are refused, and so are ' +
    'redirects and requests the page makes to other origins. Returns the final URL, HTTP status and title; use ' +
    'browser_screenshot to see the page and browser_console_logs for its errors.',
  input: {
    url: z.string().min(1).describe('A dev server URL (http://127.0.0.1:4101/plans) or a path (/plans)'),
  },
  annotations: { title: 'Open a dev server page', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  handler: async ({ url }, { session, settings, policy }: BrowserToolContext) => {
    const target = policy.resolve(url, session.currentUrl());
    await waitForListener(target, settings.startupWaitMs);
    const page = await session.page();
    const before = session.console.lastId();
    let status: number | undefined;
    try {
      status = (await page.goto(target.href, { waitUntil: 'load' }))?.status();
    } catch (err) {
      throw new ToolError(`Opening ${target.href} failed: ${errorText(err, session.mask)}${newEntriesNote(session.console, before)}`);
    }
    const foreign = await leaveForeignPage(page, policy, session.blockedNavigation, session.mask);
    if (foreign) {
      throw new ToolError(
        `${target.href} redirected to ${foreign}, outside the dev server: the redirect was blocked and the page reset to about:blank; ${policy.describe()}.`,
      );
    }
    const http = status === undefined ? '' : ` (HTTP ${status})`;
    return text(`Opened ${await describePage(page, session.mask)}${http}.${newEntriesNote(session.console, before)}`);
  },
});
