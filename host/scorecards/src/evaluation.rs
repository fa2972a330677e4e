//! From the checks' answers for one entity to what the store keeps: each
//! rule's outcome after exemptions, and the level they give.

use std::collections::HashMap;

use portolan_store::{EntityEvaluation, NewRuleResult};
use serde_json::Value;

use crate::definition::ScorecardDefinition;
use crate::exemption::ActiveExemptions;
use crate::levels::{standing, Outcome};

/// What a check said about one entity, before exemptions.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckAnswer {
    /// [`Outcome::Pass`], [`Outcome::Fail`] or [`Outcome::Error`]; a check
    /// that says [`Outcome::Exempt`] is taken at its word.
    pub outcome: Outcome,
    pub message: Option<String>,
    /// What the check measured, if anything.
    pub value: Option<Value>,
}

/// The message of a rule the evaluator has no answer for.
pub const NOT_EVALUATED: &str = "not evaluated: the check gave no answer for this entity";

/// One entity's evaluation on `definition`: every rule's answer from
/// `answers` (by rule id; a missing answer is an error), turned into
/// [`Outcome::Exempt`] where `exemptions` covers a rule that does not pass,
/// and the level those outcomes give.
pub fn evaluate_entity(
    definition: &ScorecardDefinition,
    entity_ref: &str,
    answers: &HashMap<&str, CheckAnswer>,
    exemptions: &ActiveExemptions,
) -> EntityEvaluation {
    let results: Vec<NewRuleResult> = definition
        .rules
        .iter()
        .map(|rule| {
            let (outcome, message, value) = match answers.get(rule.id.as_str()) {
                Some(a) => (a.outcome, a.message.clone(), a.value.clone()),
                None => (Outcome::Error, Some(NOT_EVALUATED.to_owned()), None),
            };
            NewRuleResult {
                rule_id: rule.id.clone(),
                status: outcome
                    .with_exemption(exemptions.covers(entity_ref, &rule.id))
                    .into(),
                message,
                value,
            }
        })
        .collect();
    let outcomes: HashMap<&str, Outcome> = results
        .iter()
        .map(|r| (r.rule_id.as_str(), Outcome::from(r.status)))
        .collect();
    let level = standing(definition, |id| outcomes.get(id).copied())
        .level
        .to_owned();
    EntityEvaluation {
        entity_ref: entity_ref.to_lowercase(),
        level,
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exemption::Exemption;
    use chrono::{Duration, Utc};
    use portolan_store::ResultStatus;
    use serde_json::json;

    fn definition() -> ScorecardDefinition {
        ScorecardDefinition::from_value(json!({
            "id": "readiness", "title": "Readiness",
            "rules": [
                {"id": "owner", "title": "Owner", "level": "Bronze", "check": "p/owner"},
                {"id": "docs", "title": "Docs", "level": "Silver", "check": "p/docs"},
                {"id": "slo", "title": "SLO", "level": "Gold", "check": "p/slo"}
            ]
        }))
        .unwrap()
    }

    fn answer(outcome: Outcome) -> CheckAnswer {
        CheckAnswer {
            outcome,
            message: (outcome != Outcome::Pass).then(|| "no".to_owned()),
            value: Some(json!(1)),
        }
    }

    #[test]
    fn exemptions_lift_failing_rules_and_missing_answers_are_errors() {
        let now = Utc::now();
        let exemption = Exemption {
            entity_ref: "component:default/web".into(),
            rule_id: "owner".into(),
            reason: "reorg".into(),
            expires_at: now + Duration::days(1),
            created_by: "alice".into(),
        };
        let active = ActiveExemptions::at([&exemption], now);
        let answers = HashMap::from([
            ("owner", answer(Outcome::Fail)),
            ("docs", answer(Outcome::Pass)),
        ]);
        let e = evaluate_entity(&definition(), "Component:default/Web", &answers, &active);
        assert_eq!(e.entity_ref, "component:default/web");
        let statuses: Vec<(&str, ResultStatus)> = e
            .results
            .iter()
            .map(|r| (r.rule_id.as_str(), r.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("owner", ResultStatus::Exempt),
                ("docs", ResultStatus::Pass),
                ("slo", ResultStatus::Error)
            ]
        );
        assert_eq!(
            e.results[0].message.as_deref(),
            Some("no"),
            "the check's word is kept"
        );
        assert_eq!(e.results[2].message.as_deref(), Some(NOT_EVALUATED));
        assert_eq!(e.level, "Silver");

        // Without the exemption the failing Bronze rule holds it at the floor.
        let none = ActiveExemptions::default();
        let e = evaluate_entity(&definition(), "component:default/web", &answers, &none);
        assert_eq!(e.results[0].status, ResultStatus::Fail);
        assert_eq!(e.level, "Basic");
    }
}
