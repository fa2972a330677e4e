//! The foundation issue's benchmark: what a fresh-instance plugin call costs
//! through Portolan's runtime, measured side by side with bare wasmtime in
//! the same process (PERFORMANCE.md: "compare against a baseline measured in
//! the same run, and report ratios").
//!
//! Run with `cargo bench -p portolan-runtime --bench runtime`. A plain `main`
//! (`harness = false`) that prints tables:
//!
//! 1. single-thread latency (median / p99 / mean) of `Plugin::evaluate` for a
//!    trivial check (echo-check, one small entity) and for required-fields
//!    (one ~500-byte entity), beside bare wasmtime with the tuned pooling
//!    configuration of PERFORMANCE.md, plus a ladder of variants between the
//!    two that attributes the difference (engine settings, sandbox state,
//!    argument conversion);
//! 2. the ratio runtime / bare (goal <= 1.5x, target <= 1.2x);
//! 3. throughput on two threads versus one, for the runtime and for bare
//!    wasmtime (target >= 1.8x);
//! 4. plugin load time, cold (compile) versus from the disk cache, for every
//!    component found under `target/plugins` and `target/fixtures`.
//!
//! Variants are measured interleaved in rounds so that drift of the shared
//! machine spreads over all of them. Environment knobs: `BENCH_ITERS`
//! (samples per variant, default 20000), `BENCH_QUICK=1` (a fast smoke run).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
    Store,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use portolan_runtime::bindings::check::exports::portolan::plugin::check as wit_check;
use portolan_runtime::bindings::check::ScorecardCheckPre;
use portolan_runtime::bindings::{host, types as wit};
use portolan_runtime::model::{CheckOutcome, CheckStatus, Entity};
use portolan_runtime::outbound::Allowlist;
use portolan_runtime::{cache, Grants, Plugin, Runtime, RuntimeConfig};

const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// Settings

struct Settings {
    warmup: usize,
    iters: usize,
    rounds: usize,
    scale_iters: usize,
    scale_rounds: usize,
    load_runs: usize,
}

impl Settings {
    fn from_env() -> Settings {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
        let iters = std::env::var("BENCH_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 2_000 } else { 20_000 });
        Settings {
            warmup: if quick { 300 } else { 2_000 },
            iters,
            rounds: 4,
            scale_iters: if quick { 2_000 } else { 10_000 },
            scale_rounds: 3,
            load_runs: if quick { 2 } else { 5 },
        }
    }
}

// ---------------------------------------------------------------------------
// Statistics

#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    p99: f64,
    mean: f64,
}

fn stats(samples: &mut [u64]) -> Stats {
    samples.sort_unstable();
    let n = samples.len();
    let q = |p: f64| samples[((n as f64 * p) as usize).min(n - 1)] as f64 / 1e3;
    Stats {
        median: q(0.5),
        p99: q(0.99),
        mean: samples.iter().sum::<u64>() as f64 / n as f64 / 1e3,
    }
}

fn median_f64(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------
// Store state for the bare-wasmtime variants

/// Caps memory like the runtime's `CallLimiter`, and counts growth so the
/// bench can say whether a guest grows its memory during a call.
struct BenchLimiter {
    memory_bytes: usize,
    refused: bool,
    creations: u32,
    grows: u32,
    max_bytes: usize,
}

impl ResourceLimiter for BenchLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if current == 0 {
            self.creations += 1;
        } else {
            self.grows += 1;
        }
        self.max_bytes = self.max_bytes.max(desired);
        if desired > self.memory_bytes {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// The same shape as the runtime's `OutboundHooks` (fields only; requests
/// use the default behaviour, never exercised here).
struct BenchHooks {
    #[allow(dead_code)]
    allow: Allowlist,
    #[allow(dead_code)]
    deadline: Instant,
    #[allow(dead_code)]
    denied: Vec<String>,
}

impl WasiHttpHooks for BenchHooks {}

/// `T` of the bare stores. `minimal` builds only what the linked interfaces
/// need; `sandbox` mirrors `CallState::new` field for field.
struct BenchState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: Option<BenchHooks>,
    limiter: BenchLimiter,
    stdout: Option<MemoryOutputPipe>,
    stderr: Option<MemoryOutputPipe>,
    log: Vec<String>,
    #[allow(dead_code)]
    started: Option<Instant>,
    grants: Option<Arc<Grants>>,
    secrets: Option<Arc<HashMap<String, String>>>,
}

impl BenchState {
    fn minimal() -> BenchState {
        BenchState {
            wasi: WasiCtxBuilder::new().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: None,
            limiter: BenchLimiter {
                memory_bytes: usize::MAX,
                refused: false,
                creations: 0,
                grows: 0,
                max_bytes: 0,
            },
            stdout: None,
            stderr: None,
            log: Vec::new(),
            started: None,
            grants: None,
            secrets: None,
        }
    }

    /// What `CallState::new` does (call.rs), reproduced outside the crate.
    fn sandbox(
        grants: Arc<Grants>,
        secrets: Arc<HashMap<String, String>>,
        timeout: Duration,
    ) -> BenchState {
        let stdout = MemoryOutputPipe::new(64 * 1024);
        let stderr = MemoryOutputPipe::new(64 * 1024);
        let mut b = WasiCtxBuilder::new();
        b.stdout(stdout.clone()).stderr(stderr.clone());
        b.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        let started = Instant::now();
        let mut table = ResourceTable::new();
        table.set_max_capacity(10_000);
        BenchState {
            wasi: b.build(),
            http: WasiHttpCtx::new(),
            table,
            hooks: Some(BenchHooks {
                allow: grants.http_allow.clone(),
                deadline: started + timeout,
                denied: Vec::new(),
            }),
            limiter: BenchLimiter {
                memory_bytes: grants.limits.memory_bytes as usize,
                refused: false,
                creations: 0,
                grows: 0,
                max_bytes: 0,
            },
            stdout: Some(stdout),
            stderr: Some(stderr),
            log: Vec::new(),
            started: Some(started),
            grants: Some(grants),
            secrets: Some(secrets),
        }
    }

    /// What `CallState::finish` does with empty stdio.
    fn finish(&mut self) -> Vec<String> {
        for pipe in [self.stdout.clone(), self.stderr.clone()].into_iter().flatten() {
            let bytes = pipe.contents();
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                self.log.push(line.to_owned());
            }
        }
        std::mem::take(&mut self.log)
    }
}

impl WasiView for BenchState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for BenchState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: match &mut self.hooks {
                Some(h) => h as &mut dyn WasiHttpHooks,
                None => wasmtime_wasi_http::default_hooks(),
            },
        }
    }
}

impl wit::Host for BenchState {}

impl host::Host for BenchState {
    fn log(&mut self, _level: host::LogLevel, message: String) {
        self.log.push(message);
    }
    fn settings(&mut self) -> String {
        match &self.grants {
            Some(g) => g.settings.to_string(),
            None => "{}".into(),
        }
    }
    fn setting(&mut self, key: String) -> Option<String> {
        self.grants.as_ref()?.settings.get(&key).map(|v| v.to_string())
    }
    fn secret(&mut self, name: String) -> Result<String, host::Error> {
        match self.secrets.as_ref().and_then(|s| s.get(&name)) {
            Some(v) => Ok(v.clone()),
            None => Err(host::Error::NotSet(name)),
        }
    }
}

// ---------------------------------------------------------------------------
// Engines and linkers

/// PERFORMANCE.md's tuned floor: pooling defaults plus
/// `linear_memory_keep_resident(2 MiB)`, `table_keep_resident(64 KiB)`,
/// `pagemap_scan(Enabled::Yes)`. `epoch` adds epoch interruption only.
fn tuned_engine(epoch: bool) -> Engine {
    let mut pool = PoolingAllocationConfig::default();
    pool.linear_memory_keep_resident(2 * MIB)
        .table_keep_resident(64 * 1024)
        .pagemap_scan(Enabled::Yes);
    let mut c = Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(epoch)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&c).expect("tuned engine")
}

fn bench_linker(engine: &Engine) -> Linker<BenchState> {
    let mut l = Linker::<BenchState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut l).expect("wasi");
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut l).expect("wasi:http");
    host::add_to_linker::<BenchState, HasSelf<BenchState>>(&mut l, |s| s).expect("host");
    wit::add_to_linker::<BenchState, HasSelf<BenchState>>(&mut l, |s| s).expect("types");
    l
}

// ---------------------------------------------------------------------------
// Inputs

struct Case {
    name: &'static str,
    file: PathBuf,
    params: Value,
    entities: Vec<Entity>,
    params_text: String,
    batch: Vec<wit::Entity>,
}

impl Case {
    fn new(name: &'static str, file: PathBuf, params: Value, entity: Value) -> Case {
        let entities: Vec<Entity> = vec![serde_json::from_value(entity).expect("entity")];
        Case {
            name,
            file,
            params_text: params.to_string(),
            batch: entities.iter().map(Into::into).collect(),
            params,
            entities,
        }
    }
    fn entity_bytes(&self) -> usize {
        serde_json::to_string(&self.entities[0]).unwrap().len()
    }
}

fn small_entity() -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {}
    })
}

fn entity_500() -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": "payments-api",
            "namespace": "default",
            "title": "Payments API",
            "description": "Handles card payments, refunds and the settlement export for finance.",
            "labels": {"tier": "1", "team": "payments"},
            "annotations": {"github.com/project-slug": "acme/payments-api",
                            "backstage.io/techdocs-ref": "dir:."},
            "tags": ["java", "grpc", "pci"],
            "links": [{"url": "https://grafana.example.com/d/payments", "title": "Dashboard"}]
        },
        "spec": {
            "type": "service",
            "lifecycle": "production",
            "owner": "group:default/payments",
            "system": "checkout",
            "providesApis": ["payments-grpc"]
        },
        "relations": [{"type": "ownedBy", "targetRef": "group:default/payments"}]
    })
}

// ---------------------------------------------------------------------------
// Calls

#[derive(Clone, Copy, PartialEq)]
enum Level {
    /// Fresh Store + minimal WasiCtx + instantiate + evaluate + drop.
    Minimal,
    /// + the runtime's per-call sandbox: stdio pipes, WASI flags, bounded
    ///   resource table, hooks, Arc clones, limiter, epoch deadline, finish().
    Sandbox,
    /// + converting `&[Entity]`/`&Value` to the WIT types and the outcomes
    ///   back, as `Plugin::evaluate` does.
    Full,
}

struct Bare {
    engine: Engine,
    pre: ScorecardCheckPre<BenchState>,
    epoch: bool,
}

impl Bare {
    fn new(engine: &Engine, component: &Component, epoch: bool) -> Bare {
        let linker = bench_linker(engine);
        let ipre = linker.instantiate_pre(component).expect("instantiate_pre");
        Bare {
            engine: engine.clone(),
            pre: ScorecardCheckPre::new(ipre).expect("check exports"),
            epoch,
        }
    }

    fn call(&self, level: Level, case: &Case, grants: &Arc<Grants>, secrets: &Arc<HashMap<String, String>>) -> usize {
        let state = match level {
            Level::Minimal => BenchState::minimal(),
            _ => BenchState::sandbox(grants.clone(), secrets.clone(), Duration::from_secs(30)),
        };
        let mut store = Store::new(&self.engine, state);
        if level != Level::Minimal {
            store.limiter(|s| &mut s.limiter);
        }
        if self.epoch {
            store.set_epoch_deadline(6_000);
            store.epoch_deadline_trap();
        }
        let (params, converted);
        let (p, batch): (&str, &[wit::Entity]) = if level == Level::Full {
            params = case.params.to_string();
            converted = case.entities.iter().map(Into::into).collect::<Vec<wit::Entity>>();
            (&params, &converted)
        } else {
            (&case.params_text, &case.batch)
        };
        let out = self
            .pre
            .instantiate(&mut store)
            .expect("instantiate")
            .portolan_plugin_check()
            .call_evaluate(&mut store, p, batch)
            .expect("evaluate trapped")
            .expect("evaluate returned an error");
        let n = if level == Level::Full {
            let mapped: Vec<CheckOutcome> = out
                .into_iter()
                .map(|o| CheckOutcome {
                    status: match o.status {
                        wit_check::Status::Pass => CheckStatus::Pass,
                        wit_check::Status::Fail => CheckStatus::Fail,
                        wit_check::Status::Skip => CheckStatus::Skip,
                    },
                    message: o.message,
                    value: o.value.map(|v| serde_json::from_str(&v).expect("value json")),
                })
                .collect();
            mapped.len()
        } else {
            out.len()
        };
        if level != Level::Minimal {
            let logs = store.data_mut().finish();
            std::hint::black_box(logs);
        }
        n
    }
}

fn runtime_call(plugin: &Plugin, case: &Case) -> usize {
    let report = plugin.evaluate(&case.params, &case.entities);
    match report.result {
        Ok(outcomes) => {
            assert!(
                outcomes.iter().all(|o| o.status == CheckStatus::Pass),
                "{}: expected pass, got {outcomes:?}",
                case.name
            );
            outcomes.len()
        }
        Err(e) => panic!("{}: runtime call failed: {e}", case.name),
    }
}

// ---------------------------------------------------------------------------
// Measurement helpers

type CallFn<'a> = Box<dyn Fn() -> usize + Sync + 'a>;

struct Variant<'a> {
    label: String,
    f: CallFn<'a>,
    samples: Vec<u64>,
}

/// Runs every variant `rounds` times, interleaved, `iters / rounds` calls
/// each round, after a warm-up of `warmup` calls each.
fn measure(variants: &mut [Variant<'_>], s: &Settings) {
    for v in variants.iter_mut() {
        for _ in 0..s.warmup {
            std::hint::black_box((v.f)());
        }
        v.samples.reserve(s.iters);
    }
    let per_round = s.iters.div_ceil(s.rounds);
    for _ in 0..s.rounds {
        for v in variants.iter_mut() {
            for _ in 0..per_round {
                let t = Instant::now();
                let n = (v.f)();
                let el = t.elapsed();
                std::hint::black_box(n);
                v.samples.push(el.as_nanos() as u64);
            }
        }
    }
}

/// Calls per second with `threads` threads each making `n` calls, and the
/// median per-call latency seen by the threads (µs).
fn throughput(threads: usize, n: usize, f: &(dyn Fn() -> usize + Sync)) -> (f64, f64) {
    let barrier = Barrier::new(threads);
    let results: Vec<(Instant, Instant, Vec<u64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut lat = Vec::with_capacity(n);
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..n {
                        let t = Instant::now();
                        std::hint::black_box(f());
                        lat.push(t.elapsed().as_nanos() as u64);
                    }
                    (start, Instant::now(), lat)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start = results.iter().map(|r| r.0).min().unwrap();
    let end = results.iter().map(|r| r.1).max().unwrap();
    let mut lat: Vec<u64> = results.into_iter().flat_map(|r| r.2).collect();
    let med = stats(&mut lat).median;
    ((threads * n) as f64 / (end - start).as_secs_f64(), med)
}

// ---------------------------------------------------------------------------

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or other flags are ignored.
    let s = Settings::from_env();
    let root = workspace_root();
    let echo_path = root.join("target/fixtures/echo-check.wasm");
    let rf_path = root.join("target/plugins/required-fields.wasm");
    for p in [&echo_path, &rf_path] {
        assert!(
            p.exists(),
            "{} is missing: run scripts/build-plugins.sh --fixtures",
            p.display()
        );
    }
    let cases = [
        Case::new("echo-check", echo_path, json!({}), small_entity()),
        Case::new(
            "required-fields",
            rf_path,
            json!({"fields": ["spec.owner"]}),
            entity_500(),
        ),
    ];

    let cache_dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let policy = runtime.config().limits;
    let grants = Arc::new(Grants::none(&policy));
    let secrets: Arc<HashMap<String, String>> = Arc::new(HashMap::new());

    let e_bare = tuned_engine(false);
    let e_epoch = tuned_engine(true);

    println!("Portolan runtime benchmark (wasmtime 48, fresh instance per call)");
    println!(
        "samples per variant: {} (after {} warm-up calls), interleaved in {} rounds; times in µs",
        s.iters, s.warmup, s.rounds
    );
    println!(
        "machine: {} CPUs available to this process",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();

    struct Loaded {
        plugin: Plugin,
        bare: Bare,
        bare_epoch: Bare,
        bare_rt: Bare,
    }
    let mut loaded = Vec::new();
    for case in &cases {
        let bytes = std::fs::read(&case.file).expect("read wasm");
        let hash = sha256_hex(&bytes);
        let (component, _) = cache::component(&runtime, &bytes, &hash).expect("component");
        let plugin = Plugin::load(&runtime, case.name, hash, &component, Grants::none(&policy))
            .expect("Plugin::load");
        let bare = Bare::new(&e_bare, &Component::new(&e_bare, &bytes).unwrap(), false);
        let bare_epoch = Bare::new(&e_epoch, &Component::new(&e_epoch, &bytes).unwrap(), true);
        let bare_rt = Bare::new(runtime.engine(), &component, true);
        loaded.push(Loaded {
            plugin,
            bare,
            bare_epoch,
            bare_rt,
        });
    }

    // -- Memory behaviour of the guests (the multi-core trap of PERFORMANCE.md).
    println!("== Guest memory per call (bare, tuned engine, counted by a ResourceLimiter)");
    for (case, l) in cases.iter().zip(&loaded) {
        let mut store = Store::new(
            &l.bare.engine,
            BenchState::sandbox(grants.clone(), secrets.clone(), Duration::from_secs(30)),
        );
        store.limiter(|s| &mut s.limiter);
        l.bare
            .pre
            .instantiate(&mut store)
            .unwrap()
            .portolan_plugin_check()
            .call_evaluate(&mut store, &case.params_text, &case.batch)
            .unwrap()
            .unwrap();
        let lim = &store.data().limiter;
        println!(
            "  {:<16} entity {:>3} B JSON; memories created {}, memory.grow during the call: {}, peak {:.2} MiB{}",
            case.name,
            case.entity_bytes(),
            lim.creations,
            lim.grows,
            lim.max_bytes as f64 / MIB as f64,
            if lim.refused { " (REFUSED)" } else { "" }
        );
    }
    println!();

    // -- 1-3. Single-thread latency.
    let mut summary = Vec::new();
    for (case, l) in cases.iter().zip(&loaded) {
        let g = &grants;
        let sc = &secrets;
        let mut variants: Vec<Variant<'_>> = vec![
            Variant {
                label: "runtime: Plugin::evaluate".into(),
                f: Box::new(|| runtime_call(&l.plugin, case)),
                samples: Vec::new(),
            },
            Variant {
                label: "bare: tuned engine, minimal state  [BASELINE]".into(),
                f: Box::new(|| l.bare.call(Level::Minimal, case, g, sc)),
                samples: Vec::new(),
            },
            Variant {
                label: "bare: tuned + epoch_interruption".into(),
                f: Box::new(|| l.bare_epoch.call(Level::Minimal, case, g, sc)),
                samples: Vec::new(),
            },
            Variant {
                label: "bare: runtime's engine, minimal state".into(),
                f: Box::new(|| l.bare_rt.call(Level::Minimal, case, g, sc)),
                samples: Vec::new(),
            },
            Variant {
                label: "bare: tuned engine + runtime sandbox state".into(),
                f: Box::new(|| l.bare.call(Level::Sandbox, case, g, sc)),
                samples: Vec::new(),
            },
            Variant {
                label: "bare: runtime's engine + sandbox state".into(),
                f: Box::new(|| l.bare_rt.call(Level::Sandbox, case, g, sc)),
                samples: Vec::new(),
            },
            Variant {
                label: "bare: tuned engine + sandbox + conversions".into(),
                f: Box::new(|| l.bare.call(Level::Full, case, g, sc)),
                samples: Vec::new(),
            },
            Variant {
                label: "bare: runtime's engine + sandbox + conv. (replica)".into(),
                f: Box::new(|| l.bare_rt.call(Level::Full, case, g, sc)),
                samples: Vec::new(),
            },
        ];
        measure(&mut variants, &s);
        let st: Vec<Stats> = variants.iter_mut().map(|v| stats(&mut v.samples)).collect();
        let base = st[1].median;
        println!(
            "== {} (one entity, {} B JSON): fresh instance per call, 1 thread",
            case.name,
            case.entity_bytes()
        );
        println!(
            "  {:<52} {:>9} {:>9} {:>9} {:>9}",
            "variant", "median", "p99", "mean", "x base"
        );
        for (v, st) in variants.iter().zip(&st) {
            println!(
                "  {:<52} {:>9.2} {:>9.2} {:>9.2} {:>8.2}x",
                v.label,
                st.median,
                st.p99,
                st.mean,
                st.median / base
            );
        }
        println!();
        summary.push((case.name, st[0], st[1]));
    }

    println!("== RATIO runtime / bare (fresh instance, median; goal <= 1.5x, target <= 1.2x)");
    for (name, rt, bare) in &summary {
        let r = rt.median / bare.median;
        println!(
            "  {:<16} runtime {:>7.2} µs  bare {:>7.2} µs  ratio {:.2}x  [{}]   (p99 ratio {:.2}x)",
            name,
            rt.median,
            bare.median,
            r,
            if r <= 1.2 {
                "meets target"
            } else if r <= 1.5 {
                "meets goal, misses 1.2x target"
            } else {
                "MISSES 1.5x goal"
            },
            rt.p99 / bare.p99
        );
    }
    println!();

    // -- 4. Two threads.
    println!(
        "== Two threads vs one: throughput, {} calls per thread, median of {} rounds (target >= 1.8x)",
        s.scale_iters, s.scale_rounds
    );
    println!(
        "  {:<40} {:>12} {:>12} {:>8} {:>11} {:>11}",
        "variant", "1T calls/s", "2T calls/s", "scaling", "1T med µs", "2T med µs"
    );
    for (case, l) in cases.iter().zip(&loaded) {
        let g = &grants;
        let sc = &secrets;
        let rt_f = || runtime_call(&l.plugin, case);
        let bare_f = || l.bare.call(Level::Minimal, case, g, sc);
        let configs: Vec<(String, &(dyn Fn() -> usize + Sync))> = vec![
            (format!("runtime  {}", case.name), &rt_f),
            (format!("bare     {}", case.name), &bare_f),
        ];
        for (label, f) in configs {
            throughput(2, s.warmup, f);
            let (mut t1, mut t2, mut l1, mut l2) = (vec![], vec![], vec![], vec![]);
            for _ in 0..s.scale_rounds {
                let (a, la) = throughput(1, s.scale_iters, f);
                let (b, lb) = throughput(2, s.scale_iters, f);
                t1.push(a);
                t2.push(b);
                l1.push(la);
                l2.push(lb);
            }
            let (a, b) = (median_f64(&mut t1), median_f64(&mut t2));
            println!(
                "  {:<40} {:>12.0} {:>12.0} {:>7.2}x {:>11.2} {:>11.2}",
                label,
                a,
                b,
                b / a,
                median_f64(&mut l1),
                median_f64(&mut l2)
            );
        }
    }
    // A long-lived instance per thread: what the machine scales to without
    // instantiation (PERFORMANCE.md measured 1.96x).
    {
        let case = &cases[1];
        let l = &loaded[1];
        thread_local! {
            static LONG: std::cell::RefCell<Option<(Store<BenchState>, portolan_runtime::bindings::check::ScorecardCheck)>> = const { std::cell::RefCell::new(None) };
        }
        let f = || {
            LONG.with(|cell| {
                let mut cell = cell.borrow_mut();
                let (store, inst) = cell.get_or_insert_with(|| {
                    let mut store = Store::new(&l.bare.engine, BenchState::minimal());
                    let inst = l.bare.pre.instantiate(&mut store).unwrap();
                    (store, inst)
                });
                inst.portolan_plugin_check()
                    .call_evaluate(&mut *store, &case.params_text, &case.batch)
                    .unwrap()
                    .unwrap()
                    .len()
            })
        };
        throughput(2, s.warmup, &f);
        let (mut t1, mut t2, mut l1, mut l2) = (vec![], vec![], vec![], vec![]);
        for _ in 0..s.scale_rounds {
            let (a, la) = throughput(1, s.scale_iters, &f);
            let (b, lb) = throughput(2, s.scale_iters, &f);
            t1.push(a);
            t2.push(b);
            l1.push(la);
            l2.push(lb);
        }
        let (a, b) = (median_f64(&mut t1), median_f64(&mut t2));
        println!(
            "  {:<40} {:>12.0} {:>12.0} {:>7.2}x {:>11.2} {:>11.2}",
            "bare     long-lived instance, req.-fields",
            a,
            b,
            b / a,
            median_f64(&mut l1),
            median_f64(&mut l2)
        );
    }
    println!();

    // -- 5. Load time, cold vs cache.
    println!(
        "== Plugin load: cache::component + Plugin::load, median of {} runs (ms)",
        s.load_runs
    );
    println!(
        "  {:<22} {:>8} {:>10} {:>11} {:>10} {:>10} {:>10} {:>8}",
        "component", "KiB", "cold total", "(compile+", "(load)", "cache tot", "(deser.)", "speedup"
    );
    println!("  {:<22} {:>8} {:>10} {:>11}", "", "", "", "write)");
    let mut files: Vec<PathBuf> = ["target/plugins", "target/fixtures"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).into_iter().flatten())
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    let load_dir = tempfile::tempdir().expect("tempdir");
    let load_rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(load_dir.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(file).unwrap();
        let hash = sha256_hex(&bytes);
        let id = name.trim_end_matches(".wasm").to_owned();
        let once = |expect_cache: bool| -> Result<(f64, f64), String> {
            let t0 = Instant::now();
            let (c, origin) = cache::component(&load_rt, &bytes, &hash)?;
            let t1 = Instant::now();
            assert_eq!(origin == cache::Origin::Cache, expect_cache, "{name}: cache origin");
            let p = Plugin::load(&load_rt, &id, hash.clone(), &c, Grants::none(&policy))?;
            let t2 = Instant::now();
            drop(p);
            Ok(((t1 - t0).as_secs_f64() * 1e3, (t2 - t1).as_secs_f64() * 1e3))
        };
        let mut cold = (vec![], vec![], vec![]);
        let mut warm = (vec![], vec![]);
        let mut error = None;
        for _ in 0..s.load_runs {
            for e in std::fs::read_dir(load_dir.path()).unwrap().flatten() {
                let _ = std::fs::remove_file(e.path());
            }
            match once(false) {
                Ok((c, l)) => {
                    cold.0.push(c + l);
                    cold.1.push(c);
                    cold.2.push(l);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            match once(true) {
                Ok((c, l)) => {
                    warm.0.push(c + l);
                    warm.1.push(c);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = error {
            let e: String = e.chars().take(90).collect();
            println!("  {name:<22} {:>8.0} load failed: {e}", bytes.len() as f64 / 1024.0);
            continue;
        }
        let ct = median_f64(&mut cold.0);
        let wt = median_f64(&mut warm.0);
        println!(
            "  {:<22} {:>8.0} {:>10.2} {:>11.2} {:>10.3} {:>10.3} {:>10.3} {:>7.0}x",
            name,
            bytes.len() as f64 / 1024.0,
            ct,
            median_f64(&mut cold.1),
            median_f64(&mut cold.2),
            wt,
            median_f64(&mut warm.1),
            ct / wt
        );
    }
}
