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
    // Loopback by default. Binding elsewhere requires the API token below to be set.
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

  "intake": {
    // A new error waits this long for its cascade to settle; each occurrence resets it...
    "settleSeconds": 30,
    // ...but never past this.
    "settleCapSeconds": 300,
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
    "criticalPatterns": ["payment", "checkout", "data loss", "corrupt", "out of memory", "OOM", "panic", "deadlock", "security", "unauthori[sz]ed access"],
    "highPatterns": ["TypeError", "ReferenceError", "NullPointerException", "undefined is not", "cannot read propert", "5\\\\d\\\\d"],
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
    // "rules", or "model" for a tool-less Claude call classifying free text.
    "classifier": "rules"
  },

  "queue": {
    "leaseSeconds": 120,
    "maxAttempts": 3,
    // "normal" survives a crash of bugbot; "full" also survives power loss (slower).
    "durability": "normal"
  },

  "triggers": {
    "grafana": {
      "enabled": true
      // Any of these, when set, is required on every request:
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
      "apiUrl": "https://slack.com/api/"
    },
    "email": {
      "enabled": true,
      "mailgunSigningKeyEnv": "MAILGUN_SIGNING_KEY",
      "rawTokenEnv": "BUGBOT_EMAIL_TOKEN"
    }
  },

  "watch": {
    // Log files \`bugbot start\` tails for errors (JSON lines or plain text).
    "files": [],
    "pollMs": 500
  }
}
`;
