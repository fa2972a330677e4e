//! Harness for Portolan's end-to-end tests: builds the guest fixtures from
//! source, starts the real server on `127.0.0.1:0`, and talks to it over HTTP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use portolan::app::AppState;
use portolan::config::{Config, RuntimeSettings};
use tempfile::TempDir;

pub mod browser;
pub mod stand_in;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Builds (once per test process) the shipped plugins and the fixtures with
/// `scripts/build-plugins.sh --fixtures`, and returns the path of the
/// component `name` from `target/plugins/` or `target/fixtures/`.
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = std::process::Command::new(root().join("scripts/build-plugins.sh"))
            .arg("--fixtures")
            .output()
            .map_err(|e| format!("cannot run build-plugins.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "build-plugins.sh failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    for dir in ["target/plugins", "target/fixtures"] {
        let p = root().join(dir).join(format!("{name}.wasm"));
        if p.exists() {
            return p;
        }
    }
    panic!("no component named {name} was built");
}

/// A running portal for one test.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    pub dir: TempDir,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// How to start a [`TestServer`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Database URL; default: SQLite in the test's data dir.
    pub database_url: Option<String>,
    pub anonymous_read: bool,
    pub secrets: HashMap<String, String>,
    /// Meter fuel (instruction budgets) in the engine.
    pub fuel: bool,
    /// A folder of scorecard files.
    pub scorecards_dir: Option<PathBuf>,
    /// A data directory that outlives the server (default: a new one in
    /// the test's temporary folder), for restarts on the same data and
    /// compiled-code cache.
    pub data_dir: Option<PathBuf>,
    /// A plugins folder that outlives the server (default: a new one).
    pub plugins_dir: Option<PathBuf>,
}

impl TestServer {
    pub async fn start(opts: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = opts.data_dir.unwrap_or_else(|| dir.path().join("data"));
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            plugins_dir: opts
                .plugins_dir
                .unwrap_or_else(|| dir.path().join("plugins")),
            database_url: opts
                .database_url
                .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("portolan.db").display())),
            data_dir,
            anonymous_read: opts.anonymous_read,
            runtime: RuntimeSettings {
                default_timeout_ms: 5_000,
                default_memory_mb: 64,
                fuel: opts.fuel,
                max_concurrent_calls: 16,
            },
            secrets: opts.secrets,
            scorecards: portolan::config::ScorecardSettings {
                dir: opts.scorecards_dir,
                ..Default::default()
            },
            actions: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = portolan::app::build(config).await.expect("server state");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(portolan::app::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        let server = TestServer {
            addr,
            state,
            dir,
            http: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
        };
        server.wait_ready().await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.state.config.plugins_dir.clone()
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "server never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Creates a token with `role` straight in the store.
    pub async fn token(&self, role: portolan_store::Role) -> String {
        self.state
            .store
            .create_token(role, "test")
            .await
            .unwrap()
            .secret
    }

    /// Creates a token with `role` for the person `name` (its description,
    /// which is how approvals tell people apart).
    pub async fn token_for(&self, role: portolan_store::Role, name: &str) -> String {
        self.state
            .store
            .create_token(role, name)
            .await
            .unwrap()
            .secret
    }

    /// Installs a component into the plugins folder under `id` the way an
    /// operator would: write a temporary file, then rename it into place.
    pub fn install(&self, component: &Path, id: &str) {
        let dst = self.plugins_dir().join(format!("{id}.wasm"));
        let tmp = self.plugins_dir().join(format!(".{id}.partial"));
        std::fs::copy(component, &tmp).unwrap();
        std::fs::rename(&tmp, &dst).unwrap();
    }

    /// GETs `path` with `token`, returning status and JSON body.
    pub async fn get(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Polls `GET /api/v1/plugins/{id}` until `pred` holds or `within` passes.
    pub async fn wait_plugin(
        &self,
        id: &str,
        token: &str,
        within: Duration,
        pred: impl Fn(u16, &serde_json::Value) -> bool,
    ) -> Option<(Duration, serde_json::Value)> {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(&format!("/api/v1/plugins/{id}"), token).await;
            if pred(status, &body) {
                return Some((started.elapsed(), body));
            }
            if started.elapsed() > within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// One small Backstage-shaped entity for check calls.
pub fn entity(name: &str) -> portolan_runtime::model::Entity {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "description": "a test service"},
        "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}
    }))
    .unwrap()
}

/// Catalog-source helpers: grants, syncs through the sources API, and
/// example data.
impl TestServer {
    /// Writes the sidecar `{id}.toml` into the plugins folder (before the
    /// component is installed, so the first load sees it).
    pub fn write_sidecar(&self, id: &str, text: &str) {
        std::fs::write(self.plugins_dir().join(format!("{id}.toml")), text).unwrap();
    }

    /// PUTs `body` as JSON to `path` with `token`, returning status and
    /// JSON body.
    pub async fn put(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self
            .http
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Polls `GET path` every 50 ms until it answers 200 with a body `ready`
    /// accepts, and returns that body; panics after `within`, with the last
    /// answer.
    pub async fn wait_for(
        &self,
        path: &str,
        token: &str,
        within: std::time::Duration,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = std::time::Instant::now();
        loop {
            let (status, body) = self.get(path, token).await;
            if status == 200 && ready(&body) {
                return body;
            }
            assert!(
                started.elapsed() < within,
                "{path}: still not there after {within:?}; last {status} {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// POSTs `body` (JSON, or nothing) to `path` with `token`, returning
    /// status and JSON body.
    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.post(self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Polls `GET /api/v1/sources/{source}/syncs/{sync_id}` until the sync
    /// has finished (`succeeded` or `failed`) and returns its record; panics
    /// after `within`.
    pub async fn wait_sync(
        &self,
        source: &str,
        sync_id: &str,
        token: &str,
        within: Duration,
    ) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let (status, body) = self
                .get(&format!("/api/v1/sources/{source}/syncs/{sync_id}"), token)
                .await;
            assert_eq!(status, 200, "sync {sync_id} of {source}: {body}");
            if body["status"] == "succeeded" || body["status"] == "failed" {
                return body;
            }
            assert!(
                started.elapsed() < within,
                "sync {sync_id} of {source} still {} after {within:?}: {body}",
                body["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a sync of `source` with `POST /api/v1/sources/{source}/sync`
    /// and waits for it. The sync reads the data as it is now: if the POST
    /// hands back a sync that was already running (which may have read
    /// older data), that one is waited out and a new one started.
    pub async fn sync_source(&self, source: &str, token: &str) -> serde_json::Value {
        for _ in 0..3 {
            let (status, record) = self
                .post(&format!("/api/v1/sources/{source}/sync"), token, None)
                .await;
            assert_eq!(status, 202, "POST sync of {source}: {record}");
            let id = record["id"]
                .as_str()
                .unwrap_or_else(|| panic!("sync record without an id: {record}"))
                .to_owned();
            let was_running = record["status"] == "running";
            let done = self
                .wait_sync(source, &id, token, Duration::from_secs(60))
                .await;
            if !was_running {
                return done;
            }
        }
        panic!("{source} never started a fresh sync");
    }
}

/// Copies the folder `from` with everything in it to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// One real `portolan serve` process (the `portolan-replica` binary of this
/// package), for tests that need separate processes: several replicas on
/// one database, or a process killed in the middle of its work. Killed when
/// dropped.
pub struct Replica {
    child: std::process::Child,
    pub base: String,
}

impl Replica {
    /// Starts `binary serve` with `dir/plugins` as its plugins folder,
    /// `dir/data-{n}` as its data directory and `database_url`, on a free
    /// local port. Tests pass `env!("CARGO_BIN_EXE_portolan-replica")`.
    pub fn start(binary: &str, dir: &Path, n: usize, database_url: &str) -> Replica {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = std::process::Command::new(binary)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--plugins-dir")
            .arg(dir.join("plugins"))
            .arg("--data-dir")
            .arg(dir.join(format!("data-{n}")))
            .args(["--database-url", database_url])
            .env_remove("PORTOLAN_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start a portolan process");
        Replica {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `GET path` answers 200 (e.g. a plugin is loaded).
    pub async fn wait_for(&self, http: &reqwest::Client, path: &str, token: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ready = http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}{path} never answered 200",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every row of every table of a SQLite database, as text.
pub async fn dump_sqlite(url: &str) -> String {
    use sqlx::{Column, Connection, Row};
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = String::new();
    for table in tables {
        let rows = sqlx::query(&format!("SELECT * FROM \"{table}\""))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for row in rows {
            for (i, column) in row.columns().iter().enumerate() {
                let text: Option<String> = row
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .or_else(|| {
                        row.try_get::<Option<Vec<u8>>, _>(i)
                            .ok()
                            .flatten()
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                    });
                if let Some(text) = text {
                    out.push_str(&format!("{table}.{}={text}\n", column.name()));
                }
            }
        }
    }
    out
}
