-- Key rotation (xmatch key rotate / retire). Lockstep with
-- migrations/postgres/0008_key_rotation.sql.
--
-- `next_key_id`: the key a rotation in progress moves to (NULL otherwise). While it is
-- set, runs tokenize participants under both keys and store the new key's tokens in
-- `person_tokens` under their rule number + 1000, so the registry holds both sets and
-- `retire` swaps them in one transaction.
ALTER TABLE workspace ADD COLUMN next_key_id TEXT;

-- A review decision is keyed by the agency record's token under the key in force. During
-- a rotation, runs record the same record's token under the new key here; `retire`
-- re-keys `link_reviews` with it, so decisions survive the rotation.
CREATE TABLE link_review_rekeys (
    source  TEXT NOT NULL,
    old_key BLOB NOT NULL,
    new_key BLOB NOT NULL,
    PRIMARY KEY (source, old_key)
);

-- A secure-zone file sealed again under a new key (at `retire`) has new bytes: their
-- SHA-256 is kept beside the file's lineage row, so `breach --sha256` / `--file` finds
-- either version.
CREATE TABLE lineage_reseals (
    lineage_id  INTEGER NOT NULL REFERENCES lineage_files (id),
    sha256      TEXT    NOT NULL,
    key_id      TEXT    NOT NULL,
    resealed_at TEXT    NOT NULL,
    PRIMARY KEY (lineage_id, sha256)
);
CREATE INDEX lineage_reseals_sha256 ON lineage_reseals (sha256);
