-- 0004_logs_ingest.sql - cheaper log ingest: the trace index by groups, a
-- time index by batches, and a full-text index of terms only.
--
-- Measured on the log benchmark's rows (bench/logs): of a plain insert's
-- 300,000 rows/s, the per-entry (trace_id, id) index alone took it to
-- 120,000 - one random B-tree insert per entry; the (level, ts) index cost
-- about 0.8 us per entry and FTS5 with positions and per-row sizes another
-- 15-25 %.
--
-- logs_traces: one row per trace per inserted batch, with the ids of that
-- trace's entries in the batch as a JSON array (src/store/logs.c groups
-- them). A batch of 1,000 entries from 50 traces writes 50 rows instead of
-- 1,000 index entries, whatever their order in the batch; a batch where
-- every entry has its own trace costs what the index did. A query by trace
-- reads the groups of that trace and looks the ids up by primary key.
-- last_id lets retention drop the groups of deleted entries.
--
-- logs_batches: one row per inserted batch with its first and last id and
-- its smallest and largest ts (the idea of PostgreSQL's BRIN indexes). A
-- time range becomes a range of ids - from the first batch that may end
-- after it to the last that may start before it - and only those ids are
-- read; the rows' own ts are then compared. Entries mostly arrive in time
-- order, which keeps the range tight; an old entry in a new batch widens
-- its batch, never loses a row. Replaces the (level, ts) index: a level is
-- a filter on the rows read.
--
-- logs_fts: detail=none keeps only which rows hold a term (no columns, no
-- positions), columnsize=0 drops the per-row token counts (a second B-tree
-- row per entry, only read by ranking; results are ordered by id). A query
-- word of several tokens, such as user_id=42, asks the index for all of
-- them and the statement checks their order on the rows found
-- (aos_logs_phrase, a function the SQLite backend registers; PostgreSQL's
-- tsquery has the <-> operator for it).
--
-- PostgreSQL: logs_traces with ids as bigint[], logs_batches as is (or a
-- BRIN index on ts); the tsvector of 0003 stays.
DROP INDEX logs_trace_id_idx;

CREATE TABLE logs_traces (
    trace_id TEXT NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    ids TEXT NOT NULL,
    PRIMARY KEY (trace_id, first_id)
) WITHOUT ROWID;
CREATE INDEX logs_traces_last_id_idx ON logs_traces (last_id);

INSERT INTO logs_traces (trace_id, first_id, last_id, ids)
    SELECT trace_id, MIN(id), MAX(id), json_group_array(id)
    FROM logs WHERE trace_id IS NOT NULL GROUP BY trace_id;

DROP INDEX logs_level_ts_idx;
CREATE TABLE logs_batches (
    first_id INTEGER PRIMARY KEY,
    last_id INTEGER NOT NULL,
    min_ts TEXT NOT NULL,
    max_ts TEXT NOT NULL
);
CREATE INDEX logs_batches_max_ts_idx ON logs_batches (max_ts);
CREATE INDEX logs_batches_min_ts_idx ON logs_batches (min_ts);
INSERT INTO logs_batches (first_id, last_id, min_ts, max_ts)
    SELECT MIN(id), MAX(id), MIN(ts), MAX(ts) FROM logs GROUP BY id / 1000;

DROP TABLE logs_fts;
CREATE VIRTUAL TABLE logs_fts USING fts5 (
    message,
    content = 'logs',
    content_rowid = 'id',
    tokenize = 'ascii',
    detail = none,
    columnsize = 0
);
INSERT INTO logs_fts (logs_fts) VALUES ('rebuild');
