-- 0029_mem_embed_model.sql - the model of a memory item's vector as a
-- column of mem_embeddings (issue 17, embeddings from an OpenAI-compatible
-- endpoint): the memory service loads only the configured model's vectors
-- and re-embeds, in the background, the live items whose vector is of
-- another model (or missing), so it looks rows up by model. The model was
-- in meta ({"model": ...}) since 0018; meta keeps it.
--
-- Portable (SQLite and PostgreSQL): ADD COLUMN of a nullable TEXT column;
-- the backfill reads meta with json_extract (PostgreSQL: meta::json->>'model').
ALTER TABLE mem_embeddings ADD COLUMN model TEXT;
UPDATE mem_embeddings SET model = json_extract(meta, '$.model') WHERE meta IS NOT NULL;
CREATE INDEX mem_embeddings_model_idx ON mem_embeddings (model, id);
