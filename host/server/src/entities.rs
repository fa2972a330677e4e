//! The catalog's push and read API under `/api/v1/entities`.
//!
//! - `PUT /entities/{kind}/{namespace}/{name}` (member): upsert one entity,
//!   JSON or YAML; `If-Match` for optimistic concurrency; 201 when created,
//!   200 when updated or unchanged; answers the stored entity with `ETag`.
//! - `GET` the same path (viewer): the entity with its relations and `ETag`.
//! - `DELETE` the same path (member): 204, or 404 if absent.
//! - `POST /entities/batch` (member): many entities (JSON array,
//!   `{"items": [...]}` or multi-document YAML) validated together and
//!   written in one transaction, or none of them.
//! - `GET /entities` (viewer): filters, `limit` and an opaque cursor.
//!
//! Bodies are read here rather than through [`crate::error::ApiJson`]: they
//! may be YAML, and the batch route takes far more than the usual limit.

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use portolan_catalog::{parse_documents, Document, Entity, EntityRef, Format, RefDefaults};
use portolan_store::{EntityQuery, IfMatch, Origin, Role, StoreError, StoredEntity, WriteOutcome};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery, EntityProblems, FieldError, MAX_JSON_BODY};

/// Largest body `POST /entities/batch` reads, in bytes. 10,000 typical
/// descriptors take 10–30 MB; the cap bounds what one request can make the
/// server hold (the body plus its parsed form, a few times its size).
pub const MAX_BATCH_BODY: usize = 128 * 1024 * 1024;

/// Most entities in one batch; more is a 413, so a runaway exporter fails
/// fast instead of holding one transaction open for minutes.
pub const MAX_BATCH_ENTITIES: usize = 100_000;

/// Largest body of a single-entity `PUT`, in bytes.
pub const MAX_ENTITY_BODY: usize = MAX_JSON_BODY;

/// Page size of `GET /entities` when `limit` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// Most bad entities one 422 answer lists in full; the detail still counts
/// them all. Keeps the error for a batch of 100,000 broken entities small.
pub const MAX_REPORTED_ENTITIES: usize = 1_000;

/// The routes, to be nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/entities", get(list))
        .route("/entities/batch", post(batch))
        .route(
            "/entities/{kind}/{namespace}/{name}",
            get(get_one).put(put_one).delete(delete_one),
        )
}

/// Which parser a `Content-Type` asks for; anything else is a 415.
fn body_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media.as_str() {
        "application/json" => Ok(Format::Json),
        m if m.ends_with("+json") => Ok(Format::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Ok(Format::Yaml),
        _ => Err(ApiError::UnsupportedMediaType(
            "send entities as `Content-Type: application/json` or `application/yaml`".into(),
        )),
    }
}

/// Reads and parses a body of entity documents, at most `limit` bytes.
async fn read_documents(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<Document>, ApiError> {
    let format = body_format(headers)?;
    let too_large = || ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                too_large()
            } else {
                ApiError::BadRequest {
                    detail: format!("cannot read the body: {e}"),
                    field: None,
                }
            }
        })?
        .to_bytes();
    // Parsing a large YAML body takes a while; keep it off the async threads.
    tokio::task::spawn_blocking(move || parse_documents(&bytes, format))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::BadRequest {
            detail: e.to_string(),
            field: None,
        })
}

/// `kind:namespace/name` of a document that may not validate, for errors.
fn rough_ref(value: &Value) -> Option<String> {
    let kind = value.get("kind")?.as_str()?;
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(portolan_catalog::DEFAULT_NAMESPACE);
    Some(EntityRef::new(kind, namespace, name).to_string())
}

fn problems_of(err: portolan_catalog::InvalidEntity) -> Vec<FieldError> {
    err.problems
        .into_iter()
        .map(|p| FieldError {
            field: p.pointer,
            message: p.message,
        })
        .collect()
}

/// The entity as answered: the stored descriptor with its relations and
/// `metadata.etag`, as Backstage answers it.
fn entity_json(stored: &StoredEntity) -> Result<Value, ApiError> {
    let mut value =
        serde_json::to_value(&stored.entity).map_err(|e| ApiError::Internal(e.into()))?;
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("etag".into(), Value::String(stored.etag.clone()));
    }
    Ok(value)
}

fn etag_header(etag: &str) -> HeaderValue {
    // Etags are hex digits, always a valid header value.
    HeaderValue::from_str(&format!("\"{etag}\"")).expect("hex is a valid header value")
}

/// Parses `If-Match`: `*`, or a list of (possibly weak) quoted etags.
fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || ApiError::BadRequest {
        detail: "If-Match must be `*` or a list of quoted etags, e.g. `\"3f2a...\"`".into(),
        field: Some("header.if-match".into()),
    };
    let raw = raw.to_str().map_err(|_| bad())?.trim();
    if raw == "*" {
        return Ok(Some(IfMatch::Any));
    }
    let etags = raw
        .split(',')
        .map(|t| {
            let t = t.trim();
            let t = t.strip_prefix("W/").unwrap_or(t);
            t.strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .filter(|t| !t.contains('"'))
                .map(str::to_owned)
                .ok_or_else(bad)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(IfMatch::Etags(etags)))
}

/// Maps the store's write errors that a client caused to their statuses.
fn write_error(e: StoreError) -> ApiError {
    match e {
        StoreError::PreconditionFailed { entity, current } => {
            ApiError::PreconditionFailed(match current {
                Some(etag) => format!(
                    "entity {entity} has changed: its etag is now \"{etag}\"; GET it and retry"
                ),
                None => format!("entity {entity} does not exist, so If-Match cannot hold"),
            })
        }
        StoreError::OriginConflict { entity, owner } => ApiError::Conflict(format!(
            "entity {entity} belongs to {owner}; only its owner may change it (delete it first to take it over)"
        )),
        StoreError::DuplicateEntity(entity) => {
            ApiError::invalid("/", format!("entity {entity} appears more than once"))
        }
        other => other.into(),
    }
}

/// The entity a path names (`{kind}/{namespace}/{name}`). A path that does
/// not decode (bad percent-encoding, not UTF-8) is a 400 problem rather
/// than axum's plain-text rejection.
struct EntityPath(EntityRef);

impl<S: Send + Sync> FromRequestParts<S> for EntityPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((kind, namespace, name)) =
            Path::<(String, String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::BadRequest {
                    detail: format!("the path does not name an entity: {}", e.body_text()),
                    field: Some("path".into()),
                })?;
        Ok(EntityPath(EntityRef::new(kind, namespace, name)))
    }
}

/// `PUT /api/v1/entities/{kind}/{namespace}/{name}`.
async fn put_one(
    State(state): State<AppState>,
    caller: Caller,
    EntityPath(wanted): EntityPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(Role::Member)?;
    let expected = if_match(&headers)?;
    let mut docs = read_documents(&headers, body, MAX_ENTITY_BODY).await?;
    if docs.len() != 1 {
        return Err(ApiError::invalid(
            "/",
            format!(
                "expected exactly one entity, got {}; use POST /api/v1/entities/batch for several",
                docs.len()
            ),
        ));
    }
    let doc = docs.pop().expect("checked: one document");
    let entity = Entity::from_value(doc.value).map_err(|e| {
        let errors = problems_of(e);
        ApiError::Invalid {
            detail: errors
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; "),
            errors,
        }
    })?;
    let mut mismatches = Vec::new();
    for (field, in_path, in_body) in [
        ("/kind", &wanted.kind, &entity.kind),
        (
            "/metadata/namespace",
            &wanted.namespace,
            &entity.metadata.namespace,
        ),
        ("/metadata/name", &wanted.name, &entity.metadata.name),
    ] {
        if !in_path.eq_ignore_ascii_case(in_body) {
            mismatches.push(FieldError {
                field: field.into(),
                message: format!("{in_body:?} does not match the path's {in_path:?}"),
            });
        }
    }
    if !mismatches.is_empty() {
        return Err(ApiError::Invalid {
            detail: format!(
                "the body describes {}, but the path names {wanted}",
                entity.entity_ref()
            ),
            errors: mismatches,
        });
    }
    let (outcome, stored) = state
        .store
        .put_entity(&entity, &Origin::Api, expected.as_ref())
        .await
        .map_err(write_error)?;
    let status = match outcome {
        WriteOutcome::Created => StatusCode::CREATED,
        WriteOutcome::Updated | WriteOutcome::Unchanged => StatusCode::OK,
    };
    let mut resp = (status, Json(entity_json(&stored)?)).into_response();
    resp.headers_mut()
        .insert(header::ETAG, etag_header(&stored.etag));
    if status == StatusCode::CREATED {
        let r = stored.entity.entity_ref();
        if let Ok(location) = HeaderValue::from_str(&format!(
            "/api/v1/entities/{}/{}/{}",
            r.kind, r.namespace, r.name
        )) {
            resp.headers_mut().insert(header::LOCATION, location);
        }
    }
    Ok(resp)
}

/// `GET /api/v1/entities/{kind}/{namespace}/{name}`.
async fn get_one(
    State(state): State<AppState>,
    _caller: Caller,
    EntityPath(wanted): EntityPath,
) -> Result<Response, ApiError> {
    let stored = state
        .store
        .entity(&wanted)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no entity {wanted}")))?;
    let mut resp = Json(entity_json(&stored)?).into_response();
    resp.headers_mut()
        .insert(header::ETAG, etag_header(&stored.etag));
    Ok(resp)
}

/// `DELETE /api/v1/entities/{kind}/{namespace}/{name}`.
async fn delete_one(
    State(state): State<AppState>,
    caller: Caller,
    EntityPath(wanted): EntityPath,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Member)?;
    let expected = if_match(&headers)?;
    if state
        .store
        .delete_entity(&wanted, expected.as_ref())
        .await
        .map_err(write_error)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no entity {wanted}")))
    }
}

/// `POST /api/v1/entities/batch`.
async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Member)?;
    let docs = read_documents(&headers, body, MAX_BATCH_BODY).await?;
    if docs.len() > MAX_BATCH_ENTITIES {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} entities in one batch; at most {MAX_BATCH_ENTITIES} are allowed",
            docs.len()
        )));
    }
    let (entities, bad) = tokio::task::spawn_blocking(move || validate_batch(docs))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if !bad.is_empty() {
        let count = bad.len();
        let first = &bad[0];
        let detail = format!(
            "{count} of the batch's entities are invalid and nothing was stored; the first is #{} ({}): {}",
            first.index,
            first.entity_ref.as_deref().unwrap_or("no kind or name"),
            first
                .errors
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let mut entities = bad;
        entities.truncate(MAX_REPORTED_ENTITIES);
        return Err(ApiError::InvalidEntities { detail, entities });
    }
    let summary = state
        .store
        .put_entities(&entities, &Origin::Api)
        .await
        .map_err(write_error)?;
    Ok(Json(json!({
        "total": entities.len(),
        "added": summary.added,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
    })))
}

/// Validates every document; returns the entities, or every bad one with
/// its problems (invalid content, or the same entity twice).
fn validate_batch(docs: Vec<Document>) -> (Vec<Entity>, Vec<EntityProblems>) {
    let mut entities = Vec::with_capacity(docs.len());
    let mut bad = Vec::new();
    let mut first_seen = std::collections::HashMap::new();
    for (index, doc) in docs.into_iter().enumerate() {
        let rough = rough_ref(&doc.value);
        match Entity::from_value(doc.value) {
            Ok(entity) => {
                let key = entity.entity_ref().key();
                if let Some(earlier) = first_seen.insert(key, index) {
                    bad.push(EntityProblems {
                        index,
                        document: doc.document,
                        entity_ref: Some(entity.entity_ref().to_string()),
                        errors: vec![FieldError {
                            field: "/metadata/name".into(),
                            message: format!(
                                "the same entity as #{earlier}; each entity may appear once per batch"
                            ),
                        }],
                    });
                }
                entities.push(entity);
            }
            Err(e) => bad.push(EntityProblems {
                index,
                document: doc.document,
                entity_ref: rough,
                errors: problems_of(e),
            }),
        }
    }
    (entities, bad)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    kind: Option<String>,
    namespace: Option<String>,
    owner: Option<String>,
    lifecycle: Option<String>,
    #[serde(rename = "type")]
    spec_type: Option<String>,
    tag: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `a,b` → `["a", "b"]`; empty items are dropped.
fn values(raw: &Option<String>) -> Vec<String> {
    raw.as_deref()
        .map(|r| {
            r.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The cursor is the last key of the previous page, hex-encoded so that
/// clients treat it as opaque (its format may change).
fn encode_cursor(key: &str) -> String {
    hex::encode(key)
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    hex::decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            ApiError::invalid(
                "query.cursor",
                "not a cursor this server handed out; pass `nextCursor` from the previous page",
            )
        })
}

/// `GET /api/v1/entities`.
async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if limit == 0 || limit > portolan_store::MAX_PAGE_SIZE {
        return Err(ApiError::invalid(
            "query.limit",
            format!("must be between 1 and {}", portolan_store::MAX_PAGE_SIZE),
        ));
    }
    let owners = values(&params.owner)
        .iter()
        .map(|o| {
            EntityRef::parse(
                o,
                RefDefaults {
                    kind: Some("Group"),
                    namespace: portolan_catalog::DEFAULT_NAMESPACE,
                },
            )
            .map_err(|e| ApiError::invalid("query.owner", e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    let query = EntityQuery {
        kinds: values(&params.kind),
        namespaces: values(&params.namespace),
        owners,
        lifecycles: values(&params.lifecycle),
        types: values(&params.spec_type),
        tags: values(&params.tag),
        limit,
        after,
        ..EntityQuery::default()
    };
    let page = state.store.list_entities(&query).await?;
    let items = page
        .items
        .iter()
        .map(entity_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({
        "items": items,
        "total": page.total,
        "nextCursor": page.next_after.as_deref().map(encode_cursor),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).unwrap(), None);
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(if_match(&h).unwrap(), Some(IfMatch::Any));
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"a\", W/\"b\""));
        assert_eq!(
            if_match(&h).unwrap(),
            Some(IfMatch::Etags(vec!["a".into(), "b".into()]))
        );
        for bad in ["a", "\"a", "\"a\"b\"", ""] {
            h.insert(header::IF_MATCH, HeaderValue::from_str(bad).unwrap());
            assert!(if_match(&h).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = "component:default/web";
        assert_eq!(decode_cursor(&encode_cursor(key)).unwrap(), key);
        assert!(decode_cursor("zz").is_err());
        assert!(decode_cursor("ff").is_err());
    }

    #[test]
    fn media_types() {
        let mut h = HeaderMap::new();
        assert!(body_format(&h).is_err());
        for (ct, want) in [
            ("application/json; charset=utf-8", Format::Json),
            ("application/yaml", Format::Yaml),
            ("text/yaml", Format::Yaml),
            ("Application/X-YAML", Format::Yaml),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(body_format(&h).unwrap(), want, "{ct}");
        }
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(body_format(&h).is_err());
    }
}
