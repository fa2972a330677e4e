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

-- How many entities have each value of the promoted fields and tags, per
-- kind, kept by triggers in the writer's transaction. A facet over the
-- whole catalog or within some kinds, and the total of a page filtered by
-- kind and one such field, then read a few rows here instead of counting
-- an index of every entity. A tag row takes its kind from its entity's
-- key (`kind:namespace/name`; a kind has no colon), which it still has
-- when the entity's deletion cascades to it. Rows whose count fell to
-- zero stay; readers skip them.
CREATE TABLE entity_value_counts (
    field    TEXT NOT NULL,
    kind_key TEXT NOT NULL,
    value    TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (field, kind_key, value)
) WITHOUT ROWID;

INSERT INTO entity_value_counts (field, kind_key, value, n)
SELECT field, kind_key, value, COUNT(*) FROM (
    SELECT 'kind' AS field, kind_key, kind_key AS value FROM entities
    UNION ALL SELECT 'metadata.namespace', kind_key, namespace_key FROM entities
    UNION ALL SELECT 'spec.lifecycle', kind_key, lifecycle FROM entities
    UNION ALL SELECT 'spec.type', kind_key, spec_type FROM entities
    UNION ALL SELECT 'relations.ownedBy', kind_key, owner_key FROM entities
    UNION ALL SELECT 'metadata.tags', substr(entity_ref, 1, instr(entity_ref, ':') - 1), tag
        FROM entity_tags
) WHERE value IS NOT NULL
GROUP BY field, kind_key, value;

CREATE TRIGGER entities_counts_insert AFTER INSERT ON entities BEGIN
    INSERT INTO entity_value_counts (field, kind_key, value, n)
    SELECT field, new.kind_key, value, 1 FROM (
        SELECT 'kind' AS field, new.kind_key AS value
        UNION ALL SELECT 'metadata.namespace', new.namespace_key
        UNION ALL SELECT 'spec.lifecycle', new.lifecycle
        UNION ALL SELECT 'spec.type', new.spec_type
        UNION ALL SELECT 'relations.ownedBy', new.owner_key
    ) WHERE value IS NOT NULL
    ON CONFLICT (field, kind_key, value) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER entities_counts_delete AFTER DELETE ON entities BEGIN
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'kind' AND kind_key = old.kind_key AND value = old.kind_key;
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'metadata.namespace' AND kind_key = old.kind_key AND value = old.namespace_key;
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'spec.lifecycle' AND kind_key = old.kind_key AND value = old.lifecycle;
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'spec.type' AND kind_key = old.kind_key AND value = old.spec_type;
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'relations.ownedBy' AND kind_key = old.kind_key AND value = old.owner_key;
END;

-- An upsert sets every column; count only real changes.
CREATE TRIGGER entities_counts_update
AFTER UPDATE OF kind_key, namespace_key, lifecycle, spec_type, owner_key ON entities
WHEN old.kind_key IS NOT new.kind_key
  OR old.namespace_key IS NOT new.namespace_key
  OR old.lifecycle IS NOT new.lifecycle
  OR old.spec_type IS NOT new.spec_type
  OR old.owner_key IS NOT new.owner_key
BEGIN
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'kind' AND kind_key = old.kind_key AND value = old.kind_key;
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'metadata.namespace' AND kind_key = old.kind_key AND value = old.namespace_key;
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'spec.lifecycle' AND kind_key = old.kind_key AND value = old.lifecycle;
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'spec.type' AND kind_key = old.kind_key AND value = old.spec_type;
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'relations.ownedBy' AND kind_key = old.kind_key AND value = old.owner_key;
    INSERT INTO entity_value_counts (field, kind_key, value, n)
    SELECT field, new.kind_key, value, 1 FROM (
        SELECT 'kind' AS field, new.kind_key AS value
        UNION ALL SELECT 'metadata.namespace', new.namespace_key
        UNION ALL SELECT 'spec.lifecycle', new.lifecycle
        UNION ALL SELECT 'spec.type', new.spec_type
        UNION ALL SELECT 'relations.ownedBy', new.owner_key
    ) WHERE value IS NOT NULL
    ON CONFLICT (field, kind_key, value) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER entity_tags_counts_insert AFTER INSERT ON entity_tags BEGIN
    INSERT INTO entity_value_counts (field, kind_key, value, n)
    VALUES ('metadata.tags', substr(new.entity_ref, 1, instr(new.entity_ref, ':') - 1), new.tag, 1)
    ON CONFLICT (field, kind_key, value) DO UPDATE SET n = n + 1;
END;

-- Also fires for the tag rows an entity's deletion cascades to.
CREATE TRIGGER entity_tags_counts_delete AFTER DELETE ON entity_tags BEGIN
    UPDATE entity_value_counts SET n = n - 1
    WHERE field = 'metadata.tags'
      AND kind_key = substr(old.entity_ref, 1, instr(old.entity_ref, ':') - 1)
      AND value = old.tag;
END;

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
