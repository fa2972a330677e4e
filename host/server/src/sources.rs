//! `/api/v1/sources`: catalog sources, their syncs and sync history.
//!
//! A source is a loaded catalog-source plugin; its id is the plugin's.
//! Syncs run through the durable queue (see [`crate::sync`]); these
//! handlers only read it and enqueue.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use portolan_runtime::{PluginEntry, PluginStatus};
use portolan_store::{Job, Origin, Role};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use crate::sync::{self, QUEUE};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sources", get(list_sources))
        .route("/sources/{id}", get(get_source))
        .route("/sources/{id}/sync", post(start_sync))
        .route("/sources/{id}/syncs", get(list_syncs))
        .route("/sources/{id}/syncs/{sync_id}", get(get_sync))
}

/// A sync as the API shows it: the job, with its result unpacked.
pub fn sync_json(job: &Job) -> Value {
    let result = job.result.as_ref();
    let field = |k: &str| result.and_then(|r| r.get(k)).cloned();
    let duration_ms = field("durationMs").or_else(|| {
        job.started_at.map(|s| {
            let end = job.finished_at.unwrap_or_else(Utc::now);
            json!((end - s).num_milliseconds().max(0))
        })
    });
    json!({
        "id": job.id,
        "source": job.subject,
        "trigger": job.triggered_by,
        "actor": job.actor,
        "status": job.status,
        "queuedAt": job.queued_at,
        "startedAt": job.started_at,
        "finishedAt": job.finished_at,
        "durationMs": duration_ms,
        "replica": job.lease_owner,
        "pluginVersion": job.payload.get("version"),
        "progress": job.progress.clone().unwrap_or_else(|| json!({"pages": 0, "entities": 0, "totalHint": null})),
        "counts": field("counts"),
        "problems": field("problems").unwrap_or_else(|| json!([])),
        "problemCount": field("problemCount").unwrap_or_else(|| json!(0)),
        "error": job.error,
        "log": field("log").unwrap_or_else(|| json!([])),
    })
}

fn find_source(state: &AppState, id: &str) -> Result<std::sync::Arc<PluginEntry>, ApiError> {
    let entry = state
        .registry
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("no plugin {id:?} in the plugins folder")))?;
    if entry.status == PluginStatus::Ready && !sync::is_source(&entry) {
        let role = entry.role.map(|r| r.as_str()).unwrap_or("unknown");
        return Err(ApiError::NotFound(format!(
            "plugin {id:?} is a {role} plugin, not a catalog source"
        )));
    }
    Ok(entry)
}

async fn source_json(state: &AppState, entry: &PluginEntry) -> Result<Value, ApiError> {
    let history = state
        .store
        .list_jobs(QUEUE, Some(&entry.id), 2, None)
        .await?;
    let latest = history.first();
    let last_finished = if latest.is_some_and(|j| j.status.is_final()) {
        latest
    } else {
        history.get(1)
    };
    let entities = state
        .store
        .count_entities_by_origin()
        .await?
        .get(&Origin::Source(entry.id.clone()).to_string())
        .copied()
        .unwrap_or(0);
    let grants = entry.grants.as_deref();
    Ok(json!({
        "id": entry.id,
        "status": entry.status,
        "error": entry.error,
        "version": entry.version,
        "title": entry.describe.as_ref().map(|d| d.title.clone()),
        "schedule": grants.and_then(|g| g.schedule.as_ref()),
        "nextSyncAt": if entry.status == PluginStatus::Ready { sync::next_scheduled(entry, latest) } else { None },
        "entities": entities,
        "current": latest.filter(|j| !j.status.is_final()).map(sync_json),
        "lastSync": last_finished.map(sync_json),
    }))
}

/// `GET /api/v1/sources`: every catalog-source plugin with its last sync.
async fn list_sources(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut items = Vec::new();
    for entry in state.registry.list() {
        // A plugin that failed to load has no role; list it only if its
        // history says it was a source.
        let known_source = sync::is_source(&entry)
            || (entry.status == PluginStatus::Failed
                && !state
                    .store
                    .list_jobs(QUEUE, Some(&entry.id), 1, None)
                    .await?
                    .is_empty());
        if known_source {
            items.push(source_json(&state, &entry).await?);
        }
    }
    Ok(Json(json!({"total": items.len(), "items": items})))
}

/// `GET /api/v1/sources/{id}`.
async fn get_source(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entry = find_source(&state, &id)?;
    Ok(Json(source_json(&state, &entry).await?))
}

/// `POST /api/v1/sources/{id}/sync` (member): queues a sync now. If one is
/// already queued or running, answers that one.
async fn start_sync(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let token = caller.require(Role::Member)?;
    let entry = find_source(&state, &id)?;
    if entry.status != PluginStatus::Ready {
        return Err(ApiError::Conflict(format!(
            "plugin {id:?} failed to load, so it cannot sync: {}",
            entry.error.as_deref().unwrap_or("unknown error")
        )));
    }
    let actor = format!(
        "token:{}{}",
        token.id,
        if token.description.is_empty() {
            String::new()
        } else {
            format!(" ({})", token.description)
        }
    );
    let (job, _created) = sync::enqueue(&state, &entry, "manual", Some(actor)).await?;
    let location = format!("/api/v1/sources/{id}/syncs/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(sync_json(&job)),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /api/v1/sources/{id}/syncs`: the source's syncs, newest first.
async fn list_syncs(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    // History outlives the plugin: a removed source's syncs stay readable.
    if state.registry.get(&id).is_none()
        && state
            .store
            .list_jobs(QUEUE, Some(&id), 1, None)
            .await?
            .is_empty()
    {
        return Err(ApiError::NotFound(format!(
            "no catalog source {id:?} (no such plugin and no sync history)"
        )));
    }
    let limit = q.limit.unwrap_or(20);
    if !(1..=portolan_store::jobs::MAX_JOB_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "query.limit",
            format!(
                "must be between 1 and {}",
                portolan_store::jobs::MAX_JOB_PAGE
            ),
        ));
    }
    let before = match &q.cursor {
        None => None,
        Some(c) => Some(decode_cursor(c)?),
    };
    let mut jobs = state
        .store
        .list_jobs(QUEUE, Some(&id), limit + 1, before.as_deref())
        .await?;
    let more = jobs.len() > limit as usize;
    jobs.truncate(limit as usize);
    let next = more
        .then(|| jobs.last().map(|j| encode_cursor(&j.id)))
        .flatten();
    let items: Vec<Value> = jobs.iter().map(sync_json).collect();
    Ok(Json(json!({"items": items, "nextCursor": next})))
}

/// `GET /api/v1/sources/{id}/syncs/{sync_id}`.
async fn get_sync(
    State(state): State<AppState>,
    _caller: Caller,
    Path((id, sync_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    match state.store.job(&sync_id).await? {
        Some(job) if job.queue == QUEUE && job.subject == id => Ok(Json(sync_json(&job))),
        _ => Err(ApiError::NotFound(format!(
            "no sync {sync_id:?} of source {id:?}"
        ))),
    }
}

/// History cursors are the id of the last sync on the page (ids sort by
/// age); opaque to clients all the same.
fn encode_cursor(id: &str) -> String {
    id.to_owned()
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    if !cursor.is_empty() && cursor.len() <= 64 && cursor.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(cursor.to_owned())
    } else {
        Err(ApiError::invalid(
            "query.cursor",
            "not a cursor this API returned; pass nextCursor unchanged",
        ))
    }
}
