//! The API's contract for bad input and authorization, driven through the
//! router with `oneshot`, on SQLite and on PostgreSQL.

use crate::common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use portolan::app::AppState;
use portolan_store::testing::TestDatabase;
use portolan_store::Role;
use serde_json::Value;
use tower::ServiceExt;

async fn state(database_url: String, dir: &std::path::Path) -> AppState {
    let config = common::config(dir, database_url);
    let state = portolan::app::build(config).await.unwrap();
    state.registry.scan().await;
    state
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Value,
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some((ct, b)) => req
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(b.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = portolan::api::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        content_type,
        body,
    }
}

fn assert_problem(r: &Reply, status: StatusCode, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(r.body["status"], status.as_u16());
    assert!(r.body["type"]
        .as_str()
        .unwrap()
        .starts_with("https://portolan.dev/problems/"));
    assert!(!r.body["detail"].as_str().unwrap().is_empty());
    if let Some(f) = field {
        assert_eq!(r.body["field"], f, "{}", r.body);
    }
}

async fn contract(state: AppState) {
    let admin = state
        .store
        .create_token(Role::Admin, "admin")
        .await
        .unwrap()
        .secret;
    let member = state
        .store
        .create_token(Role::Member, "member")
        .await
        .unwrap()
        .secret;
    let viewer = state
        .store
        .create_token(Role::Viewer, "viewer")
        .await
        .unwrap()
        .secret;
    let json_ct = "application/json";

    // Missing, malformed and unknown tokens.
    let r = call(&state, "GET", "/api/v1/plugins", None, None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, Some("header.authorization"));
    let r = call(&state, "GET", "/api/v1/plugins", Some("ptl_0000"), None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, None);
    let r = call(&state, "GET", "/api/v1/plugins", Some(&viewer), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 0);

    // Wrong role for a mutation.
    let body = r#"{"role":"viewer"}"#;
    let r = call(
        &state,
        "POST",
        "/api/v1/tokens",
        Some(&member),
        Some((json_ct, body)),
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN, None);
    assert!(r.body["detail"].as_str().unwrap().contains("admin"));
    let r = call(
        &state,
        "POST",
        "/api/v1/tokens",
        None,
        Some((json_ct, body)),
    )
    .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, None);

    // Bad JSON, unknown fields, wrong types, bad values, wrong media type.
    let r = call(
        &state,
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        Some((json_ct, "{\"role\":")),
    )
    .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, None);
    let r = call(
        &state,
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        Some((json_ct, r#"{"role":"viewer","rol":"x"}"#)),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("/rol"));
    let r = call(
        &state,
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        Some((json_ct, r#"{"role":7}"#)),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("/role"));
    let r = call(
        &state,
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        Some((json_ct, r#"{"role":"root"}"#)),
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("/role"));
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("viewer, member, admin"));
    let r = call(
        &state,
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        Some(("text/plain", body)),
    )
    .await;
    assert_problem(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);

    // Bad query parameters name the parameter.
    let r = call(
        &state,
        "GET",
        "/api/v1/plugins?role=wizard",
        Some(&viewer),
        None,
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("query.role"));
    let r = call(
        &state,
        "GET",
        "/api/v1/plugins?colour=red",
        Some(&viewer),
        None,
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("query.colour"));

    // Unknown things.
    let r = call(&state, "GET", "/api/v1/plugins/nope", Some(&viewer), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, None);
    let r = call(&state, "GET", "/api/v1/nowhere", Some(&viewer), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, None);
    let r = call(&state, "DELETE", "/api/v1/plugins", Some(&admin), None).await;
    assert_problem(&r, StatusCode::METHOD_NOT_ALLOWED, None);

    // The happy path: an admin creates a token that then works, lists it
    // (without secrets), revokes it, and it stops working.
    let r = call(
        &state,
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        Some((json_ct, r#"{"role":"viewer","description":"ci"}"#)),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let new_secret = r.body["token"].as_str().unwrap().to_owned();
    let new_id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["role"], "viewer");
    let r = call(&state, "GET", "/api/v1/plugins", Some(&new_secret), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&state, "GET", "/api/v1/tokens", Some(&admin), None).await;
    assert_eq!(r.body["total"], 4);
    assert!(!r.body.to_string().contains(&new_secret));
    let r = call(
        &state,
        "DELETE",
        &format!("/api/v1/tokens/{new_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&state, "GET", "/api/v1/plugins", Some(&new_secret), None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, None);
    let r = call(
        &state,
        "DELETE",
        &format!("/api/v1/tokens/{new_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_problem(&r, StatusCode::NOT_FOUND, None);

    // Open endpoints.
    let r = call(&state, "GET", "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&state, "GET", "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["database"], "ok");
}

#[tokio::test]
async fn api_contract_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite(dir.path()).await;
    contract(state(db.url.clone(), dir.path()).await).await;
}

#[tokio::test]
async fn api_contract_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::postgres().await;
    let s = state(db.url.clone(), dir.path()).await;
    contract(s.clone()).await;
    s.store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn metrics_and_openapi_describe_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::sqlite(dir.path()).await;
    let state = state(db.url.clone(), dir.path()).await;
    let _ = call(&state, "GET", "/healthz", None, None).await;

    let req = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let resp = portolan::api::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("portolan_http_responses_total{class=\"2xx\"} "),
        "{text}"
    );
    assert!(
        text.contains("portolan_plugins{status=\"ready\"} 0"),
        "{text}"
    );

    let doc = call(&state, "GET", "/api/openapi.json", None, None)
        .await
        .body;
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in portolan::openapi::OPERATIONS {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
        // Every documented operation is routed: it answers something other than 404.
        let uri = path.replace("{id}", "x");
        let r = call(&state, &method.to_uppercase(), &uri, None, None).await;
        let routed = r.status != StatusCode::NOT_FOUND || r.body["detail"] != "no such resource";
        assert!(routed, "{method} {path} is documented but not routed");
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|ops| ops.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, portolan::openapi::OPERATIONS.len());
}
