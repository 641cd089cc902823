-- Scheduling: run attempts, leases that keep two runs of one pipeline apart (also across
-- machines sharing a PostgreSQL store), and each schedule's last firing for catch-up.
-- Lockstep with migrations/postgres/0005_scheduling.sql.
--
-- Lease times are Unix milliseconds: compared in SQL on both backends, where SQLite's text
-- timestamps would only compare correctly by accident of formatting.

-- `attempt` counts tries of one firing (1, then retries); `scheduled_for` is the schedule
-- time a run answers (NULL for runs started by hand); `holder` names the process
-- (host/pid/start time) and `lease_expires_ms` is renewed by its heartbeat.
ALTER TABLE runs ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN scheduled_for TEXT;
ALTER TABLE runs ADD COLUMN holder TEXT;
ALTER TABLE runs ADD COLUMN lease_expires_ms BIGINT;
CREATE INDEX runs_status ON runs (status);

-- One row per pipeline. `fence` grows by one at every acquisition: the publish step
-- commits only if the fence it was given is still the current one, so a run that lost
-- its lease (paused, partitioned, declared abandoned) cannot publish late.
CREATE TABLE pipeline_leases (
    pipeline   TEXT    PRIMARY KEY,
    holder     TEXT,
    run_id     BIGINT,
    fence      BIGINT  NOT NULL,
    expires_ms BIGINT  NOT NULL
);

-- The last schedule time each pipeline's schedule answered (fired, skipped or caught up),
-- or when a daemon first armed it: the start of the gap a restarted daemon looks at.
CREATE TABLE schedule_marks (
    pipeline  TEXT PRIMARY KEY,
    last_fire TEXT NOT NULL
);
