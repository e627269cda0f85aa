//! `durable`: the command-line tool of the `durable` workflow library.
//!
//! Data goes to stdout (tables, `--json`), progress and diagnostics to
//! stderr. One folder per command under `commands/`.

mod commands;
mod error;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};

/// The durable workflow tool.
#[derive(Debug, Parser)]
#[command(name = "durable", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure durable steps against the raw database floor of this machine.
    Bench(commands::bench::BenchArgs),
    /// List workflows, or show one with its steps (`--json` for JSON).
    #[command(subcommand)]
    Workflows(commands::workflows::WorkflowsCommand),
    /// List, declare, pause, resume, delete or trigger cron schedules.
    #[command(subcommand)]
    Schedules(commands::schedules::SchedulesCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // SDK diagnostics (retries, heartbeat failures) on stderr; RUST_LOG
    // selects more.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("durable: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Bench(args) => commands::bench::run(args).await,
            Command::Workflows(command) => commands::workflows::run(command).await,
            Command::Schedules(command) => commands::schedules::run(command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("durable: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
