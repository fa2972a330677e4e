-- Faster catalog writes (the catalog issue's ingest goal): fewer rows and
-- index entries per entity, and the search index and the per-kind value
-- counts kept by the store once per batch instead of by triggers once per
-- row.
--
-- The triggers of migration 0003 cost four fifths of an entity's write:
-- the search row re-parsed the stored JSON body ten times (json_extract
-- per field), and the counts ran five to ten single-row upserts per entity
-- and tag. The store now writes, in the same transaction as the entities
-- (host/store/src/entities.rs, `sqlite_bulk`):
--
-- - entities_fts: one row per written entity, from the text it already
--   has in hand (the same columns and text the trigger made), and the old
--   row removed first when an entity is replaced or deleted;
-- - entity_value_counts: the old values of replaced and deleted entities
--   subtracted with one grouped statement, the new ones added with one
--   upsert per distinct (field, kind, value) of the batch.
--
-- Every write of the catalog goes through that code, so the two stay
-- exact; the suite in host/store/tests/query.rs checks facets and totals
-- against the entities through updates, deletes and a source's orphans.
-- The rows already there are right as they are: nothing to convert.
DROP TRIGGER entities_fts_insert;
DROP TRIGGER entities_fts_update;
DROP TRIGGER entities_fts_delete;
DROP TRIGGER entities_counts_insert;
DROP TRIGGER entities_counts_delete;
DROP TRIGGER entities_counts_update;
DROP TRIGGER entity_tags_counts_insert;
DROP TRIGGER entity_tags_counts_delete;

-- Relations, one row per relation an entity declares instead of two (one
-- per direction), and tags without a separate rowid: the two tables held
-- most of the rows and index entries a write made. An entity with an owner,
-- a system and three dependencies wrote ten relation rows into four
-- B-trees each; now it writes five rows into two.
--
-- entity_relations_declared: the entity origin_ref declares `type` towards
-- target_key (target_ref as written, the way Backstage writes references),
-- and so the target is related back to it as reverse_type; source_ref is
-- the declaring entity's own reference as Backstage writes it, the target
-- of that reverse relation. entity_relations, the name every reader uses,
-- becomes a view with the same columns as the table it replaces: each
-- declared row read in both directions. SQLite (and PostgreSQL) push a
-- condition on the view into both halves, where the primary key answers
-- one direction and entity_relations_declared_target the other.
--
-- Neither this table nor the new entity_tags below declares a foreign key
-- on entities: checking one costs a lookup of the entity for every row
-- written (a sixth of a batch's time), and the store deletes an entity's
-- tags and relations itself wherever it deletes the entity.
CREATE TABLE entity_relations_declared (
    origin_ref   TEXT NOT NULL,
    type         TEXT NOT NULL,
    target_key   TEXT NOT NULL,
    target_ref   TEXT NOT NULL,
    reverse_type TEXT NOT NULL,
    source_ref   TEXT NOT NULL,
    PRIMARY KEY (origin_ref, type, target_key, target_ref)
) WITHOUT ROWID;
CREATE INDEX entity_relations_declared_target
    ON entity_relations_declared (target_key, reverse_type, origin_ref);

-- The rows of 0002's table came in pairs: the declared relation, whose
-- source is the declaring entity, and its reverse, whose target is. A row
-- whose source is its declaring entity is a declared one, unless it points
-- back at that entity too (a relation to itself): then it is declared only
-- if its reverse is there, for the reverse of a relation to itself looks
-- the same. Relation names are Backstage's pairs (relations.rs).
INSERT OR IGNORE INTO entity_relations_declared
    (origin_ref, type, target_key, target_ref, reverse_type, source_ref)
SELECT r.origin_ref, r.type, r.target_key, r.target_ref,
    CASE r.type
        WHEN 'ownedBy' THEN 'ownerOf' WHEN 'ownerOf' THEN 'ownedBy'
        WHEN 'dependsOn' THEN 'dependencyOf' WHEN 'dependencyOf' THEN 'dependsOn'
        WHEN 'providesApi' THEN 'apiProvidedBy' WHEN 'apiProvidedBy' THEN 'providesApi'
        WHEN 'consumesApi' THEN 'apiConsumedBy' WHEN 'apiConsumedBy' THEN 'consumesApi'
        WHEN 'partOf' THEN 'hasPart' WHEN 'hasPart' THEN 'partOf'
        WHEN 'memberOf' THEN 'hasMember' WHEN 'hasMember' THEN 'memberOf'
        WHEN 'childOf' THEN 'parentOf' WHEN 'parentOf' THEN 'childOf'
        ELSE r.type
    END,
    lower(e.kind) || ':' || lower(e.namespace) || '/' || e.name
FROM entity_relations r JOIN entities e ON e.entity_ref = r.origin_ref
WHERE r.source_key = r.origin_ref
  AND (r.target_key <> r.origin_ref OR EXISTS (
      SELECT 1 FROM entity_relations back
      WHERE back.origin_ref = r.origin_ref
        AND back.source_key = r.origin_ref AND back.target_key = r.origin_ref
        AND back.target_ref = lower(e.kind) || ':' || lower(e.namespace) || '/' || e.name
        AND back.type = CASE r.type
            WHEN 'ownedBy' THEN 'ownerOf' WHEN 'ownerOf' THEN 'ownedBy'
            WHEN 'dependsOn' THEN 'dependencyOf' WHEN 'dependencyOf' THEN 'dependsOn'
            WHEN 'providesApi' THEN 'apiProvidedBy' WHEN 'apiProvidedBy' THEN 'providesApi'
            WHEN 'consumesApi' THEN 'apiConsumedBy' WHEN 'apiConsumedBy' THEN 'consumesApi'
            WHEN 'partOf' THEN 'hasPart' WHEN 'hasPart' THEN 'partOf'
            WHEN 'memberOf' THEN 'hasMember' WHEN 'hasMember' THEN 'memberOf'
            WHEN 'childOf' THEN 'parentOf' WHEN 'parentOf' THEN 'childOf'
            ELSE r.type
        END));

DROP TABLE entity_relations;

CREATE VIEW entity_relations (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT origin_ref, origin_ref, type, target_key, target_ref
    FROM entity_relations_declared
    UNION ALL
    SELECT origin_ref, target_key, reverse_type, origin_ref, source_ref
    FROM entity_relations_declared;

-- Tags: the same rows, in a table keyed by (entity_ref, tag) itself rather
-- than by a rowid with the key as a second index.
CREATE TABLE entity_tags_new (
    entity_ref TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (entity_ref, tag)
) WITHOUT ROWID;
INSERT INTO entity_tags_new (entity_ref, tag) SELECT entity_ref, tag FROM entity_tags;
DROP TABLE entity_tags;
ALTER TABLE entity_tags_new RENAME TO entity_tags;
CREATE INDEX entity_tags_tag ON entity_tags (tag, entity_ref);
