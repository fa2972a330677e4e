//! The Portolan portal: configuration, HTTP API, CLI and wiring.
//!
//! A tour of the modules:
//!
//! - [`config`]: the typed configuration (file, `PORTOLAN_*` environment,
//!   flags), validated with every problem reported at once.
//! - [`app`]: the shared state and the `run(listener, config, shutdown)`
//!   entry point used by `portolan serve` and by the end-to-end tests.
//! - [`api`]: the routes under `/api/v1` plus health, readiness and metrics.
//! - [`entities`]: the catalog's push and read API (`/api/v1/entities`):
//!   upsert, get, delete, batch push and list.
//! - [`sources`]: catalog sources (`/api/v1/sources`): list, sync now,
//!   sync history with counts, progress and problems.
//! - [`sync`]: the scheduler and workers that run source syncs through the
//!   store's durable queue, one replica per sync.
//! - [`scorecards`]: scorecards (`/api/v1/scorecards`, the entity pages'
//!   `/scorecards` views and badges): definitions from the API and files,
//!   exemptions, evaluations, results.
//! - [`evaluate`]: the scheduler and workers that evaluate scorecards
//!   through the durable queue; [`checks`] is its bridge to the check
//!   plugins and [`schema`] validates rule parameters against their schemas.
//! - [`actions`]: day-2 actions (`/api/v1/actions`, `/api/v1/runs`,
//!   `/api/v1/audit`): runs validated, approved, queued in the database,
//!   executed by workers on any replica with a live log, cancel, retry and
//!   an audit trail.
//! - [`templates`]: the scaffolder (`/api/v1/templates`): parameter forms,
//!   dry runs, runs that publish to a directory or a git repository and
//!   register the new project in the catalog.
//! - [`ui`]: the web UI, HTML rendered on the server from the API's own
//!   answers (catalog, entity pages, templates, actions and runs with live
//!   logs, scorecards, plugins, sign-in).
//! - [`lookup`]: the catalog lookups plugins may make
//!   (`portolan:plugin/catalog`), answered from the store.
//! - [`error`]: the API's error type (`application/problem+json`) and the
//!   extractors that turn malformed input into it.
//! - [`auth`]: bearer tokens with roles.
//! - [`metrics`]: Prometheus text metrics.
//! - [`openapi`]: the OpenAPI document served at `/api/openapi.json`.
//! - [`cli`]: the `portolan` command line.

pub mod actions;
pub mod api;
pub mod app;
pub mod apply;
pub mod auth;
pub mod checks;
pub mod cli;
pub mod config;
pub mod entities;
pub mod error;
pub mod evaluate;
pub mod lookup;
pub mod metrics;
pub mod openapi;
pub mod schema;
pub mod scorecards;
pub mod sources;
pub mod sync;
pub mod templates;
pub mod ui;

/// The allocator of every program that links the portal (the `portolan`
/// binary, its benchmarks and tests): mimalloc instead of the system's. The
/// portal's hot paths (catalog pages, batch pushes, scorecard evaluations)
/// allocate and free many small strings and JSON values from several
/// threads at once, where glibc's allocator spent about a quarter of a
/// scorecard evaluation's CPU time in a profile (`malloc`, `free`,
/// `malloc_consolidate` and their locks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps this process's heap on ordinary 4 KiB pages (Linux; elsewhere it
/// does nothing and answers `false`). Call it first thing in `main`.
///
/// mimalloc asks the kernel for transparent huge pages on its arenas
/// (`madvise(MADV_HUGEPAGE)`, honoured where the system's THP mode is
/// `madvise`, the usual default). It also hands freed memory back to the
/// kernel, and each later touch of such a region then faults in a whole
/// 2 MiB page that the kernel zeroes first: in a profile of the catalog's
/// batch ingest, zeroing pages was the largest single item (about 17% of
/// the CPU samples), and with this the batch push ran 10-20% faster
/// (the catalog bench, alternated runs). `PR_SET_THP_DISABLE` is the
/// per-process switch mimalloc itself uses for `MIMALLOC_ALLOW_THP=0`;
/// it leaves the system-wide setting alone.
pub fn use_small_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_THP_DISABLE reads no memory; it sets a
        // flag on this process and reports failure through its result.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn small_pages_turn_transparent_huge_pages_off_for_the_process() {
        assert!(super::use_small_pages());
        // SAFETY: PR_GET_THP_DISABLE only reads this process's flag.
        let off = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(off, 1, "the process still takes transparent huge pages");
    }
}
