//! Issue 3's benchmark: what the catalog costs on SQLite, each figure
//! printed beside a baseline measured in the same run (PERFORMANCE.md:
//! "compare against a baseline measured in the same run, and report
//! ratios").
//!
//! Run with `cargo bench -p portolan --bench catalog`. A plain `main`
//! (`harness = false`) that starts a real portal in this process (SQLite in
//! a temporary directory, opened by the store's normal connect path, HTTP
//! on `127.0.0.1:0`) and prints:
//!
//! 1. **Ingest**: 100,000 realistic entities (Components with owner,
//!    system, type, lifecycle, tags, `dependsOn` and APIs; APIs; Systems;
//!    Groups) pushed over HTTP with `POST /api/v1/entities/batch` in
//!    batches of 10,000, in entities/s, beside a raw sqlx bulk insert of the
//!    same rows into a bare table shaped like `entities` (migration 0002,
//!    with its indexes), multi-row INSERTs in one transaction, in rows/s.
//!    Goal: >= 50,000 entities/s and >= 1/3 of raw. The same batches are
//!    then sent to a second, empty portal with `BENCH_IN_FLIGHT` (2)
//!    requests outstanding, as an exporter with a few workers would; the
//!    summary judges both against the goal.
//!    For the store's own write of the same batches and for the raw insert,
//!    it also prints the CPU time (all threads) and the bytes written per
//!    entity, which drift far less between runs than the clock does.
//! 2. **Queries at that size**: p50/p99 of a filtered page
//!    (`kind=component&lifecycle=production&limit=50`, sorted by name when
//!    the API offers `sort`), of facets on `spec.lifecycle` (when the API
//!    offers `/entities/facets`) and of a get by name, each beside the same
//!    query in plain SQL on the raw table. The API's served OpenAPI document
//!    says which of these exist. Goal: p99 <= 20 ms.
//! 3. **Resync** of a 13,000-entity source (fixture `bulk-source`, dropped
//!    into the plugins folder with a sidecar): the first import, a full
//!    resync where nothing changed, and one where 10% changed, as the sync
//!    record's `durationMs`, beside the store writing the same entities
//!    itself (`put_entities`, and `sync_source`, the call a sync ends with).
//!    Goal: <= 5 s. Skipped, saying why, when the sources API is absent.
//!
//! A summary for the issue note comes last. Environment knobs:
//! `BENCH_QUICK=1` (10,000 entities, 2,000 in the source, fewer samples: a
//! smoke run of a few seconds once the fixture is built), `BENCH_ENTITIES`,
//! `BENCH_BATCH`, `BENCH_SAMPLES` (per query), `BENCH_SOURCE_COUNT`,
//! `BENCH_ROUNDS` (resyncs of each kind), `BENCH_IN_FLIGHT`,
//! `BENCH_KEEP=1` (leave the databases in the work directory it prints),
//! `BENCH_ONLY=ingest` (stop after
//! the ingest section, to iterate on it), `BENCH_SQLITE_MALLOC=system`
//! (leave SQLite on the C library's allocator instead of the program's, as
//! the `portolan` binary sets it up, to measure what that changes). The fixture is built with
//! `scripts/build-plugins.sh --fixtures` (a few seconds when up to date).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use portolan::app::AppState;
use portolan::config::{Config, Overrides, ServeOverrides};
use portolan_catalog::Entity;
use portolan_store::{Origin, Role, Store};
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

// ---------------------------------------------------------------------------
// Settings

struct Settings {
    quick: bool,
    entities: usize,
    batch: usize,
    samples: usize,
    warmup: usize,
    source_count: u64,
    page_size: u64,
    changed_percent: u64,
    rounds: usize,
    in_flight: usize,
}

fn env_num<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Settings {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
        Settings {
            quick,
            entities: env_num("BENCH_ENTITIES", if quick { 10_000 } else { 100_000 }),
            batch: env_num("BENCH_BATCH", if quick { 2_000 } else { 10_000 }),
            samples: env_num("BENCH_SAMPLES", if quick { 200 } else { 2_000 }),
            warmup: if quick { 20 } else { 100 },
            source_count: env_num("BENCH_SOURCE_COUNT", if quick { 2_000 } else { 13_000 }),
            page_size: 1_000,
            changed_percent: 10,
            rounds: env_num("BENCH_ROUNDS", if quick { 1 } else { 3 }),
            in_flight: env_num("BENCH_IN_FLIGHT", 2).max(1),
        }
    }
}

// ---------------------------------------------------------------------------
// Statistics and printing

/// p50 and p99 of latencies, in milliseconds.
#[derive(Clone, Copy)]
struct Latency {
    p50: f64,
    p99: f64,
}

fn latency(samples: &mut [Duration]) -> Latency {
    samples.sort_unstable();
    let n = samples.len();
    let at = |p: f64| {
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        samples[i].as_secs_f64() * 1e3
    };
    Latency {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// `123,456`.
fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| {
            format!(
                "load average {}",
                l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
            )
        })
        .unwrap_or_else(|_| "load average unknown".into())
}

// ---------------------------------------------------------------------------
// A synthetic catalog

/// splitmix64: a small deterministic generator, so every run pushes the
/// same catalog.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TAGS: &[&str] = &[
    "java",
    "go",
    "rust",
    "python",
    "typescript",
    "kotlin",
    "react",
    "grpc",
    "rest",
    "kafka",
    "postgres",
    "redis",
    "payments",
    "search",
    "checkout",
    "identity",
    "billing",
    "ml",
    "batch",
    "internal",
    "public",
    "pci",
    "gdpr",
    "tier-1",
    "tier-2",
    "legacy",
    "k8s",
    "lambda",
    "edge",
    "mobile",
];

/// Lifecycles with the weights a real estate has: mostly production.
fn lifecycle(rng: &mut Rng) -> &'static str {
    match rng.below(10) {
        0..=5 => "production",
        6..=8 => "experimental",
        _ => "deprecated",
    }
}

fn tags(rng: &mut Rng) -> Vec<&'static str> {
    let mut t: Vec<&str> = (0..2 + rng.below(2)).map(|_| rng.pick(TAGS)).collect();
    t.sort_unstable();
    t.dedup();
    t
}

/// `n` descriptors: about 0.2% Groups, 0.3% Systems, 15% APIs, the rest
/// Components, each Component 600-900 bytes of JSON.
fn catalog(n: usize) -> Vec<Value> {
    let groups = (n / 500).max(5).min(n);
    let systems = (n / 300).max(5).min(n - groups);
    let apis = (n * 15 / 100).min(n - groups - systems);
    let components = n - groups - systems - apis;
    let mut rng = Rng(0x5eed_0003);
    let mut out = Vec::with_capacity(n);
    let team = |rng: &mut Rng| format!("group:default/team-{:04}", rng.below(groups));
    let system = |rng: &mut Rng| format!("system-{:04}", rng.below(systems));
    for g in 0..groups {
        out.push(json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": format!("team-{g:04}"), "description": format!("Team {g} of the engineering organisation.")},
            "spec": {
                "type": "team",
                "profile": {"displayName": format!("Team {g}"), "email": format!("team-{g}@example.com")},
                "children": []
            }
        }));
    }
    for s in 0..systems {
        out.push(json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "System",
            "metadata": {"name": format!("system-{s:04}"), "description": format!("Business system {s}."), "tags": tags(&mut rng)},
            "spec": {"owner": team(&mut rng), "domain": format!("domain-{:02}", s % 12)}
        }));
    }
    for a in 0..apis {
        let kind = rng.pick(&["openapi", "grpc", "graphql", "asyncapi"]);
        out.push(json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "API",
            "metadata": {
                "name": format!("api-{a:06}"),
                "title": format!("API {a}"),
                "description": format!("The {kind} interface of service {a}."),
                "tags": tags(&mut rng)
            },
            "spec": {
                "type": kind,
                "lifecycle": lifecycle(&mut rng),
                "owner": team(&mut rng),
                "system": system(&mut rng),
                "definition": format!("openapi: 3.0.0\ninfo:\n  title: API {a}\n  version: 1.{}.0\npaths: {{}}\n", a % 10)
            }
        }));
    }
    for c in 0..components {
        let name = format!("svc-{c:06}");
        let mut spec = json!({
            "type": rng.pick(&["service", "service", "service", "website", "library"]),
            "lifecycle": lifecycle(&mut rng),
            "owner": team(&mut rng),
            "system": system(&mut rng),
        });
        if c > 0 {
            let deps: Vec<String> = (0..1 + rng.below(3))
                .map(|_| format!("component:default/svc-{:06}", rng.below(c)))
                .collect();
            spec["dependsOn"] = json!(deps);
        }
        if apis > 0 {
            if rng.below(2) == 0 {
                spec["providesApis"] = json!([format!("api-{:06}", rng.below(apis))]);
            }
            let consumes: Vec<String> = (0..rng.below(3))
                .map(|_| format!("api-{:06}", rng.below(apis)))
                .collect();
            if !consumes.is_empty() {
                spec["consumesApis"] = json!(consumes);
            }
        }
        let mut metadata = json!({
            "name": name,
            "title": format!("Service {c}"),
            "description": format!("Handles {} for {}.", rng.pick(TAGS), spec["system"].as_str().unwrap_or("")),
            "labels": {"tier": format!("{}", 1 + rng.below(3))},
            "annotations": {
                "github.com/project-slug": format!("example/{name}"),
                "backstage.io/techdocs-ref": "dir:."
            },
            "tags": tags(&mut rng)
        });
        if c % 3 == 0 {
            metadata["links"] = json!([{"url": format!("https://grafana.example.com/d/{name}"), "title": "Dashboard", "type": "dashboard"}]);
        }
        out.push(json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": metadata,
            "spec": spec
        }));
    }
    out
}

/// What the `bulk-source` fixture returns for component `i` under these
/// settings, as a descriptor (tests/fixtures/bulk-source/src/lib.rs builds
/// the same one inside the plugin), so the store baseline writes the same
/// entities the sync does.
fn bulk_component(i: u64, generation: u64, changed_percent: u64) -> Value {
    let name = format!("bulk-{i:05}");
    let changed = generation > 0 && i % 100 < changed_percent;
    let spec_type = ["service", "website", "library"][(i % 3) as usize];
    let lifecycle = ["production", "experimental", "deprecated"][((i % 3 + i / 3) % 3) as usize];
    let language = ["java", "go", "rust", "python"][(i % 4) as usize];
    let mut spec = json!({
        "type": spec_type,
        "lifecycle": lifecycle,
        "owner": format!("group:default/team-{}", i % 50),
        "system": format!("system-{}", i % 20),
    });
    if i > 0 {
        spec["dependsOn"] = json!([format!("component:default/bulk-{:05}", i - 1)]);
    }
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": name,
            "namespace": "default",
            "title": format!("Bulk service {i}"),
            "description": if changed {
                format!("Generated service {i}, generation {generation}.")
            } else {
                format!("Generated service {i}.")
            },
            "annotations": {"github.com/project-slug": format!("example/{name}")},
            "tags": [language, format!("area-{}", i % 7)]
        },
        "spec": spec
    })
}

fn bulk_entities(count: u64, generation: u64, changed_percent: u64) -> Vec<Entity> {
    (0..count)
        .map(|i| {
            Entity::from_value(bulk_component(i, generation, changed_percent))
                .expect("the fixture's entities validate")
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The raw baseline: a bare table shaped like `entities`

/// One row of the bare table, computed before the clock starts.
struct Row {
    entity_ref: String,
    kind: String,
    namespace: String,
    name: String,
    kind_key: String,
    namespace_key: String,
    lifecycle: Option<String>,
    spec_type: Option<String>,
    body: String,
    etag: String,
}

impl Row {
    fn new(entity: &Entity) -> Row {
        let mut body = serde_json::to_value(entity).expect("serialises");
        if let Some(o) = body.as_object_mut() {
            o.remove("relations");
        }
        Row {
            entity_ref: entity.entity_ref().key(),
            kind: entity.kind.clone(),
            namespace: entity.metadata.namespace.clone(),
            name: entity.metadata.name.clone(),
            kind_key: entity.kind.to_lowercase(),
            namespace_key: entity.metadata.namespace.to_lowercase(),
            lifecycle: entity.spec_str("lifecycle").map(str::to_lowercase),
            spec_type: entity.spec_str("type").map(str::to_lowercase),
            body: body.to_string(),
            etag: entity.etag(),
        }
    }
}

/// `entities` and its indexes as migration 0002 creates them, without the
/// tag and relation tables, the later migrations' generated columns and
/// search index, or any of the store's logic.
const RAW_SCHEMA: &[&str] = &[
    "CREATE TABLE raw_entities (
        entity_ref TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL,
        name TEXT NOT NULL, kind_key TEXT NOT NULL, namespace_key TEXT NOT NULL,
        lifecycle TEXT, spec_type TEXT, body TEXT NOT NULL, etag TEXT NOT NULL,
        origin TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    "CREATE INDEX raw_kind ON raw_entities (kind_key, entity_ref)",
    "CREATE INDEX raw_namespace ON raw_entities (namespace_key, entity_ref)",
    "CREATE INDEX raw_lifecycle ON raw_entities (lifecycle, entity_ref)",
    "CREATE INDEX raw_spec_type ON raw_entities (spec_type, entity_ref)",
    "CREATE INDEX raw_origin ON raw_entities (origin)",
];

/// Rows per INSERT, as the store writes entities (13 binds a row).
const RAW_ROWS_PER_INSERT: usize = 1_000;

/// Opens a SQLite file the way the store does (WAL, synchronous=NORMAL,
/// foreign keys on) and creates the bare table.
async fn raw_db(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("raw database");
    for stmt in RAW_SCHEMA {
        sqlx::query(stmt).execute(&pool).await.expect("raw schema");
    }
    pool
}

/// Inserts every row in one transaction; returns the time it took.
async fn raw_insert(pool: &SqlitePool, rows: &[Row]) -> Duration {
    let at: DateTime<Utc> = Utc::now().trunc_subsecs(6);
    let started = Instant::now();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
    for chunk in rows.chunks(RAW_ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO raw_entities (entity_ref, kind, namespace, name, kind_key, namespace_key, \
             lifecycle, spec_type, body, etag, origin, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(&r.entity_ref)
                .push_bind(&r.kind)
                .push_bind(&r.namespace)
                .push_bind(&r.name)
                .push_bind(&r.kind_key)
                .push_bind(&r.namespace_key)
                .push_bind(&r.lifecycle)
                .push_bind(&r.spec_type)
                .push_bind(&r.body)
                .push_bind(&r.etag)
                .push_bind("api")
                .push_bind(at)
                .push_bind(at);
        });
        qb.build().execute(&mut *tx).await.expect("raw insert");
    }
    tx.commit().await.expect("commit");
    started.elapsed()
}

// ---------------------------------------------------------------------------
// The portal under test

struct Portal {
    base: String,
    token: String,
    state: AppState,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Portal {
    /// Starts the portal as `portolan serve` would, on SQLite in `dir`.
    async fn start(dir: &Path) -> Portal {
        let config = Config::load(
            &Overrides {
                data_dir: Some(dir.join("data")),
                ..Overrides::default()
            },
            &ServeOverrides {
                listen: Some("127.0.0.1:0".into()),
                plugins_dir: Some(dir.join("plugins")),
                ..ServeOverrides::default()
            },
            &HashMap::new(),
        )
        .expect("config");
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = portolan::app::build(config).await.expect("portal state");
        let token = state
            .store
            .create_token(Role::Admin, "catalog bench")
            .await
            .expect("token")
            .secret;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(portolan::app::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Portal {
            base,
            token,
            state,
            http: reqwest::Client::new(),
            stop: Some(tx),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A GET whose body is read but not parsed, as a client that renders
    /// it would at least do; returns the time from send to last byte.
    async fn timed_get(&self, path: &str) -> Duration {
        let started = Instant::now();
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        let _ = resp.bytes().await.expect("body");
        started.elapsed()
    }

    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

// ---------------------------------------------------------------------------
// 1. Ingest

struct IngestResult {
    portolan_per_s: f64,
    /// The same batches with `in_flight` requests outstanding.
    in_flight_per_s: f64,
    in_flight: usize,
    raw_per_s: f64,
}

async fn ingest(s: &Settings, portal: &Portal, work: &Path, docs: &[Value]) -> IngestResult {
    let n = docs.len();
    println!(
        "== 1. Ingest {} entities over HTTP (POST /api/v1/entities/batch, JSON, batches of {})",
        thousands(n as f64),
        thousands(s.batch as f64)
    );
    let bodies: Vec<Vec<u8>> = docs
        .chunks(s.batch)
        .map(|c| serde_json::to_vec(c).expect("encode"))
        .collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "  {} requests, {:.1} MB of JSON ({:.0} bytes per entity on average)",
        bodies.len(),
        bytes as f64 / 1e6,
        bytes as f64 / n as f64
    );
    let entities: Vec<Entity> = docs
        .iter()
        .map(|d| Entity::from_value(d.clone()).expect("the catalog validates"))
        .collect();
    let rows: Vec<Row> = entities.iter().map(Row::new).collect();

    // Raw before and after the portal, each into a new file, so that drift
    // of the shared machine shows up as a spread rather than a bias.
    let raw_pool = raw_db(&work.join("raw-1.db")).await;
    let spent = Spent::now();
    let raw_before = raw_insert(&raw_pool, &rows).await;
    let raw_spent = spent.since();

    // For the second portal below, copied before any clock starts.
    let in_flight_bodies = bodies.clone();
    let started = Instant::now();
    let mut added = 0;
    for body in bodies {
        let (status, reply) = portal
            .post("/api/v1/entities/batch", "application/json", body)
            .await;
        assert_eq!(status, 200, "batch refused: {reply}");
        added += reply["added"].as_u64().unwrap_or(0);
    }
    let took = started.elapsed();
    assert_eq!(added as usize, n, "every entity is new");

    // The same batches into a second, empty portal, with `in_flight`
    // requests outstanding at a time, as an exporter with a few workers
    // would send them.
    let in_flight = s.in_flight;
    let second = Portal::start(&work.join("portal-in-flight")).await;
    let queue = std::sync::Arc::new(std::sync::Mutex::new(in_flight_bodies.into_iter()));
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let queue = queue.clone();
            let (http, url, token) = (
                second.http.clone(),
                second.url("/api/v1/entities/batch"),
                second.token.clone(),
            );
            tokio::spawn(async move {
                let mut added = 0;
                loop {
                    let next = queue.lock().expect("queue").next();
                    let Some(body) = next else { break };
                    let resp = http
                        .post(&url)
                        .bearer_auth(&token)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body)
                        .send()
                        .await
                        .expect("POST");
                    let status = resp.status().as_u16();
                    let reply: Value = serde_json::from_slice(&resp.bytes().await.expect("body"))
                        .unwrap_or(Value::Null);
                    assert_eq!(status, 200, "batch refused: {reply}");
                    added += reply["added"].as_u64().unwrap_or(0);
                }
                added
            })
        })
        .collect();
    let mut added = 0;
    for w in workers {
        added += w.await.expect("worker");
    }
    let took_in_flight = started.elapsed();
    assert_eq!(added as usize, n, "every entity is new");
    second.stop().await;

    let raw_pool = raw_db(&work.join("raw-2.db")).await;
    let spent = Spent::now();
    let raw_after = raw_insert(&raw_pool, &rows).await;
    let raw_spent = raw_spent.plus(spent.since());

    // Attribution: the store's own write of the same, already validated
    // entities, without HTTP, parsing or validation.
    let url = format!("sqlite://{}", work.join("store-ingest.db").display());
    let store = Store::connect(&url).await.expect("store");
    let spent = Spent::now();
    let t = Instant::now();
    for chunk in entities.chunks(s.batch) {
        store
            .put_entities(chunk, &Origin::Api)
            .await
            .expect("put_entities");
    }
    let store_took = t.elapsed();
    let store_spent = spent.since();
    store.close().await;

    let portolan_per_s = n as f64 / took.as_secs_f64();
    let in_flight_per_s = n as f64 / took_in_flight.as_secs_f64();
    let raw_runs = [
        n as f64 / raw_before.as_secs_f64(),
        n as f64 / raw_after.as_secs_f64(),
    ];
    let raw_per_s = (raw_runs[0] + raw_runs[1]) / 2.0;
    println!(
        "  {:<58} {:>9.2} s  {:>9} entities/s",
        "portolan: HTTP batch push, until all stored and queryable",
        took.as_secs_f64(),
        thousands(portolan_per_s)
    );
    println!(
        "  {:<58} {:>9.2} s  {:>9} entities/s",
        format!("portolan: the same, {in_flight} requests in flight"),
        took_in_flight.as_secs_f64(),
        thousands(in_flight_per_s)
    );
    println!(
        "  {:<58} {:>9.2} s  {:>9} rows/s   (before: {}, after: {})",
        "raw: sqlx multi-row INSERT, 1 transaction, bare table",
        n as f64 / raw_per_s,
        thousands(raw_per_s),
        thousands(raw_runs[0]),
        thousands(raw_runs[1])
    );
    println!(
        "  {:<58} {:>9.2} s  {:>9} entities/s",
        "(store.put_entities alone, same batches, no HTTP/parsing)",
        store_took.as_secs_f64(),
        thousands(n as f64 / store_took.as_secs_f64())
    );
    // CPU time and bytes written drift far less than wall time on a
    // shared machine: they say where a change moved the cost even when
    // the clock cannot.
    let per_entity = |spent: &Spent, runs: f64| {
        (
            spent.cpu_s * 1e6 / (n as f64 * runs),
            spent.written as f64 / 1e3 / (n as f64 * runs),
        )
    };
    let (store_cpu, store_written) = per_entity(&store_spent, 1.0);
    let (raw_cpu, raw_written) = per_entity(&raw_spent, 2.0);
    println!(
        "  per entity, CPU time of all threads and bytes written to files: store.put_entities \
         {store_cpu:.1} µs, {store_written:.2} kB; raw {raw_cpu:.1} µs, {raw_written:.2} kB \
         (store / raw: CPU {:.2}, written {:.2})",
        store_cpu / raw_cpu,
        store_written / raw_written
    );
    println!(
        "  RATIO portolan / raw = {:.2}, with {in_flight} in flight {:.2}   (goal >= 0.33 and >= 50,000 entities/s)",
        portolan_per_s / raw_per_s,
        in_flight_per_s / raw_per_s
    );
    println!(
        "  (portolan also parses and validates each entity, writes its tags and relations, and keeps the search index)"
    );
    println!();
    IngestResult {
        portolan_per_s,
        in_flight_per_s,
        in_flight,
        raw_per_s,
    }
}

/// What this process has spent so far: CPU time over all its threads
/// (`getrusage`) and bytes handed to `write` and its kin (`wchar` in
/// `/proc/self/io`, which counts what SQLite writes to the database and
/// its log whether or not the disk has seen it yet). Zero where the system
/// does not say.
struct Spent {
    cpu_s: f64,
    written: u64,
}

impl Spent {
    fn now() -> Spent {
        let written = std::fs::read_to_string("/proc/self/io")
            .ok()
            .and_then(|io| {
                io.lines()
                    .find_map(|l| l.strip_prefix("wchar:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0);
        // SAFETY: getrusage fills the zeroed struct it is given and keeps
        // no pointer to it.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            (libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0).then_some(usage)
        };
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Spent {
            cpu_s: usage.map_or(0.0, |u| seconds(u.ru_utime) + seconds(u.ru_stime)),
            written,
        }
    }

    /// What was spent between `self` and now.
    fn since(&self) -> Spent {
        let now = Spent::now();
        Spent {
            cpu_s: now.cpu_s - self.cpu_s,
            written: now.written.saturating_sub(self.written),
        }
    }

    fn plus(&self, other: Spent) -> Spent {
        Spent {
            cpu_s: self.cpu_s + other.cpu_s,
            written: self.written + other.written,
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Queries

struct QueryResult {
    label: String,
    portolan: Latency,
    raw: Latency,
}

/// Measures `api` (a GET path) and `raw` (the same question in SQL)
/// interleaved in rounds, so that both see the same machine.
async fn measure<F, Fut>(
    s: &Settings,
    portal: &Portal,
    label: &str,
    api: &str,
    raw: F,
) -> QueryResult
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..s.warmup {
        portal.timed_get(api).await;
        raw().await;
    }
    let chunk = 50.min(s.samples);
    let mut a = Vec::with_capacity(s.samples);
    let mut b = Vec::with_capacity(s.samples);
    while a.len() < s.samples {
        for _ in 0..chunk {
            a.push(portal.timed_get(api).await);
        }
        for _ in 0..chunk {
            let t = Instant::now();
            raw().await;
            b.push(t.elapsed());
        }
    }
    let (pa, pb) = (latency(&mut a), latency(&mut b));
    println!(
        "  {label:<44} p50 {:>7.2} ms  p99 {:>7.2} ms   | raw SQL p50 {:>6.2} ms  p99 {:>6.2} ms",
        pa.p50, pa.p99, pb.p50, pb.p99
    );
    QueryResult {
        label: label.to_owned(),
        portolan: pa,
        raw: pb,
    }
}

/// What the served OpenAPI document offers for entity listing.
struct Offers {
    sort: Option<String>,
    facets: bool,
}

async fn offers(portal: &Portal) -> Offers {
    let (status, doc) = portal.get("/api/openapi.json").await;
    assert_eq!(status, 200, "the OpenAPI document is served");
    let params = doc["paths"]["/api/v1/entities"]["get"]["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
    let sort = ["sort", "order", "orderBy"]
        .iter()
        .find(|n| names.contains(n))
        .map(|n| n.to_string());
    Offers {
        sort,
        facets: doc["paths"]
            .as_object()
            .is_some_and(|p| p.contains_key("/api/v1/entities/facets")),
    }
}

async fn queries(s: &Settings, portal: &Portal, work: &Path, docs: &[Value]) -> Vec<QueryResult> {
    println!(
        "== 2. Queries at {} entities ({} samples each after {} warm-up; the API over HTTP with keep-alive, the raw SQL on the bare table through sqlx)",
        thousands(docs.len() as f64),
        s.samples,
        s.warmup
    );
    let offers = offers(portal).await;
    let raw = raw_db(&work.join("raw-q.db")).await;
    let rows: Vec<Row> = docs
        .iter()
        .map(|d| Row::new(&Entity::from_value(d.clone()).expect("valid")))
        .collect();
    raw_insert(&raw, &rows).await;
    // Beyond 0002's indexes, the raw table gets the best ones for the
    // questions asked here, so the baseline is what plain SQL can do at
    // best: equality on kind and lifecycle, then in reference or name
    // order (covering the count, too).
    for stmt in [
        "CREATE INDEX raw_kind_lifecycle ON raw_entities (kind_key, lifecycle, entity_ref)",
        "CREATE INDEX raw_kind_lifecycle_name ON raw_entities (kind_key, lifecycle, lower(name), entity_ref)",
        "ANALYZE",
    ] {
        sqlx::query(stmt).execute(&raw).await.expect("raw index");
    }
    println!(
        "  raw table: 0002's indexes plus (kind_key, lifecycle, entity_ref) and (kind_key, lifecycle, lower(name), entity_ref)"
    );
    let expected = docs
        .iter()
        .filter(|d| d["kind"] == "Component" && d["spec"]["lifecycle"] == "production")
        .count() as u64;
    let mut out = Vec::new();

    // Filtered page, sorted by name when the API can.
    let mut page = "/api/v1/entities?kind=component&lifecycle=production&limit=50".to_owned();
    let sorted = match &offers.sort {
        Some(param) => {
            let candidate = format!("{page}&{param}=metadata.name");
            let (status, _) = portal.get(&candidate).await;
            if status == 200 {
                page = candidate;
                true
            } else {
                println!("  (the API lists `{param}` but refused `{param}=metadata.name` with {status}; measuring unsorted)");
                false
            }
        }
        None => {
            println!("  (the API offers no sort parameter yet: the page is in reference order)");
            false
        }
    };
    let (status, reply) = portal.get(&page).await;
    assert_eq!(status, 200, "{page}: {reply}");
    assert_eq!(reply["items"].as_array().map(Vec::len), Some(50));
    if let Some(total) = reply["total"].as_u64() {
        assert_eq!(total, expected, "the page counts every match");
    }
    let order = if sorted {
        "lower(name), entity_ref"
    } else {
        "entity_ref"
    };
    let page_sql = format!(
        "SELECT entity_ref, body, etag, origin, created_at, updated_at FROM raw_entities \
         WHERE kind_key = ?1 AND lifecycle = ?2 ORDER BY {order} LIMIT 50"
    );
    let count_sql = "SELECT COUNT(*) FROM raw_entities WHERE kind_key = ?1 AND lifecycle = ?2";
    let (n,): (i64,) = sqlx::query_as(count_sql)
        .bind("component")
        .bind("production")
        .fetch_one(&raw)
        .await
        .expect("count");
    assert_eq!(n as u64, expected);
    let label = format!(
        "filtered page of 50{} (of {})",
        if sorted { ", by name" } else { "" },
        thousands(expected as f64)
    );
    let pool = &raw;
    let page_sql = page_sql.as_str();
    out.push(
        measure(s, portal, &label, &page, move || async move {
            let _: (i64,) = sqlx::query_as(count_sql)
                .bind("component")
                .bind("production")
                .fetch_one(pool)
                .await
                .expect("count");
            let rows: Vec<(String, String, String, String, String, String)> =
                sqlx::query_as(page_sql)
                    .bind("component")
                    .bind("production")
                    .fetch_all(pool)
                    .await
                    .expect("page");
            assert_eq!(rows.len(), 50);
        })
        .await,
    );

    // Facets.
    if offers.facets {
        let path = "/api/v1/entities/facets?field=spec.lifecycle";
        let (status, reply) = portal.get(path).await;
        if status == 200 {
            let counted: u64 = reply["facets"]["spec.lifecycle"]
                .as_array()
                .map(|v| v.iter().filter_map(|f| f["count"].as_u64()).sum())
                .unwrap_or(0);
            let with_lifecycle = docs
                .iter()
                .filter(|d| d["spec"]["lifecycle"].is_string())
                .count() as u64;
            assert_eq!(
                counted, with_lifecycle,
                "facets count every entity: {reply}"
            );
            let facet_sql =
                "SELECT lifecycle, COUNT(*) FROM raw_entities WHERE lifecycle IS NOT NULL \
                             GROUP BY lifecycle ORDER BY 2 DESC, 1";
            out.push(
                measure(
                    s,
                    portal,
                    "facets on spec.lifecycle",
                    path,
                    move || async move {
                        let rows: Vec<(String, i64)> = sqlx::query_as(facet_sql)
                            .fetch_all(pool)
                            .await
                            .expect("facets");
                        assert_eq!(rows.len(), 3);
                    },
                )
                .await,
            );
        } else {
            println!(
                "  facets: the API lists /api/v1/entities/facets but answered {status}: {reply}"
            );
        }
    } else {
        println!("  facets: n/a, the API does not offer /api/v1/entities/facets yet");
    }

    // Get by name.
    let name = docs
        .iter()
        .rev()
        .find(|d| d["kind"] == "Component")
        .and_then(|d| d["metadata"]["name"].as_str())
        .expect("a component")
        .to_owned();
    let path = format!("/api/v1/entities/component/default/{name}");
    let key = format!("component:default/{name}");
    let key = key.as_str();
    out.push(
        measure(
            s,
            portal,
            "get one entity by name",
            &path,
            move || async move {
                let row: (String, String) =
                    sqlx::query_as("SELECT body, etag FROM raw_entities WHERE entity_ref = ?1")
                        .bind(key)
                        .fetch_one(pool)
                        .await
                        .expect("get");
                assert!(!row.0.is_empty());
            },
        )
        .await,
    );
    println!("  (the API's p99 goal at 100k: <= 20 ms)");
    println!();
    raw.close().await;
    out
}

// ---------------------------------------------------------------------------
// 2a. Wider questions: relations and tags over much of the catalog

/// Times `path` alone (these questions have no counterpart in the bare
/// table), with fewer samples: some of them read much of the catalog.
async fn measure_api(s: &Settings, portal: &Portal, label: &str, path: &str) -> QueryResult {
    let samples = (s.samples / 20).max(20);
    for _ in 0..(s.warmup / 10).max(2) {
        portal.timed_get(path).await;
    }
    let mut a: Vec<Duration> = Vec::with_capacity(samples);
    for _ in 0..samples {
        a.push(portal.timed_get(path).await);
    }
    let pa = latency(&mut a);
    println!(
        "  {label:<44} p50 {:>7.2} ms  p99 {:>7.2} ms   ({samples} samples)",
        pa.p50, pa.p99
    );
    QueryResult {
        label: label.to_owned(),
        portolan: pa,
        raw: Latency {
            p50: f64::NAN,
            p99: f64::NAN,
        },
    }
}

/// The lower-cased keys a string or list of strings at `spec[field]`
/// names, with `kind` as the default kind, once each.
fn spec_refs(doc: &Value, field: &str, kind: &str) -> HashSet<String> {
    let one = |v: &Value| {
        v.as_str().map(|t| {
            let t = t.to_lowercase();
            let t = if t.contains(':') {
                t
            } else {
                format!("{kind}:{t}")
            };
            if t.contains('/') {
                t
            } else {
                t.replacen(':', ":default/", 1)
            }
        })
    };
    match &doc["spec"][field] {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// Facets and filters on relations and tags over much of the catalog, each
/// answer checked against the generated documents.
async fn wide_queries(s: &Settings, portal: &Portal, docs: &[Value]) -> Vec<QueryResult> {
    println!("== 2a. Relations and tags over much of the catalog (the API alone)");
    let mut out = Vec::new();
    let facet = |reply: &Value, field: &str| -> Vec<(String, u64)> {
        reply["facets"][field]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|f| {
                        (
                            f["value"].as_str().unwrap_or_default().to_owned(),
                            f["count"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };

    // Entities per system or domain: every value fits in one answer.
    let path = "/api/v1/entities/facets?field=relations.partOf";
    let (status, reply) = portal.get(path).await;
    assert_eq!(status, 200, "{path}: {reply}");
    let expected: usize = docs
        .iter()
        .map(|d| spec_refs(d, "system", "system").len() + spec_refs(d, "domain", "domain").len())
        .sum();
    let counted: u64 = facet(&reply, "relations.partOf")
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(counted as usize, expected, "partOf facet: {reply}");
    out.push(measure_api(s, portal, "facets on relations.partOf, all", path).await);

    // The most depended-on components (the answer keeps the top values).
    let path = "/api/v1/entities/facets?field=relations.dependsOn";
    let (status, reply) = portal.get(path).await;
    assert_eq!(status, 200, "{path}: {reply}");
    let mut dependents: HashMap<String, u64> = HashMap::new();
    for d in docs {
        for target in spec_refs(d, "dependsOn", "component") {
            *dependents.entry(target).or_default() += 1;
        }
    }
    let top = dependents.values().max().copied().unwrap_or(0);
    assert_eq!(
        facet(&reply, "relations.dependsOn")
            .first()
            .map(|(_, n)| *n),
        Some(top),
        "dependsOn facet's top count"
    );
    out.push(measure_api(s, portal, "facets on relations.dependsOn, all", path).await);

    // A page of the entities that depend on anything, with its total.
    let path = "/api/v1/entities?filter=relations.dependsOn&limit=50";
    let (status, reply) = portal.get(path).await;
    assert_eq!(status, 200, "{path}: {reply}");
    let with_deps = docs
        .iter()
        .filter(|d| !spec_refs(d, "dependsOn", "component").is_empty())
        .count() as u64;
    assert_eq!(
        reply["total"].as_u64(),
        Some(with_deps),
        "has-dependsOn total"
    );
    out.push(measure_api(s, portal, "page of 50 that have a dependsOn relation", path).await);

    // Tags under a filter that half the catalog passes.
    let path = "/api/v1/entities/facets?field=metadata.tags&lifecycle=production";
    let (status, reply) = portal.get(path).await;
    assert_eq!(status, 200, "{path}: {reply}");
    let expected: usize = docs
        .iter()
        .filter(|d| d["spec"]["lifecycle"] == "production")
        .map(|d| {
            d["metadata"]["tags"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_lowercase)
                        .collect::<HashSet<_>>()
                        .len()
                })
                .unwrap_or(0)
        })
        .sum();
    let counted: u64 = facet(&reply, "metadata.tags").iter().map(|(_, n)| n).sum();
    assert_eq!(counted as usize, expected, "tag facet: {reply}");
    out.push(
        measure_api(
            s,
            portal,
            "facets on metadata.tags, lifecycle=production",
            path,
        )
        .await,
    );
    println!();
    out
}

// ---------------------------------------------------------------------------
// 2b. The web UI's catalog pages

/// Times the web UI's catalog pages (HTML with the page of entities and the
/// facet counts, from in-process API calls) beside the one entities API call
/// each page makes for its rows, interleaved in rounds.
async fn ui_pages(s: &Settings, portal: &Portal) -> Vec<QueryResult> {
    println!("== web UI catalog pages ({} samples each)", s.samples / 10);
    let cookie = format!("portolan_session={}", portal.token);
    let page = |path: String| {
        let cookie = cookie.clone();
        let url = portal.url(&path);
        let http = portal.http.clone();
        async move {
            let started = Instant::now();
            let resp = http
                .get(url)
                .header(reqwest::header::COOKIE, cookie)
                .send()
                .await
                .expect("GET page");
            assert_eq!(resp.status(), 200, "{path}");
            let body = resp.text().await.expect("body");
            assert!(body.contains("shown of"), "{path} rendered no results");
            started.elapsed()
        }
    };
    let fields = "&fields=kind,metadata.name,metadata.namespace,metadata.title,metadata.description,metadata.tags,spec.type,spec.owner,spec.lifecycle";
    let cases = [
        ("catalog, first page by name", "/catalog".to_owned(),
         format!("/api/v1/entities?limit=50&sort=metadata.name{fields}")),
        ("catalog, kind + lifecycle filtered", "/catalog?kind=component&lifecycle=production".to_owned(),
         format!("/api/v1/entities?limit=50&kind=component&lifecycle=production&sort=metadata.name{fields}")),
        ("catalog, search q=pay", "/catalog?q=pay".to_owned(),
         format!("/api/v1/entities?limit=50&q=pay{fields}")),
    ];
    let samples = (s.samples / 10).max(20);
    let mut out = Vec::new();
    for (label, ui, api) in cases {
        for _ in 0..5 {
            page(ui.clone()).await;
            portal.timed_get(&api).await;
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        while a.len() < samples {
            for _ in 0..10 {
                a.push(page(ui.clone()).await);
            }
            for _ in 0..10 {
                b.push(portal.timed_get(&api).await);
            }
        }
        let (pa, pb) = (latency(&mut a), latency(&mut b));
        println!(
            "  {label:<44} p50 {:>7.2} ms  p99 {:>7.2} ms   | its API list call p50 {:>6.2} ms  p99 {:>6.2} ms",
            pa.p50, pa.p99, pb.p50, pb.p99
        );
        out.push(QueryResult {
            label: label.to_owned(),
            portolan: pa,
            raw: pb,
        });
    }
    println!();
    out
}

// ---------------------------------------------------------------------------
// 3. Resync of a catalog source

/// One sync of the source, as its record says.
struct SyncRun {
    label: String,
    duration_ms: f64,
    wall_ms: f64,
    counts: Value,
}

struct ResyncResult {
    runs: Vec<SyncRun>,
    /// Store-level baselines: label → median seconds.
    baselines: Vec<(String, f64)>,
    skipped: Option<String>,
}

const SOURCE: &str = "bulk-source";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Builds the fixtures (a few seconds when they are up to date) and
/// returns the component, or why it is not there.
fn build_fixture() -> Result<PathBuf, String> {
    let root = repo_root();
    let started = Instant::now();
    let out = std::process::Command::new(root.join("scripts/build-plugins.sh"))
        .arg("--fixtures")
        .output()
        .map_err(|e| format!("cannot run scripts/build-plugins.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/build-plugins.sh --fixtures failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let wasm = root.join("target/fixtures").join(format!("{SOURCE}.wasm"));
    if !wasm.exists() {
        return Err(format!("{} was not built", wasm.display()));
    }
    println!(
        "  fixture {} ready ({:.1} s to check/build the guest fixtures)",
        wasm.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(wasm)
}

fn sidecar(s: &Settings, generation: u64) -> String {
    format!(
        "# Written by the catalog benchmark.\n[settings]\ncount = {}\npage_size = {}\ngeneration = {generation}\nchanged_percent = {}\n",
        s.source_count, s.page_size, s.changed_percent
    )
}

/// Waits until the plugin is loaded with this generation in its settings.
async fn wait_loaded(portal: &Portal, generation: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (status, entry) = portal.get(&format!("/api/v1/plugins/{SOURCE}")).await;
        if status == 200 && entry["status"] == "failed" {
            return Err(format!("{SOURCE} failed to load: {}", entry["error"]));
        }
        if status == 200
            && entry["status"] == "ready"
            && entry["grants"]["settings"]["generation"].as_u64() == Some(generation)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{SOURCE} not loaded with generation {generation} after 180 s: {entry}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a sync (or joins the pending one) and waits for its end.
async fn sync_once(portal: &Portal, label: &str) -> Result<SyncRun, String> {
    let started = Instant::now();
    let (status, job) = portal
        .post(
            &format!("/api/v1/sources/{SOURCE}/sync"),
            "application/json",
            Vec::new(),
        )
        .await;
    if status != 202 {
        return Err(format!(
            "POST /api/v1/sources/{SOURCE}/sync answered {status}: {job}"
        ));
    }
    let id = job["id"]
        .as_str()
        .ok_or("the sync record has no id")?
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (status, record) = portal
            .get(&format!("/api/v1/sources/{SOURCE}/syncs/{id}"))
            .await;
        if status != 200 {
            return Err(format!("GET sync {id} answered {status}: {record}"));
        }
        match record["status"].as_str() {
            Some("succeeded") => {
                return Ok(SyncRun {
                    label: label.to_owned(),
                    duration_ms: record["durationMs"].as_f64().unwrap_or(f64::NAN),
                    wall_ms: started.elapsed().as_secs_f64() * 1e3,
                    counts: record["counts"].clone(),
                })
            }
            Some("failed") => return Err(format!("sync {id} failed: {}", record["error"])),
            _ if Instant::now() > deadline => {
                return Err(format!("sync {id} still {} after 600 s", record["status"]))
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// How many of `count` components a generation changes.
fn changed_count(count: u64, percent: u64) -> u64 {
    (0..count).filter(|i| i % 100 < percent).count() as u64
}

async fn resync(s: &Settings, portal: &Portal, work: &Path) -> ResyncResult {
    println!(
        "== 3. Resync of a {}-entity catalog source ({SOURCE}, pages of {}; {} round(s) of each)",
        thousands(s.source_count as f64),
        s.page_size,
        s.rounds
    );
    let mut result = ResyncResult {
        runs: Vec::new(),
        baselines: Vec::new(),
        skipped: None,
    };

    // Baselines first: the store writing the same entities itself.
    let changed = changed_count(s.source_count, s.changed_percent);
    for (what, via_sync) in [("put_entities", false), ("sync_source", true)] {
        let url = format!(
            "sqlite://{}",
            work.join(format!("store-{what}.db")).display()
        );
        let store = Store::connect(&url).await.expect("baseline store");
        let write = |entities: Vec<Entity>| {
            let store = store.clone();
            async move {
                let t = Instant::now();
                if via_sync {
                    store
                        .sync_source(SOURCE, &entities, &HashSet::new())
                        .await
                        .expect("sync_source");
                } else {
                    store
                        .put_entities(&entities, &Origin::Source(SOURCE.into()))
                        .await
                        .expect("put_entities");
                }
                t.elapsed().as_secs_f64()
            }
        };
        let first = write(bulk_entities(s.source_count, 0, s.changed_percent)).await;
        let mut same = Vec::new();
        let mut ten = Vec::new();
        for round in 0..s.rounds {
            // Generation g changes its share against generation g - 1;
            // writing it a second time changes nothing.
            let generation = round as u64 + 1;
            ten.push(write(bulk_entities(s.source_count, generation, s.changed_percent)).await);
            same.push(write(bulk_entities(s.source_count, generation, s.changed_percent)).await);
        }
        let (same, ten) = (median(&mut same), median(&mut ten));
        println!(
            "  store.{what:<12} first import {:>7.0} ms   unchanged {:>7.0} ms   {}% changed ({} entities) {:>7.0} ms",
            first * 1e3,
            same * 1e3,
            s.changed_percent,
            thousands(changed as f64),
            ten * 1e3
        );
        result
            .baselines
            .push((format!("store.{what} first import"), first));
        result
            .baselines
            .push((format!("store.{what} unchanged"), same));
        result
            .baselines
            .push((format!("store.{what} {}% changed", s.changed_percent), ten));
        store.close().await;
    }

    let wasm = match build_fixture() {
        Ok(w) => w,
        Err(e) => {
            println!("  SKIPPED: {e}");
            result.skipped = Some(e);
            return result;
        }
    };
    let plugins = portal.state.config.plugins_dir.clone();
    std::fs::write(plugins.join(format!("{SOURCE}.toml")), sidecar(s, 0)).expect("sidecar");
    std::fs::copy(&wasm, plugins.join(format!("{SOURCE}.wasm"))).expect("drop the plugin");
    let loaded = Instant::now();
    if let Err(e) = wait_loaded(portal, 0).await {
        println!("  SKIPPED: {e}");
        result.skipped = Some(e);
        return result;
    }
    println!(
        "  {SOURCE} loaded {:.2} s after it was dropped in",
        loaded.elapsed().as_secs_f64()
    );
    let (status, body) = portal.get(&format!("/api/v1/sources/{SOURCE}")).await;
    if status != 200 {
        let why = format!(
            "the sources API is not there yet (GET /api/v1/sources/{SOURCE} answered {status}: {body})"
        );
        println!("  SKIPPED: {why}");
        result.skipped = Some(why);
        return result;
    }

    let mut runs = Vec::new();
    let mut record = |run: Result<SyncRun, String>, expect: (&str, u64)| -> bool {
        match run {
            Ok(run) => {
                let got = run.counts[expect.0].as_u64();
                let note = if got == Some(expect.1) {
                    String::new()
                } else {
                    format!(
                        "   (UNEXPECTED: {} = {got:?}, wanted {})",
                        expect.0, expect.1
                    )
                };
                println!(
                    "  sync: {:<26} durationMs {:>7.0}   wall {:>7.0} ms   counts {}{note}",
                    run.label, run.duration_ms, run.wall_ms, run.counts
                );
                runs.push(run);
                true
            }
            Err(e) => {
                println!("  sync: {e}");
                false
            }
        }
    };
    // The first sync: dropping the plugin in queues one by itself;
    // `POST .../sync` joins it.
    if !record(
        sync_once(portal, "first import").await,
        ("added", s.source_count),
    ) {
        result.skipped = Some("the first sync failed".into());
        return result;
    }
    for round in 0..s.rounds {
        record(
            sync_once(portal, "nothing changed").await,
            ("unchanged", s.source_count),
        );
        let generation = round as u64 + 1;
        std::fs::write(
            plugins.join(format!("{SOURCE}.toml")),
            sidecar(s, generation),
        )
        .expect("sidecar");
        if let Err(e) = wait_loaded(portal, generation).await {
            println!("  {e}");
            continue;
        }
        // A new sidecar queues a sync by itself; this joins it.
        record(
            sync_once(portal, &format!("{}% changed", s.changed_percent)).await,
            ("updated", changed),
        );
    }
    result.runs = runs;
    println!("  (goal: a full resync <= 5 s)");
    println!();
    result
}

// ---------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; anything else (`cargo test
    // --all-targets`) only checks that this compiles.
    if !std::env::args().any(|a| a == "--bench") {
        println!("catalog bench: run it with `cargo bench -p portolan --bench catalog`");
        return;
    }
    println!("Heap on {}", common::heap_pages());
    println!("SQLite allocates with {}", common::sqlite_heap());
    let s = Settings::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(s));
}

/// The benchmark's working directory: removed at the end unless kept.
enum Work {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Work {
    fn path(&self) -> &Path {
        match self {
            Work::Temp(t) => t.path(),
            Work::Kept(p) => p,
        }
    }
}

async fn run(s: Settings) {
    let work = tempfile::tempdir().expect("temp dir");
    // BENCH_KEEP=1 leaves the databases behind, to study them afterwards.
    let work = if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1") {
        Work::Kept(work.keep())
    } else {
        Work::Temp(work)
    };
    println!(
        "Portolan catalog benchmark (SQLite){}",
        if s.quick { ", QUICK mode" } else { "" }
    );
    println!(
        "machine: {} CPUs available to this process; {}; data in {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg(),
        work.path().display()
    );
    println!();

    let docs = catalog(s.entities);
    let portal = Portal::start(&work.path().join("portal")).await;
    let ingest = ingest(&s, &portal, work.path(), &docs).await;
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "ingest") {
        portal.stop().await;
        return;
    }
    let queries = queries(&s, &portal, work.path(), &docs).await;
    let wide = wide_queries(&s, &portal, &docs).await;
    let pages = ui_pages(&s, &portal).await;
    let resync = resync(&s, &portal, work.path()).await;
    portal.stop().await;

    println!("== SUMMARY (for the issue note; {})", loadavg());
    let n = thousands(s.entities as f64);
    let ratio = ingest.portolan_per_s / ingest.raw_per_s;
    println!(
        "  ingest {n} entities over HTTP: {} entities/s; raw sqlx insert {} rows/s; ratio {ratio:.2}   goal >= 50,000/s: {}, >= 1/3 of raw: {}",
        thousands(ingest.portolan_per_s),
        thousands(ingest.raw_per_s),
        verdict(ingest.portolan_per_s >= 50_000.0),
        verdict(ratio >= 1.0 / 3.0)
    );
    let ratio = ingest.in_flight_per_s / ingest.raw_per_s;
    println!(
        "  the same with {} requests in flight: {} entities/s; ratio {ratio:.2}   goal >= 50,000/s: {}, >= 1/3 of raw: {}",
        ingest.in_flight,
        thousands(ingest.in_flight_per_s),
        verdict(ingest.in_flight_per_s >= 50_000.0),
        verdict(ratio >= 1.0 / 3.0)
    );
    for q in &queries {
        println!(
            "  {} at {n}: p50 {:.2} ms, p99 {:.2} ms (raw SQL p50 {:.2} ms, p99 {:.2} ms)   goal p99 <= 20 ms: {}",
            q.label,
            q.portolan.p50,
            q.portolan.p99,
            q.raw.p50,
            q.raw.p99,
            verdict(q.portolan.p99 <= 20.0)
        );
    }
    for q in &wide {
        println!(
            "  {} at {n}: p50 {:.2} ms, p99 {:.2} ms   goal p99 <= 20 ms: {}",
            q.label,
            q.portolan.p50,
            q.portolan.p99,
            verdict(q.portolan.p99 <= 20.0)
        );
    }
    for p in &pages {
        println!(
            "  web UI {} at {n}: p50 {:.2} ms, p99 {:.2} ms (its entities API call alone p50 {:.2} ms, p99 {:.2} ms)",
            p.label, p.portolan.p50, p.portolan.p99, p.raw.p50, p.raw.p99
        );
    }
    match &resync.skipped {
        Some(why) => println!("  resync: not measured: {why}"),
        None => {
            let mut by_label: Vec<(String, Vec<f64>)> = Vec::new();
            for run in &resync.runs {
                match by_label.iter_mut().find(|(l, _)| *l == run.label) {
                    Some((_, v)) => v.push(run.duration_ms),
                    None => by_label.push((run.label.clone(), vec![run.duration_ms])),
                }
            }
            for (label, mut ms) in by_label {
                let m = median(&mut ms);
                println!(
                    "  resync of {} entities, {label}: {m:.0} ms (median durationMs of {})   goal <= 5 s: {}",
                    thousands(s.source_count as f64),
                    ms.len(),
                    verdict(m <= 5_000.0)
                );
            }
        }
    }
    for (label, secs) in &resync.baselines {
        println!(
            "  baseline {label} of {} entities: {:.0} ms",
            thousands(s.source_count as f64),
            secs * 1e3
        );
    }
}
