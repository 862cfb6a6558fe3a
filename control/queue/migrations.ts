/**
 * Schema migrations, applied in order inside one transaction each and tracked by
 * `PRAGMA user_version`. Append new migrations; never edit a released one.
 */
import type Database from 'better-sqlite3';

const MIGRATIONS: string[] = [
  /* 1: events (= occurrences), tickets, runs, stage_runs, audit, nonces */ `
  CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    source          TEXT NOT NULL,
    source_event_id TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'firing',
    fingerprint     TEXT NOT NULL,
    ticket_id       INTEGER REFERENCES tickets(id),
    -- An event is an occurrence of its ticket: when it was seen and how many it stands for.
    seen_at         TEXT NOT NULL,
    count           INTEGER NOT NULL,
    event_json      TEXT NOT NULL,
    UNIQUE (source, source_event_id)
  );
  CREATE INDEX events_ticket ON events(ticket_id, seen_at);

  CREATE TABLE tickets (
    id                INTEGER PRIMARY KEY,
    fingerprint       TEXT NOT NULL,
    fingerprint_json  TEXT NOT NULL,
    source            TEXT NOT NULL,
    kind              TEXT NOT NULL,
    service           TEXT,
    title             TEXT NOT NULL,
    message           TEXT NOT NULL,
    stack             TEXT,
    route             TEXT,
    labels_json       TEXT NOT NULL DEFAULT '{}',
    state             TEXT NOT NULL,
    severity          TEXT NOT NULL DEFAULT 'low',
    priority          INTEGER NOT NULL DEFAULT 0,
    count             INTEGER NOT NULL DEFAULT 0,
    users             INTEGER NOT NULL DEFAULT 0,
    human             INTEGER NOT NULL DEFAULT 0,
    claimed_by        TEXT,
    reporters_json    TEXT NOT NULL DEFAULT '[]',
    classification    TEXT,
    classify_reason   TEXT,
    triage_decision   TEXT,
    triage_reason     TEXT,
    regression_of     INTEGER REFERENCES tickets(id),
    first_seen        TEXT NOT NULL,
    last_seen         TEXT NOT NULL,
    settle_deadline   TEXT,
    settle_cap        TEXT,
    attempt           INTEGER NOT NULL DEFAULT 0,
    alert_resolved_at TEXT,
    pushed_at         TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
  );
  CREATE INDEX tickets_fingerprint ON tickets(fingerprint, id);
  CREATE INDEX tickets_state ON tickets(state, priority DESC, id);
  CREATE INDEX tickets_settle ON tickets(settle_deadline) WHERE state = 'settling';

  CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    ticket_id    INTEGER NOT NULL REFERENCES tickets(id),
    attempt      INTEGER NOT NULL,
    worker_id    INTEGER NOT NULL,
    port         INTEGER,
    state        TEXT NOT NULL,
    lease_until  TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    pid          INTEGER,
    phase        TEXT,
    branch       TEXT,
    worktree     TEXT,
    outcome      TEXT,
    reason       TEXT,
    started_at   TEXT NOT NULL,
    finished_at  TEXT
  );
  CREATE INDEX runs_state ON runs(state);
  CREATE INDEX runs_ticket ON runs(ticket_id);

  CREATE TABLE stage_runs (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    stage       TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    tokens      INTEGER NOT NULL DEFAULT 0,
    tool_calls  INTEGER NOT NULL DEFAULT 0,
    cost_usd    REAL NOT NULL DEFAULT 0,
    detail_json TEXT
  );
  CREATE INDEX stage_runs_run ON stage_runs(run_id);

  CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    ticket_id INTEGER REFERENCES tickets(id),
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT
  );
  CREATE INDEX audit_ticket ON audit(ticket_id);

  -- One-time values (Mailgun tokens, ...) seen inside their validity window: replay defence.
  CREATE TABLE nonces (
    scope   TEXT NOT NULL,
    value   TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (scope, value)
  );

  -- Byte offsets of tailed log files, committed after their events.
  CREATE TABLE watch_offsets (
    path   TEXT PRIMARY KEY,
    inode  INTEGER NOT NULL,
    offset INTEGER NOT NULL
  );
  `,
  /* 2: live progress of a run (phase, tokens, cost so far), for `bugbot status` and the API */ `
  ALTER TABLE runs ADD COLUMN progress_json TEXT;
  `,
  /* 3: people's approval decisions (approve / skip / requeue) and what an approval produced */ `
  CREATE TABLE approvals (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    run_id      INTEGER REFERENCES runs(id),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    -- running (an approval merging or opening its pull request), done, conflict, failed, abandoned
    status      TEXT NOT NULL,
    target      TEXT,
    commit_sha  TEXT,
    pr_url      TEXT,
    message     TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT
  );
  CREATE INDEX approvals_ticket ON approvals(ticket_id, id);
  -- At most one approval in flight per ticket: a second approve cannot merge twice.
  CREATE UNIQUE INDEX approvals_running ON approvals(ticket_id) WHERE status = 'running';
  `,
  /* 4: the notifications outbox: each message to a reporter, kept until sent or refused for good */ `
  CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    kind        TEXT NOT NULL,
    -- The same notice to the same reporter is recorded (and sent) once.
    dedupe_key  TEXT NOT NULL UNIQUE,
    -- The notice as sent (with the ticket as it was) and which of its messages this is.
    notice_json TEXT NOT NULL,
    target_json TEXT NOT NULL,
    -- pending (not sent yet: in flight, waiting to try again, or left by a stop), sent, failed
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    finished_at TEXT
  );
  CREATE INDEX notifications_pending ON notifications(id) WHERE state = 'pending';
  `,
  /* 5: when an event was last received again (a re-sent alert): retention keeps its idempotency key while it comes back */ `
  ALTER TABLE events ADD COLUMN last_received_at TEXT;
  `,
  /* 6: when retention removed a finished run's folder: a pass looks only at runs whose folder it has not removed yet */ `
  ALTER TABLE runs ADD COLUMN folder_removed_at TEXT;
  CREATE INDEX runs_folder_kept ON runs(id) WHERE folder_removed_at IS NULL AND state != 'running';
  `,
  /* 7: pruning used one-time values by age: each signed request's prune reads only the expired ones */ `
  CREATE INDEX nonces_seen ON nonces(scope, seen_at);
  `,
  /* 8: which process an approval in flight belongs to (control/process-identity.ts): one whose process is gone is given up at once */ `
  ALTER TABLE approvals ADD COLUMN owner TEXT;
  `,
  /* 9: how many times a tailed log file was truncated in place (copytruncate): part of its events' ids */ `
  ALTER TABLE watch_offsets ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
  `,
  /* 10: what a run's end has yet to tell its reporters, written with the end (control/queue/leases.ts): a crash before they were told leaves it for the next start */ `
  ALTER TABLE runs ADD COLUMN notice TEXT;
  CREATE INDEX runs_notice ON runs(id) WHERE notice IS NOT NULL;
  `,
  /* 11: what a tailed log file held just before its offset (control/triggers/logfile-tail.ts): a file truncated in place and grown back past the offset while nothing watched is told from the one that was read; NULL in rows saved before, whose offset is trusted */ `
  ALTER TABLE watch_offsets ADD COLUMN fingerprint TEXT;
  `,
  /* 12: a ticket's reporters, a row each (control/queue/store.ts): a list in the ticket's row was parsed and written whole for every report merged into it, quadratic in a flood of reports; tickets.reporters_json is left empty */ `
  CREATE TABLE ticket_reporters (
    id            INTEGER PRIMARY KEY,
    ticket_id     INTEGER NOT NULL REFERENCES tickets(id),
    kind          TEXT NOT NULL,
    reporter_id   TEXT NOT NULL,
    thread        TEXT NOT NULL DEFAULT '',
    reporter_json TEXT NOT NULL,
    UNIQUE (ticket_id, kind, reporter_id, thread)
  );
  CREATE INDEX ticket_reporters_thread ON ticket_reporters(kind, thread) WHERE thread != '';
  -- Only lists of objects: json_each() and json_extract() stop the migration on text that is
  -- no JSON (an empty column) or a bare id; CASE reads the list only once it is known valid.
  INSERT OR IGNORE INTO ticket_reporters (ticket_id, kind, reporter_id, thread, reporter_json)
    SELECT t.id, json_extract(j.value, '$.kind'), json_extract(j.value, '$.id'), COALESCE(json_extract(j.value, '$.thread'), ''), j.value
      FROM tickets t, json_each(CASE WHEN json_valid(t.reporters_json) THEN CASE json_type(t.reporters_json) WHEN 'array' THEN t.reporters_json END END) j
     WHERE t.reporters_json != '[]' AND j.type = 'object'
     ORDER BY t.id, j.key;
  UPDATE tickets SET reporters_json = '[]' WHERE reporters_json != '[]';
  `,
  /* 13: a year's tickets: a state's page newest first (listTickets) read from an index in id order, not the whole state sorted (15,000 dropped tickets: 4 ms a page, 85 ms at offset 10,000); a ticket's regressions (the ticket page, the 24-hour re-check) without a scan of every ticket (IF NOT EXISTS: a database set back to an older version, as tests do, keeps them) */ `
  CREATE INDEX IF NOT EXISTS tickets_state_id ON tickets(state, id);
  CREATE INDEX IF NOT EXISTS tickets_regression ON tickets(regression_of) WHERE regression_of IS NOT NULL;
  `,
  /* 14: reports held for their fuller account (a Slack mention, for its thread: control/triggers/slack.ts), written with the ticket they open and removed once the holder has read it and answered: a stop or a crash in between left the ticket to be triaged on the mention alone and the reporter unanswered; the next start finishes it (IF NOT EXISTS: a database set back to an older version, as tests do, keeps it) */ `
  CREATE TABLE IF NOT EXISTS held_reports (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    source    TEXT NOT NULL,
    -- What the holder needs to finish it (a Slack mention: its channel, thread and ts).
    note_json TEXT NOT NULL
  );
  `,
  /* 15: a ticket's messages found by its id: the ticket page, the API and a latecomer's "fixed" notice read them, and scanned the whole outbox (every reporter of every ticket) to find them */ `
  CREATE INDEX IF NOT EXISTS notifications_ticket ON notifications(ticket_id, id);
  `,
  /* 16: cascades (intake.cascadeSeconds): a ticket held while the ticket whose errors began just before it in the same service is worked on, by that head ticket's id (IF NOT EXISTS: a database set back to an older version, as tests do, keeps them) */ `
  CREATE TABLE IF NOT EXISTS cascade_members (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    head_id   INTEGER NOT NULL REFERENCES tickets(id)
  );
  CREATE INDEX IF NOT EXISTS cascade_members_head ON cascade_members(head_id);
  `,
  /* 17: a cascade's head looked up by its service and when its errors began (Store.cascadeHeadFor), not among every open ticket: at each triage decision, 1.3 ms with 10,000 open tickets (IF NOT EXISTS: see 13) */ `
  CREATE INDEX IF NOT EXISTS tickets_service_first_seen ON tickets(service, first_seen) WHERE service IS NOT NULL;
  `,
];

export function migrate(db: Database.Database): void {
  for (;;) {
    // Read and raised in one IMMEDIATE transaction: two processes opening a new home at
    // once (bugbot start and bugbot watch) would otherwise both run the same migration.
    const more = db
      .transaction(() => {
        const v = db.pragma('user_version', { simple: true }) as number;
        // A bugbot rolled back after an upgrade: reading a schema it does not know would
        // misread it quietly (migration 12's reporters, in a table an older one never reads).
        if (v > MIGRATIONS.length) {
          throw Object.assign(
            new Error(`${db.name} has schema version ${v}, newer than this bugbot's ${MIGRATIONS.length}: a newer bugbot wrote it; run that version (or one at least as new) on this home`),
            { code: 'BUGBOT_SCHEMA_NEWER' },
          );
        }
        if (v === MIGRATIONS.length) return false;
        db.exec(MIGRATIONS[v]!);
        db.pragma(`user_version = ${v + 1}`);
        return true;
      })
      .immediate();
    if (!more) return;
  }
}

export const SCHEMA_VERSION = MIGRATIONS.length;
