//! Plain Rust shapes of what crosses the plugin contract.
//!
//! The generated binding types are an implementation detail of this crate
//! (converted in `crate::convert`, one set per contract version); the rest
//! of the host speaks these serde types, which mirror Backstage's
//! descriptor format on the wire (`apiVersion`, `kind`, `metadata`, `spec`,
//! `relations`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// One check a scorecard-check plugin offers, as its `describe` said, with
/// the schema parsed. A plugin built against contract 0.1.0 offers exactly
/// one, [`CheckInfo::LEGACY_ID`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckInfo {
    /// Unique within the plugin: `[a-z0-9-]`, at most 63 characters. A
    /// scorecard rule names it as `plugin-id/check-id`.
    pub id: String,
    pub title: String,
    pub description: String,
    /// The entity kinds the check applies to; empty means any kind. The
    /// runtime passes the plugin only entities of these kinds.
    pub entity_kinds: Vec<String>,
    /// The rule parameters as a JSON Schema object.
    pub parameters_schema: Value,
}

impl CheckInfo {
    /// The id of the one check a 0.1.0 check plugin offers.
    pub const LEGACY_ID: &'static str = "default";

    /// Whether the check applies to entities of `kind`. Kinds compare
    /// case-insensitively, as Backstage compares them.
    pub fn applies_to(&self, kind: &str) -> bool {
        self.entity_kinds.is_empty()
            || self
                .entity_kinds
                .iter()
                .any(|k| k.eq_ignore_ascii_case(kind))
    }
}

/// A scorecard check's verdict for one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// The rule does not apply to this entity; it counts as neither.
    Skip,
    /// The check could not decide for this entity (an external lookup
    /// failed, ...); the message says why. Counts as not passing.
    Error,
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

/// A role in the portal, lowest first: the role an action needs to be
/// started, or to approve a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionRole {
    Viewer,
    Member,
    Admin,
}

/// What an action says about itself beyond its title, as its `describe`
/// said, with the schema parsed. A plugin built against contract 0.1.0
/// applies to any entity of its kinds, needs [`ActionRole::Member`] and no
/// approval.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionInfo {
    /// The entity kinds the action applies to (e.g. `Component`); empty
    /// means the action stands alone, outside any entity.
    pub entity_kinds: Vec<String>,
    /// If not empty, only entities whose `spec.type` is one of these.
    pub entity_types: Vec<String>,
    /// If not empty, only entities that carry at least one of these tags.
    pub entity_tags: Vec<String>,
    /// The input as a JSON Schema object.
    pub input_schema: Value,
    /// The lowest role allowed to start a run.
    pub required_role: ActionRole,
    /// If set, every run waits for the approval of a user with at least
    /// this role, other than the one who started it.
    pub approval: Option<ActionRole>,
}

/// The input of one action run.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionInvocation {
    /// The run's identifier, for logs and idempotency keys.
    pub run_id: String,
    /// Who started the run (the token's name). Not passed to plugins built
    /// against contract 0.1.0.
    pub actor: String,
    /// 1 for the first attempt; a retried run counts up. Not passed to
    /// plugins built against contract 0.1.0.
    pub attempt: u32,
    /// The validated input, a JSON object.
    pub input: Value,
    /// The entity the action was started on, if any.
    pub entity: Option<Entity>,
}

/// What a successful action run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOutcome {
    pub output: Value,
    pub links: Vec<Link>,
}

pub(crate) fn empty_object() -> Value {
    Value::Object(Default::default())
}

pub(crate) fn default_namespace() -> String {
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

/// Parses a form's JSON Schema and records the order its author wrote each
/// object's `properties` in as `ui:order` (the react-jsonschema-form
/// convention), unless the schema names an order itself. A parsed `Value`
/// sorts keys, and forms should follow the author, not the alphabet.
pub(crate) fn parse_schema(field: &str, text: &str) -> Result<Value, String> {
    let mut value = parse_json(field, text)?;
    if let Ok(order) = serde_json::from_str::<KeyOrder>(text) {
        order.apply(&mut value);
    }
    Ok(value)
}

/// The shape of a JSON document with each object's keys in document order.
enum KeyOrder {
    Object(Vec<(String, KeyOrder)>),
    Array(Vec<KeyOrder>),
    Scalar,
}

impl KeyOrder {
    fn apply(&self, value: &mut Value) {
        match (self, value) {
            (KeyOrder::Object(entries), Value::Object(map)) => {
                for (key, order) in entries {
                    if let Some(v) = map.get_mut(key) {
                        order.apply(v);
                    }
                }
                let properties = entries.iter().find(|(k, _)| k == "properties");
                if let (Some((_, KeyOrder::Object(props))), false) =
                    (properties, map.contains_key("ui:order"))
                {
                    if map.get("properties").is_some_and(Value::is_object) {
                        let names: Vec<Value> = props
                            .iter()
                            .map(|(k, _)| Value::String(k.clone()))
                            .collect();
                        map.insert("ui:order".into(), Value::Array(names));
                    }
                }
            }
            (KeyOrder::Array(items), Value::Array(values)) => {
                for (order, v) in items.iter().zip(values.iter_mut()) {
                    order.apply(v);
                }
            }
            _ => {}
        }
    }
}

impl<'de> serde::Deserialize<'de> for KeyOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<KeyOrder, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, KeyOrder>()? {
                    entries.push((k, v));
                }
                Ok(KeyOrder::Object(entries))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<KeyOrder, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = s.next_element::<KeyOrder>()? {
                    items.push(v);
                }
                Ok(KeyOrder::Array(items))
            }
            fn visit_bool<E>(self, _: bool) -> Result<KeyOrder, E> {
                Ok(KeyOrder::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<KeyOrder, E> {
                Ok(KeyOrder::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<KeyOrder, E> {
                Ok(KeyOrder::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<KeyOrder, E> {
                Ok(KeyOrder::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<KeyOrder, E> {
                Ok(KeyOrder::Scalar)
            }
            fn visit_unit<E>(self) -> Result<KeyOrder, E> {
                Ok(KeyOrder::Scalar)
            }
        }
        d.deserialize_any(Visit)
    }
}

#[cfg(test)]
mod order_tests {
    #[test]
    fn property_order_is_recorded_as_ui_order_at_every_level() {
        let text = r#"[{"type":"object","properties":{"zeta":{},"alpha":{"type":"object",
            "properties":{"y":{},"b":{}}},"mid":{}}},
            {"properties":{"b":{},"a":{}},"ui:order":["a","b"]}]"#;
        let v = super::parse_schema("s", text).unwrap();
        assert_eq!(
            v[0]["ui:order"],
            serde_json::json!(["zeta", "alpha", "mid"])
        );
        assert_eq!(
            v[0]["properties"]["alpha"]["ui:order"],
            serde_json::json!(["y", "b"])
        );
        // An order the author gave is kept.
        assert_eq!(v[1]["ui:order"], serde_json::json!(["a", "b"]));
    }
}
