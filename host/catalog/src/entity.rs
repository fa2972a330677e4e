//! [`Entity`]: a catalog entity in Backstage's descriptor shape.
//!
//! Build one from untrusted input with [`Entity::from_value`] (see
//! [`crate::validate`]), which checks everything and fills in defaults;
//! the fields are public so that trusted code (the store) can rebuild one
//! from what it wrote.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::reference::{EntityRef, DEFAULT_NAMESPACE};

/// Metadata fields the catalog computes, so they are dropped from input:
/// a client that GETs an entity and PUTs it back unchanged must not change
/// its revision.
pub const COMPUTED_METADATA: &[&str] = &["uid", "etag", "generation"];

/// A catalog entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub spec: Map<String, Value>,
    /// Computed by the catalog from the specs of this and other entities
    /// (see [`crate::relations`]); whatever a client sends here is ignored,
    /// as in Backstage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation>,
    /// Other top-level fields (e.g. `status`), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An entity's `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Other metadata fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A link shown with an entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A relation from the entity that carries it to `target_ref`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    /// `ownedBy`, `dependsOn`, ... (see [`crate::relations`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// `kind:namespace/name` as Backstage writes it.
    pub target_ref: String,
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_owned()
}

impl Entity {
    /// This entity's reference.
    pub fn entity_ref(&self) -> EntityRef {
        EntityRef::new(&self.kind, &self.metadata.namespace, &self.metadata.name)
    }

    /// A spec field that is a string, if it is one (`type`, `lifecycle`).
    pub fn spec_str(&self, field: &str) -> Option<&str> {
        self.spec.get(field).and_then(Value::as_str)
    }

    /// The revision of what was sent: a SHA-256 over the entity without its
    /// relations and computed metadata, in a canonical form (object keys
    /// sorted, no whitespace), so it changes exactly when the content does.
    pub fn etag(&self) -> String {
        etag_of(&self.body())
    }

    /// The entity as JSON without its relations: what the store keeps.
    pub fn body(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("an entity always serialises");
        if let Some(obj) = value.as_object_mut() {
            obj.remove("relations");
        }
        value
    }

    /// What the store keeps of this entity: its [`Entity::body`] as JSON
    /// text (object keys sorted, no whitespace), with its [`Entity::etag`].
    /// One serialisation serves both, where `body` and `etag` apart take
    /// three; a batch write hashes every entity and stores the new ones.
    pub fn stored_form(&self) -> (String, String) {
        let body = self.body();
        let text = canonical(&body);
        let etag = if has_computed_metadata(&body) {
            etag_of(&body)
        } else {
            etag_of_canonical(&text)
        };
        let text = String::from_utf8(text).expect("serde_json writes UTF-8");
        (text, etag)
    }
}

/// [`Entity::etag`] of an entity's [`Entity::body`], for callers that have
/// the body already.
pub fn etag_of(body: &Value) -> String {
    if has_computed_metadata(body) {
        let mut value = body.clone();
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in COMPUTED_METADATA {
                meta.remove(*key);
            }
        }
        etag_of_canonical(&canonical(&value))
    } else {
        etag_of_canonical(&canonical(body))
    }
}

fn has_computed_metadata(body: &Value) -> bool {
    body.get("metadata")
        .and_then(Value::as_object)
        .is_some_and(|meta| COMPUTED_METADATA.iter().any(|key| meta.contains_key(*key)))
}

fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_canonical(value, &mut out);
    out
}

fn etag_of_canonical(canonical: &[u8]) -> String {
    hex::encode(&Sha256::digest(canonical)[..16])
}

/// JSON with object keys sorted at every level, whatever map type
/// serde_json was built with (another crate may turn on `preserve_order`).
/// Keys and scalars are written by serde_json itself, straight into `out`.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("a string always serialises");
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a scalar always serialises"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entity(v: Value) -> Entity {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_stored_form_is_the_body_with_its_etag() {
        let plain = Entity::from_value(json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "web", "tags": ["b", "a"], "annotations": {"z": "1", "a": "2"}},
            "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/team-a"}]
        }))
        .unwrap();
        let mut computed = plain.clone();
        computed.metadata.extra.insert("uid".into(), "1234".into());
        for entity in [plain, computed] {
            let (text, etag) = entity.stored_form();
            assert_eq!(etag, entity.etag());
            let parsed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, entity.body());
            assert!(!text.contains("relations"));
        }
    }

    #[test]
    fn etag_ignores_key_order_relations_and_computed_metadata() {
        let a = entity(json!({
            "apiVersion": "v1", "kind": "Thing",
            "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}},
            "spec": {"b": 1, "a": {"d": 2, "c": 3}}
        }));
        let b = entity(json!({
            "kind": "Thing", "apiVersion": "v1",
            "spec": {"a": {"c": 3, "d": 2}, "b": 1},
            "metadata": {"labels": {"y": "2", "x": "1"}, "name": "a", "etag": "old", "uid": "u"},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/x"}]
        }));
        assert_eq!(a.etag(), b.etag());
        assert_eq!(a.etag().len(), 32);
        let c = entity(json!({
            "apiVersion": "v1", "kind": "Thing",
            "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}},
            "spec": {"b": 2, "a": {"d": 2, "c": 3}}
        }));
        assert_ne!(a.etag(), c.etag());
    }

    #[test]
    fn etag_is_pinned() {
        // Stored etags must not change when the code computing them does:
        // a client's If-Match and a source's unchanged resync rely on them.
        let e = entity(json!({
            "apiVersion": "v1", "kind": "Thing",
            "metadata": {"name": "a", "tags": ["x"], "description": "quote \" and \u{e9}"},
            "spec": {"n": 1.5, "b": true, "z": null, "list": [1, "two", {"k": "v"}]}
        }));
        assert_eq!(e.etag(), "78a5d41e259dab52e5cc6f3fab0632b2");
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let v = json!({
            "apiVersion": "v1", "kind": "Thing",
            "metadata": {"name": "a", "namespace": "default", "custom": {"k": 1}},
            "status": {"items": []}
        });
        let e = entity(v.clone());
        assert_eq!(e.metadata.extra["custom"], json!({"k": 1}));
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
    }
}
