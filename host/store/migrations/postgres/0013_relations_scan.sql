-- The name SQLite's migration 0013 gives the relations as read by a scan
-- of them all (a relation facet over the whole catalog, a filter on having
-- a relation of a type), so that one statement serves both backends. Here
-- it is every relation, both directions, as entity_relations gives them.
CREATE VIEW entity_relations_scan (origin_ref, source_key, type, target_key, target_ref) AS
    SELECT origin_ref, source_key, type, target_key, target_ref
    FROM entity_relations;
