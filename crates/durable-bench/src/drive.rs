//! Running a numbered batch of jobs on N concurrent tasks, and timing it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::error::{BenchError, Result};

/// Run jobs `0..count` on `concurrency` tokio tasks, each task taking the
/// next job number when it is free. Returns the wall time of the batch.
///
/// # Errors
/// The first job that fails (the other tasks are stopped).
pub(crate) async fn concurrently<F, Fut>(concurrency: usize, count: u32, job: F) -> Result<Duration>
where
    F: Fn(u32) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let next = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (next, job) = (next.clone(), job.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok(());
                }
                job(i).await?;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| BenchError::Internal(format!("a bench task stopped: {e}")))??;
    }
    Ok(started.elapsed())
}

/// Microseconds in a duration, as a float.
pub(crate) fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
