//! The shipped catalog sources, end to end: the real host syncs them through
//! the sources API and the entities land in the catalog.
//!
//! - `catalog-files` reads a copy of `examples/catalog`, following its
//!   Location and resolving `$text`; a broken copy fails the sync and the
//!   last good entities stay.
//! - `repo-source` pages through a fake code-hosting API served by the test
//!   (Link headers, bearer token); a repository that disappears is removed,
//!   and a 500 fails the sync and keeps the entities.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use portolan_e2e::{component, copy_dir, root, TestServer};
use portolan_store::Role;
use serde_json::{json, Value};

/// Every entity of `examples/catalog`, as the root descriptor reaches them.
const EXAMPLE_ENTITIES: &[&str] = &[
    "system/default/shop",
    "location/default/example-catalog",
    "group/default/engineering",
    "group/default/payments",
    "group/default/storefront",
    "user/default/ada",
    "user/default/grace",
    "user/default/linus",
    "component/default/payments-service",
    "component/default/checkout-web",
    "component/default/inventory-service",
    "api/default/inventory-api",
    // In apis/payments/, reached through the Location's glob.
    "api/default/payments-api",
];

/// Entities a successful sync wrote or found unchanged.
fn stored(sync: &Value) -> u64 {
    ["added", "updated", "unchanged"]
        .iter()
        .map(|k| sync["counts"][k].as_u64().unwrap_or(0))
        .sum()
}

async fn wait_ready(server: &TestServer, id: &str, token: &str) {
    let (_, body) = server
        .wait_plugin(id, token, Duration::from_secs(20), |_, b| {
            b["status"] == "ready" || b["status"] == "failed"
        })
        .await
        .unwrap_or_else(|| panic!("{id} was never loaded"));
    assert_eq!(body["status"], "ready", "{id}: {body}");
    assert_eq!(body["role"], "catalog-source", "{id}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_files_reads_the_example_catalog_and_keeps_it_when_a_file_breaks() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Admin).await;
    let catalog = server.dir.path().join("catalog");
    copy_dir(&root().join("examples/catalog"), &catalog);
    // A small page size, so that the sync takes several pages (13 entities).
    server.write_sidecar(
        "catalog",
        &format!(
            "[[dirs]]\nhost = {:?}\nguest = \"/catalog\"\n\n[settings]\npage_size = 5\n",
            catalog.display().to_string()
        ),
    );
    server.install(&component("catalog-files"), "catalog");
    wait_ready(&server, "catalog", &token).await;

    let sync = server.sync_source("catalog", &token).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["source"], "catalog", "{sync}");
    assert_eq!(sync["error"], Value::Null, "{sync}");
    // The source also syncs by itself when it loads; whichever sync this
    // is, it saw all 13 entities and removed none.
    assert_eq!(stored(&sync), 13, "{sync}");
    assert_eq!(sync["counts"]["removed"], 0, "{sync}");
    assert_eq!(sync["progress"]["entities"], 13, "{sync}");
    assert_eq!(sync["progress"]["pages"], 3, "{sync}");

    for entity in EXAMPLE_ENTITIES {
        let (status, body) = server
            .get(&format!("/api/v1/entities/{entity}"), &token)
            .await;
        assert_eq!(status, 200, "{entity}: {body}");
    }
    let (_, all) = server.get("/api/v1/entities?limit=100", &token).await;
    assert_eq!(all["total"], 13, "{all}");
    let (_, locations) = server.get("/api/v1/entities?kind=location", &token).await;
    assert_eq!(locations["total"], 1, "{locations}");
    assert_eq!(
        locations["items"][0]["spec"]["targets"][2],
        "./apis/*/catalog-info.yaml"
    );
    // The $text placeholder became the OpenAPI document's text.
    let (_, api) = server
        .get("/api/v1/entities/api/default/payments-api", &token)
        .await;
    let definition = api["spec"]["definition"].as_str().unwrap_or_default();
    let openapi =
        std::fs::read_to_string(root().join("examples/catalog/apis/payments/openapi.yaml"))
            .unwrap();
    assert_eq!(definition, openapi, "{api}");
    assert!(definition.starts_with("openapi: 3.0.3"), "{definition}");

    // Break one file: its placeholder now leads outside the granted folder.
    let descriptor = catalog.join("apis/payments/catalog-info.yaml");
    let text = std::fs::read_to_string(&descriptor).unwrap();
    std::fs::write(
        &descriptor,
        text.replace("$text: ./openapi.yaml", "$text: ../../../secrets.txt"),
    )
    .unwrap();
    std::fs::write(server.dir.path().join("secrets.txt"), "hunter2").unwrap();
    let sync = server.sync_source("catalog", &token).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    let message = sync["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/catalog/apis/payments/catalog-info.yaml document 1"),
        "the error names the file: {sync}"
    );
    assert!(
        message.contains("../../../secrets.txt") && message.contains("outside"),
        "the error names the path and what is wrong: {sync}"
    );
    assert!(!message.contains("hunter2"), "{sync}");

    // The last good data stays, definition included.
    let (_, all) = server.get("/api/v1/entities?limit=100", &token).await;
    assert_eq!(all["total"], 13, "{all}");
    let (status, api) = server
        .get("/api/v1/entities/api/default/payments-api", &token)
        .await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["spec"]["definition"].as_str(), Some(openapi.as_str()));

    // Both syncs are in the history, newest first.
    let (status, history) = server.get("/api/v1/sources/catalog/syncs", &token).await;
    assert_eq!(status, 200, "{history}");
    let items = history["items"].as_array().unwrap();
    assert!(items.len() >= 2, "{history}");
    assert_eq!(items[0]["status"], "failed", "{history}");
    assert_eq!(items[1]["status"], "succeeded", "{history}");
    server.stop().await;
}

/// A stand-in for GitHub's `GET /orgs/{org}/repos`, answering `per_page`
/// repositories per page with a `Link` header, behind a bearer token.
#[derive(Default)]
struct FakeHost {
    repos: Vec<Value>,
    /// Answer every request with a 500.
    broken: bool,
    /// The `Authorization` header of each request, in order.
    seen_auth: Vec<String>,
    /// `scheme://host:port` of the fake, for absolute Link URLs.
    origin: String,
}

type Fake = Arc<Mutex<FakeHost>>;

const TOKEN: &str = "gh-test-token";

async fn list_repos(
    State(fake): State<Fake>,
    UrlPath(org): UrlPath<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut fake = fake.lock().unwrap();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    fake.seen_auth.push(auth.clone());
    if fake.broken {
        return (StatusCode::INTERNAL_SERVER_ERROR, "database on fire").into_response();
    }
    if auth != format!("Bearer {TOKEN}") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    if org != "acme" {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
    }
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30);
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let items: Vec<Value> = fake
        .repos
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let last = fake.repos.len().div_ceil(per_page).max(1);
    let link = |p: usize, rel: &str| {
        format!(
            "<{}/orgs/acme/repos?per_page={per_page}&page={p}>; rel=\"{rel}\"",
            fake.origin
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(page - 1, "prev"));
        links.push(link(1, "first"));
    }
    let mut response = Json(Value::Array(items)).into_response();
    if !links.is_empty() {
        response
            .headers_mut()
            .insert("link", links.join(", ").parse().unwrap());
    }
    response
}

fn repo(name: &str, topics: &[&str], archived: bool) -> Value {
    json!({
        "id": name.len() * 1000 + topics.len(),
        "name": name,
        "full_name": format!("acme/{name}"),
        "owner": {"login": "acme"},
        "description": format!("The {name} repository."),
        "html_url": format!("https://github.com/acme/{name}"),
        "topics": topics,
        "archived": archived,
        "default_branch": "main",
        "language": "Rust",
        "visibility": "private"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_source_pages_through_the_api_removes_gone_repos_and_survives_a_500() {
    let fake: Fake = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    {
        let mut f = fake.lock().unwrap();
        f.origin = format!("http://{addr}");
        f.repos = vec![
            repo("payments-service", &["java", "payments"], false),
            repo("checkout-web", &["typescript", "React"], false),
            repo("inventory-service", &["go"], false),
            repo("legacy-billing", &[], true),
            repo("Docs Site", &["docs"], false),
            repo("infra", &["terraform"], false),
            repo("mobile-app", &["kotlin", "swift"], false),
        ];
    }
    let app = Router::new()
        .route("/orgs/{org}/repos", get(list_repos))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let server = TestServer::start(portolan_e2e::Options {
        secrets: [("REPO_TOKEN".to_owned(), TOKEN.to_owned())].into(),
        ..Default::default()
    })
    .await;
    let token = server.token(Role::Admin).await;
    server.write_sidecar(
        "repos",
        &format!(
            "secrets = [\"REPO_TOKEN\"]\n\n[http]\nallow = [\"{addr}\"]\n\n[settings]\n\
             base_url = \"http://{addr}\"\norg = \"acme\"\nowner = \"group:default/platform\"\n\
             per_page = 3\ntoken_secret = \"REPO_TOKEN\"\n"
        ),
    );
    server.install(&component("repo-source"), "repos");
    wait_ready(&server, "repos", &token).await;

    // Seven repositories, three pages.
    let sync = server.sync_source("repos", &token).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(stored(&sync), 7, "{sync}");
    assert_eq!(sync["progress"]["pages"], 3, "{sync}");
    {
        let f = fake.lock().unwrap();
        assert!(f.seen_auth.len() >= 3, "{:?}", f.seen_auth);
        assert!(
            f.seen_auth.iter().all(|a| a == &format!("Bearer {TOKEN}")),
            "every request carries the granted token: {:?}",
            f.seen_auth
        );
    }
    let (_, components) = server
        .get("/api/v1/entities?kind=component&limit=100", &token)
        .await;
    assert_eq!(components["total"], 7, "{components}");
    let (status, payments) = server
        .get(
            "/api/v1/entities/component/default/payments-service",
            &token,
        )
        .await;
    assert_eq!(status, 200, "{payments}");
    let slug_key = "127.0.0.1/project-slug";
    assert_eq!(
        payments["metadata"]["annotations"][slug_key], "acme/payments-service",
        "{payments}"
    );
    assert_eq!(payments["metadata"]["tags"], json!(["java", "payments"]));
    assert_eq!(
        payments["metadata"]["links"][0]["url"],
        "https://github.com/acme/payments-service"
    );
    assert_eq!(payments["spec"]["type"], "service");
    assert_eq!(payments["spec"]["lifecycle"], "production");
    assert_eq!(payments["spec"]["owner"], "group:default/platform");
    let (_, legacy) = server
        .get("/api/v1/entities/component/default/legacy-billing", &token)
        .await;
    assert_eq!(legacy["spec"]["lifecycle"], "deprecated", "{legacy}");
    // A name with a space is sanitised; the original stays as the title.
    let (status, docs) = server
        .get("/api/v1/entities/component/default/Docs-Site", &token)
        .await;
    assert_eq!(status, 200, "{docs}");
    assert_eq!(docs["metadata"]["title"], "Docs Site", "{docs}");
    let (_, checkout) = server
        .get("/api/v1/entities/component/default/checkout-web", &token)
        .await;
    assert_eq!(checkout["metadata"]["tags"], json!(["typescript", "react"]));

    // A repository disappears: the next sync removes its Component.
    fake.lock()
        .unwrap()
        .repos
        .retain(|r| r["name"] != "inventory-service");
    let sync = server.sync_source("repos", &token).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["counts"]["removed"], 1, "{sync}");
    assert_eq!(sync["counts"]["added"], 0, "{sync}");
    assert_eq!(sync["counts"]["unchanged"], 6, "{sync}");
    let (status, _) = server
        .get(
            "/api/v1/entities/component/default/inventory-service",
            &token,
        )
        .await;
    assert_eq!(status, 404);

    // The API fails: the sync fails naming status and URL, the entities stay.
    fake.lock().unwrap().broken = true;
    let sync = server.sync_source("repos", &token).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    let message = sync["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("500"), "{sync}");
    assert!(
        message.contains(&format!("http://{addr}/orgs/acme/repos")),
        "{sync}"
    );
    assert!(message.contains("database on fire"), "{sync}");
    let (_, components) = server
        .get("/api/v1/entities?kind=component&limit=100", &token)
        .await;
    assert_eq!(components["total"], 6, "{components}");
    server.stop().await;
}
