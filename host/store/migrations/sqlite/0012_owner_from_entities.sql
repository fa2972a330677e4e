-- The ownedBy relation read from the entity row instead of relation rows.
--
-- An entity declares at most one ownedBy relation (spec.owner), and its
-- target's key is already a column of the entity (owner_key, migration
-- 0003) with an index (entities_owner). Keeping the relation as a row of
-- entity_relations_declared and of entity_relations_incoming as well
-- cost a batch two more B-tree inserts per entity (a fifth of its
-- relation writes). From here on SQLite serves ownedBy and its reverse,
-- ownerOf, from the entity row:
--
-- - owner_ref holds the owner's reference as written (Backstage's form,
--   `group:default/Team-A`) where it differs from owner_key, else NULL;
-- - the store no longer writes the ownedBy row (host/store/src/entities.rs,
--   `sqlite_bulk`), and the rows already there are moved here;
-- - entity_relations and entity_relations_by_target gain two arms over
--   entities (ownedBy by entity_ref, ownerOf by owner_key, both indexed),
--   and entity_relations_reverse gives the relations others declare towards
--   a key, as one entity's page reads them.
-- An entity's relation goes with its row, as its other declared rows do.
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

DELETE FROM entity_relations_declared
WHERE type = 'ownedBy'
  AND target_key = (
      SELECT e.owner_key FROM entities e
      WHERE e.entity_ref = entity_relations_declared.origin_ref
  );

DROP VIEW entity_relations;
DROP VIEW entity_relations_by_target;

CREATE VIEW entity_relations (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT origin_ref, origin_ref, type, target_key, target_ref
    FROM entity_relations_declared
    UNION ALL
    SELECT origin_ref, target_key, reverse_type, origin_ref,
        iif(source_ref = '', origin_ref, source_ref)
    FROM entity_relations_incoming
    UNION ALL
    SELECT entity_ref, entity_ref, 'ownedBy', owner_key, ifnull(owner_ref, owner_key)
    FROM entities WHERE owner_key IS NOT NULL
    UNION ALL
    SELECT entity_ref, owner_key, 'ownerOf', entity_ref,
        kind_key || ':' || namespace_key || '/' || name
    FROM entities WHERE owner_key IS NOT NULL;

CREATE VIEW entity_relations_by_target (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT origin_ref, origin_ref, type, target_key,
        iif(target_ref = '', target_key, target_ref)
    FROM entity_relations_incoming
    UNION ALL
    SELECT origin_ref, target_key, reverse_type, origin_ref, source_ref
    FROM entity_relations_declared
    UNION ALL
    SELECT entity_ref, entity_ref, 'ownedBy', owner_key, ifnull(owner_ref, owner_key)
    FROM entities WHERE owner_key IS NOT NULL
    UNION ALL
    SELECT entity_ref, owner_key, 'ownerOf', entity_ref,
        kind_key || ':' || namespace_key || '/' || name
    FROM entities WHERE owner_key IS NOT NULL;

CREATE VIEW entity_relations_reverse (source_key, type, target_ref) AS
    SELECT target_key, reverse_type, iif(source_ref = '', origin_ref, source_ref)
    FROM entity_relations_incoming
    UNION ALL
    SELECT owner_key, 'ownerOf', kind_key || ':' || namespace_key || '/' || name
    FROM entities WHERE owner_key IS NOT NULL;
