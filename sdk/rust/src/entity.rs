//! The catalog types shared by every role, with helpers for the Backstage
//! descriptor shape.

use std::cell::OnceCell;
use std::fmt;

use serde_json::{Map, Value};

pub use crate::__private::bindings::portolan::plugin::types::{
    About, Entity, Link, Pair, Relation,
};

/// The `apiVersion` of Backstage's core kinds.
const BACKSTAGE_API_VERSION: &str = "backstage.io/v1alpha1";

/// Builds an [`About`] whose version is the calling crate's version
/// (`CARGO_PKG_VERSION`).
///
/// ```ignore
/// let about = portolan_sdk::about!("Required fields", "Checks that entities fill in the fields a scorecard names.");
/// ```
#[macro_export]
macro_rules! about {
    ($title:expr, $description:expr $(,)?) => {
        $crate::About::new($title, ::core::env!("CARGO_PKG_VERSION"), $description)
    };
}

impl About {
    /// A plugin's title, version and one- or two-sentence description.
    pub fn new(
        title: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        About {
            title: title.into(),
            version: version.into(),
            description: description.into(),
        }
    }
}

impl Link {
    /// A link with only a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Link {
            url: url.into(),
            title: None,
            icon: None,
            type_: None,
        }
    }

    /// Sets the text shown instead of the URL.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
}

impl Relation {
    /// A relation of type `type_` (e.g. `ownedBy`) to the full entity
    /// reference `target` (`kind:namespace/name`).
    pub fn new(type_: impl Into<String>, target: impl Into<String>) -> Self {
        Relation {
            type_: type_.into(),
            target: target.into(),
        }
    }
}

impl Pair {
    /// A key and its value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Pair {
            key: key.into(),
            value: value.into(),
        }
    }
}

impl Default for Entity {
    /// An entity of no kind and no name in the `default` namespace, with
    /// `apiVersion: backstage.io/v1alpha1` and an empty `spec`.
    fn default() -> Self {
        Entity {
            api_version: BACKSTAGE_API_VERSION.to_owned(),
            kind: String::new(),
            namespace: "default".to_owned(),
            name: String::new(),
            title: None,
            description: None,
            labels: Vec::new(),
            annotations: Vec::new(),
            tags: Vec::new(),
            links: Vec::new(),
            spec: "{}".to_owned(),
            relations: Vec::new(),
        }
    }
}

impl Entity {
    /// A `backstage.io/v1alpha1` entity of `kind` named `name` in the
    /// `default` namespace; set the other fields directly.
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Entity {
            kind: kind.into(),
            name: name.into(),
            ..Entity::default()
        }
    }

    /// The entity's full reference, `kind:namespace/name`, as Backstage
    /// writes it (an empty namespace reads as `default`).
    pub fn reference(&self) -> String {
        let namespace = if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        };
        format!("{}:{}/{}", self.kind, namespace, self.name)
    }

    /// The `spec` as JSON; an empty object when it is empty or not JSON.
    pub fn spec(&self) -> Value {
        serde_json::from_str(&self.spec).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// Replaces the `spec`.
    pub fn set_spec(&mut self, spec: &Value) {
        self.spec = spec.to_string();
    }

    /// The value of a label, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        find_pair(&self.labels, key)
    }

    /// The value of an annotation, if set.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        find_pair(&self.annotations, key)
    }

    /// The value at a dotted path into the entity's descriptor (the shape
    /// [`Entity::to_descriptor`] returns): `spec.owner`,
    /// `metadata.annotations.backstage.io/techdocs-ref`, `spec.ports.0`.
    /// `None` when nothing is there. Keys may hold dots themselves, so at
    /// each level the longest run of segments that names a key wins; a
    /// numeric segment indexes a list.
    ///
    /// The same answer as [`lookup_path`] on [`Entity::to_descriptor`], but it
    /// reads only what the path names: a metadata field or one label or
    /// annotation without copying the rest, and the `spec` text is parsed
    /// only for `spec` paths. A check that looks at a few fields of many
    /// entities spends most of its time here otherwise.
    pub fn field(&self, path: &str) -> Option<Value> {
        self.fields().get(path)
    }

    /// A reader of many dotted paths of this entity (see
    /// [`Entity::field`]) that parses the `spec` text, and builds the whole
    /// descriptor for paths that need it, at most once: for a check that
    /// reads several fields of each entity.
    pub fn fields(&self) -> FieldReader<'_> {
        FieldReader {
            entity: self,
            spec: OnceCell::new(),
            descriptor: OnceCell::new(),
        }
    }

    /// The entity in Backstage's descriptor shape: `apiVersion`, `kind`,
    /// `metadata` (`name`, `namespace`, and each of `title`, `description`,
    /// `labels`, `annotations`, `tags`, `links` that is set), `spec` and
    /// `relations` (`type`, `targetRef`).
    pub fn to_descriptor(&self) -> Value {
        let mut metadata = Map::new();
        metadata.insert("name".into(), self.name.clone().into());
        metadata.insert("namespace".into(), self.namespace.clone().into());
        if let Some(title) = &self.title {
            metadata.insert("title".into(), title.clone().into());
        }
        if let Some(description) = &self.description {
            metadata.insert("description".into(), description.clone().into());
        }
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), pairs_to_object(&self.labels));
        }
        if !self.annotations.is_empty() {
            metadata.insert("annotations".into(), pairs_to_object(&self.annotations));
        }
        if !self.tags.is_empty() {
            metadata.insert("tags".into(), self.tags.clone().into());
        }
        if !self.links.is_empty() {
            let links = self.links.iter().map(link_to_object).collect::<Vec<_>>();
            metadata.insert("links".into(), links.into());
        }
        let mut descriptor = Map::new();
        descriptor.insert("apiVersion".into(), self.api_version.clone().into());
        descriptor.insert("kind".into(), self.kind.clone().into());
        descriptor.insert("metadata".into(), metadata.into());
        // A spec that is not JSON (a host bug) still shows up, as text.
        let spec = serde_json::from_str(&self.spec).unwrap_or_else(|_| self.spec.clone().into());
        descriptor.insert("spec".into(), spec);
        if !self.relations.is_empty() {
            let relations = self
                .relations
                .iter()
                .map(|r| {
                    let mut o = Map::new();
                    o.insert("type".into(), r.type_.clone().into());
                    o.insert("targetRef".into(), r.target.clone().into());
                    Value::Object(o)
                })
                .collect::<Vec<_>>();
            descriptor.insert("relations".into(), relations.into());
        }
        Value::Object(descriptor)
    }

    /// Reads one Backstage descriptor (a parsed `catalog-info.yaml` document).
    ///
    /// `apiVersion`, `kind` and `metadata.name` are required; `namespace`
    /// defaults to `default` and `spec` to `{}`. Label and annotation values
    /// that are numbers or booleans are taken as their text. `relations`
    /// accepts `targetRef` strings and the older `target: {kind, namespace,
    /// name}` form. The error names the field at fault.
    pub fn from_descriptor(descriptor: &Value) -> Result<Entity, DescriptorError> {
        let root = descriptor
            .as_object()
            .ok_or_else(|| DescriptorError::new("", "is not a mapping"))?;
        let metadata = root
            .get("metadata")
            .ok_or_else(|| DescriptorError::new("metadata", "is missing"))?
            .as_object()
            .ok_or_else(|| DescriptorError::new("metadata", "is not a mapping"))?;
        let mut entity = Entity {
            api_version: required_string(root, "apiVersion", "apiVersion")?,
            kind: required_string(root, "kind", "kind")?,
            name: required_string(metadata, "name", "metadata.name")?,
            namespace: optional_string(metadata, "namespace", "metadata.namespace")?
                .unwrap_or_else(|| "default".to_owned()),
            title: optional_string(metadata, "title", "metadata.title")?,
            description: optional_string(metadata, "description", "metadata.description")?,
            labels: string_map(metadata, "labels", "metadata.labels")?,
            annotations: string_map(metadata, "annotations", "metadata.annotations")?,
            ..Entity::default()
        };
        if let Some(tags) = non_null(metadata.get("tags")) {
            let tags = tags
                .as_array()
                .ok_or_else(|| DescriptorError::new("metadata.tags", "is not a list"))?;
            for (i, tag) in tags.iter().enumerate() {
                let tag = tag.as_str().ok_or_else(|| {
                    DescriptorError::new(format!("metadata.tags[{i}]"), "is not a string")
                })?;
                entity.tags.push(tag.to_owned());
            }
        }
        if let Some(links) = non_null(metadata.get("links")) {
            let links = links
                .as_array()
                .ok_or_else(|| DescriptorError::new("metadata.links", "is not a list"))?;
            for (i, link) in links.iter().enumerate() {
                let field = format!("metadata.links[{i}]");
                let link = link
                    .as_object()
                    .ok_or_else(|| DescriptorError::new(&field, "is not a mapping"))?;
                entity.links.push(Link {
                    url: required_string(link, "url", &format!("{field}.url"))?,
                    title: optional_string(link, "title", &format!("{field}.title"))?,
                    icon: optional_string(link, "icon", &format!("{field}.icon"))?,
                    type_: optional_string(link, "type", &format!("{field}.type"))?,
                });
            }
        }
        match non_null(root.get("spec")) {
            None => {}
            Some(spec @ Value::Object(_)) => entity.spec = spec.to_string(),
            Some(_) => return Err(DescriptorError::new("spec", "is not a mapping")),
        }
        if let Some(relations) = non_null(root.get("relations")) {
            let relations = relations
                .as_array()
                .ok_or_else(|| DescriptorError::new("relations", "is not a list"))?;
            for (i, relation) in relations.iter().enumerate() {
                let field = format!("relations[{i}]");
                let relation = relation
                    .as_object()
                    .ok_or_else(|| DescriptorError::new(&field, "is not a mapping"))?;
                let type_ = required_string(relation, "type", &format!("{field}.type"))?;
                let target = match (relation.get("targetRef"), relation.get("target")) {
                    (Some(Value::String(target)), _) => target.clone(),
                    (_, Some(Value::Object(target))) => {
                        let kind =
                            required_string(target, "kind", &format!("{field}.target.kind"))?;
                        let namespace = optional_string(
                            target,
                            "namespace",
                            &format!("{field}.target.namespace"),
                        )?
                        .unwrap_or_else(|| "default".to_owned());
                        let name =
                            required_string(target, "name", &format!("{field}.target.name"))?;
                        format!("{kind}:{namespace}/{name}")
                    }
                    _ => {
                        return Err(DescriptorError::new(
                            format!("{field}.targetRef"),
                            "is missing",
                        ))
                    }
                };
                entity.relations.push(Relation { type_, target });
            }
        }
        Ok(entity)
    }
}

/// Why a descriptor could not be read as an entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescriptorError {
    /// The field at fault as a dotted path, e.g. `metadata.name` (empty for
    /// the document itself).
    pub field: String,
    /// What is wrong with it, e.g. `is missing`.
    pub reason: String,
}

impl DescriptorError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DescriptorError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "the document {}", self.reason)
        } else {
            write!(f, "`{}` {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for DescriptorError {}

/// Reads dotted paths of one entity, as [`Entity::field`] does, keeping
/// the parsed `spec` (and the descriptor, for paths outside the metadata
/// fields and `spec`) for the next path. Made by [`Entity::fields`].
pub struct FieldReader<'a> {
    entity: &'a Entity,
    spec: OnceCell<Value>,
    descriptor: OnceCell<Value>,
}

impl FieldReader<'_> {
    /// The value at `path`, or `None` when nothing is there; see
    /// [`Entity::field`].
    pub fn get(&self, path: &str) -> Option<Value> {
        let e = self.entity;
        let segments: Vec<&str> = path.split('.').collect();
        let text = |s: &str| Some(Value::String(s.to_owned()));
        match segments.as_slice() {
            ["apiVersion"] => text(&e.api_version),
            ["kind"] => text(&e.kind),
            ["metadata", "name"] => text(&e.name),
            ["metadata", "namespace"] => text(&e.namespace),
            ["metadata", "title"] => e.title.as_deref().and_then(text),
            ["metadata", "description"] => e.description.as_deref().and_then(text),
            // Values are text, so only a key spelling the whole rest of
            // the path can match.
            ["metadata", "labels", key @ ..] if !key.is_empty() => {
                find_pair(&e.labels, &key.join(".")).and_then(text)
            }
            ["metadata", "annotations", key @ ..] if !key.is_empty() => {
                find_pair(&e.annotations, &key.join(".")).and_then(text)
            }
            // The descriptor leaves empty lists out.
            ["metadata", "tags", rest @ ..] if !e.tags.is_empty() => {
                lookup_segments(&Value::from(e.tags.clone()), rest).cloned()
            }
            ["metadata", "links", rest @ ..] if !e.links.is_empty() => {
                let links: Vec<Value> = e.links.iter().map(link_to_object).collect();
                lookup_segments(&Value::Array(links), rest).cloned()
            }
            ["metadata", "tags" | "links", ..] => None,
            ["spec", rest @ ..] => {
                // A spec that is not JSON (a host bug) reads as its text,
                // as in the descriptor.
                let spec = self.spec.get_or_init(|| {
                    serde_json::from_str(&e.spec).unwrap_or_else(|_| Value::String(e.spec.clone()))
                });
                lookup_segments(spec, rest).cloned()
            }
            _ => {
                let descriptor = self.descriptor.get_or_init(|| e.to_descriptor());
                lookup_segments(descriptor, &segments).cloned()
            }
        }
    }
}

/// The value at a dotted path into a JSON value: keys may hold dots
/// themselves (annotation keys such as `backstage.io/techdocs-ref`), so at
/// each level the longest run of segments that names a key is tried first;
/// a numeric segment indexes a list. [`Entity::field`] does this on an
/// entity without building its descriptor.
pub fn lookup_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let segments: Vec<&str> = path.split('.').collect();
    lookup_segments(value, &segments)
}

fn lookup_segments<'a>(value: &'a Value, segments: &[&str]) -> Option<&'a Value> {
    if segments.is_empty() {
        return Some(value);
    }
    match value {
        Value::Object(map) => (1..=segments.len()).rev().find_map(|take| {
            let child = map.get(&segments[..take].join("."))?;
            lookup_segments(child, &segments[take..])
        }),
        Value::Array(items) => {
            let index: usize = segments[0].parse().ok()?;
            lookup_segments(items.get(index)?, &segments[1..])
        }
        _ => None,
    }
}

fn find_pair<'a>(pairs: &'a [Pair], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

fn pairs_to_object(pairs: &[Pair]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|p| (p.key.clone(), Value::String(p.value.clone())))
            .collect(),
    )
}

fn link_to_object(link: &Link) -> Value {
    let mut o = Map::new();
    o.insert("url".into(), link.url.clone().into());
    for (key, value) in [
        ("title", &link.title),
        ("icon", &link.icon),
        ("type", &link.type_),
    ] {
        if let Some(value) = value {
            o.insert(key.into(), value.clone().into());
        }
    }
    Value::Object(o)
}

/// YAML `key:` with nothing after it reads as null; treat it as absent.
fn non_null(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

fn required_string(
    map: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<String, DescriptorError> {
    match non_null(map.get(key)) {
        None => Err(DescriptorError::new(field, "is missing")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(DescriptorError::new(field, "is empty"))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(DescriptorError::new(field, "is not a string")),
    }
}

fn optional_string(
    map: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<String>, DescriptorError> {
    match non_null(map.get(key)) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(DescriptorError::new(field, "is not a string")),
    }
}

fn string_map(
    map: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Vec<Pair>, DescriptorError> {
    let Some(value) = non_null(map.get(key)) else {
        return Ok(Vec::new());
    };
    let object = value
        .as_object()
        .ok_or_else(|| DescriptorError::new(field, "is not a mapping"))?;
    object
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(DescriptorError::new(
                        format!("{field}.{k}"),
                        "is not a string",
                    ))
                }
            };
            Ok(Pair {
                key: k.clone(),
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_reads_what_the_descriptor_holds() {
        let mut entity = Entity::new("Component", "payments");
        entity.namespace = "shop".into();
        entity.description = Some("Takes money.".into());
        entity.labels.push(Pair::new("tier", "1"));
        entity
            .annotations
            .push(Pair::new("backstage.io/techdocs-ref", "dir:."));
        entity.annotations.push(Pair::new("backstage.io", "short"));
        entity.annotations.push(Pair::new("empty", ""));
        entity.tags.push("java".into());
        entity.links.push(Link::new("https://x.example"));
        entity
            .relations
            .push(Relation::new("ownedBy", "group:default/a"));
        entity.set_spec(&json!({
            "owner": "team-a", "ports": [8080], "a.b": {"c": 1}, "a": {"x": 2}, "none": null
        }));
        let descriptor = entity.to_descriptor();
        for path in [
            "apiVersion",
            "kind",
            "metadata",
            "metadata.name",
            "metadata.namespace",
            "metadata.title",
            "metadata.description",
            "metadata.labels",
            "metadata.labels.tier",
            "metadata.labels.tier.x",
            "metadata.labels.nope",
            "metadata.annotations.backstage.io/techdocs-ref",
            "metadata.annotations.backstage.io",
            "metadata.annotations.empty",
            "metadata.annotations.backstage",
            "metadata.tags",
            "metadata.tags.0",
            "metadata.tags.1",
            "metadata.links",
            "metadata.links.0.url",
            "metadata.links.1",
            "spec",
            "spec.owner",
            "spec.ports.0",
            "spec.ports.1",
            "spec.a.b.c",
            "spec.a.x",
            "spec.none",
            "spec.missing",
            "relations.0.targetRef",
            "nothing.here",
        ] {
            assert_eq!(
                entity.field(path).as_ref(),
                lookup_path(&descriptor, path),
                "{path}"
            );
        }
        assert_eq!(entity.field("spec.owner"), Some(json!("team-a")));
        assert_eq!(entity.field("metadata.title"), None);

        // One reader answers path after path as field does.
        let reader = entity.fields();
        for path in [
            "spec.owner",
            "metadata.tags.0",
            "relations",
            "spec.a.x",
            "kind",
        ] {
            assert_eq!(reader.get(path), entity.field(path), "{path}");
        }

        // Empty lists are left out of the descriptor, so nothing is there.
        let bare = Entity::new("Component", "bare");
        let descriptor = bare.to_descriptor();
        for path in [
            "metadata.tags",
            "metadata.tags.0",
            "metadata.links",
            "metadata.labels",
        ] {
            assert_eq!(
                bare.field(path).as_ref(),
                lookup_path(&descriptor, path),
                "{path}"
            );
        }

        // A spec that is not JSON reads as its text, as in the descriptor.
        entity.spec = "not json".into();
        assert_eq!(entity.field("spec"), Some(json!("not json")));
        assert_eq!(entity.field("spec.owner"), None);
    }

    #[test]
    fn descriptor_round_trip_keeps_every_field() {
        let descriptor = json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {
                "name": "payments",
                "namespace": "shop",
                "title": "Payments",
                "description": "Takes money.",
                "labels": {"tier": "1"},
                "annotations": {"github.com/project-slug": "acme/payments"},
                "tags": ["java"],
                "links": [{"url": "https://grafana.example.com", "title": "Dashboard", "type": "dashboard"}]
            },
            "spec": {"type": "service", "owner": "team-a"},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/team-a"}]
        });
        let entity = Entity::from_descriptor(&descriptor).unwrap();
        assert_eq!(entity.reference(), "Component:shop/payments");
        assert_eq!(
            entity.annotation("github.com/project-slug"),
            Some("acme/payments")
        );
        assert_eq!(entity.spec()["owner"], "team-a");
        assert_eq!(entity.to_descriptor(), descriptor);
    }

    #[test]
    fn descriptor_errors_name_the_field() {
        let err = Entity::from_descriptor(
            &json!({"apiVersion": "v1", "kind": "Component", "metadata": {}}),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "`metadata.name` is missing");
        let err = Entity::from_descriptor(&json!({
            "apiVersion": "v1", "kind": "Component", "metadata": {"name": "a", "tags": ["x", 3]}
        }))
        .unwrap_err();
        assert_eq!(err.field, "metadata.tags[1]");
    }

    #[test]
    fn old_style_relation_targets_become_references() {
        let entity = Entity::from_descriptor(&json!({
            "apiVersion": "v1", "kind": "Component", "metadata": {"name": "a"},
            "relations": [{"type": "ownedBy", "target": {"kind": "group", "name": "team-a"}}]
        }))
        .unwrap();
        assert_eq!(entity.relations[0].target, "group:default/team-a");
        assert_eq!(entity.namespace, "default");
        assert_eq!(entity.spec, "{}");
    }
}
