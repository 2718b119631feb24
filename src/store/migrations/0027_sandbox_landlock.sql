-- 0027_sandbox_landlock.sql - a sandbox run records which Landlock ABI the
-- helper aos-exec applied inside bubblewrap (issue 15): N >= 1, 0 when the
-- kernel has no Landlock, NULL when the run never got that far (it did not
-- start, or ran before this column).
--
-- Portable (SQLite and PostgreSQL): ADD COLUMN of a nullable INTEGER column.
ALTER TABLE sandbox_runs ADD COLUMN landlock_abi INTEGER;
