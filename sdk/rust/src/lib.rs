//! Write Portolan plugins in Rust.
//!
//! A Portolan plugin is a WebAssembly component that plays exactly one role.
//! This crate turns a role into a plain Rust trait, so that a plugin is a
//! type, one `impl` and one [`export!`] line:
//!
//! ```no_run
//! use portolan_sdk::check::{Error, Outcome, PluginInfo};
//! use portolan_sdk::serde_json::{json, Value};
//! use portolan_sdk::{about, Entity, ScorecardCheck};
//!
//! struct HasDescription;
//!
//! impl ScorecardCheck for HasDescription {
//!     fn describe() -> PluginInfo {
//!         let about = about!("Has a description", "Every entity says what it is.");
//!         PluginInfo::single("has-description", about, json!({"type": "object"}))
//!     }
//!
//!     fn evaluate(_check: &str, _parameters: Value, entities: Vec<Entity>) -> Result<Vec<Outcome>, Error> {
//!         Ok(entities
//!             .iter()
//!             .map(|e| match e.description.as_deref() {
//!                 Some(d) if !d.trim().is_empty() => Outcome::pass(),
//!                 _ => Outcome::fail("metadata.description is empty"),
//!             })
//!             .collect())
//!     }
//! }
//!
//! portolan_sdk::export!(ScorecardCheck for HasDescription);
//! ```
//!
//! A plugin may offer several checks: describe each with
//! [`check::CheckInfo`] and match on the check id in
//! [`ScorecardCheck::evaluate`]. The SDK builds against the contract
//! `portolan:plugin@0.4.0`.
//!
//! # Tour
//!
//! | module | what it holds |
//! | --- | --- |
//! | crate root | the catalog types ([`Entity`], [`Link`], [`Relation`], [`Pair`], [`About`]), the four role traits, [`export!`], [`about!`]; [`Entity::field`] reads a dotted path such as `spec.owner` without building the whole descriptor (what a check over many entities wants), [`lookup_path`] the same on any JSON value |
//! | [`source`] | [`CatalogSource`]: pulls entities into the catalog, page by page |
//! | [`scaffold`] | [`ScaffoldGenerator`]: turns form parameters into the files of a new project |
//! | [`action`] | [`Action`]: a day-2 operation run on behalf of a developer |
//! | [`check`] | [`ScorecardCheck`]: one or more checks that judge a batch of entities against a rule |
//! | [`catalog`] | read-only lookups in the portal's catalog: [`catalog::lookup`] (since contract 0.3.0) |
//! | [`host`] | what the host offers every plugin: [`log`] (and [`info!`] & co.), [`settings`], [`setting`], [`secret`] |
//! | [`http`] | a small blocking HTTP client over `wasi:http/outgoing-handler` |
//!
//! JSON-typed WIT values (`spec`, parameters, schemas, inputs, outputs) are
//! [`serde_json::Value`] on the Rust side; the SDK parses and prints them.
//!
//! # Building a plugin
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`; rustc then emits a
//! component directly. The `plugins/` workspace of the Portolan repository
//! shows the toolchain set-up (`rust-toolchain.toml`, `.cargo/config.toml`)
//! and `scripts/build-plugins.sh` builds it.
//!
//! The plugin must depend on this crate under its own name, `portolan_sdk`:
//! the code [`export!`] generates refers to `::portolan_sdk`.
//!
//! # One role per component
//!
//! `wit_bindgen::generate!` embeds a `component-type` custom section that
//! describes the world it generated, and `wit-component` (run by the linker)
//! merges every such section it finds into the component's world. Had the SDK
//! generated all four role worlds, every plugin would be asked to export all
//! four role interfaces, and the link would fail or the host would see the
//! wrong role. Cargo features per role would avoid that only as long as every
//! plugin is built in its own `cargo` invocation, since Cargo unifies features
//! across the packages of one build.
//!
//! So the roles are split by *where* bindings are generated:
//!
//! - this crate generates only the `imports` world (the `host` interface, the
//!   shared types and `wasi:http`), which has no exports;
//! - [`export!`] runs `wit_bindgen::generate!` for the one role world the
//!   plugin names, inside the plugin's crate, mapping every imported interface
//!   back to this crate's bindings (wit-bindgen's `with`), so only the export
//!   glue is new code and [`Entity`] is the same type everywhere.
//!
//! Each component therefore carries exactly one role's type section, and a
//! whole workspace of plugins of different roles builds in one plain
//! `cargo build`.
#![warn(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/generate.rs"));

pub mod action;
pub mod catalog;
pub mod check;
mod entity;
mod export;
pub mod host;
pub mod http;
pub mod scaffold;
pub mod source;

pub use action::Action;
pub use check::ScorecardCheck;
pub use entity::{lookup_path, About, DescriptorError, Entity, FieldReader, Link, Pair, Relation};
pub use host::{log, secret, setting, settings, Level, SecretError};
pub use scaffold::ScaffoldGenerator;
pub use source::CatalogSource;

/// Re-exported so that plugins use the same `serde_json` as the SDK.
pub use serde_json;

/// Everything a plugin usually needs, for `use portolan_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        about, export, log, secret, setting, settings, About, Action, CatalogSource, Entity, Level,
        Link, Pair, Relation, ScaffoldGenerator, ScorecardCheck,
    };
    pub use serde_json::{json, Value};
}

/// Implementation details used by the macros. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    /// Generated bindings of the `imports` world.
    #[allow(missing_docs, clippy::all, unused, unsafe_op_in_unsafe_fn)]
    pub mod bindings {
        generate_imports!();
    }

    /// Parses JSON text handed over by the host. The host promises valid JSON;
    /// the error only guards against a host bug.
    pub fn parse_json(text: &str) -> Result<serde_json::Value, String> {
        serde_json::from_str(text).map_err(|e| format!("the host passed invalid JSON: {e}"))
    }
}
