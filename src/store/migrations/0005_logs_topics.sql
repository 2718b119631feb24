-- 0005_logs_topics.sql - the topic index by groups, as 0004 did for traces.
--
-- Measured with bench/logs' rows (20 topics): every commit added entries
-- to the hot leaf page of each topic in the (topic, id) index, so a commit
-- of 100 entries rewrote ~20 index pages beside ~11 pages of entries - the
-- index was 57 % of the WAL writes at batch 100, and dropping it made the
-- plain-SQLite insert 25-80 % faster.
--
-- logs_topics: one row per topic per inserted batch, with the ids of that
-- topic's entries in the batch as a JSON array; the groups of one topic
-- never overlap (a batch's ids follow the previous batch's). A query by
-- topic walks the topic's groups newest first (src/store/logs.c), a chunk
-- at a time, and looks the ids up by primary key until the page is full.
-- last_id lets retention drop the groups of deleted entries. Existing
-- entries are grouped by runs of 1,000 ids.
DROP INDEX logs_topic_idx;

CREATE TABLE logs_topics (
    topic TEXT NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    ids TEXT NOT NULL,
    PRIMARY KEY (topic, first_id)
) WITHOUT ROWID;
CREATE INDEX logs_topics_last_id_idx ON logs_topics (last_id);

INSERT INTO logs_topics (topic, first_id, last_id, ids)
    SELECT topic, MIN(id), MAX(id), json_group_array(id)
    FROM logs WHERE topic IS NOT NULL GROUP BY topic, id / 1000;
