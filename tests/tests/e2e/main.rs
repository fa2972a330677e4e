//! The end-to-end suite, one test binary: every module drives the real host
//! (registry, store, HTTP API) with real plugin components. Linking the host
//! and wasmtime once instead of once per file keeps a cold `make test` within
//! minutes and its target folder within a few gigabytes.
//!
//! `plugins.rs` and `hostile.rs` beside this folder stay binaries of their
//! own: they assert how soon the host reacts (a dropped plugin listed within
//! a second, a runaway call stopped at its deadline), which must not be
//! measured while this suite compiles Python and JavaScript components on
//! the same cores.
//!
//! Run one area with `cargo test -p portolan-e2e --test e2e <module>::`,
//! e.g. `polyglot::` or `template_plugins::`.

mod action_plugins;
mod action_replicas;
mod actions;
mod check_plugins;
mod hygiene;
mod polyglot;
mod scorecards;
mod source_plugins;
mod sources;
mod template_plugins;
mod templates;
mod ui;
mod versions;
