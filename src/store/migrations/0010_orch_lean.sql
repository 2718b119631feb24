-- 0010_orch_lean.sql - fewer pages written per move of a task (issue 13,
-- bench/orchestrator): every index entry a transition writes is a page of
-- the WAL, and every byte of a rewritten row is written again.
--
-- jobs_trace_id_idx is the index jobs' UNIQUE (trace_id) already has;
-- task_steps_seq_idx is not needed to read a task's rows (the primary key
-- starts with trace_id; a task's few rows are sorted as read). The plan,
-- which can be large (up to 1,000 steps), moves out of task_state into
-- task_plans, written once at acceptance: task_state is rewritten at every
-- move and now holds only the little that moves.
DROP INDEX IF EXISTS jobs_trace_id_idx;
DROP INDEX IF EXISTS task_steps_seq_idx;
CREATE TABLE task_plans (
    trace_id TEXT PRIMARY KEY,
    plan TEXT NOT NULL
);
INSERT INTO task_plans (trace_id, plan)
    SELECT trace_id, plan FROM task_state WHERE plan IS NOT NULL;
UPDATE task_state SET plan = NULL WHERE plan IS NOT NULL;
