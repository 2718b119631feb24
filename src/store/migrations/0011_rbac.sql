-- 0011_rbac.sql - API tokens that can be created, expire and be revoked,
-- and grants: a principal's role on a resource pattern (issue 16).
--
-- Portable (SQLite and PostgreSQL): ADD COLUMN of a nullable TEXT column.
-- expires_at and revoked_at are ISO-8601 UTC text like every timestamp;
-- prefix is the first characters of the token, to recognise it in a list.
ALTER TABLE api_tokens ADD COLUMN prefix TEXT;
ALTER TABLE api_tokens ADD COLUMN created_by TEXT;
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT;

-- principal: "token:<id>" (agents and users later); resource: "system" or
-- "<kind>:<name>[*]" as src/auth checks it.
CREATE TABLE rbac_grants (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    role TEXT NOT NULL,
    resource TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX rbac_grants_principal_idx ON rbac_grants (principal);
