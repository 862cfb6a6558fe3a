/** browser_screenshot: what the page looks like now, as a PNG image. */
import { z } from 'zod';
import { defineTool } from '../../shared/tool.ts';
import { describePage, type BrowserToolContext } from '../browser.ts';

export const browserScreenshot = defineTool({
  name: 'browser_screenshot',
  title: 'Screenshot the page',
  description:
    'Take a PNG screenshot of the current page (the viewport, or the whole scrollable page with full_page). ' +
    'Use it after browser_navigate, browser_click or browser_dev_login to check what a user sees. ' +
    'Before any navigation the page is about:blank.',
  input: {
    full_page: z.boolean().default(false).describe('Capture the whole scrollable page instead of the viewport'),
  },
  annotations: { title: 'Screenshot the page', readOnlyHint: true, openWorldHint: false },
  handler: async ({ full_page }, { session }: BrowserToolContext) => {
    const page = await session.page();
    const png = await page.screenshot({ type: 'png', fullPage: full_page });
    return {
      content: [
        { type: 'image', data: png.toString('base64'), mimeType: 'image/png' },
        { type: 'text', text: `Screenshot of ${await describePage(page)}` },
      ],
    };
  },
});
