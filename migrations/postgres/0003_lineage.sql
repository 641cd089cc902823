-- Lineage: every file a run wrote, in either zone. Lockstep with
-- migrations/sqlite/0003_lineage.sql.
--
-- `columns` is a JSON array of {name, pii, sensitive}; `persons` is the encoded set of
-- internal person ids (lake::PersonSet), kept so breach questions can be answered after
-- the file itself is gone (`purged_at` says when it went).
CREATE TABLE lineage_files (
    id           BIGSERIAL PRIMARY KEY,
    run_id       BIGINT  NOT NULL,
    zone         TEXT    NOT NULL CHECK (zone IN ('deid', 'secure')),
    dataset      TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    sha256       TEXT    NOT NULL,
    rows         BIGINT  NOT NULL,
    columns      TEXT    NOT NULL,
    key_id       TEXT    NOT NULL,
    persons      BYTEA   NOT NULL,
    person_count BIGINT  NOT NULL,
    written_at   TIMESTAMPTZ NOT NULL,
    purged_at    TIMESTAMPTZ,
    UNIQUE (run_id, zone, path)
);
CREATE INDEX lineage_files_sha256 ON lineage_files (sha256);
CREATE INDEX lineage_files_run ON lineage_files (run_id);
CREATE INDEX lineage_files_written_at ON lineage_files (written_at);
CREATE INDEX lineage_files_dataset ON lineage_files (dataset, written_at);
