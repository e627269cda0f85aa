//! `memory`: peak resident memory of each workload, measured in a child
//! process of this binary (`durable bench --internal-memory-workload X`) so
//! no workload inherits another's heap. The child resets its peak
//! (`/proc/self/clear_refs`) after set-up, runs the workload and reports its
//! peak (`VmHWM`) above the baseline (`VmRSS` at the reset).
//!
//! The `history` workload replays a workflow of 100,000 steps with 1 KB
//! outputs; its rows are bulk-inserted by the SDK
//! (`durable::scratch::seed::history`) as its checkpoints record them.

use std::time::Instant;

use clap::ValueEnum;
use durable::sea_orm::DatabaseConnection;
use durable::{Ctx, DurableError};
use serde::{Deserialize, Serialize};

use crate::error::{BenchError, Result};
use crate::progress::Progress;
use crate::target::Target;
use crate::throughput;
use crate::workflow::{self, Anchor};

/// Size of each step output in the `history` workload.
pub(crate) const OUTPUT_BYTES: usize = 1024;

/// A workload measured in a child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum MemoryWorkload {
    /// One workflow of sequential fresh steps.
    Latency,
    /// Many workflows, N at a time.
    Throughput,
    /// Replay of a completed workflow.
    Replay,
    /// Replay of a long history with 1 KB outputs.
    History,
    /// Many workflows started at once, all in flight together.
    InFlight,
}

impl MemoryWorkload {
    pub(crate) const ALL: [MemoryWorkload; 5] = [
        Self::Latency,
        Self::Throughput,
        Self::Replay,
        Self::History,
        Self::InFlight,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Latency => "latency",
            Self::Throughput => "throughput",
            Self::Replay => "replay",
            Self::History => "history",
            Self::InFlight => "in-flight",
        }
    }
}

/// Sizes of the workloads (the same flags as the timed workloads).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub(crate) steps: u32,
    pub(crate) workflows: u32,
    pub(crate) workflow_steps: u32,
    pub(crate) concurrency: usize,
    pub(crate) history_steps: u32,
    pub(crate) in_flight: u32,
}

/// What one child process measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MemorySample {
    pub(crate) workload: MemoryWorkload,
    /// What ran, in words.
    pub(crate) what: String,
    /// Resident memory when the workload began.
    pub(crate) baseline_mib: f64,
    /// Peak resident memory while it ran.
    pub(crate) peak_mib: f64,
    pub(crate) above_baseline_mib: f64,
    /// Whether the kernel reset the peak before the workload (else the
    /// peak may include set-up).
    pub(crate) peak_reset: bool,
    pub(crate) seconds: f64,
}

/// Every memory sample of a run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemoryReport {
    pub(crate) samples: Vec<MemorySample>,
}

impl MemoryReport {
    pub(crate) fn get(&self, workload: MemoryWorkload) -> Option<&MemorySample> {
        self.samples.iter().find(|s| s.workload == workload)
    }
}

/// Parent side: run each workload in a child process on the run's database.
pub(crate) async fn run(
    target: &Target,
    sizes: Sizes,
    progress: &Progress,
) -> Result<MemoryReport> {
    let exe = std::env::current_exe().map_err(|e| BenchError::io("find this program", e))?;
    let mut samples = Vec::new();
    for workload in MemoryWorkload::ALL {
        progress.phase(format!(
            "memory: {} (child process)",
            describe(workload, sizes)
        ));
        let output = tokio::process::Command::new(&exe)
            .arg("bench")
            .args(["--internal-memory-workload", workload.name()])
            .args(["--database-url", &target.url])
            .args(["--steps", &sizes.steps.to_string()])
            .args(["--workflows", &sizes.workflows.to_string()])
            .args(["--workflow-steps", &sizes.workflow_steps.to_string()])
            .args(["--concurrency", &sizes.concurrency.to_string()])
            .args(["--history-steps", &sizes.history_steps.to_string()])
            .args(["--in-flight", &sizes.in_flight.to_string()])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .await
            .map_err(|e| BenchError::io("start a memory child process", e))?;
        let child_error = |message: String| BenchError::Child {
            workload: format!("memory workload '{}'", workload.name()),
            message,
        };
        if !output.status.success() {
            return Err(child_error(format!("exited with {}", output.status)));
        }
        let sample: MemorySample = serde_json::from_slice(&output.stdout)
            .map_err(|e| child_error(format!("unreadable result: {e}")))?;
        samples.push(sample);
        progress.tick();
    }
    Ok(MemoryReport { samples })
}

fn describe(workload: MemoryWorkload, s: Sizes) -> String {
    match workload {
        MemoryWorkload::Latency => format!("1 workflow x {} steps", s.steps),
        MemoryWorkload::Throughput => format!(
            "{} workflows x {} steps, {} at a time",
            s.workflows, s.workflow_steps, s.concurrency
        ),
        MemoryWorkload::Replay => format!("replay of {} steps", s.steps),
        MemoryWorkload::History => format!(
            "replay of {} steps with {} B outputs",
            s.history_steps, OUTPUT_BYTES
        ),
        MemoryWorkload::InFlight => format!(
            "{} workflows x {} steps, all in flight",
            s.in_flight, s.workflow_steps
        ),
    }
}

/// Child side: set up, reset the peak, run, print one JSON sample on stdout.
pub(crate) async fn child(url: &str, workload: MemoryWorkload, sizes: Sizes) -> Result<()> {
    let target = Target::existing(url);
    let db = target.connect().await?;
    let anchor = Anchor::hold(&db).await?;
    let run = format!("mem-{}-{}", workload.name(), uuid::Uuid::new_v4().simple());
    // Set-up that is not part of the workload.
    match workload {
        MemoryWorkload::Replay => {
            workflow::run_workflow(&db, "bench-replay", &run, sizes.steps).await?;
        }
        MemoryWorkload::History => {
            record_history(&db, &run, sizes.history_steps).await?;
        }
        _ => {}
    }
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let baseline = status_kib("VmRSS");
    let started = Instant::now();
    match workload {
        MemoryWorkload::Latency => {
            workflow::run_workflow(&db, "bench-latency", &run, sizes.steps).await?;
        }
        MemoryWorkload::Throughput => {
            throughput::batch(
                &db,
                &run,
                sizes.concurrency,
                sizes.workflows,
                sizes.workflow_steps,
            )
            .await?;
        }
        MemoryWorkload::Replay => {
            workflow::replay_workflow(&db, "bench-replay", &run, sizes.steps).await?;
        }
        MemoryWorkload::History => replay_history(&db, &run, sizes.history_steps).await?,
        MemoryWorkload::InFlight => {
            let usize_count = usize::try_from(sizes.in_flight).unwrap_or(usize::MAX);
            throughput::batch(
                &db,
                &run,
                usize_count,
                sizes.in_flight,
                sizes.workflow_steps,
            )
            .await?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM");
    anchor.release().await?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let sample = MemorySample {
        workload,
        what: describe(workload, sizes),
        baseline_mib: mib(baseline),
        peak_mib: mib(peak),
        above_baseline_mib: mib(peak.saturating_sub(baseline)),
        peak_reset,
        seconds,
    };
    let json = serde_json::to_string(&sample)
        .map_err(|e| BenchError::Internal(format!("cannot encode the sample: {e}")))?;
    println!("{json}");
    Ok(())
}

/// A field of `/proc/self/status` in KiB (0 where there is none).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// Start the workflow with the SDK and have it record `steps` completed
/// steps `noop#i` (outputs of [`OUTPUT_BYTES`] characters) in bulk.
async fn record_history(db: &DatabaseConnection, key: &str, steps: u32) -> Result<()> {
    let ctx = Ctx::start_with_key(db, "bench-history", key, None).await?;
    let output = "x".repeat(OUTPUT_BYTES);
    durable::scratch::seed::history(db, ctx.task_id(), workflow::STEP, &output, steps).await?;
    Ok(())
}

/// Resume the workflow of [`record_history`] and replay every step through
/// the SDK, then complete it.
async fn replay_history(db: &DatabaseConnection, key: &str, steps: u32) -> Result<()> {
    let ctx = Ctx::start_with_key(db, "bench-history", key, None).await?;
    for i in 0..steps {
        let out: String = ctx
            .step(workflow::STEP, || async move {
                Err(DurableError::custom(format!(
                    "step {i} ran again on replay"
                )))
            })
            .await?;
        if out.len() != OUTPUT_BYTES {
            return Err(BenchError::Measurement(format!(
                "step {i} replayed {} bytes, not {OUTPUT_BYTES}",
                out.len()
            )));
        }
    }
    ctx.complete(&steps).await?;
    Ok(())
}
