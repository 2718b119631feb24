-- 0019_sandbox.sql - sandbox scripts' files and caps, and their runs
-- (issue 15, docs/SANDBOX.md).
--
-- Portable (SQLite and PostgreSQL): ADD COLUMN of nullable TEXT columns,
-- and a table of TEXT and BIGINT columns. files: JSON {path: content};
-- caps: JSON {network, timeout_ms, cpu_s, memory_mb, ...}; env (0001):
-- JSON {NAME: sealed value}, never plain text.
ALTER TABLE sandbox_scripts ADD COLUMN files TEXT;
ALTER TABLE sandbox_scripts ADD COLUMN caps TEXT;
ALTER TABLE sandbox_scripts ADD COLUMN created_by TEXT;

-- One run of a script (script_id) or of the shell tool (script_id NULL).
-- status: running | succeeded | failed | killed | canceled | error;
-- exit_code or signal (one of them, once finished); reason: why aosd or a
-- limit ended it (timeout, cpu, file_size, canceled, ...); usage: JSON of
-- the wait4 resource use; stdout/stderr: the first bytes of each stream
-- (the log service has every line under trace_id).
CREATE TABLE sandbox_runs (
    id TEXT PRIMARY KEY,
    script_id TEXT,
    trace_id TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code BIGINT,
    signal BIGINT,
    reason TEXT,
    duration_ms BIGINT,
    usage TEXT,
    stdout TEXT,
    stderr TEXT,
    truncated BIGINT,
    error TEXT,
    actor TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX sandbox_runs_script_idx ON sandbox_runs (script_id, started_at);

-- Agents (issue 15): every configuration is a version; agents.version is
-- the live one (text, as 0001 has it), agents.config the newest.
CREATE TABLE agent_versions (
    agent_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    config TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, version)
);
