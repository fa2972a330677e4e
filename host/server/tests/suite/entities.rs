//! The catalog API (`/api/v1/entities`) through the router with `oneshot`,
//! on SQLite and on PostgreSQL: every scenario in `scenarios` runs once per
//! backend on a fresh database.

use crate::common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use portolan::app::AppState;
use portolan_store::testing::TestDatabase;
use portolan_store::Role;
use serde_json::{json, Value};
use tower::ServiceExt;

on_both_backends!(
    backstage_yaml_imports_with_relations_both_ways,
    example_catalog_imports_unchanged,
    batch_is_all_or_nothing,
    batch_of_ten_thousand,
    resending_keeps_the_revision,
    if_match_gives_optimistic_concurrency,
    filters_and_pages,
    bad_input_is_a_problem_naming_the_field,
);

/// What a scenario gets: the app and a token per role.
struct Ctx {
    state: AppState,
    member: String,
    viewer: String,
}

async fn run<F, Fut>(db: TestDatabase, dir: tempfile::TempDir, scenario: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let config = common::config(dir.path(), db.url.clone());
    let state = portolan::app::build(config).await.unwrap();
    let token = |role| {
        let store = state.store.clone();
        async move { store.create_token(role, "test").await.unwrap().secret }
    };
    let ctx = Ctx {
        member: token(Role::Member).await,
        viewer: token(Role::Viewer).await,
        state: state.clone(),
    };
    scenario(ctx).await;
    state.store.close().await;
    db.drop_db().await;
}

struct Reply {
    status: StatusCode,
    content_type: String,
    etag: Option<String>,
    body: Value,
}

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some((ct, b)) => req.header(header::CONTENT_TYPE, ct).body(Body::from(b)),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = portolan::api::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let header_text = |name| {
        resp.headers()
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let content_type = header_text(header::CONTENT_TYPE).unwrap_or_default();
    let etag = header_text(header::ETAG);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        content_type,
        etag,
        body,
    }
}

impl Ctx {
    async fn get(&self, uri: &str) -> Reply {
        call(&self.state, "GET", uri, &self.viewer, &[], None).await
    }

    async fn send(&self, method: &str, uri: &str, ct: &str, body: impl Into<Vec<u8>>) -> Reply {
        call(
            &self.state,
            method,
            uri,
            &self.member,
            &[],
            Some((ct, body.into())),
        )
        .await
    }

    async fn batch_json(&self, entities: &[Value]) -> Reply {
        self.send(
            "POST",
            "/api/v1/entities/batch",
            JSON,
            serde_json::to_vec(entities).unwrap(),
        )
        .await
    }

    async fn total(&self, query: &str) -> u64 {
        let r = self.get(&format!("/api/v1/entities?{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["total"].as_u64().unwrap()
    }
}

fn assert_problem(r: &Reply, status: StatusCode, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json", "{}", r.body);
    assert_eq!(r.body["status"], status.as_u16());
    assert!(!r.body["detail"].as_str().unwrap_or("").is_empty());
    if let Some(f) = field {
        assert_eq!(r.body["field"], f, "{}", r.body);
    }
}

fn relations(entity: &Value) -> Vec<String> {
    let mut out: Vec<String> = entity["relations"]
        .as_array()
        .map(|rels| {
            rels.iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        r["type"].as_str().unwrap(),
                        r["targetRef"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn component(name: &str, owner: &str) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": name},
        "spec": {"type": "service", "lifecycle": "production", "owner": owner}
    })
}

/// A Backstage catalog-info.yaml as people write them: several documents,
/// shorthand references, comments, a leading `---`.
const CATALOG_INFO: &str = r#"---
# The payments domain and everything in it.
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata:
  name: payments
spec:
  owner: finance
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: checkout
spec:
  owner: group:default/payments-team
  domain: payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-service
  description: Takes card payments.
  annotations:
    github.com/project-slug: acme/payments-service
  tags: [java, payments]
  links:
    - url: https://grafana.example.com/d/payments
      title: Dashboard
spec:
  type: service
  lifecycle: production
  owner: payments-team
  system: checkout
  providesApis: [payments-api]
  dependsOn: [resource:payments-db]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout-web
spec:
  type: website
  lifecycle: experimental
  owner: payments-team
  system: checkout
  consumesApis: [payments-api]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: payments-api
spec:
  type: openapi
  lifecycle: production
  owner: payments-team
  system: checkout
  definition: |
    openapi: 3.0.0
    info: {title: Payments, version: 1.0.0}
    paths: {}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: payments-db
spec:
  type: database
  owner: payments-team
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments-team
spec:
  type: team
  parent: engineering
  children: []
  members: [jdoe]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jdoe
spec:
  profile: {displayName: Jane Doe, email: jdoe@example.com}
  memberOf: [payments-team]
---
"#;

mod scenarios {
    use super::*;

    pub async fn backstage_yaml_imports_with_relations_both_ways(ctx: Ctx) {
        let r = ctx
            .send("POST", "/api/v1/entities/batch", YAML, CATALOG_INFO)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body,
            json!({"total": 8, "added": 8, "updated": 0, "unchanged": 0})
        );

        let service = ctx
            .get("/api/v1/entities/component/default/payments-service")
            .await;
        assert_eq!(service.status, StatusCode::OK, "{}", service.body);
        assert_eq!(
            relations(&service.body),
            vec![
                "dependsOn resource:default/payments-db",
                "ownedBy group:default/payments-team",
                "partOf system:default/checkout",
                "providesApi api:default/payments-api",
            ]
        );
        assert_eq!(service.body["metadata"]["namespace"], "default");
        assert_eq!(
            service.body["metadata"]["tags"],
            json!(["java", "payments"])
        );
        let etag = service.etag.clone().unwrap();
        assert_eq!(
            etag,
            format!("\"{}\"", service.body["metadata"]["etag"].as_str().unwrap())
        );

        let api = ctx.get("/api/v1/entities/api/default/payments-api").await;
        assert_eq!(
            relations(&api.body),
            vec![
                "apiConsumedBy component:default/checkout-web",
                "apiProvidedBy component:default/payments-service",
                "ownedBy group:default/payments-team",
                "partOf system:default/checkout",
            ]
        );
        let team = ctx
            .get("/api/v1/entities/group/default/payments-team")
            .await;
        assert_eq!(
            relations(&team.body),
            vec![
                "childOf group:default/engineering",
                "hasMember user:default/jdoe",
                "ownerOf api:default/payments-api",
                "ownerOf component:default/checkout-web",
                "ownerOf component:default/payments-service",
                "ownerOf resource:default/payments-db",
                "ownerOf system:default/checkout",
            ]
        );
        let user = ctx.get("/api/v1/entities/user/default/jdoe").await;
        assert_eq!(
            relations(&user.body),
            vec!["memberOf group:default/payments-team"]
        );
        let system = ctx.get("/api/v1/entities/system/default/checkout").await;
        assert_eq!(
            relations(&system.body),
            vec![
                "hasPart api:default/payments-api",
                "hasPart component:default/checkout-web",
                "hasPart component:default/payments-service",
                "ownedBy group:default/payments-team",
                "partOf domain:default/payments",
            ]
        );
        let domain = ctx.get("/api/v1/entities/domain/default/payments").await;
        assert_eq!(
            relations(&domain.body),
            vec![
                "hasPart system:default/checkout",
                "ownedBy group:default/finance"
            ]
        );
        let db = ctx
            .get("/api/v1/entities/resource/default/payments-db")
            .await;
        assert_eq!(
            relations(&db.body),
            vec![
                "dependencyOf component:default/payments-service",
                "ownedBy group:default/payments-team",
            ]
        );
        // Case-insensitive paths find the same entity.
        let again = ctx
            .get("/api/v1/entities/Component/Default/Payments-Service")
            .await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.etag.unwrap(), etag);
    }

    pub async fn example_catalog_imports_unchanged(ctx: Ctx) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no example catalog in {}", dir.display());
        for file in files {
            let text = std::fs::read(&file).unwrap();
            let r = ctx.send("POST", "/api/v1/entities/batch", YAML, text).await;
            assert_eq!(r.status, StatusCode::OK, "{}: {}", file.display(), r.body);
            assert!(r.body["added"].as_u64().unwrap() > 0, "{}", file.display());
        }
    }

    pub async fn batch_is_all_or_nothing(ctx: Ctx) {
        let mut batch: Vec<Value> = (0..300)
            .map(|i| component(&format!("svc-{i}"), "team-a"))
            .collect();
        batch[137]["spec"]["owner"] = json!("team a");
        batch[250]["metadata"]["name"] = json!("-bad-");
        batch[251]["metadata"]["name"] = json!("svc-3");
        let r = ctx.batch_json(&batch).await;
        assert_problem(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("/137/spec/owner"),
        );
        let bad = r.body["entities"].as_array().unwrap();
        assert_eq!(bad.len(), 3, "{}", r.body);
        assert_eq!(bad[0]["index"], 137);
        assert_eq!(bad[0]["ref"], "component:default/svc-137");
        assert_eq!(bad[0]["errors"][0]["field"], "/spec/owner");
        assert_eq!(bad[1]["index"], 250);
        assert_eq!(bad[1]["errors"][0]["field"], "/metadata/name");
        assert_eq!(bad[2]["index"], 251);
        assert!(bad[2]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("#3"));
        assert!(r.body["detail"]
            .as_str()
            .unwrap()
            .contains("3 of the batch"));
        assert_eq!(ctx.total("").await, 0, "nothing may be stored");

        // YAML: the error names the document too.
        let yaml = format!(
            "{}---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: broken\nspec:\n  type: service\n",
            CATALOG_INFO
        );
        let r = ctx.send("POST", "/api/v1/entities/batch", YAML, yaml).await;
        assert_problem(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("/8/spec/lifecycle"),
        );
        assert_eq!(r.body["entities"][0]["document"], 9);
        assert_eq!(r.body["entities"][0]["ref"], "component:default/broken");
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["/8/spec/lifecycle", "/8/spec/owner"]);
        assert_eq!(ctx.total("").await, 0);
    }

    pub async fn batch_of_ten_thousand(ctx: Ctx) {
        let batch: Vec<Value> = (0..10_000)
            .map(|i| {
                let mut c = component(&format!("svc-{i:05}"), &format!("team-{}", i % 10));
                // Long enough that the batch exceeds the usual JSON limit,
                // which the batch route must lift.
                c["metadata"]["description"] = json!("x".repeat(1_800));
                c["spec"]["dependsOn"] = json!([format!("resource:db-{}", i % 50)]);
                c
            })
            .collect();
        let body = json!({ "items": batch });
        let bytes = serde_json::to_vec(&body).unwrap();
        assert!(bytes.len() > portolan::error::MAX_JSON_BODY);
        let r = ctx
            .send("POST", "/api/v1/entities/batch", JSON, bytes.clone())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["added"], 10_000);
        let r = ctx
            .send("POST", "/api/v1/entities/batch", JSON, bytes)
            .await;
        assert_eq!(r.body["unchanged"], 10_000, "{}", r.body);
        assert_eq!(ctx.total("owner=team-3").await, 1_000);
        assert_eq!(ctx.total("").await, 10_000);
    }

    pub async fn resending_keeps_the_revision(ctx: Ctx) {
        let uri = "/api/v1/entities/component/default/web";
        let body = serde_json::to_vec(&component("web", "team-a")).unwrap();
        let first = ctx.send("PUT", uri, JSON, body.clone()).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        let etag = first.etag.clone().unwrap();
        let second = ctx.send("PUT", uri, JSON, body).await;
        assert_eq!(second.status, StatusCode::OK);
        assert_eq!(second.etag.as_ref(), Some(&etag));
        // What GET answers (relations, metadata.etag) can be PUT back as is.
        let got = ctx.get(uri).await;
        let third = ctx
            .send("PUT", uri, JSON, serde_json::to_vec(&got.body).unwrap())
            .await;
        assert_eq!(third.etag.as_ref(), Some(&etag), "{}", third.body);
        // The same in YAML, with keys in another order.
        let yaml = "kind: Component\napiVersion: backstage.io/v1alpha1\nspec:\n  owner: team-a\n  lifecycle: production\n  type: service\nmetadata:\n  name: web\n";
        let fourth = ctx.send("PUT", uri, YAML, yaml).await;
        assert_eq!(fourth.status, StatusCode::OK, "{}", fourth.body);
        assert_eq!(fourth.etag.as_ref(), Some(&etag));
        // A real change moves it.
        let changed = ctx
            .send(
                "PUT",
                uri,
                JSON,
                serde_json::to_vec(&component("web", "team-b")).unwrap(),
            )
            .await;
        assert_ne!(changed.etag.as_ref(), Some(&etag));
        let r = ctx.batch_json(&[component("web", "team-b")]).await;
        assert_eq!(
            r.body,
            json!({"total": 1, "added": 0, "updated": 0, "unchanged": 1})
        );
    }

    pub async fn if_match_gives_optimistic_concurrency(ctx: Ctx) {
        let uri = "/api/v1/entities/component/default/web";
        let body = serde_json::to_vec(&component("web", "team-a")).unwrap();
        let put_if = |if_match: &str, body: Vec<u8>| {
            let if_match = if_match.to_owned();
            let state = ctx.state.clone();
            let member = ctx.member.clone();
            async move {
                call(
                    &state,
                    "PUT",
                    uri,
                    &member,
                    &[("if-match", if_match.as_str())],
                    Some((JSON, body)),
                )
                .await
            }
        };
        // If-Match on an entity that does not exist: 412, nothing created.
        let r = put_if("*", body.clone()).await;
        assert_problem(&r, StatusCode::PRECONDITION_FAILED, None);
        assert_eq!(ctx.get(uri).await.status, StatusCode::NOT_FOUND);

        let created = ctx.send("PUT", uri, JSON, body).await;
        let etag = created.etag.unwrap();
        let changed = serde_json::to_vec(&component("web", "team-b")).unwrap();
        let r = put_if("\"0123456789abcdef\"", changed.clone()).await;
        assert_problem(&r, StatusCode::PRECONDITION_FAILED, None);
        assert!(r.body["detail"]
            .as_str()
            .unwrap()
            .contains(etag.trim_matches('"')));
        let r = put_if(&etag, changed).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let new_etag = r.etag.unwrap();
        assert_ne!(new_etag, etag);

        // Deletes honour it as well.
        let r = call(
            &ctx.state,
            "DELETE",
            uri,
            &ctx.member,
            &[("if-match", &etag)],
            None,
        )
        .await;
        assert_problem(&r, StatusCode::PRECONDITION_FAILED, None);
        let r = call(
            &ctx.state,
            "DELETE",
            uri,
            &ctx.member,
            &[("if-match", &new_etag)],
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = call(&ctx.state, "DELETE", uri, &ctx.member, &[], None).await;
        assert_problem(&r, StatusCode::NOT_FOUND, None);
        let r = put_if("not-quoted", b"{}".to_vec()).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, Some("header.if-match"));
    }

    pub async fn filters_and_pages(ctx: Ctx) {
        let mut batch = Vec::new();
        for i in 0..23 {
            let mut c = component(&format!("c-{i:02}"), &format!("team-{}", i % 3));
            c["spec"]["lifecycle"] = json!(if i < 10 { "production" } else { "experimental" });
            c["spec"]["type"] = json!(if i % 2 == 0 { "service" } else { "library" });
            c["metadata"]["tags"] = json!(if i % 4 == 0 { vec!["java"] } else { vec![] });
            batch.push(c);
        }
        batch.push(json!({"apiVersion": "acme.io/v1", "kind": "Pipeline",
            "metadata": {"name": "build", "namespace": "ci"}, "spec": {"owner": "team-0"}}));
        let r = ctx.batch_json(&batch).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);

        assert_eq!(ctx.total("").await, 24);
        assert_eq!(ctx.total("kind=Component").await, 23);
        assert_eq!(ctx.total("kind=pipeline,component").await, 24);
        assert_eq!(ctx.total("namespace=ci").await, 1);
        assert_eq!(ctx.total("owner=team-0").await, 8);
        assert_eq!(ctx.total("owner=group:default/team-0").await, 8);
        assert_eq!(ctx.total("owner=team-0,team-1").await, 16);
        assert_eq!(ctx.total("lifecycle=production").await, 10);
        assert_eq!(ctx.total("type=library").await, 11);
        assert_eq!(ctx.total("tag=java").await, 6);
        assert_eq!(ctx.total("tag=java&type=service&owner=team-0").await, 2);

        let mut seen = Vec::new();
        let mut uri = "/api/v1/entities?kind=component&limit=5".to_owned();
        loop {
            let r = ctx.get(&uri).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(r.body["total"], 23);
            let items = r.body["items"].as_array().unwrap();
            assert!(items.len() <= 5);
            seen.extend(
                items
                    .iter()
                    .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned()),
            );
            match r.body["nextCursor"].as_str() {
                Some(cursor) => {
                    uri = format!("/api/v1/entities?kind=component&limit=5&cursor={cursor}")
                }
                None => break,
            }
        }
        let want: Vec<String> = (0..23).map(|i| format!("c-{i:02}")).collect();
        assert_eq!(seen, want);

        // A bad query parameter is a 400 naming it (tests/query.rs has
        // the rest of the query language).
        let r = ctx.get("/api/v1/entities?limit=0").await;
        assert_problem(&r, StatusCode::BAD_REQUEST, Some("query.limit"));
        let r = ctx.get("/api/v1/entities?limit=5000").await;
        assert_problem(&r, StatusCode::BAD_REQUEST, Some("query.limit"));
        let r = ctx.get("/api/v1/entities?limit=ten").await;
        assert_problem(&r, StatusCode::BAD_REQUEST, Some("query.limit"));
        let r = ctx.get("/api/v1/entities?cursor=nope").await;
        assert_problem(&r, StatusCode::BAD_REQUEST, Some("query.cursor"));
        let r = ctx.get("/api/v1/entities?owner=team%20a").await;
        assert_problem(&r, StatusCode::BAD_REQUEST, Some("query.owner"));
        let r = ctx.get("/api/v1/entities?colour=red").await;
        assert_problem(&r, StatusCode::BAD_REQUEST, Some("query.colour"));
    }

    pub async fn bad_input_is_a_problem_naming_the_field(ctx: Ctx) {
        let uri = "/api/v1/entities/component/default/web";
        let good = serde_json::to_vec(&component("web", "team-a")).unwrap();

        // Roles: a viewer reads but does not write; nobody anonymous.
        let r = call(
            &ctx.state,
            "PUT",
            uri,
            &ctx.viewer,
            &[],
            Some((JSON, good.clone())),
        )
        .await;
        assert_problem(&r, StatusCode::FORBIDDEN, None);
        let r = call(
            &ctx.state,
            "POST",
            "/api/v1/entities/batch",
            &ctx.viewer,
            &[],
            Some((JSON, b"[]".to_vec())),
        )
        .await;
        assert_problem(&r, StatusCode::FORBIDDEN, None);

        // Media type, syntax, shape.
        let r = ctx.send("PUT", uri, "text/plain", good.clone()).await;
        assert_problem(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
        let r = ctx.send("PUT", uri, JSON, "{\"kind\":").await;
        assert_problem(&r, StatusCode::BAD_REQUEST, None);
        let r = ctx
            .send(
                "POST",
                "/api/v1/entities/batch",
                YAML,
                "kind: A\n---\nkind: [oops\n",
            )
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, None);
        assert!(
            r.body["detail"].as_str().unwrap().starts_with("document 1"),
            "{}",
            r.body
        );
        let r = ctx
            .send("POST", "/api/v1/entities/batch", JSON, "\"text\"")
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, None);
        // A batch's elements are parsed apart; a broken one is still
        // reported at its line and column in the whole body.
        let broken = format!(
            "[{},\n {{\"kind\": }}]",
            serde_json::to_string(&component("web", "team-a")).unwrap()
        );
        let r = ctx
            .send("POST", "/api/v1/entities/batch", JSON, broken)
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, None);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains("line 2 column 11"), "{}", r.body);
        assert_eq!(ctx.get(uri).await.status, StatusCode::NOT_FOUND);
        let r = ctx.send("PUT", uri, JSON, "[]").await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("/"));
        let two = format!(
            "{}\n---\n{}",
            serde_json::to_string(&component("web", "a")).unwrap(),
            serde_json::to_string(&component("web", "b")).unwrap()
        );
        let r = ctx.send("PUT", uri, YAML, two).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("/"));

        // Validation: every problem, each at its pointer.
        let r = ctx
            .send(
                "PUT",
                uri,
                JSON,
                r#"{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"web","tags":["Bad Tag"]},"spec":{"type":"service"}}"#,
            )
            .await;
        assert_problem(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("/metadata/tags/0"),
        );
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            vec!["/metadata/tags/0", "/spec/lifecycle", "/spec/owner"]
        );
        let r = ctx
            .send(
                "PUT",
                uri,
                JSON,
                r#"{"apiVersion":"v1","kind":"Component","metadata":{}}"#,
            )
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("/metadata/name"));

        // The path must name the entity in the body.
        let r = ctx
            .send(
                "PUT",
                "/api/v1/entities/component/default/other",
                JSON,
                good.clone(),
            )
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("/metadata/name"));
        let r = ctx
            .send("PUT", "/api/v1/entities/api/ops/web", JSON, good.clone())
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("/kind"));
        assert_eq!(r.body["errors"].as_array().unwrap().len(), 2);

        // Too large.
        let huge = vec![b' '; portolan::entities::MAX_ENTITY_BODY + 1];
        let r = ctx.send("PUT", uri, JSON, huge).await;
        assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, None);

        // Too many entities for one batch, however small.
        let many = format!(
            "[{}{{}}]",
            "{},".repeat(portolan::entities::MAX_BATCH_ENTITIES)
        );
        let r = ctx.send("POST", "/api/v1/entities/batch", JSON, many).await;
        assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, None);

        // A path that does not decode.
        let r = ctx.get("/api/v1/entities/component/default/%FF").await;
        assert_problem(&r, StatusCode::BAD_REQUEST, Some("path"));

        // Absent things.
        let r = ctx.get(uri).await;
        assert_problem(&r, StatusCode::NOT_FOUND, None);
        assert_eq!(ctx.total("").await, 0, "nothing was half-written");

        // A source's entity cannot be taken over by a push.
        let entity = portolan_catalog::Entity::from_value(component("web", "team-a")).unwrap();
        ctx.state
            .store
            .put_entities(&[entity], &portolan_store::Origin::Source("git".into()))
            .await
            .unwrap();
        let r = ctx.send("PUT", uri, JSON, good).await;
        assert_problem(&r, StatusCode::CONFLICT, None);
        assert!(r.body["detail"].as_str().unwrap().contains("source:git"));
    }
}
