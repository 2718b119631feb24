-- 0023_sandbox_cron.sql - a sandbox script may run on a cron expression
-- (issue 15) instead of every schedule_ms: the expression as given, parsed
-- by src/cron when the script is saved and when aosd starts. At most one
-- of schedule_ms and schedule_cron is set.
--
-- Portable (SQLite and PostgreSQL): ADD COLUMN of a nullable TEXT column.
ALTER TABLE sandbox_scripts ADD COLUMN schedule_cron TEXT;
