-- 0007_counters.sql - named counters that outlive a restart, each for one
-- period that its owner names (the gateway keeps each server's quota count
-- of the current UTC day or month here, as "quota:<server>" with the
-- period yyyymmdd or yyyymm).
--
-- One row per counter, holding the count of one period only: a write for a
-- new period replaces the old one, so nothing accumulates. What a count
-- means, and when a period ends, the owner decides; the store only keeps
-- the number. BIGINT: quotas go up to 10^12 (PostgreSQL's INTEGER is 32-bit).
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    period BIGINT NOT NULL,
    value BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
