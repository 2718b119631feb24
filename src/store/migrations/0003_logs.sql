-- 0003_logs.sql - the log service (SPEC §6): one row per log entry, and a
-- full-text index on its message.
--
-- Conventions as in 0001_init.sql: ts and created_at are ISO-8601 UTC text
-- with milliseconds ("2025-01-31T12:00:00.000Z"), so text order is time
-- order; attributes is compact JSON (an object) or NULL. level is a number
-- so that "at least warn" is a range: 0 trace, 1 debug, 2 info, 3 warn,
-- 4 error, 5 fatal. ids only grow (AUTOINCREMENT never reuses the id of a
-- deleted row), so an id is a stable cursor for pagination and for resuming
-- a stream, also after retention deleted everything older.
CREATE TABLE logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 5),
    message TEXT NOT NULL,
    topic TEXT,
    attributes TEXT,
    trace_id TEXT,
    span_id TEXT,
    source TEXT,
    created_at TEXT NOT NULL
);
-- Queries page newest-first by id inside one trace or topic.
CREATE INDEX logs_trace_id_idx ON logs (trace_id, id);
CREATE INDEX logs_topic_idx ON logs (topic, id);
CREATE INDEX logs_level_ts_idx ON logs (level, ts);

-- Full text of message: an FTS5 table over the logs table (external
-- content: the text is stored once, in logs). The store keeps it in step in
-- the transaction that changes logs (src/store/logs.c): one
-- INSERT ... SELECT per inserted batch, one 'delete' ... SELECT before
-- retention deletes. Not with triggers: FTS5 flushes its pending terms at
-- every statement savepoint, and a trigger opens one per row, which made
-- ingest five times slower.
--
-- The 'ascii' tokenizer (ASCII letters and digits, and every non-ASCII
-- byte, are token characters; ASCII case folded) is the one src/logs
-- matches live stream entries with, so a stream and a query agree on what
-- "q" finds.
--
-- SQLite only. The PostgreSQL backend replaces this statement with
--   ALTER TABLE logs ADD COLUMN message_tsv tsvector
--       GENERATED ALWAYS AS (to_tsvector('simple', message)) STORED;
--   CREATE INDEX logs_message_tsv_idx ON logs USING GIN (message_tsv);
-- (a generated column needs no upkeep) and the query "logs_fts MATCH ?"
-- with "message_tsv @@ to_tsquery('simple', ?)" (words joined with &,
-- phrases with <->, prefixes as word:*).
CREATE VIRTUAL TABLE logs_fts USING fts5 (
    message,
    content = 'logs',
    content_rowid = 'id',
    tokenize = 'ascii'
);
