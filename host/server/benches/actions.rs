//! Issue 5's benchmark: action runs per second end to end (the API call
//! that starts a run, to the run recorded `succeeded`) for a trivial action,
//! and the latency from queued to running, on SQLite, on PostgreSQL with one
//! replica and with two replicas sharing the database; beside it, measured
//! in the same run, the plugin calls alone (no API, no queue, no database)
//! on as many threads as a replica has workers.
//!
//! Run with `cargo bench -p portolan --bench actions` after
//! `scripts/build-plugins.sh --fixtures` (it uses the `test-action`
//! fixture, mode `ok`: one log line, a small output). PostgreSQL at
//! `PORTOLAN_TEST_POSTGRES_URL` or 127.0.0.1:5432. A plain `main`
//! (`harness = false`): each portal is built in this process (the real
//! `app::serve` with its workers) and driven over HTTP by 16 concurrent
//! clients. "Two replicas" are two such portals, each with its own workers,
//! on one database; the clients alternate between them.
//!
//! `BENCH_QUICK=1` runs 200 runs per case instead of 1,000.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portolan::app::AppState;
use portolan::config::{Config, Overrides, ServeOverrides};
use portolan_runtime::model::ActionInvocation;
use portolan_store::testing::TestDatabase;
use portolan_store::Role;
use serde_json::json;

const CLIENTS: usize = 16;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Portal {
    state: AppState,
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn portal(database_url: Option<&str>) -> Portal {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let fixture = repo_root().join("target/fixtures/test-action.wasm");
    std::fs::copy(&fixture, plugins.join("test-action.wasm")).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/build-plugins.sh --fixtures first",
            fixture.display()
        )
    });
    let config = Config::load(
        &Overrides {
            data_dir: Some(dir.path().join("data")),
            database_url: database_url.map(str::to_owned),
            ..Overrides::default()
        },
        &ServeOverrides {
            plugins_dir: Some(plugins),
            ..ServeOverrides::default()
        },
        &HashMap::new(),
    )
    .expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = portolan::app::build(config).await.expect("state");
    state.registry.scan().await;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(portolan::app::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    Portal {
        state,
        base,
        stop,
        task,
        _dir: dir,
    }
}

impl Portal {
    async fn shut(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts `n` runs through the portals (alternating), waits until all have
/// ended, and prints runs/s and the queued-to-running latency.
async fn case(name: &str, portals: &[Portal], n: usize) -> f64 {
    let store = portals[0].state.store.clone();
    let token = store
        .create_token(Role::Member, "bench")
        .await
        .unwrap()
        .secret;
    let http = reqwest::Client::new();
    for p in portals {
        let r = http
            .put(format!(
                "{}/api/v1/entities/component/default/payments",
                p.base
            ))
            .bearer_auth(&token)
            .json(
                &json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                          "metadata": {"name": "payments"},
                          "spec": {"type": "service", "owner": "team", "lifecycle": "production"}}),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let bases: Vec<String> = portals.iter().map(|p| p.base.clone()).collect();
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, token, bases, next) = (http.clone(), token.clone(), bases.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return ids;
                }
                let base = &bases[i % bases.len()];
                let r = http
                    .post(format!("{base}/api/v1/actions/test-action/runs"))
                    .bearer_auth(&token)
                    .json(&json!({"input": {"mode": "ok"}, "entity": "component:default/payments"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                let body: serde_json::Value = r.json().await.unwrap();
                ids.push(body["id"].as_str().unwrap().to_owned());
            }
        }));
    }
    let mut ids = Vec::new();
    for c in clients {
        ids.extend(c.await.unwrap());
    }
    let queued_in = started.elapsed();
    // Wait for the last run to end; check the others afterwards.
    let mut done = 0;
    while done < ids.len() {
        let run = store.run(&ids[done]).await.unwrap().unwrap();
        if run.status.is_final() {
            done += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let elapsed = started.elapsed();
    let mut latencies = Vec::with_capacity(ids.len());
    let mut succeeded = 0;
    for id in &ids {
        let run = store.run(id).await.unwrap().unwrap();
        if run.status == portolan_store::RunStatus::Succeeded {
            succeeded += 1;
        }
        if let Some(s) = run.started_at {
            latencies.push((s - run.queued_at).num_milliseconds());
        }
    }
    latencies.sort_unstable();
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "{name:<28} {n} runs in {:>7.2} s: {rate:>7.1} runs/s end to end ({succeeded} succeeded; all queued after {:.2} s); queued->running p50 {} ms, p99 {} ms",
        elapsed.as_secs_f64(),
        queued_in.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    rate
}

/// Latency of a lone run: `n` runs one after the other, each started once
/// the previous one ended, so no run waits behind another.
async fn one_at_a_time(name: &str, portal: &Portal, n: usize) {
    let store = portal.state.store.clone();
    let token = store
        .create_token(Role::Member, "bench-lone")
        .await
        .unwrap()
        .secret;
    let http = reqwest::Client::new();
    let mut pickup = Vec::with_capacity(n);
    let mut whole = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = http
            .post(format!("{}/api/v1/actions/test-action/runs", portal.base))
            .bearer_auth(&token)
            .json(&json!({"input": {"mode": "ok"}, "entity": "component:default/payments"}))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        let id = body["id"].as_str().unwrap().to_owned();
        let run = loop {
            let run = store.run(&id).await.unwrap().unwrap();
            if run.status.is_final() {
                break run;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        whole.push(t.elapsed().as_micros() as i64);
        if let Some(s) = run.started_at {
            pickup.push((s - run.queued_at).num_milliseconds());
        }
    }
    pickup.sort_unstable();
    whole.sort_unstable();
    println!(
        "{name:<28} {n} lone runs: queued->running p50 {} ms, p99 {} ms; API call->succeeded p50 {:.1} ms, p99 {:.1} ms",
        percentile(&pickup, 0.5),
        percentile(&pickup, 0.99),
        percentile(&whole, 0.5) as f64 / 1000.0,
        percentile(&whole, 0.99) as f64 / 1000.0,
    );
}

/// The baseline: the same plugin calls with nothing around them, on as many
/// threads as a replica has workers.
async fn calls_alone(portal: &Portal, n: usize) -> f64 {
    let plugin = portal.state.registry.plugin("test-action").expect("loaded");
    let threads = portal.state.config.actions.workers;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..threads {
        let plugin = plugin.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            for i in (t..n).step_by(threads) {
                let report = plugin.run_action(&ActionInvocation {
                    run_id: format!("bench-{i}"),
                    actor: "bench".into(),
                    attempt: 1,
                    input: json!({"mode": "ok"}),
                    entity: None,
                });
                assert!(report.result.is_ok());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "{:<28} {n} calls in {:>7.2} s: {rate:>7.1} calls/s ({threads} threads)",
        "baseline: plugin calls alone",
        elapsed.as_secs_f64()
    );
    rate
}

fn main() {
    // As the `portolan` binary's main does.
    portolan::use_small_pages();
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let n = if quick { 200 } else { 1_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async move {
        println!(
            "action run benchmark: {n} runs per case, {CLIENTS} clients, {} cores, load {}",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            loadavg()
        );
        let sqlite = portal(None).await;
        let baseline = calls_alone(&sqlite, n).await;
        let on_sqlite = case("SQLite, 1 replica", std::slice::from_ref(&sqlite), n).await;
        one_at_a_time("SQLite, 1 replica", &sqlite, n / 5).await;
        sqlite.shut().await;

        let db = TestDatabase::postgres().await;
        let one = portal(Some(&db.url)).await;
        let on_pg = case("PostgreSQL, 1 replica", std::slice::from_ref(&one), n).await;
        one_at_a_time("PostgreSQL, 1 replica", &one, n / 5).await;
        let two = portal(Some(&db.url)).await;
        let on_pg2 = case("PostgreSQL, 2 replicas", &[one, two], n).await;
        println!(
            "end to end / calls alone: SQLite {:.2}, PostgreSQL {:.2}, PostgreSQL x2 {:.2}",
            on_sqlite / baseline,
            on_pg / baseline,
            on_pg2 / baseline
        );
        db.drop_db().await;
    });
}
