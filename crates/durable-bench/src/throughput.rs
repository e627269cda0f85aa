//! `throughput`: many short workflows, N at a time: inline (each a tokio
//! task with its own `Ctx::start_with_key`) and through the queue (enqueued,
//! then claimed and run by a `Worker` with N slots): steps and workflows per
//! second, to compare with the floor's inserts per second at the same
//! concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use durable::sea_orm::DatabaseConnection;
use durable::{Ctx, EnqueueOptions, Registry, Worker};
use serde::Serialize;
use tokio::sync::Notify;

use crate::drive;
use crate::error::{BenchError, Result};
use crate::stats::Spread;
use crate::workflow;

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
    /// The same workflows through the queue, run by a worker with as many
    /// slots (timed from the worker's start; enqueueing is not timed).
    pub(crate) queue_steps_per_s: Spread,
    pub(crate) queue_workflows_per_s: Spread,
    pub(crate) queue_ratio_to_floor: Option<f64>,
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

/// One batch through the queue: `workflows` workflows are enqueued (not
/// timed), then a [`Worker`] with `concurrency` slots claims and runs them.
/// Timed from the worker's start until the last workflow has run its steps;
/// returns (steps per second, workflows per second).
pub(crate) async fn queue_sample(
    db: &DatabaseConnection,
    prefix: &str,
    concurrency: usize,
    workflows: u32,
    steps: u32,
) -> Result<(f64, f64)> {
    let done = Arc::new(AtomicU32::new(0));
    let all_done = Arc::new(Notify::new());
    let mut registry = Registry::new();
    {
        let (done, all_done) = (done.clone(), all_done.clone());
        registry.register("bench-queue", move |ctx: Ctx, steps: u32| {
            let (done, all_done) = (done.clone(), all_done.clone());
            async move {
                workflow::fresh_steps(&ctx, steps).await?;
                if done.fetch_add(1, Ordering::SeqCst) + 1 == workflows {
                    all_done.notify_one();
                }
                Ok(steps)
            }
        });
    }
    let worker = Worker::new(db, registry)
        .concurrency(concurrency)
        .poll_interval(Duration::from_millis(10));
    let client = worker.client();
    let mut handles = Vec::new();
    for i in 0..workflows {
        let options = EnqueueOptions::new().key(format!("{prefix}-{i}"));
        handles.push(client.enqueue("bench-queue", &steps, options).await?);
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    all_done.notified().await;
    let secs = started.elapsed().as_secs_f64();
    for handle in &handles {
        let _: u32 = handle.result(Duration::from_secs(120)).await?;
    }
    let _ = stop.send(());
    running
        .await
        .map_err(|e| BenchError::Internal(format!("the bench worker stopped: {e}")))??;
    Ok((
        f64::from(workflows) * f64::from(steps) / secs,
        f64::from(workflows) / secs,
    ))
}
