-- Entities whose scorecard results are out of date: written when the
-- catalog changes (an entity added, changed or removed) or an exemption
-- is granted, revoked or expires, and taken by the scorecard scheduler,
-- which queues their re-evaluation. One row per entity however often it
-- changes, so a burst of writes becomes one evaluation. Times are
-- milliseconds since the Unix epoch.
CREATE TABLE scorecard_stale_entities (
    entity_ref TEXT PRIMARY KEY NOT NULL,
    since      BIGINT NOT NULL
);
