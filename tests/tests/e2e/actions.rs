//! Day-2 actions end to end: the real host, the `test-action` and
//! `guarded-action` fixtures, the HTTP API. Input validation, roles,
//! approvals, live and stored logs, cancel, retry, the audit trail, secret
//! redaction, and plugins that trap, spin or eat memory failing only their
//! own run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use portolan_e2e::{component, Options, TestServer};
use portolan_store::testing::TestDatabase;
use portolan_store::Role;
use serde_json::{json, Value};

/// The host secret the `leak` mode writes out.
const HOST_SECRET: &str = "s3cr3t-host-value-7f2a";
/// A secret input field's value.
const TYPED_SECRET: &str = "pa55word-typed-by-alice";

fn options(database_url: Option<String>) -> Options {
    Options {
        database_url,
        secrets: HashMap::from([("DEPLOY_TOKEN".to_owned(), HOST_SECRET.to_owned())]),
        ..Default::default()
    }
}

async fn service(server: &TestServer, token: &str, name: &str, kind_of: &str) {
    let (status, body) = server
        .put(
            &format!("/api/v1/entities/component/default/{name}"),
            token,
            &json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": name, "tags": ["payments"]},
                "spec": {"type": kind_of, "owner": "team-a", "lifecycle": "production"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Installs `fixture` as plugin `id` (sidecar first) and waits until it is
/// ready.
async fn install(server: &TestServer, token: &str, fixture: &str, id: &str, sidecar: &str) {
    if !sidecar.is_empty() {
        server.write_sidecar(id, sidecar);
    }
    server.install(&component(fixture), id);
    server
        .wait_plugin(id, token, Duration::from_secs(60), |s, b| {
            s == 200 && b["status"] == "ready"
        })
        .await
        .unwrap_or_else(|| panic!("{id} never became ready"));
}

async fn start(server: &TestServer, token: &str, action: &str, body: Value) -> (u16, Value) {
    server
        .post(
            &format!("/api/v1/actions/{action}/runs"),
            token,
            Some(&body),
        )
        .await
}

/// Starts a test-action run and waits until a worker runs it; its id.
async fn start_running(server: &TestServer, token: &str, body: Value) -> String {
    let (status, run) = start(server, token, "test-action", body).await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    wait_run(server, token, &id, Duration::from_secs(20), |r| {
        r["status"] == "running"
    })
    .await;
    id
}

/// Cancels run `id` and waits until it ended: the run, and how long that
/// took from the request.
async fn cancel_and_wait(server: &TestServer, token: &str, id: &str) -> (Value, Duration) {
    let asked = Instant::now();
    let (status, body) = server
        .post(&format!("/api/v1/runs/{id}/cancel"), token, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let run = wait_run(server, token, id, Duration::from_secs(10), ended).await;
    (run, asked.elapsed())
}

/// Polls the run until `pred` holds; panics after `within`.
async fn wait_run(
    server: &TestServer,
    token: &str,
    id: &str,
    within: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let (status, run) = server.get(&format!("/api/v1/runs/{id}"), token).await;
        assert_eq!(status, 200, "{run}");
        if pred(&run) {
            return run;
        }
        assert!(
            started.elapsed() < within,
            "run {id} still {} after {within:?}: {run}",
            run["status"]
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ended(run: &Value) -> bool {
    matches!(
        run["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled")
    )
}

async fn log_messages(server: &TestServer, token: &str, id: &str) -> Vec<(i64, String)> {
    let (status, logs) = server.get(&format!("/api/v1/runs/{id}/logs"), token).await;
    assert_eq!(status, 200, "{logs}");
    logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["attempt"].as_i64().unwrap(),
                l["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The whole SSE body of a run's log stream (the run must end for it to
/// close).
async fn stream_body(server: &TestServer, token: &str, id: &str, last_id: Option<&str>) -> String {
    let mut request = server
        .http
        .get(server.url(&format!("/api/v1/runs/{id}/logs/stream")))
        .bearer_auth(token);
    if let Some(last) = last_id {
        request = request.header("Last-Event-ID", last);
    }
    let response = tokio::time::timeout(Duration::from_secs(30), request.send())
        .await
        .expect("stream answers")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    tokio::time::timeout(Duration::from_secs(60), response.text())
        .await
        .expect("the stream closes once the run ends")
        .unwrap()
}

fn problem_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| x["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn runs_validate_check_roles_and_succeed(database_url: Option<String>) {
    let server = TestServer::start(options(database_url)).await;
    let admin = server.token_for(Role::Admin, "root").await;
    let alice = server.token_for(Role::Member, "alice").await;
    let viewer = server.token_for(Role::Viewer, "val").await;
    install(&server, &admin, "test-action", "test-action", "").await;
    service(&server, &alice, "payments", "service").await;
    service(&server, &alice, "website", "website").await;

    // Which actions apply where.
    let (status, list) = server.get("/api/v1/actions", &viewer).await;
    assert_eq!(status, 200);
    let action = &list["items"][0];
    assert_eq!(action["id"], "test-action");
    assert_eq!(action["title"], "Test action");
    assert_eq!(action["entityTypes"], json!(["service"]));
    assert_eq!(action["requiredRole"], "member");
    assert_eq!(action["approval"], Value::Null);
    assert_eq!(action["inputSchema"]["required"], json!(["mode"]));
    let (_, on_payments) = server
        .get("/api/v1/actions?entity=component:default/payments", &viewer)
        .await;
    assert_eq!(on_payments["items"].as_array().unwrap().len(), 1);
    let (_, on_website) = server
        .get("/api/v1/actions?entity=component:website", &viewer)
        .await;
    assert_eq!(on_website["items"], json!([]), "a website is not a service");
    let (status, _) = server
        .get("/api/v1/actions?entity=component:default/nope", &viewer)
        .await;
    assert_eq!(status, 404);
    let (status, body) = server.get("/api/v1/actions?entity=a:b:c/", &viewer).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(problem_fields(&body), ["query.entity"]);
    let (status, _) = server.get("/api/v1/actions/nope", &viewer).await;
    assert_eq!(status, 404);

    // Refusals: role, input, entity.
    let good =
        json!({"input": {"mode": "ok", "note": "hi"}, "entity": "component:default/payments"});
    let (status, body) = start(&server, &viewer, "test-action", good.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = start(
        &server,
        &alice,
        "test-action",
        json!({"input": {"mode": "dance", "ms": -1, "extra": 1}, "entity": "component:default/website"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let mut fields = problem_fields(&body);
    fields.sort();
    assert_eq!(fields, ["/entity", "/input", "/input/mode", "/input/ms"]);
    let (status, body) = start(&server, &alice, "test-action", json!({"input": {}})).await;
    assert_eq!(status, 422);
    let mut fields = problem_fields(&body);
    fields.sort();
    assert_eq!(fields, ["/entity", "/input"], "{body}");
    assert!(
        body.to_string().contains("mode"),
        "names the missing property: {body}"
    );
    let (status, _) = start(&server, &alice, "nope", good.clone()).await;
    assert_eq!(status, 404);
    let (status, body) = server
        .post(
            "/api/v1/actions/test-action/runs",
            &alice,
            Some(&json!({"input": 1, "bogus": true})),
        )
        .await;
    assert!(status == 400 || status == 422, "{status} {body}");
    let (status, runs) = server.get("/api/v1/runs", &viewer).await;
    assert_eq!(
        (status, &runs["items"]),
        (200, &json!([])),
        "nothing was queued"
    );

    // A good run.
    let (status, run) = start(&server, &alice, "test-action", good).await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    assert!(matches!(run["status"].as_str(), Some("queued" | "running")));
    assert_eq!(run["attempt"], 1);
    assert_eq!(run["entity"], "component:default/payments");
    let run = wait_run(&server, &viewer, &id, Duration::from_secs(30), ended).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let actor = run["actor"].as_str().unwrap().to_owned();
    assert!(
        actor.starts_with("token:") && actor.ends_with("(alice)"),
        "{actor}"
    );
    assert_eq!(run["output"]["runId"], id.as_str());
    assert_eq!(run["output"]["actor"], actor.as_str());
    assert_eq!(run["output"]["attempt"], 1);
    assert_eq!(run["output"]["input"], json!({"mode": "ok", "note": "hi"}));
    assert!(run["output"]["entity"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case("component:default/payments"));
    assert_eq!(
        run["links"][0]["url"],
        format!("https://example.invalid/runs/{id}")
    );
    assert!(run["startedAt"].is_string() && run["finishedAt"].is_string());
    assert!(run["worker"].is_string());

    let lines = log_messages(&server, &viewer, &id).await;
    let messages: Vec<&str> = lines.iter().map(|(_, m)| m.as_str()).collect();
    assert!(
        messages[0].starts_with("attempt 1 of test-action started on"),
        "{messages:?}"
    );
    assert_eq!(messages[1], format!("hello from run {id} attempt 1"));
    assert!(messages[2].starts_with("run succeeded in"), "{messages:?}");

    // The stream of an ended run: every line, then the status, then it closes.
    let body = stream_body(&server, &viewer, &id, None).await;
    assert!(body.contains("event: log"), "{body}");
    assert!(
        body.contains(&format!("hello from run {id} attempt 1")),
        "{body}"
    );
    let status_at = body.find("event: status").expect("a status event");
    assert!(body[..status_at].contains("run succeeded in"));
    assert!(body[status_at..].contains("\"succeeded\""));
    // Resuming after line 2 sends only line 3.
    let resumed = stream_body(&server, &viewer, &id, Some("2")).await;
    assert_eq!(resumed.matches("event: log").count(), 1, "{resumed}");

    // Listing and filters.
    let (_, runs) = server
        .get("/api/v1/runs?status=succeeded&action=test-action", &viewer)
        .await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 1);
    let (_, runs) = server
        .get("/api/v1/runs?entity=component:default/website", &viewer)
        .await;
    assert_eq!(runs["items"], json!([]));
    let (status, body) = server.get("/api/v1/runs?status=done", &viewer).await;
    assert_eq!(status, 422);
    assert_eq!(problem_fields(&body), ["query.status"]);
    let (status, _) = server.get("/api/v1/runs/nope", &viewer).await;
    assert_eq!(status, 404);

    // Audit: admins only; the start is there with its input.
    let (status, _) = server.get("/api/v1/audit", &alice).await;
    assert_eq!(status, 403);
    let (status, audit) = server.get("/api/v1/audit?action=run.start", &admin).await;
    assert_eq!(status, 200);
    let entry = &audit["items"][0];
    assert_eq!(entry["actor"], actor.as_str());
    assert_eq!(entry["subject"], format!("run:{id}"));
    assert_eq!(entry["detail"]["action"], "test-action");
    assert_eq!(
        entry["detail"]["input"],
        json!({"mode": "ok", "note": "hi"})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_validate_check_roles_and_succeed_sqlite() {
    runs_validate_check_roles_and_succeed(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_validate_check_roles_and_succeed_postgres() {
    let db = TestDatabase::postgres().await;
    runs_validate_check_roles_and_succeed(Some(db.url.clone())).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_wait_for_someone_else_with_the_role() {
    let server = TestServer::start(options(None)).await;
    let root = server.token_for(Role::Admin, "root").await;
    let alice = server.token_for(Role::Member, "alice").await;
    let alice_admin = server.token_for(Role::Admin, "alice").await;
    let bob_member = server.token_for(Role::Member, "bob").await;
    let bob = server.token_for(Role::Admin, "bob").await;
    install(&server, &root, "guarded-action", "guarded", "").await;
    let (_, action) = server.get("/api/v1/actions/guarded", &alice).await;
    assert_eq!(
        (&action["approval"], &action["entityKinds"]),
        (&json!("admin"), &json!([]))
    );

    let (status, body) = start(
        &server,
        &alice,
        "guarded",
        json!({"input": {"target": "db"}, "entity": "component:default/x"}),
    )
    .await;
    assert_eq!(status, 422, "a standalone action takes no entity: {body}");
    let (status, run) = start(
        &server,
        &alice,
        "guarded",
        json!({"input": {"target": "db"}}),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(run["status"], "awaiting-approval");
    assert_eq!(run["approval"]["required"], "admin");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, still) = server.get(&format!("/api/v1/runs/{id}"), &alice).await;
    assert_eq!(
        still["status"], "awaiting-approval",
        "no worker takes a held run"
    );

    let approve = |token: &str, comment: Value| {
        let path = format!("/api/v1/runs/{id}/approve");
        let token = token.to_owned();
        let server = &server;
        async move { server.post(&path, &token, Some(&comment)).await }
    };
    let (status, body) = approve(&alice_admin, json!({"comment": "mine"})).await;
    assert_eq!(
        status, 403,
        "no approving your own run, even as admin: {body}"
    );
    let (status, _) = approve(&bob_member, json!({})).await;
    assert_eq!(status, 403, "approval needs the admin role");
    let (status, body) = server
        .post(&format!("/api/v1/runs/{id}/deny"), &bob, Some(&json!({})))
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem_fields(&body), ["/comment"]);
    let (status, run) = approve(&bob, json!({"comment": "go ahead"})).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["approval"]["decision"], "approved");
    assert!(run["approval"]["by"].as_str().unwrap().ends_with("(bob)"));
    let run = wait_run(&server, &alice, &id, Duration::from_secs(30), ended).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"], json!({"target": "db"}));
    let (status, _) = approve(&bob, json!({})).await;
    assert_eq!(status, 409, "already decided");

    let (_, second) = start(
        &server,
        &alice,
        "guarded",
        json!({"input": {"target": "cache"}}),
    )
    .await;
    let second_id = second["id"].as_str().unwrap();
    let (status, denied) = server
        .post(
            &format!("/api/v1/runs/{second_id}/deny"),
            &bob,
            Some(&json!({"comment": "not during the freeze"})),
        )
        .await;
    assert_eq!(status, 200, "{denied}");
    assert_eq!(denied["status"], "cancelled");
    assert_eq!(denied["error"]["code"], "denied");
    assert!(denied["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not during the freeze"));

    let (_, audit) = server.get("/api/v1/audit", &root).await;
    let verbs: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(verbs, ["run.deny", "run.start", "run.approve", "run.start"]);
    assert_eq!(
        audit["items"][0]["detail"]["comment"],
        "not during the freeze"
    );
    assert_eq!(audit["items"][2]["detail"]["comment"], "go ahead");

    // The operator may raise what an action asks for, never lower it.
    install(
        &server,
        &root,
        "test-action",
        "strict",
        "[action]\nrequired_role = \"admin\"\napproval = \"admin\"\n",
    )
    .await;
    let (_, strict) = server.get("/api/v1/actions/strict", &alice).await;
    assert_eq!(
        (&strict["requiredRole"], &strict["approval"]),
        (&json!("admin"), &json!("admin"))
    );
    service(&server, &alice, "payments", "service").await;
    let (status, _) = start(
        &server,
        &alice,
        "strict",
        json!({"input": {"mode": "ok"}, "entity": "component:default/payments"}),
    )
    .await;
    assert_eq!(status, 403);
    server.write_sidecar("lax", "[action]\napproval = \"member\"\n");
    server.install(&component("guarded-action"), "lax");
    let (_, failed) = server
        .wait_plugin("lax", &root, Duration::from_secs(60), |s, b| {
            s == 200 && b["status"] == "failed"
        })
        .await
        .expect("lowering the approval role fails the load");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("action.approval"),
        "{failed}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_retry_and_misbehaving_plugins_fail_only_their_run() {
    let server = TestServer::start(options(None)).await;
    let root = server.token_for(Role::Admin, "root").await;
    let alice = server.token_for(Role::Member, "alice").await;
    let bob = server.token_for(Role::Member, "bob").await;
    install(
        &server,
        &root,
        "test-action",
        "test-action",
        "[limits]\ntimeout_ms = 1500\nmemory_mb = 32\n",
    )
    .await;
    service(&server, &alice, "payments", "service").await;
    let run_on = |mode: &str, extra: Value| {
        let mut input = json!({"mode": mode});
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"input": input, "entity": "component:default/payments"})
    };

    // A long run streams its log while it runs; cancelling stops it.
    let (_, long) = start(
        &server,
        &alice,
        "test-action",
        run_on("sleep", json!({"ms": 1400})),
    )
    .await;
    let long_id = long["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let lines = log_messages(&server, &alice, &long_id).await;
        if lines.iter().any(|(_, m)| m == "tick 2") {
            let (_, run) = server.get(&format!("/api/v1/runs/{long_id}"), &alice).await;
            assert_eq!(run["status"], "running", "lines are visible while it runs");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no live log: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = wait_run(&server, &alice, &long_id, Duration::from_secs(20), ended).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    // The live stream delivers lines while the run is still going, then its
    // end.
    let (_, live) = start(
        &server,
        &alice,
        "test-action",
        run_on("sleep", json!({"ms": 1200})),
    )
    .await;
    let live_id = live["id"].as_str().unwrap().to_owned();
    let mut response = server
        .http
        .get(server.url(&format!("/api/v1/runs/{live_id}/logs/stream")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let mut body = String::new();
    let mut status_when_ticked = None;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), response.chunk())
        .await
        .expect("the stream keeps talking")
        .unwrap()
    {
        body.push_str(&String::from_utf8_lossy(&chunk));
        if status_when_ticked.is_none() && body.contains("tick 1") {
            let (_, run) = server.get(&format!("/api/v1/runs/{live_id}"), &alice).await;
            status_when_ticked = Some(run["status"].clone());
        }
    }
    assert_eq!(status_when_ticked, Some(json!("running")), "{body}");
    let (tick, end) = (
        body.find("tick 1").unwrap(),
        body.find("event: status").unwrap(),
    );
    assert!(
        tick < end && body[end..].contains("\"succeeded\""),
        "{body}"
    );

    // Cancel needs the run's actor (or an admin); the run stops at once.
    let spin_id = start_running(&server, &alice, run_on("sleep", json!({"ms": 60000}))).await;
    let (status, _) = server
        .post(&format!("/api/v1/runs/{spin_id}/cancel"), &bob, None)
        .await;
    assert_eq!(status, 403);
    let (cancelled, took) = cancel_and_wait(&server, &alice, &spin_id).await;
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["error"]["code"], "cancelled");
    assert!(cancelled["cancelledBy"]
        .as_str()
        .unwrap()
        .ends_with("(alice)"));
    let (status, _) = server
        .post(&format!("/api/v1/runs/{spin_id}/cancel"), &alice, None)
        .await;
    assert_eq!(status, 409, "already ended");

    // So does a run asleep in one long host call (no wasm runs meanwhile
    // for the interruption to catch): its wait in the host ends on the
    // cancel, well before the 1.5 s deadline, which would end it too.
    let nap_id = start_running(&server, &alice, run_on("nap", json!({"ms": 60000}))).await;
    let (cancelled, took) = cancel_and_wait(&server, &alice, &nap_id).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    // Misbehaving plugins fail their own run with the reason; a good run
    // started meanwhile succeeds.
    let mut bad = Vec::new();
    for mode in ["trap", "loop", "memory", "fail"] {
        let (status, run) = start(&server, &alice, "test-action", run_on(mode, json!({}))).await;
        assert_eq!(status, 202, "{run}");
        bad.push((mode, run["id"].as_str().unwrap().to_owned()));
    }
    let (_, good) = start(&server, &alice, "test-action", run_on("ok", json!({}))).await;
    for (mode, id) in &bad {
        let run = wait_run(&server, &alice, id, Duration::from_secs(30), ended).await;
        assert_eq!(run["status"], "failed", "{mode}: {run}");
        let expected = match *mode {
            "trap" => "trap",
            "loop" => "timeout",
            "memory" => "memory-limit",
            _ => "plugin-error",
        };
        assert_eq!(run["error"]["code"], expected, "{mode}: {run}");
    }
    let good = wait_run(
        &server,
        &alice,
        good["id"].as_str().unwrap(),
        Duration::from_secs(30),
        ended,
    )
    .await;
    assert_eq!(good["status"], "succeeded");

    // Retry: a failed run again, same id, next attempt, both logs kept.
    let fail_id = &bad[3].1;
    let (status, _) = server
        .post(
            &format!("/api/v1/runs/{}/retry", good["id"].as_str().unwrap()),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 409, "a succeeded run is not retried");
    let (status, again) = server
        .post(&format!("/api/v1/runs/{fail_id}/retry"), &alice, None)
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(
        (&again["id"], &again["attempt"]),
        (&json!(fail_id), &json!(2))
    );
    let again = wait_run(&server, &alice, fail_id, Duration::from_secs(30), ended).await;
    assert_eq!(again["status"], "failed");
    let attempts: Vec<i64> = log_messages(&server, &alice, fail_id)
        .await
        .into_iter()
        .filter(|(_, m)| m.contains("started on"))
        .map(|(a, _)| a)
        .collect();
    assert_eq!(attempts, [1, 2]);

    // A cancelled run can be retried too.
    let (status, _) = server
        .post(&format!("/api/v1/runs/{spin_id}/retry"), &alice, None)
        .await;
    assert_eq!(status, 202);
    wait_run(&server, &alice, &spin_id, Duration::from_secs(20), |r| {
        r["status"] == "running"
    })
    .await;
    server
        .post(&format!("/api/v1/runs/{spin_id}/cancel"), &root, None)
        .await;
    let run = wait_run(&server, &alice, &spin_id, Duration::from_secs(10), ended).await;
    assert_eq!(
        (&run["status"], &run["attempt"]),
        (&json!("cancelled"), &json!(2))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_runs_logs_audit_or_the_database() {
    let server = TestServer::start(options(None)).await;
    let root = server.token_for(Role::Admin, "root").await;
    let alice = server.token_for(Role::Member, "alice").await;
    install(
        &server,
        &root,
        "test-action",
        "test-action",
        "secrets = [\"DEPLOY_TOKEN\"]\n[settings]\nsecret_name = \"DEPLOY_TOKEN\"\n",
    )
    .await;
    service(&server, &alice, "payments", "service").await;

    // The plugin logs and returns the host secret; the host masks it.
    let (status, leak) = start(
        &server,
        &alice,
        "test-action",
        json!({"input": {"mode": "leak", "password": TYPED_SECRET}, "entity": "component:default/payments"}),
    )
    .await;
    assert_eq!(status, 202, "{leak}");
    assert_eq!(leak["input"]["password"], "[secret]");
    let leak_id = leak["id"].as_str().unwrap().to_owned();
    let leak = wait_run(&server, &alice, &leak_id, Duration::from_secs(30), ended).await;
    assert_eq!(leak["status"], "succeeded", "{leak}");
    assert_eq!(leak["output"], json!({"leaked": "[secret]"}));
    let lines = log_messages(&server, &alice, &leak_id).await;
    assert!(
        lines.iter().any(|(_, m)| m == "the secret is [secret]"),
        "{lines:?}"
    );

    // A secret input field reaches the plugin (it echoes its input) but is
    // masked in what it returns, and is not kept once the run ends.
    let (_, echo) = start(
        &server,
        &alice,
        "test-action",
        json!({"input": {"mode": "ok", "password": TYPED_SECRET}, "entity": "component:default/payments"}),
    )
    .await;
    let echo_id = echo["id"].as_str().unwrap().to_owned();
    let echo = wait_run(&server, &alice, &echo_id, Duration::from_secs(30), ended).await;
    assert_eq!(
        echo["output"]["input"],
        json!({"mode": "ok", "password": "[secret]"})
    );

    // A failed run with a secret field: the retry must bring it again.
    let (_, failing) = start(
        &server,
        &alice,
        "test-action",
        json!({"input": {"mode": "fail", "password": TYPED_SECRET}, "entity": "component:default/payments"}),
    )
    .await;
    let failing_id = failing["id"].as_str().unwrap().to_owned();
    wait_run(&server, &alice, &failing_id, Duration::from_secs(30), ended).await;
    let (status, body) = server
        .post(&format!("/api/v1/runs/{failing_id}/retry"), &alice, None)
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(problem_fields(&body), ["/input/password"]);
    let (status, body) = server
        .post(
            &format!("/api/v1/runs/{failing_id}/retry"),
            &alice,
            Some(&json!({"input": {"password": TYPED_SECRET}})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    wait_run(&server, &alice, &failing_id, Duration::from_secs(30), ended).await;

    // Everything a user can read...
    let mut seen = String::new();
    for path in [
        "/api/v1/runs".to_owned(),
        format!("/api/v1/runs/{leak_id}"),
        format!("/api/v1/runs/{leak_id}/logs"),
        format!("/api/v1/runs/{echo_id}/logs"),
        format!("/api/v1/runs/{failing_id}/logs"),
        "/api/v1/audit".to_owned(),
    ] {
        let (status, body) = server.get(&path, &root).await;
        assert_eq!(status, 200, "{path}: {body}");
        seen.push_str(&body.to_string());
    }
    seen.push_str(&stream_body(&server, &root, &leak_id, None).await);
    assert!(seen.contains(&leak_id), "the responses were read");
    for secret in [HOST_SECRET, TYPED_SECRET] {
        assert!(!seen.contains(secret), "{secret} in a response");
    }
    // ... and every row of every table.
    let dump = portolan_e2e::dump_sqlite(&server.state.config.database_url).await;
    server.stop().await;
    assert!(
        dump.contains(&leak_id) && dump.contains("hello"),
        "the dump has the runs"
    );
    for secret in [HOST_SECRET, TYPED_SECRET] {
        assert!(!dump.contains(secret), "{secret} stored in the database");
    }
}
