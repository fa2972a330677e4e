//! Portolan's storage: the only crate that talks to a database.
//!
//! The database URL picks the backend: `sqlite:PATH` for the embedded default
//! (one file in the data directory, created on first run) or
//! `postgres://...` for teams that run several replicas. Both backends pass
//! the same test suite (`tests/suite/store.rs`).
//!
//! A short tour:
//!
//! - [`store`]: [`Store`], the cheap-to-clone handle the rest of the host
//!   holds. [`Store::connect`] parses the URL, opens the pool and runs the
//!   embedded migrations (`migrations/sqlite/`, `migrations/postgres/`).
//!   Internally it is an enum of two pools rather than `sqlx::Any`, so that
//!   a query may use backend-specific SQL (JSONB, full-text search) where it
//!   pays off.
//! - [`tokens`]: API tokens for the HTTP API: [`Role`], [`TokenInfo`],
//!   [`NewToken`] and the `Store` methods that create, verify, list and
//!   revoke them. Only a hash of each secret is stored.
//! - [`entities`]: the catalog's tables: [`Store::put_entities`] (batch
//!   upsert in one transaction), [`Store::put_entity`] (with `If-Match`),
//!   [`Store::entity`] and [`Store::delete_entity`]. Relations are kept in
//!   both directions in the same transaction as their entity.
//! - [`query`]: the catalog's read side: [`Store::list_entities`] (filters
//!   on any field, full-text search, sort on any field, keyset cursor
//!   pages, total), [`Store::entity_facets`] (counts per value) and
//!   [`Store::relation_graph`] (the relations around one entity).
//! - [`jobs`]: the durable work queue ([`Store::enqueue_job`],
//!   [`Store::claim_job`] with a lease, [`Store::renew_job`],
//!   [`Store::finish_job`], [`Store::expire_jobs`]) that source syncs and
//!   other long work go through; one claimer per job, on any replica.
//! - [`scorecards`]: scorecards' definitions (as JSON), exemptions, each
//!   entity's current rule results (one row per scorecard and entity, with
//!   per-rule status counts kept alongside) and level history;
//!   [`Store::write_scorecard_results`] writes one evaluation of many
//!   entities in one transaction.
//! - [`actions`]: day-2 action runs (each row is also its place in the
//!   queue: [`Store::claim_run`] with a lease, approvals, cancel, retry),
//!   their logs and the audit trail.
//! - [`error`]: [`StoreError`], one enum whose cases callers branch on
//!   (bad URL, database unreachable, migration failed, query failed).
//! - [`sqlite_memory`]: SQLite's heap through the program's allocator,
//!   for a `main` to set up before it opens a database.
//! - [`testing`]: test support for this and other crates: throwaway SQLite
//!   files and PostgreSQL databases.
//!
//! All SQL is written as runtime queries (`sqlx::query` with binds) rather
//! than the compile-time checked macros, so building needs no database.

pub mod actions;
pub mod entities;
pub mod error;
pub mod jobs;
pub mod query;
pub mod scorecards;
mod sqlite_direct;
pub mod sqlite_memory;
pub mod store;
pub mod testing;
pub mod tokens;

pub use actions::{
    Approval, AuditEntry, AuditFilter, ClaimedRun, NewAuditEntry, NewLogLine, NewRun, RetryRun,
    Run, RunEnd, RunFilter, RunLogLine, RunStatus, MAX_RUN_PAGE,
};
pub use entities::{BatchSummary, IfMatch, Origin, SourceSyncSummary, StoredEntity, WriteOutcome};
pub use error::StoreError;
pub use jobs::{Job, JobStatus, NewJob};
pub use query::{
    Cursor, Direction, EntityPage, EntityQuery, FacetCount, FieldFilter, FieldPath, GraphEdge,
    GraphNode, GraphQuery, NodeEntity, RelationGraph, SortKey, MAX_PAGE_SIZE,
};
pub use scorecards::{
    EntityEvaluation, EntityScorecard, LevelChange, NewRuleResult, NewScorecardExemption,
    ResultStatus, ResultsWritten, RuleResult, ScorecardExemption, ScorecardSummary, StandingFilter,
    StatusCounts, StoredScorecard, WriteMode, MAX_SCORECARD_PAGE,
};
pub use store::{Backend, Store};
pub use tokens::{NewToken, ParseRoleError, Role, TokenInfo};
