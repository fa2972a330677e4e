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
//! - `GET /entities` (viewer): filters on any field (`filter`, `label`,
//!   `annotation` and the typed ones), full-text search (`q`), `sort` on
//!   any field, field selection (`fields`), `limit` and an opaque cursor.
//! - `GET /entities/facets` (viewer): counts per value of each `field`
//!   under the same filters.
//! - `GET /entities/{kind}/{namespace}/{name}/relations` (viewer): the
//!   relation graph around one entity, to a `depth`.
//!
//! Bodies are read here rather than through [`crate::error::ApiJson`]: they
//! may be YAML, and the batch route takes far more than the usual limit.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use portolan_catalog::{parse_documents, Document, Entity, EntityRef, Format, RefDefaults};
use portolan_store::{
    Cursor, Direction, EntityQuery, FieldFilter, FieldPath, GraphQuery, IfMatch, Origin, Role,
    SortKey, StoreError, StoredEntity, WriteOutcome,
};
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, EntityProblems, FieldError, MAX_JSON_BODY};

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
        .route("/entities/facets", get(facets))
        .route("/entities/batch", post(batch))
        .route(
            "/entities/{kind}/{namespace}/{name}",
            get(get_one).put(put_one).delete(delete_one),
        )
        .route(
            "/entities/{kind}/{namespace}/{name}/relations",
            get(relations),
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
    let (bytes, format) = read_body(headers, body, limit).await?;
    // Parsing a large YAML body takes a while; keep it off the async threads.
    tokio::task::spawn_blocking(move || parse_body(&bytes, format))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
}

fn parse_body(bytes: &[u8], format: Format) -> Result<Vec<Document>, ApiError> {
    parse_documents(bytes, format).map_err(|e| ApiError::BadRequest {
        detail: e.to_string(),
        field: None,
    })
}

/// Reads a body of entity documents, at most `limit` bytes, with the
/// format its `Content-Type` names.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<(Bytes, Format), ApiError> {
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
    Ok((bytes, format))
}

/// The reference of a document that may not validate, for errors (and, in
/// a source sync, to keep the last good version of an entity it refused).
pub(crate) fn rough_ref(value: &Value) -> Option<EntityRef> {
    let kind = value.get("kind")?.as_str()?;
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(portolan_catalog::DEFAULT_NAMESPACE);
    Some(EntityRef::new(kind, namespace, name))
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
    if outcome != WriteOutcome::Unchanged {
        crate::evaluate::catalog_changed(&state, vec![stored.entity.entity_ref().key()], false)
            .await;
    }
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
        crate::evaluate::catalog_changed(&state, vec![wanted.key()], false).await;
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
    let (bytes, format) = read_body(&headers, body, MAX_BATCH_BODY).await?;
    let (entities, bad) = tokio::task::spawn_blocking(move || read_batch(&bytes, format))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
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
    if summary.added + summary.updated > 0 {
        let refs = entities.iter().map(|e| e.entity_ref().key()).collect();
        crate::evaluate::catalog_changed(&state, refs, false).await;
    }
    Ok(Json(json!({
        "total": entities.len(),
        "added": summary.added,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
    })))
}

/// Documents one validation worker takes at least: below this, handing
/// work to another thread costs more than it saves.
const MIN_DOCUMENTS_PER_THREAD: usize = 500;

/// Parses and validates a batch's body: its entities, or every bad one
/// with its problems.
///
/// A JSON array, the usual batch, is parsed element by element on every
/// core, each element validated as soon as it is parsed, rather than
/// parsed whole on one thread first (10-20 ms of a 10,000-entity batch's
/// 400-500 ms, measured with the catalog bench's batches). If
/// any element fails to parse, the whole body is parsed again the plain
/// way, so the error names the line and column in the body as it always
/// has. Other bodies (YAML, one entity, `{"items": [...]}`) are parsed
/// whole, then validated in parallel.
fn read_batch(
    bytes: &[u8],
    format: Format,
) -> Result<(Vec<Entity>, Vec<EntityProblems>), ApiError> {
    use rayon::prelude::*;
    let too_many = |n: usize| {
        ApiError::PayloadTooLarge(format!(
            "{n} entities in one batch; at most {MAX_BATCH_ENTITIES} are allowed"
        ))
    };
    let items = match format {
        Format::Json => portolan_catalog::json_array_items(bytes),
        Format::Yaml => None,
    };
    if let Some(items) = items {
        if items.len() > MAX_BATCH_ENTITIES {
            return Err(too_many(items.len()));
        }
        let checked: Option<Vec<Checked>> = items
            .into_par_iter()
            .with_min_len(MIN_DOCUMENTS_PER_THREAD)
            .enumerate()
            .map(|(index, range)| {
                let value = serde_json::from_slice(&bytes[range]).ok()?;
                Some(check_document(index, Document { document: 0, value }))
            })
            .collect();
        if let Some(checked) = checked {
            return Ok(sort_checked(checked));
        }
    }
    let docs = parse_body(bytes, format)?;
    if docs.len() > MAX_BATCH_ENTITIES {
        return Err(too_many(docs.len()));
    }
    Ok(validate_batch(docs))
}

/// One document after validation, with what the batch's answer needs.
struct Checked {
    index: usize,
    document: usize,
    /// The entity's key, or, when it is invalid, its reference as far as
    /// it can be read.
    entity: Result<(Entity, String), (Option<String>, portolan_catalog::InvalidEntity)>,
}

fn check_document(index: usize, doc: Document) -> Checked {
    let rough = rough_ref(&doc.value);
    Checked {
        index,
        document: doc.document,
        entity: match Entity::from_value(doc.value) {
            Ok(entity) => {
                let key = entity.entity_ref().key();
                Ok((entity, key))
            }
            Err(e) => Err((rough.map(|r| r.to_string()), e)),
        },
    }
}

/// Validates every document; returns the entities, or every bad one with
/// its problems (invalid content, or the same entity twice).
///
/// Validation is CPU work per document, the bulk of a batch's time outside
/// the database: the documents are split over the cores, in order, and the
/// results put back in order to look for repeats.
fn validate_batch(docs: Vec<Document>) -> (Vec<Entity>, Vec<EntityProblems>) {
    use rayon::prelude::*;
    let checked: Vec<Checked> = docs
        .into_par_iter()
        .with_min_len(MIN_DOCUMENTS_PER_THREAD)
        .enumerate()
        .map(|(index, doc)| check_document(index, doc))
        .collect();
    sort_checked(checked)
}

/// The valid entities of a checked batch, in order, and the bad ones,
/// including every repeat of an entity earlier in the batch.
fn sort_checked(checked: Vec<Checked>) -> (Vec<Entity>, Vec<EntityProblems>) {
    let mut entities = Vec::with_capacity(checked.len());
    let mut bad = Vec::new();
    let mut first_seen = std::collections::HashMap::new();
    for Checked {
        index,
        document,
        entity,
    } in checked
    {
        match entity {
            Ok((entity, key)) => {
                if let Some(earlier) = first_seen.insert(key, index) {
                    bad.push(EntityProblems {
                        index,
                        document,
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
            Err((rough, e)) => bad.push(EntityProblems {
                index,
                document,
                entity_ref: rough,
                errors: problems_of(e),
            }),
        }
    }
    (entities, bad)
}

// ---------------------------------------------------------------------------
// The query side: GET /entities, /entities/facets and .../relations.
//
// Query strings are read here rather than through ApiQuery: several
// parameters repeat (`filter`, `label`, `sort`, ...), which serde's
// urlencoded format cannot collect, and every problem is a 400 naming the
// parameter.

/// The filter parameters `GET /entities` and `GET /entities/facets` share.
const FILTER_PARAMS: &[&str] = &[
    "kind",
    "namespace",
    "owner",
    "lifecycle",
    "type",
    "tag",
    "label",
    "annotation",
    "filter",
    "q",
];

/// The page parameters of `GET /entities`.
const PAGE_PARAMS: &[&str] = &["limit", "cursor", "sort", "fields"];

/// Longest `q`, in characters.
pub const MAX_SEARCH_LEN: usize = 200;

/// Most conditions (`filter`, `label`, `annotation` and the typed filters,
/// each occurrence counting once) in one query: each is a clause of every
/// statement the query runs.
pub const MAX_CONDITIONS: usize = 50;

/// Most `fields` of one facets call; each is one statement.
pub const MAX_FACET_FIELDS: usize = 20;

/// Most `fields` selected per item.
pub const MAX_SELECTED_FIELDS: usize = 50;

fn bad_param(name: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest {
        detail: format!("query.{name}: {message}"),
        field: Some(format!("query.{name}")),
    }
}

/// A query string's parameters, in order, each name checked against the
/// ones the route takes.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<&str>, allowed: &[&[&str]]) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (name, _) in &pairs {
            if !allowed.iter().any(|set| set.contains(&name.as_str())) {
                let mut known: Vec<&str> = allowed.iter().flat_map(|s| s.iter().copied()).collect();
                known.sort_unstable();
                return Err(bad_param(
                    name,
                    format!(
                        "unknown parameter; this resource takes {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(Params(pairs))
    }

    /// Every value of a repeatable parameter.
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a parameter that may appear once.
    fn one<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, ApiError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(bad_param(name, "given more than once"));
        }
        Ok(first)
    }

    /// Every comma-separated item of every occurrence, trimmed, empty ones
    /// dropped.
    fn items<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all(name).flat_map(split_values)
    }
}

/// `a, b,,c` → `["a", "b", "c"]`.
fn split_values(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// `key=v1,v2` → (`key`, [v1, v2]); `key` → (`key`, []), which asks for
/// the field's presence.
fn key_and_values<'a>(name: &str, raw: &'a str) -> Result<(&'a str, Vec<String>), ApiError> {
    match raw.split_once('=') {
        None => Ok((raw.trim(), Vec::new())),
        Some((key, values)) => {
            let values: Vec<String> = split_values(values).map(str::to_owned).collect();
            if values.is_empty() {
                return Err(bad_param(
                    name,
                    format!(
                        "{raw:?} has no value after '='; write {key}=VALUE, or {key} alone to ask that it is present"
                    ),
                ));
            }
            Ok((key.trim(), values))
        }
    }
}

fn path_param(name: &str, text: &str) -> Result<FieldPath, ApiError> {
    FieldPath::parse(text).map_err(|e| bad_param(name, e))
}

/// The conditions and search shared by the list and the facets.
fn filtered_query(params: &Params) -> Result<EntityQuery, ApiError> {
    let mut query = EntityQuery::default();
    let mut add = |name: &str, filter: Result<FieldFilter, String>| {
        query.filters.push(filter.map_err(|e| bad_param(name, e))?);
        Ok::<_, ApiError>(())
    };
    // The typed filters: each occurrence is one condition whose values
    // are alternatives; empty ones are no condition, as they always were.
    for (name, path) in [
        ("kind", "kind"),
        ("namespace", "metadata.namespace"),
        ("lifecycle", "spec.lifecycle"),
        ("type", "spec.type"),
        ("tag", "metadata.tags"),
    ] {
        for raw in params.all(name) {
            let values: Vec<String> = split_values(raw).map(str::to_owned).collect();
            if !values.is_empty() {
                add(name, FieldFilter::new(path_param(name, path)?, values))?;
            }
        }
    }
    for raw in params.all("owner") {
        let owners = split_values(raw)
            .map(|o| {
                EntityRef::parse(
                    o,
                    RefDefaults {
                        kind: Some("Group"),
                        namespace: portolan_catalog::DEFAULT_NAMESPACE,
                    },
                )
                .map(|r| r.key())
                .map_err(|e| bad_param("owner", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !owners.is_empty() {
            add(
                "owner",
                FieldFilter::new(path_param("owner", "relations.ownedBy")?, owners),
            )?;
        }
    }
    for map in ["label", "annotation"] {
        for raw in params.all(map) {
            let (key, values) = key_and_values(map, raw)?;
            let path =
                FieldPath::map_entry(&format!("{map}s"), key).map_err(|e| bad_param(map, e))?;
            add(map, FieldFilter::new(path, values))?;
        }
    }
    for raw in params.all("filter") {
        let (path, values) = key_and_values("filter", raw)?;
        add(
            "filter",
            FieldFilter::new(path_param("filter", path)?, values),
        )?;
    }
    if query.filters.len() > MAX_CONDITIONS {
        return Err(bad_param(
            "filter",
            format!("at most {MAX_CONDITIONS} conditions per query"),
        ));
    }
    if let Some(q) = params.one("q")? {
        if q.chars().count() > MAX_SEARCH_LEN {
            return Err(bad_param(
                "q",
                format!("at most {MAX_SEARCH_LEN} characters"),
            ));
        }
        if !q.trim().is_empty() {
            let terms = portolan_store::query::search_terms(q);
            if terms.is_empty() {
                return Err(bad_param("q", "search for at least one letter or digit"));
            }
            if terms.len() > portolan_store::query::MAX_SEARCH_TERMS {
                return Err(bad_param(
                    "q",
                    format!("at most {} words", portolan_store::query::MAX_SEARCH_TERMS),
                ));
            }
            query.search = Some(q.to_owned());
        }
    }
    Ok(query)
}

/// `fields=metadata.name,spec.owner`: what each item keeps, besides its
/// identity.
fn selected_fields(params: &Params) -> Result<Option<Vec<FieldPath>>, ApiError> {
    if params.all("fields").next().is_none() {
        return Ok(None);
    }
    let fields = params
        .items("fields")
        .map(|text| {
            let path = path_param("fields", text)?;
            if path.segments()[0] == "relations" && path.segments().len() > 1 {
                return Err(bad_param(
                    "fields",
                    "select relations as a whole (fields=relations)",
                ));
            }
            Ok(path)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if fields.is_empty() {
        return Err(bad_param(
            "fields",
            "name at least one field, e.g. fields=metadata.name",
        ));
    }
    if fields.len() > MAX_SELECTED_FIELDS {
        return Err(bad_param(
            "fields",
            format!("at most {MAX_SELECTED_FIELDS} fields"),
        ));
    }
    Ok(Some(fields))
}

/// Every item keeps these, whatever `fields` says, so a client can always
/// tell which entity it is looking at.
const IDENTITY: [&str; 3] = ["kind", "metadata.namespace", "metadata.name"];

/// The parts of `value` that `fields` name (and its identity), at the same
/// paths.
fn project(value: &Value, fields: &[FieldPath]) -> Value {
    let identity = IDENTITY.map(|p| FieldPath::parse(p).expect("a valid path"));
    let mut out = Value::Object(serde_json::Map::new());
    for path in identity.iter().chain(fields) {
        if let Some(found) = path.lookup(value) {
            insert_at(&mut out, path.segments(), found.clone());
        }
    }
    out
}

/// Sets `value` at `segments` under `target`, making the objects on the
/// way.
fn insert_at(target: &mut Value, segments: &[String], value: Value) {
    let Value::Object(object) = target else {
        return;
    };
    match segments {
        [] => {}
        [last] => {
            object.insert(last.clone(), value);
        }
        [first, rest @ ..] => insert_at(
            object
                .entry(first.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new())),
            rest,
            value,
        ),
    }
}

fn sort_keys(params: &Params) -> Result<Vec<SortKey>, ApiError> {
    let keys = params
        .items("sort")
        .map(|item| {
            let (descending, text) = match item.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, item.strip_prefix('+').unwrap_or(item)),
            };
            SortKey::new(path_param("sort", text)?, descending).map_err(|e| bad_param("sort", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.len() > portolan_store::query::MAX_SORT_KEYS {
        return Err(bad_param(
            "sort",
            format!(
                "at most {} sort fields",
                portolan_store::query::MAX_SORT_KEYS
            ),
        ));
    }
    Ok(keys)
}

/// `GET /api/v1/entities`.
async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref(), &[FILTER_PARAMS, PAGE_PARAMS])?;
    let mut query = filtered_query(&params)?;
    query.limit = match params.one("limit")? {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=portolan_store::MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                bad_param(
                    "limit",
                    format!(
                        "{text:?} is not a number between 1 and {}",
                        portolan_store::MAX_PAGE_SIZE
                    ),
                )
            })?,
    };
    query.sort = sort_keys(&params)?;
    let fields = selected_fields(&params)?;
    if let Some(fields) = &fields {
        query.skip_relations = !fields.iter().any(|f| f.segments()[0] == "relations");
    }
    if let Some(text) = params.one("cursor")? {
        query.cursor = Some(Cursor::decode(text, &query).map_err(|e| bad_param("cursor", e))?);
    }
    let page = state.store.list_entities(&query).await?;
    let items = page
        .items
        .iter()
        .map(|stored| {
            let value = entity_json(stored)?;
            Ok(match &fields {
                Some(fields) => project(&value, fields),
                None => value,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(json!({
        "items": items,
        "total": page.total,
        "nextCursor": page.next_cursor.as_ref().map(Cursor::encode),
    })))
}

/// `GET /api/v1/entities/facets`.
async fn facets(
    State(state): State<AppState>,
    _caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref(), &[FILTER_PARAMS, &["field"]])?;
    let query = filtered_query(&params)?;
    let mut fields: Vec<FieldPath> = Vec::new();
    for text in params.items("field") {
        let path = path_param("field", text)?;
        if path.segments() == ["relations"] {
            return Err(bad_param(
                "field",
                "count relations of one type, e.g. field=relations.ownedBy",
            ));
        }
        if !fields.contains(&path) {
            fields.push(path);
        }
    }
    if fields.is_empty() {
        return Err(bad_param(
            "field",
            "name at least one field to count, e.g. field=spec.lifecycle",
        ));
    }
    if fields.len() > MAX_FACET_FIELDS {
        return Err(bad_param(
            "field",
            format!("at most {MAX_FACET_FIELDS} fields per call"),
        ));
    }
    let counted = state.store.entity_facets(&query, &fields).await?;
    let facets: serde_json::Map<String, Value> = counted
        .into_iter()
        .map(|(field, counts)| {
            let counts: Vec<Value> = counts
                .into_iter()
                .map(|c| json!({"value": c.value, "count": c.count}))
                .collect();
            (field, Value::Array(counts))
        })
        .collect();
    Ok(Json(json!({ "facets": facets })))
}

/// `GET /api/v1/entities/{kind}/{namespace}/{name}/relations`.
async fn relations(
    State(state): State<AppState>,
    _caller: Caller,
    EntityPath(root): EntityPath,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref(), &[&["depth", "direction", "type"]])?;
    let max = portolan_store::query::MAX_GRAPH_DEPTH;
    let depth = match params.one("depth")? {
        None => 1,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=max).contains(d))
            .ok_or_else(|| {
                bad_param("depth", format!("{text:?} is not a number from 1 to {max}"))
            })?,
    };
    let direction = match params.one("direction")? {
        None | Some("both") => Direction::Both,
        Some("outgoing") => Direction::Outgoing,
        Some("incoming") => Direction::Incoming,
        Some(other) => {
            return Err(bad_param(
                "direction",
                format!("{other:?}: expected outgoing, incoming or both"),
            ))
        }
    };
    let types: Vec<String> = params.items("type").map(str::to_owned).collect();
    let graph = state
        .store
        .relation_graph(&GraphQuery {
            root: root.clone(),
            depth,
            direction,
            types,
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no entity {root}")))?;
    let nodes: Vec<Value> = graph
        .nodes
        .iter()
        .map(|n| {
            let mut node = json!({"ref": n.entity_ref, "depth": n.depth});
            if let Some(e) = &n.entity {
                node["kind"] = json!(e.kind);
                node["namespace"] = json!(e.namespace);
                node["name"] = json!(e.name);
                if let Some(title) = &e.title {
                    node["title"] = json!(title);
                }
            }
            node
        })
        .collect();
    let edges: Vec<Value> = graph
        .edges
        .iter()
        .map(|e| json!({"source": e.source, "type": e.kind, "target": e.target}))
        .collect();
    Ok(Json(json!({
        "root": graph.nodes.first().map(|n| n.entity_ref.clone()),
        "nodes": nodes,
        "edges": edges,
        "truncated": graph.truncated,
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

    fn params(raw: &str) -> Params {
        Params::parse(Some(raw), &[FILTER_PARAMS, PAGE_PARAMS]).unwrap()
    }

    fn field_of(e: ApiError) -> Option<String> {
        match e {
            ApiError::BadRequest { field, .. } => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn parameters_repeat_and_split_at_commas() {
        let p = params("kind=component,api&kind=&label=tier%3Dgold&label=team&filter=spec.system%3Dshop,web&q=pay");
        let q = filtered_query(&p).unwrap();
        let shown: Vec<(String, Vec<String>)> = q
            .filters
            .iter()
            .map(|f| (f.path.to_string(), f.values.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "kind".to_owned(),
                    vec!["component".to_owned(), "api".to_owned()]
                ),
                ("metadata.labels.tier".to_owned(), vec!["gold".to_owned()]),
                ("metadata.labels.team".to_owned(), vec![]),
                (
                    "spec.system".to_owned(),
                    vec!["shop".to_owned(), "web".to_owned()]
                ),
            ]
        );
        assert_eq!(q.search.as_deref(), Some("pay"));
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let bad = |raw: &str| {
            Params::parse(Some(raw), &[FILTER_PARAMS, PAGE_PARAMS])
                .and_then(|p| {
                    filtered_query(&p)
                        .and(sort_keys(&p))
                        .and(selected_fields(&p))
                })
                .err()
                .map(field_of)
        };
        let named = |name: &str| Some(Some(format!("query.{name}")));
        assert_eq!(bad("colour=red"), named("colour"));
        assert_eq!(bad("filter=spec..x"), named("filter"));
        assert_eq!(bad("filter=spec.x%3D"), named("filter"));
        assert_eq!(bad("label=a%20b"), named("label"));
        assert_eq!(bad("annotation=x%3D"), named("annotation"));
        assert_eq!(bad("sort=metadata.tags"), named("sort"));
        assert_eq!(bad("sort=-"), named("sort"));
        assert_eq!(bad("fields=relations.ownedBy"), named("fields"));
        assert_eq!(bad("fields=,"), named("fields"));
        assert_eq!(bad("q=%21%21"), named("q"));
        assert_eq!(bad("q=a&q=b"), named("q"));
        assert_eq!(bad("owner=a:b:c/"), named("owner"));
        assert_eq!(
            bad("kind=component&sort=metadata.name&fields=spec.owner"),
            None
        );
    }

    #[test]
    fn projection_keeps_identity_and_the_named_fields() {
        let entity = json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "web", "namespace": "default", "title": "Web",
                         "annotations": {"backstage.io/techdocs-ref": "dir:."}},
            "spec": {"owner": "team-a", "profile": {"email": "a@b"}},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/team-a"}]
        });
        let fields = |list: &[&str]| {
            list.iter()
                .map(|f| FieldPath::parse(f).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            project(
                &entity,
                &fields(&[
                    "spec.owner",
                    "metadata.annotations.backstage.io/techdocs-ref",
                    "spec.nothing"
                ])
            ),
            json!({"kind": "Component",
                   "metadata": {"name": "web", "namespace": "default",
                                "annotations": {"backstage.io/techdocs-ref": "dir:."}},
                   "spec": {"owner": "team-a"}})
        );
        assert_eq!(
            project(&entity, &fields(&["relations"]))["relations"],
            entity["relations"]
        );
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
