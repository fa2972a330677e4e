//! Test support: throwaway databases for this crate's tests and for any
//! crate that tests against a real [`Store`](crate::Store).
//!
//! Always compiled (it is small, and a `cfg(test)` module would be invisible
//! to other crates' tests), but not meant for production code: it panics
//! instead of returning errors, and [`TestDatabase::postgres`] reads an
//! environment variable, which library code otherwise never does.
//!
//! PostgreSQL tests never skip themselves: if the server is missing they
//! fail and say how to point them at one.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;

use crate::store::CONNECT_TIMEOUT;

/// Names the PostgreSQL server the tests use. Its URL should name a database
/// the user may connect to and a user that may create databases.
pub const POSTGRES_URL_VAR: &str = "PORTOLAN_TEST_POSTGRES_URL";

/// The server used when [`POSTGRES_URL_VAR`] is unset: a local PostgreSQL
/// with trust authentication, as in the development container.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Distinguishes databases created by one test process; the process id and
/// a timestamp distinguish processes.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty database for one test. Pass [`url`](Self::url) to
/// [`Store::connect`](crate::Store::connect), and call
/// [`drop_db`](Self::drop_db) when done.
///
/// A test that panics before `drop_db` leaves its PostgreSQL database behind;
/// they are all named `portolan_t_*`, so they are easy to sweep up.
#[derive(Debug)]
pub struct TestDatabase {
    /// The database URL to connect to.
    pub url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Sqlite,
    Postgres {
        /// The server's URL (the maintenance database), used to drop ours.
        admin_url: String,
        name: String,
    },
}

impl TestDatabase {
    /// A URL for a SQLite file in `dir` that does not exist yet
    /// (`Store::connect` creates it). The caller owns `dir`, typically a
    /// `tempfile::TempDir`, and its removal cleans up.
    pub async fn sqlite(dir: &Path) -> TestDatabase {
        let path = dir.join(format!("{}.db", unique_name()));
        TestDatabase {
            url: format!("sqlite://{}", path.display()),
            kind: Kind::Sqlite,
        }
    }

    /// Creates a uniquely named database on the server named by
    /// [`POSTGRES_URL_VAR`] (default [`DEFAULT_POSTGRES_URL`]).
    ///
    /// # Panics
    ///
    /// If the server cannot be reached or refuses to create the database:
    /// a test that needs PostgreSQL must fail, not pass vacuously.
    pub async fn postgres() -> TestDatabase {
        let admin_url =
            std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let name = unique_name();
        let mut admin = admin_connection(&admin_url).await;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        TestDatabase {
            url: with_database(&admin_url, &name),
            kind: Kind::Postgres { admin_url, name },
        }
    }

    /// Brings this new database to the schema an older Portolan left: the
    /// store's migrations up to and including `version`, no further. An
    /// upgrade test then writes rows the way that version did and opens the
    /// database with [`Store::connect`](crate::Store::connect), which
    /// applies the rest.
    ///
    /// # Panics
    ///
    /// If the database cannot be opened or a migration fails.
    pub async fn migrate_up_to(&self, version: i64) {
        let all = match self.kind {
            Kind::Sqlite => &crate::store::SQLITE_MIGRATIONS,
            Kind::Postgres { .. } => &crate::store::POSTGRES_MIGRATIONS,
        };
        let old = sqlx::migrate::Migrator {
            migrations: std::borrow::Cow::Owned(
                all.iter()
                    .filter(|m| m.version <= version)
                    .cloned()
                    .collect(),
            ),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        let done = match self.kind {
            Kind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", self.url))
                    .await
                    .expect("open the SQLite test database");
                let done = old.run(&pool).await;
                pool.close().await;
                done
            }
            Kind::Postgres { .. } => {
                let pool = sqlx::PgPool::connect(&self.url)
                    .await
                    .expect("open the PostgreSQL test database");
                let done = old.run(&pool).await;
                pool.close().await;
                done
            }
        };
        done.unwrap_or_else(|e| panic!("migrating up to {version}: {e}"));
    }

    /// Drops the PostgreSQL database, even if connections are still open
    /// (`WITH (FORCE)`). Nothing to do for SQLite.
    pub async fn drop_db(self) {
        if let Kind::Postgres { admin_url, name } = self.kind {
            let mut admin = admin_connection(&admin_url).await;
            sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("cannot drop test database {name}: {e}"));
            let _ = admin.close().await;
        }
    }
}

/// `portolan_t_<pid>_<counter>_<nanos>`: unique across concurrent test
/// processes sharing one server, and a valid unquoted identifier.
fn unique_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "portolan_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

async fn admin_connection(admin_url: &str) -> PgConnection {
    let options = PgConnectOptions::from_str(admin_url)
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a PostgreSQL URL: {e}"));
    let server = format!("{}:{}", options.get_host(), options.get_port());
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "PostgreSQL for the store tests is unavailable at {server}: {e}. \
             Start it, or set {POSTGRES_URL_VAR} to a server where this user may create databases."
        ),
        Err(_) => panic!(
            "PostgreSQL for the store tests did not answer at {server} within {} s. \
             Start it, or set {POSTGRES_URL_VAR}.",
            CONNECT_TIMEOUT.as_secs()
        ),
    }
}

/// `url` with its database (the path) replaced by `name`, keeping user,
/// host, port and query parameters.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Generates, for each name, a `sqlite::NAME` and a `postgres::NAME` test
/// that run `suite::NAME` through the calling file's
/// `run(db: TestDatabase, test)` on a fresh database of that backend, so one
/// suite is written once and proven on both.
#[macro_export]
macro_rules! both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    let db = $crate::testing::TestDatabase::sqlite(dir.path()).await;
                    super::run(db, super::suite::$test).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = $crate::testing::TestDatabase::postgres().await;
                    super::run(db, super::suite::$test).await;
                }
            )*
        }
    };
}

/// Holds `store`'s turn to write (see the store's writers' queue) until the
/// guard is dropped: every write of the store waits meanwhile, as it would
/// behind a long batch. For tests of what must not wait for it.
pub async fn hold_writer_turn(store: &crate::Store) -> impl Sized + '_ {
    store.writer_turn().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t1"),
            "postgresql://u:p@h/t1?sslmode=disable"
        );
    }

    #[test]
    fn unique_names_differ_and_are_plain_identifiers() {
        let (a, b) = (unique_name(), unique_name());
        assert_ne!(a, b);
        assert!(a.starts_with("portolan_t_"));
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'));
    }
}
