-- A full evaluation that found an entity's results as they were still
-- rewrote its standing (about 1 KB) only to move evaluated_at: on a
-- scorecard of 100,000 entities whose results did not change, that was
-- most of the evaluation's database time. Now:
--
-- digest: a hash of what a standing says (its statuses, results and the
-- level they give). A full evaluation compares it with the new one and
-- leaves an equal standing as it is. Rows written before this migration
-- have '' and so are rewritten once by the next evaluation.
--
-- confirmed_at: when the last full evaluation of the scorecard that
-- finished started. Every standing it left untouched was evaluated by it
-- and found unchanged, so a standing's results were evaluated at the later
-- of its own evaluated_at and this.
ALTER TABLE scorecard_standings ADD COLUMN digest TEXT NOT NULL DEFAULT '';
ALTER TABLE scorecards ADD COLUMN confirmed_at BIGINT;
