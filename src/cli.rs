//! The command line: subcommands, and the glue from each to the library (load the
//! configuration, start logging, call the module, turn the outcome into an exit code).

use std::io::IsTerminal;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::auth::{password, users, Role};
use crate::config::{self, Config, ConfigError, Provider};
use crate::db::etl_runs::Status;
use crate::etl::{self, Dates, EtlError};
use crate::{db, healthcheck, migrate, seed, server, shutdown, telemetry};

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
    /// Load daily OHLCV bars for the tracked universe, record the run in etl_run, and exit.
    ///
    /// By default, for each symbol: every trading day since its last stored bar, at most
    /// ETL_LOOKBACK_DAYS back, up to the latest US trading day whose 16:00 New York close has
    /// passed (asked again even when stored), for the active rows of the `symbols` table, the
    /// symbols held in positions, and ETL_BENCHMARK_SYMBOLS. FMP is asked first
    /// (ETL_PRIMARY_PROVIDER), Polygon for what FMP could not supply. It never migrates.
    ///
    /// `--provider csv --file PATH|-` imports a CSV file (or standard input, gzip accepted)
    /// instead: the long layout (symbol,date,open,high,low,close,[adj close],volume) or the
    /// per-symbol one (Date,Open,High,Low,Close,Adj Close,Volume) with --symbols X.
    ///
    /// Exit codes: 0 succeeded; 1 failed; 2 configuration or usage error; 3 partial (some
    /// symbols not supplied, or some CSV rows rejected); 4 another run holds the lock (nothing written); 5 cancelled by
    /// SIGTERM or SIGINT (the current batch committed, the run recorded as cancelled).
    #[command(
        after_help = "Exit codes: 0 succeeded, 1 failed, 2 configuration or usage error, \
        3 partial, 4 another run holds the lock, 5 cancelled. See docs/etl.md."
    )]
    Etl(EtlArgs),
    /// Create or disable API users.
    #[command(subcommand)]
    User(UserCommand),
    /// Load demo data: a demo user, portfolios with positions, the symbols they hold, and a
    /// year of synthetic daily bars for them.
    ///
    /// Idempotent. The demo user (demo@example.com) gets DEMO_PASSWORD if set, else a random
    /// password printed once, when it is created; a re-run changes nothing that exists. The
    /// bars are made up (source 'demo'), written only where no bar is stored, and replaced by
    /// the ETL's bars from a real provider.
    Seed(SeedArgs),
}

/// The subcommands of `sigmasight user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (never from the command line,
    /// where `ps` would show it) and must have at least 12 characters.
    Create {
        /// The user's email (unique whatever its case).
        #[arg(long)]
        email: String,
        /// Make the user an administrator (manages tracked symbols).
        #[arg(long)]
        admin: bool,
    },
    /// Disable a user: they can no longer log in, and their tokens stop working at once.
    Disable {
        /// The user's email, in any case.
        #[arg(long)]
        email: String,
    },
}

/// The options of `sigmasight seed`.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Load the demo data (the only kind there is; required so a seed is never an accident).
    #[arg(long, required = true)]
    pub demo: bool,
}

/// The options of `sigmasight etl`.
#[derive(Debug, Args)]
pub struct EtlArgs {
    /// Load this trading day (YYYY-MM-DD) instead of catching up.
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with_all = ["from", "to"])]
    pub date: Option<NaiveDate>,
    /// Backfill from this day (YYYY-MM-DD, included); needs --to.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "to")]
    pub from: Option<NaiveDate>,
    /// Backfill up to this day (included); a day not closed yet is brought back to the latest
    /// completed one. Needs --from.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "from")]
    pub to: Option<NaiveDate>,
    /// Load these symbols (comma-separated) instead of the tracked universe.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub symbols: Option<Vec<String>>,
    /// Ask this provider first (the other remains the fallback when its key is set), or `csv`
    /// to import the file named by --file instead.
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// With --provider csv: the CSV file to import (gzip accepted), or - for standard input.
    #[arg(long, value_name = "PATH|-")]
    pub file: Option<String>,
}

/// The values of `etl --provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderArg {
    /// Financial Modeling Prep first.
    Fmp,
    /// Polygon first.
    Polygon,
    /// No provider: import the CSV file named by --file (docs/etl.md, "CSV import").
    Csv,
}

/// Exit code for a configuration error.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure at run time.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of an ETL run that supplied some symbols but not all.
pub const EXIT_PARTIAL: u8 = 3;
/// Exit code of an ETL run refused because another run holds the lock.
pub const EXIT_LOCKED: u8 = 4;
/// Exit code of an ETL run stopped by SIGTERM or SIGINT.
pub const EXIT_CANCELLED: u8 = 5;

/// Why a command failed, deciding its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad configuration: exit 2, before any socket opens.
    Config(ConfigError),
    /// The command ran and failed: exit 1.
    Run(anyhow::Error),
    /// A usage or configuration problem found by the command itself: exit 2.
    Usage(String),
    /// The command finished, and its outcome has its own exit code (already reported).
    Exit(u8),
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
        Err(Failure::Usage(message)) => {
            eprintln!("sigmasight: {message}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Exit(code)) => ExitCode::from(code),
    }
}

/// A Tokio runtime: multi-threaded for the server, one thread for short commands.
pub fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, Failure> {
    let mut builder = if multi_thread {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        // Workers batch their log lines (telemetry::stdout) and write them whenever they run
        // out of work. Only workers: the thread that calls `block_on` never parks through this
        // hook, so its lines, the last ones of a command among them, are written at once.
        builder.on_thread_park(telemetry::stdout::flush_worker);
        builder
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
    // Only `serve` signs tokens, so only `serve` requires the key.
    if config.secret_key.is_none() {
        return Err(Failure::Config(ConfigError::Missing {
            key: "SECRET_KEY".to_owned(),
        }));
    }
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

/// `sigmasight etl`: one run, one summary line on stdout (and as a JSON log line), and an exit
/// code per outcome.
pub async fn etl(args: EtlArgs) -> Result<(), Failure> {
    let config = load()?;
    let provider = match args.provider {
        Some(ProviderArg::Csv) => return import(&config, args).await,
        _ if args.file.is_some() => {
            return Err(Failure::Usage(
                "--file: only with --provider csv, which imports it".to_owned(),
            ))
        }
        Some(ProviderArg::Fmp) => Some(Provider::Fmp),
        Some(ProviderArg::Polygon) => Some(Provider::Polygon),
        None => None,
    };
    let dates = match (args.date, args.from, args.to) {
        (Some(day), _, _) => Dates::Day(day),
        (None, Some(from), Some(to)) => Dates::Range(from, to),
        _ => Dates::CatchUp,
    };
    let request = etl::Request {
        dates,
        symbols: args.symbols,
        provider,
    };
    let options = etl::Options::from_config(&config);
    report(etl::run(&config, request, options, shutdown::signal()).await)
}

/// `sigmasight etl --provider csv --file PATH|-`.
async fn import(config: &Config, args: EtlArgs) -> Result<(), Failure> {
    let Some(file) = args.file else {
        return Err(Failure::Usage(
            "--file: required with --provider csv (a CSV file, gzip accepted, or - for standard \
             input)"
                .to_owned(),
        ));
    };
    if args.date.is_some() || args.from.is_some() {
        return Err(Failure::Usage(
            "--date, --from and --to do not apply to --provider csv: each row names its date"
                .to_owned(),
        ));
    }
    // A bar on a terminal; elsewhere (a pipe, a log shipper) a progress log line.
    let progress = if std::io::stderr().is_terminal() {
        etl::import::ProgressMode::Bar
    } else {
        etl::import::ProgressMode::Log
    };
    let request = etl::import::Request {
        input: etl::import::Input::parse(&file),
        symbols: args.symbols,
        progress,
    };
    report(etl::import::run(config, request, chrono::Utc::now(), shutdown::signal()).await)
}

/// A run's outcome as one summary line on stdout (and as a JSON log line), and its exit code.
fn report(result: Result<etl::Outcome, EtlError>) -> Result<(), Failure> {
    match result {
        Ok(outcome) => {
            let f = &outcome.finish;
            tracing::info!(
                run_id = outcome.run_id,
                status = f.status.as_str(),
                from = %outcome.from,
                to = %outcome.to,
                symbols_requested = outcome.symbols_requested as u64,
                symbols_succeeded = f.symbols_succeeded,
                symbols_failed = f.symbols_failed,
                rows_inserted = f.counts.inserted,
                rows_updated = f.counts.updated,
                rows_unchanged = f.counts.unchanged,
                rows_rejected = f.rejected,
                providers = f.providers.join(", "),
                "etl run finished"
            );
            println!("sigmasight: {}", outcome.summary());
            match outcome.status() {
                Status::Succeeded => Ok(()),
                Status::Partial => Err(Failure::Exit(EXIT_PARTIAL)),
                Status::Failed => Err(Failure::Exit(EXIT_FAILURE)),
                Status::Cancelled => Err(Failure::Exit(EXIT_CANCELLED)),
            }
        }
        Err(EtlError::Locked) => {
            tracing::warn!("another ETL run holds the lock; exiting without doing anything");
            println!(
                "sigmasight: another ETL run holds the lock; this one exits without doing anything"
            );
            Err(Failure::Exit(EXIT_LOCKED))
        }
        Err(error @ (EtlError::Usage(_) | EtlError::Config(_))) => {
            Err(Failure::Usage(error.to_string()))
        }
        Err(error) => {
            tracing::error!(error = %error, "etl run failed");
            Err(Failure::Run(error.into()))
        }
    }
}

/// `sigmasight user create` and `sigmasight user disable`.
pub async fn user(command: UserCommand) -> Result<(), Failure> {
    let config = load()?;
    let pool = db::pool(&config);
    match command {
        UserCommand::Create { email, admin } => {
            let email = email.trim().to_owned();
            if !users::is_email(&email) {
                return Err(Failure::Usage(format!(
                    "--email: expected an email address, got {email:?}"
                )));
            }
            let clear = read_password()?;
            let hash = tokio::task::spawn_blocking(move || password::hash(&clear))
                .await
                .map_err(anyhow::Error::new)??;
            let role = if admin { Role::Admin } else { Role::User };
            match db::users::create(&pool, &email, &hash, role).await {
                Ok(user) => {
                    println!(
                        "sigmasight: created {} {} (id {})",
                        role.as_str(),
                        user.email,
                        user.id
                    );
                    Ok(())
                }
                Err(db::users::CreateError::Duplicate) => Err(Failure::Run(anyhow::anyhow!(
                    "a user with the email {email:?} already exists"
                ))),
                Err(db::users::CreateError::Database(e)) => Err(Failure::Run(
                    anyhow::Error::new(e).context("cannot create the user"),
                )),
            }
        }
        UserCommand::Disable { email } => {
            let found = crate::auth::users::disable(&pool, email.trim())
                .await
                .map_err(|e| anyhow::Error::new(e).context("cannot disable the user"))?;
            if !found {
                return Err(Failure::Run(anyhow::anyhow!(
                    "no user has the email {email:?}"
                )));
            }
            println!("sigmasight: disabled {email}; their tokens no longer work");
            Ok(())
        }
    }
}

/// One line of standard input: the password, without its line ending. Refused if shorter than
/// [`password::MIN_PASSWORD_CHARS`] characters.
fn read_password() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| anyhow::Error::new(e).context("cannot read the password from stdin"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    let chars = password.chars().count();
    if chars < password::MIN_PASSWORD_CHARS || password.len() > password::MAX_PASSWORD_BYTES {
        return Err(Failure::Usage(format!(
            "the password (stdin) must have {} to {} characters; got {chars}",
            password::MIN_PASSWORD_CHARS,
            password::MAX_PASSWORD_BYTES
        )));
    }
    Ok(password)
}

/// `sigmasight seed --demo`.
pub async fn seed(_args: SeedArgs) -> Result<(), Failure> {
    let config = load()?;
    // Read here rather than through `Config`: only this command uses it, once.
    let chosen = match std::env::var("DEMO_PASSWORD") {
        Ok(p) if p.is_empty() => None,
        Ok(p) if p.chars().count() < password::MIN_PASSWORD_CHARS => {
            return Err(Failure::Usage(format!(
                "DEMO_PASSWORD: expected at least {} characters",
                password::MIN_PASSWORD_CHARS
            )))
        }
        Ok(p) => Some(p),
        Err(_) => None,
    };
    let from_env = chosen.is_some();
    let outcome = seed::demo(&db::pool(&config), chosen, chrono::Utc::now())
        .await
        .map_err(|e| e.context("seeding failed"))?;
    match outcome.new_password {
        Some(_) if from_env => println!(
            "sigmasight: created {} with the password in DEMO_PASSWORD",
            seed::DEMO_EMAIL
        ),
        Some(password) => println!(
            "sigmasight: created {} with the password {password} (shown this once)",
            seed::DEMO_EMAIL
        ),
        None => println!(
            "sigmasight: {} exists; its password is unchanged",
            seed::DEMO_EMAIL
        ),
    }
    println!(
        "sigmasight: {} demo portfolio(s) created",
        outcome.portfolios_created
    );
    let (from, to) = outcome.bars_window;
    println!(
        "sigmasight: {} synthetic demo bar(s) written for {from} to {to} (source 'demo'; \
         days already stored, from any source, left alone)",
        outcome.bars_written
    );
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
