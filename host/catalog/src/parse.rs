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

/// Where each element of a JSON array lies in `bytes`, when `bytes` is
/// one: byte ranges, in order, that can be parsed apart (and so on several
/// cores) into the same values a parse of the whole array gives.
///
/// Only the array's own structure is checked: strings (with their escapes)
/// and brackets are followed to find the commas between elements, and the
/// elements themselves are left to the parser. `None` for anything else (an
/// object, or an array that is cut short or followed by more than
/// whitespace); a parse of the whole body then says what is wrong with it.
/// An element that is empty or malformed (`[1,,2]`, `[{]`) comes back as
/// its range, for the element's own parse to refuse.
pub fn json_array_items(bytes: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let mut at = skip_json_space(bytes, 0);
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    at += 1;
    let mut items = Vec::new();
    let first = skip_json_space(bytes, at);
    if bytes.get(first) == Some(&b']') {
        return (skip_json_space(bytes, first + 1) == bytes.len()).then_some(items);
    }
    let mut start = at;
    // Brackets open within the current element.
    let mut depth = 0usize;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                // To the closing quote, stepping over escaped characters.
                at += 1;
                loop {
                    at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
                    if bytes[at] == b'"' {
                        break;
                    }
                    at += 2;
                }
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' if depth > 0 => depth -= 1,
            b']' => {
                items.push(start..at);
                return (skip_json_space(bytes, at + 1) == bytes.len()).then_some(items);
            }
            b'}' => return None,
            b',' if depth == 0 => {
                items.push(start..at);
                start = at + 1;
            }
            _ => {}
        }
        at += 1;
    }
    None
}

/// The index of the first byte at or after `at` that is not JSON
/// whitespace.
fn skip_json_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
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
    fn array_items_parse_apart_as_they_do_together() {
        let body = br#" [ {"kind":"A","s":"a, \"quoted\" ] } [ text\\"},
            {"kind":"B","list":[1,[2,{"x":"]"}]]} ,{"kind":"C"}] "#;
        let items = json_array_items(body).expect("an array");
        let apart: Vec<Value> = items
            .iter()
            .map(|r| serde_json::from_slice(&body[r.clone()]).unwrap())
            .collect();
        let together: Vec<Value> = serde_json::from_slice(body).unwrap();
        assert_eq!(apart, together);
        assert_eq!(apart.len(), 3);

        assert_eq!(json_array_items(b"[]"), Some(vec![]));
        assert_eq!(json_array_items(b" [ ]\n"), Some(vec![]));
        // Not arrays, or broken ones: the whole-body parse reports them.
        for body in [
            &b"{\"items\":[]}"[..],
            b"[{\"kind\":\"A\"}",
            b"[{\"kind\":\"A\"}] x",
            b"[\"unterminated]",
            b"[{\"a\":1}}]",
            b"",
        ] {
            assert_eq!(
                json_array_items(body),
                None,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        // A malformed element comes back for its own parse to refuse.
        let body = b"[1,,2]";
        let items = json_array_items(body).expect("an array");
        assert_eq!(items.len(), 3);
        assert!(serde_json::from_slice::<Value>(&body[items[1].clone()]).is_err());
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
