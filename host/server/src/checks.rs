//! The scorecard-check plugins as the server sees them: the checks a
//! plugin offers and one call of a check on a batch of entities. The only
//! place that speaks the runtime's check API, so that the rest of the
//! server does not depend on its shape.

use portolan_runtime::model::{CheckStatus, Entity as PluginEntity};
use portolan_runtime::{CallError, Plugin};
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

/// The check id a plugin with a single, unnamed check offers.
pub const SINGLE_CHECK: &str = "default";

/// The checks `plugin` offers.
pub fn offers(plugin: &Plugin) -> Vec<CheckOffer> {
    let d = &plugin.description;
    let kinds = d
        .details
        .get("entityKinds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    vec![CheckOffer {
        id: SINGLE_CHECK.to_owned(),
        title: d.title.clone(),
        description: d.description.clone(),
        entity_kinds: kinds,
        parameters_schema: d
            .details
            .get("parametersSchema")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"type": "object"})),
    }]
}

/// Calls `check` of `plugin` on a batch: one answer per entity, in order.
/// Blocking: call it on the blocking pool.
pub fn evaluate(
    plugin: &Plugin,
    check: &str,
    parameters: &Value,
    entities: &[PluginEntity],
) -> Result<Vec<CheckAnswer>, CallError> {
    if check != SINGLE_CHECK {
        return Err(CallError::Plugin {
            code: "unknown-check".to_owned(),
            field: None,
            message: format!("the plugin offers no check {check:?}"),
        });
    }
    let report = plugin.evaluate(parameters, entities);
    Ok(report
        .result?
        .into_iter()
        .map(|o| CheckAnswer {
            outcome: match o.status {
                CheckStatus::Pass => Outcome::Pass,
                CheckStatus::Fail => Outcome::Fail,
                CheckStatus::Skip => Outcome::Skip,
            },
            message: o.message,
            value: o.value,
        })
        .collect())
}
