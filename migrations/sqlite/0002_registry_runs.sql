-- Identity registry and run history. Lockstep with migrations/postgres/0002_registry_runs.sql.

-- Runs of a pipeline (manual, scheduled, demo). `summary` is the run summary as JSON.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline    TEXT    NOT NULL,
    trigger     TEXT    NOT NULL,
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    status      TEXT    NOT NULL,
    summary     TEXT,
    error       TEXT
);
CREATE INDEX runs_pipeline ON runs (pipeline, id);

-- A person. `id` is internal and compact (lineage stores sets of it); `person_key` is what
-- leaves the store. A merged person points to the survivor and is never deleted.
CREATE TABLE persons (
    id          INTEGER PRIMARY KEY,
    person_key  TEXT    NOT NULL UNIQUE,
    created_run INTEGER NOT NULL,
    merged_into INTEGER REFERENCES persons (id)
);

-- Keyed tokens seen for each person, per rule. An SSN token belongs to one person; name
-- tokens may be shared by several (that is what makes a name+DOB match ambiguous).
CREATE TABLE person_tokens (
    rule      INTEGER NOT NULL,
    token     BLOB    NOT NULL,
    person_id INTEGER NOT NULL REFERENCES persons (id),
    first_run INTEGER NOT NULL,
    PRIMARY KEY (rule, token, person_id)
);

-- Temporary IDs issued to people without an SSN. Kept for ever: a returning person keeps it.
CREATE TABLE temp_ids (
    temp_id    TEXT    PRIMARY KEY,
    person_id  INTEGER NOT NULL REFERENCES persons (id),
    issued_run INTEGER NOT NULL,
    issued_at  TEXT    NOT NULL
);
CREATE INDEX temp_ids_person ON temp_ids (person_id);

-- Merges by pointer, with why.
CREATE TABLE merges (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    from_person INTEGER NOT NULL REFERENCES persons (id),
    into_person INTEGER NOT NULL REFERENCES persons (id),
    run_id      INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    at          TEXT    NOT NULL
);

-- Identifier disagreements left for a person to decide; nothing is linked automatically.
CREATE TABLE review_queue (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    person_a   INTEGER NOT NULL REFERENCES persons (id),
    person_b   INTEGER NOT NULL REFERENCES persons (id),
    detail     TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    UNIQUE (kind, person_a, person_b)
);

-- Every source file a run read: the input guard rails compare row counts against it.
CREATE TABLE source_files (
    run_id        INTEGER NOT NULL REFERENCES runs (id),
    source        TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    rows_read     INTEGER NOT NULL,
    rows_accepted INTEGER NOT NULL,
    rows_rejected INTEGER NOT NULL,
    PRIMARY KEY (run_id, source, path)
);
