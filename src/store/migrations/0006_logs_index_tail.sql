-- 0006_logs_index_tail.sql - the log indexes trail the newest entries.
--
-- Counted on the plain-SQLite insert of bench/logs' rows at batch 100: a
-- commit of 100 entries wrote ~64 WAL pages for ~11 pages of entries. The
-- rest were the indexes, each touched in many places per commit: FTS5
-- writes a new segment per commit and merges segments (it cost 35-40 % of
-- the insert rate, most at small batches), the trace groups land at random
-- places of their B-tree, the topic groups at one place per topic.
--
-- The full-text index, logs_traces and logs_topics now take the oldest
-- unindexed entries in fills of their own, between inserts (when and how
-- many: src/logs/logs.c and aos_store_logs_index in src/store/logs.c):
-- one FTS5 insert per step and one group per trace and per topic for the
-- whole fill. indexed_upto records the last id they hold, in the fill's
-- transaction. A query reads an index
-- for the ids up to indexed_upto and checks the few entries above it row
-- by row (trace_id, topic, or the words of the text with aos_logs_phrase,
-- the live stream's matcher, which agrees with FTS5's 'ascii' tokenizer -
-- unit tested), so every committed entry is found as before. Groups of one
-- trace or topic still never overlap: each covers one indexing window.
-- Retention deletes from the full-text index only what it holds.
CREATE TABLE logs_index_state (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    indexed_upto INTEGER NOT NULL
);
INSERT INTO logs_index_state (one, indexed_upto)
    VALUES (1, COALESCE((SELECT MAX(id) FROM logs), 0));
