-- Faster catalog writes (the catalog issue's ingest goal): relations are
-- stored once per relation an entity declares instead of twice (once per
-- direction), as on SQLite (see its migration 0007 for the whole story).
--
-- entity_relations_declared: the entity origin_ref declares `type` towards
-- target_key (target_ref as written, the way Backstage writes references),
-- and so the target is related back to it as reverse_type; source_ref is
-- the declaring entity's own reference as Backstage writes it, the target
-- of that reverse relation. entity_relations, the name every reader uses,
-- becomes a view with the same columns as the table it replaces: each
-- declared row read in both directions. The planner pushes a condition on
-- the view into both halves, where the primary key answers one direction
-- and entity_relations_declared_target the other.
CREATE TABLE entity_relations_declared (
    origin_ref   TEXT COLLATE "C" NOT NULL REFERENCES entities (entity_ref) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    target_key   TEXT COLLATE "C" NOT NULL,
    target_ref   TEXT NOT NULL,
    reverse_type TEXT NOT NULL,
    source_ref   TEXT NOT NULL,
    PRIMARY KEY (origin_ref, type, target_key, target_ref)
);
CREATE INDEX entity_relations_declared_target
    ON entity_relations_declared (target_key, reverse_type, origin_ref);

-- The rows of 0002's table came in pairs: the declared relation, whose
-- source is the declaring entity, and its reverse, whose target is. A row
-- whose source is its declaring entity is a declared one, unless it points
-- back at that entity too (a relation to itself): then it is declared only
-- if its reverse is there, for the reverse of a relation to itself looks
-- the same. Relation names are Backstage's pairs (relations.rs).
CREATE FUNCTION pg_temp.reverse_relation(t TEXT) RETURNS TEXT LANGUAGE SQL IMMUTABLE AS $$
    SELECT CASE t
        WHEN 'ownedBy' THEN 'ownerOf' WHEN 'ownerOf' THEN 'ownedBy'
        WHEN 'dependsOn' THEN 'dependencyOf' WHEN 'dependencyOf' THEN 'dependsOn'
        WHEN 'providesApi' THEN 'apiProvidedBy' WHEN 'apiProvidedBy' THEN 'providesApi'
        WHEN 'consumesApi' THEN 'apiConsumedBy' WHEN 'apiConsumedBy' THEN 'consumesApi'
        WHEN 'partOf' THEN 'hasPart' WHEN 'hasPart' THEN 'partOf'
        WHEN 'memberOf' THEN 'hasMember' WHEN 'hasMember' THEN 'memberOf'
        WHEN 'childOf' THEN 'parentOf' WHEN 'parentOf' THEN 'childOf'
        ELSE t
    END
$$;

INSERT INTO entity_relations_declared
    (origin_ref, type, target_key, target_ref, reverse_type, source_ref)
SELECT r.origin_ref, r.type, r.target_key, r.target_ref,
    pg_temp.reverse_relation(r.type),
    lower(e.kind) || ':' || lower(e.namespace) || '/' || e.name
FROM entity_relations r JOIN entities e ON e.entity_ref = r.origin_ref
WHERE r.source_key = r.origin_ref
  AND (r.target_key <> r.origin_ref OR EXISTS (
      SELECT 1 FROM entity_relations back
      WHERE back.origin_ref = r.origin_ref
        AND back.source_key = r.origin_ref AND back.target_key = r.origin_ref
        AND back.target_ref = lower(e.kind) || ':' || lower(e.namespace) || '/' || e.name
        AND back.type = pg_temp.reverse_relation(r.type)))
ON CONFLICT DO NOTHING;

DROP FUNCTION pg_temp.reverse_relation(TEXT);
DROP TABLE entity_relations;

CREATE VIEW entity_relations (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT origin_ref, origin_ref, type, target_key, target_ref
    FROM entity_relations_declared
    UNION ALL
    SELECT origin_ref, target_key, reverse_type, origin_ref, source_ref
    FROM entity_relations_declared;
