-- Scorecards: their definitions, exemptions, current results and each
-- entity's level over time.
--
-- The definition is stored as JSON and not interpreted here: the
-- portolan-scorecards crate validates it before it is written. Times are
-- milliseconds since the Unix epoch, as in the jobs table. entity_ref is
-- the catalog's lower-cased key (kind:namespace/name). Results do not
-- reference the entities table: a result may arrive for an entity that a
-- concurrent sync just removed, and the evaluator clears results of
-- entities that left the catalog or the scorecard's coverage.
CREATE TABLE scorecards (
    id         TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One exemption per scorecard, entity and rule; adding another replaces it.
CREATE TABLE scorecard_exemptions (
    scorecard_id TEXT NOT NULL REFERENCES scorecards (id) ON DELETE CASCADE,
    entity_ref   TEXT NOT NULL,
    rule_id      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (scorecard_id, entity_ref, rule_id)
);
CREATE INDEX scorecard_exemptions_entity ON scorecard_exemptions (entity_ref);

-- The current result of each rule for each entity: replaced on every
-- evaluation of that entity. status is pass, fail, error or exempt.
CREATE TABLE scorecard_results (
    scorecard_id TEXT NOT NULL REFERENCES scorecards (id) ON DELETE CASCADE,
    entity_ref   TEXT NOT NULL,
    rule_id      TEXT NOT NULL,
    status       TEXT NOT NULL,
    message      TEXT,
    value        TEXT,
    evaluated_at BIGINT NOT NULL,
    PRIMARY KEY (scorecard_id, entity_ref, rule_id)
);
CREATE INDEX scorecard_results_entity ON scorecard_results (entity_ref);

-- Each entity's level over time: a row is appended only when the level
-- changes, so the table grows with changes, not with evaluations. The row
-- whose until_at is NULL is the current level.
CREATE TABLE scorecard_levels (
    scorecard_id TEXT NOT NULL REFERENCES scorecards (id) ON DELETE CASCADE,
    entity_ref   TEXT NOT NULL,
    level        TEXT NOT NULL,
    at           BIGINT NOT NULL,
    until_at     BIGINT
);
CREATE UNIQUE INDEX scorecard_levels_current ON scorecard_levels (scorecard_id, entity_ref)
    WHERE until_at IS NULL;
CREATE INDEX scorecard_levels_history ON scorecard_levels (scorecard_id, entity_ref, at);
CREATE INDEX scorecard_levels_entity ON scorecard_levels (entity_ref) WHERE until_at IS NULL;
