//! The scorecard-check plugins as the server sees them: the checks a
//! plugin offers and one call of a check on a batch of entities. The only
//! place that speaks the runtime's check API, so that the rest of the
//! server does not depend on its shape.

use portolan_runtime::model::{CheckOutcome, CheckStatus};
use portolan_runtime::{CallError, EntityBatch, Plugin, RuleCall};
use portolan_scorecards::{CheckAnswer, Outcome};
use serde::Serialize;
use serde_json::Value;

/// One check a plugin offers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckOffer {
    pub id: String,
    pub title: String,
    pub description: String,
    /// The kinds the check looks at, as the plugin wrote them; empty means
    /// every kind.
    pub entity_kinds: Vec<String>,
    pub parameters_schema: Value,
}

/// The checks `plugin` offers (none if it is not a check plugin).
pub fn offers(plugin: &Plugin) -> Vec<CheckOffer> {
    plugin
        .checks()
        .iter()
        .map(|c| CheckOffer {
            id: c.id.clone(),
            title: c.title.clone(),
            description: c.description.clone(),
            entity_kinds: c.entity_kinds.clone(),
            parameters_schema: c.parameters_schema.clone(),
        })
        .collect()
}

/// Calls `check` of `plugin` on a batch: one answer per entity, in order.
/// Blocking: call it on the blocking pool. Share one batch between the
/// rules that evaluate the same entities: it converts them once.
pub fn evaluate(
    plugin: &Plugin,
    check: &str,
    parameters: &Value,
    entities: &EntityBatch<'_>,
) -> Result<Vec<CheckAnswer>, CallError> {
    let report = plugin.evaluate_batch(check, parameters, entities);
    Ok(report.result?.into_iter().map(answer).collect())
}

/// What [`evaluate_rules`] answered.
pub struct RulesAnswer {
    /// One per rule, in order.
    pub results: Vec<Result<Vec<CheckAnswer>, CallError>>,
    /// Calls made to the plugin.
    pub calls: usize,
    /// Why a call for several rules failed as a whole, when the rules
    /// were then evaluated one by one.
    pub split: Option<CallError>,
}

/// Calls several rules (`(check, parameters)`) of `plugin` on one batch,
/// together when the plugin's contract allows: one result per rule, in
/// order, each as [`evaluate`] would give it. Blocking, like `evaluate`.
pub fn evaluate_rules(
    plugin: &Plugin,
    rules: &[(String, Value)],
    entities: &EntityBatch<'_>,
) -> RulesAnswer {
    let calls: Vec<RuleCall<'_>> = rules
        .iter()
        .map(|(check, parameters)| RuleCall { check, parameters })
        .collect();
    let report = plugin.evaluate_rules(&calls, entities);
    RulesAnswer {
        results: report
            .results
            .into_iter()
            .map(|r| r.map(|outcomes| outcomes.into_iter().map(answer).collect()))
            .collect(),
        calls: report.calls,
        split: report.split,
    }
}

/// A plugin's outcome as a scorecard answer.
fn answer(o: CheckOutcome) -> CheckAnswer {
    CheckAnswer {
        outcome: match o.status {
            CheckStatus::Pass => Outcome::Pass,
            CheckStatus::Fail => Outcome::Fail,
            CheckStatus::Skip => Outcome::Skip,
            CheckStatus::Error => Outcome::Error,
        },
        message: o.message,
        value: o.value,
    }
}
