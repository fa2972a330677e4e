//! Compiled code cached on disk, so a restart does not recompile.
//!
//! An entry is keyed by the SHA-256 of the `.wasm` file and by the engine's
//! key (wasmtime version and code generation settings), so a changed plugin
//! or an upgraded host never picks up stale code. Entries are written to a
//! temporary file and renamed, so a crash never leaves half an artifact.

use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use crate::engine::Runtime;

/// Where a component's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Compiled from the `.wasm` file now.
    Compiled,
    /// Loaded from the disk cache.
    Cache,
}

fn entry_path(dir: &Path, runtime: &Runtime, hash: &str) -> PathBuf {
    dir.join(format!("{hash}-{}.cwasm", runtime.engine_key()))
}

/// Returns the compiled component for `bytes` (whose SHA-256 is `hash`),
/// from the cache when possible. Blocking and CPU-heavy on a miss.
pub fn component(
    runtime: &Runtime,
    bytes: &[u8],
    hash: &str,
) -> Result<(Component, Origin), String> {
    let dir = runtime.config().cache_dir.clone();
    if let Some(dir) = &dir {
        let path = entry_path(dir, runtime, hash);
        if path.exists() {
            // SAFETY: `deserialize_file` trusts the file to be a wasmtime
            // artifact. Only this host writes the cache directory (inside its
            // data directory), the name carries the engine key, and wasmtime
            // checks the artifact's header against the engine. Whoever can
            // write there can already replace the host itself.
            match unsafe { Component::deserialize_file(runtime.engine(), &path) } {
                Ok(c) => return Ok((c, Origin::Cache)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cache entry");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }

    let component = Component::new(runtime.engine(), bytes).map_err(|e| {
        format!(
            "not a valid WebAssembly component: {}",
            one_line(&format!("{e:#}"))
        )
    })?;

    if let Some(dir) = &dir {
        if let Err(e) = store(dir, runtime, hash, &component) {
            // A cache we cannot write costs time on the next start, nothing else.
            tracing::warn!(dir = %dir.display(), error = %e, "cannot write the compiled-code cache");
        }
    }
    Ok((component, Origin::Compiled))
}

fn store(dir: &Path, runtime: &Runtime, hash: &str, component: &Component) -> wasmtime::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    let path = entry_path(dir, runtime, hash);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// Folds a multi-line error (wasmparser prints byte arrays over many lines)
/// into one line for the plugin list.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
