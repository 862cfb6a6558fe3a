/**
 * One validated configuration, layered: embedded defaults < bugbot.config.json <
 * environment < CLI flags. Every problem is collected and reported at once.
 * Secrets never live in the file: the file names environment variables, and
 * `loadConfig` resolves them here, at the edge, so nothing deeper reads process.env.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { envName } from '../lib/mcp/env-name.ts';
import { browserSettingsSchema } from '../lib/mcp/browser-settings.ts';
import { dbSettingsSchema } from '../lib/mcp/db-settings.ts';
import { lokiSettingsSchema } from '../lib/mcp/loki-settings.ts';
import { createRedactor, type Redactor } from '../lib/redact.ts';
import { docsSettingsSchema, resolveIndexPath } from './docs-search/settings.ts';
import { SEVERITIES } from './types.ts';


/** A setting that is used as it is written: empty would mean something else (the working directory, every interface, no test at all). */
const nonEmpty = (what: string) => z.string().trim().min(1, `must not be empty: ${what}`);

/**
 * A branch or remote name as git accepts one (git check-ref-format), and never one that
 * reads as an option on git's command line ("-f").
 */
const refName = (what: string) =>
  nonEmpty(what).refine(
    (s) =>
      !s.startsWith('-') &&
      ![...s].some((ch) => ch <= ' ' || ch === '\x7f') &&
      !/[~^:?*[\\]|\.\.|@\{|\/\/|\/\.|^\.|^\/|\/$|\.$|\.lock$|\.lock\//.test(s) &&
      s !== '@',
    'must be a name git accepts for a branch or remote (no spaces, "..", "~^:?*[\\", no leading "-" or ".", no trailing "/", "." or ".lock")',
  );

/** Auth for a webhook endpoint: any configured method that matches admits the request. */
const webhookAuth = {
  enabled: z.boolean().default(true),
  /** Bearer token (Authorization: Bearer <token>). */
  tokenEnv: envName.optional(),
  basicUserEnv: envName.optional(),
  basicPasswordEnv: envName.optional(),
};

const grafanaSchema = z
  .object({
    ...webhookAuth,
    /** Grafana's HMAC signing secret; when set, every request must carry a valid signature. */
    hmacSecretEnv: envName.optional(),
    hmacHeader: nonEmpty('the header Grafana sends the signature in').default('X-Grafana-Alerting-Signature'),
    timestampHeader: nonEmpty('the header Grafana sends the signed timestamp in').default('X-Grafana-Alerting-Timestamp'),
    toleranceSeconds: z.number().int().positive().default(300),
  })
  .strict()
  .prefault({});

const latencySchema = z
  .object({
    ...webhookAuth,
    /** Alert names / rule labels that mark a Grafana or Alertmanager alert as a latency alert. */
    alertNamePattern: z.string().default('(?i)(latency|p95|p99|slow)'),
    defaultThresholdMs: z.number().positive().default(1000),
  })
  .strict()
  .prefault({});

const slackSchema = z
  .object({
    enabled: z.boolean().default(true),
    signingSecretEnv: envName.default('SLACK_SIGNING_SECRET'),
    botTokenEnv: envName.default('SLACK_BOT_TOKEN'),
    /** App-level token (xapp-...) for Socket Mode. */
    appTokenEnv: envName.default('SLACK_APP_TOKEN'),
    socketMode: z.boolean().default(false),
    /** Slack Web API base URL; tests point it at a local server. */
    apiUrl: z.string().url().default('https://slack.com/api/'),
    toleranceSeconds: z.number().int().positive().default(300),
    /** Fetch the whole thread with conversations.replies (needs channels:history / groups:history). */
    fetchThread: z.boolean().default(true),
    /** Slack user ids whose Approve / Skip button clicks act; nobody else's do. */
    approvers: z.array(z.string().regex(/^[UW][A-Z0-9]+$/, 'must be a Slack user id (U… or W…)')).default([]),
  })
  .strict()
  .prefault({});

const emailSchema = z
  .object({
    enabled: z.boolean().default(true),
    mailgunSigningKeyEnv: envName.default('MAILGUN_SIGNING_KEY'),
    /** Bearer token for POST /triggers/email/raw. */
    rawTokenEnv: envName.default('BUGBOT_EMAIL_TOKEN'),
    /**
     * How old a Mailgun timestamp may be. Mailgun retries a failed route POST for 8 hours
     * with the first timestamp, so the default is 9 hours; used tokens are kept as long.
     */
    toleranceSeconds: z.number().int().positive().default(9 * 60 * 60),
    /** Body limit of /triggers/email/* (instead of server.maxBodyBytes): Mailgun's 25 MB message size. */
    maxBodyBytes: z.number().int().positive().default(25 * 1024 * 1024),
    /**
     * How long parsing one request's mails may take, on the parser thread (triggers/email-parse.ts);
     * past it the request is 413. A 25 MB mail of attachments takes about a second.
     */
    parseTimeoutSeconds: z.number().positive().max(600).default(10),
  })
  .strict()
  .prefault({});

/** Telling reporters what became of their ticket (control/notify, docs/notifications.md). */
const notifySchema = z
  .object({
    slack: z
      .object({
        /** Thread replies and approval buttons; they also need the bot token (triggers.slack.botTokenEnv). */
        enabled: z.boolean().default(true),
        /** Channel id where approval requests go for tickets no Slack thread reported. */
        approvalsChannel: z.string().regex(/^[CG][A-Z0-9]+$/, 'must be a Slack channel id (C… or G…)').optional(),
      })
      .strict()
      .prefault({}),
    email: z
      .object({
        /** SMTP server; no email is sent until it is set. */
        host: z.string().min(1).optional(),
        port: z.number().int().min(1).max(65535).default(587),
        /** TLS from the first byte (port 465); otherwise STARTTLS. */
        secure: z.boolean().default(false),
        /** Refuse to send unless the server upgrades with STARTTLS (when secure is false). */
        requireTLS: z.boolean().default(true),
        /** SMTP login, used when both variables are set. */
        userEnv: envName.default('BUGBOT_SMTP_USER'),
        passwordEnv: envName.default('BUGBOT_SMTP_PASSWORD'),
        /** The replies' From, e.g. "bugbot <bugbot@example.com>"; required with host. */
        from: z.string().min(1).optional(),
        /**
         * Waits before each new try when the server could not be reached or answered with
         * a temporary (4xx) refusal; a permanent refusal (5xx) is never retried.
         */
        retryDelaysSeconds: z.array(z.number().min(0).max(3600)).max(10).default([5, 30, 120]),
      })
      .strict()
      .prefault({}),
    /** Link for a commit in "fixed" messages: "{commit}" becomes the full hash. */
    commitUrl: z.string().regex(/^https?:\/\/\S*\{commit\}\S*$/, 'must be an http(s) URL containing {commit}').optional(),
  })
  .strict()
  .prefault({});

/** The dashboard's pages and who may see them (docs/dashboard.md). */
const dashboardSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Login with this token (the login form, or Authorization: Bearer). Setting it turns the login on. */
    tokenEnv: envName.default('BUGBOT_DASHBOARD_TOKEN'),
    /** Login with a user name and password instead (or as well); set both. */
    basicUserEnv: envName.optional(),
    basicPasswordEnv: envName.optional(),
    /** Ask for a login on loopback too (always asked when server.host is not loopback). */
    requireLogin: z.boolean().default(false),
    /** A login lasts this long (sessions live in memory: a restart logs everyone out). */
    sessionHours: z.number().positive().max(24 * 30).default(12),
    /** Extra origins allowed to post the dashboard's forms (e.g. a TLS proxy's https://bugbot.example.com). */
    allowedOrigins: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'must be an origin like https://bugbot.example.com')).default([]),
    /** How often the live panels refresh, in milliseconds. */
    liveIntervalMs: z.number().int().min(100).max(60_000).default(1000),
    /** Larger diffs are cut at this many bytes. */
    maxDiffBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(512 * 1024),
  })
  .strict()
  .prefault({});

const phaseLimits = (maxTurns: number, maxBudgetUsd: number, wallSeconds: number) =>
  z
    .object({
      maxTurns: z.number().int().positive().default(maxTurns),
      maxBudgetUsd: z.number().positive().default(maxBudgetUsd),
      wallSeconds: z.number().int().positive().default(wallSeconds),
      /** Model for this phase; defaults to harness.model. */
      model: z.string().optional(),
    })
    .strict()
    .prefault({});

const harnessSchema = z
  .object({
    /** Claude Code binary; default: the one installed with bugbot, else `claude` on PATH. */
    claude: z.string().optional(),
    model: z.string().optional(),
    /** The model credentials the workers may use (and nothing else of the control plane's env). */
    apiKeyEnv: envName.default('ANTHROPIC_API_KEY'),
    baseUrlEnv: envName.default('ANTHROPIC_BASE_URL'),
    oauthTokenEnv: envName.default('CLAUDE_CODE_OAUTH_TOKEN'),
    /** Kill a phase when its stream is silent this long. */
    idleTimeoutSeconds: z.number().int().positive().default(300),
    /** Retries of a failed model request (5xx, 529 overloaded, timeout) before the phase fails; Claude Code backs off between them. */
    modelRetries: z.number().int().min(0).max(10).default(4),
    /** One model request may take this long before it counts as failed (and is retried). */
    modelTimeoutSeconds: z.number().int().positive().default(600),
    /** A banned attempt is denied and the session goes on ("deny"), or ends it ("kill"). */
    onBannedAction: z.enum(['deny', 'kill']).default('deny'),
    devTimeoutSeconds: z.number().int().positive().default(60),
    /** Workers claim nothing while the disk holding bugbot's home (worktrees, ticket folders) has less free than this; 0: never. */
    minFreeDiskMb: z.number().int().min(0).max(1_000_000).default(200),
    /** Each run of the test command (the gate, and the base branch's run) is stopped after this long; the gate then fails. */
    testTimeoutSeconds: z.number().int().positive().default(900),
    heartbeatSeconds: z.number().int().positive().default(15),
    /** "autopush": fixes go to the staging branch; "approve": they wait on bot/<ticket> for a person. */
    pushMode: z.enum(['autopush', 'approve']).default('autopush'),
    pushRetries: z.number().int().min(1).max(20).default(5),
    /** Who the commits of a run are by (the agent's and the harness's), and the committer of an approved fix's rebase. */
    gitIdentity: z
      .object({
        // What git takes as an ident: no angle brackets or line breaks in either.
        name: z
          .string()
          .trim()
          .min(1)
          .max(200)
          .regex(/^[^<>\n\r\0]+$/, 'no <, > or line breaks')
          // git drops these (and every byte up to a space) from an ident's ends, and refuses a name of nothing else.
          // eslint-disable-next-line no-control-regex -- control characters are among what git drops
          .regex(/[^\s\x00-\x20.,:;"'\\]/, 'not only control characters or punctuation git drops (. , : ; " \' \\)')
          .default('bugbot'),
        email: z.string().trim().min(1).max(254).regex(/^[^<>\s]+$/, 'no <, > or spaces').default('bugbot@localhost'),
      })
      .strict()
      .prefault({}),
    /** Extra shell commands the implement and review phases may run, as Claude Code rules, e.g. "Bash(make test:*)". */
    allowedCommands: z.array(z.string()).default([]),
    phases: z
      .object({
        research: phaseLimits(40, 2, 900),
        implement: phaseLimits(80, 5, 1800),
        review: phaseLimits(40, 2, 900),
        docs: phaseLimits(20, 1, 600),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

const ignoreRule = z
  .object({
    /** Regular expression, case-insensitive, matched against title + message + service. */
    pattern: z.string(),
    reason: z.string().default('matches an ignore rule'),
  })
  .strict();

/** Rules under which a fix is approved without a person (approval mode; all must hold). */
const autoApproveSchema = z
  .object({
    enabled: z.boolean().default(false),
    maxFilesChanged: z.number().int().min(1).default(3),
    /** Insertions plus deletions. */
    maxLinesChanged: z.number().int().min(1).default(50),
    /** The test command passed outright: no pre-existing failures tolerated. */
    requireTestsPassed: z.boolean().default(true),
    /** Tickets above this severity always wait for a person. */
    maxSeverity: z.enum(SEVERITIES).default('medium'),
    /** Globs (`**`, `*`, `?`); one without a `/` matches a file name at any depth. A fix touching any waits for a person. */
    sensitivePaths: z
      .array(z.string().min(1))
      .default([
        '**/migrations/**',
        '*.sql',
        '**/auth/**',
        '*auth*',
        '**/security/**',
        '**/payment*/**',
        '**/billing/**',
        'package.json',
        'package-lock.json',
        'yarn.lock',
        'pnpm-lock.yaml',
        'Dockerfile',
        'infra/**',
        'deploy/**',
        '.github/**',
      ]),
  })
  .strict()
  .prefault({});

/** What approving a fix that waits on its bot branch does (harness.pushMode "approve"; docs/harness.md). */
const approvalSchema = z
  .object({
    /** "staging": rebase the bot branch onto staging and push it; "pr": open a pull request instead. */
    target: z.enum(['staging', 'pr']).default('staging'),
    github: z
      .object({
        /** REST API base URL; GitHub Enterprise Server: https://<host>/api/v3. */
        apiUrl: z.string().url().default('https://api.github.com'),
        owner: z.string().min(1).optional(),
        repo: z.string().min(1).optional(),
        /** Token allowed to open pull requests (contents: read, pull requests: write). */
        tokenEnv: envName.default('GITHUB_TOKEN'),
        /** The pull request's base branch; default target.stagingBranch. */
        base: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    autoApprove: autoApproveSchema,
  })
  .strict()
  .prefault({});

export const configSchema = z
  .object({
    /** Where the database, outcomes archive, logs, ticket folders and worktrees live. */
    home: nonEmpty('the folder bugbot keeps its state in').default('.bugbot'),
    server: z
      .object({
        host: nonEmpty('the address to listen on (0.0.0.0 for every interface)').default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(7777),
        maxBodyBytes: z.number().int().positive().default(1024 * 1024),
        /** Bearer token for /api/*; required when host is not loopback. */
        apiTokenEnv: envName.default('BUGBOT_API_TOKEN'),
      })
      .strict()
      .prefault({}),
    target: z
      .object({
        repo: nonEmpty('the checkout of the repository to fix ("." for the working directory)').default('.'),
        remote: refName('the remote fixes are fetched from and pushed to').default('origin'),
        baseBranch: refName('the branch fixes start from').default('main'),
        stagingBranch: refName('the branch fixes are pushed to').default('staging'),
        devCommand: z.string().default('npm run dev'),
        /** The push is gated on it: empty would pass every fix untested (a target without tests says so: "true"). */
        testCommand: nonEmpty('every push is gated on the test command').default('npm test'),
        basePort: z.number().int().min(1024).max(65000).default(4100),
      })
      .strict()
      .prefault({}),
    workers: z.number().int().min(1).max(8).default(2),
    harness: harnessSchema,
    approval: approvalSchema,
    intake: z
      .object({
        settleSeconds: z.number().min(0).default(30),
        /** A cascade never delays a ticket by more than this, however often it recurs. */
        settleCapSeconds: z.number().min(0).default(300),
        /**
         * A new error of a service whose errors began at most this long after another's of
         * the same service (both reported by machines) is held in that ticket's cascade:
         * one fix run, not one per symptom. 0: every error is a ticket of its own.
         */
        cascadeSeconds: z.number().min(0).max(3600).default(60),
        /** In-app stack frames that go into a fingerprint. */
        stackFrames: z.number().int().min(0).max(20).default(5),
        /** Extra redaction patterns (regular expressions) on top of the built-in ones. */
        redactPatterns: z.array(z.string()).default([]),
        /** Salt for one-way hashing user ids; from the environment when set. */
        hashSaltEnv: envName.default('BUGBOT_HASH_SALT'),
      })
      .strict()
      .prefault({}),
    triage: z
      .object({
        /** Tickets below this severity wait (deferred) until more occurrences raise it. */
        minSeverity: z.enum(SEVERITIES).default('medium'),
        criticalPatterns: z
          .array(z.string())
          .default([
            'payment',
            'checkout',
            'data loss',
            'corrupt',
            'out of memory',
            // A word's start: OOMKilled, "OOM killer", never "room" or "Zoom".
            '\\bOOM',
            'panic',
            'deadlock',
            'security',
            'unauthori[sz]ed access',
          ]),
        highPatterns: z
          .array(z.string())
          // A 5xx status is a number of its own: not the 5 in "cart 5871", nor a duration
          // ("P95 1840 ms exceeds 500 ms": a latency alert is not a server error).
          .default(['TypeError', 'ReferenceError', 'NullPointerException', 'undefined is not', 'cannot read propert', '\\b5\\d\\d\\b(?!\\s*(?:ms|milliseconds?|s|seconds?)\\b)']),
        /** Occurrence counts that raise severity to at least the named level. */
        countThresholds: z
          .object({
            medium: z.number().int().positive().default(3),
            high: z.number().int().positive().default(25),
            critical: z.number().int().positive().default(500),
          })
          .strict()
          .prefault({}),
        ignore: z
          .array(ignoreRule)
          .default([
            { pattern: '(ECONNRESET|ETIMEDOUT).*(stripe|twilio|sendgrid|amazonaws)', reason: 'third-party outage' },
            { pattern: '^Watchdog$|DeadMansSwitch', reason: 'alerting heartbeat, not a bug' },
          ]),
        /** A recurrence within this many days after a fix is a regression of it. */
        regressionWindowDays: z.number().positive().default(30),
        /** Ignore recurrences this soon after a push (deploy lag). */
        regressionGraceSeconds: z.number().min(0).default(600),
        classifier: z.enum(['rules', 'model']).default('rules'),
        /** With classifier "model": model calls started in any hour; past it, the rules decide. */
        modelCallsPerHour: z.number().int().min(1).max(100_000).default(60),
      })
      .strict()
      .prefault({}),
    queue: z
      .object({
        leaseSeconds: z.number().int().positive().default(120),
        maxAttempts: z.number().int().min(1).default(3),
        /** synchronous=FULL survives power loss too; NORMAL survives process crashes (WAL). */
        durability: z.enum(['normal', 'full']).default('normal'),
      })
      .strict()
      .prefault({}),
    /** How long what piles up is kept (0: for ever). Tickets and the outcomes archive are kept for ever. */
    retention: z
      .object({
        /** Days an event (one alert, report or log line) is kept; its ticket keeps the counts. */
        eventsDays: z.number().int().min(0).max(36_500).default(30),
        /** Days a finished run's folder (stream logs, prompts, plan) is kept after the run ended. */
        runFoldersDays: z.number().int().min(0).max(36_500).default(30),
      })
      .strict()
      .prefault({}),
    triggers: z
      .object({
        grafana: grafanaSchema,
        latency: latencySchema,
        slack: slackSchema,
        email: emailSchema,
      })
      .strict()
      .prefault({}),
    notify: notifySchema,
    dashboard: dashboardSchema,
    /** Phase 0 docs retrieval over the target's docs (see docs/docs-search.md). */
    docs: docsSettingsSchema,
    /** The MCP servers the agent works through (see docs/mcp.md). */
    mcp: z
      .object({
        browser: browserSettingsSchema,
        loki: lokiSettingsSchema,
        db: dbSettingsSchema,
      })
      .strict()
      .prefault({}),
    watch: z
      .object({
        /** Log files `bugbot start` tails (same as `bugbot watch <file>...`). */
        files: z.array(nonEmpty('a log file to tail')).default([]),
        service: z.string().optional(),
        pollMs: z.number().int().positive().default(500),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type ConfigFile = z.input<typeof configSchema>;
export type BugbotConfig = z.output<typeof configSchema> & {
  /** Absolute path of the config file that was read, if any. */
  configPath: string | null;
  /** Secrets resolved from the environment variables the config names. */
  secrets: Secrets;
};

export interface Secrets {
  get(envVar: string | undefined): string | undefined;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadOptions {
  /** Explicit config file path (--config); otherwise BUGBOT_CONFIG, then ./bugbot.config.json. */
  path?: string;
  env?: NodeJS.ProcessEnv;
  /** CLI flags, already shaped like the file. */
  flags?: ConfigFile;
  /** The flag that sets each path (`server.port` → `--port`), to name it in a problem with its value. */
  flagNames?: Record<string, string>;
  cwd?: string;
  /**
   * Whether the control plane is to serve with it (the default): then what it needs from
   * the environment (servingProblems) is checked too. False for commands that only read.
   */
  serving?: boolean;
}

/** Environment variables that override file settings (documented in docs/configuration.md). */
const ENV_OVERRIDES: Array<[string, string[], 'string' | 'int' | 'number' | 'bool']> = [
  ['BUGBOT_HOME', ['home'], 'string'],
  ['BUGBOT_HOST', ['server', 'host'], 'string'],
  ['BUGBOT_PORT', ['server', 'port'], 'int'],
  ['BUGBOT_WORKERS', ['workers'], 'int'],
  ['BUGBOT_TARGET_REPO', ['target', 'repo'], 'string'],
  ['BUGBOT_SETTLE_SECONDS', ['intake', 'settleSeconds'], 'number'],
  ['BUGBOT_MIN_SEVERITY', ['triage', 'minSeverity'], 'string'],
];

/** The value at a path of an object, or undefined. */
function valueAt(obj: unknown, path: PropertyKey[]): unknown {
  let v: unknown = obj;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

export function loadConfig(opts: LoadOptions = {}): BugbotConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const problems: string[] = [];

  const explicit = opts.path ?? env.BUGBOT_CONFIG;
  const candidate = explicit ? resolve(cwd, explicit) : resolve(cwd, 'bugbot.config.json');
  let fileData: unknown = {};
  let configPath: string | null = null;
  if (existsSync(candidate) && !statSync(candidate).isFile()) {
    problems.push(`config file ${candidate} is not a file (name the JSON file itself)`);
  } else if (existsSync(candidate)) {
    configPath = candidate;
    const text = readFileSync(candidate, 'utf8');
    try {
      fileData = JSON.parse(stripJsonComments(text));
    } catch (err) {
      problems.push(`${candidate}: not valid JSON: ${jsonErrorAt((err as Error).message, text)}`);
    }
  } else if (explicit) {
    problems.push(`config file ${candidate} does not exist`);
  }
  if (fileData === null || typeof fileData !== 'object' || Array.isArray(fileData)) {
    problems.push(`${candidate}: must hold a JSON object`);
    fileData = {};
  }

  // Relative paths follow where they were written: the file's against its folder, the
  // environment's and the flags' against the working directory (as a shell user expects).
  const fileBase = configPath ? dirname(configPath) : cwd;
  const merged = withAbsolutePaths(structuredClone(fileData) as Record<string, unknown>, fileBase);
  const fromEnv: Record<string, unknown> = {};
  /** Settings the environment gave (and no flag overrode): a problem with one names its variable. */
  const envNames = new Map<string, string>();
  for (const [name, path, type] of ENV_OVERRIDES) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const value = coerce(raw, type);
    if (value === undefined) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected ${type === 'int' ? 'an integer' : type}`);
      continue;
    }
    setPath(fromEnv, path, value);
    if (getPath(opts.flags ?? {}, path) === undefined) envNames.set(path.join('.'), name);
  }
  deepMerge(merged, withAbsolutePaths(fromEnv, cwd));
  deepMerge(merged, withAbsolutePaths((opts.flags ?? {}) as Record<string, unknown>, cwd));

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        // Each key by its whole path, with the nearest known key: a typo, most likely.
        const known = knownKeys(issue.path.map(String));
        for (const key of issue.keys) {
          const near = nearest(key, known);
          problems.push(`${pathText([...issue.path, key])}: unknown key${near ? ` (did you mean "${pathText([...issue.path, near])}"?)` : ''}`);
        }
        continue;
      }
      const at = issue.path.length ? pathText(issue.path) : '(top level)';
      const name = envNames.get(issue.path.join('.'));
      const flag = opts.flagNames?.[issue.path.join('.')];
      const flagValue = flag ? valueAt(opts.flags, issue.path) : undefined;
      const from = flagValue !== undefined ? ` (from ${flag} ${JSON.stringify(flagValue)})` : name ? ` (from ${name}=${JSON.stringify(env[name])})` : '';
      const message = issue.code === 'invalid_type' && /received undefined$/.test(issue.message) ? `required (${issue.message.replace(/, received undefined$/, '')})` : issue.message;
      problems.push(`${at}: ${message}${from}`);
    }
    throw new ConfigError(problems);
  }
  const cfg = parsed.data;
  problems.push(...semanticProblems(cfg));
  if (opts.serving !== false) problems.push(...servingProblems(cfg, env));
  if (problems.length) throw new ConfigError(problems);

  // What is still relative is a default (.bugbot, .): next to the file, or in the working directory.
  cfg.home = isAbsolute(cfg.home) ? cfg.home : resolve(fileBase, cfg.home);
  cfg.target.repo = isAbsolute(cfg.target.repo) ? cfg.target.repo : resolve(fileBase, cfg.target.repo);

  const snapshot = new Map<string, string>();
  for (const name of secretNames(cfg)) {
    const v = env[name];
    if (v) snapshot.set(name, v);
  }
  return {
    ...cfg,
    configPath,
    secrets: { get: (name) => (name ? snapshot.get(name) : undefined) },
  };
}


/** A config path as people write it: `triage.ignore[0].pattern`. */
function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}

/** The keys a config section has (with every default filled in), to suggest for a typo. */
function knownKeys(path: string[]): string[] {
  let v: unknown = configSchema.parse({});
  for (const p of path) v = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[p] : undefined;
  return v && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [];
}

/** The known key closest to `key` (at most two edits away, or one of them a prefix of the other). */
function nearest(key: string, known: string[]): string | undefined {
  const k = key.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const n = name.toLowerCase();
    const d = n.startsWith(k) || k.startsWith(n) ? 1 : editDistance(k, n);
    if (d <= 2 && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
/** Every environment variable name the config points at for a secret. */
export function secretNames(cfg: z.output<typeof configSchema>): string[] {
  const t = cfg.triggers;
  return [
    cfg.harness.apiKeyEnv,
    cfg.harness.baseUrlEnv,
    cfg.harness.oauthTokenEnv,
    cfg.server.apiTokenEnv,
    cfg.approval.github.tokenEnv,
    cfg.intake.hashSaltEnv,
    t.grafana.tokenEnv,
    t.grafana.basicUserEnv,
    t.grafana.basicPasswordEnv,
    t.grafana.hmacSecretEnv,
    t.latency.tokenEnv,
    t.latency.basicUserEnv,
    t.latency.basicPasswordEnv,
    t.slack.signingSecretEnv,
    t.slack.botTokenEnv,
    t.slack.appTokenEnv,
    t.email.mailgunSigningKeyEnv,
    t.email.rawTokenEnv,
    cfg.notify.email.userEnv,
    cfg.notify.email.passwordEnv,
    cfg.dashboard.tokenEnv,
    cfg.dashboard.basicUserEnv,
    cfg.dashboard.basicPasswordEnv,
    cfg.mcp.loki.tokenEnv,
    cfg.mcp.loki.basicUserEnv,
    cfg.mcp.loki.basicPasswordEnv,
    cfg.mcp.loki.hashSaltEnv,
    cfg.mcp.db.urlEnv,
    cfg.mcp.db.writeUrlEnv,
    cfg.docs.embeddings.apiKeyEnv,
    ...Object.values(cfg.mcp.browser.roles).flatMap((r) =>
      Object.values(r.form?.fields ?? {}).flatMap((v) => (typeof v === 'object' ? [v.env] : [])),
    ),
  ].filter((n): n is string => Boolean(n));
}

function semanticProblems(cfg: z.output<typeof configSchema>): string[] {
  const out: string[] = [];
  const regexes: Array<[string, string]> = [
    ...cfg.triage.criticalPatterns.map((p, i): [string, string] => [pathText(['triage', 'criticalPatterns', i]), p]),
    ...cfg.triage.highPatterns.map((p, i): [string, string] => [pathText(['triage', 'highPatterns', i]), p]),
    ...cfg.triage.ignore.map((r, i): [string, string] => [pathText(['triage', 'ignore', i, 'pattern']), r.pattern]),
    ...cfg.intake.redactPatterns.map((p, i): [string, string] => [pathText(['intake', 'redactPatterns', i]), p]),
    ['triggers.latency.alertNamePattern', cfg.triggers.latency.alertNamePattern],
  ];
  for (const [where, source] of regexes) {
    try {
      compilePattern(source);
    } catch (err) {
      out.push(`${where}: not a valid regular expression: ${(err as Error).message}`);
    }
  }
  if (cfg.intake.settleCapSeconds < cfg.intake.settleSeconds) {
    out.push(`intake.settleCapSeconds (${cfg.intake.settleCapSeconds}) must be >= intake.settleSeconds (${cfg.intake.settleSeconds})`);
  }
  const g = cfg.triggers.grafana;
  const mail = cfg.notify.email;
  if (mail.host && !mail.from) out.push('notify.email.from is required when notify.email.host is set (the replies\' From address)');
  // One without the other would leave the route without basic auth, and open.
  for (const [where, t] of [['triggers.grafana', g], ['triggers.latency', cfg.triggers.latency], ['dashboard', cfg.dashboard]] as const) {
    if (Boolean(t.basicUserEnv) !== Boolean(t.basicPasswordEnv)) out.push(`${where}: basicUserEnv and basicPasswordEnv must be set together`);
  }
  if (cfg.docs.indexPath) {
    // The agent's sandbox is denied the index's whole folder (control/dispatcher/phases.ts
    // unwritable: a forged chunk would reach every later ticket's pre-context), which must
    // then not be bugbot's home or hold it: the runs write there.
    const dir = dirname(resolveIndexPath(cfg.home, cfg.target.repo, cfg.docs));
    const home = resolve(cfg.home);
    if (dir === home || home.startsWith(`${dir}/`) || dir === '/') {
      out.push(`docs.indexPath: the index needs a folder of its own, not ${dir} (it is bugbot's home or holds it): e.g. "docs-index/custom.db"`);
    }
  }
  if (cfg.approval.target === 'pr' && (!cfg.approval.github.owner || !cfg.approval.github.repo)) {
    out.push('approval.target is "pr": set approval.github.owner and approval.github.repo');
  }
  return out;
}

/** What `bugbot start` warns of but runs with (the embedded defaults must run). */
export function servingWarnings(cfg: Omit<BugbotConfig, 'secrets' | 'configPath'>, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  const salt = cfg.intake.hashSaltEnv;
  if (!env[salt]) {
    out.push(
      `${salt} is not set: reporters' email addresses and user ids are hashed with bugbot's public default salt, ` +
        'which anyone can reverse by trying addresses; set it to a long random secret, and keep it (hashes made with another salt do not match)',
    );
  }
  // Both ends must agree on TLS from the first byte: a mismatch times out or fails the
  // handshake, every mail is retried as a temporary failure, then lost.
  const mail = cfg.notify.email;
  if (mail.host && mail.port === 465 && !mail.secure) {
    out.push('notify.email.port is 465, which speaks TLS from the first byte: set notify.email.secure: true, or no mail goes out');
  }
  if (mail.host && (mail.port === 587 || mail.port === 25) && mail.secure) {
    out.push(`notify.email.secure is true, but port ${mail.port} starts in plain text and upgrades with STARTTLS: set secure: false (requireTLS keeps it encrypted), or no mail goes out`);
  }
  if (mail.host && !mail.secure && !mail.requireTLS && env[mail.userEnv] && !isLoopback(mail.host)) {
    out.push(`notify.email.requireTLS is false: the SMTP password (${mail.passwordEnv}) may cross the network to ${mail.host} unencrypted when the server offers no STARTTLS`);
  }
  const gh = cfg.approval.github;
  if (cfg.harness.pushMode === 'approve' && cfg.approval.target === 'pr' && !env[gh.tokenEnv]) {
    out.push(`approval.target is "pr" and ${gh.tokenEnv} is not set: an approved fix cannot open its pull request; set ${gh.tokenEnv} to a token that may open pull requests on ${gh.owner ?? '<owner>'}/${gh.repo ?? '<repo>'}`);
  }
  return out;
}

/**
 * What the control plane needs from its environment before it may serve (bugbot start
 * refuses to start without it): the secrets the config names are set, and a server
 * reachable from the network authenticates every endpoint. Other commands only read
 * the config and the home, so they do not ask for the server's secrets.
 */
let defaults: z.output<typeof configSchema> | undefined;
/** The embedded defaults (the variable names a config that names none uses). */
function defaultNames(): z.output<typeof configSchema> {
  defaults ??= configSchema.parse({});
  return defaults;
}

export function servingProblems(cfg: Omit<BugbotConfig, 'secrets' | 'configPath'>, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  // Worker N's dev server listens on basePort + N: the control plane's own port there would
  // read as "taken by another process" to that worker, which would then never run.
  const { port } = cfg.server;
  if (port > cfg.target.basePort && port <= cfg.target.basePort + cfg.workers) {
    out.push(`server.port ${port} is worker ${port - cfg.target.basePort}'s dev server port (target.basePort ${cfg.target.basePort} + worker number): move one of them`);
  }
  const g = cfg.triggers.grafana;
  for (const [where, name] of [
    ['triggers.grafana.tokenEnv', g.tokenEnv],
    ['triggers.grafana.hmacSecretEnv', g.hmacSecretEnv],
    ['triggers.grafana.basicUserEnv', g.basicUserEnv],
    ['triggers.grafana.basicPasswordEnv', g.basicPasswordEnv],
    ['triggers.latency.tokenEnv', cfg.triggers.latency.tokenEnv],
    ['triggers.latency.basicUserEnv', cfg.triggers.latency.basicUserEnv],
    ['triggers.latency.basicPasswordEnv', cfg.triggers.latency.basicPasswordEnv],
    ['dashboard.basicUserEnv', cfg.dashboard.basicUserEnv],
    ['dashboard.basicPasswordEnv', cfg.dashboard.basicPasswordEnv],
  ] as const) {
    // Optional secrets: naming one that is unset is almost always a deployment mistake.
    if (name && !env[name]) out.push(`${where} names ${name}, which is not set in the environment`);
  }
  // Credentials with a default name: unset, the route or page runs without them (loopback
  // only) or the trigger stays off. One named away from its default was named on purpose.
  const d = defaultNames();
  for (const [where, name, fallback] of [
    ['server.apiTokenEnv', cfg.server.apiTokenEnv, d.server.apiTokenEnv],
    ['dashboard.tokenEnv', cfg.dashboard.tokenEnv, d.dashboard.tokenEnv],
    ['triggers.email.rawTokenEnv', cfg.triggers.email.enabled ? cfg.triggers.email.rawTokenEnv : undefined, d.triggers.email.rawTokenEnv],
    ['triggers.email.mailgunSigningKeyEnv', cfg.triggers.email.enabled ? cfg.triggers.email.mailgunSigningKeyEnv : undefined, d.triggers.email.mailgunSigningKeyEnv],
    ['triggers.slack.signingSecretEnv', cfg.triggers.slack.enabled ? cfg.triggers.slack.signingSecretEnv : undefined, d.triggers.slack.signingSecretEnv],
    ['triggers.slack.botTokenEnv', cfg.triggers.slack.enabled ? cfg.triggers.slack.botTokenEnv : undefined, d.triggers.slack.botTokenEnv],
  ] as const) {
    if (name && name !== fallback && !env[name]) out.push(`${where} names ${name}, which is not set in the environment`);
  }
  const slack = cfg.triggers.slack;
  if (slack.enabled && slack.socketMode && env[slack.botTokenEnv] && !env[slack.appTokenEnv]) {
    // The bot token turns the trigger on; Socket Mode then cannot connect without the app-level token.
    out.push(`triggers.slack.socketMode is on but ${slack.appTokenEnv} (triggers.slack.appTokenEnv) is not set: Socket Mode connects with an app-level token (xapp-...)`);
  }
  const loki = cfg.mcp.loki;
  if (loki.url) {
    // Unset, Loki answers 401 to every query of the agent's and of alert enrichment.
    for (const [where, name] of [
      ['mcp.loki.tokenEnv', loki.tokenEnv],
      ['mcp.loki.basicUserEnv', loki.basicUserEnv],
      ['mcp.loki.basicPasswordEnv', loki.basicPasswordEnv],
    ] as const) {
      if (name && !env[name]) out.push(`${where} names ${name}, which is not set in the environment`);
    }
  }
  const mail = cfg.notify.email;
  if (mail.host && Boolean(env[mail.userEnv]) !== Boolean(env[mail.passwordEnv])) {
    out.push(`notify.email: set both ${mail.userEnv} and ${mail.passwordEnv} for an SMTP login, or neither`);
  }
  out.push(...dashboardProblems(cfg, env));
  if (!isLoopback(cfg.server.host)) {
    // Exposed: every endpoint must authenticate. On loopback, unauthenticated triggers are a convenience.
    const exposed = `server.host is ${cfg.server.host} (not loopback)`;
    if (!env[cfg.server.apiTokenEnv]) out.push(`${exposed}: set ${cfg.server.apiTokenEnv} so the API is not open to the network`);
    const t = cfg.triggers;
    if (t.grafana.enabled && !t.grafana.tokenEnv && !t.grafana.basicUserEnv && !t.grafana.hmacSecretEnv) {
      out.push(`${exposed}: triggers.grafana needs tokenEnv, basicUserEnv/basicPasswordEnv or hmacSecretEnv (or enabled: false)`);
    }
    if (t.latency.enabled && !t.latency.tokenEnv && !t.latency.basicUserEnv) {
      out.push(`${exposed}: triggers.latency needs tokenEnv or basicUserEnv/basicPasswordEnv (or enabled: false)`);
    }
    if (t.email.enabled && !env[t.email.rawTokenEnv]) {
      out.push(`${exposed}: set ${t.email.rawTokenEnv} for /triggers/email/raw (or triggers.email.enabled: false)`);
    }
  }
  return out;
}

/**
 * The dashboard shows tickets, diffs and approval buttons: reachable from the network
 * (or with requireLogin) it needs a credential, and bugbot refuses to start without one.
 */
function dashboardProblems(cfg: Omit<BugbotConfig, 'secrets' | 'configPath'>, env: NodeJS.ProcessEnv): string[] {
  const d = cfg.dashboard;
  const out: string[] = [];
  if (!d.enabled) return out;
  const credential = Boolean(env[d.tokenEnv]) || Boolean(d.basicUserEnv && env[d.basicUserEnv] && d.basicPasswordEnv && env[d.basicPasswordEnv]);
  if (credential) return out;
  const why = !isLoopback(cfg.server.host) ? `server.host is ${cfg.server.host} (not loopback)` : d.requireLogin ? 'dashboard.requireLogin is true' : '';
  if (why) {
    out.push(`${why}: the dashboard needs a login: set ${d.tokenEnv} (dashboard.tokenEnv) or dashboard.basicUserEnv/basicPasswordEnv, or set dashboard.enabled: false`);
  }
  return out;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Redaction as configured: the hash salt's secret and the extra patterns (intake.*). */
export function configuredRedactor(config: BugbotConfig, literals: string[] = maskedSecretValues(config)): Redactor {
  return createRedactor({ salt: config.secrets.get(config.intake.hashSaltEnv), extra: config.intake.redactPatterns, literals });
}

/**
 * The values of the secrets the config names, which redaction masks wherever they appear
 * (a token pasted into a Slack thread, say). Not the user names of basic-auth pairs nor
 * the model's base URL, which are not secret, and nothing shorter than 8 characters,
 * which would mask ordinary words.
 */
export function maskedSecretValues(config: BugbotConfig): string[] {
  const notSecret = new Set([
    config.harness.baseUrlEnv,
    config.triggers.grafana.basicUserEnv,
    config.triggers.latency.basicUserEnv,
    config.notify.email.userEnv,
    config.dashboard.basicUserEnv,
    config.mcp.loki.basicUserEnv,
  ]);
  const values = secretNames(config)
    .filter((n) => !notSecret.has(n))
    .map((n) => config.secrets.get(n))
    .filter((v): v is string => Boolean(v && v.length >= 8));
  return [...new Set(values)];
}

/** Compile a config pattern; a leading `(?i)` (as in Go/Prometheus) means case-insensitive. */
export function compilePattern(source: string, extraFlags = ''): RegExp {
  let flags = extraFlags;
  let body = source;
  if (body.startsWith('(?i)')) {
    body = body.slice(4);
    if (!flags.includes('i')) flags += 'i';
  }
  return new RegExp(body, flags);
}

function coerce(raw: string, type: 'string' | 'int' | 'number' | 'bool'): unknown {
  switch (type) {
    case 'string':
      return raw;
    case 'int':
      return /^-?\d+$/.test(raw) ? Number(raw) : undefined;
    case 'number':
      return Number.isFinite(Number(raw)) ? Number(raw) : undefined;
    case 'bool':
      return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : undefined;
  }
}

/**
 * One layer with its relative paths (`home`, `target.repo`, `watch.files`) made absolute
 * against `base` (and `~/` against the user's home folder); the layer itself is not changed, and values of the wrong type are left
 * for the schema to report.
 */
function withAbsolutePaths(layer: Record<string, unknown>, base: string): Record<string, unknown> {
  // `~/...` is the user's home folder, as a shell would read it (a JSON file has no shell).
  const abs = (p: unknown): unknown =>
    // Empty is left for the schema to refuse: resolved, it would be `base` itself.
    typeof p !== 'string' || !p.trim() ? p : p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : isAbsolute(p) ? p : resolve(base, p);
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  const out = { ...layer };
  if ('home' in out) out.home = abs(out.home);
  if (isObject(out.target) && 'repo' in out.target) out.target = { ...out.target, repo: abs(out.target.repo) };
  if (isObject(out.watch) && Array.isArray(out.watch.files)) out.watch = { ...out.watch, files: out.watch.files.map(abs) };
  // The MCP servers read their settings from a copy in each run's folder and run there:
  // their files are resolved here, against where they were written.
  if (isObject(out.mcp)) {
    const mcp = { ...out.mcp };
    if (isObject(mcp.db) && 'sqlitePath' in mcp.db) mcp.db = { ...mcp.db, sqlitePath: abs(mcp.db.sqlitePath) };
    if (isObject(mcp.loki) && Array.isArray(mcp.loki.files)) mcp.loki = { ...mcp.loki, files: mcp.loki.files.map(abs) };
    out.mcp = mcp;
  }
  return out;
}

function getPath(obj: unknown, path: string[]): unknown {
  let cur = obj;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

function deepMerge(into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(from)) {
    if (v === undefined) continue;
    const cur = into[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      into[k] = v;
    }
  }
}

/**
 * JSON with // and /* *\/ comments and trailing commas (like tsconfig.json). They become
 * spaces (newlines stay), so a position in the result is the same in the text.
 */
export function stripJsonComments(text: string): string {
  return scanJson(scanJson(text, 'comments'), 'commas');
}

/** JSON.parse's "at position N" told as a line and column of the file as written. */
function jsonErrorAt(message: string, text: string): string {
  const m = /at position (\d+)/.exec(message);
  if (!m) return message;
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  return `${message} (line ${line}, column ${before.length - before.lastIndexOf('\n')})`;
}

const blank = (s: string) => s.replace(/[^\n]/g, ' ');

/** Whether the next character past whitespace (comments are whitespace by now) closes an object or array. */
function closesNext(text: string, i: number): boolean {
  while (i < text.length && /\s/.test(text[i]!)) i++;
  return text[i] === '}' || text[i] === ']';
}

function scanJson(text: string, mode: 'comments' | 'commas'): string {
  let out = '';
  let i = 0;
  let inString = false;
  while (i < text.length) {
    const ch = text[i]!;
    const next = text[i + 1];
    if (inString) {
      out += ch;
      if (ch === '\\') {
        out += next ?? '';
        i += 2;
        continue;
      }
      if (ch === '"') inString = false;
      i++;
    } else if (ch === '"') {
      inString = true;
      out += ch;
      i++;
    } else if (mode === 'comments' && ch === '/' && next === '/') {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? text.length : end;
      out += blank(text.slice(i, stop));
      i = stop;
    } else if (mode === 'comments' && ch === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      out += blank(text.slice(i, stop));
      i = stop;
    } else if (mode === 'commas' && ch === ',' && closesNext(text, i + 1)) {
      out += ' ';
      i++;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}
