//! Wiring: the state every handler shares, and the server's entry point.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use portolan_runtime::{Registry, Runtime, RuntimeConfig};
use portolan_store::Store;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::metrics::Metrics;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    /// Wakes this replica's sync workers when a sync is queued here.
    pub sync_wake: Arc<crate::sync::Wake>,
    /// Wakes this replica's scorecard evaluation workers.
    pub evaluation_wake: Arc<crate::sync::Wake>,
    /// Which scorecards the scorecard files define.
    pub file_scorecards: Arc<crate::scorecards::FileScorecards>,
    /// This replica's action run workers: wake-ups and cancel flags.
    pub actions: Arc<crate::actions::Local>,
}

/// Builds the runtime settings from the portal's configuration.
pub fn runtime_config(config: &Config) -> RuntimeConfig {
    let mut rc = RuntimeConfig {
        cache_dir: Some(config.data_dir.join("cache").join("components")),
        max_concurrent_calls: config.runtime.max_concurrent_calls,
        secrets: config.secrets.clone(),
        ..RuntimeConfig::default()
    };
    rc.limits.default.timeout_ms = config.runtime.default_timeout_ms;
    rc.limits.default.memory_bytes = config.runtime.default_memory_mb * 1024 * 1024;
    rc.limits.fuel_enabled = config.runtime.fuel;
    rc
}

/// Opens the store, starts the runtime and the plugin registry, and builds
/// the state. The first scan of the plugins folder runs in the background;
/// `/readyz` reports when it is done.
pub async fn build(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    std::fs::create_dir_all(&config.plugins_dir).with_context(|| {
        format!(
            "creating the plugins folder {}",
            config.plugins_dir.display()
        )
    })?;
    let store = Store::connect(&config.database_url)
        .await
        .context("opening the database")?;
    let mut runtime_cfg = runtime_config(&config);
    // Plugins of every role may read the catalog (wit/catalog.wit).
    runtime_cfg.catalog = Some(portolan_runtime::CatalogAccess(Arc::new(
        crate::lookup::StoreLookup {
            store: store.clone(),
            handle: tokio::runtime::Handle::current(),
        },
    )));
    let runtime = tokio::task::spawn_blocking(move || Runtime::new(runtime_cfg))
        .await
        .context("starting the plugin runtime")??;
    let registry = Registry::new(runtime, config.plugins_dir.clone());
    Ok(AppState {
        config: Arc::new(config),
        store,
        registry,
        metrics: Arc::new(Metrics::default()),
        started: Instant::now(),
        sync_wake: Arc::default(),
        evaluation_wake: Arc::default(),
        file_scorecards: Arc::default(),
        actions: Arc::default(),
    })
}

/// Serves the portal on `listener` until `shutdown` resolves, then stops
/// accepting, lets requests in flight finish, and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = build(config).await?;
    serve(listener, state, shutdown).await
}

/// Serves an already built state (tests use this to keep a handle on it).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let registry = state.registry.clone();
    let mut rx = stop_rx.clone();
    let watcher = registry.spawn_watcher(async move {
        let _ = rx.wait_for(|s| *s).await;
    });
    let syncs = crate::sync::spawn(state.clone(), stop_rx.clone());
    let evaluations = crate::evaluate::spawn(state.clone(), stop_rx.clone());
    let runs = crate::actions::spawn(state.clone(), stop_rx);
    // The first scan runs beside the server so that it answers (and
    // `/readyz` says "scanning") while large plugins compile.
    let first = registry.clone();
    tokio::spawn(async move { first.scan().await });

    let addr = listener.local_addr().ok();
    tracing::info!(?addr, plugins = %state.config.plugins_dir.display(), "portolan listening");
    let store = state.store.clone();
    let app = crate::api::router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await
        .context("serving HTTP")?;
    let _ = watcher.await;
    let _ = syncs.await;
    let _ = evaluations.await;
    let _ = runs.await;
    store.close().await;
    tracing::info!("portolan stopped");
    Ok(())
}
