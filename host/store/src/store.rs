//! [`Store`]: choosing the backend from the URL, connecting, migrating.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Connection;

use crate::StoreError;

/// How long [`Store::connect`] waits for PostgreSQL to answer before giving
/// up. A firewall that drops packets would otherwise hang start-up with no
/// message at all.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a query waits for a free pooled connection. Past this the
/// database is overloaded or gone, and failing the request (the server turns
/// it into a 503) beats piling up more waiting requests.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long SQLite waits for another connection's write lock before failing
/// with "database is locked". WAL lets readers run alongside the one writer,
/// but writers still queue.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most page cache one SQLite connection keeps, in KiB (see
/// `connect_sqlite`).
pub const SQLITE_CACHE_KIB: u32 = 64 * 1024;

/// The page size of a new SQLite database, in bytes (SQLite's default is
/// 4,096). A batch write inserts into a dozen B-trees, some of them (the
/// relations' reverse index, before migration 0011) at random places:
/// larger pages mean fewer page splits and a shallower tree, which made
/// the 100,000-entity ingest benchmark 11-13% faster. A database file
/// keeps the page size it was created with; older ones go on with theirs.
pub const SQLITE_PAGE_SIZE: u32 = 16 * 1024;

/// How often the background task copies SQLite's write-ahead log back into
/// the database file (see [`checkpoint_in_background`]).
pub const SQLITE_CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Pages the write-ahead log may grow to before a committing writer
/// checkpoints it itself: SQLite's own behaviour, kept only as a backstop
/// for when the background task falls behind (SQLite's default is 1,000
/// pages, which makes nearly every large write pay for a checkpoint).
pub const SQLITE_WAL_BACKSTOP_PAGES: u32 = 64 * 1024;

pub(crate) static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
pub(crate) static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database a [`Store`] runs on. Serialised in lowercase
/// (`"sqlite"`, `"postgres"`), e.g. in the readiness report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite: the embedded default, one file in the data directory.
    Sqlite,
    /// PostgreSQL: for several replicas sharing one database.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// The connection pool behind a [`Store`]. An enum rather than `sqlx::Any`
/// so that a query can use backend-specific SQL where it matters.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs one expression against whichever pool backs a store, binding it to
/// `$pool`. For SQL that both backends accept (sqlx's SQLite driver takes
/// PostgreSQL's `$1` placeholders); write a `match` where the dialects differ.
macro_rules! on_pool {
    ($store_pool:expr, $pool:ident => $body:expr) => {
        match $store_pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// [`on_pool!`] for a write (one statement or a whole transaction): on
/// SQLite it first waits for this process's turn to write (see
/// [`Store::writer_turn`]) and holds it until `$body` is done.
macro_rules! on_write_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => {
                let _turn = $store.writer_turn().await;
                $body
            }
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_write_pool;

/// Runs `$body` in a transaction that holds the write lock from its start,
/// binding `$backend` to the module of that backend's halves (`sqlite` or
/// `postgres` in the calling module) and `$conn` to the connection.
///
/// On SQLite: `BEGIN IMMEDIATE` after this process's turn in
/// [`Store::writer_turn`], because a deferred transaction that reads and
/// then writes fails outright ("database is locked") if another writer got
/// in between. On PostgreSQL: a plain transaction; the callers' reads lock
/// their rows (`FOR UPDATE`) or a unique index refuses the loser.
macro_rules! in_write_transaction {
    ($store:expr, |$backend:ident, $conn:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite(pool) => {
                let mut turn = $store.writer_turn().await;
                // The connection the last write committed on, if it did
                // (see `Store::writers`). Taken out of the slot: an error
                // (`?`) or a cancelled call drops it, after its transaction
                // rolled back, back into the pool, and the next write
                // starts from a fresh one.
                let mut writer = match turn.take() {
                    Some(writer) => writer,
                    None => pool.acquire().await?,
                };
                let out = {
                    let mut tx =
                        sqlx::Connection::begin_with(&mut *writer, "BEGIN IMMEDIATE").await?;
                    let $conn: &mut sqlx::SqliteConnection = &mut tx;
                    #[allow(unused_imports)]
                    use self::sqlite as $backend;
                    let out = $body;
                    tx.commit().await?;
                    out
                };
                *turn = Some(writer);
                out
            }
            $crate::store::Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let $conn: &mut sqlx::PgConnection = &mut tx;
                #[allow(unused_imports)]
                use self::postgres as $backend;
                let out = $body;
                tx.commit().await?;
                out
            }
        }
    };
}
pub(crate) use in_write_transaction;

/// Where SQLite's writer connection waits between writes (see
/// `Store::writers`); always empty on PostgreSQL.
pub(crate) type WriterSlot = Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>;

/// The handle to Portolan's database. Clone it freely: clones share one
/// connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// SQLite's writers of this process, queued in arrival order (see
    /// [`Store::writer_turn`]). Shared by clones.
    ///
    /// The slot keeps the connection of the last committed
    /// [`in_write_transaction!`] checked out of the pool for the next one.
    /// SQLite drops a connection's whole page cache when it begins a
    /// transaction and finds that another connection has written since its
    /// last; with writes taking whichever pooled connection came next, a
    /// batch started cold, read back from the file the pages the batch
    /// before had just written, and allocated its cache anew. On one
    /// connection the pages the last batch touched are still in its cache.
    writers: Arc<tokio::sync::Mutex<WriterSlot>>,
}

impl Store {
    /// Connects to the database the URL names and brings its schema up to
    /// date.
    ///
    /// - `sqlite:PATH` (also `sqlite://PATH`, `sqlite:///abs/path`): creates
    ///   the file and its parent directories if missing, and opens it with a
    ///   WAL journal, foreign keys on and a busy timeout.
    ///   `sqlite::memory:` gives a private in-memory database that lives as
    ///   long as the store.
    /// - `postgres://` or `postgresql://`: the database must exist. Gives up
    ///   after [`CONNECT_TIMEOUT`].
    ///
    /// Migrations run under sqlx's migration lock, so replicas starting
    /// together apply each migration once.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let store = match backend_for_url(url)? {
            Backend::Sqlite => {
                let pool = connect_sqlite(url).await?;
                if !is_sqlite_memory_url(url) {
                    checkpoint_in_background(pool.clone());
                }
                Store {
                    pool: Pool::Sqlite(pool),
                    writers: Arc::default(),
                }
            }
            Backend::Postgres => Store {
                pool: Pool::Postgres(connect_postgres(url).await?),
                writers: Arc::default(),
            },
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Waits for this process's turn to write to SQLite; the guard holds
    /// it until dropped, after the commit. Every write of the store takes
    /// it ([`in_write_transaction!`], [`on_write_pool!`]; recording a
    /// token's use gives up after a moment instead). SQLite admits
    /// one writer at a time, and a writer that finds the file locked polls
    /// it through its busy handler, sleeping up to 100 ms between tries,
    /// and fails after [`SQLITE_BUSY_TIMEOUT`]: concurrent batches wasted
    /// the time between one commit and the next, and once those ahead took
    /// longer than the timeout, the last failed with "database is locked"
    /// (a 500). Queued here instead, writers go in arrival order and each
    /// starts as soon as the one before has committed. Another process on
    /// the same file (a second `Store::connect`) still meets the busy
    /// timeout.
    pub(crate) async fn writer_turn(&self) -> tokio::sync::MutexGuard<'_, WriterSlot> {
        self.writers.lock().await
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Checks that the database answers a trivial query; for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(&self.pool, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes every connection and waits for queries in flight to finish.
    /// Later calls on any clone of this store fail with
    /// [`StoreError::Database`].
    pub async fn close(&self) {
        // The pool waits for every connection to come back, the writer's
        // too.
        drop(self.writers.lock().await.take());
        on_pool!(&self.pool, pool => pool.close().await);
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let result = match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        result.map_err(|source| StoreError::Migration {
            backend: self.backend(),
            source,
        })
    }
}

/// Picks the backend from the URL's scheme. The error repeats at most the
/// scheme, never the whole URL, which may hold a password.
fn backend_for_url(url: &str) -> Result<Backend, StoreError> {
    const EXPECTED: &str =
        "use sqlite:PATH (e.g. sqlite://data/portolan.db) or postgres://USER@HOST:PORT/DATABASE";
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme)
        .filter(|scheme| is_uri_scheme(scheme));
    match scheme.map(str::to_ascii_lowercase).as_deref() {
        Some("sqlite") => Ok(Backend::Sqlite),
        Some("postgres" | "postgresql")
            if url
                .split_once(':')
                .is_some_and(|(_, rest)| rest.starts_with("//")) =>
        {
            Ok(Backend::Postgres)
        }
        Some(scheme @ ("postgres" | "postgresql")) => Err(StoreError::InvalidUrl(format!(
            "a {scheme}: URL needs \"//\" and a host after the scheme; {EXPECTED}"
        ))),
        Some(scheme) => Err(StoreError::InvalidUrl(format!(
            "unsupported scheme \"{scheme}:\"; {EXPECTED}"
        ))),
        None => Err(StoreError::InvalidUrl(format!(
            "the URL has no scheme; {EXPECTED}"
        ))),
    }
}

/// RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`. Anything else
/// before the first colon (a path, `user:password@host`) is not a scheme.
fn is_uri_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// True for the URL forms sqlx opens as an in-memory database.
fn is_sqlite_memory_url(url: &str) -> bool {
    let rest = url.split_once(':').map_or("", |(_, rest)| rest);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    rest.starts_with(":memory:") || rest.contains("mode=memory")
}

async fn connect_sqlite(url: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl(format!("cannot parse the SQLite URL: {e}")))?
        .create_if_missing(true)
        // WAL lets readers work while one connection writes, and with WAL,
        // synchronous=NORMAL cannot corrupt the file; a power cut may lose
        // only the last commits, a fair price for not syncing on each one.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // SQLite's default page cache is 2 MiB per connection. A batch
        // write touches pages all over the catalog's indexes; with a cache
        // smaller than them each insert re-reads pages it evicted a moment
        // ago and spills dirty ones to the WAL before the commit. The
        // cache only grows as pages are used, so a small catalog stays
        // small.
        .page_size(SQLITE_PAGE_SIZE)
        .pragma("cache_size", format!("-{}", SQLITE_CACHE_KIB))
        // Sorts and temporary indexes of big statements in memory.
        .pragma("temp_store", "memory")
        // The log is copied back into the database by a background task,
        // not by the writer whose commit crosses the threshold.
        .pragma("wal_autocheckpoint", SQLITE_WAL_BACKSTOP_PAGES.to_string());
    let path = options.get_filename().to_owned();
    let unavailable = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Unavailable {
        backend: Backend::Sqlite,
        target: path.display().to_string(),
        source,
    };

    let mut pool_options = SqlitePoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
    if is_sqlite_memory_url(url) {
        // An in-memory database vanishes with its last connection; never
        // retire connections so it lives as long as the pool.
        pool_options = pool_options
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    } else if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(dir).await.map_err(|e| unavailable(e.into()))?;
    }
    pool_options
        .connect_with(options)
        .await
        .map_err(|e| unavailable(e.into()))
}

/// Keeps SQLite's write-ahead log short from a task of its own, so that a
/// write's commit only appends to the log. By default the commit that takes
/// the log past 1,000 pages also copies the whole log into the database
/// file and syncs it, which cost a 10,000-entity batch about a third of its
/// time. A passive checkpoint never blocks readers or the writer; it copies
/// what it can and tries again on the next tick. The task ends when the pool
/// is closed.
fn checkpoint_in_background(pool: SqlitePool) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(SQLITE_CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            // (busy, frames in the log, frames copied); nothing to do when
            // they are equal. A failure (the pool closing under us, a full
            // disk) is retried on the next tick; writers still have the
            // backstop.
            let done: Result<(i64, i64, i64), sqlx::Error> =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&pool)
                    .await;
            if let Err(sqlx::Error::PoolClosed) = done {
                return;
            }
        }
    });
}

async fn create_dir(dir: &Path) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot create directory {}: {e}", dir.display()),
        )
    })
}

async fn connect_postgres(url: &str) -> Result<PgPool, StoreError> {
    let mut options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl(format!("cannot parse the PostgreSQL URL: {e}")))?;
    if options.get_application_name().is_none() {
        // Lets a DBA tell our sessions apart in pg_stat_activity.
        options = options.application_name("portolan");
    }
    let target = match options.get_socket() {
        Some(socket) => format!("{}/{}", socket.display(), pg_database(&options)),
        None => format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            pg_database(&options)
        ),
    };
    let unavailable = |source| StoreError::Unavailable {
        backend: Backend::Postgres,
        target: target.clone(),
        source,
    };

    // Probe with one plain connection first: the pool retries a refused
    // connection until its timeout and then reports only "pool timed out",
    // while this gives the operator the real reason (refused, unknown host,
    // authentication failed, no such database) straight away.
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| {
            unavailable(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()).into())
        })?
        .map_err(|e| unavailable(e.into()))?;
    // Closing is best effort: the probe has done its job either way.
    let _ = probe.close().await;

    Ok(PgPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options))
}

/// The database name as PostgreSQL resolves it: the user name by default.
fn pg_database(options: &PgConnectOptions) -> &str {
    options
        .get_database()
        .unwrap_or_else(|| options.get_username())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_picks_backend() {
        for url in [
            "sqlite:portolan.db",
            "sqlite:///tmp/x.db",
            "sqlite::memory:",
        ] {
            assert_eq!(backend_for_url(url).unwrap(), Backend::Sqlite, "{url}");
        }
        for url in ["postgres://u@h/db", "postgresql://h", "POSTGRES://h/db"] {
            assert_eq!(backend_for_url(url).unwrap(), Backend::Postgres, "{url}");
        }
    }

    #[test]
    fn bad_scheme_message_names_scheme_and_alternatives_but_not_url() {
        let err = backend_for_url("mysql://root:hunter2@db/portolan").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::InvalidUrl(_)));
        assert!(msg.contains("\"mysql:\""), "{msg}");
        assert!(
            msg.contains("sqlite:") && msg.contains("postgres://"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn missing_scheme_is_reported() {
        for url in ["/var/lib/portolan.db", "portolan.db", "1:2", ""] {
            let msg = backend_for_url(url).unwrap_err().to_string();
            assert!(msg.contains("no scheme"), "{url}: {msg}");
        }
    }

    #[test]
    fn rejected_url_is_never_echoed() {
        // Looks like scheme "admin"; only that part may appear.
        let msg = backend_for_url("admin:hunter2@db:5432")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("\"admin:\""), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn postgres_without_authority_is_invalid() {
        let msg = backend_for_url("postgres:db").unwrap_err().to_string();
        assert!(msg.contains("needs \"//\""), "{msg}");
    }

    #[test]
    fn memory_urls_are_recognised() {
        assert!(is_sqlite_memory_url("sqlite::memory:"));
        assert!(is_sqlite_memory_url("sqlite://:memory:"));
        assert!(is_sqlite_memory_url("sqlite://x?mode=memory"));
        assert!(!is_sqlite_memory_url("sqlite://data/portolan.db"));
    }
}
