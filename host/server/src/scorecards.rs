//! `/api/v1/scorecards` and the entity pages' scorecard views: defining
//! scorecards (through the API and from files), exemptions, evaluations on
//! demand and their history, results per scorecard and per entity, level
//! history and SVG badges.
//!
//! The meaning lives in `portolan-scorecards` (definitions, coverage,
//! levels, exemptions) and the work in [`crate::evaluate`]; these handlers
//! validate, store, queue and shape.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Mutex;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::Utc;
use portolan_catalog::{EntityRef, RefDefaults};
use portolan_scorecards::{
    covers, standing, CheckRef, ExemptionRequest, Outcome, ScorecardDefinition,
};
use portolan_store::{EntityScorecard, Job, Role, StoredScorecard};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery, FieldError};
use crate::evaluate::{self, Scope, QUEUE};
use crate::schema::{self, SchemaError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/checks", get(list_checks))
        .route("/scorecards", get(list_scorecards))
        .route(
            "/scorecards/{id}",
            get(get_scorecard)
                .put(put_scorecard)
                .delete(delete_scorecard),
        )
        .route("/scorecards/{id}/evaluate", post(start_evaluation))
        .route("/scorecards/{id}/evaluations", get(list_evaluations))
        .route(
            "/scorecards/{id}/evaluations/{eval_id}",
            get(get_evaluation),
        )
        .route("/scorecards/{id}/results", get(results))
        .route("/scorecards/{id}/entities", get(result_entities))
        .route(
            "/scorecards/{id}/exemptions",
            get(list_exemptions).post(add_exemption),
        )
        .route(
            "/scorecards/{id}/exemptions/{rule}/{kind}/{namespace}/{name}",
            delete(revoke_exemption),
        )
        .route(
            "/entities/{kind}/{namespace}/{name}/scorecards",
            get(entity_scorecards),
        )
        .route(
            "/entities/{kind}/{namespace}/{name}/scorecards/{id}/history",
            get(entity_history),
        )
        .route(
            "/entities/{kind}/{namespace}/{name}/scorecards/{id}/badge.svg",
            get(badge),
        )
}

/// Scorecards defined by files, by id: where each came from, so that the
/// API refuses to edit them and people know where to look.
#[derive(Debug, Default)]
pub struct FileScorecards {
    inner: Mutex<FileState>,
}

#[derive(Debug, Default)]
struct FileState {
    /// Scorecard id -> the file that defines it.
    defined: HashMap<String, PathBuf>,
    /// File -> why it was refused, for the list endpoint.
    errors: HashMap<PathBuf, String>,
}

impl FileScorecards {
    fn file_of(&self, id: &str) -> Option<PathBuf> {
        self.inner.lock().ok()?.defined.get(id).cloned()
    }

    fn errors(&self) -> Vec<Value> {
        let Ok(inner) = self.inner.lock() else {
            return Vec::new();
        };
        let mut out: Vec<Value> = inner
            .errors
            .iter()
            .map(|(path, e)| json!({"file": path.display().to_string(), "error": e}))
            .collect();
        out.sort_by(|a, b| a["file"].as_str().cmp(&b["file"].as_str()));
        out
    }
}

// ---------------------------------------------------------------- defining

/// Validates a definition completely: its own rules
/// ([`ScorecardDefinition::from_value`]), that every rule's check is
/// offered by a loaded plugin, and every rule's parameters against that
/// check's schema. Every problem is reported at its JSON pointer.
pub fn validate_definition(
    state: &AppState,
    value: Value,
) -> Result<ScorecardDefinition, Vec<FieldError>> {
    // The checks are looked at in the raw document too, so that one answer
    // lists every problem even when the definition's own rules fail.
    let mut problems = check_problems(state, &value);
    match ScorecardDefinition::from_value(value) {
        Ok(definition) if problems.is_empty() => Ok(definition),
        Ok(_) => Err(problems),
        Err(e) => {
            let mut own: Vec<FieldError> = e
                .problems
                .into_iter()
                .map(|p| FieldError {
                    field: p.pointer,
                    message: p.message,
                })
                .collect();
            own.append(&mut problems);
            Err(own)
        }
    }
}

/// Problems with the rules' checks: each `check` must be offered by a
/// loaded plugin and each rule's `parameters` must match that check's
/// schema. Rules whose check reference does not parse are left to the
/// definition's own validation.
fn check_problems(state: &AppState, value: &Value) -> Vec<FieldError> {
    let mut problems = Vec::new();
    let Some(rules) = value.get("rules").and_then(Value::as_array) else {
        return problems;
    };
    for (i, rule) in rules.iter().enumerate() {
        let Some(Ok(reference)) = rule
            .get("check")
            .and_then(Value::as_str)
            .map(CheckRef::parse)
        else {
            continue;
        };
        let parameters = rule.get("parameters").cloned().unwrap_or_else(|| json!({}));
        match evaluate::resolve_check(state, &reference) {
            Err(why) => problems.push(FieldError {
                field: format!("/rules/{i}/check"),
                message: format!("unknown check {reference}: {why}"),
            }),
            Ok((_, offer)) => match schema::validate(&offer.parameters_schema, &parameters) {
                Ok(()) => {}
                Err(SchemaError::Invalid(found)) => {
                    problems.extend(found.into_iter().map(|p| FieldError {
                        field: format!("/rules/{i}/parameters{}", p.pointer),
                        message: p.message,
                    }))
                }
                Err(SchemaError::BadSchema(e)) => problems.push(FieldError {
                    field: format!("/rules/{i}/check"),
                    message: format!(
                        "check {reference} has an unusable parameters schema ({e}); \
                         fix the plugin"
                    ),
                }),
            },
        }
    }
    problems
}

fn invalid(errors: Vec<FieldError>) -> ApiError {
    let detail = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::Invalid { detail, errors }
}

/// The stored definition as the API shows it.
fn scorecard_json(stored: &StoredScorecard, file: Option<&FsPath>) -> Value {
    let mut out = stored.definition.clone();
    if let Some(obj) = out.as_object_mut() {
        obj.insert("createdAt".into(), json!(stored.created_at));
        obj.insert("updatedAt".into(), json!(stored.updated_at));
        obj.insert(
            "definedIn".into(),
            match file {
                Some(path) => json!({"file": path.display().to_string()}),
                None => json!("api"),
            },
        );
    }
    out
}

async fn find_scorecard(
    state: &AppState,
    id: &str,
) -> Result<(StoredScorecard, ScorecardDefinition), ApiError> {
    let stored = state
        .store
        .scorecard(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no scorecard {id:?}")))?;
    let definition = ScorecardDefinition::from_value(stored.definition.clone()).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!(
            "stored scorecard {id} does not validate: {e}"
        ))
    })?;
    Ok((stored, definition))
}

/// `GET /api/v1/checks`: every check the loaded plugins offer.
async fn list_checks(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut items = Vec::new();
    for entry in state.registry.list() {
        if !evaluate::is_check(&entry) {
            continue;
        }
        let Some(plugin) = &entry.plugin else {
            continue;
        };
        for offer in crate::checks::offers(plugin) {
            let mut item = serde_json::to_value(&offer).unwrap_or_default();
            item["ref"] = json!(format!("{}/{}", entry.id, offer.id));
            item["plugin"] = json!(entry.id);
            items.push(item);
        }
    }
    Ok(Json(json!({"total": items.len(), "items": items})))
}

/// `GET /api/v1/scorecards`: every scorecard with its level distribution.
async fn list_scorecards(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut items = Vec::new();
    for stored in state.store.list_scorecards().await? {
        let summary = state.store.scorecard_summary(&stored.id).await?;
        let file = state.file_scorecards.file_of(&stored.id);
        let mut item = scorecard_json(&stored, file.as_deref());
        item["summary"] = json!({"entities": summary.entities, "levels": summary.levels});
        items.push(item);
    }
    Ok(Json(json!({
        "total": items.len(),
        "items": items,
        "fileErrors": state.file_scorecards.errors(),
    })))
}

/// `GET /api/v1/scorecards/{id}`.
async fn get_scorecard(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (stored, _) = find_scorecard(&state, &id).await?;
    let file = state.file_scorecards.file_of(&id);
    let mut out = scorecard_json(&stored, file.as_deref());
    out["lastEvaluation"] = latest_full_evaluation(&state, &id)
        .await?
        .map(|j| evaluation_json(&j))
        .unwrap_or(Value::Null);
    Ok(Json(out))
}

/// `PUT /api/v1/scorecards/{id}` (admin): creates or replaces a
/// scorecard; 201 when created, 200 when replaced. A new definition is
/// evaluated in full right away.
async fn put_scorecard(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    if let Some(path) = state.file_scorecards.file_of(&id) {
        return Err(ApiError::Conflict(format!(
            "scorecard {id:?} is defined by the file {}; change the file instead",
            path.display()
        )));
    }
    let Some(obj) = body.as_object_mut() else {
        return Err(ApiError::invalid("/", "a scorecard is a JSON object"));
    };
    match obj.get("id") {
        None => {
            obj.insert("id".into(), json!(id));
        }
        Some(Value::String(s)) if *s == id => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "/id",
                format!("the body's id {other} differs from the path's {id:?}"),
            ))
        }
    }
    let definition = validate_definition(&state, body).map_err(invalid)?;
    let value = serde_json::to_value(&definition).map_err(|e| ApiError::Internal(e.into()))?;
    let (stored, created) = state.store.put_scorecard(&id, &value).await?;
    evaluate::enqueue(
        &state,
        &id,
        &stored.definition,
        Scope::All,
        if created { "created" } else { "changed" },
        None,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [(header::LOCATION, format!("/api/v1/scorecards/{id}"))],
        Json(scorecard_json(&stored, None)),
    )
        .into_response())
}

/// `DELETE /api/v1/scorecards/{id}` (admin): with its results, history
/// and exemptions.
async fn delete_scorecard(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    if let Some(path) = state.file_scorecards.file_of(&id) {
        return Err(ApiError::Conflict(format!(
            "scorecard {id:?} is defined by the file {}; remove the file instead",
            path.display()
        )));
    }
    if state.store.delete_scorecard(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no scorecard {id:?}")))
    }
}

/// Reads the scorecard files in the configured folder and applies the
/// valid ones; records why the others were refused. Runs on the
/// scheduler's tick once the plugins are loaded (checks are validated
/// against them). A file may hold several YAML documents or a JSON array.
pub async fn load_files(state: &AppState) {
    let Some(dir) = state.config.scorecards.dir.clone() else {
        return;
    };
    if state.registry.scans_completed() == 0 || !dir.is_dir() {
        return;
    }
    let files = match scorecard_files(&dir) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read the scorecards folder");
            return;
        }
    };
    let before: HashMap<String, PathBuf> = state
        .file_scorecards
        .inner
        .lock()
        .map(|i| i.defined.clone())
        .unwrap_or_default();
    let mut defined = HashMap::new();
    let mut errors = HashMap::new();
    for path in files {
        match apply_file(state, &path, &defined).await {
            Ok(ids) => {
                for id in ids {
                    defined.insert(id, path.clone());
                }
            }
            Err(e) => {
                // A broken file keeps what it defined before, untouched.
                for (id, p) in &before {
                    if *p == path {
                        defined.insert(id.clone(), path.clone());
                    }
                }
                // Shown at once, not after the scan: a list read meanwhile
                // sees the scorecards applied so far with the errors found
                // so far (files go in name order).
                if let Ok(mut inner) = state.file_scorecards.inner.lock() {
                    if inner.errors.get(&path) != Some(&e) {
                        tracing::warn!(file = %path.display(), error = %e, "scorecard file refused");
                        inner.errors.insert(path.clone(), e.clone());
                    }
                }
                errors.insert(path, e);
            }
        }
    }
    // A scorecard whose file is gone (or no longer defines it) goes too,
    // as a plugin does when its file is removed.
    for (id, path) in &before {
        if !defined.contains_key(id) {
            match state.store.delete_scorecard(id).await {
                Ok(_) => {
                    tracing::info!(scorecard = %id, file = %path.display(), "scorecard removed with its file")
                }
                Err(e) => {
                    tracing::warn!(scorecard = %id, error = format!("{e:#}"), "cannot remove a scorecard whose file is gone")
                }
            }
        }
    }
    if let Ok(mut inner) = state.file_scorecards.inner.lock() {
        inner.defined = defined;
        inner.errors = errors;
    }
}

fn scorecard_files(dir: &FsPath) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_file() && matches!(ext, "yaml" | "yml" | "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

async fn apply_file(
    state: &AppState,
    path: &FsPath,
    already: &HashMap<String, PathBuf>,
) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut docs = Vec::new();
    for (n, doc) in serde_norway::Deserializer::from_str(&text).enumerate() {
        let value = <Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| format!("document {}: not YAML or JSON: {e}", n + 1))?;
        match value {
            Value::Null => {}
            Value::Array(items) => docs.extend(items),
            other => docs.push(other),
        }
    }
    let mut definitions = Vec::new();
    for (n, doc) in docs.into_iter().enumerate() {
        let definition = validate_definition(state, doc).map_err(|errors| {
            format!(
                "scorecard {}: {}",
                n + 1,
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        if let Some(other) = already.get(&definition.id) {
            return Err(format!(
                "scorecard {:?} is already defined by {}",
                definition.id,
                other.display()
            ));
        }
        definitions.push(definition);
    }
    let mut ids = Vec::new();
    for definition in definitions {
        let value = serde_json::to_value(&definition).map_err(|e| e.to_string())?;
        let current = state
            .store
            .scorecard(&definition.id)
            .await
            .map_err(|e| format!("{e:#}"))?;
        if current.as_ref().map(|c| &c.definition) != Some(&value) {
            state
                .store
                .put_scorecard(&definition.id, &value)
                .await
                .map_err(|e| format!("{e:#}"))?;
            tracing::info!(scorecard = %definition.id, file = %path.display(), "scorecard applied from file");
        }
        ids.push(definition.id);
    }
    Ok(ids)
}

// -------------------------------------------------------------- evaluating

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateBody {
    /// Evaluate only this entity (`kind:namespace/name`).
    entity: Option<String>,
}

/// `POST /api/v1/scorecards/{id}/evaluate` (member): queues an evaluation
/// of every covered entity, or of one (`{"entity": "kind:ns/name"}`).
/// 202 with the evaluation; a full evaluation already waiting is answered
/// instead of queueing another.
async fn start_evaluation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = caller.require(Role::Member)?;
    let (stored, definition) = find_scorecard(&state, &id).await?;
    // The body is optional: none evaluates the whole scorecard.
    let body: EvaluateBody = if body.iter().all(u8::is_ascii_whitespace) {
        EvaluateBody::default()
    } else {
        crate::error::parse_json(&body)?
    };
    let scope = match &body.entity {
        None => Scope::All,
        Some(text) => {
            let entity_ref = EntityRef::parse(
                text,
                RefDefaults {
                    kind: None,
                    namespace: "default",
                },
            )
            .map_err(|e| ApiError::invalid("/entity", e.to_string()))?;
            let Some(found) = state.store.entity(&entity_ref).await? else {
                return Err(ApiError::invalid(
                    "/entity",
                    format!("no entity {entity_ref} in the catalog"),
                ));
            };
            if !covers(&definition.filter, &found.entity) {
                return Err(ApiError::invalid(
                    "/entity",
                    format!("scorecard {id:?} does not cover {entity_ref}"),
                ));
            }
            Scope::Entities(vec![entity_ref.key()])
        }
    };
    let actor = format!("token:{}", token.id);
    let (job, _) = evaluate::enqueue(
        &state,
        &id,
        &stored.definition,
        scope,
        "manual",
        Some(actor),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        [(
            header::LOCATION,
            format!("/api/v1/scorecards/{id}/evaluations/{}", job.id),
        )],
        Json(evaluation_json(&job)),
    )
        .into_response())
}

/// An evaluation as the API shows it.
pub fn evaluation_json(job: &Job) -> Value {
    let result = job.result.as_ref();
    let field = |k: &str| result.and_then(|r| r.get(k)).cloned();
    let scope = job.payload.get("scope").cloned().unwrap_or(json!("all"));
    let entities = job
        .payload
        .get("entities")
        .and_then(Value::as_array)
        .map(|a| a.len());
    json!({
        "id": job.id,
        "scorecard": job.subject.strip_suffix(":entities").unwrap_or(&job.subject),
        "scope": scope,
        "entityCount": entities,
        "trigger": job.triggered_by,
        "actor": job.actor,
        "status": job.status,
        "queuedAt": job.queued_at,
        "startedAt": job.started_at,
        "finishedAt": job.finished_at,
        "durationMs": field("durationMs"),
        "progress": job.progress,
        "counts": field("counts"),
        "problems": field("problems").unwrap_or_else(|| json!([])),
        "error": job.error,
    })
}

async fn latest_full_evaluation(state: &AppState, id: &str) -> Result<Option<Job>, ApiError> {
    Ok(state
        .store
        .list_jobs(QUEUE, Some(id), 1, None)
        .await?
        .into_iter()
        .next())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /api/v1/scorecards/{id}/evaluations`: full evaluations and entity
/// evaluations, newest first.
async fn list_evaluations(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    find_scorecard(&state, &id).await?;
    let limit = q.limit.unwrap_or(20);
    let max = portolan_store::jobs::MAX_JOB_PAGE;
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid(
            "query.limit",
            format!("must be between 1 and {max}"),
        ));
    }
    let before = match &q.cursor {
        None => None,
        Some(c) => Some(crate::sources::decode_cursor(c)?),
    };
    // Two subjects, merged newest first (ids sort by age).
    let mut jobs = state
        .store
        .list_jobs(QUEUE, Some(&id), limit + 1, before.as_deref())
        .await?;
    jobs.extend(
        state
            .store
            .list_jobs(
                QUEUE,
                Some(&evaluate::entities_subject(&id)),
                limit + 1,
                before.as_deref(),
            )
            .await?,
    );
    jobs.sort_by(|a, b| b.id.cmp(&a.id));
    let more = jobs.len() > limit as usize;
    jobs.truncate(limit as usize);
    let next = more.then(|| jobs.last().map(|j| j.id.clone())).flatten();
    let items: Vec<Value> = jobs.iter().map(evaluation_json).collect();
    Ok(Json(json!({"items": items, "nextCursor": next})))
}

/// `GET /api/v1/scorecards/{id}/evaluations/{eval_id}`.
async fn get_evaluation(
    State(state): State<AppState>,
    _caller: Caller,
    Path((id, eval_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    match state.store.job(&eval_id).await? {
        Some(job)
            if job.queue == QUEUE
                && (job.subject == id || job.subject == evaluate::entities_subject(&id)) =>
        {
            Ok(Json(evaluation_json(&job)))
        }
        _ => Err(ApiError::NotFound(format!(
            "no evaluation {eval_id:?} of scorecard {id:?}"
        ))),
    }
}

// ----------------------------------------------------------------- results

/// `GET /api/v1/scorecards/{id}/results`: how many entities are at each
/// level, and each rule's counts and pass rate.
async fn results(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (_, definition) = find_scorecard(&state, &id).await?;
    let summary = state.store.scorecard_summary(&id).await?;
    let total = summary.entities;
    let levels: Vec<Value> = definition
        .levels
        .iter()
        .map(|level| {
            let n = summary.levels.get(level).copied().unwrap_or(0);
            json!({
                "level": level,
                "entities": n,
                "share": if total > 0 { n as f64 / total as f64 } else { 0.0 },
            })
        })
        .collect();
    let rules: Vec<Value> = definition
        .rules
        .iter()
        .map(|rule| {
            let counts = summary.rules.get(&rule.id).copied().unwrap_or_default();
            json!({
                "id": rule.id,
                "title": rule.title,
                "level": rule.level,
                "check": rule.check,
                "counts": counts,
                "passRate": counts.pass_rate(),
            })
        })
        .collect();
    Ok(Json(json!({
        "scorecard": {"id": definition.id, "title": definition.title, "levels": definition.levels},
        "entities": total,
        "levels": levels,
        "rules": rules,
        "lastEvaluation": latest_full_evaluation(&state, &id).await?.map(|j| evaluation_json(&j)),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitiesQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    /// Only entities at this level.
    level: Option<String>,
    /// With `status`: only entities whose result for this rule has it.
    rule: Option<String>,
    status: Option<String>,
}

/// `GET /api/v1/scorecards/{id}/entities`: the evaluated entities with
/// their level and results, by reference, in pages.
async fn result_entities(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EntitiesQuery>,
) -> Result<Json<Value>, ApiError> {
    let (_, definition) = find_scorecard(&state, &id).await?;
    let max = portolan_store::scorecards::MAX_SCORECARD_PAGE;
    let limit = q.limit.unwrap_or(100);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid(
            "query.limit",
            format!("must be between 1 and {max}"),
        ));
    }
    let mut filter = portolan_store::StandingFilter::default();
    if let Some(level) = &q.level {
        if !definition.levels.contains(level) {
            return Err(ApiError::invalid(
                "query.level",
                format!(
                    "scorecard {id:?} has no level {level:?}; its levels are {}",
                    definition.levels.join(", ")
                ),
            ));
        }
        filter.level = Some(level.clone());
    }
    match (&q.rule, &q.status) {
        (None, None) => {}
        (Some(rule), status) => {
            if !definition.rules.iter().any(|r| r.id == *rule) {
                return Err(ApiError::invalid(
                    "query.rule",
                    format!("scorecard {id:?} has no rule {rule:?}"),
                ));
            }
            let status = status.as_deref().unwrap_or("fail");
            let status: portolan_store::ResultStatus = status.parse().map_err(|_| {
                ApiError::invalid(
                    "query.status",
                    format!(
                        "unknown status {status:?}; expected pass, fail, error, exempt or skip"
                    ),
                )
            })?;
            filter.rule = Some((rule.clone(), status));
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "query.status",
                "name the rule too, e.g. rule=has-owner&status=fail",
            ))
        }
    }
    let page = state
        .store
        .scorecard_entities_where(&id, &filter, q.cursor.as_deref(), limit + 1)
        .await?;
    let more = page.len() > limit as usize;
    let items: Vec<Value> = page
        .iter()
        .take(limit as usize)
        .map(|e| standing_json(&definition, e, &[]))
        .collect();
    let next = more
        .then(|| page.get(limit as usize - 1).map(|e| e.entity_ref.clone()))
        .flatten();
    Ok(Json(json!({"items": items, "nextCursor": next})))
}

/// One entity's standing on one scorecard: level, every rule's result,
/// the failing ones, and what stands between it and the next level.
fn standing_json(
    definition: &ScorecardDefinition,
    stored: &EntityScorecard,
    exemptions: &[portolan_store::ScorecardExemption],
) -> Value {
    let by_rule: HashMap<&str, &portolan_store::RuleResult> = stored
        .results
        .iter()
        .map(|r| (r.rule_id.as_str(), r))
        .collect();
    let position = standing(definition, |rule| {
        by_rule.get(rule).map(|r| Outcome::from(r.status))
    });
    let rule_json = |rule: &portolan_scorecards::Rule| {
        let result = by_rule.get(rule.id.as_str());
        let exemption = exemptions
            .iter()
            .find(|x| x.rule_id == rule.id && x.expires_at > Utc::now());
        json!({
            "id": rule.id,
            "title": rule.title,
            "level": rule.level,
            "check": rule.check,
            "status": result.map(|r| r.status.as_str()).unwrap_or("pending"),
            "message": result.and_then(|r| r.message.clone()),
            "value": result.and_then(|r| r.value.clone()),
            "evaluatedAt": result.map(|r| r.evaluated_at),
            "exemption": exemption.map(|x| json!({
                "reason": x.reason, "expiresAt": x.expires_at, "grantedBy": x.created_by,
            })),
        })
    };
    let rules: Vec<Value> = definition.rules.iter().map(rule_json).collect();
    let failing: Vec<Value> = definition
        .rules
        .iter()
        .filter(|r| {
            !by_rule
                .get(r.id.as_str())
                .is_some_and(|x| Outcome::from(x.status).passes())
        })
        .map(rule_json)
        .collect();
    json!({
        "entityRef": stored.entity_ref,
        "level": stored.level,
        "levelIndex": definition.levels.iter().position(|l| Some(l) == stored.level.as_ref()),
        "levelSince": stored.level_since,
        "evaluatedAt": stored.results.iter().map(|r| r.evaluated_at).max(),
        "rules": rules,
        "failing": failing,
        "nextLevel": position.next.map(|n| json!({
            "level": n.level,
            "rules": n.failing.iter().map(|r| rule_json(r)).collect::<Vec<_>>(),
        })),
    })
}

fn entity_ref_of(kind: &str, namespace: &str, name: &str) -> EntityRef {
    EntityRef::new(kind, namespace, name)
}

/// `GET /api/v1/entities/{kind}/{namespace}/{name}/scorecards`: the
/// entity's standing on every scorecard that covers it.
async fn entity_scorecards(
    State(state): State<AppState>,
    _caller: Caller,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let entity_ref = entity_ref_of(&kind, &namespace, &name);
    let Some(found) = state.store.entity(&entity_ref).await? else {
        return Err(ApiError::NotFound(format!("no entity {entity_ref}")));
    };
    let key = entity_ref.key();
    let stored: HashMap<String, EntityScorecard> = state
        .store
        .entity_scorecards(&key)
        .await?
        .into_iter()
        .map(|s| (s.scorecard_id.clone(), s))
        .collect();
    let mut items = Vec::new();
    for card in state.store.list_scorecards().await? {
        let Ok(definition) = ScorecardDefinition::from_value(card.definition.clone()) else {
            continue;
        };
        if !covers(&definition.filter, &found.entity) {
            continue;
        }
        let exemptions = state
            .store
            .scorecard_exemptions(&card.id, Some(&key))
            .await?;
        let mut item = match stored.get(&card.id) {
            Some(s) => standing_json(&definition, s, &exemptions),
            None => {
                let pending = EntityScorecard {
                    scorecard_id: card.id.clone(),
                    entity_ref: key.clone(),
                    level: None,
                    level_since: None,
                    results: Vec::new(),
                };
                let mut v = standing_json(&definition, &pending, &exemptions);
                v["nextLevel"] = Value::Null;
                v
            }
        };
        item["scorecard"] = json!({
            "id": definition.id,
            "title": definition.title,
            "levels": definition.levels,
        });
        item["badge"] = json!(format!(
            "/api/v1/entities/{}/{}/{}/scorecards/{}/badge.svg",
            found.entity.kind, found.entity.metadata.namespace, found.entity.metadata.name, card.id
        ));
        items.push(item);
    }
    Ok(Json(json!({"entityRef": key, "items": items})))
}

/// `GET /api/v1/entities/{kind}/{namespace}/{name}/scorecards/{id}/history`:
/// the entity's level over time, oldest first.
async fn entity_history(
    State(state): State<AppState>,
    _caller: Caller,
    Path((kind, namespace, name, id)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    find_scorecard(&state, &id).await?;
    let key = entity_ref_of(&kind, &namespace, &name).key();
    let history = state.store.scorecard_level_history(&id, &key).await?;
    if history.is_empty()
        && state
            .store
            .entity(&entity_ref_of(&kind, &namespace, &name))
            .await?
            .is_none()
    {
        return Err(ApiError::NotFound(format!("no entity {key}")));
    }
    let items: Vec<Value> = history
        .iter()
        .map(|h| json!({"level": h.level, "from": h.at, "until": h.until}))
        .collect();
    Ok(Json(
        json!({"entityRef": key, "scorecard": id, "items": items}),
    ))
}

/// `GET .../scorecards/{id}/badge.svg`: the entity's level as an SVG
/// badge for READMEs. Readable without a token when the operator enabled
/// `[scorecards] public_badges` (or anonymous reads).
async fn badge(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path((kind, namespace, name, id)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    if !state.config.scorecards.public_badges {
        caller?;
    }
    let (_, definition) = find_scorecard(&state, &id).await?;
    let key = entity_ref_of(&kind, &namespace, &name).key();
    let current = state
        .store
        .entity_scorecards(&key)
        .await?
        .into_iter()
        .find(|s| s.scorecard_id == id);
    let (value, index) = match current.and_then(|c| c.level) {
        Some(level) => {
            let index = definition.levels.iter().position(|l| *l == level);
            (level, index)
        }
        None => ("not evaluated".to_owned(), None),
    };
    let svg = badge_svg(
        &definition.title,
        &value,
        level_colour(index, definition.levels.len()),
    );
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        svg,
    )
        .into_response())
}

/// The badge colour of level `index` of `count`: grey for the floor and
/// for "not evaluated", then bronze, silver and gold for the default
/// ladder; longer ladders run from orange to green.
fn level_colour(index: Option<usize>, count: usize) -> &'static str {
    const DEFAULT: [&str; 4] = ["#9f9f9f", "#a8713a", "#8a99a6", "#c9a227"];
    const RAMP: [&str; 6] = [
        "#9f9f9f", "#e05d44", "#fe7d37", "#dfb317", "#a4a61d", "#4c1",
    ];
    match index {
        None => "#9f9f9f",
        Some(i) if count <= DEFAULT.len() => DEFAULT[i.min(DEFAULT.len() - 1)],
        Some(i) => RAMP[(i * (RAMP.len() - 1)) / (count - 1).max(1)],
    }
}

/// Escapes text for SVG content and attributes.
fn xml_escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A flat two-part badge: `label | value`. Widths are estimated from the
/// character count (Verdana 11px averages about 7 px a character).
fn badge_svg(label: &str, value: &str, colour: &str) -> String {
    let width = |t: &str| 10 + 7 * t.chars().count() as u32;
    let (lw, vw) = (width(label), width(value));
    let total = lw + vw;
    let (label, value) = (xml_escape(label), xml_escape(value));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{label}: {value}"><title>{label}: {value}</title><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{vw}" height="20" fill="{colour}"/><g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="{lx}" y="14">{label}</text><text x="{vx}" y="14">{value}</text></g></svg>"##,
        lx = lw / 2,
        vx = lw + vw / 2,
    )
}

// -------------------------------------------------------------- exemptions

/// `GET /api/v1/scorecards/{id}/exemptions`: every exemption, expired
/// ones included (`active` says which are in force).
async fn list_exemptions(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    find_scorecard(&state, &id).await?;
    let now = Utc::now();
    let items: Vec<Value> = state
        .store
        .scorecard_exemptions(&id, None)
        .await?
        .into_iter()
        .map(|x| {
            let active = x.expires_at > now;
            let mut v = serde_json::to_value(&x).unwrap_or_default();
            v["active"] = json!(active);
            v
        })
        .collect();
    Ok(Json(json!({"total": items.len(), "items": items})))
}

/// `POST /api/v1/scorecards/{id}/exemptions` (admin): exempts one entity
/// from one rule until a time, with a reason. 201 with the exemption; the
/// entity is re-evaluated.
async fn add_exemption(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ExemptionRequest>,
) -> Result<Response, ApiError> {
    let token = caller.require(Role::Admin)?;
    let (_, definition) = find_scorecard(&state, &id).await?;
    let granted_by = format!("token:{}", token.id);
    let exemption = request
        .validate(&definition, &granted_by, Utc::now())
        .map_err(|e| {
            invalid(
                e.problems
                    .into_iter()
                    .map(|p| FieldError {
                        field: p.pointer,
                        message: p.message,
                    })
                    .collect(),
            )
        })?;
    let stored = state
        .store
        .put_scorecard_exemption(&exemption.to_store(&id))
        .await?;
    state
        .store
        .mark_entities_stale(std::slice::from_ref(&stored.entity_ref))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(&stored).unwrap_or_default()),
    )
        .into_response())
}

/// `DELETE /api/v1/scorecards/{id}/exemptions/{rule}/{kind}/{namespace}/{name}`
/// (admin).
async fn revoke_exemption(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, rule, kind, namespace, name)): Path<(String, String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let key = entity_ref_of(&kind, &namespace, &name).key();
    if state
        .store
        .delete_scorecard_exemption(&id, &key, &rule)
        .await?
    {
        state.store.mark_entities_stale(&[key]).await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no exemption of {key} from rule {rule:?} on scorecard {id:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_escape_their_text_and_grow_with_it() {
        let svg = badge_svg("Prod <readiness>", "Gold", "#c9a227");
        assert!(svg.contains("Prod &lt;readiness&gt;: Gold"));
        assert!(!svg.contains("<readiness>"));
        let short = badge_svg("A", "B", "#000");
        let long = badge_svg("A longer label", "B", "#000");
        let width = |s: &str| {
            s.split("width=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse::<u32>()
                .unwrap()
        };
        assert!(width(&long) > width(&short));
    }

    #[test]
    fn default_ladder_colours_run_grey_bronze_silver_gold() {
        assert_eq!(level_colour(None, 4), "#9f9f9f");
        assert_eq!(level_colour(Some(3), 4), "#c9a227");
        assert_eq!(level_colour(Some(5), 6), "#4c1");
        assert_eq!(level_colour(Some(0), 6), "#9f9f9f");
    }
}
