//! The one wasmtime engine of the process and what every call shares.
//!
//! Choices and why:
//! - **Pooling allocator**: a fresh instance per call is the isolation model,
//!   so instantiation must be cheap. Slots are sized for the largest guests the
//!   language toolchains produce (a componentize-py component has 14 core
//!   modules, ~12 MiB of initial memory and tables of ~5,700 elements), not
//!   just for small Rust guests; see PERFORMANCE.md.
//! - **Epoch interruption** for deadlines: a ticker thread bumps the epoch
//!   every [`EPOCH_TICK`]; each store gets a deadline in ticks. It costs far
//!   less than fuel and bounds wall-clock time, which is what callers wait on.
//! - **Fuel** only when the operator asks for it (`fuel = true`), since it
//!   slows every instruction of every plugin.
//! - **No component-model async**: plugin calls are synchronous and run on
//!   blocking threads; the feature would add cost to every call.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::call::CallState;
use crate::catalog::CatalogAccess;
use crate::sidecar::{LimitPolicy, Limits};

/// How often the epoch advances; the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

const MIB: u64 = 1024 * 1024;

/// Settings of the runtime, chosen by the server's configuration.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled code is cached (`None` disables the disk cache).
    pub cache_dir: Option<PathBuf>,
    /// Default per-call limits and the bounds a sidecar may not exceed.
    pub limits: LimitPolicy,
    /// Most plugin calls that may run at once (instance slots in the pool).
    pub max_concurrent_calls: u32,
    /// Secret values by name; a plugin sees only those its sidecar grants.
    pub secrets: HashMap<String, String>,
    /// What answers plugins' catalog lookups (`portolan:plugin/catalog`),
    /// for every role; `None`: each lookup fails with `unavailable`.
    pub catalog: Option<CatalogAccess>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            limits: LimitPolicy {
                default: Limits {
                    timeout_ms: 30_000,
                    memory_bytes: 256 * MIB,
                    fuel: None,
                },
                max_timeout_ms: 3_600_000,
                max_memory_bytes: 2048 * MIB,
                fuel_enabled: false,
            },
            max_concurrent_calls: 64,
            secrets: HashMap::new(),
            catalog: None,
        }
    }
}

/// The runtime: engine, linker and shared settings. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<CallState>,
    config: RuntimeConfig,
    secrets: Arc<HashMap<String, String>>,
    engine_key: String,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("engine_key", &self.inner.engine_key)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> wasmtime::Result<Runtime> {
        let engine = Engine::new(&engine_config(&config)).context("creating the wasm engine")?;
        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).context("linking WASI")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .context("linking wasi:http")?;
        crate::waits::link(&mut linker).context("linking wasi:io/poll bounded by deadlines")?;
        // Every supported contract version imports its own `host` and `types`
        // (`portolan:plugin/host@0.1.0`, `@0.2.0`, ...): 0.x versions are not
        // semver-compatible, so the linker needs each one under its name.
        // The implementation behind them is one (call.rs).
        macro_rules! link_contract {
            ($($bindings:ident)::+, $version:literal) => {
                $($bindings)::+::host::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
                    .context(concat!("linking portolan:plugin/host@", $version))?;
                $($bindings)::+::types::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
                    .context(concat!("linking portolan:plugin/types@", $version))?;
            };
        }
        link_contract!(crate::bindings::v0_4, "0.4.0");
        crate::bindings::v0_4::catalog::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |s| s,
        )
        .context("linking portolan:plugin/catalog@0.4.0")?;
        link_contract!(crate::bindings::v0_3, "0.3.0");
        crate::bindings::v0_3::catalog::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |s| s,
        )
        .context("linking portolan:plugin/catalog@0.3.0")?;
        link_contract!(crate::bindings::v0_2, "0.2.0");
        link_contract!(crate::bindings::v0_1, "0.1.0");

        let engine_key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            env!("CARGO_PKG_VERSION").hash(&mut h);
            format!("{:016x}", h.finish())
        };

        start_epoch_ticker(&engine).context("starting the epoch ticker thread")?;
        let secrets = Arc::new(config.secrets.clone());
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                secrets,
                engine_key,
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn linker(&self) -> &Linker<CallState> {
        &self.inner.linker
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    pub(crate) fn secrets(&self) -> &Arc<HashMap<String, String>> {
        &self.inner.secrets
    }

    /// `text` with the value of every secret the host holds replaced by
    /// `[secret]`: for anything a plugin hands back (log lines, outputs,
    /// error messages) before it is stored or shown.
    pub fn redact(&self, text: &str) -> String {
        crate::call::mask_secrets(&self.inner.secrets, text)
    }

    /// [`redact`](Self::redact) applied to every string (keys included) of
    /// a JSON value.
    pub fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.redact(k), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Identifies the engine's code generation settings: compiled artifacts
    /// are reusable only by an engine with the same key.
    pub fn engine_key(&self) -> &str {
        &self.inner.engine_key
    }
}

fn engine_config(config: &RuntimeConfig) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let slots = config.max_concurrent_calls.max(1);
    pool.total_component_instances(slots)
        // componentize-py: 14 core modules; leave room for adapters.
        .max_core_instances_per_component(32)
        .total_core_instances(slots * 16)
        .max_memories_per_component(16)
        .max_memories_per_module(1)
        .total_memories(slots * 4)
        .max_tables_per_component(32)
        .max_tables_per_module(4)
        .total_tables(slots * 16)
        // JS and Python guests have tables of ~5,700-7,700 elements.
        .table_elements(20_000)
        .max_memory_size(config.limits.max_memory_bytes as usize)
        // Keeping a little memory resident between uses of a slot avoids
        // most of the madvise/mprotect calls that make fresh instances
        // contend across cores (PERFORMANCE.md).
        .linear_memory_keep_resident(2 * MIB as usize)
        .table_keep_resident(64 * 1024)
        .pagemap_scan(Enabled::Auto)
        .total_stacks(0);

    let mut c = Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(config.limits.fuel_enabled)
        .concurrency_support(false)
        .parallel_compilation(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is
/// dropped. A thread rather than a tokio task: deadlines must hold even when
/// the async runtime is starved.
fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("portolan-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .map(drop)
}
