//! The catalog-hygiene checks (a C plugin) end to end, on SQLite and
//! PostgreSQL: a scorecard of every check over entities pushed through the
//! API, results read back per entity. `has-owner` and `in-system` look the
//! referenced entities up in the catalog (`portolan:plugin/catalog`,
//! since contract 0.3.0), once per batch; the Rust SDK's lookup is driven through
//! the `echo-check` fixture, with its limits and errors.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use portolan_e2e::{component, Options, TestServer};
use portolan_runtime::model::{CheckOutcome, CheckStatus, Entity};
use portolan_runtime::{CallError, CallReport, Contract};
use portolan_store::testing::TestDatabase;
use portolan_store::Role;
use serde_json::{json, Value};

async fn ready(server: &TestServer, id: &str, token: &str) -> Value {
    let (_, body) = server
        .wait_plugin(id, token, Duration::from_secs(60), |_, b| {
            b["status"] == "ready" || b["status"] == "failed"
        })
        .await
        .unwrap_or_else(|| panic!("{id} was never listed"));
    assert_eq!(body["status"], "ready", "{id}: {body}");
    body
}

/// Stores `entity` through the API.
async fn push(server: &TestServer, token: &str, entity: Value) {
    let kind = entity["kind"].as_str().unwrap().to_lowercase();
    let name = entity["metadata"]["name"].as_str().unwrap().to_owned();
    let (status, body) = server
        .put(
            &format!("/api/v1/entities/{kind}/default/{name}"),
            token,
            &entity,
        )
        .await;
    assert_eq!(status, 201, "{name}: {body}");
}

fn backstage(kind: &str, name: &str, metadata: Value, spec: Value) -> Value {
    let mut m = json!({"name": name});
    m.as_object_mut()
        .unwrap()
        .extend(metadata.as_object().unwrap().clone());
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": m, "spec": spec})
}

/// An entity outside Backstage's apiVersions: the catalog does not require
/// its spec fields, so the checks see them missing.
fn custom(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "acme.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}

fn service(name: &str, owner: &str) -> Value {
    backstage(
        "Component",
        name,
        json!({}),
        json!({"type": "service", "lifecycle": "production", "owner": owner}),
    )
}

/// The catalog the checks look at: the entities they reference, then the
/// ones they judge.
async fn seed(server: &TestServer, token: &str) {
    for entity in [
        backstage(
            "Group",
            "team-a",
            json!({}),
            json!({"type": "team", "children": []}),
        ),
        backstage("User", "jdoe", json!({}), json!({"memberOf": ["team-a"]})),
        service("platform", "team-a"),
        backstage("System", "shop", json!({}), json!({"owner": "team-a"})),
        backstage(
            "Component",
            "good-svc",
            json!({
                "description": "Takes payments from every shop.",
                "annotations": {"pagerduty.com/service-id": "P123"},
                "links": [{"url": "https://docs.example/good-svc"}],
            }),
            json!({"type": "service", "lifecycle": "production", "owner": "team-a", "system": "shop"}),
        ),
        backstage(
            "Component",
            "user-svc",
            json!({"description": "short", "annotations": {"pagerduty.com/service-id": " "}}),
            json!({"type": "service", "lifecycle": "experimental", "owner": "user:jdoe", "system": "nowhere"}),
        ),
        // Backstage's shorthand: no kind means a Group, and there is none
        // called platform (only a Component).
        service("shorthand-owner", "platform"),
        service("component-owner", "component:platform"),
        service("ghost-owner", "ghosts"),
        custom("Component", "bare-svc", json!({})),
        backstage(
            "API",
            "good-api",
            json!({}),
            json!({"type": "openapi", "lifecycle": "production", "owner": "team-a",
                   "definition": "openapi: 3.0.0\ninfo: {title: Payments}\n"}),
        ),
        custom(
            "API",
            "blank-api",
            json!({"owner": "team-a", "definition": "  \n"}),
        ),
    ] {
        push(server, token, entity).await;
    }
}

fn hygiene_scorecard() -> Value {
    let rule = |id: &str, check: &str, parameters: Value| {
        json!({"id": id, "title": id, "level": "Bronze",
               "check": format!("catalog-hygiene/{check}"), "parameters": parameters})
    };
    json!({
        "title": "Catalog hygiene",
        "filter": {"kinds": ["Component", "API"]},
        "rules": [
            rule("owner", "has-owner", json!({})),
            rule("owner-set", "has-owner", json!({"exists": false})),
            rule("described", "has-description", json!({"minLength": 10})),
            rule("described-old-id", "description", json!({"minLength": 10})),
            rule("lifecycle", "has-lifecycle", json!({"allowed": ["production"]})),
            rule("any-lifecycle", "has-lifecycle", json!({})),
            rule("on-call", "has-annotation", json!({"annotation": "pagerduty.com/service-id"})),
            rule("system", "in-system", json!({"exists": true})),
            rule("system-set", "in-system", json!({})),
            rule("definition", "api-definition", json!({})),
            rule("links", "has-links", json!({})),
            rule("tags", "lowercase-tags", json!({})),
        ]
    })
}

/// Rule id -> (status, message) of `kind/name` on the hygiene scorecard,
/// once all of its rules have a result.
async fn results(
    server: &TestServer,
    token: &str,
    kind: &str,
    name: &str,
) -> HashMap<String, (String, String)> {
    let started = Instant::now();
    loop {
        let (status, body) = server
            .get(
                &format!("/api/v1/entities/{kind}/default/{name}/scorecards"),
                token,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let item = body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["scorecard"]["id"] == "hygiene"));
        if let Some(rules) = item.and_then(|i| i["rules"].as_array()) {
            if rules.iter().all(|r| r["status"] != "pending") {
                return rules
                    .iter()
                    .map(|r| {
                        (
                            r["id"].as_str().unwrap().to_owned(),
                            (
                                r["status"].as_str().unwrap().to_owned(),
                                r["message"].as_str().unwrap_or("").to_owned(),
                            ),
                        )
                    })
                    .collect();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{kind}/{name}: no results after 30 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts each `(rule, status, message part)` of `kind/name`.
async fn expect(
    server: &TestServer,
    token: &str,
    kind: &str,
    name: &str,
    expected: &[(&str, &str, &str)],
) {
    let got = results(server, token, kind, name).await;
    for (rule, status, message) in expected {
        let (s, m) = got
            .get(*rule)
            .unwrap_or_else(|| panic!("{name}: no rule {rule}: {got:?}"));
        assert_eq!(
            (s.as_str(), m.contains(message)),
            (*status, true),
            "{name} {rule}: {s} {m:?}, expected {status} with {message:?}"
        );
    }
}

async fn every_check_passes_and_fails_as_described(database_url: Option<String>) {
    let server = TestServer::start(Options {
        database_url,
        ..Options::default()
    })
    .await;
    let admin = server.token(Role::Admin).await;
    let member = server.token(Role::Member).await;
    server.install(&component("catalog-hygiene"), "catalog-hygiene");
    let plugin = ready(&server, "catalog-hygiene", &admin).await;
    assert_eq!(plugin["contract"], "0.4.0", "{plugin}");
    let checks: Vec<(&str, &Value)> = plugin["describe"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), &c["entityKinds"]))
        .collect();
    assert_eq!(
        checks,
        [
            (
                "has-owner",
                &json!(["Component", "API", "Resource", "System", "Domain"])
            ),
            ("has-description", &json!([])),
            ("has-lifecycle", &json!(["Component", "API"])),
            ("has-annotation", &json!([])),
            ("in-system", &json!(["Component", "API", "Resource"])),
            ("api-definition", &json!(["API"])),
            ("has-links", &json!([])),
            ("lowercase-tags", &json!([])),
            ("description", &json!([])),
        ]
    );
    seed(&server, &member).await;

    // has-annotation needs its parameter; the schema says so.
    let mut bad = hygiene_scorecard();
    bad["rules"][6]["parameters"] = json!({});
    let (status, body) = server.put("/api/v1/scorecards/hygiene", &admin, &bad).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("annotation"), "{body}");

    let (status, body) = server
        .put("/api/v1/scorecards/hygiene", &admin, &hygiene_scorecard())
        .await;
    assert_eq!(status, 201, "{body}");

    let all_pass: Vec<(&str, &str, &str)> = [
        "owner",
        "owner-set",
        "described",
        "described-old-id",
        "lifecycle",
        "any-lifecycle",
        "on-call",
        "system",
        "system-set",
        "links",
        "tags",
    ]
    .iter()
    .map(|r| (*r, "pass", ""))
    .chain([(
        "definition",
        "skip",
        "the check looks only at entities of kind api",
    )])
    .collect();
    expect(&server, &admin, "component", "good-svc", &all_pass).await;

    expect(
        &server,
        &admin,
        "component",
        "user-svc",
        &[
            // A User owns it: that counts.
            ("owner", "pass", ""),
            ("described", "fail", "description has 5 characters, fewer than 10"),
            ("described-old-id", "fail", "description has 5 characters, fewer than 10"),
            ("lifecycle", "fail", "lifecycle \"experimental\" is not one of [\"production\"]"),
            ("any-lifecycle", "pass", ""),
            ("on-call", "fail", "annotation pagerduty.com/service-id is empty"),
            ("system", "fail", "system system:default/nowhere is not in the catalog (a reference without a kind means a System)"),
            ("system-set", "pass", ""),
            ("links", "fail", "no links"),
        ],
    )
    .await;
    expect(
        &server,
        &admin,
        "component",
        "shorthand-owner",
        &[
            (
                "owner",
                "fail",
                "owner group:default/platform is not in the catalog (a reference without a kind means a Group)",
            ),
            ("owner-set", "pass", ""),
            ("on-call", "fail", "no annotation pagerduty.com/service-id"),
        ],
    )
    .await;
    expect(
        &server,
        &admin,
        "component",
        "component-owner",
        &[
            (
                "owner",
                "fail",
                "owner component:default/platform is a Component, not a Group or User",
            ),
            ("owner-set", "pass", ""),
        ],
    )
    .await;
    expect(
        &server,
        &admin,
        "component",
        "ghost-owner",
        &[(
            "owner",
            "fail",
            "owner group:default/ghosts is not in the catalog",
        )],
    )
    .await;
    expect(
        &server,
        &admin,
        "component",
        "bare-svc",
        &[
            ("owner", "fail", "no owner (spec.owner is empty)"),
            ("owner-set", "fail", "no owner (spec.owner is empty)"),
            ("described", "fail", "no description"),
            (
                "lifecycle",
                "fail",
                "no lifecycle (spec.lifecycle is empty)",
            ),
            ("system", "fail", "no system (spec.system is empty)"),
            ("system-set", "fail", "no system (spec.system is empty)"),
        ],
    )
    .await;
    expect(
        &server,
        &admin,
        "api",
        "good-api",
        &[("definition", "pass", ""), ("owner", "pass", "")],
    )
    .await;
    expect(
        &server,
        &admin,
        "api",
        "blank-api",
        &[
            (
                "definition",
                "fail",
                "the API definition (spec.definition) is empty",
            ),
            ("lifecycle", "fail", "no lifecycle"),
        ],
    )
    .await;

    // The owner comes into being: the owner rule passes on re-evaluation.
    push(
        &server,
        &member,
        backstage(
            "Group",
            "ghosts",
            json!({}),
            json!({"type": "team", "children": []}),
        ),
    )
    .await;
    let r = server
        .http
        .post(server.url("/api/v1/scorecards/hygiene/evaluate"))
        .bearer_auth(&member)
        .json(&json!({"entity": "component:default/ghost-owner"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let started = Instant::now();
    loop {
        let got = results(&server, &admin, "component", "ghost-owner").await;
        if got["owner"].0 == "pass" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ghost-owner still fails: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_and_fails_as_described_sqlite() {
    every_check_passes_and_fails_as_described(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_and_fails_as_described_postgres() {
    let db = TestDatabase::postgres().await;
    every_check_passes_and_fails_as_described(Some(db.url.clone())).await;
    db.drop_db().await;
}

fn plugin_entity(v: Value) -> Entity {
    serde_json::from_value(v).unwrap()
}

async fn evaluate(
    server: &TestServer,
    plugin: &str,
    check: &str,
    parameters: Value,
    entities: Vec<Entity>,
) -> CallReport<Vec<CheckOutcome>> {
    let plugin = server.state.registry.plugin(plugin).unwrap();
    let check = check.to_owned();
    tokio::task::spawn_blocking(move || plugin.evaluate(&check, &parameters, &entities))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn has_owner_looks_the_batch_up_in_one_call() {
    let server = TestServer::start(Options::default()).await;
    let admin = server.token(Role::Admin).await;
    server.install(&component("catalog-hygiene"), "catalog-hygiene");
    ready(&server, "catalog-hygiene", &admin).await;
    seed(&server, &admin).await;

    // Five entities, three distinct owners once completed (team-a is
    // written two ways).
    let batch: Vec<Entity> = [
        ("a", "team-a"),
        ("b", "group:default/team-a"),
        ("c", "user:jdoe"),
        ("d", "ghosts"),
        ("e", "Group:Default/TEAM-A"),
    ]
    .iter()
    .map(|(name, owner)| plugin_entity(service(name, owner)))
    .collect();
    let report = evaluate(&server, "catalog-hygiene", "has-owner", json!({}), batch).await;
    let statuses: Vec<CheckStatus> = report
        .result
        .as_ref()
        .unwrap()
        .iter()
        .map(|o| o.status)
        .collect();
    use CheckStatus::{Fail, Pass};
    assert_eq!(statuses, [Pass, Pass, Pass, Fail, Pass], "{report:?}");
    let lookups: Vec<&str> = report
        .logs
        .iter()
        .map(|l| l.message.as_str())
        .filter(|m| m.contains("looked up"))
        .collect();
    assert_eq!(
        lookups,
        ["has-owner: 3 distinct references looked up in one call"],
        "{:?}",
        report.logs
    );
    server.stop().await;
}

fn plugin_error(report: &CallReport<Vec<CheckOutcome>>) -> (&str, &str) {
    match &report.result {
        Err(CallError::Plugin { code, message, .. }) => (code, message),
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_looks_entities_up_and_reports_refused_lookups() {
    let server = TestServer::start(Options::default()).await;
    let admin = server.token(Role::Admin).await;
    server.install(&component("echo-check"), "echo");
    let body = ready(&server, "echo", &admin).await;
    assert_eq!(body["contract"], "0.4.0");
    assert_eq!(
        server.state.registry.plugin("echo").unwrap().contract,
        Contract::V0_4
    );
    seed(&server, &admin).await;

    let entities = || {
        vec![
            plugin_entity(service("good-svc", "team-a")),
            plugin_entity(service("not-stored", "team-a")),
            plugin_entity(service("x", "team-a")),
        ]
    };
    // Each entity's own reference, then a shorthand and a full one.
    let report = evaluate(
        &server,
        "echo",
        "lookup",
        json!({"refs": ["component:good-svc", "component:default/not-stored", "GROUP:default/Team-A"]}),
        entities(),
    )
    .await;
    let outcomes: Vec<(CheckStatus, String)> = report
        .result
        .unwrap()
        .into_iter()
        .map(|o| (o.status, o.message.unwrap_or_default()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                CheckStatus::Pass,
                "found component:good-svc (Component)".to_owned()
            ),
            (
                CheckStatus::Fail,
                "missing component:default/not-stored".to_owned()
            ),
            (
                CheckStatus::Pass,
                "found GROUP:default/Team-A (Group)".to_owned()
            ),
        ]
    );

    // A reference without a kind is refused, naming it; the plugin sees a
    // WIT error, not a trap.
    let report = evaluate(
        &server,
        "echo",
        "lookup",
        json!({"refs": ["component:good-svc", "team-a"]}),
        entities(),
    )
    .await;
    let (code, message) = plugin_error(&report);
    assert_eq!(code, "other");
    assert!(
        message.contains("reference 1 is invalid") && message.contains("has no kind"),
        "{message}"
    );
    // More than 1,000 references in one call are refused.
    let report = evaluate(
        &server,
        "echo",
        "lookup",
        json!({"copies": 1001}),
        entities(),
    )
    .await;
    let (_, message) = plugin_error(&report);
    assert!(
        message.contains("1001 references in one call, at most 1000"),
        "{message}"
    );
    server.stop().await;
}
