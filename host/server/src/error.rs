//! The API's one error type, rendered as `application/problem+json`
//! (RFC 9457), and the JSON/query extractors whose rejections use it.
//!
//! Each case maps to a status once, here. A 5xx body never carries internal
//! detail; the cause is logged in the request's span instead.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Largest JSON body accepted by [`ApiJson`], in bytes.
pub const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// One field-level problem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// Where: a JSON pointer into the body (`/role`) or a query parameter
    /// (`query.role`) or header (`header.authorization`).
    pub field: String,
    pub message: String,
}

/// The problems of one entity in a batch.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EntityProblems {
    /// Its position among the batch's entities (0-based).
    pub index: usize,
    /// The YAML document it came from (0-based; 0 for JSON).
    pub document: usize,
    /// `kind:namespace/name` as far as it could be read, else `null`.
    #[serde(rename = "ref")]
    pub entity_ref: Option<String>,
    /// Each problem, `field` a JSON pointer into the entity.
    pub errors: Vec<FieldError>,
}

/// An API error.
#[derive(Debug)]
pub enum ApiError {
    /// The body is not JSON at all, or not the expected media type.
    BadRequest {
        detail: String,
        field: Option<String>,
    },
    /// Well-formed but invalid input; every field at fault is listed.
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// Invalid entities in a batch: every bad entity with its problems.
    /// Rendered like [`ApiError::Invalid`] (each problem in `errors`, its
    /// field prefixed with the entity's index) plus an `entities` list.
    InvalidEntities {
        detail: String,
        entities: Vec<EntityProblems>,
    },
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    /// The request conflicts with the resource's state (e.g. the entity
    /// belongs to a catalog source).
    Conflict(String),
    /// An `If-Match` precondition does not hold.
    PreconditionFailed(String),
    MethodNotAllowed,
    UnsupportedMediaType(String),
    PayloadTooLarge(String),
    Unavailable(String),
    /// A bug or a failed dependency; `cause` is logged, never sent.
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let (field, message) = (field.into(), message.into());
        ApiError::Invalid {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError { field, message }],
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest { .. } => {
                (StatusCode::BAD_REQUEST, "bad-request", "Malformed request")
            }
            ApiError::Invalid { .. } | ApiError::InvalidEntities { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid input",
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
            ),
            ApiError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl From<portolan_store::StoreError> for ApiError {
    /// A database that is busy or out of reach for the moment is a 503 the
    /// client may retry (the store's pool gives up on a free connection
    /// after `ACQUIRE_TIMEOUT`; SQLite answers "busy" or "locked" past its
    /// busy timeout); anything else is a 500.
    fn from(e: portolan_store::StoreError) -> Self {
        if e.is_busy() {
            tracing::warn!(
                error = format!("{:#}", anyhow::Error::new(e)),
                "the database is busy; answering 503"
            );
            return ApiError::Unavailable(
                "the database is busy or unreachable for the moment; retry shortly".into(),
            );
        }
        ApiError::Internal(anyhow::Error::new(e))
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entities: Vec<EntityProblems>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let mut entities = Vec::new();
        let (detail, field, errors) = match self {
            ApiError::BadRequest { detail, field } => (detail, field, vec![]),
            ApiError::Invalid { detail, errors } => {
                (detail, errors.first().map(|e| e.field.clone()), errors)
            }
            ApiError::InvalidEntities {
                detail,
                entities: bad,
            } => {
                let errors: Vec<FieldError> = bad
                    .iter()
                    .flat_map(|e| {
                        e.errors.iter().map(move |f| FieldError {
                            field: format!("/{}{}", e.index, f.field.trim_end_matches('/')),
                            message: f.message.clone(),
                        })
                    })
                    .collect();
                entities = bad;
                (detail, errors.first().map(|e| e.field.clone()), errors)
            }
            ApiError::Unauthenticated(d) => (d, Some("header.authorization".into()), vec![]),
            ApiError::Forbidden(d)
            | ApiError::NotFound(d)
            | ApiError::Conflict(d)
            | ApiError::PreconditionFailed(d)
            | ApiError::UnsupportedMediaType(d)
            | ApiError::PayloadTooLarge(d)
            | ApiError::Unavailable(d) => (d, None, vec![]),
            ApiError::MethodNotAllowed => (
                "this resource does not support the request's method".into(),
                None,
                vec![],
            ),
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                (
                    "the server failed to handle the request; the cause is in its log".into(),
                    None,
                    vec![],
                )
            }
        };
        let body = Problem {
            kind: format!("https://portolan.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail,
            field,
            errors,
            entities,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(PROBLEM_JSON),
        );
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"portolan\""),
            );
        }
        resp
    }
}

/// A JSON body whose every failure is an [`ApiError`] naming the field at
/// fault (a JSON pointer), so malformed input never gets a bare-text reply.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim();
                m.eq_ignore_ascii_case("application/json") || m.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(format!(
                        "the body is larger than {MAX_JSON_BODY} bytes"
                    ))
                } else {
                    ApiError::BadRequest {
                        detail: format!("cannot read the body: {e}"),
                        field: None,
                    }
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON text into `T`, pointing at the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let pointer = pointer_of(&path, &inner.to_string());
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let message = strip_position(&inner.to_string());
                    Err(ApiError::Invalid {
                        detail: format!("{pointer}: {message}"),
                        errors: vec![FieldError {
                            field: pointer,
                            message,
                        }],
                    })
                }
                _ => Err(ApiError::BadRequest {
                    detail: format!("the body is not valid JSON: {inner}"),
                    field: None,
                }),
            }
        }
    }
}

/// Turns serde_path_to_error's `a.b[0]` into a JSON pointer `/a/b/0`; for an
/// unknown field the pointer names that field.
fn pointer_of(path: &str, message: &str) -> String {
    let mut pointer = String::new();
    if path != "." {
        for seg in path.split('.') {
            let mut rest = seg;
            if let Some(i) = rest.find('[') {
                pointer.push('/');
                pointer.push_str(&rest[..i]);
                rest = &rest[i..];
                for idx in rest.split('[').filter(|s| !s.is_empty()) {
                    pointer.push('/');
                    pointer.push_str(idx.trim_end_matches(']'));
                }
            } else {
                pointer.push('/');
                pointer.push_str(rest);
            }
        }
    }
    if let Some(name) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        // serde reports an unknown field at its parent; name the field itself.
        if !pointer.ends_with(&format!("/{name}")) {
            pointer.push('/');
            pointer.push_str(name);
        }
    }
    if pointer.is_empty() {
        "/".to_owned()
    } else {
        pointer
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Query parameters whose failures are [`ApiError`]s naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                let name = message
                    .strip_prefix("unknown field `")
                    .and_then(|r| r.split('`').next())
                    .map(str::to_owned)
                    .unwrap_or(path);
                ApiError::invalid(format!("query.{name}"), message)
            })
    }
}

/// The fallback for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".into())
}

/// The fallback for known paths with an unsupported method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        role: String,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::Invalid { errors, .. } => errors[0].field.clone(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_busy_database_is_a_503_and_other_store_failures_a_500() {
        let status = |e: portolan_store::StoreError| ApiError::from(e).into_response().status();
        assert_eq!(
            status(portolan_store::StoreError::Database(
                sqlx::Error::PoolTimedOut
            )),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(portolan_store::StoreError::InvalidData("bad row".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(portolan_store::StoreError::Database(
                sqlx::Error::RowNotFound
            )),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn wrong_type_points_at_the_nested_field() {
        let e = parse_json::<Body>(br#"{"role":"a","items":[{"n":1},{"n":"x"}]}"#).unwrap_err();
        assert_eq!(field_of(e), "/items/1/n");
    }

    #[test]
    fn unknown_field_is_named() {
        let e = parse_json::<Body>(br#"{"role":"a","items":[],"extra":1}"#).unwrap_err();
        assert_eq!(field_of(e), "/extra");
    }

    #[test]
    fn missing_field_is_a_validation_error() {
        let e = parse_json::<Body>(br#"{"items":[]}"#).unwrap_err();
        assert!(matches!(e, ApiError::Invalid { .. }));
    }

    #[test]
    fn syntax_error_is_a_bad_request() {
        let e = parse_json::<Body>(b"{not json").unwrap_err();
        assert!(matches!(e, ApiError::BadRequest { .. }));
    }
}
