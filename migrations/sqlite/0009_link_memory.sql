-- Held probabilistic decisions. Lockstep with migrations/postgres/0009_link_memory.sql.
--
-- The band (link, review, non_link) and person the probabilistic pass last decided for
-- an agency record, keyed like review items by the record's keyed token under the key in
-- force (its record id, or for a source without one its SSN). A later run keeps that
-- decision while the record's weight stays within `hold_margin` bits of the band's range,
-- so re-estimated models and key rotations do not flip records sitting at a threshold.
-- Only records near or above the review threshold are kept; no identifier is stored.
CREATE TABLE link_memory (
    source     TEXT    NOT NULL,
    record_key BLOB    NOT NULL,
    person_id  INTEGER NOT NULL REFERENCES persons (id),
    band       TEXT    NOT NULL,
    run_id     INTEGER NOT NULL,
    PRIMARY KEY (source, record_key)
);

-- Per run and source, the records whose band a held decision gave (the model alone would
-- have put them elsewhere): `runs show` and `/metrics` report it.
ALTER TABLE link_quality ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
