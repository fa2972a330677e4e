-- Incoming relations in a table of their own, written in their own order.
--
-- Until now the incoming side of every declared relation was the index
-- entity_relations_declared_target (target_key, reverse_type, origin_ref).
-- SQLite updates a row's indexes as it inserts the row, so that index was
-- written in the order of the declaring entities: for a batch of new
-- entities, at places spread over the whole index (a relation points
-- anywhere in the catalog). That random-order index was about two thirds
-- of a batch's relation writes and grew with the catalog.
--
-- entity_relations_incoming holds the same entries as a WITHOUT ROWID
-- table. The store (host/store/src/entities.rs, `sqlite_bulk`) writes a
-- batch's declared rows sorted by their key, then these rows sorted by
-- theirs, so each B-tree takes its inserts in order, a page after the
-- other. A trigger removes the mirror row of each declared row deleted;
-- the store never updates declared rows.
--
-- The references as written take no room when they equal the key (the
-- usual case): target_ref and source_ref hold '' then.
--
-- Readers: entity_relations (both directions, for lookups by source_key)
-- now reads its reverse half from here; entity_relations_by_target (the
-- same rows) serves lookups by target_key, each half through the primary
-- key of one table.
CREATE TABLE entity_relations_incoming (
    target_key   TEXT NOT NULL,
    reverse_type TEXT NOT NULL,
    origin_ref   TEXT NOT NULL,
    target_ref   TEXT NOT NULL,
    type         TEXT NOT NULL,
    source_ref   TEXT NOT NULL,
    PRIMARY KEY (target_key, reverse_type, origin_ref, target_ref)
) WITHOUT ROWID;

INSERT INTO entity_relations_incoming
    (target_key, reverse_type, origin_ref, target_ref, type, source_ref)
SELECT target_key, reverse_type, origin_ref,
    iif(target_ref = target_key, '', target_ref),
    type,
    iif(source_ref = origin_ref, '', source_ref)
FROM entity_relations_declared
ORDER BY 1, 2, 3, 4;

DROP INDEX entity_relations_declared_target;

CREATE TRIGGER entity_relations_declared_delete
AFTER DELETE ON entity_relations_declared BEGIN
    DELETE FROM entity_relations_incoming
    WHERE target_key = old.target_key
      AND reverse_type = old.reverse_type
      AND origin_ref = old.origin_ref
      AND target_ref = iif(old.target_ref = old.target_key, '', old.target_ref);
END;

DROP VIEW entity_relations;

CREATE VIEW entity_relations (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT origin_ref, origin_ref, type, target_key, target_ref
    FROM entity_relations_declared
    UNION ALL
    SELECT origin_ref, target_key, reverse_type, origin_ref,
        iif(source_ref = '', origin_ref, source_ref)
    FROM entity_relations_incoming;

CREATE VIEW entity_relations_by_target (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT origin_ref, origin_ref, type, target_key,
        iif(target_ref = '', target_key, target_ref)
    FROM entity_relations_incoming
    UNION ALL
    SELECT origin_ref, target_key, reverse_type, origin_ref, source_ref
    FROM entity_relations_declared;
