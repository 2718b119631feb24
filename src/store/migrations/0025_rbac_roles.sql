-- 0025_rbac_roles.sql - custom roles (issue 16): a named set of grants,
-- each a built-in role on a resource pattern, that a principal is granted
-- as one (rbac_grants.role holds the custom role's name).
--
-- Portable (SQLite and PostgreSQL): TEXT columns only. grants is the JSON
-- text of [{role, resource}] as src/auth checked it; timestamps are
-- ISO-8601 UTC text written by aosd. The index on rbac_grants (role) finds
-- the grants of a role that is to be deleted.
CREATE TABLE rbac_roles (
    name TEXT PRIMARY KEY,
    description TEXT,
    grants TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX rbac_grants_role_idx ON rbac_grants (role);
