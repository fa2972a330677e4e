//! Day-2 action runs, their logs, and the audit trail.
//!
//! A run is one row of `action_runs` that is also its place in the queue
//! (see the migration `0008_actions`). The life of a run:
//!
//! - [`Store::create_run`] writes it `queued`, or `awaiting-approval` when
//!   the action needs one, together with its audit entry;
//! - [`Store::decide_run`] approves (back to `queued`) or denies
//!   (`cancelled`) a waiting run;
//! - [`Store::claim_run`] hands the oldest queued run to exactly one worker,
//!   on any replica, with a lease; [`Store::renew_run`] extends it and tells
//!   the worker whether someone asked to cancel; [`Store::finish_run`] ends
//!   it;
//! - [`Store::cancel_run`] ends a run that has not started, or flags a
//!   running one for its worker; [`Store::retry_run`] puts a failed or
//!   cancelled run back in the queue with the next attempt number;
//! - [`Store::expire_runs`] fails the runs whose worker stopped renewing
//!   (its replica died), so none stays `running` forever.
//!
//! Secret input values live in `secret_input` only while the run can still
//! start; every transition to an end state erases them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use crate::store::{on_pool, on_write_pool};
use crate::{Store, StoreError};

/// The most runs, log lines or audit entries one list call returns.
pub const MAX_RUN_PAGE: u32 = 500;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Queued,
    AwaitingApproval,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::AwaitingApproval,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::AwaitingApproval => "awaiting-approval",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<RunStatus, String> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown run status {s:?}; one of: {}",
                    RunStatus::ALL.map(RunStatus::as_str).join(", ")
                )
            })
    }
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// `action` or `template`.
    pub kind: String,
    /// The plugin's id.
    pub action: String,
    pub action_version: String,
    /// `kind:namespace/name` of the entity it was started on.
    pub entity_ref: Option<String>,
    /// The input with its secret fields redacted.
    pub input: Value,
    /// The secret fields' values (JSON pointer to value), if any.
    pub secret_input: Option<Value>,
    pub actor: String,
    /// The role whose approval the run waits for, if any.
    pub approval_role: Option<String>,
    /// Start the run at once, held by this worker for `LEASE`, instead of
    /// queueing it: for runs the accepting replica executes itself.
    pub running_on: Option<(String, Duration)>,
}

/// A decision on a run that waits for approval.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The role an approver needs.
    pub required: String,
    /// `approved`, `denied`, or `None` while waiting.
    pub decision: Option<String>,
    pub by: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
}

/// A run as stored (never with its secret input).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    /// `action` or `template`.
    pub kind: String,
    /// The plugin's id.
    pub action: String,
    pub action_version: String,
    #[serde(rename = "entity")]
    pub entity_ref: Option<String>,
    pub input: Value,
    pub status: RunStatus,
    pub actor: String,
    pub attempt: i64,
    pub created_at: DateTime<Utc>,
    /// When the run last entered the queue (creation, approval or retry).
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub approval: Option<Approval>,
    pub output: Option<Value>,
    pub links: Value,
    pub error: Option<Value>,
    pub cancel_requested: bool,
    pub cancelled_by: Option<String>,
    /// The worker that runs (or last ran) it.
    #[serde(rename = "worker")]
    pub lease_owner: Option<String>,
    #[serde(skip)]
    pub lease_until: Option<DateTime<Utc>>,
}

/// A claimed run with what its worker needs that the API never shows.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub run: Run,
    /// The secret input fields (JSON pointer to value), if any.
    pub secret_input: Option<Value>,
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: String,
    kind: String,
    action: String,
    action_version: String,
    entity_ref: Option<String>,
    input: Json<Value>,
    secret_input: Option<Json<Value>>,
    status: String,
    actor: String,
    attempt: i64,
    created_at: i64,
    queued_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    approval_role: Option<String>,
    approval_decision: Option<String>,
    approval_by: Option<String>,
    approval_at: Option<i64>,
    approval_comment: Option<String>,
    output: Option<Json<Value>>,
    links: Option<Json<Value>>,
    error: Option<Json<Value>>,
    cancel_requested: bool,
    cancelled_by: Option<String>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
}

const COLUMNS: &str =
    "id, kind, action, action_version, entity_ref, input, secret_input, status, actor, \
     CAST(attempt AS BIGINT) AS attempt, created_at, queued_at, started_at, finished_at, \
     approval_role, approval_decision, approval_by, approval_at, approval_comment, output, links, \
     error, cancel_requested, cancelled_by, lease_owner, lease_until";

/// Statuses from which a run can still start.
const WAITING: &str = "('queued', 'awaiting-approval')";

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

fn lease_millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

/// A new id: the time in microseconds in hex first, so ids sort by age
/// (also the several ids one request writes within a millisecond), then
/// random bits.
fn new_id() -> String {
    let mut random = [0u8; 8];
    OsRng.fill_bytes(&mut random);
    let micros = Utc::now().timestamp_micros().max(0);
    format!("{micros:014x}{}", hex::encode(random))
}

impl RunRow {
    fn into_claimed(self) -> Result<ClaimedRun, StoreError> {
        let status = self
            .status
            .parse()
            .map_err(|e| StoreError::InvalidData(format!("run {}: {e}", self.id)))?;
        let approval = self.approval_role.map(|required| Approval {
            required,
            decision: self.approval_decision,
            by: self.approval_by,
            at: self.approval_at.map(millis_to_time),
            comment: self.approval_comment,
        });
        Ok(ClaimedRun {
            secret_input: self.secret_input.map(|j| j.0),
            run: Run {
                id: self.id,
                kind: self.kind,
                action: self.action,
                action_version: self.action_version,
                entity_ref: self.entity_ref,
                input: self.input.0,
                status,
                actor: self.actor,
                attempt: self.attempt,
                created_at: millis_to_time(self.created_at),
                queued_at: millis_to_time(self.queued_at),
                started_at: self.started_at.map(millis_to_time),
                finished_at: self.finished_at.map(millis_to_time),
                approval,
                output: self.output.map(|j| j.0),
                links: self.links.map(|j| j.0).unwrap_or(Value::Array(Vec::new())),
                error: self.error.map(|j| j.0),
                cancel_requested: self.cancel_requested,
                cancelled_by: self.cancelled_by,
                lease_owner: self.lease_owner,
                lease_until: self.lease_until.map(millis_to_time),
            },
        })
    }

    fn into_run(self) -> Result<Run, StoreError> {
        self.into_claimed().map(|c| c.run)
    }
}

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunLogLine {
    pub seq: i64,
    pub attempt: i64,
    pub level: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// A log line to append.
#[derive(Debug, Clone)]
pub struct NewLogLine {
    pub level: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct LogRow {
    seq: i64,
    attempt: i64,
    level: String,
    message: String,
    at: i64,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// What was done: `run.start`, `run.approve`, ...
    pub action: String,
    /// What it was done to: `run:<id>`.
    pub subject: String,
    pub detail: Value,
}

/// An audit entry to write.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor: String,
    pub verb: String,
    pub subject: String,
    pub detail: Value,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: String,
    at: i64,
    actor: String,
    verb: String,
    subject: String,
    detail: Json<Value>,
}

/// Filters of [`Store::list_runs`].
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// `action` or `template`.
    pub kind: Option<String>,
    pub action: Option<String>,
    pub status: Option<RunStatus>,
    pub entity_ref: Option<String>,
    pub actor: Option<String>,
    /// Continue after the run with this id (newest first).
    pub before: Option<String>,
    pub limit: u32,
}

/// Filters of [`Store::list_audit`].
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub verb: Option<String>,
    pub subject: Option<String>,
    pub before: Option<String>,
    pub limit: u32,
}

/// How a finished run ended.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: RunStatus,
    pub output: Option<Value>,
    pub links: Value,
    pub error: Option<Value>,
}

/// What a retry changes.
#[derive(Debug, Clone)]
pub struct RetryRun {
    /// The input after the retry's new values for secret fields, redacted.
    pub input: Value,
    pub secret_input: Option<Value>,
    /// Whether the run must be approved (again) before it starts.
    pub needs_approval: bool,
}

macro_rules! audit_insert {
    ($tx:expr, $entry:expr, $at:expr) => {{
        let entry: &NewAuditEntry = $entry;
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, verb, subject, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind($at)
        .bind(&entry.actor)
        .bind(&entry.verb)
        .bind(&entry.subject)
        .bind(Json(&entry.detail))
        .execute(&mut *$tx)
        .await?;
    }};
}

impl Store {
    /// Creates a run and its audit entry in one transaction.
    pub async fn create_run(&self, new: &NewRun, audit: &NewAuditEntry) -> Result<Run, StoreError> {
        let at = now_millis();
        let id = new_id();
        let status = if new.running_on.is_some() {
            RunStatus::Running
        } else if new.approval_role.is_some() {
            RunStatus::AwaitingApproval
        } else {
            RunStatus::Queued
        };
        let (owner, until, started) = match &new.running_on {
            Some((owner, lease)) => (
                Some(owner.as_str()),
                Some(at.saturating_add(lease_millis(*lease))),
                Some(at),
            ),
            None => (None, None, None),
        };
        let mut audit = audit.clone();
        audit.subject = format!("run:{id}");
        on_write_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO action_runs (id, action, action_version, entity_ref, input, \
                 secret_input, status, actor, attempt, created_at, queued_at, approval_role, \
                 kind, lease_owner, lease_until, started_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&id)
            .bind(&new.action)
            .bind(&new.action_version)
            .bind(new.entity_ref.as_deref())
            .bind(Json(&new.input))
            .bind(new.secret_input.as_ref().map(Json))
            .bind(status.as_str())
            .bind(&new.actor)
            .bind(at)
            .bind(new.approval_role.as_deref())
            .bind(&new.kind)
            .bind(owner)
            .bind(until)
            .bind(started)
            .execute(&mut *tx)
            .await?;
            audit_insert!(tx, &audit, at);
            tx.commit().await?;
        });
        self.run(&id)
            .await?
            .ok_or_else(|| StoreError::InvalidData(format!("run {id} vanished once created")))
    }

    /// One run by id.
    pub async fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM action_runs WHERE id = $1");
        let row: Option<RunRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(RunRow::into_run).transpose()
    }

    /// Runs, newest first, under `filter`.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        let limit = i64::from(filter.limit.clamp(1, MAX_RUN_PAGE));
        let sql = format!(
            "SELECT {COLUMNS} FROM action_runs WHERE ($1 IS NULL OR action = $1) \
             AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR entity_ref = $3) \
             AND ($4 IS NULL OR actor = $4) AND ($5 IS NULL OR id < $5) \
             AND ($7 IS NULL OR kind = $7) ORDER BY id DESC LIMIT $6"
        );
        let rows: Vec<RunRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql)
                .bind(filter.action.as_deref())
                .bind(filter.status.map(RunStatus::as_str))
                .bind(filter.entity_ref.as_deref())
                .bind(filter.actor.as_deref())
                .bind(filter.before.as_deref())
                .bind(limit)
                .bind(filter.kind.as_deref())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(RunRow::into_run).collect()
    }

    /// Approves (`approved = true`: back to `queued`) or denies (ends
    /// `cancelled`) a run that waits for approval, with its audit entry.
    /// `None` when the run does not wait (any more).
    pub async fn decide_run(
        &self,
        id: &str,
        approved: bool,
        by: &str,
        comment: Option<&str>,
        audit: &NewAuditEntry,
    ) -> Result<Option<Run>, StoreError> {
        let at = now_millis();
        let sql = if approved {
            "UPDATE action_runs SET status = 'queued', queued_at = $1, approval_decision = 'approved', \
             approval_by = $2, approval_at = $1, approval_comment = $3 \
             WHERE id = $4 AND status = 'awaiting-approval'"
        } else {
            "UPDATE action_runs SET status = 'cancelled', finished_at = $1, \
             approval_decision = 'denied', approval_by = $2, approval_at = $1, \
             approval_comment = $3, secret_input = NULL, cancelled_by = $2, \
             error = $5 WHERE id = $4 AND status = 'awaiting-approval'"
        };
        let error = serde_json::json!({
            "code": "denied",
            "message": format!("{by} denied the run{}", comment.map(|c| format!(": {c}")).unwrap_or_default()),
        });
        let changed = on_write_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut q = sqlx::query(sql).bind(at).bind(by).bind(comment).bind(id);
            if !approved {
                q = q.bind(Json(&error));
            }
            let n = q.execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                audit_insert!(tx, audit, at);
                tx.commit().await?;
            }
            n
        });
        if changed == 0 {
            return Ok(None);
        }
        self.run(id).await
    }

    /// Claims the run that has waited longest in the queue for `owner`,
    /// leased for `lease`. Each run is claimed by one caller, whichever
    /// replica it runs in.
    pub async fn claim_run(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ClaimedRun>, StoreError> {
        let at = now_millis();
        let until = at.saturating_add(lease_millis(lease));
        let pick = match &self.pool {
            crate::store::Pool::Sqlite(_) => "",
            crate::store::Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE action_runs SET status = 'running', lease_owner = $1, lease_until = $2, \
             started_at = $3 \
             WHERE id = (SELECT id FROM action_runs WHERE status = 'queued' AND kind = 'action' \
             ORDER BY queued_at, id LIMIT 1{pick}) \
             AND status = 'queued' RETURNING {COLUMNS}"
        );
        let row: Option<RunRow> = on_write_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(owner)
                .bind(until)
                .bind(at)
                .fetch_optional(pool)
                .await?
        });
        row.map(RunRow::into_claimed).transpose()
    }

    /// Extends `owner`'s lease on a running run. `None`: the lease is lost
    /// (the run expired or ended), the worker must stop. `Some(true)`:
    /// someone asked to cancel the run.
    pub async fn renew_run(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<bool>, StoreError> {
        let until = now_millis().saturating_add(lease_millis(lease));
        let flag: Option<bool> = on_write_pool!(self, pool => {
            sqlx::query_scalar(
                "UPDATE action_runs SET lease_until = $1 \
                 WHERE id = $2 AND lease_owner = $3 AND status = 'running' \
                 RETURNING cancel_requested",
            )
            .bind(until)
            .bind(id)
            .bind(owner)
            .fetch_optional(pool)
            .await?
        });
        Ok(flag)
    }

    /// Ends a running run held by `owner` and erases its secret input.
    /// `false` if it was not (any more) theirs: nothing is written.
    pub async fn finish_run(
        &self,
        id: &str,
        owner: &str,
        end: &RunEnd,
    ) -> Result<bool, StoreError> {
        if !end.status.is_final() {
            return Err(StoreError::InvalidData(format!(
                "run {id}: cannot finish as {}",
                end.status
            )));
        }
        let done = on_write_pool!(self, pool => {
            sqlx::query(
                "UPDATE action_runs SET status = $1, finished_at = $2, output = $3, links = $4, \
                 error = $5, lease_until = NULL, secret_input = NULL \
                 WHERE id = $6 AND lease_owner = $7 AND status = 'running'",
            )
            .bind(end.status.as_str())
            .bind(now_millis())
            .bind(end.output.as_ref().map(Json))
            .bind(Json(&end.links))
            .bind(end.error.as_ref().map(Json))
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Cancels a run for `by`. A run that has not started ends `cancelled`
    /// at once; a running one is flagged for its worker, which stops it.
    /// `None` if the run has already ended (or does not exist).
    pub async fn cancel_run(
        &self,
        id: &str,
        by: &str,
        audit: &NewAuditEntry,
    ) -> Result<Option<Run>, StoreError> {
        let at = now_millis();
        let error = serde_json::json!({
            "code": "cancelled",
            "message": format!("cancelled by {by} before it started"),
        });
        let changed = on_write_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let waiting = sqlx::query(&format!(
                "UPDATE action_runs SET status = 'cancelled', finished_at = $1, cancelled_by = $2, \
                 cancel_requested = TRUE, secret_input = NULL, error = $3 \
                 WHERE id = $4 AND status IN {WAITING}"
            ))
            .bind(at)
            .bind(by)
            .bind(Json(&error))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let running = if waiting == 0 {
                sqlx::query(
                    "UPDATE action_runs SET cancel_requested = TRUE, \
                     cancelled_by = COALESCE(cancelled_by, $1) \
                     WHERE id = $2 AND status = 'running'",
                )
                .bind(by)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                0
            };
            let n = waiting + running;
            if n == 1 {
                audit_insert!(tx, audit, at);
                tx.commit().await?;
            }
            n
        });
        if changed == 0 {
            return Ok(None);
        }
        self.run(id).await
    }

    /// Puts a failed or cancelled run back in the queue (or back before its
    /// approvers) as its next attempt. `None` if the run is in another
    /// status (or does not exist).
    pub async fn retry_run(
        &self,
        id: &str,
        retry: &RetryRun,
        audit: &NewAuditEntry,
    ) -> Result<Option<Run>, StoreError> {
        let at = now_millis();
        let (status, reset_approval) = if retry.needs_approval {
            ("awaiting-approval", true)
        } else {
            ("queued", false)
        };
        let approval_reset = if reset_approval {
            ", approval_decision = NULL, approval_by = NULL, approval_at = NULL, \
             approval_comment = NULL"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE action_runs SET status = $1, attempt = attempt + 1, queued_at = $2, \
             started_at = NULL, finished_at = NULL, output = NULL, links = NULL, error = NULL, \
             cancel_requested = FALSE, cancelled_by = NULL, lease_owner = NULL, \
             lease_until = NULL, input = $3, secret_input = $4{approval_reset} \
             WHERE id = $5 AND status IN ('failed', 'cancelled')"
        );
        let changed = on_write_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(&sql)
                .bind(status)
                .bind(at)
                .bind(Json(&retry.input))
                .bind(retry.secret_input.as_ref().map(Json))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                audit_insert!(tx, audit, at);
                tx.commit().await?;
            }
            n
        });
        if changed == 0 {
            return Ok(None);
        }
        self.run(id).await
    }

    /// Fails every running run whose lease ran out, with `error`, erasing
    /// its secret input; returns their ids. Their worker stopped renewing:
    /// its process died, hung, or lost the database.
    pub async fn expire_runs(&self, error: &Value) -> Result<Vec<String>, StoreError> {
        let at = now_millis();
        let ids: Vec<String> = on_write_pool!(self, pool => {
            sqlx::query_scalar(
                "UPDATE action_runs SET status = 'failed', finished_at = $1, error = $2, \
                 lease_until = NULL, secret_input = NULL \
                 WHERE status = 'running' AND lease_until < $1 RETURNING id",
            )
            .bind(at)
            .bind(Json(error))
            .fetch_all(pool)
            .await?
        });
        Ok(ids)
    }

    /// Appends lines to the log of a run's `attempt`; returns the sequence
    /// number of the last one. Numbers are handed out by the run's row, so
    /// writers on several replicas never collide.
    pub async fn append_run_logs(
        &self,
        run_id: &str,
        attempt: i64,
        lines: &[NewLogLine],
    ) -> Result<i64, StoreError> {
        if lines.is_empty() {
            return Ok(0);
        }
        let n = lines.len() as i64;
        let last = on_write_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let last: Option<i64> = sqlx::query_scalar(
                "UPDATE action_runs SET log_seq = log_seq + $1 WHERE id = $2 RETURNING log_seq",
            )
            .bind(n)
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(last) = last else {
                return Err(StoreError::InvalidData(format!("no run {run_id} to log to")));
            };
            let first = last - n + 1;
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO action_run_logs (run_id, seq, attempt, level, message, at) ",
            );
            qb.push_values(lines.iter().enumerate(), |mut b, (i, line)| {
                b.push_bind(run_id)
                    .push_bind(first + i as i64)
                    .push_bind(attempt)
                    .push_bind(&line.level)
                    .push_bind(&line.message)
                    .push_bind(line.at.timestamp_millis());
            });
            qb.build().execute(&mut *tx).await?;
            tx.commit().await?;
            last
        });
        Ok(last)
    }

    /// A run's log lines after `after`, oldest first, at most `limit`.
    pub async fn run_logs(
        &self,
        run_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RunLogLine>, StoreError> {
        let limit = i64::from(limit.clamp(1, 5_000));
        let rows: Vec<LogRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT seq, CAST(attempt AS BIGINT) AS attempt, level, message, at \
                 FROM action_run_logs WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(run_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| RunLogLine {
                seq: r.seq,
                attempt: r.attempt,
                level: r.level,
                message: r.message,
                at: millis_to_time(r.at),
            })
            .collect())
    }

    /// Writes one audit entry on its own (run transitions write theirs in
    /// the same transaction).
    pub async fn audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError> {
        let at = now_millis();
        on_write_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            audit_insert!(conn, entry, at);
        });
        Ok(())
    }

    /// Audit entries, newest first, under `filter`.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::from(filter.limit.clamp(1, MAX_RUN_PAGE));
        let rows: Vec<AuditRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT id, at, actor, verb, subject, detail FROM audit_log \
                 WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR verb = $2) \
                 AND ($3 IS NULL OR subject = $3) AND ($4 IS NULL OR id < $4) \
                 ORDER BY id DESC LIMIT $5",
            )
            .bind(filter.actor.as_deref())
            .bind(filter.verb.as_deref())
            .bind(filter.subject.as_deref())
            .bind(filter.before.as_deref())
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: millis_to_time(r.at),
                actor: r.actor,
                action: r.verb,
                subject: r.subject,
                detail: r.detail.0,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(s));
        }
        let err = "done".parse::<RunStatus>().unwrap_err();
        assert!(err.contains("awaiting-approval"), "{err}");
    }

    #[test]
    fn ids_sort_by_time() {
        let a = new_id();
        std::thread::sleep(Duration::from_micros(2));
        assert!(a < new_id());
    }
}
