//! `throughput`: many short workflows, N at a time (each a tokio task with
//! its own `Ctx::start_with_key`): steps and workflows per second, to
//! compare with the floor's inserts per second at the same concurrency.

use durable::sea_orm::DatabaseConnection;
use serde::Serialize;

use super::drive;
use super::stats::Spread;
use super::workflow;
use crate::error::Result;

/// Throughput at one concurrency level.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ThroughputLevel {
    /// Workflows running at once.
    pub(crate) concurrency: usize,
    /// Steps of all workflows / wall time (starting and completing each
    /// workflow included in the time).
    pub(crate) steps_per_s: Spread,
    pub(crate) workflows_per_s: Spread,
    /// Median over runs of (steps/s / floor inserts/s at the same
    /// concurrency), each run measuring both back to back.
    pub(crate) ratio_to_floor: Option<f64>,
}

/// Throughput at every level measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ThroughputReport {
    pub(crate) workflows: u32,
    pub(crate) steps_per_workflow: u32,
    pub(crate) levels: Vec<ThroughputLevel>,
}

impl ThroughputReport {
    pub(crate) fn at(&self, concurrency: usize) -> Option<&ThroughputLevel> {
        self.levels.iter().find(|l| l.concurrency == concurrency)
    }
}

/// One batch: (steps per second, workflows per second).
pub(crate) async fn sample(
    db: &DatabaseConnection,
    prefix: &str,
    concurrency: usize,
    workflows: u32,
    steps: u32,
) -> Result<(f64, f64)> {
    let secs = batch(db, prefix, concurrency, workflows, steps)
        .await?
        .as_secs_f64();
    Ok((
        f64::from(workflows) * f64::from(steps) / secs,
        f64::from(workflows) / secs,
    ))
}

/// `workflows` workflows of `steps` steps, `concurrency` at a time; the
/// wall time.
pub(crate) async fn batch(
    db: &DatabaseConnection,
    prefix: &str,
    concurrency: usize,
    workflows: u32,
    steps: u32,
) -> Result<std::time::Duration> {
    let (db, prefix) = (db.clone(), prefix.to_string());
    drive::concurrently(concurrency, workflows, move |i| {
        let (db, key) = (db.clone(), format!("{prefix}-{i}"));
        async move {
            workflow::run_workflow(&db, "bench-throughput", &key, steps).await?;
            Ok(())
        }
    })
    .await
}
