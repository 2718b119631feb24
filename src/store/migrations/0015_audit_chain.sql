-- 0015_audit_chain.sql - the audit log becomes tamper-evident: each row
-- carries a hash chained to the previous row's (issue 16).
--
-- hash = BLAKE2b-256 over a length-prefixed encoding of prev_hash, id,
-- actor, action, resource, diff and created_at (src/store/audit.c says
-- exactly how); both are lower-case hex text, prev_hash of the first row
-- is 64 zeros. audit_head is one row: the id and hash of the last row
-- appended. An append updates it first, which takes the row's write lock
-- (PostgreSQL) or the database's (SQLite, BEGIN IMMEDIATE) until the
-- append commits, so two appenders never take the same previous hash;
-- it also lets a verification see rows cut off at the end.
--
-- Rows written before this migration have no hash yet: opening the store
-- seals them (aos__store_audit_seal, once, in id order), because SQL has
-- no BLAKE2b. last_hash NULL means "not sealed yet"; last_id already
-- counts them, so new rows follow them.
--
-- Portable (SQLite and PostgreSQL): ADD COLUMN of nullable TEXT columns,
-- a plain table, INSERT ... SELECT.
ALTER TABLE audit_logs ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_logs ADD COLUMN hash TEXT;

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_id BIGINT NOT NULL,
    last_hash TEXT
);
INSERT INTO audit_head (id, last_id, last_hash)
SELECT 1, COALESCE(MAX(id), 0), NULL FROM audit_logs;

CREATE INDEX audit_logs_actor_idx ON audit_logs (actor, id);
