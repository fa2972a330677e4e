//! Entity references: `kind:namespace/name`, with Backstage's shorthand.
//!
//! A reference in a spec field may leave out the kind (the field implies
//! one: `spec.owner` means a Group) and the namespace (the referring
//! entity's own). [`EntityRef::parse`] fills both in exactly as Backstage's
//! `parseEntityRef` does, and [`EntityRef`]'s `Display` writes the same
//! string as Backstage's `stringifyEntityRef`: kind and namespace in lower
//! case, the name as written.

use std::fmt;

use crate::rules;

/// The namespace of an entity that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A fully qualified reference to an entity. Equality is exact; compare
/// [`key`](Self::key)s for the case-insensitive identity the catalog uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// What a shorthand reference falls back on.
#[derive(Debug, Clone, Copy)]
pub struct RefDefaults<'a> {
    /// The kind the field implies, or `None` when the reference must name
    /// its kind (`spec.dependsOn`).
    pub kind: Option<&'a str>,
    /// The namespace of the entity that holds the reference.
    pub namespace: &'a str,
}

/// Why a reference does not parse. The messages follow Backstage's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// A part is empty (`component:`, `/name`, `a:/b`).
    #[error("entity reference {0:?} is not of the form [<kind>:][<namespace>/]<name>")]
    Malformed(String),
    /// No kind written and the field implies none.
    #[error(
        "entity reference {0:?} has no kind, and this field needs one (e.g. \"component:{0}\")"
    )]
    MissingKind(String),
    /// A part breaks the naming rules.
    #[error("entity reference {reference:?}: {problem}")]
    InvalidPart { reference: String, problem: String },
}

impl EntityRef {
    /// A reference from its three parts, as written.
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> EntityRef {
        EntityRef {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Parses `[kind:][namespace/]name`, filling in what is left out from
    /// `defaults`, and checks each part against the naming rules.
    pub fn parse(text: &str, defaults: RefDefaults<'_>) -> Result<EntityRef, RefError> {
        // Backstage: a slash before the first colon means the colon belongs
        // to the name (`ns/a:b`), so there is no kind.
        let slash = text.find('/');
        let colon = text.find(':').filter(|&c| slash.is_none_or(|s| c < s));
        let kind = colon.map(|c| &text[..c]);
        let after_kind = colon.map_or(0, |c| c + 1);
        let namespace = slash.map(|s| &text[after_kind..s]);
        let name = &text[slash.map_or(after_kind, |s| s + 1)..];
        if kind == Some("") || namespace == Some("") || name.is_empty() {
            return Err(RefError::Malformed(text.to_owned()));
        }
        let kind = kind
            .or(defaults.kind)
            .ok_or_else(|| RefError::MissingKind(text.to_owned()))?;
        let namespace = namespace.unwrap_or(defaults.namespace);
        let invalid = |problem: String| RefError::InvalidPart {
            reference: text.to_owned(),
            problem,
        };
        rules::check_kind(kind).map_err(|p| invalid(format!("kind {p}")))?;
        // References match case-insensitively, so `Default/x` names the
        // namespace `default`.
        rules::check_namespace(&namespace.to_lowercase())
            .map_err(|p| invalid(format!("namespace {p}")))?;
        rules::check_name(name).map_err(|p| invalid(format!("name {p}")))?;
        Ok(EntityRef::new(kind, namespace, name))
    }

    /// The catalog's identity for this entity: the whole reference in lower
    /// case, since kind, namespace and name all compare case-insensitively.
    pub fn key(&self) -> String {
        if self.is_ascii() {
            // The usual case, spelled without the intermediate strings.
            self.spelled(true)
        } else {
            self.to_string().to_lowercase()
        }
    }

    fn is_ascii(&self) -> bool {
        self.kind.is_ascii() && self.namespace.is_ascii() && self.name.is_ascii()
    }

    /// `kind:namespace/name` with kind and namespace lower-cased, and the
    /// name too if `lower_name`; ASCII only.
    fn spelled(&self, lower_name: bool) -> String {
        let mut out =
            String::with_capacity(self.kind.len() + self.namespace.len() + self.name.len() + 2);
        let mut push_lower =
            |s: &str| out.extend(s.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        push_lower(&self.kind);
        push_lower(":");
        push_lower(&self.namespace);
        push_lower("/");
        if lower_name {
            push_lower(&self.name);
        } else {
            out.push_str(&self.name);
        }
        out
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ascii() {
            return f.write_str(&self.spelled(false));
        }
        write!(
            f,
            "{}:{}/{}",
            self.kind.to_lowercase(),
            self.namespace.to_lowercase(),
            self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_spellings_are_the_same_on_the_ascii_path_and_the_general_one() {
        for (kind, namespace, name) in [
            ("Component", "Default", "Payments-API"),
            ("group", "default", "team-a"),
            ("API", "Shop.Eu", "V2_Orders"),
            ("Component", "default", "ΑΣ"),
            ("KÄSE", "Ünï", "Straße"),
        ] {
            let r = EntityRef::new(kind, namespace, name);
            let general = format!(
                "{}:{}/{}",
                kind.to_lowercase(),
                namespace.to_lowercase(),
                name
            );
            assert_eq!(r.to_string(), general);
            assert_eq!(r.key(), general.to_lowercase());
        }
    }

    fn group_in(ns: &str) -> RefDefaults<'_> {
        RefDefaults {
            kind: Some("Group"),
            namespace: ns,
        }
    }

    #[test]
    fn shorthand_takes_kind_and_namespace_from_the_field() {
        let r = EntityRef::parse("team-a", group_in("default")).unwrap();
        assert_eq!(r, EntityRef::new("Group", "default", "team-a"));
        assert_eq!(r.to_string(), "group:default/team-a");
        let r = EntityRef::parse("ops/team-a", group_in("default")).unwrap();
        assert_eq!(r.to_string(), "group:ops/team-a");
        let r = EntityRef::parse("user:jdoe", group_in("acme")).unwrap();
        assert_eq!(r.to_string(), "user:acme/jdoe");
        let r = EntityRef::parse("Component:Default/My-Svc", group_in("x")).unwrap();
        assert_eq!(r.to_string(), "component:default/My-Svc");
        assert_eq!(r.key(), "component:default/my-svc");
    }

    #[test]
    fn missing_kind_is_an_error_when_the_field_implies_none() {
        let defaults = RefDefaults {
            kind: None,
            namespace: "default",
        };
        assert_eq!(
            EntityRef::parse("payments", defaults),
            Err(RefError::MissingKind("payments".into()))
        );
        assert!(EntityRef::parse("resource:db", defaults).is_ok());
    }

    #[test]
    fn empty_parts_are_malformed() {
        for bad in ["", "component:", ":x", "/x", "a:/x", "a:b/"] {
            assert_eq!(
                EntityRef::parse(bad, group_in("default")),
                Err(RefError::Malformed(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn parts_must_follow_the_naming_rules() {
        for bad in ["team a", "group:Bad_NS/x", "gr oup:x", "-team"] {
            assert!(
                matches!(
                    EntityRef::parse(bad, group_in("default")),
                    Err(RefError::InvalidPart { .. })
                ),
                "{bad}"
            );
        }
    }
}
