-- The durable work queue: source syncs today; scaffolder runs, action runs
-- and scorecard evaluations reuse it. A job is claimed by one worker at a
-- time, which holds a lease (lease_owner until lease_until) and renews it
-- while it works; a job whose lease ran out belongs to a worker that died.
--
-- Times are milliseconds since the Unix epoch, so that both backends
-- compare them as plain integers.
--
-- dedupe_key, when set, allows one active (queued or running) job per key:
-- a second "sync source X" while one is pending finds the first instead.
CREATE TABLE jobs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    queue       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    triggered_by TEXT NOT NULL,
    actor       TEXT,
    payload     JSONB NOT NULL,
    status      TEXT NOT NULL,
    dedupe_key  TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_after   BIGINT NOT NULL,
    queued_at   BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    lease_owner TEXT,
    lease_until BIGINT,
    progress    JSONB,
    result      JSONB,
    error       JSONB
);
CREATE UNIQUE INDEX jobs_active ON jobs (dedupe_key)
    WHERE status IN ('queued', 'running');
CREATE INDEX jobs_ready ON jobs (queue, status, run_after);
CREATE INDEX jobs_history ON jobs (queue, subject, queued_at);
