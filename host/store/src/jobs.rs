//! The durable work queue (`jobs` table): work that takes time and must
//! survive a restart or the loss of a replica.
//!
//! A job is enqueued `queued`, claimed by exactly one worker
//! ([`Store::claim_job`]: `FOR UPDATE SKIP LOCKED` on PostgreSQL, a single
//! atomic `UPDATE` on SQLite) which then holds a lease and renews it while it
//! works ([`Store::renew_job`], which also records progress). It ends
//! `succeeded` or `failed` through [`Store::finish_job`], which only the
//! lease holder may call. A job whose lease runs out belonged to a worker
//! that died or hung; [`Store::expire_jobs`] ends it failed with a reason,
//! so nothing stays "running" forever and nothing is silently lost.
//!
//! Times are milliseconds since the Unix epoch in the database; the API
//! shapes here carry [`DateTime<Utc>`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use crate::store::{on_pool, on_write_pool, Pool};
use crate::{Store, StoreError};

/// The most history rows one [`Store::list_jobs`] call returns.
pub const MAX_JOB_PAGE: u32 = 500;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<JobStatus, String> {
        Ok(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            other => return Err(format!("unknown job status {other:?}")),
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Which kind of work: `source-sync`, ...; workers claim by queue.
    pub queue: String,
    /// What the work is about, e.g. the source's plugin id.
    pub subject: String,
    /// Why it was enqueued: `manual`, `schedule`, `load`, ...
    pub triggered_by: String,
    /// Who asked for it, when a person or token did.
    pub actor: Option<String>,
    /// The worker's input.
    pub payload: Value,
    /// At most one queued-or-running job per (queue, subject): enqueueing
    /// while one is pending returns that one.
    pub dedupe: bool,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub queue: String,
    pub subject: String,
    pub triggered_by: String,
    pub actor: Option<String>,
    pub payload: Value,
    pub status: JobStatus,
    pub attempts: i64,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Which worker holds (or last held) it.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub progress: Option<Value>,
    pub result: Option<Value>,
    pub error: Option<Value>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    queue: String,
    subject: String,
    triggered_by: String,
    actor: Option<String>,
    payload: Json<Value>,
    status: String,
    attempts: i64,
    queued_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    progress: Option<Json<Value>>,
    result: Option<Json<Value>>,
    error: Option<Json<Value>>,
}

const COLUMNS: &str = "id, queue, subject, triggered_by, actor, payload, status, \
     CAST(attempts AS BIGINT) AS attempts, queued_at, started_at, finished_at, lease_owner, \
     lease_until, progress, result, error";

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

impl JobRow {
    fn into_job(self) -> Result<Job, StoreError> {
        let status = self
            .status
            .parse()
            .map_err(|e| StoreError::InvalidData(format!("job {}: {e}", self.id)))?;
        Ok(Job {
            id: self.id,
            queue: self.queue,
            subject: self.subject,
            triggered_by: self.triggered_by,
            actor: self.actor,
            payload: self.payload.0,
            status,
            attempts: self.attempts,
            queued_at: millis_to_time(self.queued_at),
            started_at: self.started_at.map(millis_to_time),
            finished_at: self.finished_at.map(millis_to_time),
            lease_owner: self.lease_owner,
            lease_until: self.lease_until.map(millis_to_time),
            progress: self.progress.map(|j| j.0),
            result: self.result.map(|j| j.0),
            error: self.error.map(|j| j.0),
        })
    }
}

/// A new job id: the enqueue time in hex first, so ids sort by age, then
/// random bits.
fn new_job_id(at_millis: i64) -> String {
    let mut random = [0u8; 8];
    OsRng.fill_bytes(&mut random);
    format!("{:012x}{}", at_millis.max(0), hex::encode(random))
}

fn dedupe_key(queue: &str, subject: &str) -> String {
    format!("{queue}\u{1f}{subject}")
}

impl Store {
    /// Enqueues a job, runnable now. With [`NewJob::dedupe`], if a job of
    /// the same queue and subject is already queued or running, returns
    /// that one and `false` instead.
    pub async fn enqueue_job(&self, new: &NewJob) -> Result<(Job, bool), StoreError> {
        let key = new.dedupe.then(|| dedupe_key(&new.queue, &new.subject));
        // Two tries: if the pending job we collided with ends between our
        // insert and our lookup, the second insert goes through.
        for _ in 0..2 {
            let at = now_millis();
            let id = new_job_id(at);
            let inserted = on_write_pool!(self, pool => {
                sqlx::query(
                    "INSERT INTO jobs (id, queue, subject, triggered_by, actor, payload, status, \
                     dedupe_key, attempts, run_after, queued_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, 0, $8, $8) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&id)
                .bind(&new.queue)
                .bind(&new.subject)
                .bind(&new.triggered_by)
                .bind(new.actor.as_deref())
                .bind(Json(&new.payload))
                .bind(key.as_deref())
                .bind(at)
                .execute(pool)
                .await?
                .rows_affected()
            });
            if inserted == 1 {
                let job = self.job(&id).await?.ok_or_else(|| {
                    StoreError::InvalidData(format!("job {id} vanished right after it was queued"))
                })?;
                return Ok((job, true));
            }
            if let Some(key) = &key {
                let sql = format!(
                    "SELECT {COLUMNS} FROM jobs WHERE dedupe_key = $1 \
                     AND status IN ('queued', 'running')"
                );
                let row: Option<JobRow> = on_pool!(&self.pool, pool => {
                    sqlx::query_as(&sql).bind(key).fetch_optional(pool).await?
                });
                if let Some(row) = row {
                    return Ok((row.into_job()?, false));
                }
            }
        }
        Err(StoreError::InvalidData(format!(
            "could not enqueue a {} job for {}: it kept colliding with another",
            new.queue, new.subject
        )))
    }

    /// Claims the oldest runnable job of `queue` for `owner`, leased for
    /// `lease`. Each job is claimed by one caller, whichever replica it
    /// runs in.
    pub async fn claim_job(
        &self,
        queue: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Job>, StoreError> {
        let at = now_millis();
        let until = at.saturating_add(lease_millis(lease));
        let pick = match &self.pool {
            Pool::Sqlite(_) => "",
            Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $2, \
             started_at = $3, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM jobs WHERE queue = $4 AND status = 'queued' \
             AND run_after <= $3 ORDER BY run_after, id LIMIT 1{pick}) \
             AND status = 'queued' RETURNING {COLUMNS}"
        );
        let row: Option<JobRow> = on_write_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(owner)
                .bind(until)
                .bind(at)
                .bind(queue)
                .fetch_optional(pool)
                .await?
        });
        row.map(JobRow::into_job).transpose()
    }

    /// Extends `owner`'s lease on a running job and, if given, records its
    /// progress. `false` means the lease is lost (expired and taken over, or
    /// the job ended): the worker must stop.
    pub async fn renew_job(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
        progress: Option<&Value>,
    ) -> Result<bool, StoreError> {
        let until = now_millis().saturating_add(lease_millis(lease));
        let done = on_write_pool!(self, pool => {
            sqlx::query(
                "UPDATE jobs SET lease_until = $1, progress = COALESCE($2, progress) \
                 WHERE id = $3 AND lease_owner = $4 AND status = 'running'",
            )
            .bind(until)
            .bind(progress.map(Json))
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Ends a running job held by `owner`. `false` if it was not (any more)
    /// theirs, in which case nothing is written.
    pub async fn finish_job(
        &self,
        id: &str,
        owner: &str,
        status: JobStatus,
        result: Option<&Value>,
        error: Option<&Value>,
    ) -> Result<bool, StoreError> {
        if !status.is_final() {
            return Err(StoreError::InvalidData(format!(
                "job {id}: cannot finish as {status}"
            )));
        }
        let done = on_write_pool!(self, pool => {
            sqlx::query(
                "UPDATE jobs SET status = $1, finished_at = $2, result = $3, error = $4, \
                 lease_until = NULL \
                 WHERE id = $5 AND lease_owner = $6 AND status = 'running'",
            )
            .bind(status.as_str())
            .bind(now_millis())
            .bind(result.map(Json))
            .bind(error.map(Json))
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Ends as failed every running job of `queue` whose lease ran out,
    /// with `error`, and returns their ids. The worker that held them
    /// stopped renewing: its process died, hung, or lost the database.
    pub async fn expire_jobs(&self, queue: &str, error: &Value) -> Result<Vec<String>, StoreError> {
        let at = now_millis();
        let ids: Vec<String> = on_write_pool!(self, pool => {
            sqlx::query_scalar(
                "UPDATE jobs SET status = 'failed', finished_at = $1, error = $2, \
                 lease_until = NULL \
                 WHERE queue = $3 AND status = 'running' AND lease_until < $1 RETURNING id",
            )
            .bind(at)
            .bind(Json(error))
            .bind(queue)
            .fetch_all(pool)
            .await?
        });
        Ok(ids)
    }

    /// One job by id.
    pub async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        let row: Option<JobRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(JobRow::into_job).transpose()
    }

    /// Jobs of `queue` (and `subject`, if given), newest first, at most
    /// `limit` (capped at [`MAX_JOB_PAGE`]); `before` continues after the
    /// job with that id.
    pub async fn list_jobs(
        &self,
        queue: &str,
        subject: Option<&str>,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<Job>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_JOB_PAGE));
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE queue = $1 \
             AND ($2 IS NULL OR subject = $2) AND ($3 IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        );
        let rows: Vec<JobRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql)
                .bind(queue)
                .bind(subject)
                .bind(before)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(JobRow::into_job).collect()
    }

    /// The newest job of each subject in `queue`: what a scheduler needs to
    /// decide whether a subject is due.
    pub async fn latest_jobs(&self, queue: &str) -> Result<Vec<Job>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs j WHERE queue = $1 AND id = \
             (SELECT MAX(id) FROM jobs k WHERE k.queue = j.queue AND k.subject = j.subject)"
        );
        let rows: Vec<JobRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(&sql).bind(queue).fetch_all(pool).await?
        });
        rows.into_iter().map(JobRow::into_job).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_enqueue_time() {
        let a = new_job_id(1_700_000_000_000);
        let b = new_job_id(1_700_000_000_001);
        assert!(a < b);
        assert_eq!(a.len(), 28);
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(s));
        }
        assert!("done".parse::<JobStatus>().is_err());
    }
}
