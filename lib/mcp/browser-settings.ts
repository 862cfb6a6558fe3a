/**
 * Settings of the browser MCP server (the `mcp.browser` section of bugbot.config.json).
 * Every field has a default so `{}` parses; the harness fills `origins` per worker
 * (the worker's own dev server) and the config names the dev-login roles.
 */
import { z } from 'zod';
import { envName } from './env-name.ts';


/**
 * A bare http(s) origin such as `http://127.0.0.1:4101`, normalized by the URL parser
 * (a trailing slash is dropped, default ports removed) so comparisons are exact.
 */
const origin = z.string().transform((s, ctx) => {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    ctx.addIssue({ code: 'custom', message: `'${s}' is not a URL; write an origin like http://127.0.0.1:4101` });
    return z.NEVER;
  }
  const bare = url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !bare) {
    ctx.addIssue({ code: 'custom', message: `'${s}' is not a bare http(s) origin; write it like http://127.0.0.1:4101` });
    return z.NEVER;
  }
  return url.origin;
});

/** A form field value: literal text, or `{ env: NAME }` for a seeded user's password. */
const fieldValue = z.union([z.string(), z.object({ env: envName }).strict()]);

const loginForm = z
  .object({
    /** Path (or URL on an allowed origin) of the login page. */
    url: z.string().min(1),
    /** Playwright selector → value to fill in. */
    fields: z.record(z.string().min(1), fieldValue),
    /** Playwright selector of the button that submits the form. */
    submit: z.string().min(1),
  })
  .strict();

const role = z
  .object({
    /** Who this user is, shown to the model: "free plan user", "enterprise admin", ... */
    description: z.string().min(1),
    /** A dev-login route that logs in on GET, e.g. `/dev-login?role=free`. */
    loginUrl: z.string().min(1).optional(),
    form: loginForm.optional(),
    /** A Playwright selector (`text=Signed in as free`, `#account-menu`) that proves the login. */
    expect: z.string().min(1).optional(),
  })
  .strict()
  .refine((r) => (r.loginUrl === undefined) !== (r.form === undefined), {
    message: 'a role needs exactly one of loginUrl or form',
  });

export const browserSettingsSchema = z
  .object({
    /** Debian's Chromium; Playwright's own browser downloads are not used. */
    chromiumPath: z.string().min(1).default('/usr/bin/chromium'),
    /** The only origins the browser may reach (the worker's dev server). */
    origins: z.array(origin).default([]),
    /** Dev-login roles by name (`free`, `enterprise`, `paid-no-credits`, ...). */
    roles: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'role names use A-Z, a-z, 0-9, _ . -'), role).default({}),
    viewport: z
      .object({
        width: z.number().int().min(200).max(4096).default(1280),
        height: z.number().int().min(200).max(4096).default(800),
      })
      .strict()
      .prefault({}),
    navigationTimeoutMs: z.number().int().positive().default(15_000),
    /**
     * How long opening a loopback page waits for something to listen there: the worker's
     * dev server starts while the first session does (the harness sets its dev-server timeout).
     */
    startupWaitMs: z.number().int().min(0).default(60_000),
    /** How long a click or a form fill waits for its element. */
    actionTimeoutMs: z.number().int().positive().default(5_000),
    headless: z.boolean().default(true),
    /** Console messages, page errors and blocked requests kept (oldest dropped first). */
    maxConsoleEntries: z.number().int().min(1).max(10_000).default(200),
  })
  .strict()
  .prefault({});
export type BrowserSettings = z.output<typeof browserSettingsSchema>;
