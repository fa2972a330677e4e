//! Which entities a scorecard covers: [`covers`] applies an
//! [`EntityFilter`] to one entity, with the catalog's matching rules
//! (case-insensitive values, owners as resolved references).

use portolan_catalog::{Entity, EntityRef};
use portolan_store::FieldPath;
use serde_json::Value;

use crate::definition::{owner_defaults, EntityFilter};

/// Whether `filter` covers `entity`: every non-empty field of the filter
/// matches (AND), each by any of its values (OR). Values compare
/// case-insensitively.
///
/// - owners compare as references: the entity's `spec.owner` is resolved
///   as the catalog does (a Group in the entity's namespace unless written
///   out), the filter's owners as a Group in the default namespace, so
///   `team-a` matches `group:default/team-a`;
/// - a field path (`spec.system`) matches a scalar value (string, number,
///   boolean) written as text, or any element of an array of them; an
///   absent field never matches.
///
/// Filter values that cannot match (an owner that is no reference, a
/// field path that does not parse) match nothing; validation reports them
/// before a definition is stored.
pub fn covers(filter: &EntityFilter, entity: &Entity) -> bool {
    let any = |wanted: &[String], actual: Option<&str>| {
        wanted.is_empty()
            || actual.is_some_and(|a| {
                let a = a.to_lowercase();
                wanted.iter().any(|w| w.to_lowercase() == a)
            })
    };
    if !any(&filter.kinds, Some(&entity.kind))
        || !any(&filter.namespaces, Some(&entity.metadata.namespace))
        || !any(&filter.types, entity.spec_str("type"))
        || !any(&filter.lifecycles, entity.spec_str("lifecycle"))
    {
        return false;
    }
    if !filter.tags.is_empty()
        && !entity
            .metadata
            .tags
            .iter()
            .any(|t| any(&filter.tags, Some(t)))
    {
        return false;
    }
    if !filter.owners.is_empty() && !owner_matches(&filter.owners, entity) {
        return false;
    }
    if !filter.fields.is_empty() {
        // Only now pay for the JSON form of the entity.
        let Ok(json) = serde_json::to_value(entity) else {
            return false;
        };
        for (path, wanted) in &filter.fields {
            let Ok(path) = FieldPath::parse(path) else {
                return false;
            };
            if !path.lookup(&json).is_some_and(|v| value_matches(v, wanted)) {
                return false;
            }
        }
    }
    true
}

fn owner_matches(owners: &[String], entity: &Entity) -> bool {
    let Some(owner) = entity.spec_str("owner") else {
        return false;
    };
    let Ok(owner) = EntityRef::parse(owner, owner_defaults(&entity.metadata.namespace)) else {
        return false;
    };
    let owner = owner.key();
    owners.iter().any(|wanted| {
        EntityRef::parse(wanted, owner_defaults(portolan_catalog::DEFAULT_NAMESPACE))
            .is_ok_and(|w| w.key() == owner)
    })
}

/// A scalar as the text it matches as, or any element of an array.
fn value_matches(value: &Value, wanted: &str) -> bool {
    let wanted = wanted.to_lowercase();
    let scalar = |v: &Value| match v {
        Value::String(s) => s.to_lowercase() == wanted,
        Value::Number(n) => n.to_string() == wanted,
        Value::Bool(b) => b.to_string() == wanted,
        _ => false,
    };
    match value {
        Value::Array(items) => items.iter().any(scalar),
        other => scalar(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Entity {
        Entity::from_value(json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {
                "name": "checkout",
                "namespace": "shop",
                "tags": ["java", "payments"],
                "annotations": {"backstage.io/techdocs-ref": "dir:."}
            },
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-a",
                     "system": "Webshop", "replicas": 3, "public": true,
                     "regions": ["eu", "us"]}
        }))
        .unwrap()
    }

    fn filter(value: serde_json::Value) -> EntityFilter {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn an_empty_filter_covers_everything() {
        assert!(covers(&EntityFilter::default(), &service()));
    }

    #[test]
    fn lists_match_any_value_case_insensitively() {
        let e = service();
        assert!(covers(&filter(json!({"kinds": ["component"]})), &e));
        assert!(covers(&filter(json!({"kinds": ["API", "Component"]})), &e));
        assert!(!covers(&filter(json!({"kinds": ["API"]})), &e));
        assert!(covers(&filter(json!({"types": ["Service"]})), &e));
        assert!(covers(&filter(json!({"lifecycles": ["PRODUCTION"]})), &e));
        assert!(!covers(
            &filter(json!({"lifecycles": ["experimental"]})),
            &e
        ));
        assert!(covers(&filter(json!({"namespaces": ["Shop"]})), &e));
        assert!(!covers(&filter(json!({"namespaces": ["default"]})), &e));
        assert!(covers(&filter(json!({"tags": ["JAVA"]})), &e));
        assert!(covers(&filter(json!({"tags": ["go", "payments"]})), &e));
        assert!(!covers(&filter(json!({"tags": ["go"]})), &e));
    }

    #[test]
    fn fields_are_anded() {
        let e = service();
        assert!(covers(
            &filter(json!({"kinds": ["Component"], "types": ["service"], "tags": ["java"]})),
            &e
        ));
        assert!(!covers(
            &filter(json!({"kinds": ["Component"], "types": ["website"]})),
            &e
        ));
    }

    #[test]
    fn a_missing_field_never_matches() {
        let api = Entity::from_value(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}
        }))
        .unwrap();
        assert!(!covers(
            &filter(json!({"lifecycles": ["production"]})),
            &api
        ));
        assert!(!covers(&filter(json!({"owners": ["team-a"]})), &api));
        assert!(!covers(
            &filter(json!({"fields": {"spec.system": "x"}})),
            &api
        ));
    }

    #[test]
    fn owners_compare_as_references() {
        // spec.owner "team-a" in namespace shop is group:shop/team-a.
        let e = service();
        assert!(covers(&filter(json!({"owners": ["shop/team-a"]})), &e));
        assert!(covers(
            &filter(json!({"owners": ["Group:Shop/Team-A"]})),
            &e
        ));
        assert!(
            !covers(&filter(json!({"owners": ["team-a"]})), &e),
            "group:default/team-a is another group"
        );
        assert!(!covers(
            &filter(json!({"owners": ["user:shop/team-a"]})),
            &e
        ));

        let mut in_default = service();
        in_default.metadata.namespace = "default".into();
        assert!(covers(&filter(json!({"owners": ["team-a"]})), &in_default));
        assert!(covers(
            &filter(json!({"owners": ["group:default/team-a"]})),
            &in_default
        ));
        assert!(!covers(
            &filter(json!({"owners": ["not a ref"]})),
            &in_default
        ));
    }

    #[test]
    fn field_paths_match_scalars_and_array_elements() {
        let e = service();
        let f = |path: &str, value: &str| filter(json!({"fields": {path: value}}));
        assert!(covers(&f("spec.system", "webshop"), &e));
        assert!(!covers(&f("spec.system", "intranet"), &e));
        assert!(covers(&f("spec.replicas", "3"), &e));
        assert!(covers(&f("spec.public", "true"), &e));
        assert!(covers(&f("spec.regions", "US"), &e));
        assert!(covers(
            &f("metadata.annotations.backstage.io/techdocs-ref", "dir:."),
            &e
        ));
        assert!(!covers(&f("spec.missing", "x"), &e));
        assert!(!covers(&f("spec..bad", "x"), &e));
        let both = filter(json!({"fields": {"spec.system": "webshop", "spec.type": "library"}}));
        assert!(!covers(&both, &e));
    }
}
