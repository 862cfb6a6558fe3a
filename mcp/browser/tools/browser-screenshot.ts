/** browser_screenshot: what the page looks like now, as a PNG image. */
import { z } from 'zod';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { defineTool, ToolError } from '../../shared/tool.ts';
import { describePage, type BrowserToolContext } from '../browser.ts';

/** The longest side of a screenshot, and its largest size: about what a model takes in one image. */
const MAX_SIDE_PX = 8_000;
const MAX_IMAGE_BYTES = 4_500_000;

/** The page's content size in CSS px, as Chromium laid it out (CDP Page.getLayoutMetrics). */
async function layoutSize(page: Page): Promise<{ w: number; h: number }> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { cssContentSize } = await cdp.send('Page.getLayoutMetrics');
    return { w: Math.ceil(cssContentSize.width), h: Math.ceil(cssContentSize.height) };
  } finally {
    await cdp.detach().catch(() => undefined);
  }
}

/**
 * layoutSize within `ms`: the renderer answers Page.getLayoutMetrics, and a CDP call has
 * no timeout of its own, so a page whose script loops held the call for ever. Failing
 * here lets the tool's caller close that page (recoverIfHung).
 */
async function layoutSizeWithin(page: Page, ms: number): Promise<{ w: number; h: number }> {
  const asked = layoutSize(page);
  // Settles after the page is closed; by then no one waits for it.
  asked.catch(() => undefined);
  const size = await Promise.race([asked, sleep(ms).then(() => undefined)]);
  if (!size) throw new ToolError(`The page did not say how large it is within ${ms} ms, so no full-page screenshot was taken.`);
  return size;
}

/** Width and height of a PNG, from its IHDR chunk (bytes 16 to 23). */
function pngSize(png: Buffer): { w: number; h: number } {
  return { w: png.readUInt32BE(16), h: png.readUInt32BE(20) };
}

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
  handler: async ({ full_page }, { session, settings }: BrowserToolContext) => {
    const page = await session.page();
    let clip: { x: number; y: number; width: number; height: number } | undefined;
    let note = '';
    const cutTo = (size: { w: number; h: number }) => {
      clip = { x: 0, y: 0, width: Math.min(size.w, MAX_SIDE_PX), height: Math.min(size.h, MAX_SIDE_PX) };
      note = ` (the page is ${size.w}×${size.h} px: only its top-left ${clip.width}×${clip.height} px are shown)`;
    };
    // A model takes images up to about 8000 px a side (and a few MB): a longer page is cut.
    // The size comes from Chromium's layout, not from the page's own scripts, which could
    // redefine scrollHeight and so pass a 20000 px page for a short one.
    const size = full_page ? await layoutSizeWithin(page, settings.actionTimeoutMs) : undefined;
    if (size && (size.h > MAX_SIDE_PX || size.w > MAX_SIDE_PX)) cutTo(size);
    let image = await page.screenshot({ type: 'png', fullPage: full_page, ...(clip ? { clip } : {}) });
    // The image itself is the last word (the page may have grown between the two calls).
    const taken = pngSize(image);
    if (taken.w > MAX_SIDE_PX || taken.h > MAX_SIDE_PX) {
      cutTo(taken);
      image = await page.screenshot({ type: 'png', fullPage: full_page, clip });
    }
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
        { type: 'text', text: `Screenshot of ${await describePage(page, session.mask)}${note}` },
      ],
    };
  },
});
