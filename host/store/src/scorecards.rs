//! Scorecards' tables: definitions, exemptions, the current result of every
//! rule for every entity, and each entity's level over time.
//!
//! The store does not interpret a scorecard: a definition is a JSON value
//! that the `portolan-scorecards` crate has validated, statuses and levels
//! are computed there too, and this module only keeps them. Entities are
//! named by the catalog's lower-cased key (`kind:namespace/name`); every
//! method lower-cases the references it is given.
//!
//! An evaluation is written by [`Store::write_scorecard_results`] in one
//! transaction: each entity's results on a scorecard are one row (a
//! "standing", its rule results as JSON; migration 0009 says why), the
//! per-rule status counts move with each write, and a level
//! history row is appended only for entities whose level changed, so the
//! history grows with changes rather than with evaluations. The current
//! level is the history row that has no end (`until` is `None`).
//!
//! Times are milliseconds since the Unix epoch in the database, as in the
//! jobs table; the shapes here carry [`DateTime<Utc>`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::QueryBuilder;

use crate::store::{in_write_transaction, on_pool, on_write_pool, Pool};
use crate::{Store, StoreError};

/// Standing rows per multi-row INSERT: 6 binds each, so 30,000 binds, under
/// SQLite's 32,766 and PostgreSQL's 65,535 bind limits.
const STANDING_ROWS_PER_INSERT: usize = 5_000;

/// Rule count rows per multi-row upsert (4 binds each).
const COUNT_ROWS_PER_INSERT: usize = 8_000;

/// Level rows per multi-row INSERT (4 binds each).
const LEVEL_ROWS_PER_INSERT: usize = 8_000;

/// Entity keys per `IN (...)` lookup, update or delete (plus a bind or two
/// for the scorecard and the time).
const KEYS_PER_STATEMENT: usize = 8_000;

/// Which entities a page of [`Store::scorecard_entities_where`] keeps.
#[derive(Debug, Clone, Default)]
pub struct StandingFilter {
    /// Only entities currently at this level.
    pub level: Option<String>,
    /// Only entities whose result for this rule has this status.
    pub rule: Option<(String, ResultStatus)>,
}

/// The most entities one [`Store::scorecard_entities`] page returns: each
/// carries all its rule results.
pub const MAX_SCORECARD_PAGE: u32 = 1_000;

/// A scorecard as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredScorecard {
    pub id: String,
    /// The definition as the scorecards crate wrote it.
    pub definition: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The outcome of one rule for one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    Pass,
    Fail,
    /// The check could not decide (the plugin trapped, timed out or
    /// answered garbage).
    Error,
    /// Not passing, but an exemption in force covers it.
    Exempt,
    /// The rule does not apply to the entity (the check said so, or the
    /// check does not look at entities of its kind).
    Skip,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Pass => "pass",
            ResultStatus::Fail => "fail",
            ResultStatus::Error => "error",
            ResultStatus::Exempt => "exempt",
            ResultStatus::Skip => "skip",
        }
    }
}

impl fmt::Display for ResultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResultStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<ResultStatus, String> {
        Ok(match s {
            "pass" => ResultStatus::Pass,
            "fail" => ResultStatus::Fail,
            "error" => ResultStatus::Error,
            "exempt" => ResultStatus::Exempt,
            "skip" => ResultStatus::Skip,
            other => return Err(format!("unknown result status {other:?}")),
        })
    }
}

/// One rule's outcome to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRuleResult {
    pub rule_id: String,
    pub status: ResultStatus,
    /// What the check said, for people.
    pub message: Option<String>,
    /// What the check measured, if anything (a coverage figure, a date).
    pub value: Option<Value>,
}

/// One entity's evaluation on one scorecard: every rule's outcome and the
/// level they give.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityEvaluation {
    /// The entity's reference; stored lower-cased.
    pub entity_ref: String,
    /// The level reached, as the scorecards crate computed it.
    pub level: String,
    /// The rules' outcomes. They replace all of the entity's stored
    /// results on this scorecard, so a rule left out loses its result.
    pub results: Vec<NewRuleResult>,
}

/// What [`Store::write_scorecard_results`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResultsWritten {
    /// Entities in the batch (written or found unchanged).
    pub entities: usize,
    pub results: usize,
    /// Entities whose standing was found as the batch has it and left as
    /// it was ([`WriteMode::ChangedOnly`] only).
    pub unchanged: usize,
    /// Entities whose level changed (or was recorded for the first time),
    /// each of which got a history row.
    pub level_changes: usize,
}

/// One rule's stored result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleResult {
    pub rule_id: String,
    pub status: ResultStatus,
    pub message: Option<String>,
    pub value: Option<Value>,
    pub evaluated_at: DateTime<Utc>,
}

/// An entity's standing on one scorecard.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityScorecard {
    pub scorecard_id: String,
    pub entity_ref: String,
    /// The current level; `None` if results exist without a level, which
    /// [`Store::write_scorecard_results`] never leaves behind.
    pub level: Option<String>,
    /// Since when the entity has been at that level.
    pub level_since: Option<DateTime<Utc>>,
    /// Ordered by rule id.
    pub results: Vec<RuleResult>,
}

/// How many entities are at each status of one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub pass: u64,
    pub fail: u64,
    pub error: u64,
    pub exempt: u64,
    pub skip: u64,
}

impl StatusCounts {
    fn add(&mut self, status: ResultStatus, count: u64) {
        match status {
            ResultStatus::Pass => self.pass += count,
            ResultStatus::Fail => self.fail += count,
            ResultStatus::Error => self.error += count,
            ResultStatus::Exempt => self.exempt += count,
            ResultStatus::Skip => self.skip += count,
        }
    }

    /// Entities with a result for the rule.
    pub fn total(&self) -> u64 {
        self.pass + self.fail + self.error + self.exempt + self.skip
    }

    /// The share of entities the rule applies to that get through it
    /// (passing or exempt), or `None` when it applies to none.
    pub fn pass_rate(&self) -> Option<f64> {
        let applicable = self.pass + self.fail + self.error + self.exempt;
        (applicable > 0).then(|| (self.pass + self.exempt) as f64 / applicable as f64)
    }
}

/// A scorecard's results over all the entities it has evaluated.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScorecardSummary {
    /// Entities with a current level.
    pub entities: u64,
    /// How many entities are at each level; levels nobody is at are
    /// absent (the caller knows the definition's levels).
    pub levels: BTreeMap<String, u64>,
    /// Per rule id, how many entities are at each status.
    pub rules: BTreeMap<String, StatusCounts>,
}

/// One period of an entity's level history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelChange {
    pub level: String,
    /// When the entity reached it.
    pub at: DateTime<Utc>,
    /// When it left it; `None` for the current level.
    pub until: Option<DateTime<Utc>>,
}

/// An exemption to add: one entity need not pass one rule until
/// `expires_at`. The scorecards crate checks that the rule exists, the
/// reason is given and the expiry lies ahead.
#[derive(Debug, Clone, PartialEq)]
pub struct NewScorecardExemption {
    pub scorecard_id: String,
    /// Stored lower-cased.
    pub entity_ref: String,
    pub rule_id: String,
    pub reason: String,
    pub expires_at: DateTime<Utc>,
    /// The person or token that granted it.
    pub created_by: String,
}

/// An exemption as stored, expired or not: whether it still applies is
/// for the scorecards crate to say, given the time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScorecardExemption {
    pub scorecard_id: String,
    pub entity_ref: String,
    pub rule_id: String,
    pub reason: String,
    pub expires_at: DateTime<Utc>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn parse_status(text: &str, what: impl FnOnce() -> String) -> Result<ResultStatus, StoreError> {
    text.parse()
        .map_err(|e: String| StoreError::InvalidData(format!("{}: {e}", what())))
}

#[derive(sqlx::FromRow)]
struct ScorecardRow {
    id: String,
    definition: Json<Value>,
    created_at: i64,
    updated_at: i64,
}

impl From<ScorecardRow> for StoredScorecard {
    fn from(row: ScorecardRow) -> StoredScorecard {
        StoredScorecard {
            id: row.id,
            definition: row.definition.0,
            created_at: millis_to_time(row.created_at),
            updated_at: millis_to_time(row.updated_at),
        }
    }
}

#[derive(sqlx::FromRow)]
struct ExemptionRow {
    scorecard_id: String,
    entity_ref: String,
    rule_id: String,
    reason: String,
    expires_at: i64,
    created_by: String,
    created_at: i64,
}

impl From<ExemptionRow> for ScorecardExemption {
    fn from(row: ExemptionRow) -> ScorecardExemption {
        ScorecardExemption {
            scorecard_id: row.scorecard_id,
            entity_ref: row.entity_ref,
            rule_id: row.rule_id,
            reason: row.reason,
            expires_at: millis_to_time(row.expires_at),
            created_by: row.created_by,
            created_at: millis_to_time(row.created_at),
        }
    }
}

/// How [`Store::write_scorecard_results`] treats a standing that is
/// already stored exactly as the batch has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Rewrites it, so its results show this write's time.
    All,
    /// Leaves it as it is: for a full evaluation of the scorecard, which
    /// calls [`Store::confirm_scorecard_results`] once it has written every
    /// entity, so the standings left alone show when it started.
    ChangedOnly,
}

/// One entity's results on one scorecard, as stored: see migrations 0009
/// and 0010.
#[derive(sqlx::FromRow)]
struct StandingRow {
    scorecard_id: String,
    entity_ref: String,
    results: String,
    evaluated_at: i64,
    /// The scorecard's last finished full evaluation's start.
    confirmed_at: Option<i64>,
}

/// A rule result as written into a standing's `results` array (absent
/// message and value left out: a million results are a lot of `null`s).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultOut<'a> {
    rule_id: &'a str,
    status: ResultStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a Value>,
}

/// A rule result as read back from a standing's `results` array.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultIn {
    rule_id: String,
    status: ResultStatus,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    value: Option<Value>,
}

impl StandingRow {
    /// The row's results, by rule id.
    fn into_results(self) -> Result<Vec<RuleResult>, StoreError> {
        let read: Vec<ResultIn> = serde_json::from_str(&self.results).map_err(|e| {
            StoreError::InvalidData(format!(
                "scorecard {} results for {}: {e}",
                self.scorecard_id, self.entity_ref
            ))
        })?;
        let evaluated_at =
            millis_to_time(self.evaluated_at.max(self.confirmed_at.unwrap_or(i64::MIN)));
        let mut out: Vec<RuleResult> = read
            .into_iter()
            .map(|r| RuleResult {
                rule_id: r.rule_id,
                status: r.status,
                message: r.message,
                value: r.value,
                evaluated_at,
            })
            .collect();
        out.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        Ok(out)
    }
}

/// An entity's results made ready for the standings table: the
/// ' rule=status ' tokens, the JSON array and their digest.
struct PreparedStanding<'a> {
    key: String,
    evaluation: &'a EntityEvaluation,
    statuses: String,
    results: String,
    digest: String,
}

impl<'a> PreparedStanding<'a> {
    fn new(key: String, evaluation: &'a EntityEvaluation) -> Result<Self, StoreError> {
        let mut rules: Vec<&str> = Vec::with_capacity(evaluation.results.len());
        let mut statuses = String::from(" ");
        for r in &evaluation.results {
            if r.rule_id.is_empty() || r.rule_id.contains(|c: char| c.is_whitespace() || c == '=') {
                return Err(StoreError::InvalidData(format!(
                    "{key}: rule id {:?} is not a valid id",
                    r.rule_id
                )));
            }
            if rules.contains(&r.rule_id.as_str()) {
                return Err(StoreError::InvalidData(format!(
                    "{key}: rule {} is listed twice",
                    r.rule_id
                )));
            }
            rules.push(&r.rule_id);
            statuses.push_str(&r.rule_id);
            statuses.push('=');
            statuses.push_str(r.status.as_str());
            statuses.push(' ');
        }
        let out: Vec<ResultOut<'_>> = evaluation
            .results
            .iter()
            .map(|r| ResultOut {
                rule_id: &r.rule_id,
                status: r.status,
                message: r.message.as_deref(),
                value: r.value.as_ref(),
            })
            .collect();
        let results = serde_json::to_string(&out).map_err(|e| {
            StoreError::InvalidData(format!("{key}: results cannot be written as JSON: {e}"))
        })?;
        let digest = standing_digest(&statuses, &results, &evaluation.level);
        Ok(PreparedStanding {
            key,
            evaluation,
            statuses,
            results,
            digest,
        })
    }
}

/// What a standing says, hashed: its statuses, its results and the level
/// they give (so a standing whose level moved while its results did not,
/// as when the scorecard's levels are redefined, counts as changed).
/// Lengths separate the parts. 128 bits of SHA-256, in hex.
fn standing_digest(statuses: &str, results: &str, level: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in [statuses, results, level] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(&hash.finalize()[..16])
}

/// The (rule, status) pairs of a `statuses` column.
fn status_tokens(statuses: &str) -> impl Iterator<Item = (&str, &str)> {
    statuses
        .split_whitespace()
        .filter_map(|token| token.split_once('='))
}

/// Entities gained (positive) or lost per (rule, status).
type CountChanges<'a> = HashMap<(&'a str, &'a str), i64>;

/// How the per-rule counts change when `old` statuses become `new` ones.
fn count_changes<'a>(changes: &mut CountChanges<'a>, old: Option<&'a str>, new: Option<&'a str>) {
    for (tokens, step) in [(old, -1), (new, 1)] {
        for key in tokens.into_iter().flat_map(status_tokens) {
            *changes.entry(key).or_default() += step;
        }
    }
}

#[derive(sqlx::FromRow)]
struct CurrentLevelRow {
    scorecard_id: String,
    entity_ref: String,
    level: String,
    at: i64,
}

/// (level, entities at it).
type LevelCount = (String, i64);

/// (rule id, status, entities with it).
type RuleStatusCount = (String, String, i64);

/// The token a `statuses` column holds for a rule in a status.
fn status_token(rule: &str, status: ResultStatus) -> String {
    format!(" {rule}={} ", status.as_str())
}

const SCORECARD_COLUMNS: &str = "id, definition, created_at, updated_at";
const EXEMPTION_COLUMNS: &str =
    "scorecard_id, entity_ref, rule_id, reason, expires_at, created_by, created_at";
/// A standing with its scorecard's confirmation time: the columns and
/// tables of a `SELECT`, whose conditions name the standing `s`.
const STANDINGS_CONFIRMED: &str = "s.scorecard_id, s.entity_ref, s.results, s.evaluated_at, \
     c.confirmed_at FROM scorecard_standings s JOIN scorecards c ON c.id = s.scorecard_id";

/// Joins current levels with their results into one [`EntityScorecard`]
/// per (scorecard, entity), in the order of `levels`. Results without a
/// level row come last.
fn assemble(
    levels: Vec<CurrentLevelRow>,
    results: Vec<StandingRow>,
) -> Result<Vec<EntityScorecard>, StoreError> {
    let mut index: HashMap<(String, String), usize> = HashMap::with_capacity(levels.len());
    let mut out: Vec<EntityScorecard> = Vec::with_capacity(levels.len());
    for row in levels {
        index.insert(
            (row.scorecard_id.clone(), row.entity_ref.clone()),
            out.len(),
        );
        out.push(EntityScorecard {
            scorecard_id: row.scorecard_id,
            entity_ref: row.entity_ref,
            level: Some(row.level),
            level_since: Some(millis_to_time(row.at)),
            results: Vec::new(),
        });
    }
    for row in results {
        let key = (row.scorecard_id.clone(), row.entity_ref.clone());
        let slot = *index.entry(key).or_insert_with(|| {
            out.push(EntityScorecard {
                scorecard_id: row.scorecard_id.clone(),
                entity_ref: row.entity_ref.clone(),
                level: None,
                level_since: None,
                results: Vec::new(),
            });
            out.len() - 1
        });
        out[slot].results = row.into_results()?;
    }
    Ok(out)
}

/// The statements of a results write, written once and instantiated per
/// backend so each is type-checked against that backend's driver.
///
/// `$serialize` is run first in every write and forget of a scorecard's
/// results: the per-rule counts move by what each write finds stored, so
/// two writers of one scorecard must not both read the same old standings
/// (or both find none and both count a new entity in). On PostgreSQL it
/// locks the scorecard's row against other writers of its results (`FOR
/// NO KEY UPDATE`: the foreign key checks of other tables still pass); on
/// SQLite, `BEGIN IMMEDIATE` already holds the only write lock.
macro_rules! backend_impl {
    ($module:ident, $db:ty, $conn:ty, $serialize:expr) => {
        mod $module {
            use super::*;

            type Db = $db;
            type Conn = $conn;

            /// Waits until no other transaction writes this scorecard's
            /// results; see `$serialize` above.
            async fn serialize(conn: &mut Conn, scorecard: &str) -> Result<(), StoreError> {
                let statement: Option<&str> = $serialize;
                if let Some(statement) = statement {
                    sqlx::query(statement)
                        .bind(scorecard)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            }

            /// Binds each key as the next item of the `IN (` list `qb` ends
            /// with, and closes the list.
            fn push_keys<'q>(qb: &mut QueryBuilder<'q, Db>, keys: &[&'q str]) {
                let mut list = qb.separated(", ");
                for key in keys {
                    list.push_bind(*key);
                }
                qb.push(")");
            }

            /// `SELECT entity_ref, <value>` of these entities from `from`
            /// (which ends with `WHERE scorecard_id = `), `and` narrowing
            /// it further; as a map.
            async fn by_key(
                conn: &mut Conn,
                from: &str,
                scorecard: &str,
                and: &str,
                keys: &[&str],
            ) -> Result<HashMap<String, String>, StoreError> {
                let mut out = HashMap::with_capacity(keys.len());
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    let mut qb = QueryBuilder::<Db>::new(from);
                    qb.push_bind(scorecard).push(and).push(" AND entity_ref IN (");
                    push_keys(&mut qb, chunk);
                    let rows: Vec<(String, String)> =
                        qb.build_query_as().fetch_all(&mut *conn).await?;
                    out.extend(rows);
                }
                Ok(out)
            }

            /// The `statuses` and `digest` of these entities' stored
            /// standings.
            async fn old_standings(
                conn: &mut Conn,
                scorecard: &str,
                keys: &[&str],
            ) -> Result<HashMap<String, (String, String)>, StoreError> {
                let mut out = HashMap::with_capacity(keys.len());
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "SELECT entity_ref, statuses, digest FROM scorecard_standings \
                         WHERE scorecard_id = ",
                    );
                    qb.push_bind(scorecard).push(" AND entity_ref IN (");
                    push_keys(&mut qb, chunk);
                    let rows: Vec<(String, String, String)> =
                        qb.build_query_as().fetch_all(&mut *conn).await?;
                    out.extend(rows.into_iter().map(|(k, s, d)| (k, (s, d))));
                }
                Ok(out)
            }

            /// Inserts or replaces these entities' standings.
            pub(super) async fn upsert_standings(
                conn: &mut Conn,
                scorecard: &str,
                rows: &[&PreparedStanding<'_>],
                at: i64,
            ) -> Result<(), StoreError> {
                for chunk in rows.chunks(STANDING_ROWS_PER_INSERT) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "INSERT INTO scorecard_standings (scorecard_id, entity_ref, statuses, \
                         results, evaluated_at, digest) ",
                    );
                    qb.push_values(chunk, |mut b, row| {
                        b.push_bind(scorecard)
                            .push_bind(row.key.as_str())
                            .push_bind(row.statuses.as_str())
                            .push_bind(row.results.as_str())
                            .push_bind(at)
                            .push_bind(row.digest.as_str());
                    });
                    qb.push(
                        " ON CONFLICT (scorecard_id, entity_ref) DO UPDATE SET \
                         statuses = excluded.statuses, results = excluded.results, \
                         evaluated_at = excluded.evaluated_at, digest = excluded.digest",
                    );
                    qb.build().execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// Removes these entities' standings.
            pub(super) async fn delete_standings(
                conn: &mut Conn,
                scorecard: &str,
                keys: &[&str],
            ) -> Result<(), StoreError> {
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "DELETE FROM scorecard_standings WHERE scorecard_id = ",
                    );
                    qb.push_bind(scorecard).push(" AND entity_ref IN (");
                    push_keys(&mut qb, chunk);
                    qb.build().execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// Adds `changes` (per rule and status, entities gained or
            /// lost) to the per-rule counts; counts that reach zero go.
            pub(super) async fn change_counts(
                conn: &mut Conn,
                scorecard: &str,
                changes: &CountChanges<'_>,
            ) -> Result<(), StoreError> {
                let rows: Vec<(&str, &str, i64)> = changes
                    .iter()
                    .filter(|(_, n)| **n != 0)
                    .map(|((rule, status), n)| (*rule, *status, *n))
                    .collect();
                if rows.is_empty() {
                    return Ok(());
                }
                for chunk in rows.chunks(COUNT_ROWS_PER_INSERT) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "INSERT INTO scorecard_rule_counts (scorecard_id, rule_id, status, entities) ",
                    );
                    qb.push_values(chunk, |mut b, (rule, status, n)| {
                        b.push_bind(scorecard)
                            .push_bind(*rule)
                            .push_bind(*status)
                            .push_bind(*n);
                    });
                    qb.push(
                        " ON CONFLICT (scorecard_id, rule_id, status) DO UPDATE SET \
                         entities = scorecard_rule_counts.entities + excluded.entities",
                    );
                    qb.build().execute(&mut *conn).await?;
                }
                sqlx::query(
                    "DELETE FROM scorecard_rule_counts WHERE scorecard_id = $1 AND entities <= 0",
                )
                .bind(scorecard)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// The current level of each of these entities that has one.
            pub(super) async fn current_levels(
                conn: &mut Conn,
                scorecard: &str,
                keys: &[&str],
            ) -> Result<HashMap<String, String>, StoreError> {
                let from = "SELECT entity_ref, level FROM scorecard_levels WHERE scorecard_id = ";
                by_key(conn, from, scorecard, " AND until_at IS NULL", keys).await
            }

            /// Ends the current level period of these entities at `at`.
            pub(super) async fn close_levels(
                conn: &mut Conn,
                scorecard: &str,
                keys: &[&str],
                at: i64,
            ) -> Result<(), StoreError> {
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    let mut qb = QueryBuilder::<Db>::new("UPDATE scorecard_levels SET until_at = ");
                    qb.push_bind(at)
                        .push(" WHERE scorecard_id = ")
                        .push_bind(scorecard)
                        .push(" AND until_at IS NULL AND entity_ref IN (");
                    push_keys(&mut qb, chunk);
                    qb.build().execute(&mut *conn).await?;
                }
                Ok(())
            }

            pub(super) async fn insert_levels(
                conn: &mut Conn,
                scorecard: &str,
                rows: &[(&str, &str)],
                at: i64,
            ) -> Result<(), StoreError> {
                for chunk in rows.chunks(LEVEL_ROWS_PER_INSERT) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "INSERT INTO scorecard_levels (scorecard_id, entity_ref, level, at) ",
                    );
                    qb.push_values(chunk, |mut b, (key, level)| {
                        b.push_bind(scorecard)
                            .push_bind(*key)
                            .push_bind(*level)
                            .push_bind(at);
                    });
                    qb.build().execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// Removes these entities' results and level history.
            pub(super) async fn forget(
                conn: &mut Conn,
                scorecard: &str,
                keys: &[&str],
            ) -> Result<(), StoreError> {
                serialize(conn, scorecard).await?;
                let old = old_standings(conn, scorecard, keys).await?;
                let mut changes = HashMap::new();
                for (statuses, _) in old.values() {
                    count_changes(&mut changes, Some(statuses), None);
                }
                delete_standings(conn, scorecard, keys).await?;
                change_counts(conn, scorecard, &changes).await?;
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "DELETE FROM scorecard_levels WHERE scorecard_id = ",
                    );
                    qb.push_bind(scorecard).push(" AND entity_ref IN (");
                    push_keys(&mut qb, chunk);
                    qb.build().execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// The whole results write; see [`Store::write_scorecard_results`].
            pub(super) async fn write(
                conn: &mut Conn,
                scorecard: &str,
                all: &[PreparedStanding<'_>],
                at: i64,
                mode: WriteMode,
            ) -> Result<ResultsWritten, StoreError> {
                serialize(conn, scorecard).await?;
                let keys: Vec<&str> = all.iter().map(|s| s.key.as_str()).collect();
                let old = old_standings(conn, scorecard, &keys).await?;
                let unchanged = |s: &PreparedStanding<'_>| {
                    mode == WriteMode::ChangedOnly
                        && old.get(&s.key).is_some_and(|(_, digest)| *digest == s.digest)
                };
                let batch: Vec<&PreparedStanding<'_>> =
                    all.iter().filter(|s| !unchanged(s)).collect();
                let keys: Vec<&str> = batch.iter().map(|s| s.key.as_str()).collect();
                let mut changes = HashMap::new();
                for standing in &batch {
                    count_changes(
                        &mut changes,
                        old.get(&standing.key).map(|(statuses, _)| statuses.as_str()),
                        Some(&standing.statuses),
                    );
                }
                upsert_standings(conn, scorecard, &batch, at).await?;
                change_counts(conn, scorecard, &changes).await?;

                let current = current_levels(conn, scorecard, &keys).await?;
                let changed: Vec<(&str, &str)> = batch
                    .iter()
                    .filter(|s| current.get(&s.key) != Some(&s.evaluation.level))
                    .map(|s| (s.key.as_str(), s.evaluation.level.as_str()))
                    .collect();
                let closed: Vec<&str> = changed
                    .iter()
                    .map(|(k, _)| *k)
                    .filter(|k| current.contains_key(*k))
                    .collect();
                close_levels(conn, scorecard, &closed, at).await?;
                insert_levels(conn, scorecard, &changed, at).await?;
                Ok(ResultsWritten {
                    entities: all.len(),
                    results: all.iter().map(|s| s.evaluation.results.len()).sum(),
                    unchanged: all.len() - batch.len(),
                    level_changes: changed.len(),
                })
            }
        }
    };
}

backend_impl!(sqlite, sqlx::Sqlite, sqlx::SqliteConnection, None);
backend_impl!(
    postgres,
    sqlx::Postgres,
    sqlx::PgConnection,
    Some("SELECT id FROM scorecards WHERE id = $1 FOR NO KEY UPDATE")
);

impl Store {
    /// Creates or replaces a scorecard's definition. Returns it as stored
    /// and whether it was created (`true`) or replaced. Replacing keeps the
    /// results, exemptions and history: the next evaluation brings the
    /// results up to date.
    pub async fn put_scorecard(
        &self,
        id: &str,
        definition: &Value,
    ) -> Result<(StoredScorecard, bool), StoreError> {
        let at = Utc::now().timestamp_millis();
        let created = on_write_pool!(self, pool => {
            let inserted = sqlx::query(
                "INSERT INTO scorecards (id, definition, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(Json(definition))
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected();
            if inserted == 0 {
                sqlx::query("UPDATE scorecards SET definition = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(Json(definition))
                    .bind(at)
                    .execute(pool)
                    .await?;
            }
            inserted == 1
        });
        let stored = self.scorecard(id).await?.ok_or_else(|| {
            StoreError::InvalidData(format!(
                "scorecard {id} vanished right after it was written"
            ))
        })?;
        Ok((stored, created))
    }

    /// One scorecard, if it exists.
    pub async fn scorecard(&self, id: &str) -> Result<Option<StoredScorecard>, StoreError> {
        let sql = format!("SELECT {SCORECARD_COLUMNS} FROM scorecards WHERE id = $1");
        let row: Option<ScorecardRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(StoredScorecard::from))
    }

    /// Every scorecard, by id.
    pub async fn list_scorecards(&self) -> Result<Vec<StoredScorecard>, StoreError> {
        let sql = format!("SELECT {SCORECARD_COLUMNS} FROM scorecards ORDER BY id");
        let rows: Vec<ScorecardRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(StoredScorecard::from).collect())
    }

    /// Deletes a scorecard with its exemptions, results and history.
    /// Returns whether it existed.
    pub async fn delete_scorecard(&self, id: &str) -> Result<bool, StoreError> {
        // The foreign keys cascade, but say it outright rather than rely on
        // SQLite's per-connection foreign_keys setting.
        let deleted = on_write_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for table in [
                "scorecard_standings",
                "scorecard_rule_counts",
                "scorecard_levels",
                "scorecard_exemptions",
            ] {
                sqlx::query(&format!("DELETE FROM {table} WHERE scorecard_id = $1"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let done = sqlx::query("DELETE FROM scorecards WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            done.rows_affected() > 0
        });
        Ok(deleted)
    }

    /// Adds an exemption, replacing any for the same scorecard, entity and
    /// rule. Fails with [`StoreError::Database`] if the scorecard does not
    /// exist.
    pub async fn put_scorecard_exemption(
        &self,
        new: &NewScorecardExemption,
    ) -> Result<ScorecardExemption, StoreError> {
        let at = Utc::now().timestamp_millis();
        let entity = new.entity_ref.to_lowercase();
        on_write_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO scorecard_exemptions (scorecard_id, entity_ref, rule_id, reason, \
                 expires_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (scorecard_id, entity_ref, rule_id) DO UPDATE SET \
                 reason = excluded.reason, expires_at = excluded.expires_at, \
                 created_by = excluded.created_by, created_at = excluded.created_at",
            )
            .bind(&new.scorecard_id)
            .bind(&entity)
            .bind(&new.rule_id)
            .bind(&new.reason)
            .bind(millis(new.expires_at))
            .bind(&new.created_by)
            .bind(at)
            .execute(pool)
            .await?;
        });
        Ok(ScorecardExemption {
            scorecard_id: new.scorecard_id.clone(),
            entity_ref: entity,
            rule_id: new.rule_id.clone(),
            reason: new.reason.clone(),
            expires_at: millis_to_time(millis(new.expires_at)),
            created_by: new.created_by.clone(),
            created_at: millis_to_time(at),
        })
    }

    /// A scorecard's exemptions, expired ones included, by entity and
    /// rule; only one entity's with `entity_ref`.
    pub async fn scorecard_exemptions(
        &self,
        scorecard_id: &str,
        entity_ref: Option<&str>,
    ) -> Result<Vec<ScorecardExemption>, StoreError> {
        let entity = entity_ref.map(str::to_lowercase);
        let sql = format!(
            "SELECT {EXEMPTION_COLUMNS} FROM scorecard_exemptions WHERE scorecard_id = $1 \
             AND ($2 IS NULL OR entity_ref = $2) ORDER BY entity_ref, rule_id"
        );
        let rows: Vec<ExemptionRow> = match &self.pool {
            Pool::Sqlite(pool) => {
                sqlx::query_as(&sql)
                    .bind(scorecard_id)
                    .bind(entity.as_deref())
                    .fetch_all(pool)
                    .await?
            }
            // PostgreSQL cannot infer the type of a parameter that is only
            // compared with NULL; say it.
            Pool::Postgres(pool) => {
                sqlx::query_as(&sql.replace("$2 IS NULL", "$2::text IS NULL"))
                    .bind(scorecard_id)
                    .bind(entity.as_deref())
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows.into_iter().map(ScorecardExemption::from).collect())
    }

    /// Removes one exemption; returns whether it existed.
    pub async fn delete_scorecard_exemption(
        &self,
        scorecard_id: &str,
        entity_ref: &str,
        rule_id: &str,
    ) -> Result<bool, StoreError> {
        let entity = entity_ref.to_lowercase();
        let done = on_write_pool!(self, pool => {
            sqlx::query(
                "DELETE FROM scorecard_exemptions \
                 WHERE scorecard_id = $1 AND entity_ref = $2 AND rule_id = $3",
            )
            .bind(scorecard_id)
            .bind(&entity)
            .bind(rule_id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Writes one evaluation of many entities on a scorecard in one
    /// transaction, all or nothing: each entity's results replace its
    /// stored ones, and its level is appended to the history only when it
    /// differs from the current one (or there is none yet). With
    /// [`WriteMode::ChangedOnly`], an entity whose stored standing already says
    /// what the batch does (same results and level) is left as it is.
    ///
    /// Fails without writing if an entity appears twice in the batch
    /// ([`StoreError::DuplicateEntity`]), an entity lists a rule twice or
    /// a rule id holds a space or `=` ([`StoreError::InvalidData`]), or
    /// with [`StoreError::Database`] if the scorecard does not exist.
    pub async fn write_scorecard_results(
        &self,
        scorecard_id: &str,
        evaluations: &[EntityEvaluation],
        evaluated_at: DateTime<Utc>,
        mode: WriteMode,
    ) -> Result<ResultsWritten, StoreError> {
        let mut seen = HashSet::with_capacity(evaluations.len());
        let mut batch = Vec::with_capacity(evaluations.len());
        for evaluation in evaluations {
            let key = evaluation.entity_ref.to_lowercase();
            if !seen.insert(key.clone()) {
                return Err(StoreError::DuplicateEntity(key));
            }
            batch.push(PreparedStanding::new(key, evaluation)?);
        }
        if batch.is_empty() {
            return Ok(ResultsWritten::default());
        }
        let at = millis(evaluated_at);
        let written = in_write_transaction!(self, |backend, conn| {
            backend::write(conn, scorecard_id, &batch, at, mode).await?
        });
        Ok(written)
    }

    /// Records that a full evaluation of the scorecard that started at
    /// `started_at` has written every entity it covers with
    /// [`WriteMode::ChangedOnly`]: the standings it left as they were now show
    /// that time as when they were evaluated. A time earlier than the one
    /// recorded changes nothing. Returns whether the scorecard exists.
    pub async fn confirm_scorecard_results(
        &self,
        scorecard_id: &str,
        started_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = on_write_pool!(self, pool => {
            sqlx::query(
                "UPDATE scorecards SET confirmed_at = $2 WHERE id = $1 \
                 AND (confirmed_at IS NULL OR confirmed_at < $2)",
            )
            .bind(scorecard_id)
            .bind(millis(started_at))
            .execute(pool)
            .await?
            .rows_affected()
        });
        if done > 0 {
            return Ok(true);
        }
        Ok(self.scorecard(scorecard_id).await?.is_some())
    }

    /// Removes these entities' results and level history from a scorecard:
    /// for entities deleted from the catalog or no longer covered by it.
    pub async fn forget_scorecard_entities(
        &self,
        scorecard_id: &str,
        entity_refs: &[&str],
    ) -> Result<(), StoreError> {
        let keys: Vec<String> = entity_refs.iter().map(|r| r.to_lowercase()).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        in_write_transaction!(self, |backend, conn| {
            backend::forget(conn, scorecard_id, &keys).await?
        });
        Ok(())
    }

    /// A scorecard's distribution of entities per level and each rule's
    /// counts per status.
    pub async fn scorecard_summary(
        &self,
        scorecard_id: &str,
    ) -> Result<ScorecardSummary, StoreError> {
        let (levels, rules): (Vec<LevelCount>, Vec<RuleStatusCount>) = on_pool!(&self.pool, pool => {
            let levels = sqlx::query_as(
                "SELECT level, COUNT(*) FROM scorecard_levels \
                 WHERE scorecard_id = $1 AND until_at IS NULL GROUP BY level",
            )
            .bind(scorecard_id)
            .fetch_all(pool)
            .await?;
            let rules = sqlx::query_as(
                "SELECT rule_id, status, entities FROM scorecard_rule_counts \
                 WHERE scorecard_id = $1 AND entities > 0",
            )
            .bind(scorecard_id)
            .fetch_all(pool)
            .await?;
            (levels, rules)
        });
        let mut summary = ScorecardSummary::default();
        for (level, count) in levels {
            let count = count.max(0) as u64;
            summary.entities += count;
            summary.levels.insert(level, count);
        }
        for (rule, status, count) in rules {
            let status = parse_status(&status, || {
                format!("scorecard {scorecard_id} results of rule {rule}")
            })?;
            summary
                .rules
                .entry(rule)
                .or_default()
                .add(status, count.max(0) as u64);
        }
        Ok(summary)
    }

    /// One page of a scorecard's entities with their levels and results,
    /// by entity reference, starting after `after` (the last reference of
    /// the previous page). At most [`MAX_SCORECARD_PAGE`] entities.
    pub async fn scorecard_entities(
        &self,
        scorecard_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EntityScorecard>, StoreError> {
        self.scorecard_entities_where(scorecard_id, &StandingFilter::default(), after, limit)
            .await
    }

    /// Like [`Store::scorecard_entities`], keeping only the entities at one
    /// level and/or with one rule in one status (the drill-down from a
    /// rule's pass rate to the entities failing it).
    pub async fn scorecard_entities_where(
        &self,
        scorecard_id: &str,
        filter: &StandingFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EntityScorecard>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_SCORECARD_PAGE));
        let after = after.map(str::to_lowercase).unwrap_or_default();
        let mut sql = String::from(
            "SELECT scorecard_id, entity_ref, level, at FROM scorecard_levels \
             WHERE scorecard_id = $1 AND until_at IS NULL AND entity_ref > $2",
        );
        let mut binds: Vec<String> = Vec::new();
        if let Some(level) = &filter.level {
            binds.push(level.clone());
            sql.push_str(&format!(" AND level = ${}", binds.len() + 3));
        }
        if let Some((rule, status)) = &filter.rule {
            // instr (SQLite) and strpos (PostgreSQL) take the same
            // arguments: where to look, what to find.
            let find = match &self.pool {
                Pool::Sqlite(_) => "instr",
                Pool::Postgres(_) => "strpos",
            };
            binds.push(status_token(rule, *status));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM scorecard_standings s \
                 WHERE s.scorecard_id = $1 AND s.entity_ref = scorecard_levels.entity_ref \
                 AND {find}(s.statuses, ${}) > 0)",
                binds.len() + 3
            ));
        }
        sql.push_str(" ORDER BY entity_ref LIMIT $3");
        let levels: Vec<CurrentLevelRow> = on_pool!(&self.pool, pool => {
            let mut query = sqlx::query_as(&sql)
                .bind(scorecard_id)
                .bind(&after)
                .bind(limit);
            for value in &binds {
                query = query.bind(value.as_str());
            }
            query.fetch_all(pool).await?
        });
        let (Some(first), Some(last)) = (levels.first(), levels.last()) else {
            return Ok(Vec::new());
        };
        let (first, last) = (first.entity_ref.clone(), last.entity_ref.clone());
        let sql = format!(
            "SELECT {STANDINGS_CONFIRMED} WHERE s.scorecard_id = $1 \
             AND s.entity_ref >= $2 AND s.entity_ref <= $3 ORDER BY s.entity_ref"
        );
        let results: Vec<StandingRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql)
                .bind(scorecard_id)
                .bind(&first)
                .bind(&last)
                .fetch_all(pool)
                .await?
        });
        let mut page = assemble(levels, results)?;
        // A standing in the range whose entity has no level row would
        // have been appended at the end; it is not part of this page.
        page.retain(|e| e.level.is_some());
        Ok(page)
    }

    /// An entity's standing on every scorecard that has evaluated it, by
    /// scorecard id.
    pub async fn entity_scorecards(
        &self,
        entity_ref: &str,
    ) -> Result<Vec<EntityScorecard>, StoreError> {
        let entity = entity_ref.to_lowercase();
        let sql =
            format!("SELECT {STANDINGS_CONFIRMED} WHERE s.entity_ref = $1 ORDER BY s.scorecard_id");
        let (levels, results): (Vec<CurrentLevelRow>, Vec<StandingRow>) = on_pool!(&self.pool, pool => {
            let levels = sqlx::query_as(
                "SELECT scorecard_id, entity_ref, level, at FROM scorecard_levels \
                 WHERE entity_ref = $1 AND until_at IS NULL ORDER BY scorecard_id",
            )
            .bind(&entity)
            .fetch_all(pool)
            .await?;
            let results = sqlx::query_as(&sql).bind(&entity).fetch_all(pool).await?;
            (levels, results)
        });
        assemble(levels, results)
    }

    /// Marks these entities' scorecard results as out of date, for the
    /// scheduler to queue their re-evaluation ([`Store::take_stale_entities`]).
    /// Marking an entity already marked keeps its first time.
    pub async fn mark_entities_stale(&self, entity_refs: &[String]) -> Result<(), StoreError> {
        if entity_refs.is_empty() {
            return Ok(());
        }
        let at = Utc::now().timestamp_millis();
        let mut keys: Vec<String> = entity_refs.iter().map(|r| r.to_lowercase()).collect();
        keys.sort_unstable();
        keys.dedup();
        on_write_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO scorecard_stale_entities (entity_ref, since) ",
                );
                qb.push_values(chunk, |mut b, key| {
                    b.push_bind(key.as_str()).push_bind(at);
                });
                qb.push(" ON CONFLICT (entity_ref) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// How many entities wait for re-evaluation.
    pub async fn count_stale_entities(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(&self.pool, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM scorecard_stale_entities")
                .fetch_one(pool)
                .await?
        });
        Ok(n.max(0) as u64)
    }

    /// Takes up to `limit` entities marked stale, oldest first, and unmarks
    /// them, in one transaction: two replicas never take the same entity.
    pub async fn take_stale_entities(&self, limit: u32) -> Result<Vec<String>, StoreError> {
        let limit = i64::from(limit.max(1));
        let keys: Vec<String> = match &self.pool {
            Pool::Sqlite(pool) => {
                let _turn = self.writer_turn().await;
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let keys: Vec<String> = sqlx::query_scalar(
                    "SELECT entity_ref FROM scorecard_stale_entities ORDER BY since, entity_ref LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    let mut qb = QueryBuilder::<sqlx::Sqlite>::new(
                        "DELETE FROM scorecard_stale_entities WHERE entity_ref IN (",
                    );
                    let mut list = qb.separated(", ");
                    for key in chunk {
                        list.push_bind(key.as_str());
                    }
                    qb.push(")");
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                keys
            }
            Pool::Postgres(pool) => {
                sqlx::query_scalar(
                    "DELETE FROM scorecard_stale_entities WHERE entity_ref IN ( \
                     SELECT entity_ref FROM scorecard_stale_entities ORDER BY since, entity_ref \
                     LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING entity_ref",
                )
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(keys)
    }

    /// Forgets every stale mark: for when a full evaluation of every
    /// scorecard is queued instead.
    pub async fn clear_stale_entities(&self) -> Result<(), StoreError> {
        on_write_pool!(self, pool => {
            sqlx::query("DELETE FROM scorecard_stale_entities").execute(pool).await?;
        });
        Ok(())
    }

    /// The entities that have a current level on a scorecard, by reference.
    pub async fn scorecard_entity_refs(
        &self,
        scorecard_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let refs: Vec<String> = on_pool!(&self.pool, pool => {
            sqlx::query_scalar(
                "SELECT entity_ref FROM scorecard_levels \
                 WHERE scorecard_id = $1 AND until_at IS NULL ORDER BY entity_ref",
            )
            .bind(scorecard_id)
            .fetch_all(pool)
            .await?
        });
        Ok(refs)
    }

    /// Exemptions of any scorecard that expired in `(after, until]`: their
    /// entities need re-evaluating.
    pub async fn exemptions_expired_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<ScorecardExemption>, StoreError> {
        let sql = format!(
            "SELECT {EXEMPTION_COLUMNS} FROM scorecard_exemptions \
             WHERE expires_at > $1 AND expires_at <= $2 ORDER BY expires_at"
        );
        let rows: Vec<ExemptionRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql)
                .bind(millis(after))
                .bind(millis(until))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(ScorecardExemption::from).collect())
    }

    /// An entity's level history on one scorecard, oldest first.
    pub async fn scorecard_level_history(
        &self,
        scorecard_id: &str,
        entity_ref: &str,
    ) -> Result<Vec<LevelChange>, StoreError> {
        let entity = entity_ref.to_lowercase();
        let rows: Vec<(String, i64, Option<i64>)> = on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT level, at, until_at FROM scorecard_levels \
                 WHERE scorecard_id = $1 AND entity_ref = $2 ORDER BY at, until_at IS NULL",
            )
            .bind(scorecard_id)
            .bind(&entity)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(level, at, until)| LevelChange {
                level,
                at: millis_to_time(at),
                until: until.map(millis_to_time),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in [
            ResultStatus::Pass,
            ResultStatus::Fail,
            ResultStatus::Error,
            ResultStatus::Exempt,
            ResultStatus::Skip,
        ] {
            assert_eq!(status.as_str().parse::<ResultStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                Value::String(status.as_str().into())
            );
        }
        assert!("passed".parse::<ResultStatus>().is_err());
    }
}
