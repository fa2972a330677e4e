-- The catalog's read side: sort keys, an owner column for facets and
-- filters, and full-text search.
--
-- name_key is the name lower-cased, for sorting by name. owner_key is the
-- key of the entity's ownedBy target (its spec.owner resolved the way the
-- relation is), so that the owner filter and facet read a column instead
-- of joining relations. The writer fills both; the UPDATE below fills
-- them in for the rows written before.
--
-- search is the full-text document. It is generated from each row, so
-- every writer keeps it right without knowing about it, and adding it
-- fills it in for existing rows. Name and title weigh most (A), then tags
-- (B), the description (C), and kind, namespace and the common spec
-- fields (D). Punctuation becomes a space before parsing, so that a name
-- such as payments-service or an e-mail address splits into the same
-- words as SQLite's unicode61 tokenizer makes of it, and both backends
-- find the same entities. Each part is capped so that no entity can
-- exceed tsvector's 1 MB limit and fail its write.
ALTER TABLE entities
    ADD COLUMN name_key TEXT COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN owner_key TEXT COLLATE "C",
    ADD COLUMN search tsvector
        GENERATED ALWAYS AS (
            setweight(to_tsvector('simple'::regconfig, regexp_replace(
                left(name || ' ' || coalesce(body #>> '{metadata,title}', ''), 10000),
                '[[:punct:][:space:]]+', ' ', 'g')), 'A')
            || setweight(to_tsvector('simple'::regconfig, regexp_replace(
                left(coalesce(body #>> '{metadata,tags}', ''), 10000),
                '[[:punct:][:space:]]+', ' ', 'g')), 'B')
            || setweight(to_tsvector('simple'::regconfig, regexp_replace(
                left(coalesce(body #>> '{metadata,description}', ''), 100000),
                '[[:punct:][:space:]]+', ' ', 'g')), 'C')
            || setweight(to_tsvector('simple'::regconfig, regexp_replace(
                left(kind || ' ' || namespace
                    || ' ' || coalesce(body #>> '{spec,type}', '')
                    || ' ' || coalesce(body #>> '{spec,lifecycle}', '')
                    || ' ' || coalesce(body #>> '{spec,owner}', '')
                    || ' ' || coalesce(body #>> '{spec,system}', '')
                    || ' ' || coalesce(body #>> '{spec,domain}', '')
                    || ' ' || coalesce(body #>> '{spec,profile,displayName}', '')
                    || ' ' || coalesce(body #>> '{spec,profile,email}', ''), 10000),
                '[[:punct:][:space:]]+', ' ', 'g')), 'D')
        ) STORED;

UPDATE entities SET
    name_key = lower(name),
    owner_key = (
        SELECT min(r.target_key) FROM entity_relations r
        WHERE r.origin_ref = entities.entity_ref
          AND r.source_key = entities.entity_ref
          AND r.type = 'ownedBy'
    );

CREATE INDEX entities_name ON entities (name_key, entity_ref);
CREATE INDEX entities_kind_name ON entities (kind_key, name_key, entity_ref);
CREATE INDEX entities_owner ON entities (owner_key, entity_ref);
CREATE INDEX entities_search ON entities USING GIN (search);
