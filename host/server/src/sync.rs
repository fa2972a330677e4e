//! Catalog source syncs: the scheduler that decides when each source runs,
//! and the workers that run them.
//!
//! Every sync is a job in the store's durable queue (`source-sync`, one
//! pending job per source). Each replica runs one scheduler and a few
//! workers; the queue makes sure a sync runs on exactly one of them:
//!
//! - the **scheduler** ticks every second: it ends the syncs whose worker
//!   stopped renewing its lease (a replica that died), and enqueues a sync
//!   for each loaded source that is due: never synced, changed (a new
//!   `.wasm` or sidecar), or due by its sidecar's `[schedule]`. It keeps no
//!   state of its own: "due" is computed from the newest job in the
//!   database, so any replica reaches the same answer.
//! - a **worker** claims a job, calls the plugin's `sync` page by page
//!   (recording progress and renewing its lease after each), validates every
//!   entity, and hands the complete result to
//!   [`Store::sync_source`](portolan_store::Store::sync_source), which
//!   writes what changed and removes the source's orphans in one
//!   transaction. A failed call, a runaway plugin or a lost lease fails the
//!   sync before anything is written, so the catalog keeps the last good
//!   data.
//!
//! Entities a source returns that do not validate are skipped and reported
//! in the sync's `problems`; their last good version (if any) is kept rather
//! than removed as an orphan.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use portolan_catalog::Entity;
use portolan_runtime::{CallError, LogLine, PluginEntry, PluginStatus, Role as PluginRole};
use portolan_store::{Job, JobStatus, NewJob};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::entities::rough_ref;

/// The queue source syncs go through.
pub const QUEUE: &str = "source-sync";

/// How long a worker's claim on a sync lasts without renewal. Renewed after
/// every page, so a page may take up to this long (plugin call deadlines are
/// capped well below it).
pub const LEASE: Duration = Duration::from_secs(120);

/// How often the scheduler looks for due sources and dead workers, and how
/// often an idle worker looks for work queued by another replica.
pub const TICK: Duration = Duration::from_secs(1);

/// Syncs one replica runs at the same time.
pub const WORKERS: usize = 2;

/// The most pages one sync may take: a plugin whose cursor never ends is
/// stopped here.
pub const MAX_PAGES: u64 = 10_000;

/// The most entities one sync may return.
pub const MAX_ENTITIES: usize = 500_000;

/// Problems and log lines kept in a sync record; the counts say how many
/// there were in all.
const MAX_PROBLEMS: usize = 100;
const MAX_LOG_LINES: usize = 200;

/// Wakes this replica's workers when a sync is enqueued here.
#[derive(Debug, Default)]
pub struct Wake(Notify);

impl Wake {
    pub fn notify(&self) {
        self.0.notify_waiters();
    }

    /// Resolves at the next [`notify`](Self::notify).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.notified()
    }
}

/// The revision of a loaded plugin: a hash of the component and of what
/// the operator granted it, so that a new sidecar (another directory,
/// other settings) triggers a sync just like a new `.wasm`.
pub fn revision(entry: &PluginEntry) -> String {
    let mut h = Sha256::new();
    h.update(entry.hash.as_deref().unwrap_or_default());
    if let Some(grants) = &entry.grants {
        h.update(serde_json::to_vec(grants.as_ref()).unwrap_or_default());
    }
    hex::encode(&h.finalize()[..8])
}

/// Whether this entry is a loaded catalog source.
pub fn is_source(entry: &PluginEntry) -> bool {
    entry.role == Some(PluginRole::CatalogSource)
}

/// When the source is next due by its schedule, given its newest sync.
pub fn next_scheduled(entry: &PluginEntry, latest: Option<&Job>) -> Option<DateTime<Utc>> {
    let schedule = entry.grants.as_ref()?.schedule.as_ref()?;
    match latest {
        None => Some(Utc::now()),
        Some(job) => schedule.next_after(job.started_at.unwrap_or(job.queued_at)),
    }
}

/// Enqueues a sync of `source` and wakes the local workers. Returns the
/// job and whether it is new (`false`: one was already pending).
pub async fn enqueue(
    state: &AppState,
    entry: &PluginEntry,
    triggered_by: &str,
    actor: Option<String>,
) -> Result<(Job, bool), portolan_store::StoreError> {
    let out = state
        .store
        .enqueue_job(&NewJob {
            queue: QUEUE.to_owned(),
            subject: entry.id.clone(),
            triggered_by: triggered_by.to_owned(),
            actor,
            payload: json!({
                "revision": revision(entry),
                "version": entry.version,
            }),
            dedupe: true,
        })
        .await?;
    if out.1 {
        tracing::info!(source = %entry.id, job = %out.0.id, triggered_by, "source sync queued");
    }
    state.sync_wake.notify();
    Ok(out)
}

/// Starts the scheduler and the workers; they stop when `stop` turns true.
pub fn spawn(state: AppState, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let replica = replica_id();
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(scheduler(state.clone(), stop.clone())));
        for n in 0..WORKERS {
            let owner = format!("{replica}/{n}");
            tasks.push(tokio::spawn(worker(state.clone(), owner, stop.clone())));
        }
        for t in tasks {
            let _ = t.await;
        }
    })
}

/// A name for this process's workers, unique across replicas: host name,
/// process id and the start time's low bits (containers restart with the
/// same host name and pid).
pub(crate) fn replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}-{}-{:06x}", std::process::id(), nanos & 0xff_ffff)
}

/// Resolves when `stop` turns true (or its sender is gone), holding no
/// borrow of the channel afterwards.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn scheduler(state: AppState, mut stop: watch::Receiver<bool>) {
    let interrupted = json!({
        "code": "interrupted",
        "message": "the portal process running this sync stopped before it finished \
                    (its lease expired); the catalog keeps the last good data",
    });
    loop {
        if let Err(e) = state.store.expire_jobs(QUEUE, &interrupted).await {
            tracing::warn!(error = format!("{e:#}"), "cannot expire stale source syncs");
        }
        // Wait for the first scan: before it, every source looks new.
        if state.registry.scans_completed() > 0 {
            if let Err(e) = schedule_due(&state).await {
                tracing::warn!(error = format!("{e:#}"), "cannot schedule source syncs");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

async fn schedule_due(state: &AppState) -> Result<(), portolan_store::StoreError> {
    let latest: HashMap<String, Job> = state
        .store
        .latest_jobs(QUEUE)
        .await?
        .into_iter()
        .map(|j| (j.subject.clone(), j))
        .collect();
    let now = Utc::now();
    for entry in state.registry.list() {
        if !is_source(&entry) || entry.status != PluginStatus::Ready {
            continue;
        }
        let last = latest.get(&entry.id);
        let reason = match last {
            None => Some("load"),
            Some(job) if !job.status.is_final() => None,
            Some(job)
                if job.payload.get("revision").and_then(Value::as_str)
                    != Some(revision(&entry).as_str()) =>
            {
                Some("plugin-changed")
            }
            Some(_) => match next_scheduled(&entry, last) {
                Some(due) if due <= now => Some("schedule"),
                _ => None,
            },
        };
        if let Some(reason) = reason {
            enqueue(state, &entry, reason, None).await?;
        }
    }
    Ok(())
}

async fn worker(state: AppState, owner: String, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let wake = state.sync_wake.clone();
        let notified = wake.0.notified();
        match state.store.claim_job(QUEUE, &owner, LEASE).await {
            Ok(Some(job)) => {
                let id = job.id.clone();
                let run = run_sync(&state, &owner, job);
                tokio::select! {
                    _ = run => {}
                    _ = stopped(&mut stop) => {
                        let error = json!({
                            "code": "interrupted",
                            "message": "the portal shut down during this sync; \
                                        the catalog keeps the last good data",
                        });
                        let _ = state
                            .store
                            .finish_job(&id, &owner, JobStatus::Failed, None, Some(&error))
                            .await;
                        return;
                    }
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot claim a source sync"),
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

/// Progress of a running sync, as the API shows it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    pages: u64,
    entities: usize,
    total_hint: Option<u64>,
}

/// Why a sync failed.
#[derive(Debug)]
struct Failure {
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl Failure {
    fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            field: None,
        }
    }

    fn from_call(page: u64, e: CallError) -> Failure {
        let code = e.code();
        let field = match &e {
            CallError::Plugin { field, .. } => field.clone(),
            _ => None,
        };
        Failure {
            code,
            message: format!("page {}: {e}", page + 1),
            field,
        }
    }
}

/// The sync's log: the plugin's lines and the host's own steps.
#[derive(Default)]
struct Log {
    lines: Vec<Value>,
    dropped: usize,
    started: Option<Instant>,
}

impl Log {
    fn host(&mut self, message: String) {
        self.push(json!({"source": "host", "level": "info", "message": message}));
    }

    fn plugin(&mut self, lines: Vec<LogLine>) {
        for line in lines {
            self.push(json!({"source": "plugin", "level": line.level, "message": line.message}));
        }
    }

    fn push(&mut self, mut line: Value) {
        if self.lines.len() >= MAX_LOG_LINES {
            self.dropped += 1;
            return;
        }
        let at = self.started.get_or_insert_with(Instant::now).elapsed();
        line["atMs"] = json!(at.as_millis() as u64);
        self.lines.push(line);
    }
}

async fn run_sync(state: &AppState, owner: &str, job: Job) {
    let started = Instant::now();
    let mut log = Log::default();
    let mut problems = Vec::new();
    let outcome = collect_and_apply(state, owner, &job, &mut log, &mut problems).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let problem_count = problems.len();
    problems.truncate(MAX_PROBLEMS);
    let (status, result, error) = match outcome {
        Ok(counts) => {
            tracing::info!(source = %job.subject, job = %job.id, duration_ms, ?counts, "source sync succeeded");
            (
                JobStatus::Succeeded,
                json!({
                    "counts": counts,
                    "durationMs": duration_ms,
                    "problems": problems,
                    "problemCount": problem_count,
                    "log": log.lines,
                    "logDropped": log.dropped,
                }),
                None,
            )
        }
        Err(f) => {
            tracing::warn!(source = %job.subject, job = %job.id, code = f.code, message = %f.message, "source sync failed");
            (
                JobStatus::Failed,
                json!({
                    "durationMs": duration_ms,
                    "problems": problems,
                    "problemCount": problem_count,
                    "log": log.lines,
                    "logDropped": log.dropped,
                }),
                Some(json!({"code": f.code, "message": f.message, "field": f.field})),
            )
        }
    };
    match state
        .store
        .finish_job(&job.id, owner, status, Some(&result), error.as_ref())
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(job = %job.id, "source sync ended after its lease was lost"),
        Err(e) => {
            tracing::warn!(job = %job.id, error = format!("{e:#}"), "cannot record the end of a source sync")
        }
    }
}

/// What a successful sync did.
#[derive(Debug, Clone, Serialize)]
struct Counts {
    added: usize,
    updated: usize,
    unchanged: usize,
    removed: usize,
}

async fn collect_and_apply(
    state: &AppState,
    owner: &str,
    job: &Job,
    log: &mut Log,
    problems: &mut Vec<Value>,
) -> Result<Counts, Failure> {
    let source = job.subject.as_str();
    let entry = state.registry.get(source).ok_or_else(|| {
        Failure::new(
            "plugin-unavailable",
            format!("no plugin {source:?} is installed (it was removed after the sync was queued)"),
        )
    })?;
    if !is_source(&entry) {
        return Err(Failure::new(
            "plugin-unavailable",
            format!("plugin {source:?} is not a catalog source"),
        ));
    }
    let plugin = entry.plugin.clone().ok_or_else(|| {
        Failure::new(
            "plugin-unavailable",
            format!(
                "plugin {source:?} failed to load: {}",
                entry.error.as_deref().unwrap_or("unknown error")
            ),
        )
    })?;
    log.host(format!(
        "sync of {source} {} started ({})",
        entry.version.as_deref().unwrap_or("?"),
        job.triggered_by
    ));

    let mut progress = Progress::default();
    let mut entities: Vec<Entity> = Vec::new();
    let mut keys: HashSet<String> = HashSet::new();
    let mut keep: HashSet<String> = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut seen_cursors: HashSet<String> = HashSet::new();
    loop {
        let p = plugin.clone();
        let c = cursor.clone();
        let report = tokio::task::spawn_blocking(move || p.sync(c))
            .await
            .map_err(|e| Failure::new("internal", format!("the sync call panicked: {e}")))?;
        log.plugin(report.logs);
        let page = report
            .result
            .map_err(|e| Failure::from_call(progress.pages, e))?;
        let first_index = progress.entities;
        progress.pages += 1;
        progress.total_hint = page.total_hint;
        let returned = page.entities.len();
        for (i, raw) in page.entities.into_iter().enumerate() {
            let index = first_index + i;
            let value = serde_json::to_value(&raw).unwrap_or(Value::Null);
            let rough = rough_ref(&value);
            match Entity::from_value(value) {
                Ok(entity) => {
                    let key = entity.entity_ref().key();
                    if keys.insert(key.clone()) {
                        entities.push(entity);
                    } else {
                        problems.push(json!({
                            "index": index,
                            "entity": entity.entity_ref().to_string(),
                            "errors": [{"field": "/", "message": "returned more than once in this sync; the first one is kept"}],
                        }));
                    }
                }
                Err(invalid) => {
                    if let Some(r) = &rough {
                        keep.insert(r.key());
                    }
                    problems.push(json!({
                        "index": index,
                        "entity": rough.as_ref().map(ToString::to_string),
                        "errors": invalid.problems.iter().map(|p| json!({"field": p.pointer, "message": p.message})).collect::<Vec<_>>(),
                    }));
                }
            }
        }
        progress.entities += returned;
        if progress.entities > MAX_ENTITIES {
            return Err(Failure::new(
                "too-many-entities",
                format!("the source returned more than {MAX_ENTITIES} entities"),
            ));
        }
        let renewed = state
            .store
            .renew_job(
                &job.id,
                owner,
                LEASE,
                Some(&serde_json::to_value(&progress).unwrap_or(Value::Null)),
            )
            .await
            .map_err(|e| Failure::new("database", format!("cannot record progress: {e:#}")))?;
        if !renewed {
            return Err(Failure::new(
                "lease-lost",
                "this sync's lease expired and was taken over; nothing was written",
            ));
        }
        match page.next_cursor {
            None => break,
            Some(next) => {
                if !seen_cursors.insert(next.clone()) {
                    return Err(Failure::new(
                        "bad-output",
                        format!(
                            "page {}: the source returned a cursor it had already returned; \
                             it would never finish",
                            progress.pages
                        ),
                    ));
                }
                if progress.pages >= MAX_PAGES {
                    return Err(Failure::new(
                        "too-many-pages",
                        format!("the source was still paging after {MAX_PAGES} pages"),
                    ));
                }
                cursor = Some(next);
            }
        }
    }
    log.host(format!(
        "fetched {} entities in {} page(s); {} refused",
        progress.entities,
        progress.pages,
        problems.len()
    ));

    let summary = state
        .store
        .sync_source(source, &entities, &keep)
        .await
        .map_err(|e| Failure::new("database", format!("cannot write the catalog: {e:#}")))?;
    for (entity, owner) in &summary.conflicts {
        problems.push(json!({
            "entity": entity,
            "errors": [{"field": "/", "message": format!("belongs to {owner}; left unchanged")}],
        }));
    }
    if summary.added + summary.updated + summary.removed > 0 {
        let refs = entities.iter().map(|e| e.entity_ref().key()).collect();
        crate::evaluate::catalog_changed(state, refs, summary.removed > 0).await;
    }
    let counts = Counts {
        added: summary.added,
        updated: summary.updated,
        unchanged: summary.unchanged,
        removed: summary.removed,
    };
    log.host(format!(
        "catalog updated: {} added, {} updated, {} unchanged, {} removed",
        counts.added, counts.updated, counts.unchanged, counts.removed
    ));
    Ok(counts)
}
