//! The scaffolder: templates (scaffold-generator plugins) listed with their
//! parameter forms, dry runs, and runs that publish a new project to a
//! directory or a new git repository and register it in the catalog.
//!
//! A run is a row of the runs table (`kind = template`), so it is listed,
//! followed (`/api/v1/runs/{id}`, its log and live stream) and cancelled
//! like an action run. It executes on the replica that accepted it: the
//! parameters it needs, secret ones included, stay in that process's memory
//! and never reach the database. Its row holds that replica's lease, renewed
//! while it works; if the replica dies, the janitor ends the run failed as
//! interrupted, so a restart never leaves it hanging.
//!
//! What a template returns is checked before anything is written: every
//! path relative, without `..`, `.`, empty parts, backslashes or NULs, no
//! path twice, at most [`MAX_FILES`] files of at most [`MAX_FILE_BYTES`]
//! each and [`MAX_TOTAL_BYTES`] in all. The directory target writes through
//! `cap-std`, rooted at the workspace root, so nothing can land outside it;
//! a run that fails half way removes the folder it created.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portolan_catalog::Entity as CatalogEntity;
use portolan_runtime::model::GeneratorOutput;
use portolan_runtime::{PluginEntry, Role as PluginRole, ScaffoldTarget};
use portolan_store::{NewAuditEntry, NewRun, Origin, Role, Run, RunEnd, RunStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::actions::{
    actor_of, failure, level_name, mask, mask_json, optional_body, run_response, secret_pointers,
    secret_strings, split_secrets, watched_call, RunLog, LEASE,
};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, FieldError};

/// Most files one template may return.
pub const MAX_FILES: usize = 10_000;
/// Largest file a template may return.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Most bytes one template may return in all.
pub const MAX_TOTAL_BYTES: usize = 64 * 1024 * 1024;
/// Longest path a template may return.
const MAX_PATH: usize = 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/templates", get(list_templates))
        .route("/templates/{id}", get(get_template))
        .route("/templates/{id}/runs", post(start_run))
}

/// A loaded scaffold generator.
struct Template {
    entry: Arc<PluginEntry>,
}

impl Template {
    fn schema(&self) -> Value {
        self.entry
            .describe
            .as_ref()
            .and_then(|d| d.details.get("parametersSchema").cloned())
            .unwrap_or_else(|| json!({"type": "object"}))
    }

    /// The schema's pages: one object schema, or each of a list.
    fn pages(&self) -> Vec<Value> {
        match self.schema() {
            Value::Array(pages) => pages,
            one => vec![one],
        }
    }

    fn target(&self) -> Option<&ScaffoldTarget> {
        self.entry.grants.as_ref()?.scaffold.as_ref()
    }
}

fn templates(state: &AppState) -> Vec<Template> {
    crate::api::ready_plugins(state, PluginRole::ScaffoldGenerator)
        .into_iter()
        .map(|entry| Template { entry })
        .collect()
}

fn find_template(state: &AppState, id: &str) -> Result<Template, ApiError> {
    templates(state)
        .into_iter()
        .find(|t| t.entry.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no template {id:?} is loaded")))
}

fn template_json(t: &Template) -> Value {
    let describe = t.entry.describe.as_ref();
    let target = t.target().map(|target| {
        let mut v = match target {
            ScaffoldTarget::Directory { .. } => json!({"kind": "directory"}),
            ScaffoldTarget::Git { branch, .. } => json!({"kind": "git", "branch": branch}),
        };
        v["steps"] = target
            .steps()
            .iter()
            .map(|s| json!({"id": s.id, "action": s.action}))
            .collect();
        v
    });
    json!({
        "id": t.entry.id,
        "title": describe.map(|d| d.title.as_str()).unwrap_or_default(),
        "description": describe.map(|d| d.description.as_str()).unwrap_or_default(),
        "version": t.entry.version,
        "contract": t.entry.contract,
        "tags": describe.and_then(|d| d.details.get("tags")).cloned().unwrap_or(json!([])),
        "parametersSchema": t.schema(),
        "pages": t.pages().len(),
        "target": target,
    })
}

/// `GET /api/v1/templates`.
async fn list_templates(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let all = templates(&state);
    Ok(Json(
        json!({"items": all.iter().map(template_json).collect::<Vec<_>>()}),
    ))
}

/// `GET /api/v1/templates/{id}`.
async fn get_template(
    State(state): State<AppState>,
    _caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(template_json(&find_template(&state, &id)?)))
}

/// Validates the parameters against every page of the form; each problem
/// is one error at `/parameters...`.
fn check_parameters(template: &Template, parameters: &Value) -> Vec<FieldError> {
    if !parameters.is_object() {
        return vec![FieldError {
            field: "/parameters".into(),
            message: "must be a JSON object".into(),
        }];
    }
    let mut errors = Vec::new();
    for page in template.pages() {
        match crate::schema::validate(&page, parameters) {
            Ok(()) => {}
            Err(crate::schema::SchemaError::BadSchema(e)) => errors.push(FieldError {
                field: "/parameters".into(),
                message: format!("the template's schema is unusable (a fault of the plugin): {e}"),
            }),
            Err(crate::schema::SchemaError::Invalid(problems)) => {
                errors.extend(problems.into_iter().map(|p| FieldError {
                    field: format!("/parameters{}", p.pointer),
                    message: p.message,
                }))
            }
        }
    }
    errors
}

/// Every secret field of every page.
fn secret_fields(template: &Template) -> Vec<String> {
    let mut out: Vec<String> = template.pages().iter().flat_map(secret_pointers).collect();
    out.sort();
    out.dedup();
    out
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StartBody {
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/templates/{id}/runs`: a dry run answers with the files at
/// once and writes nothing; a real run is started on this replica (202).
async fn start_run(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = caller.require(Role::Member)?;
    let template = find_template(&state, &id)?;
    let body: StartBody = optional_body(&body)?;
    let parameters = body.parameters.unwrap_or_else(|| json!({}));
    let errors = check_parameters(&template, &parameters);
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
    let pointers = secret_fields(&template);
    let (redacted, secrets) = split_secrets(&parameters, &pointers);
    let extra = secret_strings(secrets.as_ref());
    let redacted = state.registry.runtime().redact_json(&redacted);
    if body.dry_run {
        return dry_run(&state, &template, parameters, &extra).await;
    }
    let Some(target) = template.target().cloned() else {
        return Err(ApiError::Conflict(format!(
            "template {id:?} has no publish target: add a [scaffold] table to its sidecar \
             (target = \"directory\" with a root, or \"git\" with a remote)"
        )));
    };
    for step in target.steps() {
        let Some(info) = state
            .registry
            .plugin(&step.action)
            .and_then(|p| p.action_info().cloned())
        else {
            return Err(ApiError::Conflict(format!(
                "template {id:?} runs action {:?} in step {}, and no such action is loaded",
                step.action, step.id
            )));
        };
        if info.approval.is_some() {
            return Err(ApiError::Conflict(format!(
                "step {} runs action {:?}, which needs approval; a template cannot wait for one",
                step.id, step.action
            )));
        }
        let needed = match info.required_role {
            portolan_runtime::model::ActionRole::Viewer => Role::Viewer,
            portolan_runtime::model::ActionRole::Member => Role::Member,
            portolan_runtime::model::ActionRole::Admin => Role::Admin,
        };
        if token.role < needed {
            return Err(ApiError::Forbidden(format!(
                "step {} runs action {:?}, which needs the {needed} role; the token has {}",
                step.id, step.action, token.role
            )));
        }
    }
    let actor = actor_of(token);
    let owner = format!("{}/t", state.actions.replica());
    let new = NewRun {
        kind: "template".into(),
        action: id.clone(),
        action_version: template.entry.version.clone().unwrap_or_default(),
        entity_ref: None,
        input: redacted.clone(),
        secret_input: None,
        actor: actor.clone(),
        approval_role: None,
        running_on: Some((owner.clone(), LEASE)),
    };
    let audit = NewAuditEntry {
        actor,
        verb: "template.run".into(),
        subject: String::new(),
        detail: json!({"template": id, "parameters": redacted}),
    };
    let run = state.store.create_run(&new, &audit).await?;
    tracing::info!(run = %run.id, template = %id, "template run started");
    let (task_state, task_run) = (state.clone(), run.clone());
    let plugin = template.entry.plugin.clone();
    tokio::spawn(async move {
        execute(
            &task_state,
            &owner,
            task_run,
            plugin,
            parameters,
            target,
            extra,
        )
        .await;
    });
    Ok(run_response(StatusCode::ACCEPTED, &run))
}

/// A dry run's `generate`: no run, no lease; given up on past its deadline
/// plus a grace period.
async fn generate_once(
    plugin: Arc<portolan_runtime::Plugin>,
    parameters: Value,
    deadline: Duration,
) -> Result<portolan_runtime::CallReport<GeneratorOutput>, String> {
    let task = tokio::task::spawn_blocking(move || plugin.generate(&parameters));
    match tokio::time::timeout(deadline + Duration::from_secs(10), task).await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(format!("the generate call panicked in the host: {e}")),
        Err(_) => Err(format!(
            "the template did not come back within its deadline of {} ms",
            deadline.as_millis()
        )),
    }
}

fn call_deadline(entry: &PluginEntry) -> Duration {
    entry
        .grants
        .as_ref()
        .map(|g| Duration::from_millis(g.limits.timeout_ms))
        .unwrap_or(Duration::from_secs(30))
}

async fn dry_run(
    state: &AppState,
    template: &Template,
    parameters: Value,
    extra: &[String],
) -> Result<Response, ApiError> {
    let Some(plugin) = template.entry.plugin.clone() else {
        return Err(ApiError::Conflict("the template is not loaded".into()));
    };
    let report = generate_once(plugin, parameters, call_deadline(&template.entry))
        .await
        .map_err(ApiError::Unavailable)?;
    let log: Vec<Value> = report
        .logs
        .iter()
        .map(|l| json!({"level": level_name(l), "message": mask(state, extra, &l.message)}))
        .collect();
    let output = match report.result {
        Ok(output) => output,
        Err(e) => {
            let message = mask(state, extra, &e.to_string());
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                [(axum::http::header::CONTENT_TYPE, crate::error::PROBLEM_JSON)],
                Json(json!({
                    "type": "about:blank", "title": "The template failed", "status": 422,
                    "detail": message, "code": e.code(), "log": log,
                    "errors": match &e {
                        portolan_runtime::CallError::Plugin { field: Some(f), message, .. } =>
                            json!([{"field": format!("/parameters{f}"), "message": mask(state, extra, message)}]),
                        _ => json!([]),
                    },
                })),
            )
                .into_response());
        }
    };
    if let Err(why) = check_files(&output) {
        return Err(ApiError::Conflict(format!(
            "the template's output is refused: {why}"
        )));
    }
    let files: Vec<Value> = output
        .files
        .iter()
        .map(|f| {
            let mut v =
                json!({"path": f.path, "size": f.content.len(), "executable": f.executable});
            match std::str::from_utf8(&f.content) {
                Ok(text) => v["content"] = json!(mask(state, extra, text)),
                Err(_) => v["contentBase64"] = json!(base64_encode(&f.content)),
            }
            v
        })
        .collect();
    let entity = output.entity.as_ref().map(|e| {
        mask_json(
            state,
            extra,
            &serde_json::to_value(e).unwrap_or(Value::Null),
        )
    });
    Ok(Json(json!({
        "dryRun": true,
        "files": files,
        "entity": entity,
        "links": mask_json(state, extra, &serde_json::to_value(&output.links).unwrap_or(json!([]))),
        "messages": output.messages.iter().map(|m| mask(state, extra, m)).collect::<Vec<_>>(),
        "log": log,
    }))
    .into_response())
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Why a generated path is refused, if it is.
fn bad_path(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("is empty");
    }
    if path.len() > MAX_PATH {
        return Some("is too long");
    }
    if path.starts_with('/') {
        return Some("is absolute");
    }
    if path.contains('\\') {
        return Some("contains a backslash");
    }
    if path.contains('\0') {
        return Some("contains a NUL byte");
    }
    if path.len() >= 2 && path.as_bytes()[1] == b':' {
        return Some("names a drive");
    }
    for part in path.split('/') {
        match part {
            "" => return Some("has an empty part (`//` or a trailing `/`)"),
            "." => return Some("has a `.` part"),
            ".." => return Some("climbs out with `..`"),
            _ => {}
        }
    }
    None
}

/// Checks everything a template returned before a byte is written.
fn check_files(output: &GeneratorOutput) -> Result<(), String> {
    if output.files.len() > MAX_FILES {
        return Err(format!(
            "{} files; at most {MAX_FILES} are accepted",
            output.files.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut dirs = std::collections::HashSet::new();
    let mut total = 0usize;
    for f in &output.files {
        if let Some(why) = bad_path(&f.path) {
            return Err(format!("path {:?} {why}", f.path));
        }
        if f.content.len() > MAX_FILE_BYTES {
            return Err(format!(
                "{} is {} bytes; at most {MAX_FILE_BYTES} per file",
                f.path,
                f.content.len()
            ));
        }
        total += f.content.len();
        if !seen.insert(f.path.as_str()) {
            return Err(format!("{} is returned twice", f.path));
        }
        let mut prefix = String::new();
        for part in f
            .path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|x| x.1)
            .unwrap_or(&[])
        {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            dirs.insert(prefix.clone());
        }
    }
    if let Some(clash) = output.files.iter().find(|f| dirs.contains(&f.path)) {
        return Err(format!("{} is both a file and a folder", clash.path));
    }
    if total > MAX_TOTAL_BYTES {
        return Err(format!("{total} bytes in all; at most {MAX_TOTAL_BYTES}"));
    }
    Ok(())
}

/// The new project's name: its entity's, else the `name` parameter.
fn project_name(output: &GeneratorOutput, parameters: &Value) -> Option<String> {
    output
        .entity
        .as_ref()
        .map(|e| e.metadata.name.clone())
        .or_else(|| {
            parameters
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Executes a template run to its end on this replica.
async fn execute(
    state: &AppState,
    owner: &str,
    run: Run,
    plugin: Option<Arc<portolan_runtime::Plugin>>,
    parameters: Value,
    target: ScaffoldTarget,
    extra: Vec<String>,
) {
    let started = Instant::now();
    let mut log = RunLog {
        state: state.clone(),
        run_id: run.id.clone(),
        attempt: run.attempt,
        pending: Vec::new(),
    };
    let cancel = state.actions.track(&run.id);
    log.host(
        "info",
        format!("template {} started on {owner}", run.action),
    );
    let end = match plugin {
        None => Err(failure("unavailable", "the template is not loaded")),
        Some(plugin) => {
            steps(
                state, owner, &run, plugin, parameters, target, &extra, &mut log, &cancel,
            )
            .await
        }
    };
    state.actions.untrack(&run.id);
    let took = started.elapsed().as_millis();
    let end = match end {
        Ok((output, links)) => {
            log.host("info", format!("run succeeded in {took} ms"));
            RunEnd {
                status: RunStatus::Succeeded,
                output: Some(output),
                links,
                error: None,
            }
        }
        Err(error) => {
            let status = if error["code"] == "cancelled" {
                RunStatus::Cancelled
            } else {
                RunStatus::Failed
            };
            log.host(
                "error",
                format!(
                    "run {status} after {took} ms: {}",
                    error["message"].as_str().unwrap_or_default()
                ),
            );
            RunEnd {
                status,
                output: None,
                links: json!([]),
                error: Some(error),
            }
        }
    };
    log.flush().await;
    match state.store.finish_run(&run.id, owner, &end).await {
        Ok(true) => tracing::info!(run = %run.id, status = %end.status, "template run ended"),
        Ok(false) => tracing::warn!(run = %run.id, "template run ended after its lease was lost"),
        Err(e) => {
            tracing::warn!(run = %run.id, error = format!("{e:#}"), "cannot record the end of a template run")
        }
    }
    state.actions.logs.notify();
}

type StepResult = Result<(Value, Value), Value>;

#[allow(clippy::too_many_arguments)]
async fn steps(
    state: &AppState,
    owner: &str,
    run: &Run,
    plugin: Arc<portolan_runtime::Plugin>,
    parameters: Value,
    target: ScaffoldTarget,
    extra: &[String],
    log: &mut RunLog,
    cancel: &Arc<std::sync::atomic::AtomicBool>,
) -> StepResult {
    // 1. Generate.
    let deadline = state
        .registry
        .get(&run.action)
        .map(|e| call_deadline(&e))
        .unwrap_or(Duration::from_secs(30));
    let generated_from = parameters.clone();
    let report = watched_call(log, owner, cancel, extra, deadline, move |control| {
        plugin.generate_with(&generated_from, &control)
    })
    .await
    .map_err(|m| failure("timeout", m))?;
    let output = match report.result {
        Ok(output) => output,
        Err(portolan_runtime::CallError::Cancelled) => {
            return Err(failure("cancelled", "cancelled while generating"))
        }
        Err(e) => {
            let mut error = failure(e.code(), mask(state, extra, &e.to_string()));
            if let portolan_runtime::CallError::Plugin { field: Some(f), .. } = &e {
                error["field"] = json!(format!("/parameters{f}"));
            }
            return Err(error);
        }
    };
    let total: usize = output.files.iter().map(|f| f.content.len()).sum();
    log.host(
        "info",
        format!("generated {} files ({total} bytes)", output.files.len()),
    );
    check_files(&output).map_err(|why| failure("bad-output", format!("refused: {why}")))?;
    let name = project_name(&output, &parameters)
        .filter(|n| safe_name(n))
        .ok_or_else(|| {
            failure(
                "bad-output",
                "the template names no usable project (an entity's name, or a `name` parameter of letters, digits, `-`, `_` and `.`)",
            )
        })?;

    // 2. The entity, checked before anything is published.
    let entity = match &output.entity {
        None => None,
        Some(e) => {
            let value = serde_json::to_value(e).unwrap_or(Value::Null);
            let entity = CatalogEntity::from_value(value).map_err(|e| {
                failure(
                    "bad-output",
                    format!("the template's entity is invalid: {e}"),
                )
            })?;
            let key = entity.entity_ref();
            match state.store.entity(&key).await {
                Ok(Some(_)) => {
                    return Err(failure(
                        "conflict",
                        format!("{key} already exists in the catalog; choose another name"),
                    ))
                }
                Ok(None) => {}
                Err(e) => return Err(failure("store", format!("cannot read the catalog: {e}"))),
            }
            Some(entity)
        }
    };
    if cancel.load(Ordering::Relaxed) {
        return Err(failure("cancelled", "cancelled before publishing"));
    }

    // 3. Steps before publishing (e.g. create the repository to push to).
    let step_list = target.steps().to_vec();
    let mut links = mask_json(
        state,
        extra,
        &serde_json::to_value(&output.links).unwrap_or(json!([])),
    );
    let mut context = json!({
        "parameters": parameters,
        "name": name,
        "run": {"id": run.id, "actor": run.actor},
        "output": {},
        "entity": Value::Null,
        "steps": {},
    });
    let mut outputs = serde_json::Map::new();
    let (before, after): (Vec<_>, Vec<_>) = step_list.iter().partition(|s| s.before_publish);
    for step in before {
        run_recorded_step(
            state,
            owner,
            run,
            step,
            &mut context,
            None,
            extra,
            log,
            cancel,
            &mut links,
            &mut outputs,
        )
        .await?;
    }

    // 4. Publish.
    let files = output.files.clone();
    let published = match target {
        ScaffoldTarget::Directory { root, .. } => {
            log.host(
                "info",
                format!("writing {} files to {}/{name}", files.len(), root.display()),
            );
            log.flush().await;
            let (root2, name2) = (root.clone(), name.clone());
            tokio::task::spawn_blocking(move || write_directory(&root2, &name2, &files))
                .await
                .map_err(|e| failure("internal", format!("the write panicked: {e}")))?
                .map_err(|e| failure("publish", e))?;
            json!({"kind": "directory", "path": root.join(&name)})
        }
        ScaffoldTarget::Git {
            remote,
            branch,
            author_name,
            author_email,
            ..
        } => {
            let remote = render(&Value::String(remote.replace("{name}", &name)), &context)
                .map_err(|e| failure("publish", format!("scaffold.remote: {e}")))?;
            let remote = match remote {
                Value::String(r) if !r.trim().is_empty() && !r.starts_with('-') => r,
                other => {
                    return Err(failure(
                        "publish",
                        format!("scaffold.remote became {other}, not a remote"),
                    ))
                }
            };
            let work = state.config.data_dir.join("scaffold").join(&run.id);
            log.host(
                "info",
                format!(
                    "committing {} files as {author_name} <{author_email}>",
                    files.len()
                ),
            );
            log.flush().await;
            let message = format!("Create {name} from template {}", run.action);
            let (remote2, branch2) = (remote.clone(), branch.clone());
            let result = tokio::task::spawn_blocking(move || {
                let out = publish_git(
                    &work,
                    &name,
                    &files,
                    &remote2,
                    &branch2,
                    &author_name,
                    &author_email,
                    &message,
                );
                let _ = std::fs::remove_dir_all(&work);
                out
            })
            .await
            .map_err(|e| failure("internal", format!("the git steps panicked: {e}")))?;
            let commit = result.map_err(|e| failure("publish", mask(state, extra, &e)))?;
            log.host(
                "info",
                format!(
                    "pushed {commit} to {} ({branch})",
                    mask(state, extra, &remote)
                ),
            );
            json!({"kind": "git", "remote": mask(state, extra, &remote), "branch": branch, "commit": commit})
        }
    };

    // 5. Register.
    let mut entity_ref = None;
    if let Some(entity) = entity {
        match state.store.put_entity(&entity, &Origin::Api, None).await {
            Ok((_, stored)) => {
                let key = stored.entity.entity_ref();
                crate::evaluate::catalog_changed(state, vec![key.key()], false).await;
                log.host("info", format!("registered {key} in the catalog"));
                entity_ref = Some(key.to_string());
            }
            Err(e) => {
                return Err(failure(
                    "register",
                    format!("the project was published but could not be registered: {e}"),
                ))
            }
        }
    }
    let mut result = json!({
        "target": published,
        "files": output.files.len(),
        "bytes": total,
        "entity": entity_ref,
        "messages": output.messages.iter().map(|m| mask(state, extra, m)).collect::<Vec<_>>(),
    });

    // 6. Steps after publishing, with values from the parameters and what
    // came before.
    context["output"] = result.clone();
    context["entity"] = json!(entity_ref);
    for step in after {
        run_recorded_step(
            state,
            owner,
            run,
            step,
            &mut context,
            entity_ref.as_deref(),
            extra,
            log,
            cancel,
            &mut links,
            &mut outputs,
        )
        .await?;
    }
    if !outputs.is_empty() {
        result["steps"] = Value::Object(outputs);
    }
    Ok((result, links))
}

/// Runs one step and records its output and links for the steps after it.
#[allow(clippy::too_many_arguments)]
async fn run_recorded_step(
    state: &AppState,
    owner: &str,
    run: &Run,
    step: &portolan_runtime::ScaffoldStep,
    context: &mut Value,
    entity_ref: Option<&str>,
    extra: &[String],
    log: &mut RunLog,
    cancel: &Arc<std::sync::atomic::AtomicBool>,
    links: &mut Value,
    outputs: &mut serde_json::Map<String, Value>,
) -> Result<(), Value> {
    if cancel.load(Ordering::Relaxed) {
        return Err(failure(
            "cancelled",
            format!("cancelled before step {}", step.id),
        ));
    }
    let (out, step_links) = run_step(
        state, owner, run, step, context, entity_ref, extra, log, cancel,
    )
    .await
    .map_err(|mut e| {
        e["step"] = json!(step.id);
        e
    })?;
    if let (Some(all), Some(new)) = (links.as_array_mut(), step_links.as_array()) {
        all.extend(new.iter().cloned());
    }
    let recorded = json!({"output": out, "links": step_links});
    context["steps"][&step.id] = recorded.clone();
    outputs.insert(step.id.clone(), recorded);
    Ok(())
}

/// Fills `${{ path.to.value }}` placeholders in `template` from `context`.
/// A string that is nothing but one placeholder takes the value's own JSON
/// type; placeholders inside longer strings are replaced by their text.
fn render(template: &Value, context: &Value) -> Result<Value, String> {
    fn lookup<'a>(context: &'a Value, path: &str) -> Result<&'a Value, String> {
        let mut at = context;
        for part in path.split('.') {
            at = match at {
                Value::Object(map) => map.get(part),
                Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            }
            .ok_or_else(|| format!("${{{{ {path} }}}} names nothing"))?;
        }
        Ok(at)
    }
    match template {
        Value::String(s) => {
            let trimmed = s.trim();
            if let Some(inner) = trimmed
                .strip_prefix("${{")
                .and_then(|r| r.strip_suffix("}}"))
                .filter(|inner| !inner.contains("}}"))
            {
                return lookup(context, inner.trim()).cloned();
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${{") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 3..];
                let end = after
                    .find("}}")
                    .ok_or_else(|| format!("{s:?}: a `${{{{` is never closed"))?;
                match lookup(context, after[..end].trim())? {
                    Value::String(v) => out.push_str(v),
                    other => out.push_str(&other.to_string()),
                }
                rest = &after[end + 2..];
            }
            out.push_str(rest);
            Ok(Value::String(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|v| render(v, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| render(v, context).map(|v| (k.clone(), v)))
            .collect::<Result<serde_json::Map<_, _>, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// Runs one step's action inside the template run: its input rendered and
/// validated, its log part of the run's log.
#[allow(clippy::too_many_arguments)]
async fn run_step(
    state: &AppState,
    owner: &str,
    run: &Run,
    step: &portolan_runtime::ScaffoldStep,
    context: &Value,
    entity_ref: Option<&str>,
    extra: &[String],
    log: &mut RunLog,
    cancel: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<(Value, Value), Value> {
    let entry =
        crate::api::ready_plugin(state, &step.action, PluginRole::Action).ok_or_else(|| {
            failure(
                "unavailable",
                format!("step {}: action {:?} is not loaded", step.id, step.action),
            )
        })?;
    let plugin = entry.plugin.clone().ok_or_else(|| {
        failure(
            "unavailable",
            format!("step {}: action {:?} is not loaded", step.id, step.action),
        )
    })?;
    let input = render(&step.input, context)
        .map_err(|e| failure("step-input", format!("step {}: {e}", step.id)))?;
    if let Some(info) = plugin.action_info() {
        if let Err(crate::schema::SchemaError::Invalid(problems)) =
            crate::schema::validate(&info.input_schema, &input)
        {
            let list: Vec<String> = problems
                .iter()
                .map(|p| {
                    format!(
                        "{}: {}",
                        if p.pointer.is_empty() {
                            "/"
                        } else {
                            &p.pointer
                        },
                        p.message
                    )
                })
                .collect();
            return Err(failure(
                "step-input",
                mask(
                    state,
                    extra,
                    &format!(
                        "step {}: the input does not fit {}: {}",
                        step.id,
                        step.action,
                        list.join("; ")
                    ),
                ),
            ));
        }
    }
    let entity = match (step.on_entity, entity_ref) {
        (true, Some(r)) => {
            let key = crate::actions::parse_ref(r, "entity")
                .map_err(|_| failure("step-input", format!("step {}: bad entity {r}", step.id)))?;
            match state.store.entity(&key).await {
                Ok(Some(found)) => Some(crate::evaluate::plugin_entity(&found.entity)),
                _ => {
                    return Err(failure(
                        "step-input",
                        format!("step {}: {r} is not in the catalog", step.id),
                    ))
                }
            }
        }
        (true, None) => {
            return Err(failure(
                "step-input",
                format!(
                    "step {} runs on the new entity, but the template returned none",
                    step.id
                ),
            ))
        }
        (false, _) => None,
    };
    log.host(
        "info",
        format!("step {}: running action {}", step.id, step.action),
    );
    let invocation = portolan_runtime::model::ActionInvocation {
        run_id: format!("{}.{}", run.id, step.id),
        actor: run.actor.clone(),
        attempt: 1,
        input,
        entity,
    };
    let report = watched_call(
        log,
        owner,
        cancel,
        extra,
        call_deadline(&entry),
        move |control| plugin.run_action_with(&invocation, &control),
    )
    .await
    .map_err(|m| failure("timeout", format!("step {}: {m}", step.id)))?;
    match report.result {
        Ok(outcome) => {
            log.host("info", format!("step {} succeeded", step.id));
            Ok((
                mask_json(state, extra, &outcome.output),
                mask_json(
                    state,
                    extra,
                    &serde_json::to_value(&outcome.links).unwrap_or(json!([])),
                ),
            ))
        }
        Err(portolan_runtime::CallError::Cancelled) => Err(failure(
            "cancelled",
            format!("cancelled during step {}", step.id),
        )),
        Err(e) => Err(failure(
            "step-failed",
            mask(
                state,
                extra,
                &format!("step {} ({}) failed: {e}", step.id, step.action),
            ),
        )),
    }
}

/// Writes the files into a new folder `root/name` through a capability on
/// `root`; on any failure the new folder is removed again.
fn write_directory(
    root: &Path,
    name: &str,
    files: &[portolan_runtime::model::GeneratedFile],
) -> Result<(), String> {
    use cap_std::fs::Dir;
    let root_dir = Dir::open_ambient_dir(root, cap_std::ambient_authority())
        .map_err(|e| format!("cannot open the workspace root {}: {e}", root.display()))?;
    root_dir.create_dir(name).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "{}/{name} already exists; choose another name",
                root.display()
            )
        } else {
            format!("cannot create {}/{name}: {e}", root.display())
        }
    })?;
    let written = (|| -> Result<(), String> {
        let dir = root_dir
            .open_dir(name)
            .map_err(|e| format!("cannot open {name}: {e}"))?;
        write_files(&dir, files)
    })();
    if written.is_err() {
        let _ = root_dir.remove_dir_all(name);
    }
    written
}

fn write_files(
    dir: &cap_std::fs::Dir,
    files: &[portolan_runtime::model::GeneratedFile],
) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for f in files {
        let path = Path::new(&f.path);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            dir.create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        dir.write(path, &f.content)
            .map_err(|e| format!("cannot write {}: {e}", f.path))?;
        if f.executable {
            dir.set_permissions(
                path,
                cap_std::fs::Permissions::from_std(std::fs::Permissions::from_mode(0o755)),
            )
            .map_err(|e| format!("cannot make {} executable: {e}", f.path))?;
        }
    }
    Ok(())
}

/// Commits the files as a new repository and pushes it; returns the commit.
#[allow(clippy::too_many_arguments)]
fn publish_git(
    work: &Path,
    name: &str,
    files: &[portolan_runtime::model::GeneratedFile],
    remote: &str,
    branch: &str,
    author_name: &str,
    author_email: &str,
    message: &str,
) -> Result<String, String> {
    std::fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    write_directory(work, name, files)?;
    let repo: PathBuf = work.join(name);
    let git = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", author_name)
            .env("GIT_AUTHOR_EMAIL", author_email)
            .env("GIT_COMMITTER_NAME", author_name)
            .env("GIT_COMMITTER_EMAIL", author_email)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "git {} failed: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    git(&["init", "-q", "-b", branch])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", message])?;
    let commit = git(&["rev-parse", "HEAD"])?;
    git(&[
        "push",
        "-q",
        "--",
        remote,
        &format!("HEAD:refs/heads/{branch}"),
    ])?;
    Ok(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_escape_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/./b",
            "a\\..\\b",
            "C:x",
            "a/",
        ] {
            assert!(bad_path(bad).is_some(), "{bad:?} accepted");
        }
        for good in [
            "README.md",
            "src/main.rs",
            ".github/workflows/ci.yml",
            "a..b/c",
        ] {
            assert_eq!(bad_path(good), None, "{good:?} refused");
        }
    }

    #[test]
    fn placeholders_take_values_from_the_context() {
        let context = json!({"parameters": {"name": "billing", "replicas": 3},
                             "steps": {"repo": {"output": {"url": "https://git/x"}}}});
        let template = json!({
            "service": "${{ parameters.name }}",
            "count": "${{ parameters.replicas }}",
            "text": "repo ${{ steps.repo.output.url }} for ${{parameters.name}}",
            "list": ["${{ parameters.name }}", 1]
        });
        assert_eq!(
            render(&template, &context).unwrap(),
            json!({"service": "billing", "count": 3,
                   "text": "repo https://git/x for billing", "list": ["billing", 1]})
        );
        assert!(render(&json!("${{ parameters.nope }}"), &context)
            .unwrap_err()
            .contains("parameters.nope"));
        assert!(render(&json!("x ${{ parameters.name"), &context).is_err());
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }
}
