-- Lineage: every file a run wrote, in either zone. Lockstep with
-- migrations/postgres/0003_lineage.sql.
--
-- `columns` is a JSON array of {name, pii, sensitive}; `persons` is the encoded set of
-- internal person ids (lake::PersonSet), kept so breach questions can be answered after
-- the file itself is gone (`purged_at` says when it went).
CREATE TABLE lineage_files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       INTEGER NOT NULL,
    zone         TEXT    NOT NULL CHECK (zone IN ('deid', 'secure')),
    dataset      TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    sha256       TEXT    NOT NULL,
    rows         INTEGER NOT NULL,
    columns      TEXT    NOT NULL,
    key_id       TEXT    NOT NULL,
    persons      BLOB    NOT NULL,
    person_count INTEGER NOT NULL,
    written_at   TEXT    NOT NULL,
    purged_at    TEXT,
    UNIQUE (run_id, zone, path)
);
CREATE INDEX lineage_files_sha256 ON lineage_files (sha256);
CREATE INDEX lineage_files_run ON lineage_files (run_id);
CREATE INDEX lineage_files_written_at ON lineage_files (written_at);
CREATE INDEX lineage_files_dataset ON lineage_files (dataset, written_at);
