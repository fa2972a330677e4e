//! Portolan's plugin runtime: the only crate that touches wasmtime.
//!
//! A tour of the modules:
//!
//! - [`engine`]: the one [`wasmtime::Engine`] of the process (component model,
//!   pooling allocator sized for every guest language, epoch interruption) and
//!   the ticker thread that drives call deadlines.
//! - [`bindings`]: host-side bindings generated from the WIT contract, one
//!   module per supported contract version (`wit/` is 0.4.0, `wit/v0.3.0/`,
//!   `wit/v0.2.0/` and `wit/v0.1.0/` the frozen older ones) and inside it
//!   one per plugin role.
//! - [`catalog`]: the `catalog` import (since 0.3.0): read-only lookups of
//!   entities, answered by a [`CatalogLookup`] the server supplies.
//! - [`sidecar`]: the operator's grants for one plugin (`NAME.toml` beside
//!   `NAME.wasm`), parsed strictly and validated with every problem reported.
//! - [`schedule`]: a catalog source's `[schedule]` (interval or cron).
//! - [`outbound`]: the outbound HTTP allowlist enforced on `wasi:http`.
//! - [`call`]: the per-call store state (WASI context built from grants only,
//!   limits, captured log) and the error a failed call reports.
//! - [`plugin`]: a loaded plugin: its role, description and pre-linked
//!   component, and the typed calls for each role.
//! - [`cache`]: compiled code cached on disk, keyed by file hash and engine.
//! - [`registry`]: the plugins folder: scan, watch, load off the async
//!   threads, swap atomically, unload.
//! - [`model`]: the plain Rust shapes of what crosses the contract (entities,
//!   checks and their outcomes, actions, ...), independent of the generated
//!   bindings.
//! - `convert`: model <-> bindings for every contract version; older
//!   versions are adapted to the current model.

pub mod bindings;
pub mod cache;
pub mod call;
pub mod catalog;
mod convert;
pub mod engine;
pub mod model;
pub mod outbound;
pub mod plugin;
pub mod registry;
pub mod schedule;
pub mod sidecar;
mod waits;

pub use bindings::Contract;
pub use call::{CallControl, CallError, CallReport, LogLevel, LogLine, LogSink};
pub use catalog::{CatalogAccess, CatalogLookup, LookupError, MAX_LOOKUP_REFS};
pub use engine::{Runtime, RuntimeConfig};
pub use plugin::{EntityBatch, Plugin, Role, RuleCall, RulesReport};
pub use registry::{PluginEntry, PluginStatus, Registry};
pub use schedule::Schedule;
pub use sidecar::{Grants, Limits, ScaffoldStep, ScaffoldTarget, Sidecar};
