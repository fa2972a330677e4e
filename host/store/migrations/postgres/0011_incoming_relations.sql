-- SQLite keeps incoming relations in a table of their own from this
-- migration on (see migrations/sqlite/0011_incoming_relations.sql) and
-- reads lookups by target through entity_relations_by_target. PostgreSQL
-- keeps its index entity_relations_declared_target, which serves both
-- directions of entity_relations; the new name is the same rows, so the
-- store's queries read alike on both backends.
CREATE VIEW entity_relations_by_target (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT origin_ref, source_key, type, target_key, target_ref
    FROM entity_relations;
