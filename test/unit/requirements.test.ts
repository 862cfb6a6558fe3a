// When the workers hold (claim nothing) and why: what a run needs on this machine and a
// model to talk to. The control plane's side is in test/e2e/cli.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { workersHeld } from '../../control/dispatcher/requirements.ts';
import { tempDir, testConfig } from '../support/helpers.ts';

test('no model credentials hold the workers; a key, an OAuth token or a base URL is enough', (t) => {
  const home = tempDir(t);
  assert.equal(workersHeld(testConfig(home, {}, {})), 'no model credentials (start bugbot with ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN set)');
  for (const env of [{ ANTHROPIC_API_KEY: 'sk-test' }, { CLAUDE_CODE_OAUTH_TOKEN: 'tok' }, { ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' }]) {
    assert.equal(workersHeld(testConfig(home, {}, env)), null, JSON.stringify(env));
  }
  // The names the config points at are the ones asked for.
  const renamed = testConfig(home, { harness: { apiKeyEnv: 'TEAM_MODEL_KEY' } }, {});
  assert.match(workersHeld(renamed) ?? '', /start bugbot with TEAM_MODEL_KEY or CLAUDE_CODE_OAUTH_TOKEN set/);
  assert.equal(workersHeld(testConfig(home, { harness: { apiKeyEnv: 'TEAM_MODEL_KEY' } }, { TEAM_MODEL_KEY: 'k' })), null);
});

test('a Claude Code command of your own may bring its credentials: not held for them', (t) => {
  const home = tempDir(t);
  assert.equal(workersHeld(testConfig(home, { harness: { claude: '/usr/bin/true' } }, {})), null);
});

test('a missing command holds them too, with how to install it, next to the missing model', (t) => {
  const home = tempDir(t);
  const reason = workersHeld(testConfig(home, {}, {}), '/nonexistent');
  // (The Claude Code CLI comes with bugbot, at an absolute path, so a PATH cannot hide it.)
  assert.equal(
    reason,
    'git, flock, bwrap, socat, grep not found (apt-get install git util-linux bubblewrap socat grep); no model credentials (start bugbot with ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN set)',
  );
});
