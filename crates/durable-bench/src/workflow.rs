//! The workflows every workload runs: no-op steps that return a small value.

use durable::sea_orm::DatabaseConnection;
use durable::{Ctx, DurableError};

/// The step name; the n-th call is recorded as `noop#n` at position n.
pub(crate) const STEP: &str = "noop";

/// Run `n` fresh steps; step i returns i.
pub(crate) async fn fresh_steps(ctx: &Ctx, n: u32) -> Result<(), DurableError> {
    for i in 0..n {
        let _: u32 = ctx.step(STEP, || async move { Ok(i) }).await?;
    }
    Ok(())
}

/// Replay `n` recorded steps of [`fresh_steps`]; a step body that runs, or
/// a value that differs, is an error (the bench must measure replay).
pub(crate) async fn replay_steps(ctx: &Ctx, n: u32) -> Result<(), DurableError> {
    for i in 0..n {
        let v: u32 = ctx
            .step(STEP, || async move {
                Err(DurableError::custom(format!(
                    "step {i} ran again on replay"
                )))
            })
            .await?;
        if v != i {
            return Err(DurableError::custom(format!(
                "step {i} replayed {v} instead of {i}"
            )));
        }
    }
    Ok(())
}

/// Start a root workflow, run `n` fresh steps and complete it.
pub(crate) async fn run_workflow(
    db: &DatabaseConnection,
    name: &str,
    key: &str,
    n: u32,
) -> Result<(), DurableError> {
    let ctx = Ctx::start_with_key(db, name, key, None).await?;
    fresh_steps(&ctx, n).await?;
    ctx.complete(&n).await
}

/// Re-run a completed workflow of [`run_workflow`]: every step replays.
pub(crate) async fn replay_workflow(
    db: &DatabaseConnection,
    name: &str,
    key: &str,
    n: u32,
) -> Result<(), DurableError> {
    let ctx = Ctx::start_with_key(db, name, key, None).await?;
    replay_steps(&ctx, n).await?;
    ctx.complete(&n).await
}

/// An unfinished workflow held open on a pool, so that the process's
/// executor for that pool stays registered between the measured workflows,
/// as it does in a long-running service. (`Ctx::start` registers the
/// executor on first use and drops it with the last `Ctx` of the pool.)
pub(crate) struct Anchor(Ctx);

impl Anchor {
    pub(crate) async fn hold(db: &DatabaseConnection) -> Result<Self, DurableError> {
        let key = format!("bench-anchor-{}", uuid::Uuid::new_v4().simple());
        Ok(Self(
            Ctx::start_with_key(db, "bench-anchor", &key, None).await?,
        ))
    }

    /// Finish the anchor workflow (and let the executor go).
    pub(crate) async fn release(self) -> Result<(), DurableError> {
        self.0.complete(&()).await
    }
}
