//! The well-known kinds: which spec fields each requires, which fields are
//! references and what relations they produce. One table, read by both
//! [`crate::validate`] and [`crate::relations`], so the two cannot drift.
//!
//! Mirrors Backstage's kind schemas (`packages/catalog-model/src/schema/
//! kinds/*.schema.json`) and its `BuiltinKindsEntityProcessor`.

use crate::relations::names::*;

/// The apiVersions under which Backstage defines its core kinds.
pub const BACKSTAGE_API_VERSIONS: &[&str] = &["backstage.io/v1alpha1", "backstage.io/v1beta1"];

/// The apiVersion of scaffolder templates.
pub const TEMPLATE_API_VERSIONS: &[&str] = &["scaffolder.backstage.io/v1beta3"];

/// What a spec field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A non-empty string.
    String,
    /// An array of non-empty strings (may be empty).
    Strings,
    /// A JSON object.
    Object,
    /// An array of objects.
    Objects,
    /// One of the given strings.
    OneOf(&'static [&'static str]),
}

/// How a reference field turns into relations: the kind a shorthand implies
/// and the relation from this entity to the target (`forward`) and back
/// (`reverse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefField {
    /// `None`: the reference must name its kind (`spec.dependsOn`).
    pub default_kind: Option<&'static str>,
    pub forward: &'static str,
    pub reverse: &'static str,
}

/// One spec field of a well-known kind.
#[derive(Debug, Clone, Copy)]
pub struct SpecField {
    pub name: &'static str,
    pub required: bool,
    pub shape: Shape,
    pub reference: Option<RefField>,
}

/// A well-known kind.
#[derive(Debug)]
pub struct KindSpec {
    pub kind: &'static str,
    pub api_versions: &'static [&'static str],
    pub fields: &'static [SpecField],
}

const fn field(name: &'static str, required: bool, shape: Shape) -> SpecField {
    SpecField {
        name,
        required,
        shape,
        reference: None,
    }
}

const fn reference(
    name: &'static str,
    required: bool,
    shape: Shape,
    default_kind: Option<&'static str>,
    forward: &'static str,
    reverse: &'static str,
) -> SpecField {
    SpecField {
        name,
        required,
        shape,
        reference: Some(RefField {
            default_kind,
            forward,
            reverse,
        }),
    }
}

const OWNER: SpecField = reference(
    "owner",
    true,
    Shape::String,
    Some("Group"),
    OWNED_BY,
    OWNER_OF,
);
const SYSTEM: SpecField = reference(
    "system",
    false,
    Shape::String,
    Some("System"),
    PART_OF,
    HAS_PART,
);
const DEPENDS_ON: SpecField = reference(
    "dependsOn",
    false,
    Shape::Strings,
    None,
    DEPENDS_ON_REL,
    DEPENDENCY_OF,
);
const DEPENDENCY_OF_FIELD: SpecField = reference(
    "dependencyOf",
    false,
    Shape::Strings,
    None,
    DEPENDENCY_OF,
    DEPENDS_ON_REL,
);
const TYPE: SpecField = field("type", true, Shape::String);
const OPTIONAL_TYPE: SpecField = field("type", false, Shape::String);
const LIFECYCLE: SpecField = field("lifecycle", true, Shape::String);
const PROFILE: SpecField = field("profile", false, Shape::Object);

/// Every well-known kind.
pub const KINDS: &[KindSpec] = &[
    KindSpec {
        kind: "Component",
        api_versions: BACKSTAGE_API_VERSIONS,
        fields: &[
            TYPE,
            LIFECYCLE,
            OWNER,
            SYSTEM,
            reference(
                "subcomponentOf",
                false,
                Shape::String,
                Some("Component"),
                PART_OF,
                HAS_PART,
            ),
            reference(
                "providesApis",
                false,
                Shape::Strings,
                Some("API"),
                PROVIDES_API,
                API_PROVIDED_BY,
            ),
            reference(
                "consumesApis",
                false,
                Shape::Strings,
                Some("API"),
                CONSUMES_API,
                API_CONSUMED_BY,
            ),
            DEPENDS_ON,
            DEPENDENCY_OF_FIELD,
        ],
    },
    KindSpec {
        kind: "API",
        api_versions: BACKSTAGE_API_VERSIONS,
        fields: &[
            TYPE,
            LIFECYCLE,
            OWNER,
            SYSTEM,
            field("definition", true, Shape::String),
        ],
    },
    KindSpec {
        kind: "Resource",
        api_versions: BACKSTAGE_API_VERSIONS,
        fields: &[TYPE, OWNER, SYSTEM, DEPENDS_ON, DEPENDENCY_OF_FIELD],
    },
    KindSpec {
        kind: "System",
        api_versions: BACKSTAGE_API_VERSIONS,
        fields: &[
            OWNER,
            OPTIONAL_TYPE,
            reference(
                "domain",
                false,
                Shape::String,
                Some("Domain"),
                PART_OF,
                HAS_PART,
            ),
        ],
    },
    KindSpec {
        kind: "Domain",
        api_versions: BACKSTAGE_API_VERSIONS,
        fields: &[
            OWNER,
            OPTIONAL_TYPE,
            reference(
                "subdomainOf",
                false,
                Shape::String,
                Some("Domain"),
                PART_OF,
                HAS_PART,
            ),
        ],
    },
    KindSpec {
        kind: "Group",
        api_versions: BACKSTAGE_API_VERSIONS,
        fields: &[
            TYPE,
            PROFILE,
            reference(
                "parent",
                false,
                Shape::String,
                Some("Group"),
                CHILD_OF,
                PARENT_OF,
            ),
            reference(
                "children",
                true,
                Shape::Strings,
                Some("Group"),
                PARENT_OF,
                CHILD_OF,
            ),
            reference(
                "members",
                false,
                Shape::Strings,
                Some("User"),
                HAS_MEMBER,
                MEMBER_OF,
            ),
        ],
    },
    KindSpec {
        kind: "User",
        api_versions: BACKSTAGE_API_VERSIONS,
        fields: &[
            PROFILE,
            reference(
                "memberOf",
                true,
                Shape::Strings,
                Some("Group"),
                MEMBER_OF,
                HAS_MEMBER,
            ),
        ],
    },
    KindSpec {
        kind: "Location",
        api_versions: BACKSTAGE_API_VERSIONS,
        fields: &[
            OPTIONAL_TYPE,
            field("target", false, Shape::String),
            field("targets", false, Shape::Strings),
            field("presence", false, Shape::OneOf(&["required", "optional"])),
        ],
    },
    KindSpec {
        kind: "Template",
        api_versions: TEMPLATE_API_VERSIONS,
        fields: &[
            TYPE,
            reference(
                "owner",
                false,
                Shape::String,
                Some("Group"),
                OWNED_BY,
                OWNER_OF,
            ),
            field("steps", true, Shape::Objects),
        ],
    },
];

/// The well-known kind an entity is, if any. Kinds match exactly, as in
/// Backstage's schemas; the apiVersion is checked by the caller, so that a
/// `Component` under an unsupported `backstage.io/` version gets a clear
/// error rather than silently skipping validation.
pub fn well_known(kind: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// Whether an apiVersion is in a group that defines the well-known kinds,
/// so a well-known kind under it must use a version we know.
pub fn claims_well_known(api_version: &str) -> bool {
    api_version.starts_with("backstage.io/") || api_version.starts_with("scaffolder.backstage.io/")
}
