//! The store's error type.

use crate::store::Backend;

/// Everything that can go wrong in the store.
///
/// Each message is this layer's own; the underlying cause is in
/// [`std::error::Error::source`], so print the whole chain (`{:#}` through
/// `anyhow`) to see it. No message or source contains a database password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is malformed or names a backend we do not support.
    /// The message says what to write instead; it never repeats the URL,
    /// which may hold a password.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),

    /// The database could not be opened or reached at connect time.
    #[error("cannot open the {backend} database at {target}")]
    Unavailable {
        /// Which backend the URL chose.
        backend: Backend,
        /// Where we tried to connect: `host:port/database` for PostgreSQL,
        /// the file path for SQLite. Never includes credentials.
        target: String,
        /// Why: refused, timed out, authentication failed, no permission, ...
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Applying the embedded schema migrations failed, for example because
    /// the database was migrated by a newer Portolan.
    #[error("cannot migrate the {backend} database schema")]
    Migration {
        /// Which backend the URL chose.
        backend: Backend,
        /// What sqlx reported.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A query failed after connecting (connection lost, pool closed or
    /// exhausted, constraint violated, ...).
    #[error("database query failed")]
    Database(#[from] sqlx::Error),

    /// An `If-Match` precondition does not hold: the entity's current
    /// etag is another one, or (`current: None`) there is no such entity.
    #[error("entity {entity} does not match the expected revision")]
    PreconditionFailed {
        /// The entity's key (`kind:namespace/name`, lower case).
        entity: String,
        /// Its current etag, if it exists.
        current: Option<String>,
    },

    /// A write would take over an entity that another origin owns (another
    /// catalog source, or the API while a source owns it). As in Backstage,
    /// an entity has one owner; delete it first to move it.
    #[error("entity {entity} belongs to {owner}")]
    OriginConflict {
        /// The entity's key.
        entity: String,
        /// Who owns it: `api` or `source:<plugin-id>`.
        owner: String,
    },

    /// The same entity appears twice in one batch.
    #[error("entity {0} appears more than once in the batch")]
    DuplicateEntity(String),

    /// A row holds a value this version does not understand (say, a role
    /// added by a newer version). Names the row so an operator can fix it.
    #[error("unexpected data in the database: {0}")]
    InvalidData(String),
}

impl StoreError {
    /// Whether the database is busy or out of reach for the moment rather
    /// than the request or the data being wrong: no pooled connection free
    /// within [`crate::store::ACQUIRE_TIMEOUT`], SQLite "busy" or "locked" past its
    /// busy timeout, or the database unreachable. Worth retrying later.
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } => true,
            StoreError::Database(sqlx::Error::PoolTimedOut) => true,
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), extended codes
            // included (their low byte).
            StoreError::Database(sqlx::Error::Database(db)) => db
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| matches!(code & 0xff, 5 | 6)),
            _ => false,
        }
    }
}
