//! `durable queues list`: every queue with its limits and where its
//! unfinished work is (`Client::queues`).

use durable::QueueInfo;

use super::ListArgs;
use super::output::{json, table};
use crate::error::Result;

/// `durable queues ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum QueuesCommand {
    /// List queues: running, queued, waiting and paused against the limits.
    List(ListArgs),
}

/// Run `durable queues ...`.
///
/// # Errors
/// The database cannot be read.
pub(crate) async fn run(command: QueuesCommand) -> Result<()> {
    let QueuesCommand::List(args) = command;
    let queues = args.database.client().await?.queues().await?;
    if args.json {
        println!("{}", json(&queues)?);
    } else {
        print!("{}", render(&queues));
    }
    Ok(())
}

/// The queues as a table; a limit reads `-` when there is none.
fn render(queues: &[QueueInfo]) -> String {
    let limit = |n: Option<u32>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
    let mut rows = vec![[
        "QUEUE".to_string(),
        "RUNNING".into(),
        "LIMIT".into(),
        "PER KEY".into(),
        "RATE".into(),
        "QUEUED".into(),
        "WAITING".into(),
        "PAUSED".into(),
    ]];
    for q in queues {
        let rate = match (q.rate_limit, q.rate_period_ms) {
            (Some(n), Some(ms)) => format!("{n}/{ms}ms"),
            _ => "-".into(),
        };
        let name = if q.declared {
            q.name.clone()
        } else {
            format!("{} (undeclared)", q.name)
        };
        rows.push([
            name,
            q.running.to_string(),
            limit(q.concurrency),
            limit(q.concurrency_per_key),
            rate,
            q.queued.to_string(),
            q.waiting.to_string(),
            q.paused.to_string(),
        ]);
    }
    table(&rows)
}
