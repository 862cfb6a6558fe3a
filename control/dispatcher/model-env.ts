/** The model endpoint credentials a Claude Code process may get, under the names the CLI reads. */
import type { BugbotConfig } from '../config.ts';

export function modelEnv(config: BugbotConfig): Record<string, string> {
  const env: Record<string, string> = {};
  const h = config.harness;
  const key = config.secrets.get(h.apiKeyEnv);
  const url = config.secrets.get(h.baseUrlEnv);
  const oauth = config.secrets.get(h.oauthTokenEnv);
  if (key) env.ANTHROPIC_API_KEY = key;
  if (url) env.ANTHROPIC_BASE_URL = url;
  if (oauth) env.CLAUDE_CODE_OAUTH_TOKEN = oauth;
  return env;
}
