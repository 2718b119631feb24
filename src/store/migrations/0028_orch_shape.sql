-- 0028_orch_shape.sql - fewer index entries per event (issue 13,
-- bench/orchestrator): a task's run appends several events, and every
-- index entry of an event is one more B-tree insert, and a page of the WAL
-- at its commit.
--
-- events_topic_idx (topic, id) serves no query: events are read by id, by
-- trace (events_trace_id_idx), by project (events_project_idx) and as value
-- events (events_value_idx). events_project_idx keeps only the events that
-- have a project: a read by project (project_id = ?) names one, and most
-- events (every task without a project, the gateway's) have none.
DROP INDEX IF EXISTS events_topic_idx;
DROP INDEX IF EXISTS events_project_idx;
CREATE INDEX events_project_idx ON events (project_id, id) WHERE project_id IS NOT NULL;
