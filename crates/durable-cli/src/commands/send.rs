//! `durable send ID TOPIC JSON`: a message to a workflow (`Client::send`,
//! or `Client::send_with_key` with `--key`, which sends once per key).

use durable::Uuid;

use super::Database;
use crate::error::{CliError, Result};

/// `durable send`.
#[derive(Debug, clap::Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    database: Database,
    /// The workflow the message is for.
    id: Uuid,
    /// The topic its `ctx.recv` waits on.
    topic: String,
    /// The payload, as JSON (`'"approved"'`, `'{"amount": 3}'`).
    payload: String,
    /// Send at most once per key: a repeat with the same key does nothing.
    #[arg(long)]
    key: Option<String>,
}

/// Run `durable send`.
///
/// # Errors
/// The payload is not JSON; the workflow is unknown or finished.
pub(crate) async fn run(args: SendArgs) -> Result<()> {
    let payload: serde_json::Value = serde_json::from_str(&args.payload)
        .map_err(|e| CliError::Usage(format!("the payload is not JSON: {e}")))?;
    let client = args.database.client().await?;
    match &args.key {
        Some(key) => {
            let sent = client
                .send_with_key(args.id, &args.topic, key, &payload)
                .await?;
            if sent {
                println!("sent to {} on {}", args.id, args.topic);
            } else {
                println!("already sent with key {key}: nothing sent");
            }
        }
        None => {
            client.send(args.id, &args.topic, &payload).await?;
            println!("sent to {} on {}", args.id, args.topic);
        }
    }
    Ok(())
}
