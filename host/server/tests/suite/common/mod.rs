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
        scorecards: Default::default(),
        actions: Default::default(),
    }
}

/// Runs each named scenario (`scenarios::NAME(state, ...)` through the test
/// file's `run`) once on a fresh SQLite file and once on a fresh PostgreSQL
/// database, as `sqlite::NAME` and `postgres::NAME`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    let db = portolan_store::testing::TestDatabase::sqlite(dir.path()).await;
                    super::run(db, dir, super::scenarios::$test).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    let db = portolan_store::testing::TestDatabase::postgres().await;
                    super::run(db, dir, super::scenarios::$test).await;
                }
            )*
        }
    };
}
