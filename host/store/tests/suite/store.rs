//! The store test suite.
//!
//! Every function in `suite` is written once and run against both backends:
//! `both_backends!` generates `sqlite::<name>` and `postgres::<name>` tests,
//! each on a fresh database. PostgreSQL comes from
//! `PORTOLAN_TEST_POSTGRES_URL` (default: the local server) and its tests
//! fail, never skip, when it is missing. Tests that only make sense for one
//! backend (file creation, connection failures) follow the suite.
//!
//! Some checks look at the raw tables through `Raw`, a second sqlx pool on
//! the same database, to see what the store actually wrote.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use portolan_store::store::SQLITE_PAGE_SIZE;
use portolan_store::testing::TestDatabase;
use portolan_store::{Backend, Role, Store, StoreError, TokenInfo};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

portolan_store::both_backends!(
    connect_reports_backend_and_pings,
    close_stops_the_store,
    migrations_are_idempotent,
    created_token_verifies,
    every_role_round_trips,
    tokens_are_distinct,
    unknown_and_malformed_secrets_do_not_verify,
    revoked_token_does_not_verify_but_row_stays,
    list_is_active_tokens_oldest_first,
    secret_is_not_stored,
    last_used_is_written_at_most_once_a_minute,
    schema_rejects_unknown_roles,
);

/// What a suite test gets: a connected store and the URL it came from (for
/// second connections and raw checks).
struct Ctx {
    store: Store,
    url: String,
}

async fn run<F, Fut>(db: TestDatabase, test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let store = Store::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("connect to test database: {}", chain(&e)));
    test(Ctx {
        store: store.clone(),
        url: db.url.clone(),
    })
    .await;
    store.close().await;
    db.drop_db().await;
}

/// An error and its causes on one line, as an operator would see them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Direct access to the database behind a store, bypassing its API.
enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Raw {
    async fn open(backend: Backend, url: &str) -> Raw {
        match backend {
            Backend::Sqlite => Raw::Sqlite(SqlitePool::connect(url).await.unwrap()),
            Backend::Postgres => Raw::Postgres(PgPool::connect(url).await.unwrap()),
        }
    }

    /// Runs a query whose single column is text (or NULL), with text binds.
    async fn strings(&self, sql: &str, binds: &[&str]) -> Vec<Option<String>> {
        match self {
            Raw::Sqlite(pool) => {
                let mut q = sqlx::query_scalar(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_all(pool).await.unwrap()
            }
            Raw::Postgres(pool) => {
                let mut q = sqlx::query_scalar(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_all(pool).await.unwrap()
            }
        }
    }

    async fn count(&self, sql: &str, binds: &[&str]) -> i64 {
        match self {
            Raw::Sqlite(pool) => {
                let mut q = sqlx::query_scalar(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_one(pool).await.unwrap()
            }
            Raw::Postgres(pool) => {
                let mut q = sqlx::query_scalar(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_one(pool).await.unwrap()
            }
        }
    }

    async fn set_last_used(&self, id: &str, at: DateTime<Utc>) {
        let sql = "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2";
        let updated = match self {
            Raw::Sqlite(pool) => sqlx::query(sql)
                .bind(at)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(pool) => sqlx::query(sql)
                .bind(at)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        };
        assert_eq!(updated.unwrap(), 1);
    }

    async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match self {
            Raw::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
    }

    async fn close(self) {
        match self {
            Raw::Sqlite(pool) => pool.close().await,
            Raw::Postgres(pool) => pool.close().await,
        }
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn assert_recent(t: DateTime<Utc>, what: &str) {
    let age = Utc::now() - t;
    assert!(
        age >= chrono::Duration::zero() - chrono::Duration::seconds(1)
            && age < chrono::Duration::seconds(30),
        "{what} = {t} is not within the last 30 s"
    );
}

fn ids(tokens: &[TokenInfo]) -> Vec<&str> {
    tokens.iter().map(|t| t.id.as_str()).collect()
}

mod suite {
    use super::*;

    pub async fn connect_reports_backend_and_pings(ctx: Ctx) {
        let expected = if ctx.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        assert_eq!(ctx.store.backend(), expected);
        ctx.store.ping().await.expect("ping a fresh store");
    }

    pub async fn close_stops_the_store(ctx: Ctx) {
        let clone = ctx.store.clone();
        ctx.store.close().await;
        let err = clone.ping().await.expect_err("ping after close");
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    }

    pub async fn migrations_are_idempotent(ctx: Ctx) {
        let token = ctx.store.create_token(Role::Admin, "before").await.unwrap();

        // A second connection (a restart, or another replica) migrates again.
        let again = Store::connect(&ctx.url)
            .await
            .unwrap_or_else(|e| panic!("second connect: {}", chain(&e)));
        let seen = again.verify_token(&token.secret).await.unwrap();
        assert_eq!(seen.map(|t| t.id), Some(token.info.id));
        again.close().await;

        // Each embedded migration is recorded exactly once.
        let folder = match ctx.store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let dir = format!("{}/migrations/{folder}", env!("CARGO_MANIFEST_DIR"));
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
            .count() as i64;
        assert!(files >= 1, "no migrations in {dir}");
        let raw = Raw::open(ctx.store.backend(), &ctx.url).await;
        let applied = raw
            .count("SELECT COUNT(*) FROM _sqlx_migrations WHERE success", &[])
            .await;
        assert_eq!(applied, files);
        raw.close().await;
    }

    pub async fn created_token_verifies(ctx: Ctx) {
        let new = ctx
            .store
            .create_token(Role::Member, "CI for team-payments")
            .await
            .unwrap();
        assert!(new.secret.starts_with("ptl_"), "{}", new.secret);
        assert_eq!(new.secret.len(), 4 + 64);
        assert_eq!(new.info.id.len(), 16);
        assert!(new.info.id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(new.info.role, Role::Member);
        assert_eq!(new.info.description, "CI for team-payments");
        assert_eq!(new.info.last_used_at, None);
        assert_recent(new.info.created_at, "created_at");

        let seen = ctx
            .store
            .verify_token(&new.secret)
            .await
            .unwrap()
            .expect("a fresh token verifies");
        assert_eq!(seen.id, new.info.id);
        assert_eq!(seen.role, Role::Member);
        assert_eq!(seen.description, new.info.description);
        // What the store handed out equals what it reads back.
        assert_eq!(seen.created_at, new.info.created_at);
        let used = seen.last_used_at.expect("verification records the use");
        assert!(used >= seen.created_at);
    }

    pub async fn every_role_round_trips(ctx: Ctx) {
        for role in Role::ALL {
            let new = ctx.store.create_token(role, role.as_str()).await.unwrap();
            let seen = ctx.store.verify_token(&new.secret).await.unwrap().unwrap();
            assert_eq!(seen.role, role);
        }
        let listed: Vec<Role> = ctx
            .store
            .list_tokens()
            .await
            .unwrap()
            .iter()
            .map(|t| t.role)
            .collect();
        assert_eq!(listed, Role::ALL);
    }

    pub async fn tokens_are_distinct(ctx: Ctx) {
        let a = ctx.store.create_token(Role::Viewer, "a").await.unwrap();
        let b = ctx.store.create_token(Role::Viewer, "b").await.unwrap();
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.info.id, b.info.id);
        let seen_a = ctx.store.verify_token(&a.secret).await.unwrap().unwrap();
        let seen_b = ctx.store.verify_token(&b.secret).await.unwrap().unwrap();
        assert_eq!((seen_a.id, seen_b.id), (a.info.id, b.info.id));
    }

    pub async fn unknown_and_malformed_secrets_do_not_verify(ctx: Ctx) {
        let real = ctx.store.create_token(Role::Admin, "real").await.unwrap();
        let last = real.secret.chars().last().unwrap();
        let flipped = format!(
            "{}{}",
            &real.secret[..real.secret.len() - 1],
            if last == '0' { '1' } else { '0' }
        );
        for secret in [
            String::new(),
            "ptl_".to_owned(),
            format!("ptl_{}", "0".repeat(64)),
            flipped,
            real.secret.to_uppercase(),
            format!("{} ", real.secret),
            format!("Bearer {}", real.secret),
            real.secret[4..].to_owned(),
            // The stored hash is not a credential either.
            sha256_hex(&real.secret),
        ] {
            let seen = ctx.store.verify_token(&secret).await.unwrap();
            assert_eq!(seen, None, "{secret:?} verified");
        }
        // And the real one still does.
        assert!(ctx
            .store
            .verify_token(&real.secret)
            .await
            .unwrap()
            .is_some());
    }

    pub async fn revoked_token_does_not_verify_but_row_stays(ctx: Ctx) {
        let doomed = ctx.store.create_token(Role::Admin, "doomed").await.unwrap();
        let kept = ctx.store.create_token(Role::Admin, "kept").await.unwrap();
        assert!(ctx
            .store
            .verify_token(&doomed.secret)
            .await
            .unwrap()
            .is_some());

        assert!(ctx.store.revoke_token(&doomed.info.id).await.unwrap());
        assert_eq!(ctx.store.verify_token(&doomed.secret).await.unwrap(), None);
        assert!(ctx
            .store
            .verify_token(&kept.secret)
            .await
            .unwrap()
            .is_some());

        // Revoking again, or an id that never existed, changes nothing.
        assert!(!ctx.store.revoke_token(&doomed.info.id).await.unwrap());
        assert!(!ctx.store.revoke_token("0000000000000000").await.unwrap());
        assert!(!ctx.store.revoke_token("").await.unwrap());

        // The row stays for audit, marked revoked.
        let raw = Raw::open(ctx.store.backend(), &ctx.url).await;
        let revoked = raw
            .count(
                "SELECT COUNT(*) FROM api_tokens WHERE id = $1 AND revoked_at IS NOT NULL",
                &[&doomed.info.id],
            )
            .await;
        assert_eq!(revoked, 1);
        raw.close().await;
    }

    pub async fn list_is_active_tokens_oldest_first(ctx: Ctx) {
        assert_eq!(ctx.store.list_tokens().await.unwrap(), vec![]);
        let mut created = Vec::new();
        for name in ["first", "second", "third", "fourth"] {
            created.push(ctx.store.create_token(Role::Member, name).await.unwrap());
            // Distinct creation times, so the order is by age, not by id.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(ctx.store.revoke_token(&created[1].info.id).await.unwrap());

        let listed = ctx.store.list_tokens().await.unwrap();
        let expected: Vec<TokenInfo> = [0, 2, 3].map(|i| created[i].info.clone()).into();
        assert_eq!(ids(&listed), ids(&expected));
        // Listing shows the same data creation returned (minus the secret).
        assert_eq!(listed, expected);
    }

    pub async fn secret_is_not_stored(ctx: Ctx) {
        let new = ctx.store.create_token(Role::Admin, "root").await.unwrap();
        let body = &new.secret[4..];
        let raw = Raw::open(ctx.store.backend(), &ctx.url).await;

        let stored = raw
            .strings(
                "SELECT secret_sha256 FROM api_tokens WHERE id = $1",
                &[&new.info.id],
            )
            .await;
        assert_eq!(stored, vec![Some(sha256_hex(&new.secret))]);

        // No column of any row holds the secret or its random part.
        let rows = match ctx.store.backend() {
            // Every column, whatever the schema grows to, as one string.
            Backend::Postgres => raw.strings("SELECT t::text FROM api_tokens t", &[]).await,
            Backend::Sqlite => {
                let columns = raw
                    .strings("SELECT name FROM pragma_table_info('api_tokens')", &[])
                    .await;
                let concat = columns
                    .iter()
                    .map(|c| format!("COALESCE(CAST({} AS TEXT), '')", c.as_deref().unwrap()))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                raw.strings(&format!("SELECT {concat} FROM api_tokens"), &[])
                    .await
            }
        };
        assert_eq!(rows.len(), 1);
        let row = rows[0].as_deref().unwrap();
        assert!(row.contains(&new.info.id), "{row}");
        assert!(!row.contains(body), "secret found in row {row}");
        raw.close().await;

        // For SQLite, not even in the file or its write-ahead log.
        if ctx.store.backend() == Backend::Sqlite {
            let path = ctx.url.trim_start_matches("sqlite://");
            for file in [path.to_owned(), format!("{path}-wal")] {
                let bytes = std::fs::read(&file).unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains(body), "secret found in {file}");
            }
        }
    }

    pub async fn last_used_is_written_at_most_once_a_minute(ctx: Ctx) {
        let new = ctx
            .store
            .create_token(Role::Viewer, "poller")
            .await
            .unwrap();
        let first = ctx.store.verify_token(&new.secret).await.unwrap().unwrap();
        let first_used = first.last_used_at.expect("first use recorded");

        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = ctx.store.verify_token(&new.secret).await.unwrap().unwrap();
        assert_eq!(
            second.last_used_at,
            Some(first_used),
            "rewritten within a minute"
        );

        // Pretend the last use was two minutes ago: the next use is recorded.
        let raw = Raw::open(ctx.store.backend(), &ctx.url).await;
        let long_ago = first_used - chrono::Duration::minutes(2);
        raw.set_last_used(&new.info.id, long_ago).await;
        let third = ctx.store.verify_token(&new.secret).await.unwrap().unwrap();
        let third_used = third.last_used_at.unwrap();
        assert!(third_used > first_used, "{third_used} <= {first_used}");
        assert_recent(third_used, "last_used_at");
        // ... and it is what the database now holds, not just what we returned.
        let listed = ctx.store.list_tokens().await.unwrap();
        assert_eq!(listed[0].last_used_at, Some(third_used));
        raw.close().await;
    }

    pub async fn schema_rejects_unknown_roles(ctx: Ctx) {
        let raw = Raw::open(ctx.store.backend(), &ctx.url).await;
        let now = "2024-01-01T00:00:00+00:00";
        let insert = format!(
            "INSERT INTO api_tokens (id, secret_sha256, role, description, created_at) \
             VALUES ('00000000000000aa', 'h1', 'owner', 'x', '{now}')"
        );
        assert!(raw.execute(&insert).await.is_err(), "role 'owner' accepted");
        let valid = insert.replace("'owner'", "'viewer'");
        assert_eq!(raw.execute(&valid).await.unwrap(), 1);
        raw.close().await;
        assert_eq!(ctx.store.list_tokens().await.unwrap().len(), 1);
    }
}

// ---- one backend only ------------------------------------------------------

#[tokio::test]
async fn sqlite_connect_creates_file_and_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not/yet/here/portolan.db");
    let url = format!("sqlite://{}", path.display());
    assert!(!path.parent().unwrap().exists());

    let store = Store::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert!(path.is_file(), "{} not created", path.display());
    assert_eq!(store.backend(), Backend::Sqlite);
    store.close().await;

    // WAL is a property of the file, so a separate connection sees it.
    let raw = Raw::open(Backend::Sqlite, &url).await;
    let mode = raw.strings("PRAGMA journal_mode", &[]).await;
    assert_eq!(mode, vec![Some("wal".to_owned())]);
    let page = raw
        .strings("SELECT CAST(page_size AS TEXT) FROM pragma_page_size", &[])
        .await;
    assert_eq!(page, vec![Some(SQLITE_PAGE_SIZE.to_string())]);
    // The search index's merge settings (migration 0014) are the file's too.
    let fts = raw
        .strings(
            "SELECT k || '=' || v FROM entities_fts_config \
             WHERE k IN ('automerge', 'hashsize') ORDER BY k",
            &[],
        )
        .await;
    assert_eq!(
        fts,
        vec![
            Some("automerge=16".to_owned()),
            Some("hashsize=67108864".to_owned())
        ]
    );
    raw.close().await;
}

#[tokio::test]
async fn sqlite_database_of_another_page_size_keeps_it() {
    // A file created before the page size changed (SQLite's 4,096).
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let raw = Raw::open(Backend::Sqlite, &url).await;
    raw.strings("PRAGMA page_size = 4096", &[]).await;
    raw.strings("CREATE TABLE before (x)", &[]).await;
    raw.close().await;

    let store = Store::connect(&url).await.unwrap();
    let new = store.create_token(Role::Admin, "old file").await.unwrap();
    assert!(store.verify_token(&new.secret).await.unwrap().is_some());
    store.close().await;
    let raw = Raw::open(Backend::Sqlite, &url).await;
    let page = raw
        .strings("SELECT CAST(page_size AS TEXT) FROM pragma_page_size", &[])
        .await;
    assert_eq!(page, vec![Some("4096".to_owned())]);
    raw.close().await;
}

#[tokio::test]
async fn sqlite_in_memory_database_works() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let new = store.create_token(Role::Admin, "mem").await.unwrap();
    assert!(store.verify_token(&new.secret).await.unwrap().is_some());
    assert_eq!(store.list_tokens().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn bad_url_scheme_is_invalid_url_with_a_helpful_message() {
    for url in [
        "mysql://root:hunter2@db/portolan",
        "/var/lib/portolan/portolan.db",
        "postgres:portolan",
    ] {
        let err = Store::connect(url).await.expect_err(url);
        let msg = err.to_string();
        assert!(matches!(err, StoreError::InvalidUrl(_)), "{url}: {err:?}");
        assert!(
            msg.contains("sqlite:") && msg.contains("postgres://"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }
    let err = Store::connect("mysql://db/x").await.unwrap_err();
    assert!(err.to_string().contains("\"mysql:\""), "{err}");
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_quickly_without_the_password() {
    let started = Instant::now();
    let err = Store::connect("postgres://portolan:hunter2@127.0.0.1:1/portolan")
        .await
        .expect_err("nothing listens on port 1");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let StoreError::Unavailable {
        backend, target, ..
    } = &err
    else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(*backend, Backend::Postgres);
    assert_eq!(target, "127.0.0.1:1/portolan");
    let msg = err.to_string();
    assert!(
        msg.contains("PostgreSQL") && msg.contains("127.0.0.1:1"),
        "{msg}"
    );
    let full = format!("{} / {err:?}", chain(&err));
    assert!(full.to_lowercase().contains("refused"), "{full}");
    assert!(!full.contains("hunter2"), "{full}");
}

#[tokio::test]
async fn silent_postgres_times_out_as_unavailable() {
    // Accepts TCP connections and never says a word, like a wedged server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });

    let started = Instant::now();
    let err = Store::connect(&format!("postgres://portolan@127.0.0.1:{port}/portolan"))
        .await
        .expect_err("the server never answers");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                backend: Backend::Postgres,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(chain(&err).contains("no answer within"), "{}", chain(&err));
}
