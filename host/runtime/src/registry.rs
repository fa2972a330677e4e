//! The plugins folder: what is installed, loaded, failed; kept in step with
//! the files.
//!
//! Installing a plugin is copying `NAME.wasm` (and optionally its sidecar
//! `NAME.toml`) into the folder. The registry notices through filesystem
//! events (with a periodic rescan as a fallback for filesystems that do not
//! deliver them), compiles off the async threads, and swaps the new version
//! in atomically: callers hold an `Arc<Plugin>`, so calls in flight finish on
//! the version they started with. A removed file unloads the plugin. A file
//! that fails any step is listed with its error and never affects the host or
//! other plugins.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bindings::Contract;
use crate::cache::{self, Origin};
use crate::engine::Runtime;
use crate::plugin::{Description, Plugin, Role};
use crate::sidecar::{Grants, Sidecar};

/// Largest `.wasm` file the host will read. Components built by the language
/// toolchains here are at most ~20 MiB; this bounds host memory if someone
/// drops a huge file into the folder.
pub const MAX_COMPONENT_BYTES: u64 = 256 * 1024 * 1024;

/// How long the registry waits after a filesystem event before it rescans,
/// so that a file being copied is read once, complete.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// How often the folder is rescanned without any event.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Where a plugin stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginStatus {
    Ready,
    Failed,
}

/// One plugin file as the registry sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginEntry {
    /// The file name without `.wasm`: the plugin's identity in the portal.
    pub id: String,
    pub status: PluginStatus,
    /// Why the plugin failed to load, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The contract version the plugin was built against (e.g. `0.2.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<Contract>,
    /// SHA-256 of the `.wasm` file, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// What the plugin said in `describe`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub describe: Option<Description>,
    /// What the operator granted (from the sidecar).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grants: Option<Arc<Grants>>,
    /// Whether a sidecar file is present.
    pub sidecar: bool,
    /// When this version was (or failed to be) loaded, as RFC 3339.
    pub loaded_at: String,
    /// How long loading took, in milliseconds.
    pub load_ms: u64,
    /// Whether the compiled code came from the disk cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    #[serde(skip)]
    pub plugin: Option<Arc<Plugin>>,
}

/// What a file looked like when last loaded: size and modification time of
/// the `.wasm` and of its sidecar. A difference triggers a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    wasm: (u64, Option<SystemTime>),
    sidecar: Option<(u64, Option<SystemTime>)>,
}

fn stat(path: &Path) -> Option<(u64, Option<SystemTime>)> {
    let md = std::fs::metadata(path).ok()?;
    Some((md.len(), md.modified().ok()))
}

/// The plugins folder and everything loaded from it. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    dir: PathBuf,
    entries: RwLock<BTreeMap<String, Arc<PluginEntry>>>,
    seen: std::sync::Mutex<HashMap<String, Fingerprint>>,
    /// One scan at a time.
    scanning: tokio::sync::Mutex<()>,
    changed: tokio::sync::Notify,
    scans: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new(runtime: Runtime, dir: PathBuf) -> Registry {
        Registry {
            inner: Arc::new(Inner {
                runtime,
                dir,
                entries: RwLock::new(BTreeMap::new()),
                seen: std::sync::Mutex::new(HashMap::new()),
                scanning: tokio::sync::Mutex::new(()),
                changed: tokio::sync::Notify::new(),
                scans: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// Every plugin file, loaded or failed, by id.
    pub fn list(&self) -> Vec<Arc<PluginEntry>> {
        self.read_entries().values().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<Arc<PluginEntry>> {
        self.read_entries().get(id).cloned()
    }

    /// The loaded plugin `id`, if it is ready.
    pub fn plugin(&self, id: &str) -> Option<Arc<Plugin>> {
        self.get(id).and_then(|e| e.plugin.clone())
    }

    /// How many scans have completed; readiness waits for the first.
    pub fn scans_completed(&self) -> u64 {
        self.inner.scans.load(std::sync::atomic::Ordering::Acquire)
    }

    fn read_entries(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<PluginEntry>>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (every write is a single insert or remove), so poisoning is moot.
        self.inner.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_entries(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<PluginEntry>>> {
        self.inner
            .entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the registry in step with the folder: loads new and changed
    /// files, unloads removed ones. Compilation runs on blocking threads.
    pub async fn scan(&self) {
        let _one = self.inner.scanning.lock().await;
        let files = match list_wasm(&self.inner.dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.inner.dir.display(), error = %e, "cannot list the plugins folder");
                self.inner
                    .scans
                    .fetch_add(1, std::sync::atomic::Ordering::Release);
                return;
            }
        };

        let mut to_load = Vec::new();
        {
            let mut seen = self.inner.seen.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<String> = seen
                .keys()
                .filter(|id| !files.contains_key(*id))
                .cloned()
                .collect();
            for id in gone {
                seen.remove(&id);
                if self.write_entries().remove(&id).is_some() {
                    tracing::info!(plugin = %id, "plugin removed; unloaded");
                }
            }
            for (id, wasm) in &files {
                let Some(fp) = fingerprint(wasm) else {
                    continue;
                };
                if seen.get(id) != Some(&fp) {
                    to_load.push((id.clone(), wasm.clone(), fp));
                }
            }
        }

        let mut changed = false;
        for (id, wasm, fp) in to_load {
            let runtime = self.inner.runtime.clone();
            let current = self.get(&id);
            let (id2, wasm2) = (id.clone(), wasm.clone());
            let entry = tokio::task::spawn_blocking(move || {
                load(&runtime, &id2, &wasm2, current.as_deref())
            })
            .await;
            let entry = match entry {
                Ok(Some(entry)) => entry,
                // The file and its sidecar are what was already loaded.
                Ok(None) => {
                    self.remember(&id, fp);
                    continue;
                }
                Err(e) => failed(&id, &wasm, format!("loading panicked: {e}"), Instant::now()),
            };
            match &entry.error {
                None => tracing::info!(
                    plugin = %id,
                    role = ?entry.role,
                    contract = entry.contract.map(Contract::as_str).unwrap_or(""),
                    version = entry.version.as_deref().unwrap_or(""),
                    ms = entry.load_ms,
                    origin = ?entry.origin,
                    "plugin loaded"
                ),
                Some(err) => tracing::warn!(plugin = %id, error = %err, "plugin failed to load"),
            }
            self.write_entries().insert(id.clone(), Arc::new(entry));
            self.remember(&id, fp);
            changed = true;
        }
        self.inner
            .scans
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        if changed {
            self.inner.changed.notify_waiters();
        }
    }

    fn remember(&self, id: &str, fp: Fingerprint) {
        self.inner
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), fp);
    }

    /// Watches the folder until `shutdown` resolves: rescans shortly after
    /// any filesystem event, and every [`POLL_INTERVAL`] regardless.
    pub fn spawn_watcher(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            let wake = Arc::new(tokio::sync::Notify::new());
            let w = wake.clone();
            let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if res.is_ok() {
                    w.notify_one();
                }
            })
            .and_then(|mut watcher| {
                use notify::Watcher as _;
                watcher.watch(&registry.inner.dir, notify::RecursiveMode::NonRecursive)?;
                Ok(watcher)
            });
            let _watcher = match watcher {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the plugins folder; polling only");
                    None
                }
            };
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = wake.notified() => {
                        tokio::time::sleep(DEBOUNCE).await;
                    }
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                }
                registry.scan().await;
            }
        })
    }
}

/// `*.wasm` files in `dir` by plugin id.
fn list_wasm(dir: &Path) -> std::io::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") || !path.is_file() {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            out.insert(stem.to_owned(), path.clone());
        }
    }
    Ok(out)
}

fn sidecar_path(wasm: &Path) -> PathBuf {
    wasm.with_extension("toml")
}

fn fingerprint(wasm: &Path) -> Option<Fingerprint> {
    Some(Fingerprint {
        wasm: stat(wasm)?,
        sidecar: stat(&sidecar_path(wasm)),
    })
}

/// Whether `id` may name a plugin: it appears in URLs and logs.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        })
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn failed(id: &str, wasm: &Path, error: String, started: Instant) -> PluginEntry {
    PluginEntry {
        id: id.to_owned(),
        status: PluginStatus::Failed,
        error: Some(error),
        role: None,
        version: None,
        contract: None,
        hash: None,
        describe: None,
        grants: None,
        sidecar: sidecar_path(wasm).exists(),
        loaded_at: now_rfc3339(),
        load_ms: started.elapsed().as_millis() as u64,
        origin: None,
        plugin: None,
    }
}

/// Loads one plugin file. Returns `None` when the bytes and the sidecar are
/// those of `current` (a touched file needs no reload). Blocking.
fn load(
    runtime: &Runtime,
    id: &str,
    wasm: &Path,
    current: Option<&PluginEntry>,
) -> Option<PluginEntry> {
    let started = Instant::now();
    let fail = |e: String| Some(failed(id, wasm, e, started));
    if !valid_id(id) {
        return fail(format!(
            "invalid plugin file name {id:?}.wasm: use 1-63 lower-case letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        ));
    }
    let bytes = match read_limited(wasm) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let hash = hex::encode(Sha256::digest(&bytes));

    let policy = runtime.config().limits;
    let sidecar_file = sidecar_path(wasm);
    let grants = match Sidecar::read(&sidecar_file) {
        Ok(Some(sidecar)) => {
            let base = wasm.parent().unwrap_or(Path::new("."));
            match sidecar.resolve(base, &policy) {
                Ok(g) => g,
                Err(e) => return fail(format!("sidecar {}: {e}", sidecar_file.display())),
            }
        }
        Ok(None) => Grants::none(&policy),
        Err(e) => return fail(format!("sidecar {e}")),
    };

    if let Some(cur) = current {
        let same_grants = cur
            .grants
            .as_deref()
            .is_some_and(|g| serde_json::to_value(g).ok() == serde_json::to_value(&grants).ok());
        if cur.hash.as_deref() == Some(hash.as_str())
            && same_grants
            && cur.status == PluginStatus::Ready
        {
            return None;
        }
    }

    let (component, origin) = match cache::component(runtime, &bytes, &hash) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    drop(bytes);
    let plugin = match Plugin::load(runtime, id, hash.clone(), &component, grants) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    Some(PluginEntry {
        id: id.to_owned(),
        status: PluginStatus::Ready,
        error: None,
        role: Some(plugin.role),
        version: Some(plugin.description.version.clone()),
        contract: Some(plugin.contract),
        hash: Some(hash),
        describe: Some(plugin.description.clone()),
        grants: Some(plugin.grants.clone()),
        sidecar: sidecar_file.exists(),
        loaded_at: now_rfc3339(),
        load_ms: started.elapsed().as_millis() as u64,
        origin: Some(origin),
        plugin: Some(Arc::new(plugin)),
    })
}

fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_COMPONENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_COMPONENT_BYTES {
        return Err(format!(
            "{} is larger than {} MiB",
            path.display(),
            MAX_COMPONENT_BYTES / (1024 * 1024)
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_ids_are_url_safe() {
        assert!(valid_id("scorecard-basics"));
        assert!(valid_id("a1.b_c"));
        assert!(!valid_id(""));
        assert!(!valid_id("-lead"));
        assert!(!valid_id("Upper"));
        assert!(!valid_id("sp ace"));
        assert!(!valid_id(&"x".repeat(64)));
    }
}
