//! `durable`: the command-line tool of the `durable` workflow library.
//!
//! Data goes to stdout (tables, `--json`), progress and diagnostics to
//! stderr. One file or folder per command under `commands/`, but `bench`:
//! the benchmark is the crate `durable-bench`, run from here (its child
//! processes are this binary too, `durable bench --internal-...`).
//!
//! Exit codes: 0 done; 1 the operation failed or was refused (an unknown
//! id, a transition the workflow's state does not allow, a database that
//! cannot be reached); 2 the command line is wrong (clap's usage errors,
//! a payload that is not JSON, no database given).

mod commands;
mod error;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};

/// The durable workflow tool.
#[derive(Debug, Parser)]
#[command(
    name = "durable",
    version,
    about,
    after_help = "Exit codes: 0 done; 1 the operation failed or was refused (unknown id, a \
                  transition the state does not allow, no database server); 2 wrong command \
                  line (also a payload that is not JSON, or no database given)."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure durable steps against the raw database floor of this machine.
    Bench(durable_bench::BenchArgs),
    /// List workflows, or show one with its steps (`--json` for JSON).
    #[command(subcommand)]
    Workflows(commands::workflows::WorkflowsCommand),
    /// List, declare, pause, resume, delete or trigger cron schedules.
    #[command(subcommand)]
    Schedules(commands::schedules::SchedulesCommand),
    /// List queues with their limits and where their work is.
    #[command(subcommand)]
    Queues(commands::queues::QueuesCommand),
    /// Send a message to a workflow.
    Send(commands::send::SendArgs),
    /// Read the events workflows publish.
    #[command(subcommand)]
    Events(commands::events::EventsCommand),
    /// Create the durable tables or migrate them to this version.
    Migrate(commands::migrate::MigrateArgs),
    /// Serve the admin HTTP API, the web UI and Prometheus metrics.
    Serve(commands::serve::ServeArgs),
    /// Print a shell completion script.
    Completions(commands::completions::CompletionsArgs),
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
            Command::Bench(args) => Ok(durable_bench::run(args).await?),
            Command::Workflows(command) => commands::workflows::run(command).await,
            Command::Schedules(command) => commands::schedules::run(command).await,
            Command::Queues(command) => commands::queues::run(command).await,
            Command::Send(args) => commands::send::run(args).await,
            Command::Events(command) => commands::events::run(command).await,
            Command::Migrate(args) => commands::migrate::run(args).await,
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Completions(args) => commands::completions::run(args),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("durable: {err}");
            std::process::ExitCode::from(err.exit_code())
        }
    }
}
