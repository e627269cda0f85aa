//! `replay`: re-running a completed workflow. Every step returns its
//! recorded output; the time is compared with that of 20 fresh steps, and
//! the statements of the whole replay are counted.

use std::time::Instant;

use durable::Ctx;
use durable::sea_orm::DatabaseConnection;
use serde::Serialize;

use crate::counted::Counted;
use crate::drive::micros;
use crate::error::Result;
use crate::progress::Progress;
use crate::stats::Spread;
use crate::target::Target;
use crate::workflow::{self, Anchor};

/// Fresh steps the replay is compared with.
pub(crate) const FRESH_STEPS: u32 = 20;

/// Replaying a completed workflow.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReplayReport {
    /// Steps of the replayed workflow.
    pub(crate) steps: u32,
    /// Whole replay (start, every step, complete) ÷ steps.
    pub(crate) us_per_replayed_step: Spread,
    pub(crate) replay_ms: Spread,
    /// Time of [`FRESH_STEPS`] fresh steps of a new workflow.
    pub(crate) fresh_ms: Spread,
    pub(crate) fresh_steps: u32,
    /// Median replay time ÷ median time of the fresh steps (target < 1).
    pub(crate) ratio_to_fresh: f64,
    /// Statements of the whole replay (exact).
    pub(crate) statements: u64,
    /// Round trips on the wire for the whole replay (PostgreSQL).
    pub(crate) round_trips: Option<u64>,
}

/// Record a workflow of `steps` steps, then replay it `repeat` times on a
/// counted pool; time 20 fresh steps beside each replay.
pub(crate) async fn run(
    target: &Target,
    db: &DatabaseConnection,
    steps: u32,
    repeat: usize,
    progress: &Progress,
) -> Result<ReplayReport> {
    progress.phase(format!("replay: recording a {steps}-step workflow"));
    let run = uuid::Uuid::new_v4().simple().to_string();
    let key = format!("replay-{run}");
    workflow::run_workflow(db, "bench-replay", &key, steps).await?;
    let counted = Counted::open(target).await?;
    let anchor = Anchor::hold(&counted.db).await?;
    // Untimed first replay: the connection prepares its statements.
    workflow::replay_workflow(&counted.db, "bench-replay", &key, steps).await?;
    progress.tick();
    progress.phase(format!(
        "replay: {steps} replayed steps vs {FRESH_STEPS} fresh"
    ));
    let (mut replay_ms, mut fresh_ms) = (Vec::new(), Vec::new());
    let mut last = None;
    for rep in 0..repeat {
        let fresh =
            Ctx::start_with_key(db, "bench-fresh", &format!("fresh-{run}-{rep}"), None).await?;
        let started = Instant::now();
        workflow::fresh_steps(&fresh, FRESH_STEPS).await?;
        fresh_ms.push(micros(started.elapsed()) / 1e3);
        fresh.complete(&FRESH_STEPS).await?;

        let before = counted.counts();
        let started = Instant::now();
        workflow::replay_workflow(&counted.db, "bench-replay", &key, steps).await?;
        replay_ms.push(micros(started.elapsed()) / 1e3);
        last = Some(counted.counts().since(before));
        progress.tick();
    }
    anchor.release().await?;
    let counts = last.unwrap_or_default();
    let replay = Spread::of(&replay_ms);
    let fresh = Spread::of(&fresh_ms);
    Ok(ReplayReport {
        steps,
        us_per_replayed_step: replay.map(|ms| ms * 1e3 / f64::from(steps)),
        replay_ms: replay,
        fresh_ms: fresh,
        fresh_steps: FRESH_STEPS,
        ratio_to_fresh: replay.median / fresh.median,
        statements: counts.statements,
        round_trips: counts.round_trips,
    })
}
