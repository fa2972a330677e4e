//! The one typed configuration of the portal, parsed and validated at the
//! edge and passed down by value.
//!
//! Layers, each overriding the one before: built-in defaults, the config file
//! (`--config`, else `portolan.toml` in the working directory if present),
//! `PORTOLAN_*` environment variables, command-line flags. Library crates
//! never read the environment; this module is where it is read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Prefix of environment variables that hold secrets for plugins:
/// `PORTOLAN_SECRET_GITHUB_TOKEN` is the secret `GITHUB_TOKEN`.
pub const SECRET_ENV_PREFIX: &str = "PORTOLAN_SECRET_";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Directory for the SQLite database and the compiled-code cache.
    pub data_dir: PathBuf,
    /// The folder watched for `NAME.wasm` plugins and their sidecars.
    pub plugins_dir: PathBuf,
    /// `sqlite:...` or `postgres://...`; defaults to a SQLite file in `data_dir`.
    pub database_url: String,
    /// Whether GET requests need no token (mutations always need one).
    pub anonymous_read: bool,
    /// Runtime settings.
    pub runtime: RuntimeSettings,
    /// Secrets for plugins, by name, from `PORTOLAN_SECRET_*`.
    pub secrets: HashMap<String, String>,
    /// Scorecard settings.
    pub scorecards: ScorecardSettings,
    /// Action run settings.
    pub actions: ActionSettings,
}

/// `[actions]` settings.
#[derive(Debug, Clone, Copy)]
pub struct ActionSettings {
    /// Action runs one replica executes at the same time.
    pub workers: usize,
}

impl Default for ActionSettings {
    fn default() -> ActionSettings {
        ActionSettings { workers: 4 }
    }
}

/// `[scorecards]` settings.
#[derive(Debug, Clone)]
pub struct ScorecardSettings {
    /// A folder of scorecard definitions (YAML or JSON), applied on start
    /// and whenever they change; `None` for none.
    pub dir: Option<PathBuf>,
    /// How often every scorecard is evaluated in full, besides the
    /// evaluations of changed entities.
    pub every: std::time::Duration,
    /// Whether badges are readable without a token (for READMEs).
    pub public_badges: bool,
}

impl Default for ScorecardSettings {
    fn default() -> ScorecardSettings {
        ScorecardSettings {
            dir: None,
            every: std::time::Duration::from_secs(6 * 3600),
            public_badges: false,
        }
    }
}

/// `[runtime]` settings.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeSettings {
    /// Default wall-clock deadline of a plugin call, in milliseconds.
    pub default_timeout_ms: u64,
    /// Default memory cap of a plugin call, in MiB.
    pub default_memory_mb: u64,
    /// Whether to meter fuel (instruction budgets); slows every call a little.
    pub fuel: bool,
    /// Most plugin calls running at once.
    pub max_concurrent_calls: u32,
}

/// The file's shape; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub plugins_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub anonymous_read: Option<bool>,
    #[serde(default)]
    pub runtime: FileRuntime,
    #[serde(default)]
    pub scorecards: FileScorecards,
    #[serde(default)]
    pub actions: FileActions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileActions {
    pub workers: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileScorecards {
    pub dir: Option<PathBuf>,
    /// A duration such as `6h` or `30m`.
    pub every: Option<String>,
    pub public_badges: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRuntime {
    pub default_timeout_ms: Option<u64>,
    pub default_memory_mb: Option<u64>,
    pub fuel: Option<bool>,
    pub max_concurrent_calls: Option<u32>,
}

/// Settings given on the command line (or through their `PORTOLAN_*`
/// variables, which clap reads for us); `None` means "not given".
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Config file (TOML); default `./portolan.toml` if it exists.
    #[arg(long, env = "PORTOLAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database and caches [default: ./.portolan].
    #[arg(long, env = "PORTOLAN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite:PATH or postgres://... [default: SQLite in the data dir].
    #[arg(long, env = "PORTOLAN_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// Flags only `serve` takes.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeOverrides {
    /// Address to listen on [default: 127.0.0.1:7700].
    #[arg(long, env = "PORTOLAN_LISTEN")]
    pub listen: Option<String>,
    /// Plugins folder [default: DATA_DIR/plugins].
    #[arg(long, env = "PORTOLAN_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Let GET requests through without a token.
    #[arg(long, env = "PORTOLAN_ANONYMOUS_READ")]
    pub anonymous_read: Option<bool>,
    /// Folder of scorecard definitions [default: DATA_DIR/scorecards].
    #[arg(long, env = "PORTOLAN_SCORECARDS_DIR")]
    pub scorecards_dir: Option<PathBuf>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

impl Config {
    /// Builds the configuration from all layers; `env` is the process
    /// environment (passed in so tests can give their own). Every problem
    /// is reported in one message, one per line.
    pub fn load(
        common: &Overrides,
        serve: &ServeOverrides,
        env: &HashMap<String, String>,
    ) -> Result<Config, String> {
        let mut problems = Vec::new();

        let file = match &common.config {
            Some(path) => read_file(path, &mut problems),
            None if Path::new("portolan.toml").exists() => {
                read_file(Path::new("portolan.toml"), &mut problems)
            }
            None => FileConfig::default(),
        };

        let data_dir = common
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(".portolan"));
        if data_dir.as_os_str().is_empty() {
            problems.push("data dir: must not be empty".to_owned());
        }
        let plugins_dir = serve
            .plugins_dir
            .clone()
            .or(file.plugins_dir)
            .unwrap_or_else(|| data_dir.join("plugins"));

        let listen_raw = serve
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = match listen_raw.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                problems.push(format!(
                    "listen = {listen_raw:?}: expected IP:PORT such as 127.0.0.1:7700"
                ));
                DEFAULT_LISTEN.parse().expect("the default address parses")
            }
        };

        let database_url = common
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("portolan.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            problems.push(format!(
                "database url: must start with sqlite:, postgres:// or postgresql:// (got {:?})",
                database_url.split(':').next().unwrap_or("")
            ));
        }

        let rt = file.runtime;
        let runtime = RuntimeSettings {
            default_timeout_ms: rt.default_timeout_ms.unwrap_or(30_000),
            default_memory_mb: rt.default_memory_mb.unwrap_or(256),
            fuel: rt.fuel.unwrap_or(false),
            max_concurrent_calls: rt.max_concurrent_calls.unwrap_or(64),
        };
        if runtime.default_timeout_ms == 0 || runtime.default_timeout_ms > 3_600_000 {
            problems.push("runtime.default_timeout_ms: must be between 1 and 3600000".to_owned());
        }
        if runtime.default_memory_mb == 0 || runtime.default_memory_mb > 2048 {
            problems.push("runtime.default_memory_mb: must be between 1 and 2048".to_owned());
        }
        if runtime.max_concurrent_calls == 0 || runtime.max_concurrent_calls > 1000 {
            problems.push("runtime.max_concurrent_calls: must be between 1 and 1000".to_owned());
        }

        let sc = file.scorecards;
        let every = match sc.every.as_deref() {
            None => ScorecardSettings::default().every,
            Some(text) => match portolan_runtime::schedule::parse_duration(text) {
                Ok(d) if d >= std::time::Duration::from_secs(60) => d,
                Ok(_) => {
                    problems.push(format!("scorecards.every = {text:?}: must be at least 1m"));
                    ScorecardSettings::default().every
                }
                Err(e) => {
                    problems.push(format!("scorecards.every = {text:?}: {e}"));
                    ScorecardSettings::default().every
                }
            },
        };
        let scorecards = ScorecardSettings {
            dir: Some(
                serve
                    .scorecards_dir
                    .clone()
                    .or(sc.dir)
                    .unwrap_or_else(|| data_dir.join("scorecards")),
            ),
            every,
            public_badges: sc.public_badges.unwrap_or(false),
        };

        let workers = file
            .actions
            .workers
            .unwrap_or(ActionSettings::default().workers);
        if workers == 0 || workers > 256 {
            problems.push(format!(
                "actions.workers = {workers}: must be between 1 and 256"
            ));
        }
        let actions = ActionSettings { workers };

        let secrets = env
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(SECRET_ENV_PREFIX)
                    .filter(|name| !name.is_empty())
                    .map(|name| (name.to_owned(), v.clone()))
            })
            .collect();

        if !problems.is_empty() {
            return Err(format!(
                "invalid configuration:\n  - {}",
                problems.join("\n  - ")
            ));
        }
        Ok(Config {
            listen,
            data_dir,
            plugins_dir,
            database_url,
            anonymous_read: serve
                .anonymous_read
                .or(file.anonymous_read)
                .unwrap_or(false),
            runtime,
            secrets,
            scorecards,
            actions,
        })
    }
}

fn read_file(path: &Path, problems: &mut Vec<String>) -> FileConfig {
    match std::fs::read_to_string(path) {
        Ok(text) => match toml::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!("{}: {}", path.display(), e.to_string().trim()));
                FileConfig::default()
            }
        },
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            FileConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_put_everything_in_the_data_dir() {
        let c = Config::load(
            &Overrides::default(),
            &ServeOverrides::default(),
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.plugins_dir, PathBuf::from(".portolan/plugins"));
        assert_eq!(c.database_url, "sqlite://.portolan/portolan.db");
        assert!(!c.anonymous_read);
    }

    #[test]
    fn every_bad_setting_is_listed_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(
            &file,
            "[runtime]\ndefault_memory_mb = 0\nmax_concurrent_calls = 0\n",
        )
        .unwrap();
        let err = Config::load(
            &Overrides {
                config: Some(file),
                database_url: Some("mysql://x".into()),
                ..Default::default()
            },
            &ServeOverrides {
                listen: Some("nowhere".into()),
                ..Default::default()
            },
            &HashMap::new(),
        )
        .unwrap_err();
        for needle in [
            "listen",
            "database url",
            "default_memory_mb",
            "max_concurrent_calls",
        ] {
            assert!(err.contains(needle), "{needle} missing from: {err}");
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let err = Config::load(
            &Overrides {
                config: Some(file),
                ..Default::default()
            },
            &ServeOverrides::default(),
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(err.contains("unknown field `lisen`"), "{err}");
    }

    #[test]
    fn flags_override_the_file_and_secrets_come_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\nanonymous_read = true\n").unwrap();
        let env = HashMap::from([
            ("PORTOLAN_SECRET_GH".to_owned(), "s3cret".to_owned()),
            ("HOME".to_owned(), "/root".to_owned()),
        ]);
        let c = Config::load(
            &Overrides {
                config: Some(file),
                ..Default::default()
            },
            &ServeOverrides {
                listen: Some("127.0.0.1:2".into()),
                ..Default::default()
            },
            &env,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 2);
        assert!(c.anonymous_read);
        assert_eq!(c.secrets.len(), 1);
        assert_eq!(c.secrets["GH"], "s3cret");
    }
}
