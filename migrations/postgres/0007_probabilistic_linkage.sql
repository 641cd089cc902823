-- The probabilistic pass (rule set version 2) and clerical review. Lockstep with
-- migrations/sqlite/0007_probabilistic_linkage.sql.

-- The Fellegi-Sunter model each run estimated per source: m and u of every field's
-- agreement levels (u from random pairs, m by EM on the run's candidate pairs).
CREATE TABLE link_models (
    run_id BIGINT NOT NULL REFERENCES runs (id),
    source TEXT    NOT NULL,
    field  TEXT    NOT NULL,
    level  TEXT    NOT NULL,
    m      DOUBLE PRECISION    NOT NULL,
    u      DOUBLE PRECISION    NOT NULL,
    PRIMARY KEY (run_id, source, field, level)
);

-- The pass's own report per run and source: band sizes, and from the model the expected
-- precision and recall of what it linked.
CREATE TABLE link_quality (
    run_id                  BIGINT NOT NULL REFERENCES runs (id),
    source                  TEXT    NOT NULL,
    records                 BIGINT  NOT NULL,
    records_with_candidates BIGINT  NOT NULL,
    candidate_pairs         BIGINT  NOT NULL,
    linked                  BIGINT  NOT NULL,
    review                  BIGINT  NOT NULL,
    non_link                BIGINT  NOT NULL,
    ambiguous               BIGINT  NOT NULL,
    review_accepted         BIGINT  NOT NULL,
    estimated_precision     DOUBLE PRECISION    NOT NULL,
    estimated_recall        DOUBLE PRECISION    NOT NULL,
    lambda                  DOUBLE PRECISION    NOT NULL,
    em_iterations           BIGINT  NOT NULL,
    em_converged            BOOLEAN NOT NULL,
    PRIMARY KEY (run_id, source)
);

-- Probable links for a person to decide, and the decisions. `record_key` is the keyed
-- token of the agency record (its record id, or for a source without one its SSN), so a
-- decision holds for every later run that sees that record; no identifier is stored.
-- `status`: pending, accepted (later runs link the record to the person) or rejected
-- (later runs never pair them again).
CREATE TABLE link_reviews (
    id               BIGSERIAL PRIMARY KEY,
    source           TEXT    NOT NULL,
    record_key       BYTEA   NOT NULL,
    person_id        BIGINT  NOT NULL REFERENCES persons (id),
    first_run        BIGINT  NOT NULL,
    last_run         BIGINT  NOT NULL,
    weight           DOUBLE PRECISION    NOT NULL,
    probability      DOUBLE PRECISION    NOT NULL,
    field_weights    TEXT    NOT NULL,
    rows             BIGINT  NOT NULL,
    record_ref       TEXT,
    record_ssn_last4 TEXT,
    person_ssn_last4 TEXT,
    status           TEXT    NOT NULL,
    decided_by       TEXT,
    decided_at       TIMESTAMPTZ,
    reason           TEXT,
    UNIQUE (source, record_key, person_id)
);
CREATE INDEX link_reviews_status ON link_reviews (status);

-- Decisions on the resolver's review items (two persons whose identifiers disagree).
ALTER TABLE review_queue ADD COLUMN decided_by TEXT;
ALTER TABLE review_queue ADD COLUMN decided_at TIMESTAMPTZ;
ALTER TABLE review_queue ADD COLUMN reason TEXT;

-- A merge undone by `xmatch review unmerge` keeps its row, marked.
ALTER TABLE merges ADD COLUMN undone_at TIMESTAMPTZ;
ALTER TABLE merges ADD COLUMN undone_by TEXT;
ALTER TABLE merges ADD COLUMN undo_reason TEXT;

-- Pairs of persons a person said are two people (an unmerge): the resolver never merges
-- them again. `person_a` < `person_b`.
CREATE TABLE merge_blocks (
    person_a BIGINT NOT NULL REFERENCES persons (id),
    person_b BIGINT NOT NULL REFERENCES persons (id),
    at       TIMESTAMPTZ NOT NULL,
    actor    TEXT    NOT NULL,
    PRIMARY KEY (person_a, person_b)
);
