//! The server's integration tests, one test binary (the host and wasmtime are
//! linked once): the API's contract for bad input and authorization, the
//! entities and query endpoints through the router, `portolan apply`, and the
//! CLI. Run one area with `cargo test -p portolan --test suite <module>::`.

#[macro_use]
mod common;

mod api;
mod apply;
mod cli;
mod entities;
mod query;
