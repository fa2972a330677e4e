//! Several replicas: two real `portolan serve` processes on one PostgreSQL
//! database. 1,000 queued runs are each executed exactly once, by both
//! replicas between them; when one replica is killed mid-run, its runs end
//! failed with the reason (none is silently lost) and the other replica
//! goes on.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use portolan_e2e::{component, Replica};
use portolan_store::testing::TestDatabase;
use portolan_store::{Role, RunFilter, RunStatus, Store};
use serde_json::{json, Value};

async fn start_run(http: &reqwest::Client, base: &str, token: &str, input: Value) -> String {
    let r = http
        .post(format!("{base}/api/v1/actions/test-action/runs"))
        .bearer_auth(token)
        .json(&json!({"input": input, "entity": "component:default/payments"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// Every run, by id.
async fn all_runs(store: &Store) -> HashMap<String, portolan_store::Run> {
    let mut out = HashMap::new();
    let mut before = None;
    loop {
        let page = store
            .list_runs(&RunFilter {
                before: before.clone(),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap();
        let done = page.len() < 500;
        before = page.last().map(|r| r.id.clone());
        out.extend(page.into_iter().map(|r| (r.id.clone(), r)));
        if done {
            return out;
        }
    }
}

/// The replica part of a worker name (`host-pid-xxxxxx/aN`).
fn replica_of(worker: &str) -> &str {
    worker.split('/').next().unwrap_or(worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_each_run_once_and_recover_a_dead_ones_runs() {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::copy(
        component("test-action"),
        dir.path().join("plugins/test-action.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("plugins/test-action.toml"),
        "[limits]\ntimeout_ms = 120000\n",
    )
    .unwrap();

    let store = Store::connect(&db.url).await.unwrap();
    let member = store
        .create_token(Role::Member, "alice")
        .await
        .unwrap()
        .secret;
    let http = reqwest::Client::new();
    let a = Replica::start(
        env!("CARGO_BIN_EXE_portolan-replica"),
        dir.path(),
        0,
        &db.url,
    );
    let b = Replica::start(
        env!("CARGO_BIN_EXE_portolan-replica"),
        dir.path(),
        1,
        &db.url,
    );
    a.wait_for(&http, "/api/v1/actions/test-action", &member)
        .await;
    b.wait_for(&http, "/api/v1/actions/test-action", &member)
        .await;
    let r = http
        .put(format!(
            "{}/api/v1/entities/component/default/payments",
            a.base
        ))
        .bearer_auth(&member)
        .json(
            &json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                      "metadata": {"name": "payments"},
                      "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // 1,000 runs, queued through both replicas, 16 requests at a time.
    let mut ids = HashSet::new();
    let mut pending = Vec::new();
    for i in 0..1000 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (http, member) = (http.clone(), member.clone());
        pending.push(tokio::spawn(async move {
            start_run(
                &http,
                &base,
                &member,
                json!({"mode": "ok", "note": format!("n{i}")}),
            )
            .await
        }));
        if pending.len() == 16 {
            for p in pending.drain(..) {
                ids.insert(p.await.unwrap());
            }
        }
    }
    for p in pending.drain(..) {
        ids.insert(p.await.unwrap());
    }
    assert_eq!(ids.len(), 1000);
    let deadline = Instant::now() + Duration::from_secs(300);
    let runs = loop {
        let runs = all_runs(&store).await;
        if runs.values().all(|r| r.status.is_final()) {
            break runs;
        }
        assert!(Instant::now() < deadline, "runs still not done");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(runs.len(), 1000);
    let mut by_replica: HashMap<String, usize> = HashMap::new();
    for run in runs.values() {
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        assert_eq!(run.attempt, 1);
        assert_eq!(run.output.as_ref().unwrap()["runId"], json!(run.id));
        *by_replica
            .entry(replica_of(run.lease_owner.as_deref().unwrap()).to_owned())
            .or_default() += 1;
    }
    assert_eq!(by_replica.len(), 2, "both replicas worked: {by_replica:?}");
    // Exactly once: one "started" line per run in its log, and the plugin
    // itself greeted once.
    let mut pg = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let counts: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT run_id, \
         COUNT(*) FILTER (WHERE message LIKE 'attempt % started on %'), \
         COUNT(*) FILTER (WHERE message LIKE 'hello from run %') \
         FROM action_run_logs GROUP BY run_id",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    assert_eq!(counts.len(), 1000);
    for (run, started, greeted) in &counts {
        assert_eq!(
            (*started, *greeted),
            (1, 1),
            "run {run} executed more than once"
        );
    }

    // Kill one replica mid-run.
    let mut long = Vec::new();
    for i in 0..8 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        long.push(start_run(&http, base, &member, json!({"mode": "sleep", "ms": 100000})).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = loop {
        let runs = all_runs(&store).await;
        let running: Vec<portolan_store::Run> = long
            .iter()
            .map(|id| runs[id].clone())
            .filter(|r| r.status == RunStatus::Running)
            .collect();
        if running.len() == 8 {
            break running;
        }
        assert!(Instant::now() < deadline, "the long runs never all started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let a_marker = format!("-{}-", a.pid());
    let (on_a, on_b): (Vec<_>, Vec<_>) = running
        .into_iter()
        .partition(|r| r.lease_owner.as_deref().unwrap().contains(&a_marker));
    assert!(
        !on_a.is_empty() && !on_b.is_empty(),
        "both replicas run some"
    );
    let killed_at = Instant::now();
    drop(a);

    for run in &on_a {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = store.run(&run.id).await.unwrap().unwrap();
            if now.status.is_final() {
                assert_eq!(now.status, RunStatus::Failed, "{now:?}");
                let error = now.error.unwrap();
                assert_eq!(error["code"], "interrupted");
                assert!(error["message"].as_str().unwrap().contains("stopped"));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "run {} of the dead replica was lost",
                run.id
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let recovered_in = killed_at.elapsed();
    for run in &on_b {
        let now = store.run(&run.id).await.unwrap().unwrap();
        assert_eq!(
            now.status,
            RunStatus::Running,
            "the living replica goes on: {now:?}"
        );
        let r = http
            .post(format!("{}/api/v1/runs/{}/cancel", b.base, run.id))
            .bearer_auth(&member)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A dead replica's run can be retried; the living one takes it.
    let retried = &on_a[0].id;
    let r = http
        .post(format!("{}/api/v1/runs/{retried}/retry", b.base))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = store.run(retried).await.unwrap().unwrap();
        if now.status == RunStatus::Running {
            assert_eq!(now.attempt, 2);
            assert!(!now.lease_owner.unwrap().contains(&a_marker));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the retry never started: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "killed replica's {} runs failed as interrupted within {recovered_in:?}",
        on_a.len()
    );
    drop(b);
    store.close().await;
    db.drop_db().await;
}
