//! The command line of `durable bench`: which workloads run, at which
//! sizes, and the hidden flags of its child processes.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::memory::{MemoryWorkload, Sizes};

/// Arguments of `durable bench`: a clap [`Args`](clap::Args) struct, for
/// the CLI to take as its `bench` subcommand and hand to [`crate::run`].
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// PostgreSQL to measure (a fresh schema is made for the run and dropped
    /// after it). Without it, a fresh SQLite file in a temp directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// Measure a fresh SQLite file even when DATABASE_URL is set.
    #[arg(long)]
    pub(crate) sqlite: bool,
    /// Workloads to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) only: Vec<Workload>,
    /// Measurements of each figure; the median and the range are printed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) repeat: u32,
    /// Concurrent connections (floor) and workflows (throughput) of the table.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) concurrency: u32,
    /// Concurrency levels of the throughput chart, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub(crate) levels: Vec<u32>,
    /// Print one JSON document on stdout (the table goes to stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// Write a chart of latency and throughput vs the floor to this SVG file.
    #[arg(long, value_name = "PATH")]
    pub(crate) svg: Option<PathBuf>,
    /// Keep the run's schema or SQLite file instead of removing it.
    #[arg(long)]
    pub(crate) keep: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Steps of the latency and replay workflows (and of the cost windows).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) steps: u32,
    /// Workflows per throughput measurement.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) workflows: u32,
    /// Steps of each throughput workflow.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) workflow_steps: u32,
    /// Inserts per floor measurement.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) floor_inserts: u32,
    /// Steps of the long history replayed by the memory workload.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) history_steps: u32,
    /// Workflows in flight at once in the memory workload.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) in_flight: u32,
    /// Workflows that sleep at once in the primitives workload.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) sleepers: u32,
    /// Seconds over which the sleepers' wake-up times are spread.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) wake_window: u64,
    /// Claims workload: workflows waiting on one busy key, comma-separated sizes.
    #[arg(long, value_delimiter = ',', default_value = "0,1000,10000,100000")]
    pub(crate) backlogs: Vec<u64>,
    /// Claims workload: workflows queued ahead (for another function), sizes.
    #[arg(long, value_delimiter = ',', default_value = "0,100000")]
    pub(crate) queued: Vec<u64>,
    /// Claims workload: finished workflows in the tables, sizes.
    #[arg(long, value_delimiter = ',', default_value = "0,1000000")]
    pub(crate) finished: Vec<u64>,
    /// List workload: finished workflows in the tables, comma-separated
    /// sizes (the figures: 1000000,10000000).
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    pub(crate) list_rows: Vec<u64>,
    /// Workflows timed at each backlog size of the claims workload (and
    /// pages of each kind in the list workload).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) probes: u32,
    /// Scale workload: numbers of worker processes, comma-separated (each
    /// has --concurrency slots).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub(crate) processes: Vec<usize>,
    /// Internal: run a worker of the scale workload until stdin closes.
    #[arg(long, hide = true)]
    pub(crate) internal_scale_worker: bool,
    /// Internal: run one memory workload in this process on --database-url
    /// and print its sample (used by the memory workload's child processes).
    #[arg(long, value_enum, hide = true)]
    pub(crate) internal_memory_workload: Option<MemoryWorkload>,
}

/// A workload of `durable bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
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
    pub(crate) fn runs(&self, workload: Workload) -> bool {
        self.only.is_empty() || self.only.contains(&workload)
    }

    pub(crate) fn concurrency(&self) -> usize {
        self.concurrency as usize
    }

    pub(crate) fn sizes(&self) -> Sizes {
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
    pub(crate) fn throughput_levels(&self) -> Vec<usize> {
        let mut levels: Vec<usize> = self.levels.iter().map(|&l| l.max(1) as usize).collect();
        levels.push(self.concurrency());
        levels.sort_unstable();
        levels.dedup();
        levels
    }

    /// Floor levels: 1 (for latency) and those of throughput.
    pub(crate) fn floor_levels(&self) -> Vec<usize> {
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
    pub(crate) fn measurements(&self) -> u64 {
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
