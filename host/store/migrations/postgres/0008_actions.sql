-- Day-2 action runs and scaffolder runs, their logs, and the audit trail.
--
-- `kind` says which a run is: `action` or `template`; `action` holds the
-- plugin's id either way. Template runs execute on the replica that
-- accepted them (their secret parameters never reach the database), so
-- they are created `running` with that replica's lease.
--
-- A run is one row that moves through its statuses (queued,
-- awaiting-approval, running, succeeded, failed, cancelled). Its row is also
-- its place in the queue: a worker claims a queued run (FOR UPDATE SKIP
-- LOCKED on PostgreSQL, one atomic UPDATE on SQLite), holds a lease
-- (lease_owner until lease_until) and renews it while the plugin runs; a
-- running run whose lease ran out belonged to a replica that died. A retry
-- puts the same run back in the queue with attempt + 1.
--
-- input holds the input with secret fields replaced by "[secret]";
-- secret_input holds those fields' values (a JSON object of JSON pointer to
-- value) only until the run ends. cancel_requested tells the worker running
-- the run, whichever replica it is on, to stop it. log_seq is the last
-- sequence number handed out for the run's log lines.
--
-- Times are milliseconds since the Unix epoch.
CREATE TABLE action_runs (
    id               TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL DEFAULT 'action',
    action           TEXT NOT NULL,
    action_version   TEXT NOT NULL,
    entity_ref       TEXT,
    input            JSONB NOT NULL,
    secret_input     JSONB,
    status           TEXT NOT NULL,
    actor            TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    created_at       BIGINT NOT NULL,
    queued_at        BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    approval_role    TEXT,
    approval_decision TEXT,
    approval_by      TEXT,
    approval_at      BIGINT,
    approval_comment TEXT,
    output           JSONB,
    links            JSONB,
    error            JSONB,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    cancelled_by     TEXT,
    lease_owner      TEXT,
    lease_until      BIGINT,
    log_seq          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX action_runs_ready ON action_runs (status, kind, queued_at);
CREATE INDEX action_runs_by_kind ON action_runs (kind, id);
CREATE INDEX action_runs_by_action ON action_runs (action, id);
CREATE INDEX action_runs_by_entity ON action_runs (entity_ref, id);
CREATE INDEX action_runs_by_actor ON action_runs (actor, id);

CREATE TABLE action_run_logs (
    run_id   TEXT COLLATE "C" NOT NULL,
    seq      BIGINT NOT NULL,
    attempt  INTEGER NOT NULL,
    level    TEXT NOT NULL,
    message  TEXT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Who did what, when: one row per start, approval, denial, cancellation and
-- retry. Inputs in detail have their secret fields redacted.
CREATE TABLE audit_log (
    id       TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    verb     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   JSONB NOT NULL
);
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
CREATE INDEX audit_log_by_verb ON audit_log (verb, id);
CREATE INDEX audit_log_by_subject ON audit_log (subject, id);
