-- 0024_audit_anchor.sql - audit retention (issue 16): the oldest rows of
-- the chain may be deleted; audit_head then keeps the id and hash of the
-- last row deleted (the anchor), and verification starts from it instead
-- of the zero hash. 0 / NULL: nothing was ever deleted.
--
-- Portable (SQLite and PostgreSQL): ADD COLUMN with a constant default.
ALTER TABLE audit_head ADD COLUMN anchor_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN anchor_hash TEXT;
