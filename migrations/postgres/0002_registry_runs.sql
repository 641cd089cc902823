-- Identity registry and run history. Lockstep with migrations/sqlite/0002_registry_runs.sql.

-- Runs of a pipeline (manual, scheduled, demo). `summary` is the run summary as JSON.
CREATE TABLE runs (
    id          BIGSERIAL PRIMARY KEY,
    pipeline    TEXT    NOT NULL,
    trigger     TEXT    NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status      TEXT    NOT NULL,
    summary     TEXT,
    error       TEXT
);
CREATE INDEX runs_pipeline ON runs (pipeline, id);

-- A person. `id` is internal and compact (lineage stores sets of it); `person_key` is what
-- leaves the store. A merged person points to the survivor and is never deleted.
CREATE TABLE persons (
    id          BIGINT  PRIMARY KEY,
    person_key  TEXT    NOT NULL UNIQUE,
    created_run BIGINT  NOT NULL,
    merged_into BIGINT REFERENCES persons (id)
);

-- Keyed tokens seen for each person, per rule. An SSN token belongs to one person; name
-- tokens may be shared by several (that is what makes a name+DOB match ambiguous).
CREATE TABLE person_tokens (
    rule      INTEGER NOT NULL,
    token     BYTEA    NOT NULL,
    person_id BIGINT  NOT NULL REFERENCES persons (id),
    first_run BIGINT  NOT NULL,
    PRIMARY KEY (rule, token, person_id)
);

-- Temporary IDs issued to people without an SSN. Kept for ever: a returning person keeps it.
CREATE TABLE temp_ids (
    temp_id    TEXT    PRIMARY KEY,
    person_id  BIGINT  NOT NULL REFERENCES persons (id),
    issued_run BIGINT  NOT NULL,
    issued_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX temp_ids_person ON temp_ids (person_id);

-- Merges by pointer, with why.
CREATE TABLE merges (
    id          BIGSERIAL PRIMARY KEY,
    from_person BIGINT  NOT NULL REFERENCES persons (id),
    into_person BIGINT  NOT NULL REFERENCES persons (id),
    run_id      BIGINT  NOT NULL,
    reason      TEXT    NOT NULL,
    at          TIMESTAMPTZ NOT NULL
);

-- Identifier disagreements left for a person to decide; nothing is linked automatically.
CREATE TABLE review_queue (
    id         BIGSERIAL PRIMARY KEY,
    run_id     BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    person_a   BIGINT  NOT NULL REFERENCES persons (id),
    person_b   BIGINT  NOT NULL REFERENCES persons (id),
    detail     TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, person_a, person_b)
);

-- Every source file a run read: the input guard rails compare row counts against it.
CREATE TABLE source_files (
    run_id        BIGINT  NOT NULL REFERENCES runs (id),
    source        TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    rows_read     BIGINT  NOT NULL,
    rows_accepted BIGINT  NOT NULL,
    rows_rejected BIGINT  NOT NULL,
    PRIMARY KEY (run_id, source, path)
);
