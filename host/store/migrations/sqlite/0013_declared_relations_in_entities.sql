-- The relations an entity declares kept in its own row instead of a table.
--
-- entity_relations_declared was read one way only: by origin_ref, the
-- declaring entity (its outgoing relations, a walk outwards, and the
-- delete of its rows when it changes or goes). Lookups by target go to
-- entity_relations_incoming (migration 0011), which holds every declared
-- relation too. So the table cost a batch one B-tree insert per relation
-- (four to five per Component) to answer what the entity's row can:
-- entities.declared_relations is a JSON array with one element per
-- relation the entity declares, besides the ownedBy relation that lives in
-- owner_key/owner_ref (migration 0012):
--
--     [type, target_key, target_ref, reverse_type]
--
-- with target_ref '' where it equals target_key, as in
-- entity_relations_incoming; NULL when there is none. The store writes it
-- with the row (host/store/src/entities.rs, `sqlite_bulk`), and deletes the
-- incoming mirror rows of the old list itself before it replaces or
-- deletes the row (the trigger of 0011 goes with the table).
--
-- Readers keep their names: the arms of entity_relations and
-- entity_relations_by_target that read the declared table now read each
-- entity's list, found by entities' primary key (entity_ref is the
-- view's source_key in the first and its target_key in the second). The
-- two arms of 0012 that serve ownedBy and ownerOf from the entity row, the
-- same in both views, become a view of their own, entity_relations_owner;
-- SQLite pushes a reader's condition down into it as into the others
-- (query plans checked with the SQLite the store links, 3.46).
ALTER TABLE entities ADD COLUMN declared_relations TEXT;

UPDATE entities SET declared_relations = (
    SELECT json_group_array(json_array(
        d.type, d.target_key, iif(d.target_ref = d.target_key, '', d.target_ref),
        d.reverse_type))
    FROM (
        SELECT * FROM entity_relations_declared
        WHERE origin_ref = entities.entity_ref
        ORDER BY type, target_key, target_ref
    ) d
)
WHERE entity_ref IN (SELECT origin_ref FROM entity_relations_declared);

DROP VIEW entity_relations;
DROP VIEW entity_relations_by_target;
DROP TRIGGER entity_relations_declared_delete;
DROP TABLE entity_relations_declared;

-- Migration 0012's arms for the ownedBy relation and its reverse, shared
-- by both views below.
CREATE VIEW entity_relations_owner (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT entity_ref, entity_ref, 'ownedBy', owner_key, ifnull(owner_ref, owner_key)
    FROM entities WHERE owner_key IS NOT NULL
    UNION ALL
    SELECT entity_ref, owner_key, 'ownerOf', entity_ref,
        kind_key || ':' || namespace_key || '/' || name
    FROM entities WHERE owner_key IS NOT NULL;

CREATE VIEW entity_relations (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT e.entity_ref, e.entity_ref, r.value ->> 0, r.value ->> 1,
        iif(r.value ->> 2 = '', r.value ->> 1, r.value ->> 2)
    FROM entities e, json_each(e.declared_relations) r
    UNION ALL
    SELECT origin_ref, target_key, reverse_type, origin_ref,
        iif(source_ref = '', origin_ref, source_ref)
    FROM entity_relations_incoming
    UNION ALL
    SELECT * FROM entity_relations_owner;

CREATE VIEW entity_relations_by_target (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT origin_ref, origin_ref, type, target_key,
        iif(target_ref = '', target_key, target_ref)
    FROM entity_relations_incoming
    UNION ALL
    SELECT e.entity_ref, r.value ->> 1, r.value ->> 3, e.entity_ref,
        e.kind_key || ':' || e.namespace_key || '/' || e.name
    FROM entities e, json_each(e.declared_relations) r
    UNION ALL
    SELECT * FROM entity_relations_owner;

-- The same relations for readers that scan them all rather than look up
-- some entities' (a relation facet over the whole catalog, a filter on
-- having a relation of a type): both directions from the incoming table
-- alone, which holds every declared relation, instead of every entity's
-- list parsed in turn.
CREATE VIEW entity_relations_scan (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT origin_ref, origin_ref, type, target_key,
        iif(target_ref = '', target_key, target_ref)
    FROM entity_relations_incoming
    UNION ALL
    SELECT origin_ref, target_key, reverse_type, origin_ref,
        iif(source_ref = '', origin_ref, source_ref)
    FROM entity_relations_incoming
    UNION ALL
    SELECT * FROM entity_relations_owner;
