//! `durable events get ID KEY`: the latest value a workflow published
//! under a key (`ctx.set_event`), as JSON on stdout.

use std::time::Duration;

use durable::Uuid;

use super::Database;
use super::output::json;
use crate::error::{CliError, Result};

/// `durable events ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum EventsCommand {
    /// Print the latest value of an event key as JSON.
    Get(GetArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    database: Database,
    /// The workflow that publishes it.
    id: Uuid,
    /// The event's key.
    key: String,
    /// Wait up to this many seconds for a first value.
    #[arg(long, default_value_t = 0.0)]
    wait: f64,
}

/// Run `durable events ...`.
///
/// # Errors
/// An unknown workflow; no value (exit code 1, after `--wait`).
pub(crate) async fn run(command: EventsCommand) -> Result<()> {
    let EventsCommand::Get(args) = command;
    let wait = Duration::try_from_secs_f64(args.wait)
        .map_err(|e| CliError::Usage(format!("--wait {}: {e}", args.wait)))?;
    let client = args.database.client().await?;
    match client
        .get_event::<serde_json::Value>(args.id, &args.key, wait)
        .await?
    {
        Some(value) => {
            println!("{}", json(&value)?);
            Ok(())
        }
        None => Err(CliError::NotFound(format!(
            "workflow {} has no value for event {:?}",
            args.id, args.key
        ))),
    }
}
