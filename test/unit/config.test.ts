import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, servingWarnings, stripJsonComments } from '../../control/config.ts';
import { STARTER_CONFIG } from '../../control/starter-config.ts';
import { tempDir } from '../support/helpers.ts';

test('embedded defaults work with no file at all', (t) => {
  const dir = tempDir(t);
  const cfg = loadConfig({ cwd: dir, env: {} });
  assert.equal(cfg.configPath, null);
  assert.equal(cfg.server.host, '127.0.0.1');
  assert.equal(cfg.server.port, 7777);
  assert.equal(cfg.intake.settleSeconds, 30);
  assert.equal(cfg.workers, 2);
  assert.equal(cfg.home, join(dir, '.bugbot'));
});

test('precedence: defaults < file < env < flags', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'bugbot.config.json'), JSON.stringify({ server: { port: 8000 }, workers: 3, intake: { settleSeconds: 10 } }));
  const fromFile = loadConfig({ cwd: dir, env: {} });
  assert.equal(fromFile.server.port, 8000);
  assert.equal(fromFile.workers, 3);
  const fromEnv = loadConfig({ cwd: dir, env: { BUGBOT_PORT: '8001', BUGBOT_WORKERS: '4' } });
  assert.equal(fromEnv.server.port, 8001);
  assert.equal(fromEnv.workers, 4);
  assert.equal(fromEnv.intake.settleSeconds, 10, 'untouched file values stay');
  const fromFlags = loadConfig({ cwd: dir, env: { BUGBOT_PORT: '8001' }, flags: { server: { port: 8002 } } });
  assert.equal(fromFlags.server.port, 8002);
});

test('relative paths: the file\'s against its folder, the environment\'s and the flags\' against the working directory', (t) => {
  const dir = tempDir(t);
  const cwd = tempDir(t);
  const path = join(dir, 'bugbot.config.json');
  writeFileSync(
    path,
    JSON.stringify({
      home: 'state',
      target: { repo: '../shop' },
      watch: { files: ['logs/app.log'] },
      mcp: { db: { driver: 'sqlite', sqlitePath: 'dev.db' }, loki: { files: ['logs/app.jsonl'] } },
    }),
  );
  const fromFile = loadConfig({ path, cwd, env: {} });
  assert.equal(fromFile.home, join(dir, 'state'));
  assert.equal(fromFile.target.repo, join(dir, '..', 'shop'));
  assert.deepEqual(fromFile.watch.files, [join(dir, 'logs', 'app.log')]);
  // The MCP servers run with a copy of their settings in each run's folder: their files too are the file's.
  assert.equal(fromFile.mcp.db.sqlitePath, join(dir, 'dev.db'));
  assert.deepEqual(fromFile.mcp.loki.files, [join(dir, 'logs', 'app.jsonl')]);
  // bugbot --config /x/bugbot.config.json --home relhome, run from another folder.
  const fromFlag = loadConfig({ path, cwd, env: {}, flags: { home: 'relhome' } });
  assert.equal(fromFlag.home, join(cwd, 'relhome'));
  assert.equal(fromFlag.target.repo, join(dir, '..', 'shop'), 'the file\'s own paths stay against its folder');
  // BUGBOT_TARGET_REPO=. is the folder the command runs in.
  const fromEnv = loadConfig({ path, cwd, env: { BUGBOT_TARGET_REPO: '.', BUGBOT_HOME: 'envhome' } });
  assert.equal(fromEnv.target.repo, cwd);
  assert.equal(fromEnv.home, join(cwd, 'envhome'));
  // Defaults live next to the file.
  writeFileSync(path, '{}');
  assert.equal(loadConfig({ path, cwd, env: {} }).home, join(dir, '.bugbot'));
  assert.equal(loadConfig({ path, cwd, env: {} }).target.repo, dir);
});

test('every problem is reported at once', (t) => {
  const dir = tempDir(t);
  writeFileSync(
    join(dir, 'bugbot.config.json'),
    JSON.stringify({ workers: 9, server: { port: 'x' }, intake: { settleSeconds: -1 }, typo: true, mcp: { db: { urlEnv: 'not a var!', writeUrlEnv: 'x y' } } }),
  );
  try {
    loadConfig({ cwd: dir, env: { BUGBOT_WORKERS: 'many' } });
    assert.fail('expected a ConfigError');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const text = err.problems.join('\n');
    assert.match(text, /BUGBOT_WORKERS="many": expected an integer/);
    assert.match(text, /workers/);
    assert.match(text, /server\.port/);
    assert.match(text, /intake\.settleSeconds/);
    assert.match(text, /typo/);
    // Every *Env setting names a variable, the database server's too.
    assert.match(text, /mcp\.db\.urlEnv: must be an environment variable name/);
    assert.match(text, /mcp\.db\.writeUrlEnv: must be an environment variable name/);
    assert.ok(err.problems.length >= 7, text);
  }
  // A folder given as the config file: said so, not a read error (EISDIR).
  assert.throws(() => loadConfig({ cwd: dir, env: { BUGBOT_CONFIG: dir } }), (err: unknown) => /config file .* is not a file \(name the JSON file itself\)/.test((err as ConfigError).problems.join('\n')));
  // A value the environment gave names its variable; one a flag overrode does not.
  assert.throws(
    () => loadConfig({ cwd: tempDir(t), env: { BUGBOT_WORKERS: '20', BUGBOT_PORT: '0' } }),
    (err: unknown) => {
      const text = (err as ConfigError).problems.join('\n');
      assert.match(text, /^workers: .* \(from BUGBOT_WORKERS="20"\)$/m);
      return true;
    },
  );
  assert.throws(
    () => loadConfig({ cwd: tempDir(t), env: { BUGBOT_WORKERS: '3' }, flags: { workers: 20 } }),
    (err: unknown) => /^workers: [^(]*$/m.test((err as ConfigError).problems.join('\n')),
  );
  // A value a named flag gave names the flag (bugbot start -w 20, --port 99999).
  assert.throws(
    () => loadConfig({ cwd: tempDir(t), env: { BUGBOT_WORKERS: '3' }, flags: { workers: 20, server: { port: 99_999 } }, flagNames: { workers: '--workers', 'server.port': '--port' } }),
    (err: unknown) => {
      const text = (err as ConfigError).problems.join('\n');
      assert.match(text, /^workers: .* \(from --workers 20\)$/m);
      assert.match(text, /^server\.port: .* \(from --port 99999\)$/m);
      return true;
    },
  );
});

// Review finding (a new user): "server: Unrecognized key: \"prot\"" named the parent
// only, with no hint; a missing field read "expected string, received undefined".
test('an unknown key is named by its whole path with the nearest known key; a missing field is "required"', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'bugbot.config.json'), JSON.stringify({ server: { prot: 7777 }, tiggers: {}, docs: { glob: ['x'] }, triage: { ignore: [{ patern: 'x' }] }, zzzz: 1 }));
  assert.throws(
    () => loadConfig({ cwd: dir, env: {} }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        [...err.problems].sort(),
        [
          'docs.glob: unknown key (did you mean "docs.globs"?)',
          'server.prot: unknown key (did you mean "server.port"?)',
          'tiggers: unknown key (did you mean "triggers"?)',
          'triage.ignore[0].patern: unknown key',
          'triage.ignore[0].pattern: required (Invalid input: expected string)',
          'zzzz: unknown key',
        ],
      );
      return true;
    },
  );
});

// Review finding: port 465 without `secure` (or 587 with it) timed out or failed its TLS
// handshake; each mail was retried as a temporary failure and then lost, with no word at start.
test('SMTP settings the server cannot agree with are warned of at start, as is a password that may go unencrypted', (t) => {
  const warn = (email: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
    servingWarnings(loadConfig({ cwd: tempDir(t), env: {}, flags: { notify: { email: { host: 'smtp.example.com', from: 'bugbot@example.com', ...email } } }, serving: false }), env).join('\n');
  assert.match(warn({ port: 465 }), /notify\.email\.port is 465, .* set notify\.email\.secure: true/);
  assert.match(warn({ port: 587, secure: true }), /port 587 starts in plain text .* set secure: false/);
  assert.match(warn({ requireTLS: false }, { BUGBOT_SMTP_USER: 'u', BUGBOT_SMTP_PASSWORD: 'p' }), /requireTLS is false: the SMTP password \(BUGBOT_SMTP_PASSWORD\) may cross the network/);
  // Agreeing settings, a relay on this machine, or no login: nothing to say.
  for (const ok of [warn({ port: 465, secure: true }), warn({ port: 587 }), warn({ requireTLS: false, host: 'localhost' }, { BUGBOT_SMTP_USER: 'u', BUGBOT_SMTP_PASSWORD: 'p' }), warn({ requireTLS: false })]) {
    assert.doesNotMatch(ok, /notify\.email/, ok);
  }
});

// Review finding: the control plane's port on a worker's dev server port (basePort + N)
// read to that worker as "taken by another process": it paused, and never ran a ticket.
test("server.port on a worker's dev server port is a problem for start, not for commands that only read", (t) => {
  const flags = { server: { port: 4102 }, target: { basePort: 4100 }, workers: 2 };
  assert.throws(
    () => loadConfig({ cwd: tempDir(t), env: {}, flags }),
    (err: unknown) => /^server\.port 4102 is worker 2's dev server port \(target\.basePort 4100 \+ worker number\)/m.test((err as ConfigError).problems.join('\n')),
  );
  assert.equal(loadConfig({ cwd: tempDir(t), env: {}, flags, serving: false }).server.port, 4102);
  // Past the last worker's, or the base port itself (no worker 0): no clash.
  for (const port of [4100, 4103]) assert.equal(loadConfig({ cwd: tempDir(t), env: {}, flags: { ...flags, server: { port } } }).server.port, port);
});

test('approvals by pull request warn when the token to open one is not set', (t) => {
  const flags = { harness: { pushMode: 'approve' as const }, approval: { target: 'pr' as const, github: { owner: 'shop', repo: 'web' } } };
  const cfg = loadConfig({ cwd: tempDir(t), env: {}, flags, serving: false });
  assert.ok(servingWarnings(cfg, {}).some((w) => /approval\.target is "pr" and GITHUB_TOKEN is not set: .* pull requests on shop\/web/.test(w)), servingWarnings(cfg, {}).join('\n'));
  assert.ok(!servingWarnings(cfg, { GITHUB_TOKEN: 'x' }).some((w) => /GITHUB_TOKEN/.test(w)));
  const staging = loadConfig({ cwd: tempDir(t), env: {}, flags: { harness: { pushMode: 'approve' } }, serving: false });
  assert.ok(!servingWarnings(staging, {}).some((w) => /GITHUB_TOKEN/.test(w)), 'no pull requests, no token needed');
});

test('semantic problems: bad regexes, unset secret variables, exposed API without a token', (t) => {
  const dir = tempDir(t);
  writeFileSync(
    join(dir, 'bugbot.config.json'),
    JSON.stringify({
      server: { host: '0.0.0.0' },
      triage: { criticalPatterns: ['(unclosed'] },
      triggers: { grafana: { tokenEnv: 'GRAFANA_TOKEN_NOT_SET' } },
      mcp: { loki: { url: 'http://loki:3100', tokenEnv: 'LOKI_TOKEN_NOT_SET' } },
    }),
  );
  assert.throws(
    () => loadConfig({ cwd: dir, env: {} }),
    (err: unknown) => {
      const text = (err as ConfigError).problems.join('\n');
      assert.match(text, /^triage\.criticalPatterns\[0\]: not a valid regular expression/m);
      assert.match(text, /names GRAFANA_TOKEN_NOT_SET, which is not set/);
      assert.match(text, /mcp\.loki\.tokenEnv names LOKI_TOKEN_NOT_SET, which is not set/);
      assert.match(text, /set BUGBOT_API_TOKEN so the API is not open/);
      assert.match(text, /triggers\.latency needs tokenEnv/);
      assert.match(text, /set BUGBOT_EMAIL_TOKEN/);
      return true;
    },
  );
});

// Review finding: an empty setting was taken as written. `testCommand: ""` passed every
// fix's gate (an empty command exits 0), `home: ""` made the config's folder the home, an
// empty `hmacHeader` failed every alert with a 500, and a branch named "-f" read as an option.
test('settings that cannot be empty are refused empty; branch and remote names must be names git accepts', (t) => {
  const dir = tempDir(t);
  writeFileSync(
    join(dir, 'bugbot.config.json'),
    JSON.stringify({
      home: '',
      server: { host: ' ' },
      target: { repo: '', remote: '-f', baseBranch: 'a..b', stagingBranch: 'fix/x.lock', testCommand: '  ' },
      triggers: { grafana: { hmacHeader: '', timestampHeader: '' } },
      watch: { files: [''] },
    }),
  );
  assert.throws(
    () => loadConfig({ cwd: dir, env: {} }),
    (err: unknown) => {
      const text = (err as ConfigError).problems.join('\n');
      for (const key of ['home', 'server\\.host', 'target\\.repo', 'target\\.testCommand', 'triggers\\.grafana\\.hmacHeader', 'triggers\\.grafana\\.timestampHeader', 'watch\\.files\\[0\\]']) {
        assert.match(text, new RegExp(`^${key}: must not be empty`, 'm'));
      }
      for (const key of ['remote', 'baseBranch', 'stagingBranch']) {
        assert.match(text, new RegExp(`^target\\.${key}: must be a name git accepts`, 'm'));
      }
      return true;
    },
  );
  // Names with slashes, dots and dashes inside are branches like any other.
  writeFileSync(join(dir, 'bugbot.config.json'), JSON.stringify({ target: { remote: 'up-stream', baseBranch: 'release/2026.11', stagingBranch: 'bot/staging-1' } }));
  const cfg = loadConfig({ cwd: dir, env: {} });
  assert.deepEqual([cfg.target.remote, cfg.target.baseBranch, cfg.target.stagingBranch], ['up-stream', 'release/2026.11', 'bot/staging-1']);
});

// Review finding (a new user): a bad pattern was named `triage.ignore.0.pattern`, a problem
// with the file's shape `triage.ignore[0].pattern`: one config, two ways of naming a place in it.
test('a bad pattern is named by its path as a shape problem is: triage.ignore[0].pattern', (t) => {
  const dir = tempDir(t);
  const ignore = [{ pattern: 'ok' }, { pattern: '(' }];
  writeFileSync(join(dir, 'bugbot.config.json'), JSON.stringify({ triage: { ignore, highPatterns: ['ok', '['] }, intake: { redactPatterns: ['*'] } }));
  assert.throws(
    () => loadConfig({ cwd: dir, env: {}, serving: false }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        err.problems.map((p) => p.replace(/: not a valid regular expression: .*/, '')),
        ['triage.highPatterns[1]', 'triage.ignore[1].pattern', 'intake.redactPatterns[0]'],
      );
      return true;
    },
  );
  // The same place with a shape problem, named the same way.
  writeFileSync(join(dir, 'bugbot.config.json'), JSON.stringify({ triage: { ignore: [{ pattern: 'ok' }, { pattern: 5 }] } }));
  assert.throws(
    () => loadConfig({ cwd: dir, env: {}, serving: false }),
    (err: unknown) => /^triage\.ignore\[1\]\.pattern: /m.test((err as ConfigError).problems.join('\n')),
  );
});

test('a path that starts with ~/ in the config file is in the user\'s home folder, not a folder named ~', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'bugbot.config.json'), JSON.stringify({ home: '~/bugbot-state', target: { repo: '~' }, watch: { files: ['~/logs/app.log', 'rel.log'] } }));
  const cfg = loadConfig({ cwd: dir, env: {}, serving: false });
  assert.equal(cfg.home, join(homedir(), 'bugbot-state'));
  assert.equal(cfg.target.repo, homedir());
  assert.deepEqual(cfg.watch.files, [join(homedir(), 'logs/app.log'), join(dir, 'rel.log')]);
});

test('Slack in Socket Mode with the bot token but no app-level token is a problem named before start, not a failure inside it', (t) => {
  const flags = { triggers: { slack: { socketMode: true } } };
  assert.throws(
    () => loadConfig({ cwd: tempDir(t), env: { SLACK_BOT_TOKEN: 'xoxb-1' }, flags }),
    (err: unknown) => {
      assert.match((err as ConfigError).problems.join('\n'), /triggers\.slack\.socketMode is on but SLACK_APP_TOKEN \(triggers\.slack\.appTokenEnv\) is not set/);
      return true;
    },
  );
  loadConfig({ cwd: tempDir(t), env: { SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' }, flags });
  loadConfig({ cwd: tempDir(t), env: {}, flags });
});

test('basic auth on an alert route names both variables or neither: a user alone would leave the route open', (t) => {
  for (const route of ['grafana', 'latency'] as const) {
    assert.throws(
      () => loadConfig({ cwd: tempDir(t), env: { LU: 'u' }, flags: { triggers: { [route]: { basicUserEnv: 'LU' } } } }),
      (err: unknown) => {
        assert.match((err as ConfigError).problems.join('\n'), new RegExp(`triggers\\.${route}: basicUserEnv and basicPasswordEnv must be set together`));
        return true;
      },
    );
    const cfg = loadConfig({ cwd: tempDir(t), env: { LU: 'u', LP: 'p' }, flags: { triggers: { [route]: { basicUserEnv: 'LU', basicPasswordEnv: 'LP' } } } });
    assert.equal(cfg.triggers[route].basicPasswordEnv, 'LP');
  }
});

test('secrets come only from the variables the config names', (t) => {
  const dir = tempDir(t);
  const cfg = loadConfig({
    cwd: dir,
    env: { MY_TOKEN: 'abc', OTHER: 'nope' },
    flags: { triggers: { grafana: { tokenEnv: 'MY_TOKEN' } } },
  });
  assert.equal(cfg.secrets.get('MY_TOKEN'), 'abc');
  assert.equal(cfg.secrets.get('OTHER'), undefined, 'a variable the config does not name is not readable');
  assert.doesNotMatch(JSON.stringify(cfg), /abc/, 'secret values are not part of the serialized config');
});

test('the starter config written by `bugbot init` parses and equals the defaults', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'bugbot.config.json'), STARTER_CONFIG);
  const fromStarter = loadConfig({ cwd: dir, env: {} });
  const defaults = loadConfig({ cwd: tempDir(t), env: {} });
  const strip = (c: typeof defaults) => ({ ...c, home: '', target: { ...c.target, repo: '' }, configPath: null, secrets: null });
  assert.deepEqual(strip(fromStarter), strip(defaults));
});

test('harness.testTimeoutSeconds: 900 by default, a positive whole number of seconds', (t) => {
  assert.equal(loadConfig({ cwd: tempDir(t), env: {} }).harness.testTimeoutSeconds, 900);
  assert.equal(loadConfig({ cwd: tempDir(t), env: {}, flags: { harness: { testTimeoutSeconds: 60 } } }).harness.testTimeoutSeconds, 60);
  for (const bad of [0, -5, 1.5, '60']) {
    assert.throws(
      () => loadConfig({ cwd: tempDir(t), env: {}, flags: { harness: { testTimeoutSeconds: bad } } as never }),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.includes('harness.testTimeoutSeconds')),
      String(bad),
    );
  }
});

test('harness.gitIdentity: bugbot <bugbot@localhost> by default; a name or address git would refuse is a problem', (t) => {
  assert.deepEqual(loadConfig({ cwd: tempDir(t), env: {} }).harness.gitIdentity, { name: 'bugbot', email: 'bugbot@localhost' });
  assert.deepEqual(loadConfig({ cwd: tempDir(t), env: {}, flags: { harness: { gitIdentity: { email: 'fixbot@example.com' } } } }).harness.gitIdentity, {
    name: 'bugbot',
    email: 'fixbot@example.com',
  });
  for (const bad of [{ name: '' }, { name: '.' }, { name: `'..'` }, { name: 'a <b>' }, { name: 'two\nlines' }, { email: 'a b@example.com' }, { email: '<x@example.com>' }, { mail: 'x@example.com' }]) {
    assert.throws(
      () => loadConfig({ cwd: tempDir(t), env: {}, flags: { harness: { gitIdentity: bad } } as never }),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.includes('harness.gitIdentity')),
      JSON.stringify(bad),
    );
  }
});

// Review finding: git drops every byte up to a space from an ident's ends, control
// characters included ("name consists only of disallowed characters"), but the check knew
// only white space and punctuation: a name of control characters passed, and every run's
// commit failed.
test('harness.gitIdentity: a name of only control characters is a problem, as git refuses it', (t) => {
  for (const name of ['\x01', '\x1b\x07', '.\x01,']) {
    assert.throws(
      () => loadConfig({ cwd: tempDir(t), env: {}, flags: { harness: { gitIdentity: { name } } } }),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.includes('harness.gitIdentity.name')),
      JSON.stringify(name),
    );
  }
  assert.equal(loadConfig({ cwd: tempDir(t), env: {}, flags: { harness: { gitIdentity: { name: 'Fix\x01bot' } } } }).harness.gitIdentity.name, 'Fix\x01bot', 'git takes one inside a name');
});

test('JSON comments and trailing commas are allowed, but not inside strings', () => {
  const text = '{ // c\n "a": "x // not a comment, }", /* b */ "b": [1, 2,], }';
  assert.deepEqual(JSON.parse(stripJsonComments(text)), { a: 'x // not a comment, }', b: [1, 2] });
  // A block's tail commented out: the comma before it is still a trailing comma, however
  // long the comments after it.
  const tail = `{ "workers": 2,\n${Array.from({ length: 30 }, (_, i) => `        // option ${i}: a long explanation of what it does`).join('\n')}\n}`;
  assert.deepEqual(JSON.parse(stripJsonComments(tail)), { workers: 2 });
  // Offsets are kept, so JSON's own error positions are the file's.
  assert.equal(stripJsonComments(text).length, text.length);
});

test("a config file's JSON error names the line and column as written", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'bugbot.config.json'), '{\n  // workers\n  /* a\n  block */\n  "workers": 2 "host": "x"\n}\n');
  assert.throws(
    () => loadConfig({ cwd: dir, env: {} }),
    (err: unknown) => err instanceof ConfigError && err.problems.some((p) => /not valid JSON: .*\(line 5, column 16\)$/.test(p)),
  );
});
