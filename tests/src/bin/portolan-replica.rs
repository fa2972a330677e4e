//! The `portolan` command line, built inside the end-to-end package so that
//! its tests can start real, separate host processes
//! (`env!("CARGO_BIN_EXE_portolan-replica")`) and kill them.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    portolan::cli::main(portolan::cli::Cli::parse()).await
}
