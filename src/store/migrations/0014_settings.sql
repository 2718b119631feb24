-- 0014_settings.sql - runtime secrets and changes waiting for a second
-- person (issue 16). System settings live in the settings table of 0001
-- (key 'system'); project variables in project_vars of 0001.
--
-- Portable (SQLite and PostgreSQL). sealed is src/secret's "v2:" text,
-- bound to the row's name and scope (a pending change's to its id, name
-- and scope), so that a value copied into another row does not open.
-- Timestamps are ISO-8601 UTC text written by aosd.
CREATE TABLE runtime_secrets (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    purpose TEXT,
    sealed TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    last_rotated TEXT NOT NULL
);

-- op: 'put' or 'delete'; sealed is NULL for a delete.
CREATE TABLE secret_changes (
    id TEXT PRIMARY KEY,
    op TEXT NOT NULL,
    name TEXT NOT NULL,
    scope TEXT,
    purpose TEXT,
    sealed TEXT,
    requested_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
