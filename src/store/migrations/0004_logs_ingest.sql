-- 0004_logs_ingest.sql - cheaper log ingest: the trace index by groups, and
-- a full-text index without per-row sizes.
--
-- Measured on the log benchmark's rows (bench/logs): of a plain insert's
-- 300,000 rows/s, the per-entry (trace_id, id) index alone took it to
-- 120,000 - one random B-tree insert per entry - and FTS5 with positions and
-- per-row sizes another 10-20 %.
--
-- logs_traces: one row per trace per inserted batch, with the ids of that
-- trace's entries in the batch as a JSON array (src/store/logs.c groups
-- them). A batch of 1,000 entries from 50 traces writes 50 rows instead of
-- 1,000 index entries, whatever their order in the batch; a batch where
-- every entry has its own trace costs what the index did. A query by trace
-- reads the groups of that trace and looks the ids up by primary key.
-- last_id lets retention drop the groups of deleted entries.
--
-- logs_fts: columnsize=0 drops the per-row token counts (a second B-tree
-- row per entry), which only ranking reads; results are ordered by id.
-- Positions stay (detail=full): a query word such as user_id=42 is the
-- phrase "user id 42".
--
-- PostgreSQL: logs_traces with ids as bigint[]; the tsvector of 0003 stays.
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

DROP TABLE logs_fts;
CREATE VIRTUAL TABLE logs_fts USING fts5 (
    message,
    content = 'logs',
    content_rowid = 'id',
    tokenize = 'ascii',
    columnsize = 0
);
INSERT INTO logs_fts (logs_fts) VALUES ('rebuild');
