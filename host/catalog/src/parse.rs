//! Reading entity documents from request bodies and files: JSON, or YAML
//! with any number of `---`-separated documents (a Backstage
//! `catalog-info.yaml`).
//!
//! A body may hold one entity, an array of them, or `{"items": [...]}` (the
//! shape the list endpoint answers with); in YAML each document may be any
//! of the three. Empty YAML documents (a leading or trailing `---`) are
//! skipped, as Backstage skips them.

use serde::Deserialize;
use serde_json::Value;

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// A body that is not well-formed JSON or YAML, or holds something other
/// than entities.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document {document}: {message}")]
pub struct ParseError {
    /// Which document (0-based) of a multi-document YAML body; 0 for JSON.
    pub document: usize,
    /// What the parser said, with line and column where it knows them.
    pub message: String,
}

/// One entity document, not yet validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The YAML document it came from (0-based; 0 for JSON).
    pub document: usize,
    pub value: Value,
}

/// Splits a body into entity documents, in order.
pub fn parse_documents(bytes: &[u8], format: Format) -> Result<Vec<Document>, ParseError> {
    let mut out = Vec::new();
    match format {
        Format::Json => {
            let value: Value = serde_json::from_slice(bytes).map_err(|e| ParseError {
                document: 0,
                message: format!("not valid JSON: {e}"),
            })?;
            flatten(0, value, &mut out)?;
        }
        Format::Yaml => {
            for (index, doc) in serde_norway::Deserializer::from_slice(bytes).enumerate() {
                let value = Value::deserialize(doc).map_err(|e| ParseError {
                    document: index,
                    message: format!("not valid YAML: {e}"),
                })?;
                if !value.is_null() {
                    flatten(index, value, &mut out)?;
                }
            }
        }
    }
    Ok(out)
}

/// One entity, a list of them, or `{"items": [...]}`.
fn flatten(document: usize, value: Value, out: &mut Vec<Document>) -> Result<(), ParseError> {
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut map)
            if map.len() == 1 && map.get("items").is_some_and(Value::is_array) =>
        {
            match map.remove("items") {
                Some(Value::Array(items)) => items,
                _ => unreachable!("checked just above"),
            }
        }
        Value::Object(_) => {
            out.push(Document { document, value });
            return Ok(());
        }
        other => {
            return Err(ParseError {
                document,
                message: format!(
                    "expected an entity (an object), a list of entities or {{\"items\": [...]}}, not {}",
                    match other {
                        Value::Null => "null",
                        Value::Bool(_) => "a boolean",
                        Value::Number(_) => "a number",
                        _ => "a string",
                    }
                ),
            })
        }
    };
    out.extend(items.into_iter().map(|value| Document { document, value }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multi_document_yaml_skips_empty_documents() {
        let yaml = b"---\napiVersion: v1\nkind: A\nmetadata:\n  name: a\n---\n# only a comment\n---\n- {apiVersion: v1, kind: B, metadata: {name: b}}\n- {apiVersion: v1, kind: C, metadata: {name: c}}\n";
        let docs = parse_documents(yaml, Format::Yaml).unwrap();
        let kinds: Vec<_> = docs
            .iter()
            .map(|d| (d.document, d.value["kind"].clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![(0, json!("A")), (2, json!("B")), (2, json!("C"))]
        );
    }

    #[test]
    fn json_takes_one_entity_a_list_or_items() {
        for body in [
            r#"{"kind":"A"}"#,
            r#"[{"kind":"A"}]"#,
            r#"{"items":[{"kind":"A"}]}"#,
        ] {
            let docs = parse_documents(body.as_bytes(), Format::Json).unwrap();
            assert_eq!(docs.len(), 1, "{body}");
            assert_eq!(docs[0].value["kind"], "A");
        }
        assert!(parse_documents(b"[]", Format::Json).unwrap().is_empty());
    }

    #[test]
    fn broken_input_names_the_document() {
        let err = parse_documents(b"kind: A\n---\nkind: [unclosed\n", Format::Yaml).unwrap_err();
        assert_eq!(err.document, 1, "{err}");
        assert!(err.message.contains("line"), "{err}");
        let err = parse_documents(b"{\"kind\":", Format::Json).unwrap_err();
        assert_eq!(err.document, 0);
        let err = parse_documents(b"42", Format::Json).unwrap_err();
        assert!(err.message.contains("a number"), "{err}");
        let err = parse_documents(b"a: 1\n---\njust text\n", Format::Yaml).unwrap_err();
        assert_eq!(err.document, 1);
    }
}
