/** The browser server's tools, in the order a model usually needs them. */
import type { z } from 'zod';
import type { ToolDef } from '../../shared/tool.ts';
import type { BrowserToolContext } from '../browser.ts';
import { browserClick } from './browser-click.ts';
import { browserConsoleLogs } from './browser-console-logs.ts';
import { browserDevLogin } from './browser-dev-login.ts';
import { browserNavigate } from './browser-navigate.ts';
import { browserScreenshot } from './browser-screenshot.ts';

export const browserTools: Array<ToolDef<z.ZodRawShape, BrowserToolContext>> = [
  browserNavigate,
  browserScreenshot,
  browserConsoleLogs,
  browserClick,
  browserDevLogin,
];
