/**
 * The file `bugbot init` writes: every section with its default and a comment.
 * It must parse with loadConfig (a test checks), so keep it in step with config.ts.
 */
export const STARTER_CONFIG = `// bugbot configuration (JSON with comments). Every value shown is the default;
// delete what you don't change. Precedence: defaults < this file < BUGBOT_* env vars
// < command-line flags. Secrets never go here: name the environment variable instead.
{
  // Database, outcomes archive, logs, ticket folders and worktrees.
  "home": ".bugbot",

  "server": {
    // Loopback by default. Binding elsewhere requires the API token below, a credential
    // for every enabled trigger and a dashboard login (bugbot start lists what is missing).
    "host": "127.0.0.1",
    "port": 7777,
    // Larger request bodies get 413.
    "maxBodyBytes": 1048576,
    // Bearer token for /api/*.
    "apiTokenEnv": "BUGBOT_API_TOKEN"
  },

  // The repository bugbot fixes.
  "target": {
    "repo": ".",
    "remote": "origin",
    "baseBranch": "main",
    "stagingBranch": "staging",
    "devCommand": "npm run dev",
    "testCommand": "npm test",
    // Worker N serves its dev server on basePort + N.
    "basePort": 4100
  },

  // Parallel workers, 1-8.
  "workers": 2,

  // How workers run Claude Code (see docs/harness.md).
  "harness": {
    // Model credentials workers may use: the only secrets they get.
    "apiKeyEnv": "ANTHROPIC_API_KEY",
    "baseUrlEnv": "ANTHROPIC_BASE_URL",
    "oauthTokenEnv": "CLAUDE_CODE_OAUTH_TOKEN",
    // "model": "sonnet",
    // A phase whose stream is silent this long is killed.
    "idleTimeoutSeconds": 300,
    // A failed model request (5xx, 529 overloaded, timeout) is retried this often, with back-off.
    "modelRetries": 4,
    "modelTimeoutSeconds": 600,
    // A banned attempt is denied and the session goes on ("deny"), or ends it ("kill").
    "onBannedAction": "deny",
    "devTimeoutSeconds": 60,
    // Workers claim nothing while the disk holding bugbot's home has less free (MB); 0: never.
    "minFreeDiskMb": 200,
    // A run of the test command that takes longer is stopped, and the test gate fails.
    "testTimeoutSeconds": 900,
    "heartbeatSeconds": 15,
    // "autopush" pushes fixes to the staging branch; "approve" waits on bot/<ticket> for a person.
    "pushMode": "autopush",
    "pushRetries": 5,
    // Who the bot's commits are by.
    "gitIdentity": { "name": "bugbot", "email": "bugbot@localhost" },
    // Extra shell commands implement and review may run, e.g. "Bash(make test:*)".
    "allowedCommands": [],
    "phases": {
      "research": { "maxTurns": 40, "maxBudgetUsd": 2, "wallSeconds": 900 },
      "implement": { "maxTurns": 80, "maxBudgetUsd": 5, "wallSeconds": 1800 },
      "review": { "maxTurns": 40, "maxBudgetUsd": 2, "wallSeconds": 900 },
      "docs": { "maxTurns": 20, "maxBudgetUsd": 1, "wallSeconds": 600 }
    }
  },

  // With harness.pushMode "approve": what approving a fix does (see docs/harness.md).
  "approval": {
    // "staging": rebase the bot branch onto staging and push it; "pr": open a pull request.
    "target": "staging",
    "github": {
      // GitHub Enterprise Server: "https://<host>/api/v3".
      "apiUrl": "https://api.github.com",
      // Required with target "pr":
      // "owner": "acme", "repo": "petshop",
      // Token that may open pull requests.
      "tokenEnv": "GITHUB_TOKEN"
      // The pull request's base; default target.stagingBranch.
      // "base": "staging"
    },
    // Approve without a person when every rule holds. Off by default.
    "autoApprove": {
      "enabled": false,
      "maxFilesChanged": 3,
      // Insertions plus deletions.
      "maxLinesChanged": 50,
      // The test command passed outright (no pre-existing failures).
      "requireTestsPassed": true,
      // Tickets above this severity always wait for a person.
      "maxSeverity": "medium",
      // A fix touching any of these waits for a person. A glob without "/" matches a name at any depth.
      "sensitivePaths": ["**/migrations/**", "*.sql", "**/auth/**", "*auth*", "**/security/**", "**/payment*/**", "**/billing/**",
        "package.json", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "Dockerfile", "infra/**", "deploy/**", ".github/**"]
    }
  },

  "intake": {
    // A new error waits this long for its cascade to settle; each occurrence resets it...
    "settleSeconds": 30,
    // ...but never past this.
    "settleCapSeconds": 300,
    // Errors of one service beginning this soon after another's wait for that one's fix
    // (one run for a cascade, not one per symptom); 0 makes every error a ticket of its own.
    "cascadeSeconds": 60,
    // In-app stack frames that go into a fingerprint.
    "stackFrames": 5,
    // Extra regular expressions to mask before anything is stored.
    "redactPatterns": [],
    // Salt for one-way hashes of user ids and emails.
    "hashSaltEnv": "BUGBOT_HASH_SALT"
  },

  "triage": {
    // Automated tickets below this severity wait (deferred) until more occurrences arrive.
    "minSeverity": "medium",
    "criticalPatterns": ["payment", "checkout", "data loss", "corrupt", "out of memory", "\\\\bOOM", "panic", "deadlock", "security", "unauthori[sz]ed access"],
    "highPatterns": ["TypeError", "ReferenceError", "NullPointerException", "undefined is not", "cannot read propert", "\\\\b5\\\\d\\\\d\\\\b(?!\\\\s*(?:ms|milliseconds?|s|seconds?)\\\\b)"],
    // Occurrence counts that raise severity to at least this level.
    "countThresholds": { "medium": 3, "high": 25, "critical": 500 },
    // Matching automated events are dropped with the reason (people's reports are not).
    "ignore": [
      { "pattern": "(ECONNRESET|ETIMEDOUT).*(stripe|twilio|sendgrid|amazonaws)", "reason": "third-party outage" },
      { "pattern": "^Watchdog$|DeadMansSwitch", "reason": "alerting heartbeat, not a bug" }
    ],
    // A recurrence within this many days of a fix is linked to it as a regression...
    "regressionWindowDays": 30,
    // ...unless it comes this soon after the push (the fix may not be deployed yet).
    "regressionGraceSeconds": 600,
    // "rules", or "model" for a tool-less Claude call classifying free text...
    "classifier": "rules",
    // ...at most this many model calls an hour; past it, the rules decide.
    "modelCallsPerHour": 60
  },

  "queue": {
    "leaseSeconds": 120,
    "maxAttempts": 3,
    // "normal" survives a crash of bugbot; "full" also survives power loss (slower).
    "durability": "normal"
  },

  // Days events (each alert, report, log line; tickets keep their counts) are kept after
  // they were last received, and finished runs' folders (stream logs, prompts) after the
  // run; 0 keeps them for ever.
  "retention": {
    "eventsDays": 30,
    "runFoldersDays": 30
  },

  "triggers": {
    "grafana": {
      "enabled": true
      // A bearer token or basic auth (either admits a request), and Grafana's signature on top:
      // "tokenEnv": "BUGBOT_GRAFANA_TOKEN",
      // "basicUserEnv": "BUGBOT_GRAFANA_USER", "basicPasswordEnv": "BUGBOT_GRAFANA_PASSWORD",
      // "hmacSecretEnv": "BUGBOT_GRAFANA_HMAC_SECRET",
      // "hmacHeader": "X-Grafana-Alerting-Signature", "timestampHeader": "X-Grafana-Alerting-Timestamp",
      // "toleranceSeconds": 300
    },
    "latency": {
      "enabled": true,
      // Alerts whose name matches are latency alerts on /triggers/grafana too.
      "alertNamePattern": "(?i)(latency|p95|p99|slow)",
      "defaultThresholdMs": 1000
    },
    "slack": {
      "enabled": true,
      "signingSecretEnv": "SLACK_SIGNING_SECRET",
      "botTokenEnv": "SLACK_BOT_TOKEN",
      "appTokenEnv": "SLACK_APP_TOKEN",
      "socketMode": false,
      "apiUrl": "https://slack.com/api/",
      // Slack user ids (U…) whose Approve / Skip clicks act; nobody's by default.
      "approvers": []
    },
    "email": {
      "enabled": true,
      "mailgunSigningKeyEnv": "MAILGUN_SIGNING_KEY",
      "rawTokenEnv": "BUGBOT_EMAIL_TOKEN"
      // How old a Mailgun timestamp may be (Mailgun retries for 8 hours), and the body
      // limit of the email routes (a mail with a screenshot):
      // "toleranceSeconds": 32400, "maxBodyBytes": 26214400
    }
  },

  // Telling reporters what became of their ticket (see docs/notifications.md).
  "notify": {
    // Thread replies (fixed / failed / approval buttons); needs triggers.slack.botTokenEnv set.
    "slack": {
      "enabled": true
      // Approval requests for tickets no Slack thread reported: "approvalsChannel": "C0123456789"
    },
    // One "fixed and live" reply to email reporters, once the fix is pushed. Off until host is set:
    "email": {
      // "host": "smtp.example.com", "from": "bugbot <bugbot@example.com>",
      "port": 587,
      // true: TLS from the first byte (port 465); false: STARTTLS, required unless requireTLS is false.
      "secure": false,
      "requireTLS": true,
      // SMTP login, used when both variables are set.
      "userEnv": "BUGBOT_SMTP_USER",
      "passwordEnv": "BUGBOT_SMTP_PASSWORD"
    }
    // Link commits in messages: "commitUrl": "https://github.com/acme/shop/commit/{commit}"
  },

  // The dashboard at / (see docs/dashboard.md): queue, workers, tickets, outcomes, approvals.
  "dashboard": {
    "enabled": true,
    // Setting this variable turns the login on; without one the dashboard serves loopback only.
    "tokenEnv": "BUGBOT_DASHBOARD_TOKEN",
    // Or a user name and password: "basicUserEnv": "BUGBOT_DASHBOARD_USER", "basicPasswordEnv": "BUGBOT_DASHBOARD_PASSWORD",
    // Ask for a login on loopback too (always asked when server.host is not loopback).
    "requireLogin": false,
    "sessionHours": 12,
    // Origins (besides the dashboard's own) allowed to post its forms, e.g. a TLS proxy's.
    "allowedOrigins": [],
    "liveIntervalMs": 1000,
    "maxDiffBytes": 524288
  },

  // Phase 0: the target's docs, indexed for retrieval (see docs/docs-search.md).
  "docs": {
    "globs": ["docs/**/*.md", "CLAUDE.md"],
    "preContextBytes": 12000,
    "preContextK": 6,
    // Vectors as well as full-text search when an OpenAI-compatible endpoint is set:
    "embeddings": {
      // "baseURL": "http://127.0.0.1:8080/v1",
      "model": "text-embedding-3-small",
      "apiKeyEnv": "OPENAI_API_KEY"
    }
  },

  // The MCP servers the agent works through (see docs/mcp.md).
  "mcp": {
    "browser": {
      "chromiumPath": "/usr/bin/chromium",
      // Each worker's own dev server is always allowed; add other origins here.
      "origins": [],
      // How to sign in as each kind of user, e.g.
      // "free": { "description": "free plan", "loginUrl": "/dev-login?role=free", "expect": "#user" }
      "roles": {}
    },
    "loki": {
      // "url": "http://loki:3100", "tokenEnv": "BUGBOT_LOKI_TOKEN", "tenant": "prod",
      // or JSON-lines log files when there is no Loki:
      "files": [],
      "userLabel": "user_id"
    },
    "db": {
      "driver": "postgres",
      // A read-only role's connection URL, from this variable:
      "urlEnv": "BUGBOT_DB_READONLY_URL",
      // Columns the agent may see, per table; sensitive columns are never visible.
      "tables": {},
      "sensitive": {},
      "statementTimeoutMs": 5000,
      "rowLimit": 200
    }
  },

  "watch": {
    // Log files \`bugbot start\` tails for errors (JSON lines or plain text).
    "files": [],
    "pollMs": 500
  }
}
`;
