-- 0009_orch.sql - the orchestrator's tables (docs/ORCHESTRATOR.md, "Data").
--
-- A task is a job (SPEC §9 jobs, one per trace) and a trace row; what it
-- runs is task_state.plan, and what each step did is task_steps: one row per
-- attempt of a step, holding that step's own input and output only, so the
-- storage of a run grows with what changed, never with a snapshot of the
-- whole task per step. task_state holds the few values that move with the
-- run (the next step, decisions, cost) and is rewritten in the transaction
-- that moves them. Timestamps are ISO-8601 UTC text written by aosd.
ALTER TABLE jobs ADD COLUMN project_id TEXT;
ALTER TABLE jobs ADD COLUMN created_at TEXT;
CREATE INDEX jobs_trace_id_idx ON jobs (trace_id);

CREATE TABLE task_state (
    trace_id TEXT PRIMARY KEY,
    plan TEXT,                      -- the normalized plan, once planned
    cursor INTEGER NOT NULL DEFAULT 0,
    vars TEXT NOT NULL,             -- {"decisions":{..}, "downgraded":bool, "cost_cny":n, ...}
    status TEXT NOT NULL,
    rerun_of TEXT,                  -- the trace this one re-runs, from its step from_step
    from_step TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX task_state_rerun_idx ON task_state (rerun_of);

CREATE TABLE task_steps (
    trace_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    seq INTEGER NOT NULL,           -- order of the attempts within the task
    kind TEXT NOT NULL CHECK (kind IN ('plan', 'tool', 'approval', 'milestone')),
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'skipped', 'reused')),
    input TEXT,
    output TEXT,
    error TEXT,
    idempotency_key TEXT,
    cost_cny NUMERIC(18, 6),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    PRIMARY KEY (trace_id, step_id, attempt)
);
CREATE INDEX task_steps_seq_idx ON task_steps (trace_id, seq);

CREATE TABLE approvals (
    trace_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'decided', 'cancelled')),
    message TEXT,
    decisions TEXT NOT NULL,        -- the decisions allowed, a JSON array
    decision TEXT,
    comment TEXT,
    actor TEXT,
    deadline TEXT,
    created_at TEXT NOT NULL,
    decided_at TEXT,
    PRIMARY KEY (trace_id, step_id)
);
CREATE INDEX approvals_status_idx ON approvals (status, deadline);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    title TEXT,
    actor TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX conversations_updated_idx ON conversations (updated_at);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content TEXT NOT NULL,
    dsl TEXT,
    trace_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id);
