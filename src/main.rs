//! The `sigmasight` binary: parses the command line and hands each subcommand to the library.

use std::process::ExitCode;

use clap::Parser;
use sigmasight::cli::{self, Cli, Command};

// musl's allocator serialises threads on one lock; mimalloc keeps the static binary fast.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Config => cli::print_config(),
        Command::Healthcheck => cli::runtime(false).and_then(|rt| rt.block_on(cli::healthcheck())),
        Command::Migrate => cli::runtime(true).and_then(|rt| rt.block_on(cli::migrate())),
        Command::Serve => cli::runtime(true).and_then(|rt| rt.block_on(cli::serve())),
        Command::Etl(args) => cli::runtime(true).and_then(|rt| rt.block_on(cli::etl(args))),
        Command::User(command) => {
            cli::runtime(false).and_then(|rt| rt.block_on(cli::user(command)))
        }
        Command::Seed(args) => cli::runtime(false).and_then(|rt| rt.block_on(cli::seed(args))),
    };
    cli::exit_code(outcome)
}
