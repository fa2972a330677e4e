//! The store's integration tests, one test binary: every case runs on SQLite
//! and, when `PORTOLAN_TEST_POSTGRES_URL` is set, on PostgreSQL. Run one area
//! with `cargo test -p portolan-store --test suite <module>::`.

mod actions;
mod entities;
mod jobs;
mod query;
mod scorecards;
mod store;
