-- Foundation tables. Kept in lockstep with migrations/postgres/0001_workspace.sql:
-- a test compares the tables and columns both produce.

-- One row: the key this store's tokens were made with. Tokens made under another key
-- never match, so every command checks the key file against this row.
CREATE TABLE workspace (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    key_id           TEXT    NOT NULL,
    rule_set_version INTEGER NOT NULL,
    created_at       TEXT    NOT NULL
);

-- Every use of identifying output (and later, breach queries, purges, un-suppressed
-- reports) is written here. Never purged.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT    NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    reason  TEXT,
    detail  TEXT    NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
