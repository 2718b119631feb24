-- 0026_metric_history.sql - the built-in metric history (issue 18) across
-- restarts: src/monitor writes each ring of each series as chunks of 60
-- slots, and reads them back at start.
--
-- series  the series' identity as src/monitor spells it (JSON text: its
--         index key, name, kind and labels); opaque here
-- ring    0: 1 s slots, 1: 1 min, 2: 1 h
-- chunk   the slot number (seconds since the epoch / the ring's step)
--         divided by 60
-- slots   60 IEEE-754 binary32 values, little-endian, NaN for a slot
--         nobody wrote (240 bytes)
--
-- Portable (SQLite and PostgreSQL; BLOB is translated to BYTEA). The
-- primary key serves the upsert of a chunk and the deletion of the chunks
-- a ring has left behind (ring, chunk below its oldest), which is why ring
-- and chunk lead an index of their own.
CREATE TABLE metric_history (
    series TEXT NOT NULL,
    ring INTEGER NOT NULL,
    chunk BIGINT NOT NULL,
    slots BLOB NOT NULL,
    PRIMARY KEY (series, ring, chunk)
);
CREATE INDEX metric_history_ring_idx ON metric_history (ring, chunk);
