//! A run of `durable bench`: a fresh database, the selected workloads in
//! order (or the one workload of a child process), the table, the JSON
//! and the chart.

use std::time::Instant;

use serde::Serialize;

use crate::args::{BenchArgs, Workload};
use crate::error::{BenchError, Result};
use crate::progress::Progress;
use crate::target::{DatabaseInfo, Machine, Target};
use crate::workflow::Anchor;
use crate::{
    claims, cost, floor, latency, list, memory, primitives, replay, report, scale, svg,
    svg_scaling, throughput, timed,
};

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

/// Run `durable bench` as `args` say: measure, then print the table on
/// stdout (with `--json`: the JSON document on stdout, the table on
/// stderr) and write the chart if asked. With an `--internal-...` flag,
/// run the one workload of a child process instead.
///
/// The run's database is a fresh SQLite file, or a fresh schema in the
/// PostgreSQL of `--database-url`, removed afterwards (unless `--keep`).
/// Child processes are started from the current executable as
/// `<exe> bench --internal-...`: the program calling this must take these
/// arguments as its `bench` subcommand (the `durable` binary does).
///
/// # Errors
/// [`BenchError::Usage`] for arguments that cannot work; otherwise the
/// database cannot be reached or prepared, or a workload fails (Ctrl-C
/// too, as [`BenchError::Internal`]).
///
/// ```no_run
/// use clap::Parser;
///
/// #[derive(clap::Parser)]
/// struct Cli {
///     #[command(subcommand)]
///     command: Command,
/// }
///
/// #[derive(clap::Subcommand)]
/// enum Command {
///     /// Measure durable steps against the raw database floor.
///     Bench(durable_bench::BenchArgs),
/// }
///
/// # async fn demo() -> Result<(), durable_bench::BenchError> {
/// let Command::Bench(args) = Cli::parse().command;
/// durable_bench::run(args).await
/// # }
/// ```
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    if let Some(workload) = args.internal_memory_workload {
        let url = args.database_url.as_deref().ok_or_else(|| {
            BenchError::Usage("--internal-memory-workload needs --database-url".into())
        })?;
        return memory::child(url, workload, args.sizes()).await;
    }
    if args.internal_scale_worker {
        let url = args.database_url.as_deref().ok_or_else(|| {
            BenchError::Usage("--internal-scale-worker needs --database-url".into())
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
        _ = tokio::signal::ctrl_c() => Err(BenchError::Internal("interrupted".into())),
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
            .map_err(|e| BenchError::Internal(format!("cannot encode the report: {e}")))?;
        println!("{json}");
    } else {
        print!("{table}");
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, svg::render(&report))
            .map_err(|e| BenchError::io(format!("write {}", path.display()), e))?;
        eprintln!("bench: chart written to {}", path.display());
        if let Some(chart) = svg_scaling::render(&report) {
            let second = scaling_path(path);
            std::fs::write(&second, chart)
                .map_err(|e| BenchError::io(format!("write {}", second.display()), e))?;
            eprintln!(
                "bench: claims and scale chart written to {}",
                second.display()
            );
        }
    }
    Ok(())
}

/// Where the second chart goes: beside `path`, `-scaling` added to its
/// stem (`bench.svg` → `bench-scaling.svg`).
fn scaling_path(path: &std::path::Path) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "bench".into(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}-scaling.svg"))
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
        report.claims = Some(claims::run(&db, &plan, args.probes, &progress).await?);
    }
    if args.runs(Workload::List) {
        let mut sizes = args.list_rows.clone();
        sizes.sort_unstable();
        sizes.dedup();
        report.list = Some(list::run(&db, &sizes, args.probes, &progress).await?);
    }
    progress.finish();
    db.close().await?;
    report.seconds = started.elapsed().as_secs_f64();
    report.machine.finish();
    report::conclude(&mut report);
    Ok(report)
}
