//! Day-2 actions: the API that lists actions and starts, follows, approves,
//! cancels and retries their runs, the audit trail, and the workers that
//! execute runs.
//!
//! A run is a row in the store's `action_runs` (see
//! [`portolan_store::actions`]); that row is also its place in the queue.
//! Each replica runs `[actions] workers` workers and one janitor:
//!
//! - a **worker** claims the run that has waited longest (one claimer per
//!   run, on any replica), looks up the action's plugin and the run's
//!   entity, and calls the plugin's `run` on a blocking thread. Meanwhile it
//!   writes the plugin's log lines to the run's log every
//!   [`LOG_FLUSH`], renews its lease every [`RENEW`], and stops the call when
//!   someone cancels the run (on this replica through a local flag at once,
//!   on another through the flag the lease renewal reads);
//! - the **janitor** fails the runs whose lease ran out (their replica died)
//!   with the reason, so none stays `running` forever.
//!
//! Secrets: input fields the action's schema marks secret (`format:
//! password`, `writeOnly: true`, `x-secret: true` or `ui:field: Secret`)
//! are stored apart and only until the run ends; everywhere else they read
//! `[secret]`. The values of the host's own secrets are masked in log
//! lines, outputs and errors even when a plugin writes them out.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use portolan_catalog::{Entity as CatalogEntity, EntityRef, RefDefaults};
use portolan_runtime::model::{ActionInfo, ActionInvocation, ActionRole};
use portolan_runtime::{CallControl, CallError, LogLine, LogSink, PluginEntry, Role as PluginRole};
use portolan_store::{
    AuditFilter, ClaimedRun, NewAuditEntry, NewLogLine, NewRun, RetryRun, Role, Run, RunEnd,
    RunFilter, RunStatus, TokenInfo,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery, FieldError};
use crate::evaluate::plugin_entity;
use crate::sync::Wake;

/// How long a worker's claim on a run lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(20);
/// How often a worker renews its lease (and learns of cancellations made on
/// other replicas).
pub const RENEW: Duration = Duration::from_secs(2);
/// How often a running run's new log lines are written.
pub const LOG_FLUSH: Duration = Duration::from_millis(100);
/// How often an idle worker looks for runs queued by another replica.
pub const IDLE_POLL: Duration = Duration::from_millis(250);
/// How long after its deadline a plugin call that does not come back (it
/// waits in the host, e.g. on a socket) is given up on.
const HARD_DEADLINE_GRACE: Duration = Duration::from_secs(10);
/// How often the janitor looks for runs of dead replicas.
const JANITOR_TICK: Duration = Duration::from_secs(1);

/// The placeholder for a secret value.
pub const SECRET: &str = "[secret]";

/// What the actions machinery of one replica shares.
#[derive(Debug, Default)]
pub struct Local {
    /// Wakes this replica's workers when a run is queued here.
    pub wake: Wake,
    /// Wakes live log streams when new lines were written here.
    pub logs: Wake,
    /// Cancel flags of the runs this replica is executing, by run id.
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// This process's name among the replicas.
    replica: std::sync::OnceLock<String>,
}

impl Local {
    fn flag(&self, run: &str) -> Option<Arc<AtomicBool>> {
        self.running.lock().ok()?.get(run).cloned()
    }

    /// Registers a run this replica executes; its flag stops it.
    pub(crate) fn track(&self, run: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        if let Ok(mut running) = self.running.lock() {
            running.insert(run.to_owned(), flag.clone());
        }
        flag
    }

    pub(crate) fn untrack(&self, run: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(run);
        }
    }

    /// This process's replica id, the same for all its workers.
    pub fn replica(&self) -> &str {
        self.replica.get_or_init(crate::sync::replica_id)
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/actions", get(list_actions))
        .route("/actions/{id}", get(get_action))
        .route("/actions/{id}/runs", post(start_run))
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/logs", get(run_logs))
        .route("/runs/{id}/logs/stream", get(stream_logs))
        .route("/runs/{id}/cancel", post(cancel_run))
        .route("/runs/{id}/retry", post(retry_run))
        .route("/runs/{id}/approve", post(approve_run))
        .route("/runs/{id}/deny", post(deny_run))
        .route("/audit", get(list_audit))
}

// ---------------------------------------------------------------------------
// Who is acting

/// The actor string of a token: `token:<id> (<description>)`.
pub fn actor_of(token: &TokenInfo) -> String {
    if token.description.is_empty() {
        format!("token:{}", token.id)
    } else {
        format!("token:{} ({})", token.id, token.description)
    }
}

/// Whether `token` belongs to the person recorded as `actor`: the same
/// token, or a token with the same non-empty description (a person's
/// second token).
pub(crate) fn same_person(token: &TokenInfo, actor: &str) -> bool {
    let Some(rest) = actor.strip_prefix("token:") else {
        return false;
    };
    let (id, name) = match rest.split_once(' ') {
        Some((id, name)) => (id, name.trim_start_matches('(').trim_end_matches(')')),
        None => (rest, ""),
    };
    id == token.id || (!name.is_empty() && name == token.description)
}

fn store_role(role: ActionRole) -> Role {
    match role {
        ActionRole::Viewer => Role::Viewer,
        ActionRole::Member => Role::Member,
        ActionRole::Admin => Role::Admin,
    }
}

fn role_name(role: ActionRole) -> &'static str {
    match role {
        ActionRole::Viewer => "viewer",
        ActionRole::Member => "member",
        ActionRole::Admin => "admin",
    }
}

// ---------------------------------------------------------------------------
// Actions

/// A loaded action plugin with what it says about itself.
struct Action {
    entry: Arc<PluginEntry>,
    info: ActionInfo,
}

fn actions(state: &AppState) -> Vec<Action> {
    crate::api::ready_plugins(state, PluginRole::Action)
        .into_iter()
        .filter_map(|entry| {
            let info = entry.plugin.as_ref()?.action_info()?.clone();
            Some(Action { entry, info })
        })
        .collect()
}

fn find_action(state: &AppState, id: &str) -> Result<Action, ApiError> {
    actions(state)
        .into_iter()
        .find(|a| a.entry.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no action {id:?} is loaded")))
}

fn action_json(a: &Action) -> Value {
    let describe = a.entry.describe.as_ref();
    json!({
        "id": a.entry.id,
        "title": describe.map(|d| d.title.as_str()).unwrap_or_default(),
        "description": describe.map(|d| d.description.as_str()).unwrap_or_default(),
        "version": a.entry.version,
        "contract": a.entry.contract,
        "entityKinds": a.info.entity_kinds,
        "entityTypes": a.info.entity_types,
        "entityTags": a.info.entity_tags,
        "inputSchema": a.info.input_schema,
        "requiredRole": role_name(a.info.required_role),
        "approval": a.info.approval.map(role_name),
    })
}

/// Whether the action is offered on `entity`: its kind, and its type and
/// tags where the action narrows them.
pub fn applies(info: &ActionInfo, entity: &CatalogEntity) -> bool {
    let kind = info
        .entity_kinds
        .iter()
        .any(|k| k.eq_ignore_ascii_case(&entity.kind));
    let of_type = info.entity_types.is_empty()
        || entity
            .spec
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| info.entity_types.iter().any(|w| w.eq_ignore_ascii_case(t)));
    let tagged = info.entity_tags.is_empty()
        || entity
            .metadata
            .tags
            .iter()
            .any(|t| info.entity_tags.iter().any(|w| w == t));
    kind && of_type && tagged
}

pub(crate) fn parse_ref(text: &str, field: &str) -> Result<EntityRef, ApiError> {
    EntityRef::parse(
        text,
        RefDefaults {
            kind: None,
            namespace: "default",
        },
    )
    .map_err(|e| ApiError::invalid(field, e.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionsQuery {
    entity: Option<String>,
}

/// `GET /api/v1/actions`: the loaded actions, or those that apply to
/// `?entity=`.
async fn list_actions(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<ActionsQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut all = actions(&state);
    if let Some(text) = &q.entity {
        let entity_ref = parse_ref(text, "query.entity")?;
        let Some(found) = state.store.entity(&entity_ref).await? else {
            return Err(ApiError::NotFound(format!(
                "no entity {entity_ref} in the catalog"
            )));
        };
        all.retain(|a| applies(&a.info, &found.entity));
    }
    Ok(Json(
        json!({"items": all.iter().map(action_json).collect::<Vec<_>>()}),
    ))
}

/// `GET /api/v1/actions/{id}`.
async fn get_action(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(action_json(&find_action(&state, &id)?)))
}

// ---------------------------------------------------------------------------
// Secret input fields

/// JSON pointers (into the input) of the properties the schema marks
/// secret, at any depth of nested `properties`.
pub fn secret_pointers(schema: &Value) -> Vec<String> {
    fn walk(schema: &Value, prefix: &str, out: &mut Vec<String>) {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (name, sub) in props {
            let pointer = format!("{prefix}/{}", name.replace('~', "~0").replace('/', "~1"));
            let secret = sub.get("format").and_then(Value::as_str) == Some("password")
                || sub.get("writeOnly") == Some(&Value::Bool(true))
                || sub.get("x-secret") == Some(&Value::Bool(true))
                || sub.get("ui:field").and_then(Value::as_str) == Some("Secret");
            if secret {
                out.push(pointer);
            } else {
                walk(sub, &pointer, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

/// Splits `input` into the input with its secret fields replaced by
/// [`SECRET`] and those fields' values by pointer (`None` if there are none).
pub(crate) fn split_secrets(input: &Value, pointers: &[String]) -> (Value, Option<Value>) {
    let mut redacted = input.clone();
    let mut secrets = Map::new();
    for p in pointers {
        if let Some(slot) = redacted.pointer_mut(p) {
            let value = std::mem::replace(slot, Value::String(SECRET.to_owned()));
            secrets.insert(p.clone(), value);
        }
    }
    let secrets = (!secrets.is_empty()).then_some(Value::Object(secrets));
    (redacted, secrets)
}

/// The real input: the stored input with its secret fields put back.
fn merge_secrets(input: &Value, secrets: Option<&Value>) -> Value {
    let mut full = input.clone();
    if let Some(Value::Object(map)) = secrets {
        for (p, v) in map {
            if let Some(slot) = full.pointer_mut(p) {
                *slot = v.clone();
            }
        }
    }
    full
}

/// The strings among the secret input values, to mask in what the plugin
/// writes.
pub(crate) fn secret_strings(secrets: Option<&Value>) -> Vec<String> {
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.len() >= 4 => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            Value::Object(map) => map.values().for_each(|i| collect(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(v) = secrets {
        collect(v, &mut out);
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// Masks the host's secrets and the run's secret input values in `text`.
pub(crate) fn mask(state: &AppState, extra: &[String], text: &str) -> String {
    let mut out = state.registry.runtime().redact(text);
    for s in extra {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), SECRET);
        }
    }
    out
}

pub(crate) fn mask_json(state: &AppState, extra: &[String], value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(mask(state, extra, s)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| mask_json(state, extra, v)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (mask(state, extra, k), mask_json(state, extra, v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Validates `input` against the action's schema: every problem is one
/// error at `/input...`.
fn check_input(info: &ActionInfo, input: &Value) -> Result<(), ApiError> {
    if !input.is_object() {
        return Err(ApiError::invalid("/input", "must be a JSON object"));
    }
    match crate::schema::validate(&info.input_schema, input) {
        Ok(()) => Ok(()),
        Err(crate::schema::SchemaError::BadSchema(e)) => Err(ApiError::Conflict(format!(
            "the action's input schema is not a usable JSON Schema (a fault of the plugin): {e}"
        ))),
        Err(crate::schema::SchemaError::Invalid(problems)) => {
            let errors: Vec<FieldError> = problems
                .into_iter()
                .map(|p| FieldError {
                    field: format!("/input{}", p.pointer),
                    message: p.message,
                })
                .collect();
            Err(ApiError::Invalid {
                detail: format!(
                    "the input does not match the action's schema ({} problem{})",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                ),
                errors,
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Runs

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    input: Option<Value>,
    entity: Option<String>,
}

pub(crate) fn run_response(status: StatusCode, run: &Run) -> Response {
    let location = format!("/api/v1/runs/{}", run.id);
    (
        status,
        [(header::LOCATION, location)],
        Json(serde_json::to_value(run).unwrap_or(Value::Null)),
    )
        .into_response()
}

pub(crate) fn optional_body<T: serde::de::DeserializeOwned + Default>(
    body: &axum::body::Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        crate::error::parse_json(body)
    }
}

/// `POST /api/v1/actions/{id}/runs`: validates, checks the role, and queues
/// the run (or holds it for approval). 202 with the run.
async fn start_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = caller.require(Role::Viewer)?;
    let action = find_action(&state, &id)?;
    let needed = store_role(action.info.required_role);
    if token.role < needed {
        return Err(ApiError::Forbidden(format!(
            "action {id:?} needs the {needed} role; the token has {}",
            token.role
        )));
    }
    let body: StartBody = optional_body(&body)?;
    let input = body.input.unwrap_or_else(|| json!({}));
    let mut errors = Vec::new();
    match check_input(&action.info, &input) {
        Ok(()) => {}
        Err(ApiError::Invalid { errors: e, .. }) => errors.extend(e),
        Err(other) => return Err(other),
    }
    let entity_ref = match (&body.entity, action.info.entity_kinds.is_empty()) {
        (None, true) => None,
        (Some(_), true) => {
            errors.push(FieldError {
                field: "/entity".into(),
                message: format!("action {id:?} stands alone; it is not started on an entity"),
            });
            None
        }
        (None, false) => {
            errors.push(FieldError {
                field: "/entity".into(),
                message: format!(
                    "action {id:?} runs on an entity of kind {}; name it as kind:namespace/name",
                    action.info.entity_kinds.join(" or ")
                ),
            });
            None
        }
        (Some(text), false) => match parse_ref(text, "/entity") {
            Err(ApiError::Invalid { errors: e, .. }) => {
                errors.extend(e);
                None
            }
            Err(e) => return Err(e),
            Ok(entity_ref) => match state.store.entity(&entity_ref).await? {
                None => {
                    errors.push(FieldError {
                        field: "/entity".into(),
                        message: format!("no entity {entity_ref} in the catalog"),
                    });
                    None
                }
                Some(found) if !applies(&action.info, &found.entity) => {
                    errors.push(FieldError {
                        field: "/entity".into(),
                        message: format!("action {id:?} does not apply to {entity_ref}"),
                    });
                    None
                }
                Some(_) => Some(entity_ref.key()),
            },
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid {
            detail: errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            errors,
        });
    }
    let pointers = secret_pointers(&action.info.input_schema);
    let (redacted, secrets) = split_secrets(&input, &pointers);
    let redacted = state.registry.runtime().redact_json(&redacted);
    let actor = actor_of(token);
    let new = NewRun {
        kind: "action".into(),
        action: id.clone(),
        action_version: action.entry.version.clone().unwrap_or_default(),
        entity_ref: entity_ref.clone(),
        input: redacted.clone(),
        secret_input: secrets,
        actor: actor.clone(),
        approval_role: action.info.approval.map(|r| role_name(r).to_owned()),
        running_on: None,
    };
    let audit = NewAuditEntry {
        actor,
        verb: "run.start".into(),
        subject: String::new(),
        detail: json!({"action": id, "entity": entity_ref, "input": redacted}),
    };
    let run = state.store.create_run(&new, &audit).await?;
    tracing::info!(run = %run.id, action = %id, status = %run.status, "action run created");
    state.actions.wake.notify();
    Ok(run_response(StatusCode::ACCEPTED, &run))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    kind: Option<String>,
    action: Option<String>,
    status: Option<String>,
    entity: Option<String>,
    actor: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=portolan_store::MAX_RUN_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "query.limit",
            format!("must be between 1 and {}", portolan_store::MAX_RUN_PAGE),
        )),
    }
}

/// `GET /api/v1/runs`: runs newest first, with filters.
async fn list_runs(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit)?;
    let status = q
        .status
        .as_deref()
        .map(|s| s.parse::<RunStatus>())
        .transpose()
        .map_err(|e| ApiError::invalid("query.status", e))?;
    let entity_ref = q
        .entity
        .as_deref()
        .map(|t| parse_ref(t, "query.entity").map(|r| r.key()))
        .transpose()?;
    let before = q
        .cursor
        .as_deref()
        .map(crate::sources::decode_cursor)
        .transpose()?;
    let runs = state
        .store
        .list_runs(&RunFilter {
            kind: match q.kind.as_deref() {
                None => None,
                Some(k @ ("action" | "template")) => Some(k.to_owned()),
                Some(_) => {
                    return Err(ApiError::invalid(
                        "query.kind",
                        "one of \"action\", \"template\"",
                    ))
                }
            },
            action: q.action,
            status,
            entity_ref,
            actor: q.actor,
            before,
            limit,
        })
        .await?;
    let next = (runs.len() == limit as usize)
        .then(|| runs.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(json!({"items": runs, "next": next})))
}

async fn find_run(state: &AppState, id: &str) -> Result<Run, ApiError> {
    state
        .store
        .run(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no run {id:?}")))
}

/// `GET /api/v1/runs/{id}`.
async fn get_run(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(find_run(&state, &id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/runs/{id}/logs`: the stored log, oldest first.
async fn run_logs(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Json<Value>, ApiError> {
    find_run(&state, &id).await?;
    let limit = match q.limit {
        None => 1_000,
        Some(n) if (1..=5_000).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::invalid(
                "query.limit",
                "must be between 1 and 5000",
            ))
        }
    };
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::invalid("query.after", "must not be negative"));
    }
    let lines = state.store.run_logs(&id, after, limit).await?;
    let next = (lines.len() == limit as usize)
        .then(|| lines.last().map(|l| l.seq))
        .flatten();
    Ok(Json(json!({"items": lines, "next": next})))
}

/// `GET /api/v1/runs/{id}/logs/stream`: the log as Server-Sent Events
/// (`log` events with the line, id = its sequence number), then one
/// `status` event with the ended run. Resumes after `Last-Event-ID`.
async fn stream_logs(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    find_run(&state, &id).await?;
    let after = match headers.get("last-event-id") {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::invalid(
                    "header.last-event-id",
                    "must be a log line's sequence number",
                )
            })?,
    };
    let (tx, rx) = mpsc::channel::<Event>(256);
    tokio::spawn(follow(state, id, after, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Feeds a log stream: lines as they are written, then the final status.
async fn follow(state: AppState, id: String, mut after: i64, tx: mpsc::Sender<Event>) {
    loop {
        // The status first: a worker writes its last lines before it ends
        // the run, so lines read after an ended status are all there is.
        let run = match state.store.run(&id).await {
            Ok(Some(run)) => run,
            _ => return,
        };
        loop {
            let lines = match state.store.run_logs(&id, after, 500).await {
                Ok(lines) => lines,
                Err(_) => return,
            };
            let more = lines.len() == 500;
            for line in lines {
                after = line.seq;
                let data = serde_json::to_string(&line).unwrap_or_default();
                let event = Event::default()
                    .event("log")
                    .id(line.seq.to_string())
                    .data(data);
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            if !more {
                break;
            }
        }
        if run.status.is_final() {
            let data = serde_json::to_string(&run).unwrap_or_default();
            let _ = tx.send(Event::default().event("status").data(data)).await;
            return;
        }
        tokio::select! {
            _ = state.actions.logs.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tx.closed() => return,
        }
    }
}

/// `POST /api/v1/runs/{id}/cancel`: by the run's actor or an admin.
async fn cancel_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let token = caller.require(Role::Member)?;
    let run = find_run(&state, &id).await?;
    if token.role < Role::Admin && !same_person(token, &run.actor) {
        return Err(ApiError::Forbidden(format!(
            "only {} or an admin may cancel this run",
            run.actor
        )));
    }
    if run.status.is_final() {
        return Err(ApiError::Conflict(format!(
            "run {id} has already ended ({})",
            run.status
        )));
    }
    let by = actor_of(token);
    let audit = NewAuditEntry {
        actor: by.clone(),
        verb: "run.cancel".into(),
        subject: format!("run:{id}"),
        detail: json!({"action": run.action, "entity": run.entity_ref, "status": run.status}),
    };
    let Some(run) = state.store.cancel_run(&id, &by, &audit).await? else {
        return Err(ApiError::Conflict(format!("run {id} has already ended")));
    };
    // Running here: stop it now rather than at the next lease renewal.
    if let Some(flag) = state.actions.flag(&id) {
        flag.store(true, Ordering::Relaxed);
    }
    state.actions.logs.notify();
    Ok(Json(run))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    input: Option<Value>,
}

/// `POST /api/v1/runs/{id}/retry`: a failed or cancelled run, again, as its
/// next attempt.
async fn retry_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = caller.require(Role::Viewer)?;
    let run = find_run(&state, &id).await?;
    if run.kind != "action" {
        return Err(ApiError::Conflict(format!(
            "run {id} is a {} run; start the template again instead",
            run.kind
        )));
    }
    let action = find_action(&state, &run.action)?;
    let needed = store_role(action.info.required_role);
    if token.role < needed {
        return Err(ApiError::Forbidden(format!(
            "action {:?} needs the {needed} role; the token has {}",
            run.action, token.role
        )));
    }
    if !matches!(run.status, RunStatus::Failed | RunStatus::Cancelled) {
        return Err(ApiError::Conflict(format!(
            "only a failed or cancelled run can be retried; run {id} is {}",
            run.status
        )));
    }
    let body: RetryBody = optional_body(&body)?;
    // Secret values were erased when the run ended: the retry brings them.
    let pointers = secret_pointers(&action.info.input_schema);
    let mut input = run.input.clone();
    let mut errors = Vec::new();
    for p in &pointers {
        if input.pointer(p).and_then(Value::as_str) != Some(SECRET) {
            continue;
        }
        match body.input.as_ref().and_then(|i| i.pointer(p)) {
            Some(v) => {
                if let Some(slot) = input.pointer_mut(p) {
                    *slot = v.clone();
                }
            }
            None => errors.push(FieldError {
                field: format!("/input{p}"),
                message: "a secret field: its value is not kept once a run ends, so send it again"
                    .into(),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid {
            detail: "the retry needs the secret input fields again".into(),
            errors,
        });
    }
    check_input(&action.info, &input)?;
    let (redacted, secrets) = split_secrets(&input, &pointers);
    let approved = run
        .approval
        .as_ref()
        .is_some_and(|a| a.decision.as_deref() == Some("approved"));
    let retry = RetryRun {
        input: state.registry.runtime().redact_json(&redacted),
        secret_input: secrets,
        needs_approval: action.info.approval.is_some() && !approved,
    };
    let audit = NewAuditEntry {
        actor: actor_of(token),
        verb: "run.retry".into(),
        subject: format!("run:{id}"),
        detail: json!({"action": run.action, "entity": run.entity_ref, "input": retry.input, "attempt": run.attempt + 1}),
    };
    let Some(run) = state.store.retry_run(&id, &retry, &audit).await? else {
        return Err(ApiError::Conflict(format!(
            "run {id} changed meanwhile; it can no longer be retried"
        )));
    };
    state.actions.wake.notify();
    Ok(run_response(StatusCode::ACCEPTED, &run))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    comment: Option<String>,
}

async fn decide(
    state: AppState,
    caller: Caller,
    id: String,
    body: axum::body::Bytes,
    approved: bool,
) -> Result<Json<Run>, ApiError> {
    let token = caller.require(Role::Viewer)?;
    let body: DecisionBody = optional_body(&body)?;
    let comment = body
        .comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if !approved && comment.is_none() {
        return Err(ApiError::invalid("/comment", "say why the run is denied"));
    }
    let run = find_run(&state, &id).await?;
    let Some(approval) = &run.approval else {
        return Err(ApiError::Conflict(format!(
            "run {id} does not need approval"
        )));
    };
    let needed: Role = approval
        .required
        .parse()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("run {id}: bad approval role")))?;
    if token.role < needed {
        return Err(ApiError::Forbidden(format!(
            "approving run {id} needs the {needed} role; the token has {}",
            token.role
        )));
    }
    if same_person(token, &run.actor) {
        return Err(ApiError::Forbidden(format!(
            "{} started run {id}; someone else must approve or deny it",
            run.actor
        )));
    }
    if run.status != RunStatus::AwaitingApproval {
        return Err(ApiError::Conflict(format!(
            "run {id} is {}, not awaiting approval",
            run.status
        )));
    }
    let by = actor_of(token);
    let audit = NewAuditEntry {
        actor: by.clone(),
        verb: if approved { "run.approve" } else { "run.deny" }.into(),
        subject: format!("run:{id}"),
        detail: json!({"action": run.action, "entity": run.entity_ref, "comment": comment}),
    };
    let Some(run) = state
        .store
        .decide_run(&id, approved, &by, comment.as_deref(), &audit)
        .await?
    else {
        return Err(ApiError::Conflict(format!(
            "run {id} is no longer awaiting approval"
        )));
    };
    if approved {
        state.actions.wake.notify();
    }
    state.actions.logs.notify();
    Ok(Json(run))
}

/// `POST /api/v1/runs/{id}/approve`.
async fn approve_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Run>, ApiError> {
    decide(state, caller, id, body, true).await
}

/// `POST /api/v1/runs/{id}/deny`.
async fn deny_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Run>, ApiError> {
    decide(state, caller, id, body, false).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    subject: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /api/v1/audit`: admins only.
async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let limit = page_limit(q.limit)?;
    let before = q
        .cursor
        .as_deref()
        .map(crate::sources::decode_cursor)
        .transpose()?;
    let entries = state
        .store
        .list_audit(&AuditFilter {
            actor: q.actor,
            verb: q.action,
            subject: q.subject,
            before,
            limit,
        })
        .await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok(Json(json!({"items": entries, "next": next})))
}

// ---------------------------------------------------------------------------
// Workers

/// Starts this replica's run workers and janitor; they stop when `stop`
/// turns true (a run in progress is left to its lease: another replica, or
/// this one after a restart, fails it as interrupted).
pub fn spawn(state: AppState, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let replica = state.actions.replica().to_owned();
    tokio::spawn(async move {
        let mut tasks = vec![tokio::spawn(janitor(state.clone(), stop.clone()))];
        for n in 0..state.config.actions.workers {
            let owner = format!("{replica}/a{n}");
            tasks.push(tokio::spawn(worker(state.clone(), owner, stop.clone())));
        }
        for t in tasks {
            let _ = t.await;
        }
    })
}

async fn janitor(state: AppState, mut stop: watch::Receiver<bool>) {
    let interrupted = json!({
        "code": "interrupted",
        "message": "the portal process running this run stopped before it finished \
                    (its lease expired); the action may or may not have completed: \
                    check the target system, then retry the run if needed",
    });
    loop {
        match state.store.expire_runs(&interrupted).await {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(runs = ?ids, "action runs of a stopped replica failed as interrupted");
                state.actions.logs.notify();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot expire action runs"),
        }
        tokio::select! {
            _ = tokio::time::sleep(JANITOR_TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn worker(state: AppState, owner: String, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let wake = state.actions.wake.notified();
        match state.store.claim_run(&owner, LEASE).await {
            Ok(Some(claimed)) => {
                execute(&state, &owner, claimed).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot claim an action run"),
        }
        tokio::select! {
            _ = wake => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// The log of one attempt as it is written: lines wait here until the next
/// flush.
pub(crate) struct RunLog {
    pub(crate) state: AppState,
    pub(crate) run_id: String,
    pub(crate) attempt: i64,
    pub(crate) pending: Vec<NewLogLine>,
}

impl RunLog {
    pub(crate) fn host(&mut self, level: &str, message: String) {
        self.pending.push(NewLogLine {
            level: level.to_owned(),
            message,
            at: Utc::now(),
        });
    }

    pub(crate) async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.pending);
        if let Err(e) = self
            .state
            .store
            .append_run_logs(&self.run_id, self.attempt, &lines)
            .await
        {
            tracing::warn!(run = %self.run_id, error = format!("{e:#}"), "cannot write run log lines");
        }
        self.state.actions.logs.notify();
    }
}

pub(crate) fn failure(code: &str, message: impl Into<String>) -> Value {
    json!({"code": code, "message": message.into()})
}

/// Executes one claimed run to its end.
async fn execute(state: &AppState, owner: &str, claimed: ClaimedRun) {
    let run = claimed.run;
    let started = Instant::now();
    let mut log = RunLog {
        state: state.clone(),
        run_id: run.id.clone(),
        attempt: run.attempt,
        pending: Vec::new(),
    };
    log.host(
        "info",
        format!(
            "attempt {} of {} started on {owner}",
            run.attempt, run.action
        ),
    );
    let extra = secret_strings(claimed.secret_input.as_ref());
    let end = match prepare(state, &run, claimed.secret_input.as_ref()).await {
        Err(end) => end,
        Ok((plugin, invocation, timeout)) => {
            call(
                state, owner, &run, plugin, invocation, timeout, &extra, &mut log,
            )
            .await
        }
    };
    let took = started.elapsed().as_millis();
    match end.status {
        RunStatus::Succeeded => log.host("info", format!("run succeeded in {took} ms")),
        status => {
            let why = end
                .error
                .as_ref()
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            log.host("error", format!("run {status} after {took} ms: {why}"));
        }
    }
    log.flush().await;
    match state.store.finish_run(&run.id, owner, &end).await {
        Ok(true) => {
            tracing::info!(run = %run.id, action = %run.action, status = %end.status, ms = took as u64, "action run ended")
        }
        Ok(false) => {
            tracing::warn!(run = %run.id, "action run ended after its lease was lost; its result was not recorded")
        }
        Err(e) => {
            tracing::warn!(run = %run.id, error = format!("{e:#}"), "cannot record the end of an action run")
        }
    }
    state.actions.logs.notify();
}

/// What a run needs before its plugin is called: the plugin, the input with
/// its secrets, the entity as the catalog has it now, the call's deadline.
async fn prepare(
    state: &AppState,
    run: &Run,
    secrets: Option<&Value>,
) -> Result<(Arc<portolan_runtime::Plugin>, ActionInvocation, Duration), RunEnd> {
    let fail = |code: &str, message: String| RunEnd {
        status: RunStatus::Failed,
        output: None,
        links: json!([]),
        error: Some(failure(code, message)),
    };
    let entry = crate::api::ready_plugin(state, &run.action, PluginRole::Action);
    let Some((entry, plugin)) = entry.and_then(|e| e.plugin.clone().map(|p| (e, p))) else {
        return Err(fail(
            "unavailable",
            format!("action plugin {:?} is not loaded", run.action),
        ));
    };
    let entity = match &run.entity_ref {
        None => None,
        Some(key) => {
            let entity_ref = parse_ref(key, "entity").map_err(|_| {
                fail(
                    "bad-entity",
                    format!("the run's entity {key:?} is not a reference"),
                )
            })?;
            match state.store.entity(&entity_ref).await {
                Ok(Some(found)) => Some(plugin_entity(&found.entity)),
                Ok(None) => {
                    return Err(fail(
                        "entity-gone",
                        format!("entity {key} is no longer in the catalog"),
                    ))
                }
                Err(e) => return Err(fail("store", format!("cannot read entity {key}: {e}"))),
            }
        }
    };
    let timeout = entry
        .grants
        .as_ref()
        .map(|g| Duration::from_millis(g.limits.timeout_ms))
        .unwrap_or(Duration::from_secs(30));
    let invocation = ActionInvocation {
        run_id: run.id.clone(),
        actor: run.actor.clone(),
        attempt: u32::try_from(run.attempt).unwrap_or(u32::MAX),
        input: merge_secrets(&run.input, secrets),
        entity,
    };
    Ok((plugin, invocation, timeout))
}

/// Calls the plugin on a blocking thread, streaming its log, renewing the
/// lease and watching for cancellation meanwhile.
#[allow(clippy::too_many_arguments)]
async fn call(
    state: &AppState,
    owner: &str,
    run: &Run,
    plugin: Arc<portolan_runtime::Plugin>,
    invocation: ActionInvocation,
    timeout: Duration,
    extra: &[String],
    log: &mut RunLog,
) -> RunEnd {
    let cancel = state.actions.track(&run.id);
    cancel.store(run.cancel_requested, Ordering::Relaxed);
    let report = watched_call(log, owner, &cancel, extra, timeout, move |control| {
        plugin.run_action_with(&invocation, &control)
    })
    .await;
    state.actions.untrack(&run.id);
    let report = match report {
        Ok(report) => report,
        Err(why) => {
            return RunEnd {
                status: RunStatus::Failed,
                output: None,
                links: json!([]),
                error: Some(failure("timeout", why)),
            }
        }
    };
    match report.result {
        Ok(outcome) => RunEnd {
            status: RunStatus::Succeeded,
            output: Some(mask_json(state, extra, &outcome.output)),
            links: mask_json(
                state,
                extra,
                &serde_json::to_value(&outcome.links).unwrap_or(json!([])),
            ),
            error: None,
        },
        Err(CallError::Cancelled) => {
            let by = state
                .store
                .run(&run.id)
                .await
                .ok()
                .flatten()
                .and_then(|r| r.cancelled_by)
                .unwrap_or_else(|| "the portal".to_owned());
            RunEnd {
                status: RunStatus::Cancelled,
                output: None,
                links: json!([]),
                error: Some(failure(
                    "cancelled",
                    format!("cancelled by {by} while running"),
                )),
            }
        }
        Err(e) => {
            let mut error = failure(e.code(), mask(state, extra, &e.to_string()));
            if let CallError::Plugin { code, field, .. } = &e {
                error["pluginCode"] = json!(code);
                if let Some(field) = field {
                    error["field"] = json!(field);
                }
            }
            RunEnd {
                status: RunStatus::Failed,
                output: None,
                links: json!([]),
                error: Some(error),
            }
        }
    }
}

/// Makes a plugin call on a blocking thread and watches it until it comes
/// back: its log lines join the run's log as they are written (masked, and
/// written every [`LOG_FLUSH`]), the run's lease is renewed every
/// [`RENEW`], and `cancel` is set (which stops the call) when someone
/// cancels the run on another replica or the lease is lost. A call that
/// does not come back within `deadline` plus a grace period (it waits in
/// the host, e.g. on a socket) is given up on: `Err` says so.
pub(crate) async fn watched_call<T: Send + 'static>(
    log: &mut RunLog,
    owner: &str,
    cancel: &Arc<AtomicBool>,
    extra: &[String],
    deadline: Duration,
    call: impl FnOnce(CallControl) -> T + Send + 'static,
) -> Result<T, String> {
    let state = log.state.clone();
    let run_id = log.run_id.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<LogLine>();
    let sink: LogSink = Arc::new(move |line: &LogLine| {
        let _ = tx.send(line.clone());
    });
    let control = CallControl {
        log_sink: Some(sink),
        cancel: Some(cancel.clone()),
    };
    let mut task = tokio::task::spawn_blocking(move || call(control));
    let hard_deadline = tokio::time::sleep(deadline + HARD_DEADLINE_GRACE);
    tokio::pin!(hard_deadline);
    // Both intervals fire at once on their first tick: skip it, so a short
    // call writes its log once, at its end.
    let mut flush = tokio::time::interval(LOG_FLUSH);
    flush.tick().await;
    let mut renew = tokio::time::interval(RENEW);
    renew.tick().await;
    let mut lost_lease = false;
    let out = loop {
        tokio::select! {
            joined = &mut task => {
                break joined.map_err(|e| format!("the plugin call panicked in the host: {e}"))
            }
            Some(line) = rx.recv() => push_line(&state, log, &line, extra),
            _ = flush.tick() => log.flush().await,
            _ = renew.tick() => match state.store.renew_run(&run_id, owner, LEASE).await {
                Ok(Some(true)) => cancel.store(true, Ordering::Relaxed),
                Ok(Some(false)) => {}
                Ok(None) => {
                    lost_lease = true;
                    cancel.store(true, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(run = %run_id, error = format!("{e:#}"), "cannot renew a run's lease"),
            },
            _ = &mut hard_deadline => {
                cancel.store(true, Ordering::Relaxed);
                break Err(format!(
                    "the plugin did not come back within its deadline of {} ms",
                    deadline.as_millis()
                ));
            }
        }
    };
    while let Ok(line) = rx.try_recv() {
        push_line(&state, log, &line, extra);
    }
    if lost_lease {
        log.host(
            "warn",
            "this worker lost its claim on the run (its lease expired); stopping".into(),
        );
    }
    out
}

fn push_line(state: &AppState, log: &mut RunLog, line: &LogLine, extra: &[String]) {
    log.pending.push(NewLogLine {
        level: level_name(line),
        message: mask(state, extra, &line.message),
        at: Utc::now(),
    });
}

pub(crate) fn level_name(line: &LogLine) -> String {
    serde_json::to_value(line.level)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "info".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_are_found_at_any_depth_and_split_out() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "password": {"type": "string", "format": "password"},
                "db": {"type": "object", "properties": {
                    "token": {"type": "string", "writeOnly": true},
                    "a/b": {"type": "string", "x-secret": true}
                }}
            }
        });
        let mut pointers = secret_pointers(&schema);
        pointers.sort();
        assert_eq!(pointers, ["/db/a~1b", "/db/token", "/password"]);
        let input = json!({"name": "x", "password": "hunter22", "db": {"token": "t0ken"}});
        let (redacted, secrets) = split_secrets(&input, &pointers);
        assert_eq!(
            redacted,
            json!({"name": "x", "password": "[secret]", "db": {"token": "[secret]"}})
        );
        assert_eq!(
            secrets,
            Some(json!({"/password": "hunter22", "/db/token": "t0ken"}))
        );
        assert_eq!(merge_secrets(&redacted, secrets.as_ref()), input);
        assert_eq!(secret_strings(secrets.as_ref()), ["hunter22", "t0ken"]);
    }

    #[test]
    fn a_person_is_their_token_or_their_name() {
        let token = TokenInfo {
            id: "ab12".into(),
            role: Role::Admin,
            description: "alice".into(),
            created_at: Utc::now(),
            last_used_at: None,
        };
        assert!(same_person(&token, "token:ab12 (alice)"));
        assert!(same_person(&token, "token:ff00 (alice)"));
        assert!(!same_person(&token, "token:ff00 (bob)"));
        assert!(!same_person(&token, "token:ff00"));
        assert_eq!(actor_of(&token), "token:ab12 (alice)");
    }
}
