//! Portolan's catalog model: Backstage-compatible entities, references,
//! validation and relations. Pure data and rules: no database, no HTTP, no
//! plugins, so the store, the server and (later) the sources all share it.
//!
//! A tour of the modules:
//!
//! - [`entity`]: [`Entity`], the descriptor (`apiVersion`, `kind`,
//!   `metadata`, `spec`, `relations`) and its content revision
//!   ([`Entity::etag`]).
//! - [`validate`]: [`Entity::from_value`] turns an untrusted document into an
//!   [`Entity`] or an [`InvalidEntity`] listing every problem at its JSON
//!   pointer.
//! - [`rules`]: Backstage's naming rules for names, namespaces, kinds,
//!   apiVersions, label and annotation keys, and tags.
//! - [`reference`]: [`EntityRef`], `kind:namespace/name` with Backstage's
//!   shorthand.
//! - [`kinds`]: the well-known kinds' required spec fields and reference
//!   fields, one table for validation and relations alike.
//! - [`relations`]: the relations a spec declares, both directions.
//! - [`parse`]: JSON and multi-document YAML bodies into documents.

pub mod entity;
pub mod kinds;
pub mod parse;
pub mod reference;
pub mod relations;
pub mod rules;
pub mod validate;

pub use entity::{Entity, Link, Metadata, Relation};
pub use parse::{json_array_items, parse_documents, Document, Format, ParseError};
pub use reference::{EntityRef, RefDefaults, RefError, DEFAULT_NAMESPACE};
pub use relations::{
    declared as declared_relations, derive as derive_relations, DeclaredRelation, DerivedRelation,
};
pub use validate::{InvalidEntity, Problem};
