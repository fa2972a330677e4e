//! Catalog sources end to end: real source components in a real server,
//! driven through `/api/v1/sources` and checked through `/api/v1/entities`,
//! on SQLite and PostgreSQL.
//!
//! Sources sync by themselves when they load and whenever their `.wasm` or
//! sidecar changes, so most steps here rewrite a sidecar and wait for the
//! next sync rather than asking for one.

use std::time::{Duration, Instant};

use portolan_e2e::{component, Options, TestServer};
use portolan_store::testing::TestDatabase;
use portolan_store::Role;
use serde_json::{json, Value};

/// Polls `GET /api/v1/sources/{id}` until its newest finished sync is not
/// `previous` and nothing is pending, and returns that sync.
async fn next_sync(server: &TestServer, id: &str, token: &str, previous: Option<&str>) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = server.get(&format!("/api/v1/sources/{id}"), token).await;
        if status == 200 {
            let last = &body["lastSync"];
            let fresh = last["id"].as_str().is_some_and(|l| Some(l) != previous);
            if fresh && body["current"].is_null() {
                return last.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no new sync of {id} after a minute: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn total(server: &TestServer, token: &str, query: &str) -> u64 {
    let (status, body) = server
        .get(&format!("/api/v1/entities?{query}"), token)
        .await;
    assert_eq!(status, 200, "{body}");
    body["total"].as_u64().unwrap()
}

async fn push_component(server: &TestServer, token: &str, name: &str) {
    let r = server
        .http
        .put(server.url(&format!("/api/v1/entities/component/default/{name}")))
        .bearer_auth(token)
        .json(&json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": name},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-ci"}
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

fn bulk_sidecar(count: u32, generation: u32) -> String {
    format!("[settings]\ncount = {count}\npage_size = 20\ngeneration = {generation}\nchanged_percent = 10\n")
}

fn hostile_sidecar(mode: &str, extra: &str) -> String {
    format!("{extra}\n[settings]\nmode = \"{mode}\"\n")
}

async fn resync_keeps_pushed_entities_and_removes_orphans(database_url: Option<String>) {
    let server = TestServer::start(Options {
        database_url,
        ..Options::default()
    })
    .await;
    let token = server.token(Role::Member).await;
    push_component(&server, &token, "pushed-by-ci").await;

    server.write_sidecar("bulk", &bulk_sidecar(50, 0));
    server.install(&component("bulk-source"), "bulk");
    let first = next_sync(&server, "bulk", &token, None).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["trigger"], "load");
    assert_eq!(
        first["counts"],
        json!({"added": 50, "updated": 0, "unchanged": 0, "removed": 0})
    );
    assert_eq!(
        first["progress"],
        json!({"pages": 3, "entities": 50, "totalHint": 50})
    );
    assert!(first["durationMs"].as_u64().is_some());
    assert_eq!(total(&server, &token, "kind=component").await, 51);

    // Nothing changed: nothing written.
    let again = server.sync_source("bulk", &token).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["trigger"], "manual");
    assert!(again["actor"].as_str().unwrap().starts_with("token:"));
    assert_eq!(
        again["counts"],
        json!({"added": 0, "updated": 0, "unchanged": 50, "removed": 0})
    );

    // A new sidecar is a new revision: the source resyncs by itself. It now
    // returns 40 entities, 10 of them changed.
    server.write_sidecar("bulk", &bulk_sidecar(40, 1));
    let third = next_sync(&server, "bulk", &token, again["id"].as_str()).await;
    assert_eq!(third["status"], "succeeded", "{third}");
    assert_eq!(third["trigger"], "plugin-changed");
    assert_eq!(
        third["counts"],
        json!({"added": 0, "updated": 10, "unchanged": 30, "removed": 10})
    );
    assert_eq!(total(&server, &token, "kind=component").await, 41);
    let (status, _) = server
        .get("/api/v1/entities/component/default/bulk-00045", &token)
        .await;
    assert_eq!(status, 404, "orphan removed");
    let (status, pushed) = server
        .get("/api/v1/entities/component/default/pushed-by-ci", &token)
        .await;
    assert_eq!(status, 200, "the pushed entity is untouched: {pushed}");
    let (_, changed) = server
        .get("/api/v1/entities/component/default/bulk-00003", &token)
        .await;
    assert!(
        changed["metadata"]["description"]
            .as_str()
            .unwrap()
            .contains("generation 1"),
        "{changed}"
    );

    // History, newest first, in pages.
    let (status, history) = server
        .get("/api/v1/sources/bulk/syncs?limit=2", &token)
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [third["id"].as_str().unwrap(), again["id"].as_str().unwrap()]
    );
    let cursor = history["nextCursor"].as_str().unwrap();
    let (_, rest) = server
        .get(
            &format!("/api/v1/sources/bulk/syncs?limit=2&cursor={cursor}"),
            &token,
        )
        .await;
    assert_eq!(rest["items"][0]["id"], first["id"]);
    assert!(rest["nextCursor"].is_null());

    let (_, source) = server.get("/api/v1/sources/bulk", &token).await;
    assert_eq!(source["entities"], 40);
    assert_eq!(source["status"], "ready");
    let (_, list) = server.get("/api/v1/sources", &token).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], "bulk");
    server.stop().await;
}

#[tokio::test]
async fn resync_keeps_pushed_entities_and_removes_orphans_sqlite() {
    resync_keeps_pushed_entities_and_removes_orphans(None).await;
}

#[tokio::test]
async fn resync_keeps_pushed_entities_and_removes_orphans_postgres() {
    let db = TestDatabase::postgres().await;
    resync_keeps_pushed_entities_and_removes_orphans(Some(db.url.clone())).await;
    db.drop_db().await;
}

async fn failing_syncs_leave_the_catalog_as_it_was(database_url: Option<String>) {
    let server = TestServer::start(Options {
        database_url,
        ..Options::default()
    })
    .await;
    let token = server.token(Role::Member).await;
    server.write_sidecar("hostile", &hostile_sidecar("ok", ""));
    server.install(&component("hostile-source"), "hostile");
    let good = next_sync(&server, "hostile", &token, None).await;
    assert_eq!(good["status"], "succeeded", "{good}");
    assert_eq!(good["counts"]["added"], 3);
    let before = server
        .get("/api/v1/entities?kind=component&limit=100", &token)
        .await
        .1["items"]
        .clone();
    assert_eq!(before.as_array().unwrap().len(), 3);

    let cases = [
        ("loop", "[limits]\ntimeout_ms = 300", "timeout", "deadline"),
        ("trap", "", "trap", "trapped"),
        ("error", "", "plugin-error", "inventory.example.invalid"),
        ("second-page-fails", "", "plugin-error", "page 2"),
        ("endless-cursor", "", "bad-output", "cursor"),
    ];
    let mut previous = good["id"].as_str().unwrap().to_owned();
    for (mode, extra, code, needle) in cases {
        server.write_sidecar("hostile", &hostile_sidecar(mode, extra));
        let sync = next_sync(&server, "hostile", &token, Some(&previous)).await;
        assert_eq!(sync["status"], "failed", "{mode}: {sync}");
        assert_eq!(sync["error"]["code"], code, "{mode}: {sync}");
        let message = sync["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{mode}: {message}");
        assert!(sync["counts"].is_null());
        let now = server
            .get("/api/v1/entities?kind=component&limit=100", &token)
            .await
            .1["items"]
            .clone();
        assert_eq!(now, before, "{mode}: the catalog is as it was");
        previous = sync["id"].as_str().unwrap().to_owned();
    }

    // A source entity that no longer validates is refused and reported;
    // its last good version stays rather than being removed as an orphan.
    server.write_sidecar("hostile", &hostile_sidecar("invalid", ""));
    let sync = next_sync(&server, "hostile", &token, Some(&previous)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(
        sync["counts"],
        json!({"added": 0, "updated": 0, "unchanged": 2, "removed": 0})
    );
    assert_eq!(sync["problemCount"], 1);
    assert_eq!(sync["problems"][0]["entity"], "component:default/hostile-1");
    assert_eq!(sync["problems"][0]["errors"][0]["field"], "/spec/owner");
    let (status, kept) = server
        .get("/api/v1/entities/component/default/hostile-1", &token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(kept["spec"]["owner"], "team-hostile");

    // The host and other plugins carried on: a sync that works still works.
    server.write_sidecar("hostile", &hostile_sidecar("ok", ""));
    let last = next_sync(&server, "hostile", &token, sync["id"].as_str()).await;
    assert_eq!(last["status"], "succeeded", "{last}");
    server.stop().await;
}

#[tokio::test]
async fn failing_syncs_leave_the_catalog_as_it_was_sqlite() {
    failing_syncs_leave_the_catalog_as_it_was(None).await;
}

#[tokio::test]
async fn failing_syncs_leave_the_catalog_as_it_was_postgres() {
    let db = TestDatabase::postgres().await;
    failing_syncs_leave_the_catalog_as_it_was(Some(db.url.clone())).await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_schedule_runs_syncs_by_itself() {
    let server = TestServer::start(Options::default()).await;
    let token = server.token(Role::Viewer).await;
    server.write_sidecar(
        "hostile",
        &hostile_sidecar("ok", "[schedule]\nevery = \"10s\""),
    );
    server.install(&component("hostile-source"), "hostile");
    let first = next_sync(&server, "hostile", &token, None).await;
    assert_eq!(first["trigger"], "load");
    let (_, source) = server.get("/api/v1/sources/hostile", &token).await;
    assert_eq!(source["schedule"], json!({"every": "10s"}));
    let next_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(source["nextSyncAt"].clone()).unwrap();
    let started: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(first["startedAt"].clone()).unwrap();
    assert_eq!((next_at - started).num_seconds(), 10);

    let second = next_sync(&server, "hostile", &token, first["id"].as_str()).await;
    assert_eq!(second["trigger"], "schedule", "{second}");
    assert_eq!(second["status"], "succeeded");
    assert_eq!(second["counts"]["unchanged"], 3);
    server.stop().await;
}

#[tokio::test]
async fn the_sources_api_refuses_what_it_cannot_do() {
    let server = TestServer::start(Options::default()).await;
    let viewer = server.token(Role::Viewer).await;
    let member = server.token(Role::Member).await;
    server.install(&component("echo-check"), "echo");
    server.write_sidecar("hostile", &hostile_sidecar("ok", ""));
    server.install(&component("hostile-source"), "hostile");
    // A sidecar with a schedule that does not parse fails the load, naming
    // the key.
    server.write_sidecar(
        "badly-scheduled",
        &hostile_sidecar("ok", "[schedule]\nevery = \"soon\""),
    );
    server.install(&component("hostile-source"), "badly-scheduled");
    next_sync(&server, "hostile", &viewer, None).await;

    let problem = |status: u16, body: &Value, want: u16, needle: &str| {
        assert_eq!(status, want, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(needle), "{body}");
    };
    let (s, b) = server.get("/api/v1/sources/nope", &viewer).await;
    problem(s, &b, 404, "nope");
    let (s, b) = server.get("/api/v1/sources/echo", &viewer).await;
    problem(s, &b, 404, "not a catalog source");
    let (s, b) = server
        .post("/api/v1/sources/hostile/sync", &viewer, None)
        .await;
    problem(s, &b, 403, "member");
    let (s, b) = server
        .post("/api/v1/sources/nope/sync", &member, None)
        .await;
    problem(s, &b, 404, "nope");
    let (s, b) = server
        .get("/api/v1/sources/hostile/syncs?limit=0", &viewer)
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "query.limit");
    let (s, b) = server
        .get("/api/v1/sources/hostile/syncs?cursor=%2F..", &viewer)
        .await;
    assert_eq!(s, 422, "{b}");
    let (s, _) = server
        .get("/api/v1/sources/hostile/syncs/0000", &viewer)
        .await;
    assert_eq!(s, 404);

    let loaded = server
        .wait_plugin(
            "badly-scheduled",
            &viewer,
            Duration::from_secs(30),
            |s, b| s == 200 && b["status"] == "failed",
        )
        .await
        .expect("the badly scheduled plugin is listed as failed");
    assert!(
        loaded.1["error"]
            .as_str()
            .unwrap()
            .contains("schedule.every"),
        "{}",
        loaded.1
    );

    // Two requests while one sync is pending get the same sync.
    let (s1, a) = server
        .post("/api/v1/sources/hostile/sync", &member, None)
        .await;
    let (s2, b) = server
        .post("/api/v1/sources/hostile/sync", &member, None)
        .await;
    assert_eq!((s1, s2), (202, 202));
    if a["id"] != b["id"] {
        // A second sync only once the first had ended (this plugin's sync
        // may fail fast, and a busy machine can take that long between the
        // two requests). The second's `queuedAt` is taken before its insert
        // waits for the database, so it can precede the first's
        // `finishedAt`; its `startedAt` is taken when a worker claims it,
        // which is after the insert went through, so after the first ended.
        let get = |id: &Value| {
            let path = format!("/api/v1/sources/hostile/syncs/{}", id.as_str().unwrap());
            let server = &server;
            let member = &member;
            async move { server.get(&path, member).await.1 }
        };
        let first = get(&a["id"]).await;
        assert!(
            ["succeeded", "failed"].contains(&first["status"].as_str().unwrap_or_default()),
            "a new sync was queued while {first} was pending: {b}"
        );
        let waited = Instant::now();
        let second = loop {
            let second = get(&b["id"]).await;
            if second["startedAt"].is_string() {
                break second;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "the second sync never started: {second}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let at = |v: &Value, key: &str| {
            chrono::DateTime::parse_from_rfc3339(v[key].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{key} of {v}: {e}"))
        };
        assert!(
            at(&first, "finishedAt") <= at(&second, "startedAt"),
            "a second sync started while {first} was still running: {second}"
        );
    }
    server.stop().await;
}

/// Two portal processes on one PostgreSQL database: each sync runs on one
/// of them, once.
#[tokio::test]
async fn replicas_share_syncs_without_running_one_twice() {
    let db = TestDatabase::postgres().await;
    let options = Options {
        database_url: Some(db.url.clone()),
        ..Options::default()
    };
    let a = TestServer::start(options.clone()).await;
    let b = TestServer::start(options).await;
    let token = a.token(Role::Member).await;
    for server in [&a, &b] {
        server.write_sidecar("bulk", &bulk_sidecar(30, 0));
    }
    a.install(&component("bulk-source"), "bulk");
    b.install(&component("bulk-source"), "bulk");
    let first = next_sync(&a, "bulk", &token, None).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["counts"]["added"], 30);

    // Give both schedulers time to look again: neither queues a second
    // load sync, since the newest job already has this revision.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, history) = b.get("/api/v1/sources/bulk/syncs", &token).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "{history}");

    // Manual syncs on both replicas at once: at most one pending at a time,
    // each run by one replica.
    let (sa, ra) = a.post("/api/v1/sources/bulk/sync", &token, None).await;
    let (sb, rb) = b.post("/api/v1/sources/bulk/sync", &token, None).await;
    assert_eq!((sa, sb), (202, 202));
    let done_a = a
        .wait_sync(
            "bulk",
            ra["id"].as_str().unwrap(),
            &token,
            Duration::from_secs(60),
        )
        .await;
    let done_b = b
        .wait_sync(
            "bulk",
            rb["id"].as_str().unwrap(),
            &token,
            Duration::from_secs(60),
        )
        .await;
    for done in [&done_a, &done_b] {
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["counts"]["unchanged"], 30, "{done}");
    }
    assert_eq!(total(&a, &token, "kind=component").await, 30);
    a.stop().await;
    b.stop().await;
    db.drop_db().await;
}
