//! The HTTP API: routes and handlers.
//!
//! Handlers are thin: they check the caller, parse input through the
//! [`crate::error`] extractors, call the registry or the store, and shape the
//! JSON. Everything under `/api/v1` speaks JSON and answers errors as
//! `application/problem+json`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use portolan_runtime::{PluginStatus, Role as PluginRole};
use portolan_store::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{self, ApiError, ApiJson, ApiQuery};

/// The whole router, state attached.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/plugins", get(list_plugins))
        .route("/plugins/{id}", get(get_plugin))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .merge(crate::entities::routes())
        .merge(crate::sources::routes())
        .merge(crate::scorecards::routes())
        .merge(crate::actions::routes())
        .merge(crate::templates::routes());
    // The API on its own: the web UI calls it in-process.
    let api: Router = Router::new().nest("/api/v1", v1).with_state(state.clone());
    let ui = crate::ui::routes(state.clone(), api.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .with_state(state.clone())
        .merge(api)
        .merge(ui)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(error::MAX_JSON_BODY))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// The loaded (ready) plugins of one role, in id order.
pub(crate) fn ready_plugins(
    state: &AppState,
    role: PluginRole,
) -> Vec<std::sync::Arc<portolan_runtime::PluginEntry>> {
    let mut out: Vec<_> = state
        .registry
        .list()
        .into_iter()
        .filter(|e| e.status == PluginStatus::Ready && e.role == Some(role))
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// One loaded (ready) plugin of `role`, if there is one with that id.
pub(crate) fn ready_plugin(
    state: &AppState,
    id: &str,
    role: PluginRole,
) -> Option<std::sync::Arc<portolan_runtime::PluginEntry>> {
    state
        .registry
        .get(id)
        .filter(|e| e.status == PluginStatus::Ready && e.role == Some(role))
}

/// Liveness: the process answers.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers and the plugins folder has been scanned
/// once, so the plugin list is complete.
async fn readyz(State(state): State<AppState>) -> Response {
    let db = state.store.ping().await;
    let scanned = state.registry.scans_completed() > 0;
    let ok = db.is_ok() && scanned;
    let body = json!({
        "status": if ok { "ready" } else { "not-ready" },
        "database": if db.is_ok() { "ok" } else { "unavailable" },
        "plugins": if scanned { "scanned" } else { "scanning" },
    });
    if let Err(e) = db {
        tracing::warn!(error = format!("{e:#}"), "readiness: database unavailable");
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&state),
    )
        .into_response()
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginQuery {
    role: Option<String>,
    status: Option<String>,
}

/// `GET /api/v1/plugins`: every plugin file, loaded or failed.
async fn list_plugins(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<PluginQuery>,
) -> Result<Json<Value>, ApiError> {
    let role = match q.role.as_deref() {
        None => None,
        Some(r) => Some(parse_role(r)?),
    };
    let status = match q.status.as_deref() {
        None => None,
        Some("ready") => Some(PluginStatus::Ready),
        Some("failed") => Some(PluginStatus::Failed),
        Some(other) => {
            return Err(ApiError::invalid(
                "query.status",
                format!("unknown status {other:?}; expected ready or failed"),
            ))
        }
    };
    let items: Vec<_> = state
        .registry
        .list()
        .into_iter()
        .filter(|p| role.is_none() || p.role == role)
        .filter(|p| status.is_none_or(|s| p.status == s))
        .collect();
    Ok(Json(json!({ "items": items, "total": items.len() })))
}

fn parse_role(raw: &str) -> Result<PluginRole, ApiError> {
    Ok(match raw {
        "catalog-source" => PluginRole::CatalogSource,
        "scaffold-generator" => PluginRole::ScaffoldGenerator,
        "action" => PluginRole::Action,
        "scorecard-check" => PluginRole::ScorecardCheck,
        other => {
            return Err(ApiError::invalid(
                "query.role",
                format!(
                    "unknown role {other:?}; expected catalog-source, scaffold-generator, action or scorecard-check"
                ),
            ))
        }
    })
}

/// `GET /api/v1/plugins/{id}`.
async fn get_plugin(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entry = state
        .registry
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no plugin {id:?} in the plugins folder")))?;
    Ok(Json(
        serde_json::to_value(&*entry).map_err(|e| ApiError::Internal(e.into()))?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    role: String,
    #[serde(default)]
    description: String,
}

/// `POST /api/v1/tokens` (admin): creates a token; its secret is in this
/// answer only.
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: portolan_store::ParseRoleError| ApiError::invalid("/role", e.to_string()))?;
    if body.description.len() > 200 {
        return Err(ApiError::invalid("/description", "at most 200 characters"));
    }
    let token = state.store.create_token(role, &body.description).await?;
    let mut value = token_json(&token.info);
    value["token"] = Value::String(token.secret);
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// `GET /api/v1/tokens` (admin): active tokens, without secrets.
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let items: Vec<Value> = state
        .store
        .list_tokens()
        .await?
        .iter()
        .map(token_json)
        .collect();
    Ok(Json(json!({ "total": items.len(), "items": items })))
}

/// `DELETE /api/v1/tokens/{id}` (admin).
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    if state.store.revoke_token(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no active token {id:?}")))
    }
}

fn token_json(t: &portolan_store::TokenInfo) -> Value {
    json!({
        "id": t.id,
        "role": t.role,
        "description": t.description,
        "createdAt": t.created_at,
        "lastUsedAt": t.last_used_at,
    })
}
