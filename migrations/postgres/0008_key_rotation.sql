-- Key rotation (xmatch key rotate / retire). Lockstep with
-- migrations/sqlite/0008_key_rotation.sql, which says why each part is there.
ALTER TABLE workspace ADD COLUMN next_key_id TEXT;

CREATE TABLE link_review_rekeys (
    source  TEXT  NOT NULL,
    old_key BYTEA NOT NULL,
    new_key BYTEA NOT NULL,
    PRIMARY KEY (source, old_key)
);

CREATE TABLE lineage_reseals (
    lineage_id  BIGINT NOT NULL REFERENCES lineage_files (id),
    sha256      TEXT   NOT NULL,
    key_id      TEXT   NOT NULL,
    resealed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (lineage_id, sha256)
);
CREATE INDEX lineage_reseals_sha256 ON lineage_reseals (sha256);
