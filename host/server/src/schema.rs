//! JSON Schema checks of values people send (a rule's parameters, later a
//! template's parameters and an action's input) against the schemas
//! plugins describe. Schemas come from plugins and are untrusted: a schema
//! that does not compile is reported as the plugin's fault, and references
//! are never fetched (the validator is built without remote or file
//! resolution).

use serde_json::Value;

/// One way a value falls short of its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    /// JSON pointer into the value (`""` for the value itself).
    pub pointer: String,
    pub message: String,
}

/// Why a value could not be checked or did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaError {
    /// The schema itself is not a usable JSON Schema.
    BadSchema(String),
    /// The value breaks the schema; every problem found.
    Invalid(Vec<SchemaProblem>),
}

/// The most problems reported for one value.
const MAX_PROBLEMS: usize = 50;

/// Checks `value` against `schema`, reporting every problem with the JSON
/// pointer of the value at fault.
pub fn validate(schema: &Value, value: &Value) -> Result<(), SchemaError> {
    let validator =
        jsonschema::validator_for(schema).map_err(|e| SchemaError::BadSchema(e.to_string()))?;
    let problems: Vec<SchemaProblem> = validator
        .iter_errors(value)
        .take(MAX_PROBLEMS)
        .map(|e| SchemaProblem {
            pointer: e.instance_path().to_string(),
            message: e.to_string(),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Invalid(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_field_at_fault() {
        let schema = json!({
            "type": "object",
            "properties": {"annotation": {"type": "string"}, "min": {"type": "integer", "minimum": 1}},
            "required": ["annotation"],
            "additionalProperties": false
        });
        assert_eq!(validate(&schema, &json!({"annotation": "a/b"})), Ok(()));
        let Err(SchemaError::Invalid(problems)) =
            validate(&schema, &json!({"min": 0, "extra": true}))
        else {
            panic!("expected problems")
        };
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert!(pointers.contains(&"/min"), "{problems:?}");
        assert!(pointers.contains(&""), "{problems:?}");
        assert!(problems.iter().any(|p| p.message.contains("annotation")));
    }

    #[test]
    fn a_broken_schema_is_the_schema_authors_fault() {
        assert!(matches!(
            validate(&json!({"type": "no-such-type"}), &json!(1)),
            Err(SchemaError::BadSchema(_))
        ));
    }
}
