-- 0030_orch_checks.sql - cheaper writes of a task's rows (issue 13,
-- bench/orchestrator).
--
-- task_steps is written about five times per task (its plan row and one row
-- per attempt of a step), and its CHECK constraints were `kind IN (4
-- values)` and `status IN (5 values)`. SQLite codes a constant IN list of
-- more than two values as a temporary B-tree it builds each time the
-- statement runs: two per insert of a row and a third when the upsert
-- updates one - about two thirds of the instructions of a row's upsert on
-- the store's worker. The same sets written as OR chains are a few
-- comparisons. A CHECK constraint cannot be changed in place in SQLite, so
-- the table is made again (the SQLite procedure: new table, copy, drop,
-- rename; the same statements on PostgreSQL), with the same columns,
-- primary key and allowed values.
--
-- task_state_rerun_idx had an entry for every task, though only a re-run
-- has rerun_of (NULL in all others), and no statement reads task_state by
-- rerun_of: it keeps only the re-runs now, which a read by rerun_of
-- (rerun_of = ?, so NOT NULL) can still use.
CREATE TABLE task_steps_0030 (
    trace_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    seq INTEGER NOT NULL,           -- order of the attempts within the task
    kind TEXT NOT NULL CHECK (kind = 'plan' OR kind = 'tool' OR kind = 'approval'
                              OR kind = 'milestone'),
    status TEXT NOT NULL CHECK (status = 'running' OR status = 'done' OR status = 'failed'
                                OR status = 'skipped' OR status = 'reused'),
    input TEXT,
    output TEXT,
    error TEXT,
    idempotency_key TEXT,
    cost_cny NUMERIC(18, 6),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    PRIMARY KEY (trace_id, step_id, attempt)
);
INSERT INTO task_steps_0030 (trace_id, step_id, attempt, seq, kind, status, input, output,
                             error, idempotency_key, cost_cny, started_at, finished_at)
    SELECT trace_id, step_id, attempt, seq, kind, status, input, output, error,
           idempotency_key, cost_cny, started_at, finished_at FROM task_steps;
DROP TABLE task_steps;
ALTER TABLE task_steps_0030 RENAME TO task_steps;

DROP INDEX IF EXISTS task_state_rerun_idx;
CREATE INDEX task_state_rerun_idx ON task_state (rerun_of) WHERE rerun_of IS NOT NULL;
