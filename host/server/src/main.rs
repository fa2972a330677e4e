//! The `portolan` binary.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let small_pages = portolan::use_small_pages();
    // First, before anything opens the database: SQLite then allocates
    // through mimalloc, without its statistics' lock.
    let sqlite_heap = portolan_store::sqlite_memory::use_program_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTOLAN_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    if !small_pages {
        tracing::debug!("transparent huge pages stay as the system has them");
    }
    if !sqlite_heap {
        tracing::debug!("SQLite had initialised already; it keeps the C library's allocator");
    }
    portolan::cli::main(portolan::cli::Cli::parse()).await
}
