//! Hostile plugins fail their own call with a clear error; the host and the
//! other plugins go on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portolan_e2e::{component, entity, TestServer};
use portolan_runtime::model::CheckStatus;
use portolan_runtime::{CallError, CallReport, Plugin};
use portolan_store::Role;
use serde_json::json;

/// Starts a local HTTP server answering `GET /hello` with "hi from test";
/// returns its port.
async fn hello_server() -> u16 {
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi from test" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

async fn evaluate(
    plugin: &Arc<Plugin>,
    params: serde_json::Value,
) -> CallReport<Vec<portolan_runtime::model::CheckOutcome>> {
    let plugin = plugin.clone();
    tokio::task::spawn_blocking(move || {
        // hostile-check and required-fields offer one check each.
        let check = plugin.checks()[0].id.clone();
        plugin.evaluate(&check, &params, &[entity("svc")])
    })
    .await
    .unwrap()
}

struct Setup {
    server: TestServer,
    hostile: Arc<Plugin>,
    granted: Arc<Plugin>,
    good: Arc<Plugin>,
    allowed_port: u16,
    other_port: u16,
    token: String,
}

async fn setup() -> Setup {
    let server = TestServer::start(Default::default()).await;
    let allowed_port = hello_server().await;
    let other_port = hello_server().await;
    let shared = server.dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("note.txt"), "granted content").unwrap();
    let dir = server.plugins_dir();
    std::fs::write(
        dir.join("hostile.toml"),
        format!("[limits]\ntimeout_ms = 1000\nmemory_mb = 32\n[http]\nallow = [\"127.0.0.1:{allowed_port}\"]\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("granted.toml"),
        format!(
            "[[dirs]]\nhost = {:?}\nguest = \"/shared\"\n",
            shared.display().to_string()
        ),
    )
    .unwrap();
    server.install(&component("hostile-check"), "hostile");
    server.install(&component("hostile-check"), "granted");
    server.install(&component("required-fields"), "good");
    let token = server.token(Role::Viewer).await;
    for id in ["hostile", "granted", "good"] {
        server
            .wait_plugin(id, &token, Duration::from_secs(10), |_, b| {
                b["status"] == "ready"
            })
            .await
            .unwrap_or_else(|| panic!("{id} did not load"));
    }
    let hostile = server.state.registry.plugin("hostile").unwrap();
    let granted = server.state.registry.plugin("granted").unwrap();
    let good = server.state.registry.plugin("good").unwrap();
    Setup {
        server,
        hostile,
        granted,
        good,
        allowed_port,
        other_port,
        token,
    }
}

/// The host still serves and a well-behaved plugin still works.
async fn assert_host_fine(s: &Setup) {
    let (status, body) = s.server.get("/api/v1/plugins", &s.token).await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 3);
    let report = evaluate(&s.good, json!({"fields": ["spec.owner"]})).await;
    assert_eq!(report.result.unwrap()[0].status, CheckStatus::Pass);
    let report = evaluate(&s.hostile, json!({"mode": "ok"})).await;
    assert_eq!(report.result.unwrap()[0].status, CheckStatus::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_plugins_fail_only_their_own_call() {
    let s = setup().await;

    // An infinite loop is interrupted at its 1 s deadline, while another
    // plugin's call goes through meanwhile.
    let started = Instant::now();
    let looping = tokio::spawn({
        let p = s.hostile.clone();
        async move { evaluate(&p, json!({"mode": "loop"})).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let meanwhile = evaluate(&s.good, json!({"fields": ["spec.owner"]})).await;
    assert!(meanwhile.result.is_ok());
    assert!(!looping.is_finished(), "the loop should still be running");
    let report = looping.await.unwrap();
    let took = started.elapsed();
    assert_eq!(
        report.result.unwrap_err(),
        CallError::Timeout { timeout_ms: 1000 }
    );
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // So is a plugin asleep in a host call (wasi:clocks), which epoch
    // interruption cannot reach: its wait ends at the deadline.
    let started = Instant::now();
    let report = tokio::time::timeout(
        Duration::from_secs(10),
        evaluate(&s.hostile, json!({"mode": "sleep"})),
    )
    .await
    .expect("a sleeping plugin's call ends at its deadline");
    let took = started.elapsed();
    assert_eq!(
        report.result.unwrap_err(),
        CallError::Timeout { timeout_ms: 1000 }
    );
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // A memory bomb stops at its 32 MiB cap.
    let report = evaluate(&s.hostile, json!({"mode": "membomb"})).await;
    assert_eq!(
        report.result.unwrap_err(),
        CallError::MemoryLimit {
            limit_bytes: 32 * 1024 * 1024
        }
    );

    // A trap and a panic are clean errors; the panic's message comes through.
    let report = evaluate(&s.hostile, json!({"mode": "trap"})).await;
    match report.result.unwrap_err() {
        CallError::Trap { message } => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    let report = evaluate(&s.hostile, json!({"mode": "panic"})).await;
    match report.result.unwrap_err() {
        CallError::Trap { message } => assert!(message.contains("boom"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(report.logs.iter().any(|l| l.message.contains("boom")));

    // Garbage output: one outcome too many.
    let report = evaluate(&s.hostile, json!({"mode": "wrong-count"})).await;
    assert!(
        matches!(report.result, Err(CallError::BadOutput { .. })),
        "{:?}",
        report.result
    );

    // A plugin's own error names the parameter.
    let report = evaluate(&s.hostile, json!({"mode": "nonsense"})).await;
    match report.result.unwrap_err() {
        CallError::Plugin { code, field, .. } => {
            assert_eq!(code, "invalid-parameter");
            assert_eq!(field.as_deref(), Some("/mode"));
        }
        other => panic!("expected a plugin error, got {other:?}"),
    }

    assert_host_fine(&s).await;
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_environment_and_logs_are_sandboxed() {
    let s = setup().await;

    // No grant: host files are out of reach.
    let report = evaluate(
        &s.hostile,
        json!({"mode": "read-file", "path": "/etc/hostname"}),
    )
    .await;
    let outcome = &report.result.unwrap()[0];
    assert_eq!(outcome.status, CheckStatus::Fail, "{outcome:?}");
    let report = evaluate(
        &s.hostile,
        json!({"mode": "read-file", "path": "/shared/note.txt"}),
    )
    .await;
    assert_eq!(report.result.unwrap()[0].status, CheckStatus::Fail);

    // With a read-only grant the file is readable, and nothing outside it.
    let report = evaluate(
        &s.granted,
        json!({"mode": "read-file", "path": "/shared/note.txt"}),
    )
    .await;
    let outcome = &report.result.unwrap()[0];
    assert_eq!(outcome.status, CheckStatus::Pass);
    assert_eq!(outcome.message.as_deref(), Some("granted content"));
    let report = evaluate(
        &s.granted,
        json!({"mode": "read-file", "path": "/shared/../../etc/hostname"}),
    )
    .await;
    assert_eq!(report.result.unwrap()[0].status, CheckStatus::Fail);

    // No inherited environment or arguments.
    let report = evaluate(&s.hostile, json!({"mode": "env"})).await;
    let message = report.result.unwrap()[0]
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        !message.contains("PATH") && !message.contains("HOME"),
        "{message}"
    );

    // A log flood is capped and says so.
    let report = evaluate(&s.hostile, json!({"mode": "log", "count": 5000})).await;
    assert!(report.result.is_ok());
    assert_eq!(report.logs.len(), portolan_runtime::call::MAX_LOG_LINES + 1);
    assert!(report.logs.last().unwrap().message.contains("dropped"));

    assert_host_fine(&s).await;
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_only_reaches_allowlisted_hosts() {
    let s = setup().await;

    let allowed = format!("http://127.0.0.1:{}/hello", s.allowed_port);
    let report = evaluate(&s.hostile, json!({"mode": "http", "url": allowed})).await;
    let outcome = &report.result.unwrap()[0];
    assert_eq!(outcome.status, CheckStatus::Pass, "{outcome:?}");
    let message = outcome.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("200") && message.contains("hi from test"),
        "{message}"
    );

    // Same host, another port: refused before any connection.
    let refused = format!("http://127.0.0.1:{}/hello", s.other_port);
    let report = evaluate(&s.hostile, json!({"mode": "http", "url": refused})).await;
    let outcome = &report.result.unwrap()[0];
    assert_eq!(outcome.status, CheckStatus::Fail);
    assert!(
        outcome
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("denied"),
        "{outcome:?}"
    );
    assert!(report
        .logs
        .iter()
        .any(|l| l.message.contains("not on this plugin's allowlist")));

    // A plugin without any grant cannot reach even the allowed server.
    let report = evaluate(&s.granted, json!({"mode": "http", "url": allowed})).await;
    assert_eq!(report.result.unwrap()[0].status, CheckStatus::Fail);

    assert_host_fine(&s).await;
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_only_plugins_granted_them_and_never_the_log() {
    let server = TestServer::start(portolan_e2e::Options {
        secrets: [
            ("API_KEY".to_owned(), "s3cr3t-value".to_owned()),
            ("OTHER_KEY".to_owned(), "other-value".to_owned()),
        ]
        .into(),
        ..Default::default()
    })
    .await;
    let token = server.token(Role::Viewer).await;
    std::fs::write(
        server.plugins_dir().join("keyed.toml"),
        "secrets = [\"API_KEY\", \"UNSET_KEY\"]\n",
    )
    .unwrap();
    server.install(&component("hostile-check"), "keyed");
    server
        .wait_plugin("keyed", &token, Duration::from_secs(10), |_, b| {
            b["status"] == "ready"
        })
        .await
        .expect("keyed loads");
    let keyed = server.state.registry.plugin("keyed").unwrap();

    // Granted and set: the plugin gets the value (its message is exactly
    // the value, masked: check outcomes are stored and shown, so the host
    // masks them as it masks logs); its log line is masked.
    let report = evaluate(&keyed, json!({"mode": "secret", "name": "API_KEY"})).await;
    let outcome = &report.result.unwrap()[0];
    assert_eq!(outcome.status, CheckStatus::Pass);
    assert_eq!(outcome.message.as_deref(), Some("[secret]"));
    let logged: Vec<&str> = report.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        logged.contains(&"using secret value [secret]"),
        "{logged:?}"
    );
    assert!(
        !logged.iter().any(|l| l.contains("s3cr3t-value")),
        "{logged:?}"
    );

    // Known to the host but not granted to this plugin.
    let report = evaluate(&keyed, json!({"mode": "secret", "name": "OTHER_KEY"})).await;
    let outcome = &report.result.unwrap()[0];
    assert_eq!(outcome.status, CheckStatus::Fail);
    assert!(
        outcome
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("OTHER_KEY"),
        "{outcome:?}"
    );
    assert!(!outcome
        .message
        .as_deref()
        .unwrap_or_default()
        .contains("other-value"));

    // Granted but the host has no value for it.
    let report = evaluate(&keyed, json!({"mode": "secret", "name": "UNSET_KEY"})).await;
    let outcome = &report.result.unwrap()[0];
    assert_eq!(outcome.status, CheckStatus::Fail);
    assert_ne!(
        outcome.message,
        evaluate(&keyed, json!({"mode": "secret", "name": "OTHER_KEY"}))
            .await
            .result
            .unwrap()[0]
            .message,
        "not-granted and not-set read differently"
    );

    // The API shows the granted names, never values.
    let (_, body) = server.get("/api/v1/plugins/keyed", &token).await;
    assert_eq!(body["grants"]["secrets"], json!(["API_KEY", "UNSET_KEY"]));
    assert!(!body.to_string().contains("s3cr3t-value"));
    server.stop().await;
}
