//! Direct calls into SQLite for the catalog's bulk writes.
//!
//! sqlx runs every statement on its connection's worker thread and copies
//! each bound value twice on the way (into its owned argument list, then
//! into SQLite with `SQLITE_TRANSIENT`); a 10,000-entity batch binds about
//! 400,000 values. With SQLite's own interface, one prepared single-row
//! statement per table is stepped once per row, each value bound in place
//! (`SQLITE_STATIC`) for the length of that step. A single-row `INSERT ...
//! VALUES` also needs no statement journal, whatever its conflict clause.
//!
//! [`Direct`] holds the connection's handle, locked away from sqlx's worker
//! thread (`lock_handle`), inside a transaction sqlx began and will end;
//! nothing here begins, commits or rolls back. [`Statement::run`] binds,
//! steps and resets within the call, so no bound pointer outlives it.

use std::borrow::Cow;
use std::ffi::{c_int, CStr};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::{null_mut, NonNull};

use libsqlite3_sys as ffi;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::sqlite::LockedSqliteHandle;

use crate::StoreError;

/// A connection's handle, locked for direct use.
pub(crate) struct Direct<'c> {
    db: NonNull<ffi::sqlite3>,
    _guard: LockedSqliteHandle<'c>,
}

impl<'c> Direct<'c> {
    pub(crate) async fn lock(conn: &'c mut sqlx::SqliteConnection) -> Result<Self, StoreError> {
        let mut guard = conn.lock_handle().await?;
        Ok(Direct {
            db: guard.as_raw_handle(),
            _guard: guard,
        })
    }

    /// Compiles `sql` (one statement) for repeated use.
    pub(crate) fn prepare(&self, sql: &str) -> Result<Statement<'_>, StoreError> {
        let len = c_int::try_from(sql.len())
            .map_err(|_| StoreError::InvalidData("statement too long".into()))?;
        let mut raw = null_mut();
        // SAFETY: the handle is open and ours while the guard lives; the
        // SQL is read for `len` bytes only.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut raw,
                null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(self.db, rc));
        }
        let raw = NonNull::new(raw)
            .ok_or_else(|| StoreError::InvalidData(format!("no statement in {sql:?}")))?;
        Ok(Statement {
            raw,
            db: self.db,
            _direct: PhantomData,
        })
    }
}

/// The connection's last error, as sqlx would report it.
fn error(db: NonNull<ffi::sqlite3>, rc: c_int) -> StoreError {
    // SAFETY: the handle is open; SQLite returns a NUL-terminated message
    // it owns, copied before any further call.
    let (code, message) = unsafe {
        let code = ffi::sqlite3_extended_errcode(db.as_ptr());
        let message = ffi::sqlite3_errmsg(db.as_ptr());
        let message = if message.is_null() {
            format!("SQLite error {rc}")
        } else {
            CStr::from_ptr(message).to_string_lossy().into_owned()
        };
        (code, message)
    };
    StoreError::Database(sqlx::Error::Database(Box::new(DirectError {
        code,
        message,
    })))
}

/// A value to bind: text (NULL when absent) or an integer.
#[derive(Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(Option<&'a str>),
    Int(i64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(Some(s))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Arg::Text(s)
    }
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}

/// A prepared statement of a [`Direct`] handle; finalised on drop.
pub(crate) struct Statement<'d> {
    raw: NonNull<ffi::sqlite3_stmt>,
    db: NonNull<ffi::sqlite3>,
    /// Lives no longer than the locked handle it was prepared on.
    _direct: PhantomData<&'d ()>,
}

impl Statement<'_> {
    /// Binds `args` to the parameters in order, runs the statement to its
    /// end and returns the first column of its first row as an integer
    /// (say, `RETURNING rowid`), if it gave a row. The statement is reset
    /// and its bindings cleared before this returns, on success or not.
    pub(crate) fn run(&mut self, args: &[Arg<'_>]) -> Result<Option<i64>, StoreError> {
        let out = self.bind_and_step(args);
        // SAFETY: the statement is ours; after these calls it holds no
        // pointer into `args`.
        unsafe {
            ffi::sqlite3_reset(self.raw.as_ptr());
            ffi::sqlite3_clear_bindings(self.raw.as_ptr());
        }
        out
    }

    fn bind_and_step(&mut self, args: &[Arg<'_>]) -> Result<Option<i64>, StoreError> {
        let stmt = self.raw.as_ptr();
        for (i, arg) in args.iter().enumerate() {
            let index = c_int::try_from(i + 1)
                .map_err(|_| StoreError::InvalidData("too many parameters".into()))?;
            // SAFETY: the statement is ours. Text is bound without a copy
            // (SQLITE_STATIC, a null destructor): `run` resets the statement
            // and clears its bindings before `args` can go away.
            let rc = unsafe {
                match arg {
                    Arg::Text(None) => ffi::sqlite3_bind_null(stmt, index),
                    Arg::Text(Some(s)) => match c_int::try_from(s.len()) {
                        Ok(len) => {
                            ffi::sqlite3_bind_text(stmt, index, s.as_ptr().cast(), len, None)
                        }
                        Err(_) => ffi::SQLITE_TOOBIG,
                    },
                    Arg::Int(n) => ffi::sqlite3_bind_int64(stmt, index, *n),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, rc));
            }
        }
        let mut first = None;
        loop {
            // SAFETY: the statement is ours and fully bound.
            match unsafe { ffi::sqlite3_step(stmt) } {
                ffi::SQLITE_ROW => {
                    if first.is_none() {
                        // SAFETY: the statement has a current row.
                        first = Some(unsafe { ffi::sqlite3_column_int64(stmt, 0) });
                    }
                }
                ffi::SQLITE_DONE => return Ok(first),
                rc => return Err(error(self.db, rc)),
            }
        }
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is ours, and is not used after this.
        unsafe {
            ffi::sqlite3_finalize(self.raw.as_ptr());
        }
    }
}

/// An error SQLite reported to a direct call: its extended result code and
/// message, shaped as sqlx's own so callers read both alike.
#[derive(Debug)]
struct DirectError {
    code: c_int,
    message: String,
}

impl fmt::Display for DirectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for DirectError {}

impl DatabaseError for DirectError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// Runs `f`, which blocks (on SQLite, or on rayon's pool), without
/// stalling the other tasks of the calling runtime's thread: on a
/// multi-threaded runtime the thread's queue moves to another worker
/// meanwhile.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    async fn connection() -> sqlx::SqliteConnection {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, note TEXT)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn
    }

    #[tokio::test]
    async fn rows_go_in_and_come_back_through_sqlx() {
        let mut conn = connection().await;
        {
            let direct = Direct::lock(&mut conn).await.unwrap();
            let mut insert = direct
                .prepare("INSERT INTO t (name, note) VALUES (?1, ?2) RETURNING id")
                .unwrap();
            let mut find = direct.prepare("SELECT id FROM t WHERE name = ?1").unwrap();
            for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
                // A value built for this call only: bound in place, and no
                // longer referenced once `run` returns.
                let note = format!("note {i}");
                let note = (i != 1).then_some(note.as_str());
                let id = insert.run(&[name.into(), note.into()]).unwrap();
                assert_eq!(id, Some(i as i64 + 1));
            }
            assert_eq!(find.run(&["c".into()]).unwrap(), Some(3));
            assert_eq!(find.run(&["z".into()]).unwrap(), None);
        }
        let rows: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT id, name, note FROM t ORDER BY id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            rows,
            vec![
                (1, "a".into(), Some("note 0".into())),
                (2, "b".into(), None),
                (3, "c".into(), Some("note 2".into())),
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_row_is_a_database_error_and_the_statement_goes_on() {
        let mut conn = connection().await;
        let direct = Direct::lock(&mut conn).await.unwrap();
        let mut insert = direct
            .prepare("INSERT INTO t (name) VALUES (?1) RETURNING id")
            .unwrap();
        insert.run(&["a".into()]).unwrap();
        for (arg, kind) in [
            (Arg::Text(Some("a")), ErrorKind::UniqueViolation),
            (Arg::Text(None), ErrorKind::NotNullViolation),
        ] {
            match insert.run(&[arg]) {
                Err(StoreError::Database(sqlx::Error::Database(e))) => {
                    assert_eq!(e.kind(), kind, "{e}");
                    assert!(e.message().contains("t.name"), "{}", e.message());
                }
                other => panic!("expected a database error, got {other:?}"),
            }
        }
        // Reset after the failure: the next row goes in.
        assert_eq!(insert.run(&["b".into()]).unwrap(), Some(2));
        assert!(direct.prepare("INSERT INTO nowhere VALUES (1)").is_err());
    }
}
