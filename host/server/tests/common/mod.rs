//! What the server's API test files share.

use std::path::Path;

use portolan::config::{Config, RuntimeSettings};

/// A configuration for a test server: data and plugins folders under `dir`,
/// the given database, small runtime limits, tokens required for reads.
pub fn config(dir: &Path, database_url: String) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        plugins_dir: dir.join("plugins"),
        database_url,
        anonymous_read: false,
        runtime: RuntimeSettings {
            default_timeout_ms: 5_000,
            default_memory_mb: 64,
            fuel: false,
            max_concurrent_calls: 4,
        },
        secrets: Default::default(),
    }
}
