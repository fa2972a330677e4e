//! The `portolan` command line.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portolan_store::{Role, Store};

use crate::config::{Config, Overrides, ServeOverrides};

#[derive(Debug, Parser)]
#[command(
    name = "portolan",
    version,
    about = "Internal developer portal with WebAssembly plugins"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the portal: HTTP API, plugin registry, background work.
    Serve {
        #[command(flatten)]
        common: Overrides,
        #[command(flatten)]
        serve: ServeOverrides,
    },
    /// Push entity files (YAML or JSON) to a running portal in one batch:
    /// all of them are stored, or none.
    Apply(crate::apply::ApplyArgs),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it, alone, on stdout.
    Create {
        /// viewer, member or admin.
        #[arg(long)]
        role: String,
        /// What the token is for.
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        common: Overrides,
    },
    /// List active tokens (never their secrets).
    List {
        #[command(flatten)]
        common: Overrides,
    },
    /// Revoke a token by id.
    Revoke {
        id: String,
        #[command(flatten)]
        common: Overrides,
    },
}

/// Runs the command line; returns the process exit code.
pub async fn main(cli: Cli) -> ExitCode {
    let env: HashMap<String, String> = std::env::vars().collect();
    let result = match cli.command {
        Command::Serve { common, serve } => match Config::load(&common, &serve, &env) {
            Ok(config) => serve_cmd(config).await,
            Err(e) => Err(anyhow::anyhow!(e)),
        },
        Command::Apply(args) => crate::apply::apply(args).await,
        Command::Token { command } => token_cmd(command, &env).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portolan: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_cmd(config: Config) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let shutdown = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    crate::app::run(listener, config, shutdown).await
}

async fn open_store(common: &Overrides, env: &HashMap<String, String>) -> anyhow::Result<Store> {
    let config =
        Config::load(common, &ServeOverrides::default(), env).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&config.data_dir)?;
    Ok(Store::connect(&config.database_url).await?)
}

async fn token_cmd(command: TokenCommand, env: &HashMap<String, String>) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            role,
            description,
            common,
        } => {
            let role: Role = role.parse()?;
            let store = open_store(&common, env).await?;
            let token = store.create_token(role, &description).await?;
            store.close().await;
            println!("{}", token.secret);
        }
        TokenCommand::List { common } => {
            let store = open_store(&common, env).await?;
            for t in store.list_tokens().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    t.id,
                    t.role,
                    t.created_at.to_rfc3339(),
                    t.description
                );
            }
            store.close().await;
        }
        TokenCommand::Revoke { id, common } => {
            let store = open_store(&common, env).await?;
            let revoked = store.revoke_token(&id).await?;
            store.close().await;
            if !revoked {
                anyhow::bail!("no active token with id {id:?}");
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives
/// while the server is still starting is not lost (nor fatal).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {},
                _ = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}
