//! `durable schedules ...`: the cron schedules in the database (declared
//! by code at start-up, or here with `declare`), listed, shown, paused,
//! resumed, deleted and triggered by hand; one `Client` call each.

use durable::{CatchUp, Schedule, ScheduleInfo};

use super::output::{json, table, time};
use super::{Database, ListArgs};
use crate::error::{CliError, Result};

/// `durable schedules ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SchedulesCommand {
    /// List every schedule, by name.
    List(ListArgs),
    /// Show one schedule.
    Show(ShowArgs),
    /// Declare a schedule, or change the one of that name.
    Declare(DeclareArgs),
    /// Stop a schedule's ticks until it is resumed.
    Pause(NameArgs),
    /// Fire a paused schedule again, from its next tick after now.
    Resume(NameArgs),
    /// Delete a schedule (the workflows it started stay).
    Delete(NameArgs),
    /// Start the schedule's workflow now, outside its ticks; prints its id.
    Trigger(NameArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct NameArgs {
    #[command(flatten)]
    database: Database,
    /// The schedule's name.
    name: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    target: NameArgs,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DeclareArgs {
    #[command(flatten)]
    target: NameArgs,
    /// The cron expression: six fields, seconds first (`0 */5 * * * *`).
    #[arg(long)]
    cron: String,
    /// The registered workflow each tick starts.
    #[arg(long)]
    workflow: String,
    /// The IANA time zone the expression is read in.
    #[arg(long, default_value = "UTC")]
    time_zone: String,
    /// The input of each tick's workflow, as JSON.
    #[arg(long)]
    input: Option<String>,
    /// The queue the workflows are enqueued on (default: the default queue).
    #[arg(long)]
    queue: Option<String>,
    /// Missed ticks: skip, once, all or bounded:N.
    #[arg(long, default_value = "skip")]
    catch_up: CatchUp,
}

/// Run `durable schedules ...`.
///
/// # Errors
/// The database cannot be reached, a name is unknown, a declaration is
/// refused.
pub(crate) async fn run(command: SchedulesCommand) -> Result<()> {
    match command {
        SchedulesCommand::List(args) => {
            let schedules = args.database.client().await?.schedules().await?;
            if args.json {
                println!("{}", json(&schedules)?);
            } else {
                print!("{}", listing(&schedules));
            }
            Ok(())
        }
        SchedulesCommand::Show(args) => {
            let client = args.target.database.client().await?;
            let info = client.schedule(&args.target.name).await?;
            if args.json {
                println!("{}", json(&info)?);
            } else {
                print!("{}", details(&info));
            }
            Ok(())
        }
        SchedulesCommand::Declare(args) => declare(args).await,
        SchedulesCommand::Pause(args) => {
            args.database
                .client()
                .await?
                .pause_schedule(&args.name)
                .await?;
            println!("paused {}", args.name);
            Ok(())
        }
        SchedulesCommand::Resume(args) => {
            args.database
                .client()
                .await?
                .resume_schedule(&args.name)
                .await?;
            println!("resumed {}", args.name);
            Ok(())
        }
        SchedulesCommand::Delete(args) => {
            args.database
                .client()
                .await?
                .delete_schedule(&args.name)
                .await?;
            println!("deleted {}", args.name);
            Ok(())
        }
        SchedulesCommand::Trigger(args) => {
            let client = args.database.client().await?;
            let handle = client.trigger_schedule(&args.name).await?;
            println!("{}", handle.id());
            Ok(())
        }
    }
}

async fn declare(args: DeclareArgs) -> Result<()> {
    let client = args.target.database.client().await?;
    let mut schedule = Schedule::new(&args.target.name, args.cron, args.workflow)
        .time_zone(args.time_zone)
        .catch_up(args.catch_up);
    if let Some(input) = &args.input {
        let value: serde_json::Value = serde_json::from_str(input)
            .map_err(|e| CliError::Usage(format!("--input is not JSON: {e}")))?;
        schedule = schedule.input(&value);
    }
    if let Some(queue) = args.queue {
        schedule = schedule.queue(queue);
    }
    let info = client.declare_schedule(&schedule).await?;
    print!("{}", details(&info));
    Ok(())
}

fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(|| "-".into(), |t| time(t.timestamp_millis()))
}

fn state(info: &ScheduleInfo) -> &'static str {
    if info.paused { "paused" } else { "active" }
}

fn listing(schedules: &[ScheduleInfo]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "WORKFLOW".into(),
        "CRON".into(),
        "ZONE".into(),
        "STATE".into(),
        "NEXT (UTC)".into(),
        "LAST (UTC)".into(),
        "FIRED".into(),
    ]];
    for s in schedules {
        rows.push([
            s.name.clone(),
            s.workflow.clone(),
            s.cron.clone(),
            s.time_zone.clone(),
            state(s).into(),
            when(s.next_tick),
            when(s.last_tick),
            s.fired.to_string(),
        ]);
    }
    let mut out = table(&rows);
    out.push_str(&format!("({} schedules)\n", schedules.len()));
    out
}

fn details(s: &ScheduleInfo) -> String {
    let rows = [
        ["name".to_string(), s.name.clone()],
        ["workflow".into(), s.workflow.clone()],
        ["cron".into(), s.cron.clone()],
        ["time zone".into(), s.time_zone.clone()],
        ["input".into(), s.input.to_string()],
        ["queue".into(), s.queue.clone()],
        ["catch up".into(), s.catch_up.to_string()],
        ["state".into(), state(s).into()],
        ["next tick (UTC)".into(), when(s.next_tick)],
        ["last tick (UTC)".into(), when(s.last_tick)],
        ["fired".into(), s.fired.to_string()],
    ];
    table(&rows)
}
