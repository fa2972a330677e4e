//! Relations derived from spec fields, both directions, as Backstage's
//! `BuiltinKindsEntityProcessor` emits them.
//!
//! A Component whose `spec.owner` is `team-a` yields two relations:
//! `component:default/x ownedBy group:default/team-a` (carried by the
//! component) and `group:default/team-a ownerOf component:default/x`
//! (carried by the group, though the group's own descriptor never says
//! so). The store keeps both, remembering which entity declared them, so
//! that they change and vanish with it.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::entity::Entity;
use crate::kinds::{self, Shape};
use crate::reference::{EntityRef, RefDefaults};

/// The relation types, named as Backstage names them.
pub mod names {
    pub const OWNED_BY: &str = "ownedBy";
    pub const OWNER_OF: &str = "ownerOf";
    pub const DEPENDS_ON_REL: &str = "dependsOn";
    pub const DEPENDENCY_OF: &str = "dependencyOf";
    pub const PROVIDES_API: &str = "providesApi";
    pub const API_PROVIDED_BY: &str = "apiProvidedBy";
    pub const CONSUMES_API: &str = "consumesApi";
    pub const API_CONSUMED_BY: &str = "apiConsumedBy";
    pub const PART_OF: &str = "partOf";
    pub const HAS_PART: &str = "hasPart";
    pub const MEMBER_OF: &str = "memberOf";
    pub const HAS_MEMBER: &str = "hasMember";
    pub const CHILD_OF: &str = "childOf";
    pub const PARENT_OF: &str = "parentOf";

    /// Every type above, each beside its reverse.
    pub const ALL: [&str; 14] = [
        OWNED_BY,
        OWNER_OF,
        DEPENDS_ON_REL,
        DEPENDENCY_OF,
        PROVIDES_API,
        API_PROVIDED_BY,
        CONSUMES_API,
        API_CONSUMED_BY,
        PART_OF,
        HAS_PART,
        MEMBER_OF,
        HAS_MEMBER,
        CHILD_OF,
        PARENT_OF,
    ];
}

/// One relation between two entities.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DerivedRelation {
    pub source: EntityRef,
    pub kind: &'static str,
    pub target: EntityRef,
}

/// One relation as an entity's spec declares it: from the entity to
/// `target` as `kind`, and so from `target` back to the entity as
/// `reverse`. The store keeps one row per declared relation and reads it in
/// both directions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeclaredRelation {
    pub kind: &'static str,
    pub target: EntityRef,
    pub reverse: &'static str,
}

/// Every relation an entity's spec declares, once each (see
/// [`DeclaredRelation`]), in a stable order. Custom kinds and well-known
/// kinds under a foreign apiVersion declare none. References that do not
/// parse are skipped; [`crate::validate`] has already reported them for
/// any entity built by [`Entity::from_value`].
pub fn declared(entity: &Entity) -> Vec<DeclaredRelation> {
    let Some(spec) = kinds::well_known(&entity.kind)
        .filter(|k| k.api_versions.contains(&entity.api_version.as_str()))
    else {
        return Vec::new();
    };
    let mut out = BTreeSet::new();
    for field in spec.fields {
        let Some(rel) = field.reference else { continue };
        let defaults = RefDefaults {
            kind: rel.default_kind,
            namespace: &entity.metadata.namespace,
        };
        let texts: Vec<&str> = match (field.shape, entity.spec.get(field.name)) {
            (Shape::String, Some(Value::String(s))) => vec![s.as_str()],
            (Shape::Strings, Some(Value::Array(items))) => {
                items.iter().filter_map(Value::as_str).collect()
            }
            _ => continue,
        };
        for text in texts {
            let Ok(target) = EntityRef::parse(text, defaults) else {
                continue;
            };
            out.insert(DeclaredRelation {
                kind: rel.forward,
                target,
                reverse: rel.reverse,
            });
        }
    }
    out.into_iter().collect()
}

/// Every relation an entity's spec declares, in both directions, without
/// duplicates: each of [`declared`] from the entity, and its reverse from
/// the target.
pub fn derive(entity: &Entity) -> Vec<DerivedRelation> {
    let me = entity.entity_ref();
    let mut out = BTreeSet::new();
    for d in declared(entity) {
        out.insert(DerivedRelation {
            source: me.clone(),
            kind: d.kind,
            target: d.target.clone(),
        });
        out.insert(DerivedRelation {
            source: d.target,
            kind: d.reverse,
            target: me.clone(),
        });
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::names::*;
    use super::*;
    use serde_json::json;

    fn triples(e: Value) -> Vec<(String, &'static str, String)> {
        let e = Entity::from_value(e).unwrap();
        derive(&e)
            .into_iter()
            .map(|r| (r.source.to_string(), r.kind, r.target.to_string()))
            .collect()
    }

    fn t(s: &str, k: &'static str, d: &str) -> (String, &'static str, String) {
        (s.to_owned(), k, d.to_owned())
    }

    #[test]
    fn component_fields_become_relations_both_ways() {
        let got = triples(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "type": "website", "lifecycle": "production", "owner": "team-a",
                "system": "storefront", "subcomponentOf": "portal",
                "providesApis": ["web-api"], "consumesApis": ["default/pay-api"],
                "dependsOn": ["resource:db"], "dependencyOf": ["component:edge"]
            }
        }));
        let me = "component:shop/web";
        let want = vec![
            t(me, OWNED_BY, "group:shop/team-a"),
            t("group:shop/team-a", OWNER_OF, me),
            t(me, PART_OF, "system:shop/storefront"),
            t("system:shop/storefront", HAS_PART, me),
            t(me, PART_OF, "component:shop/portal"),
            t("component:shop/portal", HAS_PART, me),
            t(me, PROVIDES_API, "api:shop/web-api"),
            t("api:shop/web-api", API_PROVIDED_BY, me),
            t(me, CONSUMES_API, "api:default/pay-api"),
            t("api:default/pay-api", API_CONSUMED_BY, me),
            t(me, DEPENDS_ON_REL, "resource:shop/db"),
            t("resource:shop/db", DEPENDENCY_OF, me),
            t(me, DEPENDENCY_OF, "component:shop/edge"),
            t("component:shop/edge", DEPENDS_ON_REL, me),
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for w in want {
            assert!(got.contains(&w), "missing {w:?} in {got:#?}");
        }
    }

    #[test]
    fn groups_users_systems_and_domains() {
        let got = triples(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": "team-a"},
            "spec": {"type": "team", "parent": "eng", "children": ["team-a1"], "members": ["jdoe"]}
        }));
        let me = "group:default/team-a";
        for w in [
            t(me, CHILD_OF, "group:default/eng"),
            t("group:default/eng", PARENT_OF, me),
            t(me, PARENT_OF, "group:default/team-a1"),
            t("group:default/team-a1", CHILD_OF, me),
            t(me, HAS_MEMBER, "user:default/jdoe"),
            t("user:default/jdoe", MEMBER_OF, me),
        ] {
            assert!(got.contains(&w), "missing {w:?} in {got:#?}");
        }
        assert_eq!(got.len(), 6);

        let got = triples(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "User",
            "metadata": {"name": "jdoe"}, "spec": {"memberOf": ["team-a"]}
        }));
        assert_eq!(
            got,
            vec![
                t("group:default/team-a", HAS_MEMBER, "user:default/jdoe"),
                t("user:default/jdoe", MEMBER_OF, "group:default/team-a"),
            ]
        );

        let got = triples(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "System",
            "metadata": {"name": "shop"}, "spec": {"owner": "group:default/store", "domain": "commerce"}
        }));
        assert!(got.contains(&t(
            "system:default/shop",
            PART_OF,
            "domain:default/commerce"
        )));
        assert!(got.contains(&t(
            "domain:default/commerce",
            HAS_PART,
            "system:default/shop"
        )));
        assert!(got.contains(&t("group:default/store", OWNER_OF, "system:default/shop")));
    }

    #[test]
    fn custom_kinds_declare_nothing() {
        assert!(triples(json!({
            "apiVersion": "acme.io/v1", "kind": "Component",
            "metadata": {"name": "x"}, "spec": {"owner": "team-a"}
        }))
        .is_empty());
        assert!(triples(json!({
            "apiVersion": "acme.io/v1", "kind": "Pipeline",
            "metadata": {"name": "x"}, "spec": {"owner": "team-a"}
        }))
        .is_empty());
    }
}
