-- 0022_spans_start.sql - spans by start time, for the Monitor's views:
-- GET /api/traces (search, newest first) and GET /api/topology read the
-- spans that started in a window through this index, a bounded range scan
-- instead of a pass over the whole table (src/store/spans.c,
-- aos_store_spans_window).
CREATE INDEX spans_start_idx ON spans (start_time_unix_nano, id);
