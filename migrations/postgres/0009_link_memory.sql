-- Held probabilistic decisions. Lockstep with migrations/sqlite/0009_link_memory.sql,
-- which says why the table is there.
CREATE TABLE link_memory (
    source     TEXT   NOT NULL,
    record_key BYTEA  NOT NULL,
    person_id  BIGINT NOT NULL REFERENCES persons (id),
    band       TEXT   NOT NULL,
    run_id     BIGINT NOT NULL,
    PRIMARY KEY (source, record_key)
);

-- Per run and source, the records whose band a held decision gave (the model alone would
-- have put them elsewhere): `runs show` and `/metrics` report it.
ALTER TABLE link_quality ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
