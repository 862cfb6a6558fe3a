/** browser_dev_login: log in to the dev app as one of the configured kinds of user. */
import { z } from 'zod';
import type { BrowserSettings } from '../../../lib/mcp/browser-settings.ts';
import { defineTool, text, ToolError } from '../../shared/tool.ts';
import { describePage, errorText, leaveForeignPage, waitForListener, type BrowserToolContext } from '../browser.ts';
import { newEntriesNote } from '../console-log.ts';

type Roles = BrowserSettings['roles'];
type LoginForm = NonNullable<Roles[string]['form']>;

function knownRoles(roles: Roles): string {
  const names = Object.entries(roles).map(([name, r]) => `${name} (${r.description})`);
  return names.length ? `known roles: ${names.join('; ')}` : 'no roles are configured (mcp.browser.roles in bugbot.config.json)';
}

/** The form's values with `{ env }` references resolved; every missing variable named at once. */
function formValues(role: string, form: LoginForm, secret: BrowserToolContext['secret']): Array<[string, string]> {
  const missing: string[] = [];
  const values: Array<[string, string]> = [];
  for (const [selector, v] of Object.entries(form.fields)) {
    if (typeof v === 'string') {
      values.push([selector, v]);
      continue;
    }
    const value = secret(v.env);
    if (value === undefined) missing.push(v.env);
    else values.push([selector, value]);
  }
  if (missing.length) {
    throw new ToolError(`Role '${role}' fills its login form from ${missing.join(', ')}, not set in the browser MCP server's environment.`);
  }
  return values;
}

export const browserDevLogin = defineTool({
  name: 'browser_dev_login',
  title: 'Log in as a test user',
  description:
    'Log in to the dev app as a configured kind of user (for example a free user, an enterprise user, a paying ' +
    "user with no credits left) through the app's dev-login route or its login form with seeded test credentials. " +
    'Cookies are cleared first, so the browser holds only this login. The known roles are listed in this server\'s ' +
    'instructions; an unknown role is refused with the list. Use it to reproduce a bug as the user who hit it.',
  input: {
    role: z.string().min(1).describe('A configured role name, e.g. free or enterprise'),
  },
  annotations: { title: 'Log in as a test user', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  handler: async ({ role: name }, { session, settings, policy, secret }: BrowserToolContext) => {
    const role = Object.hasOwn(settings.roles, name) ? settings.roles[name] : undefined;
    if (!role) throw new ToolError(`Unknown role '${name}'; ${knownRoles(settings.roles)}.`);
    const values = role.form ? formValues(name, role.form, secret) : [];
    // The settings schema requires exactly one of form and loginUrl.
    const target = policy.resolve(role.form ? role.form.url : role.loginUrl!);
    const how = role.form ? `the login form at ${target.href}` : target.href;

    await waitForListener(target, settings.startupWaitMs);
    const page = await session.page();
    const before = session.console.lastId();
    // Otherwise the previous role's session cookie could outlive this login.
    await page.context().clearCookies();
    let status: number | undefined;
    try {
      status = (await page.goto(target.href))?.status();
      if (role.form) {
        for (const [selector, value] of values) await page.locator(selector).fill(value);
        await page.locator(role.form.submit).click();
        await page.waitForLoadState('load');
      }
    } catch (err) {
      throw new ToolError(`Logging in as '${name}' via ${how} failed: ${errorText(err, session.mask)}${newEntriesNote(session.console, before)}`);
    }
    const foreign = await leaveForeignPage(page, policy, session.blockedNavigation, session.mask);
    if (foreign) throw new ToolError(`Logging in as '${name}' via ${how} led to ${foreign}, outside the dev server: blocked; ${policy.describe()}.`);
    if (!role.form && status !== undefined && status >= 400) {
      throw new ToolError(`Logging in as '${name}': ${how} answered HTTP ${status}; is the dev-login route enabled in the dev server?`);
    }
    if (role.expect) {
      try {
        await page.locator(role.expect).first().waitFor({ state: 'visible' });
      } catch {
        throw new ToolError(
          `Logging in as '${name}' via ${how} did not work: ${role.expect} did not appear within ${settings.actionTimeoutMs} ms. ` +
            `Page: ${await describePage(page, session.mask)}.${newEntriesNote(session.console, before)}`,
        );
      }
    }
    const proof = role.expect ? `; the page shows ${role.expect}` : '';
    return text(`Logged in as '${name}' (${role.description}) via ${how}${proof}. Page: ${await describePage(page, session.mask)}.${newEntriesNote(session.console, before)}`);
  },
});
