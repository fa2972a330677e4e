//! Level computation: from one entity's rule outcomes to its level and to
//! what stands between it and the next one. Pure functions; the evaluator
//! calls them once per entity after the checks have answered.
//!
//! An entity's level is the highest level L such that every rule of L and
//! of every lower level passes. Levels are a ladder, not a tally: an entity
//! that passes every Gold rule but fails one Bronze rule is at the floor,
//! and a level without rules is reached as soon as the levels below it are.

use portolan_store::ResultStatus;
use serde::Serialize;

use crate::definition::{Rule, ScorecardDefinition};

/// How one rule came out for one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// The check could not decide: counts as a failure, since a level must
    /// be earned, but is shown apart so that people blame the check.
    Error,
    /// Covered by an exemption in force: counts as a pass.
    Exempt,
    /// The rule does not apply to the entity: it does not hold the entity
    /// back.
    Skip,
}

impl Outcome {
    /// Whether the outcome lets the entity through its rule's level.
    pub fn passes(self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Exempt | Outcome::Skip)
    }

    /// The outcome once exemptions are considered: a rule that does not
    /// pass becomes [`Outcome::Exempt`] while an exemption covers it; a
    /// passing rule stays [`Outcome::Pass`], so that a moot exemption
    /// shows.
    pub fn with_exemption(self, exempted: bool) -> Outcome {
        if exempted && !self.passes() {
            Outcome::Exempt
        } else {
            self
        }
    }
}

impl From<Outcome> for ResultStatus {
    fn from(outcome: Outcome) -> ResultStatus {
        match outcome {
            Outcome::Pass => ResultStatus::Pass,
            Outcome::Fail => ResultStatus::Fail,
            Outcome::Error => ResultStatus::Error,
            Outcome::Exempt => ResultStatus::Exempt,
            Outcome::Skip => ResultStatus::Skip,
        }
    }
}

impl From<ResultStatus> for Outcome {
    fn from(status: ResultStatus) -> Outcome {
        match status {
            ResultStatus::Pass => Outcome::Pass,
            ResultStatus::Fail => Outcome::Fail,
            ResultStatus::Error => Outcome::Error,
            ResultStatus::Exempt => Outcome::Exempt,
            ResultStatus::Skip => Outcome::Skip,
        }
    }
}

/// An entity's place on a scorecard's ladder.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Standing<'d> {
    /// The index of the level reached in the definition's levels.
    pub index: usize,
    /// The level reached.
    pub level: &'d str,
    /// What stands between the entity and the next level; `None` at the
    /// top.
    pub next: Option<NextLevel<'d>>,
}

/// The lowest level an entity has not reached and the rules it fails
/// there.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextLevel<'d> {
    pub index: usize,
    pub level: &'d str,
    /// The rules of that level that do not pass, in definition order.
    /// Never empty: a level whose rules all pass is reached (or blocked
    /// by a lower one, which is then the next level).
    pub failing: Vec<&'d Rule>,
}

/// Computes an entity's level from its rule outcomes. `outcome` answers
/// for a rule id; a rule it has no outcome for (not evaluated yet) counts
/// as failing, like an error.
///
/// The definition should be valid ([`ScorecardDefinition::validate`]);
/// rules naming unknown levels are ignored, and a definition without
/// levels yields the empty level name at index 0.
pub fn standing<'d>(
    definition: &'d ScorecardDefinition,
    outcome: impl Fn(&str) -> Option<Outcome>,
) -> Standing<'d> {
    let level_name = |i: usize| definition.levels.get(i).map_or("", String::as_str);
    let by_level = definition.rules_by_level();
    for (index, rules) in by_level.iter().enumerate() {
        let failing: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| !outcome(&r.id).is_some_and(Outcome::passes))
            .collect();
        // Rules at the floor (which validation refuses) cannot take an
        // entity below it.
        if !failing.is_empty() && index > 0 {
            let reached = index - 1;
            return Standing {
                index: reached,
                level: level_name(reached),
                next: Some(NextLevel {
                    index,
                    level: level_name(index),
                    failing,
                }),
            };
        }
    }
    let top = definition.levels.len().saturating_sub(1);
    Standing {
        index: top,
        level: level_name(top),
        next: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    /// Bronze: b1, b2; Silver: none; Gold: g1.
    fn definition() -> ScorecardDefinition {
        ScorecardDefinition::from_value(json!({
            "id": "ladder",
            "title": "Ladder",
            "rules": [
                {"id": "b1", "title": "B1", "level": "Bronze", "check": "p/c"},
                {"id": "g1", "title": "G1", "level": "Gold", "check": "p/c"},
                {"id": "b2", "title": "B2", "level": "Bronze", "check": "p/c"},
            ]
        }))
        .unwrap()
    }

    fn outcomes(list: &[(&str, Outcome)]) -> HashMap<String, Outcome> {
        list.iter().map(|(r, o)| ((*r).to_owned(), *o)).collect()
    }

    fn level_of(
        def: &ScorecardDefinition,
        list: &[(&str, Outcome)],
    ) -> (String, Option<Vec<String>>) {
        let map = outcomes(list);
        let s = standing(def, |r| map.get(r).copied());
        (
            s.level.to_owned(),
            s.next.map(|n| {
                n.failing
                    .iter()
                    .map(|r| format!("{}:{}", n.level, r.id))
                    .collect()
            }),
        )
    }

    use Outcome::*;

    #[test]
    fn passing_everything_reaches_the_top() {
        let def = definition();
        let (level, next) = level_of(&def, &[("b1", Pass), ("b2", Pass), ("g1", Pass)]);
        assert_eq!(level, "Gold");
        assert_eq!(next, None);
    }

    #[test]
    fn a_level_without_rules_is_reached_when_the_lower_ones_are() {
        let def = definition();
        let (level, next) = level_of(&def, &[("b1", Pass), ("b2", Pass), ("g1", Fail)]);
        assert_eq!(level, "Silver", "Silver has no rules of its own");
        assert_eq!(next, Some(vec!["Gold:g1".to_owned()]));
    }

    #[test]
    fn the_gap_case_falls_to_the_floor() {
        let def = definition();
        let (level, next) = level_of(&def, &[("b1", Pass), ("b2", Fail), ("g1", Pass)]);
        assert_eq!(
            level, "Basic",
            "passing Gold does not make up for a Bronze failure"
        );
        assert_eq!(next, Some(vec!["Bronze:b2".to_owned()]));
    }

    #[test]
    fn next_level_lists_every_failing_rule_of_the_lowest_level_not_reached() {
        let def = definition();
        let (level, next) = level_of(&def, &[("b1", Fail), ("b2", Error), ("g1", Fail)]);
        assert_eq!(level, "Basic");
        assert_eq!(
            next,
            Some(vec!["Bronze:b1".to_owned(), "Bronze:b2".to_owned()]),
            "only the lowest level's failures, in definition order"
        );
    }

    #[test]
    fn errors_and_missing_outcomes_count_as_failures() {
        let def = definition();
        assert_eq!(
            level_of(&def, &[("b1", Pass), ("b2", Pass), ("g1", Error)]).0,
            "Silver"
        );
        let (level, next) = level_of(&def, &[("b1", Pass), ("g1", Pass)]);
        assert_eq!(level, "Basic", "b2 was never evaluated");
        assert_eq!(next, Some(vec!["Bronze:b2".to_owned()]));
    }

    #[test]
    fn exemptions_count_as_passes() {
        let def = definition();
        let (level, next) = level_of(&def, &[("b1", Exempt), ("b2", Pass), ("g1", Exempt)]);
        assert_eq!(level, "Gold");
        assert_eq!(next, None);
        assert_eq!(Fail.with_exemption(true), Exempt);
        assert_eq!(Error.with_exemption(true), Exempt);
        assert_eq!(Pass.with_exemption(true), Pass, "a moot exemption shows");
        assert_eq!(Fail.with_exemption(false), Fail);
    }

    #[test]
    fn a_scorecard_without_rules_puts_everyone_at_the_top() {
        let def = ScorecardDefinition::from_value(json!({
            "id": "empty", "title": "Empty", "levels": ["Listed", "Reviewed"]
        }))
        .unwrap();
        let s = standing(&def, |_| None);
        assert_eq!((s.index, s.level, s.next), (1, "Reviewed", None));
        let floor_only = ScorecardDefinition::from_value(json!({
            "id": "floor", "title": "Floor", "levels": ["Listed"]
        }))
        .unwrap();
        assert_eq!(standing(&floor_only, |_| None).level, "Listed");
    }

    #[test]
    fn failing_the_first_level_above_the_floor_gives_the_floor_and_its_index() {
        let def = definition();
        let map = outcomes(&[("b1", Fail), ("b2", Pass), ("g1", Pass)]);
        let s = standing(&def, |r| map.get(r).copied());
        assert_eq!(s.index, 0);
        let next = s.next.unwrap();
        assert_eq!((next.index, next.level), (1, "Bronze"));
    }

    #[test]
    fn outcomes_map_to_stored_statuses_and_back() {
        for o in [Pass, Fail, Error, Exempt] {
            assert_eq!(Outcome::from(ResultStatus::from(o)), o);
        }
    }
}
