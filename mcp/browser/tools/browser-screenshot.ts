/** browser_screenshot: what the page looks like now, as a PNG image. */
import { z } from 'zod';
import { defineTool, ToolError } from '../../shared/tool.ts';

/** The longest side of a screenshot, and its largest size: about what a model takes in one image. */
const MAX_SIDE_PX = 8_000;
const MAX_IMAGE_BYTES = 4_500_000;
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
    let clip: { x: number; y: number; width: number; height: number } | undefined;
    let note = '';
    if (full_page) {
      // A model takes images up to about 8000 px a side (and a few MB): a longer page is cut.
      const size = (await page.evaluate('({ w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight })')) as { w: number; h: number };
      if (size.h > MAX_SIDE_PX || size.w > MAX_SIDE_PX) {
        clip = { x: 0, y: 0, width: Math.min(size.w, MAX_SIDE_PX), height: Math.min(size.h, MAX_SIDE_PX) };
        note = ` (the page is ${size.w}×${size.h} px: only its top-left ${clip.width}×${clip.height} px are shown)`;
      }
    }
    let image = await page.screenshot({ type: 'png', fullPage: full_page, ...(clip ? { clip } : {}) });
    let mimeType = 'image/png';
    if (image.length > MAX_IMAGE_BYTES) {
      image = await page.screenshot({ type: 'jpeg', quality: 60, fullPage: full_page, ...(clip ? { clip } : {}) });
      mimeType = 'image/jpeg';
      note += ' (as a JPEG: the PNG was too large)';
    }
    if (image.length > MAX_IMAGE_BYTES) {
      throw new ToolError(`The screenshot is ${Math.round(image.length / 1e6)} MB even as a JPEG, more than a model can take: take the viewport only (full_page: false).`);
    }
    return {
      content: [
        { type: 'image', data: image.toString('base64'), mimeType },
        { type: 'text', text: `Screenshot of ${await describePage(page)}${note}` },
      ],
    };
  },
});
