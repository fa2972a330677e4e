//! Scorecard-check plugin `required-fields`: one check, `required-fields`
//! (a rule names it `required-fields/required-fields`, or
//! `<file name>/required-fields` when installed under another name). An
//! entity passes when it fills in every field the rule names.
//!
//! Rule parameters: `{"fields": ["spec.owner", "metadata.description"]}`, dotted
//! paths into the entity's Backstage descriptor (`apiVersion`, `kind`,
//! `metadata.*`, `spec.*`, `relations`). A field counts as filled when it is
//! present and neither null, blank text, an empty list nor an empty mapping.

use portolan_sdk::check::{Error, Outcome, PluginInfo, Rule};
use portolan_sdk::{about, Entity, FieldReader, ScorecardCheck};
use serde_json::{json, Value};

/// The one check this plugin offers.
const CHECK_ID: &str = "required-fields";

struct RequiredFields;

impl ScorecardCheck for RequiredFields {
    fn describe() -> PluginInfo {
        PluginInfo::single(
            CHECK_ID,
            about!(
                "Required fields",
                "Passes when an entity fills in every field the rule names, as dotted paths into \
                 its descriptor (e.g. spec.owner, metadata.description)."
            ),
            json!({
                "type": "object",
                "required": ["fields"],
                "properties": {
                    "fields": {
                        "type": "array",
                        "title": "Fields",
                        "description": "Dotted paths into the entity's descriptor that must be present and non-empty.",
                        "minItems": 1,
                        "items": {"type": "string", "minLength": 1},
                        "examples": [["spec.owner", "metadata.description", "spec.lifecycle"]]
                    }
                },
                "additionalProperties": false
            }),
        )
    }

    fn evaluate(
        _check: &str,
        parameters: Value,
        entities: Vec<Entity>,
    ) -> Result<Vec<Outcome>, Error> {
        let fields = fields(&parameters)?;
        Ok(entities
            .iter()
            .map(|entity| evaluate_one(&entity.fields(), &fields))
            .collect())
    }

    /// All the rules over each entity in turn, so that its `spec` is
    /// parsed once for every rule instead of once per rule.
    fn evaluate_rules(rules: Vec<Rule>, entities: Vec<Entity>) -> Vec<Result<Vec<Outcome>, Error>> {
        let fields: Vec<Result<Vec<String>, Error>> =
            rules.iter().map(|rule| fields(&rule.parameters)).collect();
        let mut outcomes: Vec<Vec<Outcome>> = fields
            .iter()
            .map(|_| Vec::with_capacity(entities.len()))
            .collect();
        for entity in &entities {
            let reader = entity.fields();
            for (rule, fields) in fields.iter().enumerate() {
                if let Ok(fields) = fields {
                    outcomes[rule].push(evaluate_one(&reader, fields));
                }
            }
        }
        fields
            .into_iter()
            .zip(outcomes)
            .map(|(fields, outcomes)| fields.map(|_| outcomes))
            .collect()
    }
}

portolan_sdk::export!(ScorecardCheck for RequiredFields);

/// The rule's field list; the host validated the shape against the schema,
/// but a blank path would silently pass, so it is refused here too.
fn fields(parameters: &Value) -> Result<Vec<String>, Error> {
    let list = parameters
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid_parameter("/fields", "must be a list of dotted paths"))?;
    if list.is_empty() {
        return Err(Error::invalid_parameter(
            "/fields",
            "must name at least one field",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, field)| match field.as_str().map(str::trim) {
            Some(path) if !path.is_empty() => Ok(path.to_owned()),
            _ => Err(Error::invalid_parameter(
                format!("/fields/{i}"),
                "must be a non-empty dotted path",
            )),
        })
        .collect()
}

fn evaluate_one(entity: &FieldReader<'_>, fields: &[String]) -> Outcome {
    let missing: Vec<&str> = fields
        .iter()
        .filter(|f| !is_filled(entity.get(f).as_ref()))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Outcome::pass().with_message(format!("all {} required fields are set", fields.len()))
    } else {
        Outcome::fail(format!("missing or empty: {}", missing.join(", ")))
            .with_value(json!({ "missing": missing }))
    }
}

fn is_filled(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Object(map)) => !map.is_empty(),
        Some(Value::Bool(_) | Value::Number(_)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_sdk::check::Status;
    use portolan_sdk::Pair;

    fn entity() -> Entity {
        let mut entity = Entity::new("Component", "payments");
        entity.description = Some("  ".into());
        entity
            .annotations
            .push(Pair::new("backstage.io/techdocs-ref", "dir:."));
        entity.set_spec(&json!({"owner": "team-a", "lifecycle": "", "ports": [8080]}));
        entity
    }

    #[test]
    fn names_every_missing_field() {
        let fields = [
            "spec.owner",
            "metadata.description",
            "spec.lifecycle",
            "spec.system",
        ]
        .map(String::from);
        let outcome = evaluate_one(&entity().fields(), &fields);
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(
            outcome.message.as_deref(),
            Some("missing or empty: metadata.description, spec.lifecycle, spec.system")
        );
    }

    #[test]
    fn follows_dotted_keys_and_list_indexes() {
        let fields = [
            "metadata.annotations.backstage.io/techdocs-ref",
            "spec.ports.0",
            "kind",
        ]
        .map(String::from);
        assert_eq!(
            evaluate_one(&entity().fields(), &fields).status,
            Status::Pass
        );
    }

    #[test]
    fn rules_together_answer_as_each_rule_alone() {
        let rules: Vec<Rule> = [
            json!({"fields": ["spec.owner"]}),
            json!({"fields": []}),
            json!({"fields": ["spec.lifecycle", "metadata.description"]}),
        ]
        .into_iter()
        .map(|parameters| Rule {
            check: CHECK_ID.into(),
            parameters,
        })
        .collect();
        let mut other = entity();
        other.set_spec(&json!({"lifecycle": "production"}));
        other.description = Some("Pays.".into());
        let entities = vec![entity(), other];
        let together = RequiredFields::evaluate_rules(rules.clone(), entities.clone());
        assert_eq!(together.len(), 3);
        for (rule, answer) in rules.into_iter().zip(together) {
            let alone = RequiredFields::evaluate(CHECK_ID, rule.parameters, entities.clone());
            assert_eq!(answer, alone);
        }
    }

    #[test]
    fn refuses_blank_paths() {
        assert_eq!(
            fields(&json!({"fields": ["spec.owner", " "]})),
            Err(Error::invalid_parameter(
                "/fields/1",
                "must be a non-empty dotted path"
            ))
        );
        assert!(fields(&json!({"fields": []})).is_err());
    }
}
