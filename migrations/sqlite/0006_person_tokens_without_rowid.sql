-- The registry's tokens are its bulk: about six rows per person, six million at a million
-- participants. As a rowid table with a separate primary-key index every row was stored
-- twice; WITHOUT ROWID keeps one B-tree ordered by (rule, token, person_id). That halves
-- what a first run writes and what every run reads. A new store is about half the size; a
-- migrated one keeps the old table's pages as free pages for reuse (`VACUUM` returns them).
-- At a million persons the copy takes about 20 s, once.
-- SQLite only: PostgreSQL's heap plus primary-key index has no such duplication to remove,
-- and the tables and columns (what the lockstep test compares) are unchanged.
CREATE TABLE person_tokens_clustered (
    rule      INTEGER NOT NULL,
    token     BLOB    NOT NULL,
    person_id INTEGER NOT NULL REFERENCES persons (id),
    first_run INTEGER NOT NULL,
    PRIMARY KEY (rule, token, person_id)
) WITHOUT ROWID;

INSERT INTO person_tokens_clustered (rule, token, person_id, first_run)
    SELECT rule, token, person_id, first_run FROM person_tokens ORDER BY rule, token, person_id;

DROP TABLE person_tokens;

ALTER TABLE person_tokens_clustered RENAME TO person_tokens;
