//! Validation of untrusted entity documents.
//!
//! [`Entity::from_value`] checks a whole document and reports every
//! problem at once, each at a JSON pointer (`/spec/owner`,
//! `/metadata/tags/2`), so that a CI job pushing a thousand entities learns
//! about all its mistakes in one round trip.

use std::fmt;

use serde_json::{Map, Value};

use crate::entity::{Entity, COMPUTED_METADATA};
use crate::kinds::{self, Shape};
use crate::reference::{EntityRef, RefDefaults, DEFAULT_NAMESPACE};
use crate::rules;

/// One thing wrong with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A JSON pointer into the document (RFC 6901); `/` for the document
    /// itself.
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

/// Every problem found in one document, in document order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidEntity {
    pub problems: Vec<Problem>,
}

/// Escapes a key for use in a JSON pointer (`a/b` → `a~1b`).
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

struct Checker {
    problems: Vec<Problem>,
}

/// A JSON pointer spelled only when a problem is reported at it: a valid
/// document (the usual case) visits a few dozen places and names none.
#[derive(Clone, Copy)]
enum At<'a> {
    /// A pointer given whole.
    Path(&'a str),
    /// A field of the object at the parent (escaped when spelled).
    Key(&'a At<'a>, &'a str),
    /// An item of the array at the parent.
    Item(&'a At<'a>, usize),
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Path(p) => f.write_str(p),
            At::Key(parent, key) => write!(f, "{parent}/{}", escape_pointer(key)),
            At::Item(parent, i) => write!(f, "{parent}/{i}"),
        }
    }
}

impl Checker {
    /// Records a problem at `pointer` (a pointer's text or an [`At`],
    /// spelled only now).
    fn report(&mut self, pointer: impl fmt::Display, message: impl Into<String>) {
        self.problems.push(Problem {
            pointer: pointer.to_string(),
            message: message.into(),
        });
    }

    /// A required string field: reports a missing or non-string value.
    fn required_str<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        key: &str,
        at: At<'_>,
    ) -> Option<&'v str> {
        let at = At::Key(&at, key);
        match obj.get(key) {
            None | Some(Value::Null) => {
                self.report(at, "is required");
                None
            }
            Some(v) => self.string(v, at),
        }
    }

    fn string<'v>(&mut self, value: &'v Value, at: At<'_>) -> Option<&'v str> {
        match value {
            Value::String(s) => Some(s),
            other => {
                self.report(at, format!("must be a string, not {}", type_name(other)));
                None
            }
        }
    }

    fn object<'v>(&mut self, value: &'v Value, at: At<'_>) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.report(at, format!("must be an object, not {}", type_name(other)));
                None
            }
        }
    }

    fn array<'v>(&mut self, value: &'v Value, at: At<'_>) -> Option<&'v Vec<Value>> {
        match value {
            Value::Array(items) => Some(items),
            other => {
                self.report(at, format!("must be an array, not {}", type_name(other)));
                None
            }
        }
    }

    fn rule(&mut self, at: At<'_>, result: Result<(), String>) {
        if let Err(problem) = result {
            self.report(at, problem);
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Entity {
    /// Validates a document and builds the entity: defaults filled in
    /// (`metadata.namespace`), computed metadata (`uid`, `etag`,
    /// `generation`) and client-sent `relations` dropped.
    ///
    /// Any kind is accepted. A well-known kind (Component, API, Resource,
    /// System, Domain, Group, User, Location, Template) under its
    /// `backstage.io` apiVersion must also carry the spec fields Backstage
    /// requires, with references that parse.
    pub fn from_value(mut value: Value) -> Result<Entity, InvalidEntity> {
        let mut c = Checker {
            problems: Vec::new(),
        };
        check(&mut c, &value);
        if !c.problems.is_empty() {
            return Err(InvalidEntity {
                problems: c.problems,
            });
        }
        let root = value
            .as_object_mut()
            .expect("checked: the document is an object");
        root.remove("relations");
        // YAML writes an empty field as null (`spec:`); the checks above
        // treat a null like a missing field, and so does the typed model.
        if root.get("spec").is_some_and(Value::is_null) {
            root.remove("spec");
        }
        if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in COMPUTED_METADATA {
                meta.remove(*key);
            }
            meta.retain(|_, v| !v.is_null());
        }
        serde_json::from_value(value).map_err(|e| InvalidEntity {
            // The checks above cover every typed field, so this is a gap in
            // them; still an answer for the client, never a panic.
            problems: vec![Problem {
                pointer: "/".into(),
                message: e.to_string(),
            }],
        })
    }
}

fn check(c: &mut Checker, value: &Value) {
    let Some(root) = c.object(value, At::Path("/")) else {
        return;
    };
    check_nul(c, value, "");
    if let Some(v) = c.required_str(root, "apiVersion", At::Path("")) {
        c.rule(At::Path("/apiVersion"), rules::check_api_version(v));
    }
    let kind = c.required_str(root, "kind", At::Path(""));
    if let Some(k) = kind {
        c.rule(At::Path("/kind"), rules::check_kind(k));
    }

    let mut namespace = DEFAULT_NAMESPACE;
    match root.get("metadata") {
        None | Some(Value::Null) => c.report("/metadata", "is required"),
        Some(meta) => {
            if let Some(meta) = c.object(meta, At::Path("/metadata")) {
                if let Some(ns) = check_metadata(c, meta) {
                    namespace = ns;
                }
            }
        }
    }

    let spec = match root.get("spec") {
        None | Some(Value::Null) => None,
        Some(spec) => c.object(spec, At::Path("/spec")),
    };

    let (Some(kind), Some(api_version)) = (kind, root.get("apiVersion").and_then(Value::as_str))
    else {
        return;
    };
    let Some(known) = kinds::well_known(kind) else {
        return;
    };
    if !known.api_versions.contains(&api_version) {
        if kinds::claims_well_known(api_version) {
            c.report(
                "/apiVersion",
                format!(
                    "{api_version:?} does not define kind {kind}; use {}",
                    known.api_versions.join(" or ")
                ),
            );
        }
        // Under another group, this is someone's own kind that happens to
        // share a name: accepted as is, like any custom kind.
        return;
    }
    let Some(spec) = spec else {
        if root.get("spec").is_none_or(Value::is_null) {
            c.report("/spec", format!("is required for kind {kind}"));
        }
        return;
    };
    let spec_at = At::Path("/spec");
    for field in known.fields {
        let at = At::Key(&spec_at, field.name);
        let value = match spec.get(field.name) {
            None | Some(Value::Null) => {
                if field.required {
                    c.report(at, format!("is required for kind {kind}"));
                }
                continue;
            }
            Some(v) => v,
        };
        let defaults = field.reference.map(|r| RefDefaults {
            kind: r.default_kind,
            namespace,
        });
        match field.shape {
            Shape::String => {
                if let Some(s) = c.string(value, at) {
                    if s.is_empty() {
                        c.report(at, "must not be empty");
                    } else if let Some(defaults) = defaults {
                        if let Err(e) = EntityRef::parse(s, defaults) {
                            c.report(at, e.to_string());
                        }
                    }
                }
            }
            Shape::Strings => {
                if let Some(items) = c.array(value, at) {
                    for (i, item) in items.iter().enumerate() {
                        let at = At::Item(&at, i);
                        if let Some(s) = c.string(item, at) {
                            if s.is_empty() {
                                c.report(at, "must not be empty");
                            } else if let Some(defaults) = defaults {
                                if let Err(e) = EntityRef::parse(s, defaults) {
                                    c.report(at, e.to_string());
                                }
                            }
                        }
                    }
                }
            }
            Shape::Object => {
                c.object(value, at);
            }
            Shape::Objects => {
                if let Some(items) = c.array(value, at) {
                    for (i, item) in items.iter().enumerate() {
                        c.object(item, At::Item(&at, i));
                    }
                }
            }
            Shape::OneOf(allowed) => {
                if let Some(s) = c.string(value, at) {
                    if !allowed.contains(&s) {
                        c.report(at, format!("{s:?} is not one of: {}", allowed.join(", ")));
                    }
                }
            }
        }
    }
}

/// Rejects NUL characters anywhere: PostgreSQL cannot store them in text or
/// JSONB, and the catalog must accept the same entities on both backends.
/// The JSON pointers of the report are built only for the parts that hold
/// one (almost never): building one per key and item cost more than the
/// rest of a descriptor's validation.
fn check_nul(c: &mut Checker, value: &Value, at: &str) {
    if !has_nul(value) {
        return;
    }
    match value {
        Value::String(s) if s.contains('\0') => c.report(
            if at.is_empty() { "/" } else { at },
            "must not contain NUL characters",
        ),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_nul(c, item, &format!("{at}/{i}"));
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let at = format!("{at}/{}", escape_pointer(k));
                if k.contains('\0') {
                    c.report(&at, "key must not contain NUL characters");
                }
                check_nul(c, v, &at);
            }
        }
        _ => {}
    }
}

/// Whether a NUL character is anywhere in `value`, keys included.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Checks `metadata`; returns the namespace when it is valid, for resolving
/// the spec's shorthand references.
fn check_metadata<'v>(c: &mut Checker, meta: &'v Map<String, Value>) -> Option<&'v str> {
    let meta_at = At::Path("/metadata");
    if let Some(name) = c.required_str(meta, "name", meta_at) {
        c.rule(At::Path("/metadata/name"), rules::check_name(name));
    }
    let mut namespace = None;
    match meta.get("namespace") {
        None | Some(Value::Null) => namespace = Some(DEFAULT_NAMESPACE),
        Some(v) => {
            let at = At::Key(&meta_at, "namespace");
            if let Some(ns) = c.string(v, at) {
                let result = rules::check_namespace(ns);
                if result.is_ok() {
                    namespace = Some(ns);
                }
                c.rule(at, result);
            }
        }
    }
    for key in ["title", "description"] {
        if let Some(v) = meta.get(key).filter(|v| !v.is_null()) {
            c.string(v, At::Key(&meta_at, key));
        }
    }
    for (key, value_rule) in [
        (
            "labels",
            Some(rules::check_label_value as fn(&str) -> Result<(), String>),
        ),
        ("annotations", None),
    ] {
        let at = At::Key(&meta_at, key);
        let Some(map) = meta.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let Some(map) = c.object(map, at) else {
            continue;
        };
        for (k, v) in map {
            let at = At::Key(&at, k);
            if let Err(p) = rules::check_key(k) {
                c.report(at, format!("key {p}"));
            }
            if let (Some(s), Some(rule)) = (c.string(v, at), value_rule) {
                c.rule(at, rule(s));
            }
        }
    }
    if let Some(tags) = meta.get("tags").filter(|v| !v.is_null()) {
        let tags_at = At::Key(&meta_at, "tags");
        if let Some(tags) = c.array(tags, tags_at) {
            for (i, tag) in tags.iter().enumerate() {
                let at = At::Item(&tags_at, i);
                if let Some(s) = c.string(tag, at) {
                    c.rule(at, rules::check_tag(s));
                }
            }
        }
    }
    if let Some(links) = meta.get("links").filter(|v| !v.is_null()) {
        let links_at = At::Key(&meta_at, "links");
        if let Some(links) = c.array(links, links_at) {
            for (i, link) in links.iter().enumerate() {
                let at = At::Item(&links_at, i);
                let Some(link) = c.object(link, at) else {
                    continue;
                };
                if let Some(url) = c.required_str(link, "url", at) {
                    if url.is_empty() {
                        c.report(At::Key(&at, "url"), "must not be empty");
                    }
                }
                for key in ["title", "icon", "type"] {
                    if let Some(v) = link.get(key).filter(|v| !v.is_null()) {
                        c.string(v, At::Key(&at, key));
                    }
                }
            }
        }
    }
    namespace
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers(v: Value) -> Vec<String> {
        Entity::from_value(v)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.pointer)
            .collect()
    }

    #[test]
    fn a_good_component_gets_defaults_and_loses_computed_fields() {
        let e = Entity::from_value(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "web", "uid": "x", "etag": "y",
                "annotations": {"backstage.io/techdocs-ref": "dir:."}},
            "spec": {"type": "website", "lifecycle": "production", "owner": "team-a"},
            "relations": [{"type": "bogus", "targetRef": "x:y/z"}]
        }))
        .unwrap();
        assert_eq!(e.metadata.namespace, "default");
        assert!(e.relations.is_empty());
        assert!(e.metadata.extra.is_empty());
        assert_eq!(e.entity_ref().to_string(), "component:default/web");
    }

    #[test]
    fn every_problem_is_reported_with_its_pointer() {
        let got = pointers(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {
                "name": "-bad-", "namespace": "Nope", "title": 3,
                "labels": {"ok": "fine", "bad key": "x", "v": "not ok"},
                "annotations": {"a.io/x": 1},
                "tags": ["ok", "Not-OK"],
                "links": [{"title": "no url"}, "x"]
            },
            "spec": {"type": "", "owner": ["x"], "dependsOn": ["no-kind", 4]}
        }));
        assert_eq!(
            got,
            vec![
                "/metadata/name",
                "/metadata/namespace",
                "/metadata/title",
                "/metadata/labels/bad key",
                "/metadata/labels/v",
                "/metadata/annotations/a.io~1x",
                "/metadata/tags/1",
                "/metadata/links/0/url",
                "/metadata/links/1",
                "/spec/type",
                "/spec/lifecycle",
                "/spec/owner",
                "/spec/dependsOn/0",
                "/spec/dependsOn/1",
            ]
        );
    }

    #[test]
    fn required_fields_of_each_well_known_kind() {
        let cases = [
            (
                "Component",
                vec!["/spec/type", "/spec/lifecycle", "/spec/owner"],
            ),
            (
                "API",
                vec![
                    "/spec/type",
                    "/spec/lifecycle",
                    "/spec/owner",
                    "/spec/definition",
                ],
            ),
            ("Resource", vec!["/spec/type", "/spec/owner"]),
            ("System", vec!["/spec/owner"]),
            ("Domain", vec!["/spec/owner"]),
            ("Group", vec!["/spec/type", "/spec/children"]),
            ("User", vec!["/spec/memberOf"]),
            ("Location", vec![]),
        ];
        for (kind, want) in cases {
            let v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind,
                "metadata": {"name": "x"}, "spec": {}});
            match Entity::from_value(v) {
                Ok(_) => assert!(want.is_empty(), "{kind}"),
                Err(e) => assert_eq!(
                    e.problems
                        .iter()
                        .map(|p| p.pointer.as_str())
                        .collect::<Vec<_>>(),
                    want,
                    "{kind}"
                ),
            }
        }
        let got = pointers(json!({"apiVersion": "scaffolder.backstage.io/v1beta3",
            "kind": "Template", "metadata": {"name": "t"}, "spec": {"steps": [1]}}));
        assert_eq!(got, vec!["/spec/type", "/spec/steps/0"]);
        assert_eq!(
            pointers(
                json!({"apiVersion": "backstage.io/v1alpha1", "kind": "System",
                "metadata": {"name": "x"}})
            ),
            vec!["/spec"]
        );
    }

    #[test]
    fn custom_kinds_need_only_the_envelope() {
        let e = Entity::from_value(json!({
            "apiVersion": "acme.io/v1", "kind": "Pipeline",
            "metadata": {"name": "build"}, "spec": {"anything": [1, 2]}
        }))
        .unwrap();
        assert_eq!(e.kind, "Pipeline");
        // A well-known kind under a foreign group is a custom kind too...
        assert!(
            Entity::from_value(json!({"apiVersion": "acme.io/v1", "kind": "Component",
            "metadata": {"name": "x"}}))
            .is_ok()
        );
        // ...but under backstage.io its version must be one we know.
        assert_eq!(
            pointers(json!({"apiVersion": "backstage.io/v9", "kind": "Component",
                "metadata": {"name": "x"}})),
            vec!["/apiVersion"]
        );
    }

    #[test]
    fn nulls_count_as_missing() {
        let e = Entity::from_value(json!({
            "apiVersion": "v1", "kind": "Thing", "spec": null,
            "metadata": {"name": "x", "namespace": null, "title": null, "tags": null, "labels": null}
        }))
        .unwrap();
        assert_eq!(e.metadata.namespace, "default");
        assert!(e.spec.is_empty() && e.metadata.tags.is_empty());
        let yaml = b"apiVersion: v1\nkind: Thing\nmetadata:\n  name: x\n  description:\nspec:\n";
        let doc = crate::parse_documents(yaml, crate::Format::Yaml)
            .unwrap()
            .remove(0);
        let e = Entity::from_value(doc.value).unwrap();
        assert_eq!(e.metadata.description, None);
    }

    #[test]
    fn nul_characters_are_refused_anywhere() {
        let got = pointers(json!({"apiVersion": "v1", "kind": "K",
            "metadata": {"name": "x", "description": "a\0b"}, "spec": {"l": ["ok", "\0"], "k\0": 1}}));
        assert_eq!(got, vec!["/metadata/description", "/spec/k\0", "/spec/l/1"]);
    }

    #[test]
    fn envelope_problems() {
        assert_eq!(pointers(json!([1])), vec!["/"]);
        assert_eq!(
            pointers(json!({})),
            vec!["/apiVersion", "/kind", "/metadata"]
        );
        assert_eq!(
            pointers(json!({"apiVersion": "v1", "kind": "my-kind", "metadata": {}, "spec": 1})),
            vec!["/kind", "/metadata/name", "/spec"]
        );
    }

    #[test]
    fn references_resolve_against_the_entitys_namespace() {
        // A namespace that is itself invalid still lets the spec be checked.
        let got = pointers(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "User",
            "metadata": {"name": "u", "namespace": "BAD"},
            "spec": {"memberOf": ["team a"]}
        }));
        assert_eq!(got, vec!["/metadata/namespace", "/spec/memberOf/0"]);
    }
}
