//! The `portolan` binary as a user runs it.

use std::process::Command;

fn portolan() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portolan"));
    // The developer's own settings must not leak into the tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTOLAN_") {
            c.env_remove(k);
        }
    }
    c
}

#[tokio::test]
async fn token_create_prints_a_working_token_alone_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = portolan()
        .args(["token", "create", "--role", "admin", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout:?}");
    let token = lines[0];
    assert!(token.starts_with("ptl_"));

    // The same data dir's database knows it, as an admin token.
    let url = format!("sqlite://{}", data.join("portolan.db").display());
    let store = portolan_store::Store::connect(&url).await.unwrap();
    let info = store
        .verify_token(token)
        .await
        .unwrap()
        .expect("the printed token verifies");
    assert_eq!(info.role, portolan_store::Role::Admin);
    store.close().await;

    // `token list` shows it without the secret.
    let out = portolan()
        .args(["token", "list", "--database-url", &url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.contains(&info.id) && !listed.contains(token));
}

#[test]
fn bad_input_gets_a_message_and_a_non_zero_exit() {
    let out = portolan()
        .args([
            "token",
            "create",
            "--role",
            "root",
            "--data-dir",
            "/tmp/portolan-cli-test-unused",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("viewer, member, admin"), "{err}");

    let out = portolan()
        .args([
            "serve",
            "--listen",
            "nowhere",
            "--database-url",
            "mysql://x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen") && err.contains("database url"),
        "{err}"
    );
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut child = portolan()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "server never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap();
    assert!(code.success(), "exit status {code:?}");
    assert!(dir.path().join("portolan.db").exists());
}
