-- Scorecard results as one row per scorecard and entity instead of one row
-- per rule: an evaluation of 100,000 entities against 10 rules wrote a
-- million rows (two B-trees each); it now writes 100,000.
--
-- results holds the entity's rule results as a JSON array of
-- {ruleId, status, message, value}. statuses repeats each rule's status as
-- ' rule=status ' tokens (rule ids are DNS labels, so neither a space nor
-- '=' can occur in them), which lets a drill-down find the entities with a
-- rule in a status without parsing JSON, and lets a write compute how the
-- per-rule counts change. scorecard_rule_counts keeps those counts, updated
-- by every write, so a scorecard's summary reads a handful of rows.
CREATE TABLE scorecard_standings (
    scorecard_id TEXT NOT NULL REFERENCES scorecards (id) ON DELETE CASCADE,
    entity_ref   TEXT NOT NULL,
    statuses     TEXT NOT NULL,
    results      TEXT NOT NULL,
    evaluated_at BIGINT NOT NULL,
    PRIMARY KEY (scorecard_id, entity_ref)
);
CREATE INDEX scorecard_standings_entity ON scorecard_standings (entity_ref);

CREATE TABLE scorecard_rule_counts (
    scorecard_id TEXT NOT NULL REFERENCES scorecards (id) ON DELETE CASCADE,
    rule_id      TEXT NOT NULL,
    status       TEXT NOT NULL,
    entities     BIGINT NOT NULL,
    PRIMARY KEY (scorecard_id, rule_id, status)
);

INSERT INTO scorecard_standings (scorecard_id, entity_ref, statuses, results, evaluated_at)
SELECT scorecard_id,
       entity_ref,
       ' ' || group_concat(rule_id || '=' || status, ' ' ORDER BY rule_id) || ' ',
       json_group_array(json_object('ruleId', rule_id, 'status', status,
                                    'message', message, 'value', json(value))
                        ORDER BY rule_id),
       MAX(evaluated_at)
FROM scorecard_results
GROUP BY scorecard_id, entity_ref;

INSERT INTO scorecard_rule_counts (scorecard_id, rule_id, status, entities)
SELECT scorecard_id, rule_id, status, COUNT(*)
FROM scorecard_results
GROUP BY scorecard_id, rule_id, status;

DROP TABLE scorecard_results;
