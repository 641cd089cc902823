-- The probabilistic pass (rule set version 2) and clerical review. Lockstep with
-- migrations/postgres/0007_probabilistic_linkage.sql.

-- The Fellegi-Sunter model each run estimated per source: m and u of every field's
-- agreement levels (u from random pairs, m by EM on the run's candidate pairs).
CREATE TABLE link_models (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    source TEXT    NOT NULL,
    field  TEXT    NOT NULL,
    level  TEXT    NOT NULL,
    m      REAL    NOT NULL,
    u      REAL    NOT NULL,
    PRIMARY KEY (run_id, source, field, level)
);

-- The pass's own report per run and source: band sizes, and from the model the expected
-- precision and recall of what it linked.
CREATE TABLE link_quality (
    run_id                  INTEGER NOT NULL REFERENCES runs (id),
    source                  TEXT    NOT NULL,
    records                 INTEGER NOT NULL,
    records_with_candidates INTEGER NOT NULL,
    candidate_pairs         INTEGER NOT NULL,
    linked                  INTEGER NOT NULL,
    review                  INTEGER NOT NULL,
    non_link                INTEGER NOT NULL,
    ambiguous               INTEGER NOT NULL,
    review_accepted         INTEGER NOT NULL,
    estimated_precision     REAL    NOT NULL,
    estimated_recall        REAL    NOT NULL,
    lambda                  REAL    NOT NULL,
    em_iterations           INTEGER NOT NULL,
    em_converged            INTEGER NOT NULL,
    PRIMARY KEY (run_id, source)
);

-- Probable links for a person to decide, and the decisions. `record_key` is the keyed
-- token of the agency record (its record id, or for a source without one its SSN), so a
-- decision holds for every later run that sees that record; no identifier is stored.
-- `status`: pending, accepted (later runs link the record to the person) or rejected
-- (later runs never pair them again).
CREATE TABLE link_reviews (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    source           TEXT    NOT NULL,
    record_key       BLOB    NOT NULL,
    person_id        INTEGER NOT NULL REFERENCES persons (id),
    first_run        INTEGER NOT NULL,
    last_run         INTEGER NOT NULL,
    weight           REAL    NOT NULL,
    probability      REAL    NOT NULL,
    field_weights    TEXT    NOT NULL,
    rows             INTEGER NOT NULL,
    record_ref       TEXT,
    record_ssn_last4 TEXT,
    person_ssn_last4 TEXT,
    status           TEXT    NOT NULL,
    decided_by       TEXT,
    decided_at       TEXT,
    reason           TEXT,
    UNIQUE (source, record_key, person_id)
);
CREATE INDEX link_reviews_status ON link_reviews (status);

-- Decisions on the resolver's review items (two persons whose identifiers disagree).
ALTER TABLE review_queue ADD COLUMN decided_by TEXT;
ALTER TABLE review_queue ADD COLUMN decided_at TEXT;
ALTER TABLE review_queue ADD COLUMN reason TEXT;

-- A merge undone by `xmatch review unmerge` keeps its row, marked.
ALTER TABLE merges ADD COLUMN undone_at TEXT;
ALTER TABLE merges ADD COLUMN undone_by TEXT;
ALTER TABLE merges ADD COLUMN undo_reason TEXT;

-- Pairs of persons a person said are two people (an unmerge): the resolver never merges
-- them again. `person_a` < `person_b`.
CREATE TABLE merge_blocks (
    person_a INTEGER NOT NULL REFERENCES persons (id),
    person_b INTEGER NOT NULL REFERENCES persons (id),
    at       TEXT    NOT NULL,
    actor    TEXT    NOT NULL,
    PRIMARY KEY (person_a, person_b)
);
