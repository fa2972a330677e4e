//! Drop-in install: the running host follows its plugins folder.

use std::time::Duration;

use portolan_e2e::{component, TestServer};
use portolan_store::Role;
use tokio::sync::RwLock;

/// The test of the README's promise (a dropped plugin is listed within a
/// second) runs alone: the others in this file start servers and compile
/// plugins of their own, and on a 2-core machine their compiles, not the
/// folder watcher, set how long a pickup takes (2.2 s in one CI run). They
/// share the lock among themselves.
static PICKUP_TIMING: RwLock<()> = RwLock::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_plugin_is_listed_replaced_and_unloaded() {
    let _alone = PICKUP_TIMING.write().await;
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;

    // Install: listed as ready within 1 s.
    server.install(&component("hostile-check"), "probe");
    let (took, body) = server
        .wait_plugin("probe", &token, Duration::from_secs(5), |s, b| {
            s == 200 && b["status"] == "ready"
        })
        .await
        .expect("the dropped plugin was never listed as ready");
    eprintln!("picked up a dropped plugin in {took:?}");
    assert!(
        took <= Duration::from_secs(1),
        "took {took:?} to pick up the plugin"
    );
    assert_eq!(body["role"], "scorecard-check");
    assert_eq!(body["version"], "0.0.1");
    let first_hash = body["hash"].as_str().unwrap().to_owned();

    // It is in the list too.
    let (status, list) = server.get("/api/v1/plugins", &token).await;
    assert_eq!(status, 200);
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == "probe"));

    // Replace the file: the new version is served.
    server.install(&component("echo-check"), "probe");
    let (took, body) = server
        .wait_plugin("probe", &token, Duration::from_secs(5), |_, b| {
            b["version"] == "2.0.0"
        })
        .await
        .expect("the replaced plugin never showed its new version");
    assert!(
        took <= Duration::from_secs(1),
        "took {took:?} to swap the plugin"
    );
    assert_ne!(body["hash"].as_str().unwrap(), first_hash);
    let plugin = server.state.registry.plugin("probe").unwrap();
    let report = tokio::task::spawn_blocking(move || {
        plugin.evaluate(
            "echo",
            &serde_json::json!({}),
            &[portolan_e2e::entity("svc")],
        )
    })
    .await
    .unwrap();
    let outcomes = report.result.expect("the new version answers");
    assert_eq!(
        outcomes[0].message.as_deref(),
        Some("Component:default/svc")
    );

    // Delete it: unloaded.
    std::fs::remove_file(server.plugins_dir().join("probe.wasm")).unwrap();
    let (took, body) = server
        .wait_plugin("probe", &token, Duration::from_secs(5), |s, _| s == 404)
        .await
        .expect("the deleted plugin was never unloaded");
    assert!(took <= Duration::from_secs(1), "took {took:?} to unload");
    assert_eq!(body["status"], 404);
    assert!(server.state.registry.plugin("probe").is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_wasm_is_listed_as_failed_and_the_host_serves_on() {
    let _shared = PICKUP_TIMING.read().await;
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    server.install(&component("required-fields"), "good");
    std::fs::write(
        server.plugins_dir().join("junk.wasm"),
        b"\0asm this is not a component",
    )
    .unwrap();
    // A core module that is valid wasm but no component.
    std::fs::write(
        server.plugins_dir().join("core-module.wasm"),
        [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    )
    .unwrap();

    let (_, junk) = server
        .wait_plugin("junk", &token, Duration::from_secs(5), |_, b| {
            b["status"] == "failed"
        })
        .await
        .expect("the garbage file was never listed as failed");
    let reason = junk["error"].as_str().unwrap();
    assert!(
        reason.contains("not a valid WebAssembly component"),
        "{reason}"
    );
    let (_, core) = server
        .wait_plugin("core-module", &token, Duration::from_secs(5), |_, b| {
            b["status"] == "failed"
        })
        .await
        .expect("the core module was never listed as failed");
    assert!(
        core["error"].as_str().unwrap().contains("component"),
        "{core}"
    );

    let (_, good) = server
        .wait_plugin("good", &token, Duration::from_secs(5), |_, b| {
            b["status"] == "ready"
        })
        .await
        .expect("the good plugin loads beside the bad ones");
    assert_eq!(good["role"], "scorecard-check");
    let (status, failed) = server.get("/api/v1/plugins?status=failed", &token).await;
    assert_eq!(status, 200);
    assert_eq!(failed["total"], 2);
    let (status, _) = server.get("/healthz", &token).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sidecar_fails_the_plugin_with_every_problem_named() {
    let _shared = PICKUP_TIMING.read().await;
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    std::fs::write(
        server.plugins_dir().join("strict.toml"),
        "[limits]\ntimeout_ms = 0\n[http]\nallow = [\"https://example.com/x\"]\n",
    )
    .unwrap();
    server.install(&component("required-fields"), "strict");
    let (_, body) = server
        .wait_plugin("strict", &token, Duration::from_secs(5), |_, b| {
            b["status"] == "failed"
        })
        .await
        .expect("a plugin with a bad sidecar must be listed as failed");
    let err = body["error"].as_str().unwrap();
    assert!(
        err.contains("limits.timeout_ms") && err.contains("http.allow[0]"),
        "{err}"
    );

    // Fixing the sidecar alone reloads the plugin.
    std::fs::write(
        server.plugins_dir().join("strict.toml"),
        "[limits]\ntimeout_ms = 2000\n",
    )
    .unwrap();
    let (_, body) = server
        .wait_plugin("strict", &token, Duration::from_secs(5), |_, b| {
            b["status"] == "ready"
        })
        .await
        .expect("fixing the sidecar reloads the plugin");
    assert_eq!(body["grants"]["limits"]["timeoutMs"], 2000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_loads_compiled_code_from_the_disk_cache() {
    let _shared = PICKUP_TIMING.read().await;
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    server.install(&component("service-template"), "tmpl");
    let (_, body) = server
        .wait_plugin("tmpl", &token, Duration::from_secs(5), |_, b| {
            b["status"] == "ready"
        })
        .await
        .unwrap();
    assert_eq!(body["origin"], "compiled");

    // A second registry over the same folder and cache, as after a restart.
    let registry = portolan_runtime::Registry::new(
        server.state.registry.runtime().clone(),
        server.plugins_dir(),
    );
    registry.scan().await;
    let entry = registry.get("tmpl").unwrap();
    assert_eq!(entry.status, portolan_runtime::PluginStatus::Ready);
    assert_eq!(entry.origin, Some(portolan_runtime::cache::Origin::Cache));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_finish_on_the_version_they_started_with() {
    let _shared = PICKUP_TIMING.read().await;
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    std::fs::write(
        server.plugins_dir().join("swap.toml"),
        "[limits]\ntimeout_ms = 1500\n",
    )
    .unwrap();
    server.install(&component("hostile-check"), "swap");
    server
        .wait_plugin("swap", &token, Duration::from_secs(5), |_, b| {
            b["version"] == "0.0.1"
        })
        .await
        .unwrap();
    let old = server.state.registry.plugin("swap").unwrap();
    let in_flight = tokio::task::spawn_blocking(move || {
        old.evaluate(
            "hostile",
            &serde_json::json!({"mode": "loop"}),
            &[portolan_e2e::entity("svc")],
        )
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.install(&component("echo-check"), "swap");
    server
        .wait_plugin("swap", &token, Duration::from_secs(5), |_, b| {
            b["version"] == "2.0.0"
        })
        .await
        .expect("the new version is served while the old call runs");
    let new = server.state.registry.plugin("swap").unwrap();
    let report = tokio::task::spawn_blocking(move || {
        new.evaluate(
            "echo",
            &serde_json::json!({}),
            &[portolan_e2e::entity("svc")],
        )
    })
    .await
    .unwrap();
    assert!(report.result.is_ok());
    assert!(
        !in_flight.is_finished(),
        "the old call must not be cut short by the swap"
    );

    // The old call ends by its own deadline, not by the swap.
    let report = in_flight.await.unwrap();
    assert_eq!(
        report.result.unwrap_err(),
        portolan_runtime::CallError::Timeout { timeout_ms: 1500 }
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_budget_stops_a_busy_plugin_when_the_host_meters_fuel() {
    let _shared = PICKUP_TIMING.read().await;
    let server = TestServer::start(portolan_e2e::Options {
        fuel: true,
        ..Default::default()
    })
    .await;
    let token = server.token(Role::Viewer).await;
    std::fs::write(
        server.plugins_dir().join("metered.toml"),
        "[limits]\nfuel = 5000000\n",
    )
    .unwrap();
    server.install(&component("hostile-check"), "metered");
    server
        .wait_plugin("metered", &token, Duration::from_secs(5), |_, b| {
            b["status"] == "ready"
        })
        .await
        .expect("the metered plugin loads");
    let plugin = server.state.registry.plugin("metered").unwrap();
    let report = tokio::task::spawn_blocking(move || {
        let looped = plugin.evaluate(
            "hostile",
            &serde_json::json!({"mode": "loop"}),
            &[portolan_e2e::entity("svc")],
        );
        let ok = plugin.evaluate(
            "hostile",
            &serde_json::json!({"mode": "ok"}),
            &[portolan_e2e::entity("svc")],
        );
        (looped, ok)
    })
    .await
    .unwrap();
    assert_eq!(
        report.0.result.unwrap_err(),
        portolan_runtime::CallError::FuelExhausted { fuel: 5_000_000 }
    );
    assert!(
        report.0.elapsed < Duration::from_secs(4),
        "fuel, not the deadline, stopped it"
    );
    assert!(report.1.result.is_ok(), "a small call fits in the budget");
    server.stop().await;
}
