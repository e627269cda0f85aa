//! `durable workflows list` and `durable workflows show`: the read model of
//! the SDK (`Client::list`, `Client::tree`) as tables for people, or JSON
//! with `--json`; `pause`, `resume`, `cancel`, `retry` and `fork`: one
//! `Client` call each. Data on stdout; errors on stderr with exit code 1.

use std::fmt::Write;

use durable::{Direction, SortBy, Status, Uuid, WorkflowQuery, WorkflowTree};

use super::Database;
use super::output::{cut, json, table, time};
use crate::error::{CliError, Result};

/// `durable workflows ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum WorkflowsCommand {
    /// List workflows, newest first, a page at a time.
    List(ListArgs),
    /// Show one workflow with its steps and child workflows.
    Show(ShowArgs),
    /// Pause a workflow and its running descendants.
    Pause(IdArgs),
    /// Resume a paused workflow.
    Resume(IdArgs),
    /// Cancel a workflow and its unfinished descendants.
    Cancel(IdArgs),
    /// Run a failed (with --cancelled, also a cancelled) root again from its failed calls.
    Retry(RetryArgs),
    /// Start a new workflow with the history before call N copied; prints its id.
    Fork(ForkArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct IdArgs {
    #[command(flatten)]
    database: Database,
    /// The workflow's id.
    id: Uuid,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RetryArgs {
    #[command(flatten)]
    target: IdArgs,
    /// Retry a cancelled workflow too.
    #[arg(long)]
    cancelled: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ForkArgs {
    #[command(flatten)]
    target: IdArgs,
    /// The first call position that runs anew (the ones before it are copied).
    #[arg(long = "from", allow_negative_numbers = true)]
    from: i32,
}

/// A status as typed on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StatusArg {
    Pending,
    Running,
    Completed,
    Failed,
    Paused,
    Cancelled,
}

impl From<StatusArg> for Status {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Pending => Status::Pending,
            StatusArg::Running => Status::Running,
            StatusArg::Completed => Status::Completed,
            StatusArg::Failed => Status::Failed,
            StatusArg::Paused => Status::Paused,
            StatusArg::Cancelled => Status::Cancelled,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    database: Database,
    /// Only this status (repeat for more).
    #[arg(long, value_enum)]
    status: Vec<StatusArg>,
    /// Only this workflow name.
    #[arg(long)]
    name: Option<String>,
    /// Only keys starting with this.
    #[arg(long)]
    key_prefix: Option<String>,
    /// Only this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only root workflows.
    #[arg(long)]
    roots: bool,
    /// Only those created at or after this time: RFC 3339
    /// (`2026-12-05T10:00:00Z`), a UTC date (`2026-12-05`), or an age
    /// (`90s`, `15m`, `2h`, `7d` ago).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Only those created before this time (same forms as `--since`).
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// Oldest first instead of newest first.
    #[arg(long)]
    oldest_first: bool,
    /// Workflows per page (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// The page after this cursor (printed at the end of a page).
    #[arg(long)]
    after: Option<String>,
    /// One JSON document (the page and its next cursor) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    database: Database,
    /// The workflow's id.
    #[arg(required_unless_present = "key", conflicts_with = "key")]
    id: Option<Uuid>,
    /// The root workflow with this key instead.
    #[arg(long)]
    key: Option<String>,
    /// The tree as JSON instead of an outline.
    #[arg(long)]
    json: bool,
}

/// A time on the command line as epoch milliseconds: RFC 3339, a UTC
/// date, or an age before now (`30s`, `15m`, `2h`, `7d`).
fn parse_time(text: &str) -> std::result::Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    let units = [
        ('s', 1_000),
        ('m', 60_000),
        ('h', 3_600_000),
        ('d', 86_400_000),
    ];
    let age = units.iter().find_map(|&(unit, ms)| {
        let n = text.strip_suffix(unit)?.parse::<i64>().ok()?;
        (n >= 0).then(|| n.saturating_mul(ms))
    });
    match age {
        Some(age_ms) => Ok(chrono::Utc::now().timestamp_millis() - age_ms),
        _ => Err(format!(
            "{text:?} is not a time: write 2026-12-05T10:00:00Z, 2026-12-05, or an age like 90s, 15m, 2h, 7d"
        )),
    }
}

/// Run `durable workflows ...`.
///
/// # Errors
/// The database cannot be reached, a filter is refused, an id is unknown.
pub(crate) async fn run(command: WorkflowsCommand) -> Result<()> {
    match command {
        WorkflowsCommand::List(args) => list(args).await,
        WorkflowsCommand::Show(args) => show(args).await,
        WorkflowsCommand::Pause(args) => {
            let client = args.database.client().await?;
            client.pause(args.id).await?;
            println!("paused {}", args.id);
            Ok(())
        }
        WorkflowsCommand::Resume(args) => {
            let client = args.database.client().await?;
            client.resume(args.id).await?;
            println!("resumed {}", args.id);
            Ok(())
        }
        WorkflowsCommand::Cancel(args) => {
            let client = args.database.client().await?;
            client.cancel(args.id).await?;
            println!("cancelled {}", args.id);
            Ok(())
        }
        WorkflowsCommand::Retry(args) => {
            let client = args.target.database.client().await?;
            let id = args.target.id;
            if args.cancelled {
                client.retry_cancelled(id).await?;
            } else {
                client.retry(id).await?;
            }
            println!("retried {id}");
            Ok(())
        }
        WorkflowsCommand::Fork(args) => {
            let client = args.target.database.client().await?;
            let fork = client.fork(args.target.id, args.from).await?;
            println!("{fork}");
            Ok(())
        }
    }
}

async fn list(args: ListArgs) -> Result<()> {
    let client = args.database.client().await?;
    let direction = if args.oldest_first {
        Direction::Ascending
    } else {
        Direction::Descending
    };
    let mut query = WorkflowQuery::new()
        .sort(SortBy::Created, direction)
        .limit(args.limit);
    for status in args.status {
        query = query.status(status.into());
    }
    if let Some(name) = args.name {
        query = query.name(name);
    }
    if let Some(prefix) = args.key_prefix {
        query = query.key_prefix(prefix);
    }
    if let Some(queue) = args.queue {
        query = query.queue(queue);
    }
    if args.roots {
        query = query.roots_only();
    }
    query = match (args.since, args.until) {
        (Some(since), Some(until)) => query.created(since..until),
        (Some(since), None) => query.created(since..),
        (None, Some(until)) => query.created(..until),
        (None, None) => query,
    };
    if let Some(after) = &args.after {
        query = query.after(after.parse()?);
    }
    let page = client.list(&query).await?;
    if args.json {
        println!("{}", json(&page)?);
        return Ok(());
    }
    let mut rows = vec![[
        "ID".to_string(),
        "KEY".into(),
        "NAME".into(),
        "STATUS".into(),
        "ATTEMPTS".into(),
        "CREATED (UTC)".into(),
    ]];
    for w in &page.workflows {
        rows.push([
            w.id.to_string(),
            w.key.clone(),
            w.name.clone(),
            w.status.to_string(),
            w.attempts.to_string(),
            time(w.created_at_ms),
        ]);
    }
    print!("{}", table(&rows));
    match page.next {
        Some(next) => println!("more: --after {next}"),
        None => println!("({} shown, no more)", page.workflows.len()),
    }
    Ok(())
}

async fn show(args: ShowArgs) -> Result<()> {
    let client = args.database.client().await?;
    let id = match (args.id, &args.key) {
        (Some(id), _) => id,
        (None, Some(key)) => client.workflow_by_key(key).await?.id,
        (None, None) => return Err(CliError::Usage("give an id or --key".into())),
    };
    let tree = client.tree(id).await?;
    if args.json {
        println!("{}", json(&tree)?);
    } else {
        let mut out = String::new();
        outline(&tree, 0, &mut out);
        print!("{out}");
    }
    Ok(())
}

/// A tree as an indented outline: the workflow, then each call with its
/// status, attempts and error (outputs cut to a line).
fn outline(tree: &WorkflowTree, depth: usize, out: &mut String) {
    let w = &tree.workflow;
    let pad = "  ".repeat(depth);
    let _ = writeln!(
        out,
        "{pad}{} {} [{}] {} attempts={} created={}",
        w.key,
        w.name,
        w.id,
        w.status,
        w.attempts,
        time(w.created_at_ms)
    );
    if let Some(error) = &w.error {
        let _ = writeln!(out, "{pad}  error: {}", cut(error));
    }
    for step in &tree.steps {
        let took = match (step.started_at_ms, step.finished_at_ms) {
            (Some(a), Some(b)) => format!(" {} ms", b - a),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{pad}  @{} {} {} {} x{}{took}",
            step.position,
            step.key,
            step.kind.as_str(),
            step.status,
            step.attempts
        );
        if let Some(output) = &step.output {
            let _ = writeln!(out, "{pad}    output: {}", cut(&output.to_string()));
        }
        if let Some(error) = &step.error {
            let _ = writeln!(out, "{pad}    error: {}", cut(error));
        }
        if let Some(child) = &step.child {
            outline(child, depth + 2, out);
        }
    }
    for old in &tree.retried {
        let _ = writeln!(
            out,
            "{pad}  retried (round {}): @{} {} {} error: {}",
            old.round,
            old.step.position,
            old.step.key,
            old.step.status,
            cut(old.step.error.as_deref().unwrap_or("-"))
        );
    }
}
