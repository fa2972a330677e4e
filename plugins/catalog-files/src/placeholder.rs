//! Backstage's placeholders: `{$text: path}`, `{$json: path}` and
//! `{$yaml: path}` anywhere in a descriptor.
//!
//! A mapping with exactly one key, and that key one of the three, is replaced
//! by the named file's text or by its parsed JSON or YAML value. Any other
//! mapping, including one with a `$`-key next to other keys, is plain data,
//! as in Backstage. The loaded content is not searched for placeholders
//! again, so a file can never include itself.

use serde_json::Value;

/// Which placeholder a mapping is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    /// `$text`: the file as a string.
    Text,
    /// `$json`: the file parsed as JSON.
    Json,
    /// `$yaml`: the file parsed as YAML (one document).
    Yaml,
}

impl Placeholder {
    fn from_key(key: &str) -> Option<Placeholder> {
        match key {
            "$text" => Some(Placeholder::Text),
            "$json" => Some(Placeholder::Json),
            "$yaml" => Some(Placeholder::Yaml),
            _ => None,
        }
    }

    /// The key as written, e.g. `$text`.
    pub fn key(self) -> &'static str {
        match self {
            Placeholder::Text => "$text",
            Placeholder::Json => "$json",
            Placeholder::Yaml => "$yaml",
        }
    }
}

/// A placeholder that could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceholderError {
    /// Where in the descriptor, as a dotted path (`spec.definition`).
    pub field: String,
    /// What went wrong, e.g. `$text ../x.yaml: leads outside ...`.
    pub reason: String,
}

/// Replaces every placeholder in `value`. `load` gets the kind of placeholder
/// and the path as written and returns the replacement, or why it cannot.
pub fn resolve(
    value: &mut Value,
    load: &mut dyn FnMut(Placeholder, &str) -> Result<Value, String>,
) -> Result<(), PlaceholderError> {
    walk(value, &mut String::new(), load)
}

fn walk(
    value: &mut Value,
    field: &mut String,
    load: &mut dyn FnMut(Placeholder, &str) -> Result<Value, String>,
) -> Result<(), PlaceholderError> {
    match value {
        Value::Object(map) => {
            if map.len() == 1 {
                let (key, target) = map.iter().next().expect("one entry");
                if let Some(placeholder) = Placeholder::from_key(key) {
                    let Value::String(target) = target else {
                        return Err(PlaceholderError {
                            field: field.clone(),
                            reason: format!("{} must name a file as a string", placeholder.key()),
                        });
                    };
                    let replacement =
                        load(placeholder, target).map_err(|reason| PlaceholderError {
                            field: field.clone(),
                            reason: format!("{} {target}: {reason}", placeholder.key()),
                        })?;
                    *value = replacement;
                    return Ok(());
                }
            }
            for (key, child) in map.iter_mut() {
                let len = field.len();
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
                walk(child, field, load)?;
                field.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                let len = field.len();
                field.push_str(&format!("[{i}]"));
                walk(child, field, load)?;
                field.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Parses the text of a `$json` or `$yaml` file; the error has the line and
/// column when the parser gives them.
pub fn parse(placeholder: Placeholder, text: &str) -> Result<Value, String> {
    match placeholder {
        Placeholder::Text => Ok(Value::String(text.to_owned())),
        Placeholder::Json => serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}")),
        Placeholder::Yaml => {
            serde_norway::from_str(text).map_err(|e| format!("not valid YAML: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn files(placeholder: Placeholder, path: &str) -> Result<Value, String> {
        let text = match path {
            "./openapi.yaml" => "openapi: 3.0.3\npaths:\n  /x:\n    get:\n      responses:\n        200:\n          description: ok\n",
            "schema.json" => "{\"type\": \"object\"}",
            "broken.json" => "{\n  \"type\": \n}",
            "broken.yaml" => "a: [unclosed\n",
            _ => return Err("not found".into()),
        };
        parse(placeholder, text)
    }

    #[test]
    fn placeholders_are_replaced_anywhere() {
        let mut descriptor = json!({
            "kind": "API",
            "metadata": {"name": "x", "description": {"$text": "./openapi.yaml"}},
            "spec": {
                "definition": {"$text": "./openapi.yaml"},
                "schemas": [{"$json": "schema.json"}, {"inline": true}],
                "parsed": {"$yaml": "./openapi.yaml"},
                // Not a placeholder: two keys, or an unknown `$` key.
                "two": {"$text": "a", "other": 1},
                "unknown": {"$ref": "#/x"}
            }
        });
        let mut seen = Vec::new();
        resolve(&mut descriptor, &mut |p, path| {
            seen.push((p, path.to_owned()));
            files(p, path)
        })
        .unwrap();
        assert_eq!(seen.len(), 4);
        let spec = &descriptor["spec"];
        assert!(spec["definition"]
            .as_str()
            .unwrap()
            .starts_with("openapi: 3.0.3\n"));
        assert_eq!(descriptor["metadata"]["description"], spec["definition"]);
        assert_eq!(
            spec["schemas"],
            json!([{"type": "object"}, {"inline": true}])
        );
        // YAML with a number as a key (OpenAPI status codes) reads as JSON.
        assert_eq!(
            spec["parsed"]["paths"]["/x"]["get"]["responses"]["200"]["description"],
            "ok"
        );
        assert_eq!(spec["two"], json!({"$text": "a", "other": 1}));
        assert_eq!(spec["unknown"], json!({"$ref": "#/x"}));
    }

    #[test]
    fn errors_name_the_field_and_the_file() {
        let mut load = |p, path: &str| files(p, path);
        let mut descriptor =
            json!({"spec": {"apis": [{}, {"definition": {"$text": "nope.yaml"}}]}});
        let err = resolve(&mut descriptor, &mut load).unwrap_err();
        assert_eq!(err.field, "spec.apis[1].definition");
        assert_eq!(err.reason, "$text nope.yaml: not found");

        let mut descriptor = json!({"spec": {"definition": {"$json": 3}}});
        let err = resolve(&mut descriptor, &mut load).unwrap_err();
        assert_eq!(err.reason, "$json must name a file as a string");

        let mut descriptor = json!({"spec": {"schema": {"$json": "broken.json"}}});
        let err = resolve(&mut descriptor, &mut load).unwrap_err();
        assert!(
            err.reason.starts_with("$json broken.json: not valid JSON:")
                && err.reason.contains("line 3"),
            "{}",
            err.reason
        );

        let mut descriptor = json!({"spec": {"schema": {"$yaml": "broken.yaml"}}});
        let err = resolve(&mut descriptor, &mut load).unwrap_err();
        assert!(err.reason.contains("line "), "{}", err.reason);
    }
}
