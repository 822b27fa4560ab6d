//! The command line: subcommands, and the glue from each to the library (load the
//! configuration, start logging, call the module, turn the outcome into an exit code).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config, ConfigError};
use crate::{healthcheck, migrate, server, telemetry};

/// SigmaSight backend: portfolio-analytics API, migrations and market-data ETL in one binary.
///
/// Configuration comes from the environment (DATABASE_URL, PORT, LOG_LEVEL, ...), over an
/// optional TOML file named by SIGMASIGHT_CONFIG, over built-in defaults; `sigmasight config`
/// prints the effective values.
#[derive(Debug, Parser)]
#[command(name = "sigmasight", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SIGMASIGHT_GIT_COMMIT"), ")"))]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API on [::]:$PORT until SIGTERM or SIGINT (what the container runs).
    ///
    /// Pending migrations are applied first, in the background, unless MIGRATE_ON_START=false;
    /// /health answers at once, /api/v1/health once the database answers and migrations are
    /// applied. On SIGTERM in-flight requests get SHUTDOWN_GRACE_SECONDS to finish.
    Serve,
    /// Apply pending migrations (as DATABASE_MIGRATION_URL if set, else DATABASE_URL), list
    /// them, and exit.
    Migrate,
    /// Exit 0 if GET http://127.0.0.1:$PORT/health answers 200 within 2 s, else 1.
    ///
    /// The container's HEALTHCHECK: the runtime image has no shell and no curl.
    Healthcheck,
    /// Print the effective configuration and where each value came from, secrets redacted.
    Config,
}

/// Exit code for a configuration error.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure at run time.
pub const EXIT_FAILURE: u8 = 1;

/// Why a command failed, deciding its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad configuration: exit 2, before any socket opens.
    Config(ConfigError),
    /// The command ran and failed: exit 1.
    Run(anyhow::Error),
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::Run(error)
    }
}

/// Prints the failure as one sentence on stderr and returns its exit code.
pub fn exit_code(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(error)) => {
            eprintln!("sigmasight: configuration error: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Run(error)) => {
            eprintln!("sigmasight: {}", telemetry::anyhow_chain(&error));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// A Tokio runtime: multi-threaded for the server, one thread for short commands.
pub fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, Failure> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| Failure::Run(anyhow::Error::new(e).context("cannot start the async runtime")))
}

fn load() -> Result<Config, Failure> {
    let config = Config::load()?;
    telemetry::init(&config.log_level, config.log_format);
    Ok(config)
}

/// `sigmasight serve`.
pub async fn serve() -> Result<(), Failure> {
    let config = load()?;
    server::serve(config).await.map_err(|error| {
        tracing::error!(
            error = telemetry::anyhow_chain(&error),
            "the server stopped with an error"
        );
        Failure::Run(error)
    })
}

/// `sigmasight migrate`.
pub async fn migrate() -> Result<(), Failure> {
    let config = load()?;
    let report = migrate::command(config.migration_url())
        .await
        .map_err(|e| Failure::Run(anyhow::Error::new(e).context("migrations failed")))?;
    match report.applied.len() {
        0 => println!("sigmasight: the database is up to date; no migration applied"),
        n => println!(
            "sigmasight: applied {n} migration(s): {}",
            report
                .applied
                .iter()
                .map(|m| format!("{} {}", m.version, m.description))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    Ok(())
}

/// `sigmasight healthcheck`.
pub async fn healthcheck() -> Result<(), Failure> {
    let port = config::port()?;
    healthcheck::check(port)
        .await
        .map_err(|reason| Failure::Run(anyhow::anyhow!("unhealthy: {reason}")))
}

/// `sigmasight config`.
pub fn print_config() -> Result<(), Failure> {
    let config = Config::load()?;
    for (key, value, source) in config.describe() {
        println!("{key}={value}  # {source}");
    }
    Ok(())
}
