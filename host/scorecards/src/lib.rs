//! Portolan's scorecards: what a scorecard is, which entities it covers,
//! how an entity's rule outcomes become a level, and exemptions. Pure data
//! and rules: no HTTP, no plugins, no SQL. The tables live in
//! `portolan-store` (its `scorecards` module), which keeps definitions as
//! JSON and results as plain rows; this crate is where they get meaning.
//!
//! A tour of the modules:
//!
//! - [`definition`]: [`ScorecardDefinition`] (id, title, filter, ordered
//!   levels with the floor first, rules calling `plugin-id/check-id` with
//!   parameters), [`ScorecardDefinition::from_value`] reporting every
//!   problem at a JSON pointer, and the hook
//!   [`ScorecardDefinition::check_references`] through which the server
//!   refuses checks that no loaded plugin offers.
//! - [`filter`]: [`covers`], whether a scorecard applies to an entity,
//!   matching as the catalog's filters do.
//! - [`levels`]: [`standing`], an entity's level from its rule outcomes
//!   and the failing rules between it and the next level.
//! - [`exemption`]: [`ExemptionRequest`] validated into an [`Exemption`]
//!   (reason and future expiry required), and [`ActiveExemptions`], those
//!   in force at a given time.
//! - [`evaluation`]: [`evaluate_entity`], the checks' answers for one
//!   entity plus exemptions into the `EntityEvaluation` the store writes.
//!
//! # How the pieces fit (the server's part, still to come)
//!
//! - **Defining**: `PUT /api/v1/scorecards/{id}` parses the body with
//!   [`ScorecardDefinition::from_value`], checks that the path's id is the
//!   body's, calls [`ScorecardDefinition::check_references`] with a
//!   resolver over the loaded scorecard-check plugins' `describe` output
//!   (and, once a JSON Schema crate is in, validates parameters against
//!   each check's schema), answers 422 with every problem, and stores the
//!   definition with `Store::put_scorecard`. Scorecards from files take the
//!   same path.
//! - **Evaluating**: a job on the durable queue per scorecard (or per
//!   changed entity) lists the catalog, keeps the entities [`covers`]
//!   accepts, and calls each rule's check with a *batch* of entities per
//!   plugin call. A check that traps, times out or answers garbage gives
//!   [`Outcome::Error`] for its rule on that batch only. The exemptions
//!   from `Store::scorecard_exemptions` become [`ActiveExemptions`] at the
//!   evaluation's start; [`evaluate_entity`] turns each entity's answers
//!   into an evaluation, and `Store::write_scorecard_results` writes a
//!   batch of them in one transaction, appending level history only where
//!   a level changed. Entities that left the catalog or the coverage go
//!   through `Store::forget_scorecard_entities`.
//! - **Reading**: `GET /api/v1/scorecards/{id}/results` from
//!   `Store::scorecard_summary` (entities per level, each rule's counts per
//!   status) and `Store::scorecard_entities` (pages); the per-entity view
//!   from `Store::entity_scorecards`, re-running [`standing`] over the
//!   stored statuses to name the rules that stand between the entity and
//!   its next level; history from `Store::scorecard_level_history`.

pub mod definition;
pub mod evaluation;
pub mod exemption;
pub mod filter;
pub mod levels;

pub use definition::{
    check_id, CheckRef, EntityFilter, InvalidDefinition, Rule, ScorecardDefinition, DEFAULT_LEVELS,
};
pub use evaluation::{evaluate_entity, CheckAnswer};
pub use exemption::{ActiveExemptions, Exemption, ExemptionRequest, InvalidExemption};
pub use filter::covers;
pub use levels::{standing, NextLevel, Outcome, Standing};
