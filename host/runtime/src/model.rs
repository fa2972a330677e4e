//! Plain Rust shapes of what crosses the plugin contract.
//!
//! The generated binding types are an implementation detail of this crate;
//! the rest of the host speaks these serde types, which mirror Backstage's
//! descriptor format on the wire (`apiVersion`, `kind`, `metadata`, `spec`,
//! `relations`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings::types as wit;

/// A catalog entity in Backstage's descriptor shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default = "empty_object")]
    pub spec: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation>,
}

/// An entity's `metadata` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
}

/// A link shown with an entity, a run or a result.
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

/// A directed relation to another entity (`targetRef` is `kind:namespace/name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    #[serde(rename = "type")]
    pub kind: String,
    pub target_ref: String,
}

/// A scorecard check's verdict for one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    Skip,
}

/// A scorecard check's result for one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub status: CheckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// One page of a catalog source's sync.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncPage {
    pub entities: Vec<Entity>,
    pub next_cursor: Option<String>,
    pub total_hint: Option<u64>,
}

/// A file produced by a scaffold generator.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedFile {
    pub path: String,
    pub content: Vec<u8>,
    pub executable: bool,
}

/// What a scaffold generator produced.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorOutput {
    pub files: Vec<GeneratedFile>,
    pub entity: Option<Entity>,
    pub links: Vec<Link>,
    pub messages: Vec<String>,
}

/// The input of one action run.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionInvocation {
    pub run_id: String,
    pub input: Value,
    pub entity: Option<Entity>,
}

/// What a successful action run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOutcome {
    pub output: Value,
    pub links: Vec<Link>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn default_namespace() -> String {
    "default".to_owned()
}

/// JSON text of a value. `serde_json::to_string` writes straight into a
/// buffer; `Value::to_string` goes through `fmt::Formatter` and is about 3x
/// slower, which shows on every plugin call (benches/runtime.rs).
pub(crate) fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// Parses JSON text a plugin returned, naming the field when it is not JSON.
pub(crate) fn parse_json(field: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{field} is not valid JSON: {e}"))
}

impl From<&Entity> for wit::Entity {
    fn from(e: &Entity) -> Self {
        wit::Entity {
            api_version: e.api_version.clone(),
            kind: e.kind.clone(),
            namespace: e.metadata.namespace.clone(),
            name: e.metadata.name.clone(),
            title: e.metadata.title.clone(),
            description: e.metadata.description.clone(),
            labels: pairs(&e.metadata.labels),
            annotations: pairs(&e.metadata.annotations),
            tags: e.metadata.tags.clone(),
            links: e.metadata.links.iter().map(Into::into).collect(),
            spec: json_text(&e.spec),
            relations: e
                .relations
                .iter()
                .map(|r| wit::Relation {
                    type_: r.kind.clone(),
                    target: r.target_ref.clone(),
                })
                .collect(),
        }
    }
}

fn pairs(map: &BTreeMap<String, String>) -> Vec<wit::Pair> {
    map.iter()
        .map(|(k, v)| wit::Pair {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

impl TryFrom<wit::Entity> for Entity {
    type Error = String;

    fn try_from(e: wit::Entity) -> Result<Self, String> {
        let spec = if e.spec.trim().is_empty() {
            empty_object()
        } else {
            parse_json("spec", &e.spec)?
        };
        let namespace = if e.namespace.is_empty() {
            default_namespace()
        } else {
            e.namespace
        };
        Ok(Entity {
            api_version: e.api_version,
            kind: e.kind,
            metadata: Metadata {
                name: e.name,
                namespace,
                title: e.title,
                description: e.description,
                labels: e.labels.into_iter().map(|p| (p.key, p.value)).collect(),
                annotations: e
                    .annotations
                    .into_iter()
                    .map(|p| (p.key, p.value))
                    .collect(),
                tags: e.tags,
                links: e.links.into_iter().map(Into::into).collect(),
            },
            spec,
            relations: e
                .relations
                .into_iter()
                .map(|r| Relation {
                    kind: r.type_,
                    target_ref: r.target,
                })
                .collect(),
        })
    }
}

impl From<&Link> for wit::Link {
    fn from(l: &Link) -> Self {
        wit::Link {
            url: l.url.clone(),
            title: l.title.clone(),
            icon: l.icon.clone(),
            type_: l.kind.clone(),
        }
    }
}

impl From<wit::Link> for Link {
    fn from(l: wit::Link) -> Self {
        Link {
            url: l.url,
            title: l.title,
            icon: l.icon,
            kind: l.type_,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backstage_descriptor_round_trips_through_the_contract() {
        let yaml_like = serde_json::json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {
                "name": "payments",
                "labels": {"tier": "1"},
                "tags": ["java"],
                "links": [{"url": "https://runbooks/payments", "title": "Runbook"}]
            },
            "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}
        });
        let entity: Entity = serde_json::from_value(yaml_like).unwrap();
        assert_eq!(entity.metadata.namespace, "default");
        let back = Entity::try_from(wit::Entity::from(&entity)).unwrap();
        assert_eq!(back, entity);
    }

    #[test]
    fn spec_that_is_not_json_is_refused_with_the_field_named() {
        let mut e = wit::Entity::from(&Entity {
            api_version: "v1".into(),
            kind: "Component".into(),
            metadata: serde_json::from_value(serde_json::json!({"name": "x"})).unwrap(),
            spec: empty_object(),
            relations: vec![],
        });
        e.spec = "{not json".into();
        let err = Entity::try_from(e).unwrap_err();
        assert!(err.starts_with("spec is not valid JSON"), "{err}");
    }
}
