-- The catalog: entities, their tags and their relations.
--
-- entity_ref is 'kind:namespace/name' in lower case: the catalog's
-- case-insensitive identity. kind, namespace and name keep the case they
-- were written in. kind_key ... spec_type are lower-cased copies of the
-- fields the list endpoint filters on, so each filter is an index lookup.
-- body is the entity as sent (without relations), as JSONB; etag is a
-- hash of it that changes only when the content does. origin says who owns
-- the entity: 'api' for pushes, 'source:<plugin-id>' for a catalog source.
-- Refs use the "C" collation so that pages sort byte-wise, as on SQLite,
-- whatever the database's locale.
CREATE TABLE entities (
    entity_ref    TEXT COLLATE "C" PRIMARY KEY,
    kind          TEXT NOT NULL,
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    kind_key      TEXT NOT NULL,
    namespace_key TEXT NOT NULL,
    lifecycle     TEXT,
    spec_type     TEXT,
    body          JSONB NOT NULL,
    etag          TEXT NOT NULL,
    origin        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX entities_kind ON entities (kind_key, entity_ref);
CREATE INDEX entities_namespace ON entities (namespace_key, entity_ref);
CREATE INDEX entities_lifecycle ON entities (lifecycle, entity_ref);
CREATE INDEX entities_spec_type ON entities (spec_type, entity_ref);
CREATE INDEX entities_origin ON entities (origin);

-- metadata.tags, one row per tag, for the tag filter.
CREATE TABLE entity_tags (
    entity_ref TEXT COLLATE "C" NOT NULL REFERENCES entities (entity_ref) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    PRIMARY KEY (entity_ref, tag)
);
CREATE INDEX entity_tags_tag ON entity_tags (tag, entity_ref);

-- Relations, both directions. origin_ref is the entity whose spec declared
-- the relation: rows are replaced with it and deleted with it. source_key
-- and target_key are lower-cased refs for lookups; target_ref is the
-- target as Backstage writes it (kind and namespace lower case, name as
-- written). Targets need not exist (yet), as in Backstage.
CREATE TABLE entity_relations (
    origin_ref TEXT COLLATE "C" NOT NULL REFERENCES entities (entity_ref) ON DELETE CASCADE,
    source_key TEXT COLLATE "C" NOT NULL,
    type       TEXT NOT NULL,
    target_key TEXT COLLATE "C" NOT NULL,
    target_ref TEXT NOT NULL
);
CREATE INDEX entity_relations_origin ON entity_relations (origin_ref);
CREATE INDEX entity_relations_source ON entity_relations (source_key, type);
CREATE INDEX entity_relations_target ON entity_relations (target_key, type, source_key);
