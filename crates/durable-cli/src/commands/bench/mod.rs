//! `durable bench`: what a durable step costs on this machine, measured
//! against the raw database floor in the same run (issue 4).
//!
//! Each workload has its own file; `report.rs` prints the table and the
//! targets, `svg.rs` draws the chart. Timings are medians of `--repeat`
//! runs with their spread; the `cost` counts are exact.

mod claims;
mod cost;
mod counted;
mod drive;
mod floor;
mod latency;
mod list;
mod memory;
mod primitives;
mod progress;
mod replay;
mod report;
mod scale;
mod sql;
mod stats;
mod svg;
mod target;
mod throughput;
mod timed;
mod workflow;

use std::path::PathBuf;
use std::time::Instant;

use clap::ValueEnum;
use serde::Serialize;

use crate::error::{CliError, Result};
use memory::{MemoryWorkload, Sizes};
use progress::Progress;
use target::{DatabaseInfo, Machine, Target};
use workflow::Anchor;

/// Arguments of `durable bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// PostgreSQL to measure (a fresh schema is made for the run and dropped
    /// after it). Without it, a fresh SQLite file in a temp directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Measure a fresh SQLite file even when DATABASE_URL is set.
    #[arg(long)]
    sqlite: bool,
    /// Workloads to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Workload>,
    /// Measurements of each figure; the median and the range are printed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Concurrent connections (floor) and workflows (throughput) of the table.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// Concurrency levels of the throughput chart, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    levels: Vec<u32>,
    /// Print one JSON document on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Write a chart of latency and throughput vs the floor to this SVG file.
    #[arg(long, value_name = "PATH")]
    svg: Option<PathBuf>,
    /// Keep the run's schema or SQLite file instead of removing it.
    #[arg(long)]
    keep: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Steps of the latency and replay workflows (and of the cost windows).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    steps: u32,
    /// Workflows per throughput measurement.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    workflows: u32,
    /// Steps of each throughput workflow.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    workflow_steps: u32,
    /// Inserts per floor measurement.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    floor_inserts: u32,
    /// Steps of the long history replayed by the memory workload.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    history_steps: u32,
    /// Workflows in flight at once in the memory workload.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    in_flight: u32,
    /// Workflows that sleep at once in the primitives workload.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    sleepers: u32,
    /// Seconds over which the sleepers' wake-up times are spread.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    wake_window: u64,
    /// Claims workload: workflows waiting on one busy key, comma-separated sizes.
    #[arg(long, value_delimiter = ',', default_value = "0,1000,10000,100000")]
    backlogs: Vec<u64>,
    /// Claims workload: workflows queued ahead (for another function), sizes.
    #[arg(long, value_delimiter = ',', default_value = "0,100000")]
    queued: Vec<u64>,
    /// Claims workload: finished workflows in the tables, sizes.
    #[arg(long, value_delimiter = ',', default_value = "0,1000000")]
    finished: Vec<u64>,
    /// List workload: finished workflows in the tables, comma-separated
    /// sizes (the figures: 1000000,10000000).
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    list_rows: Vec<u64>,
    /// Workflows timed at each backlog size of the claims workload (and
    /// pages of each kind in the list workload).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    probes: u32,
    /// Scale workload: numbers of worker processes, comma-separated (each
    /// has --concurrency slots).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    processes: Vec<usize>,
    /// Internal: run a worker of the scale workload until stdin closes.
    #[arg(long, hide = true)]
    internal_scale_worker: bool,
    /// Internal: run one memory workload in this process on --database-url
    /// and print its sample (used by the memory workload's child processes).
    #[arg(long, value_enum, hide = true)]
    internal_memory_workload: Option<MemoryWorkload>,
}

/// A workload of `durable bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    Floor,
    Latency,
    Throughput,
    Replay,
    Cost,
    Memory,
    Primitives,
    Claims,
    Scale,
    List,
}

impl BenchArgs {
    fn runs(&self, workload: Workload) -> bool {
        self.only.is_empty() || self.only.contains(&workload)
    }

    fn concurrency(&self) -> usize {
        self.concurrency as usize
    }

    fn sizes(&self) -> Sizes {
        Sizes {
            steps: self.steps,
            workflows: self.workflows,
            workflow_steps: self.workflow_steps,
            concurrency: self.concurrency(),
            history_steps: self.history_steps,
            in_flight: self.in_flight,
        }
    }

    /// Throughput levels: the chart's and the table's.
    fn throughput_levels(&self) -> Vec<usize> {
        let mut levels: Vec<usize> = self.levels.iter().map(|&l| l.max(1) as usize).collect();
        levels.push(self.concurrency());
        levels.sort_unstable();
        levels.dedup();
        levels
    }

    /// Floor levels: 1 (for latency) and those of throughput.
    fn floor_levels(&self) -> Vec<usize> {
        let mut levels = if self.runs(Workload::Throughput) {
            self.throughput_levels()
        } else {
            vec![self.concurrency()]
        };
        levels.push(1);
        levels.sort_unstable();
        levels.dedup();
        levels
    }

    /// Measurements of the whole run, for the progress bar.
    fn measurements(&self) -> u64 {
        let r = u64::from(self.repeat);
        let mut n = 0;
        if self.runs(Workload::Floor)
            || self.runs(Workload::Latency)
            || self.runs(Workload::Throughput)
        {
            n += r * self.floor_levels().len() as u64;
        }
        if self.runs(Workload::Latency) {
            n += r;
        }
        if self.runs(Workload::Throughput) {
            n += r * self.throughput_levels().len() as u64;
        }
        if self.runs(Workload::Replay) {
            n += r + 1;
        }
        if self.runs(Workload::Cost) {
            n += 1;
        }
        if self.runs(Workload::Memory) {
            n += MemoryWorkload::ALL.len() as u64;
        }
        if self.runs(Workload::Primitives) {
            n += 3;
        }
        if self.runs(Workload::Scale) {
            n += u64::from(self.repeat) * self.processes.len() as u64;
        }
        if self.runs(Workload::Claims) {
            n += (self.backlogs.len() + self.queued.len() + self.finished.len()) as u64;
        }
        if self.runs(Workload::List) {
            n += self.list_rows.len() as u64;
        }
        n
    }
}

/// Everything one run measured (the `--json` document).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BenchReport {
    pub(crate) machine: Machine,
    pub(crate) database: DatabaseInfo,
    pub(crate) repeat: u32,
    /// The concurrency of the table's throughput row.
    pub(crate) concurrency: usize,
    pub(crate) floor: Option<floor::FloorReport>,
    pub(crate) latency: Option<latency::LatencyReport>,
    pub(crate) throughput: Option<throughput::ThroughputReport>,
    pub(crate) replay: Option<replay::ReplayReport>,
    pub(crate) cost: Option<cost::CostReport>,
    pub(crate) memory: Option<memory::MemoryReport>,
    pub(crate) primitives: Option<primitives::PrimitivesReport>,
    /// Steps per second by number of worker processes.
    pub(crate) scale: Option<scale::ScaleReport>,
    /// Enqueue to first step behind a backlog on one key, by backlog size.
    pub(crate) claims: Option<Vec<claims::ClaimLatency>>,
    /// A page of `Client::list` by table size and kind of page.
    pub(crate) list: Option<list::ListReport>,
    /// Each target of issue 4, with the figure that decides it.
    pub(crate) targets: Vec<report::TargetCheck>,
    pub(crate) seconds: f64,
}

/// Run `durable bench`.
///
/// # Errors
/// The database cannot be reached or prepared, or a workload fails.
pub(crate) async fn run(args: BenchArgs) -> Result<()> {
    if let Some(workload) = args.internal_memory_workload {
        let url = args.database_url.as_deref().ok_or_else(|| {
            CliError::Usage("--internal-memory-workload needs --database-url".into())
        })?;
        return memory::child(url, workload, args.sizes()).await;
    }
    if args.internal_scale_worker {
        let url = args.database_url.as_deref().ok_or_else(|| {
            CliError::Usage("--internal-scale-worker needs --database-url".into())
        })?;
        return scale::child(url, args.concurrency(), args.workflow_steps).await;
    }
    let postgres = if args.sqlite {
        None
    } else {
        args.database_url.as_deref()
    };
    let target = Target::create(postgres).await?;
    if !args.quiet {
        eprintln!(
            "bench: {} database in {}",
            target.backend.name(),
            target.location()
        );
    }
    let outcome = tokio::select! {
        outcome = measure(&target, &args) => outcome,
        _ = tokio::signal::ctrl_c() => Err(CliError::Internal("interrupted".into())),
    };
    if args.keep {
        eprintln!("bench: kept {} ({})", target.location(), target.url);
    } else {
        let location = target.location();
        if let Err(err) = target.remove().await {
            eprintln!("bench: could not remove {location}: {err}");
        }
    }
    let report = outcome?;
    let table = report::render(&report);
    if args.json {
        eprint!("{table}");
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Internal(format!("cannot encode the report: {e}")))?;
        println!("{json}");
    } else {
        print!("{table}");
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, svg::render(&report))
            .map_err(|e| CliError::io(format!("write {}", path.display()), e))?;
        eprintln!("bench: chart written to {}", path.display());
    }
    Ok(())
}

/// Run the selected workloads in order.
async fn measure(target: &Target, args: &BenchArgs) -> Result<BenchReport> {
    let started = Instant::now();
    let db = target.connect().await?;
    let mut report = BenchReport {
        machine: Machine::read(),
        database: DatabaseInfo::read(&db).await?,
        repeat: args.repeat,
        concurrency: args.concurrency(),
        floor: None,
        latency: None,
        throughput: None,
        replay: None,
        cost: None,
        memory: None,
        primitives: None,
        claims: None,
        list: None,
        scale: None,
        targets: Vec::new(),
        seconds: 0.0,
    };
    let progress = Progress::new(args.measurements(), args.quiet);
    let repeat = args.repeat as usize;
    let anchor = Anchor::hold(&db).await?;
    // Ratios need the floor: it runs whenever a timed workload does,
    // interleaved with them.
    if args.runs(Workload::Floor) || args.runs(Workload::Latency) || args.runs(Workload::Throughput)
    {
        let plan = timed::Plan {
            floor_levels: args.floor_levels(),
            floor_inserts: args.floor_inserts,
            latency_steps: args.runs(Workload::Latency).then_some(args.steps),
            throughput_levels: if args.runs(Workload::Throughput) {
                args.throughput_levels()
            } else {
                Vec::new()
            },
            workflows: args.workflows,
            workflow_steps: args.workflow_steps,
            repeat,
        };
        let timed = timed::run(&db, &plan, &progress).await?;
        report.floor = Some(timed.floor);
        report.latency = timed.latency;
        report.throughput = timed.throughput;
    }
    if args.runs(Workload::Replay) {
        report.replay = Some(replay::run(target, &db, args.steps, repeat, &progress).await?);
    }
    anchor.release().await?;
    if args.runs(Workload::Cost) {
        report.cost = Some(cost::run(target, args.steps, &progress).await?);
    }
    if args.runs(Workload::Memory) {
        report.memory = Some(memory::run(target, args.sizes(), &progress).await?);
    }
    if args.runs(Workload::Primitives) {
        let slots = args.concurrency();
        let window = std::time::Duration::from_secs(args.wake_window);
        report.primitives =
            Some(primitives::run(&db, args.sleepers, window, slots, &progress).await?);
    }
    if args.runs(Workload::Scale) {
        let mut processes: Vec<usize> = args.processes.iter().map(|&p| p.max(1)).collect();
        processes.sort_unstable();
        processes.dedup();
        let plan = scale::Plan {
            processes,
            slots: args.concurrency(),
            workflows: args.workflows,
            steps: args.workflow_steps,
            floor_inserts: args.floor_inserts,
            repeat: args.repeat as usize,
        };
        report.scale = Some(scale::run(target, &db, &plan, &progress).await?);
    }
    if args.runs(Workload::Claims) {
        let sizes = |list: &[u64]| {
            let mut list = list.to_vec();
            list.sort_unstable();
            list.dedup();
            list
        };
        let plan = [
            (claims::Backlog::HotKey, sizes(&args.backlogs)),
            (claims::Backlog::Queued, sizes(&args.queued)),
            (claims::Backlog::Finished, sizes(&args.finished)),
        ];
        report.claims =
            Some(claims::run(&db, target.backend, &plan, args.probes, &progress).await?);
    }
    if args.runs(Workload::List) {
        let mut sizes = args.list_rows.clone();
        sizes.sort_unstable();
        sizes.dedup();
        report.list = Some(list::run(&db, target.backend, &sizes, args.probes, &progress).await?);
    }
    progress.finish();
    db.close().await?;
    report.seconds = started.elapsed().as_secs_f64();
    report.machine.finish();
    report::conclude(&mut report);
    Ok(report)
}
