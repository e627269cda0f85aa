//! `latency`: one workflow of sequential no-op steps; the time of a fresh
//! step, to compare with one insert + commit (the floor at 1 connection).

use std::time::Instant;

use durable::Ctx;
use durable::sea_orm::DatabaseConnection;
use serde::Serialize;

use crate::drive::micros;
use crate::error::Result;
use crate::stats::Spread;
use crate::workflow;

/// Sequential fresh steps.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LatencyReport {
    /// Steps per workflow.
    pub(crate) steps: u32,
    pub(crate) us_per_step: Spread,
    /// Median over runs of (µs per step / µs per insert + commit at 1
    /// connection), each run measuring both back to back.
    pub(crate) ratio_to_floor: Option<f64>,
    /// The same against one insert + commit on a bare connection (no pool).
    pub(crate) ratio_to_bare: Option<f64>,
}

/// One workflow of `steps` fresh steps; µs per step (the steps only, not
/// the start and completion of the workflow).
pub(crate) async fn sample(db: &DatabaseConnection, key: &str, steps: u32) -> Result<f64> {
    let ctx = Ctx::start_with_key(db, "bench-latency", key, None).await?;
    let started = Instant::now();
    workflow::fresh_steps(&ctx, steps).await?;
    let us = micros(started.elapsed()) / f64::from(steps);
    ctx.complete(&steps).await?;
    Ok(us)
}
