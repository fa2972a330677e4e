-- The catalog's read side: sort keys, an owner column for facets and
-- filters, and full-text search.
--
-- All three columns are generated from what each row already holds, so
-- every writer keeps them right without knowing about them, and adding
-- them here (one table rewrite) fills them in for existing rows.
--
-- search is the full-text document: name and title weigh most (A), then
-- tags (B), the description (C), and kind, namespace and the common spec
-- fields (D). Punctuation becomes a space before parsing, so that a name
-- such as payments-service or an e-mail address splits into the same
-- words as SQLite's unicode61 tokenizer makes of it, and both backends
-- find the same entities. Each part is capped so that no entity can
-- exceed tsvector's 1 MB limit and fail its write.
ALTER TABLE entities
    ADD COLUMN name_key TEXT COLLATE "C"
        GENERATED ALWAYS AS (lower(name)) STORED,
    ADD COLUMN owner_key TEXT COLLATE "C"
        GENERATED ALWAYS AS (
            CASE jsonb_typeof(body #> '{spec,owner}')
                WHEN 'string' THEN lower(body #>> '{spec,owner}')
            END
        ) STORED,
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

CREATE INDEX entities_name ON entities (name_key, entity_ref);
CREATE INDEX entities_owner ON entities (owner_key, entity_ref);
CREATE INDEX entities_search ON entities USING GIN (search);
