-- 0018_memory.sql - memory items (issue 17, SPEC §2 Memory page R3): what a
-- user, a task or an agent chose to remember, with tags, under a project.
--
-- Conventions as in 0001_init.sql: times are ISO-8601 UTC text with
-- milliseconds; tags and meta are compact JSON (an array of strings, sorted
-- and unique; an object or NULL). source is the principal that wrote the
-- item ("token:<id>", "task:<trace_id>", "anonymous"). A soft delete sets
-- deleted_at; a restore clears it; nothing else ever removes a row.
-- version counts the writes of an item (1 on create).
CREATE TABLE mem_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    subject TEXT,
    text TEXT NOT NULL,
    tags TEXT NOT NULL,
    meta TEXT,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX mem_items_project_idx ON mem_items (project_id, id);

-- One row per tag of an item, so that a tag filter is an index lookup.
CREATE TABLE mem_tags (
    item_id INTEGER NOT NULL REFERENCES mem_items (id),
    tag TEXT NOT NULL,
    PRIMARY KEY (tag, item_id)
);
CREATE INDEX mem_tags_item_idx ON mem_tags (item_id);

-- An item's vector is its mem_embeddings row (0001_init.sql), under the
-- item's id as text, with meta {"model": ...}.

-- Keyword search: the item's terms (src/memory: lowercase words and CJK
-- character bigrams, joined by spaces) in an FTS5 table whose rowid is the
-- item's id, written in the transaction that writes the item. The 'ascii'
-- tokenizer splits at the spaces only (every byte of a term is a token
-- character), so FTS5 indexes exactly the terms src/memory made.
--
-- SQLite only. The PostgreSQL backend replaces this statement with
--   ALTER TABLE mem_items ADD COLUMN terms tsvector;
--   CREATE INDEX mem_items_terms_idx ON mem_items USING GIN (terms);
-- written as to_tsvector('simple', <terms>) by the same statements, and the
-- query "mem_fts MATCH ?" with "terms @@ to_tsquery('simple', ?)" (terms
-- joined with |) ranked by ts_rank instead of bm25.
CREATE VIRTUAL TABLE mem_fts USING fts5 (terms, tokenize = 'ascii');

-- R1: a principal's profile and preferences (language, task defaults,
-- notification choices), one JSON object per principal ("token:<id>"; a
-- user's id once users exist). version counts its writes.
CREATE TABLE mem_profiles (
    principal TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);

-- R2: blueprints - reusable TaskSpec templates of a project with
-- parameters, versioned. mem_blueprints is the head (the current version);
-- each version is a row of mem_blueprint_versions with the whole template
-- and its diff against the version before (a JSON array of
-- {op: add|remove|replace, path, from, to}; NULL for version 1).
CREATE TABLE mem_blueprints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE TABLE mem_blueprint_versions (
    blueprint_id INTEGER NOT NULL REFERENCES mem_blueprints (id),
    version INTEGER NOT NULL,
    description TEXT,
    spec TEXT NOT NULL,
    params TEXT NOT NULL,
    diff TEXT,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (blueprint_id, version)
);
