-- 0002_events.sql - the outbox of the event bus (src/bus): what value events
-- need on top of the events table of 0001, the state of each card, and the
-- fold buffer of the 1-second aggregation window.
--
-- A value event (SPEC §3) belongs to a card: card_id names the card the Chat
-- Hub shows, card_version counts its updates. Events that are not value
-- events have no card (card_id NULL), which is how queries for value events
-- tell them apart. Times in *_ms columns are milliseconds since the epoch
-- (UTC), written by aosd.

ALTER TABLE events ADD COLUMN card_id TEXT;
ALTER TABLE events ADD COLUMN card_version INTEGER;
ALTER TABLE events ADD COLUMN project_id TEXT;
-- Value events alone, by id: the stream and its history skip step events.
CREATE INDEX events_value_idx ON events (id) WHERE card_id IS NOT NULL;
CREATE INDEX events_project_idx ON events (project_id, id);

-- One row per card: its latest version and when that version was written,
-- which opens the card's aggregation window.
CREATE TABLE event_cards (
    card_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    last_ms BIGINT NOT NULL
);

-- The newest event of a card whose window is still open: it replaces the
-- previous one (the burst is folded) and is written to events, as the next
-- version of the card, when the window ends (due_ms). Written in the same
-- transaction as the state change that produced it, like any event.
CREATE TABLE event_folds (
    card_id TEXT PRIMARY KEY,
    due_ms BIGINT NOT NULL,
    trace_id TEXT,
    topic TEXT,
    type TEXT NOT NULL,
    severity TEXT,
    payload TEXT NOT NULL,
    project_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX event_folds_due_idx ON event_folds (due_ms);
CREATE INDEX event_folds_trace_idx ON event_folds (trace_id);
