/** browser_click: click one element on the page. */
import { z } from 'zod';
import { defineTool, text, ToolError } from '../../shared/tool.ts';
import { describePage, errorText, leaveForeignPage, pageText, type BrowserToolContext } from '../browser.ts';
import { newEntriesNote } from '../console-log.ts';

export const browserClick = defineTool({
  name: 'browser_click',
  title: 'Click an element',
  description:
    'Click the one element matching a Playwright selector: CSS (#save, button.primary), text=Save, or ' +
    'role=button[name="Save"]. Fails if nothing matches within the action timeout or if several elements match ' +
    '(make the selector more specific). Waits for a navigation the click starts. The click does whatever the ' +
    'element does in the dev app (submit, delete, pay with test data). Returns where the page is afterwards.',
  input: {
    selector: z.string().min(1).describe('Playwright selector of exactly one element'),
  },
  annotations: { title: 'Click an element', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  handler: async ({ selector }, { session, settings, policy }: BrowserToolContext) => {
    const page = await session.page();
    const before = session.console.lastId();
    try {
      await page.locator(selector).click();
    } catch (err) {
      throw new ToolError(
        `Could not click ${selector} on ${pageText(page.url(), session.mask)} (waited up to ${settings.actionTimeoutMs} ms): ${errorText(err, session.mask)}`,
      );
    }
    await page.waitForLoadState('load').catch(() => undefined);
    const foreign = await leaveForeignPage(page, policy, session.blockedNavigation, session.mask);
    if (foreign) {
      throw new ToolError(`Clicking ${selector} led to ${foreign}, outside the dev server: blocked, page reset to about:blank; ${policy.describe()}.`);
    }
    return text(`Clicked ${selector}. Page: ${await describePage(page, session.mask)}.${newEntriesNote(session.console, before)}`);
  },
});
