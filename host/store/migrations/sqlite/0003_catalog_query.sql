-- The catalog's read side: sort keys, an owner column for facets and
-- filters, and full-text search.
--
-- name_key is the name lower-cased, for sorting by name. owner_key is the
-- key of the entity's ownedBy target (its spec.owner resolved the way the
-- relation is), so that the owner filter and facet read a column instead
-- of joining relations. The writer fills both; here they are filled in
-- for the rows written before.
ALTER TABLE entities ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
ALTER TABLE entities ADD COLUMN owner_key TEXT;
UPDATE entities SET
    name_key = lower(name),
    owner_key = (
        SELECT min(r.target_key) FROM entity_relations r
        WHERE r.origin_ref = entities.entity_ref
          AND r.source_key = entities.entity_ref
          AND r.type = 'ownedBy'
    );

-- A page sorted by name, alone or within one kind (the catalog's table),
-- walks an index in order instead of sorting every match.
CREATE INDEX entities_name ON entities (name_key, entity_ref);
CREATE INDEX entities_kind_name ON entities (kind_key, name_key, entity_ref);
CREATE INDEX entities_owner ON entities (owner_key, entity_ref);
-- Every promoted field in one covering index: a facet on any of them,
-- under filters on any of them, is one scan of this index and never
-- reads the wide rows.
CREATE INDEX entities_facts ON entities (kind_key, lifecycle, spec_type, owner_key, namespace_key);

-- Full-text search over the text people look for an entity by. Columns in
-- order of weight (the query ranks name matches first); `other` gathers
-- kind, namespace and the common spec fields. Contentless: the text is in
-- entities.body already, and contentless_delete lets the triggers remove a
-- row by rowid. Rows are keyed by entities.rowid, which VACUUM keeps for
-- rowid tables. Diacritics are kept, as PostgreSQL's 'simple' configuration
-- keeps them, so both backends find the same entities.
CREATE VIRTUAL TABLE entities_fts USING fts5(
    name, title, tags, description, other,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);

-- The triggers run in the writer's transaction, so an entity and its
-- search row commit together, whichever code path wrote or deleted it.
CREATE TRIGGER entities_fts_insert AFTER INSERT ON entities BEGIN
    INSERT INTO entities_fts (rowid, name, title, tags, description, other)
    VALUES (
        new.rowid,
        new.name,
        json_extract(new.body, '$.metadata.title'),
        (SELECT group_concat(value, ' ') FROM json_each(new.body, '$.metadata.tags')),
        json_extract(new.body, '$.metadata.description'),
        concat_ws(' ', new.kind, new.namespace,
            json_extract(new.body, '$.spec.type'),
            json_extract(new.body, '$.spec.lifecycle'),
            json_extract(new.body, '$.spec.owner'),
            json_extract(new.body, '$.spec.system'),
            json_extract(new.body, '$.spec.domain'),
            json_extract(new.body, '$.spec.profile.displayName'),
            json_extract(new.body, '$.spec.profile.email'))
    );
END;

CREATE TRIGGER entities_fts_update AFTER UPDATE ON entities BEGIN
    DELETE FROM entities_fts WHERE rowid = old.rowid;
    INSERT INTO entities_fts (rowid, name, title, tags, description, other)
    VALUES (
        new.rowid,
        new.name,
        json_extract(new.body, '$.metadata.title'),
        (SELECT group_concat(value, ' ') FROM json_each(new.body, '$.metadata.tags')),
        json_extract(new.body, '$.metadata.description'),
        concat_ws(' ', new.kind, new.namespace,
            json_extract(new.body, '$.spec.type'),
            json_extract(new.body, '$.spec.lifecycle'),
            json_extract(new.body, '$.spec.owner'),
            json_extract(new.body, '$.spec.system'),
            json_extract(new.body, '$.spec.domain'),
            json_extract(new.body, '$.spec.profile.displayName'),
            json_extract(new.body, '$.spec.profile.email'))
    );
END;

CREATE TRIGGER entities_fts_delete AFTER DELETE ON entities BEGIN
    DELETE FROM entities_fts WHERE rowid = old.rowid;
END;

-- Entities written before this migration.
INSERT INTO entities_fts (rowid, name, title, tags, description, other)
SELECT
    rowid,
    name,
    json_extract(body, '$.metadata.title'),
    (SELECT group_concat(value, ' ') FROM json_each(body, '$.metadata.tags')),
    json_extract(body, '$.metadata.description'),
    concat_ws(' ', kind, namespace,
        json_extract(body, '$.spec.type'),
        json_extract(body, '$.spec.lifecycle'),
        json_extract(body, '$.spec.owner'),
        json_extract(body, '$.spec.system'),
        json_extract(body, '$.spec.domain'),
        json_extract(body, '$.spec.profile.displayName'),
        json_extract(body, '$.spec.profile.email'))
FROM entities;
