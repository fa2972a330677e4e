//! `portolan apply` against a real portal on `127.0.0.1:0`: the binary is
//! run as a user runs it, and the store is checked behind the API.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use portolan::app::AppState;
use portolan_catalog::EntityRef;
use portolan_store::{EntityQuery, Role};

/// A portal serving in this process, with a member token.
struct Portal {
    addr: SocketAddr,
    token: String,
    state: AppState,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Portal {
    async fn start() -> Portal {
        let dir = tempfile::tempdir().unwrap();
        let db = format!(
            "sqlite://{}",
            dir.path().join("data").join("portolan.db").display()
        );
        let config = common::config(dir.path(), db);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = portolan::app::build(config).await.unwrap();
        let token = state
            .store
            .create_token(Role::Member, "apply test")
            .await
            .unwrap()
            .secret;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(portolan::app::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Portal {
            addr,
            token,
            state,
            _dir: dir,
            stop: Some(tx),
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `portolan apply --url <this portal> --token <member> ARGS...`.
    fn apply(&self, args: &[&str]) -> Command {
        let mut c = portolan();
        c.args(["apply", "--url", &self.url(), "--token", &self.token]);
        c.args(args);
        c
    }

    async fn total(&self) -> u64 {
        self.state
            .store
            .list_entities(&EntityQuery {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .total
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

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

/// Runs the command off the async threads, so the portal in this process
/// keeps serving while the binary talks to it; `stdin` is fed to it.
async fn run(mut cmd: Command, stdin: Option<&'static str>) -> (bool, String, String) {
    let out: Output = tokio::task::spawn_blocking(move || {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write as _;
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The example catalog's descriptor files: the top folder's and each API's
/// (whose definition is a `$text` placeholder).
fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog");
    let yaml_in = |dir: &Path| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        files
    };
    let mut files = yaml_in(&dir);
    files.push(dir.join("apis/payments/catalog-info.yaml"));
    assert!(
        files.len() >= 3 && files.iter().all(|f| f.exists()),
        "{files:?}"
    );
    files
}

/// How many entities the files hold, counted with the portal's parser.
fn count(files: &[PathBuf]) -> usize {
    files
        .iter()
        .map(|f| {
            portolan_catalog::parse_documents(
                &std::fs::read(f).unwrap(),
                portolan_catalog::Format::Yaml,
            )
            .unwrap()
            .len()
        })
        .sum()
}

fn strs(files: &[PathBuf]) -> Vec<&str> {
    files.iter().map(|p| p.to_str().unwrap()).collect()
}

#[tokio::test]
async fn applies_the_example_catalog_in_one_batch_and_again_unchanged() {
    let portal = Portal::start().await;
    let files = examples();
    let n = count(&files);

    let (ok, stdout, stderr) = run(portal.apply(&strs(&files)), None).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        format!("applied {n} entities: {n} added, 0 updated, 0 unchanged\n")
    );
    assert_eq!(portal.total().await, n as u64);
    let stored = portal
        .state
        .store
        .entity(&EntityRef::new("component", "default", "payments-service"))
        .await
        .unwrap()
        .expect("the example's payments-service is stored");
    assert_eq!(stored.origin, portolan_store::Origin::Api);
    // The API's `$text` placeholder was filled in from the file beside it.
    let api = portal
        .state
        .store
        .entity(&EntityRef::new("api", "default", "payments-api"))
        .await
        .unwrap()
        .expect("the example's payments-api is stored");
    let definition = api.entity.spec["definition"].as_str().unwrap();
    let openapi = std::fs::read_to_string(
        files[0]
            .parent()
            .unwrap()
            .join("apis/payments/openapi.yaml"),
    )
    .unwrap();
    assert_eq!(definition, openapi);

    // The same files again change nothing.
    let (ok, stdout, stderr) = run(portal.apply(&strs(&files)), None).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        format!("applied {n} entities: 0 added, 0 updated, {n} unchanged\n")
    );
    portal.stop().await;
}

#[tokio::test]
async fn reads_stdin_and_takes_url_and_token_from_env_or_a_file() {
    let portal = Portal::start().await;
    let dir = tempfile::tempdir().unwrap();

    // JSON on stdin, URL and token from the environment.
    let mut cmd = portolan();
    cmd.args(["apply", "-"])
        .env("PORTOLAN_URL", portal.url())
        .env("PORTOLAN_TOKEN", &portal.token);
    let json = r#"[{"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                   "metadata": {"name": "piped"}, "spec": {"type": "team", "children": []}}]"#;
    let (ok, stdout, stderr) = run(cmd, Some(json)).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "applied 1 entities: 1 added, 0 updated, 0 unchanged\n"
    );

    // A token file (with a trailing newline, as `token create > file` writes it)
    // beats a wrong token in the environment.
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{}\n", portal.token)).unwrap();
    let yaml = dir.path().join("team.yml");
    std::fs::write(
        &yaml,
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: from-file}\nspec: {type: team, children: []}\n",
    )
    .unwrap();
    let mut cmd = portolan();
    cmd.args(["apply", "--url", &portal.url(), "--token-file"])
        .arg(&token_file)
        .arg(&yaml)
        .env("PORTOLAN_TOKEN", "ptl_wrong");
    let (ok, stdout, stderr) = run(cmd, None).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("applied 1 entities: 1 added"),
        "{stdout}"
    );
    assert_eq!(portal.total().await, 2);
    portal.stop().await;
}

#[tokio::test]
async fn a_bad_entity_in_any_file_stores_nothing_and_is_named() {
    let portal = Portal::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: fine
spec: {type: service, lifecycle: production, owner: group:default/payments}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ownerless
spec:
  type: service
  lifecycle: production
",
    )
    .unwrap();
    let mut args = strs(&examples())
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    args.push(bad.to_str().unwrap().to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let (ok, stdout, stderr) = run(portal.apply(&args), None).await;
    assert!(!ok, "a refused batch must fail the command: {stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    // The line names the file, the document, the entity and the field.
    let line = stderr
        .lines()
        .find(|l| l.contains("bad.yaml"))
        .unwrap_or_else(|| panic!("no line names the bad entity: {stderr}"));
    for needle in [
        "bad.yaml document 2",
        "component:default/ownerless",
        "/spec/owner",
    ] {
        assert!(line.contains(needle), "{needle:?} missing from {line:?}");
    }
    assert!(stderr.contains("nothing was stored"), "{stderr}");
    assert_eq!(
        portal.total().await,
        0,
        "all or nothing: no file was applied"
    );
    portal.stop().await;
}

#[tokio::test]
async fn syntax_errors_missing_tokens_and_absent_portals_are_clear() {
    let portal = Portal::start().await;
    let dir = tempfile::tempdir().unwrap();

    // A YAML syntax error is found before anything is sent.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "kind: Group\n---\nmetadata: [unclosed\n").unwrap();
    let (ok, _, stderr) = run(portal.apply(&[broken.to_str().unwrap()]), None).await;
    assert!(!ok);
    assert!(
        stderr.contains("broken.yaml, document 2") && stderr.contains("nothing was sent"),
        "{stderr}"
    );

    // No token: the portal's 401, with what to do about it.
    let good = examples().remove(0);
    let mut cmd = portolan();
    cmd.args(["apply", "--url", &portal.url()]).arg(&good);
    let (ok, _, stderr) = run(cmd, None).await;
    assert!(!ok);
    assert!(
        stderr.contains("401") && stderr.contains("--token"),
        "{stderr}"
    );
    assert_eq!(portal.total().await, 0);

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut cmd = portolan();
    cmd.args(["apply", "--url", &url, "--token", "ptl_x"])
        .arg(&good);
    let (ok, _, stderr) = run(cmd, None).await;
    assert!(!ok);
    assert!(
        stderr.contains(&format!("cannot reach the portal at {url}")),
        "{stderr}"
    );
    portal.stop().await;
}
