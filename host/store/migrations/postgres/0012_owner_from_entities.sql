-- SQLite serves the ownedBy relation from the entity row from this
-- migration on (see migrations/sqlite/0012_owner_from_entities.sql);
-- PostgreSQL keeps it as relation rows. The column the shared upsert sets
-- exists here too, filled the same way, so both backends store the same.
ALTER TABLE entities ADD COLUMN owner_ref TEXT;

UPDATE entities SET owner_ref = (
    SELECT d.target_ref FROM entity_relations_declared d
    WHERE d.origin_ref = entities.entity_ref
      AND d.type = 'ownedBy'
      AND d.target_key = entities.owner_key
      AND d.target_ref <> d.target_key
    ORDER BY d.target_ref
    LIMIT 1
)
WHERE owner_key IS NOT NULL;

-- The relations others declare towards a key, as one entity's page reads
-- them: the same name and columns as SQLite's view, over the declared
-- rows and their index by target.
CREATE VIEW entity_relations_reverse (source_key, type, target_ref) AS
    SELECT target_key, reverse_type, source_ref
    FROM entity_relations_declared;
