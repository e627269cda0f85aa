//! Claiming work: one short transaction per queue that locks the queue's
//! row, measures its limits, and takes the best candidates that fit.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::error::DurableError;
use crate::step::begin_write;
use crate::store::{self, ClaimFilter, TaskRow};

/// How many more workflows fit: `free` slots of the worker, and its own
/// limit on the queue.
pub(super) fn room(free: usize, queue: Option<&Semaphore>) -> usize {
    queue.map_or(free, |q| free.min(q.available_permits()))
}

/// The permits a claimed workflow holds while it runs.
pub(super) type Permits = (Option<OwnedSemaphorePermit>, Option<OwnedSemaphorePermit>);

pub(super) fn take_permits(slots: &Arc<Semaphore>, queue: Option<&Arc<Semaphore>>) -> Permits {
    (
        slots.clone().try_acquire_owned().ok(),
        queue.and_then(|q| q.clone().try_acquire_owned().ok()),
    )
}

/// Claim up to `want` workflows of `queue` within its limits.
pub(super) async fn from_queue(
    db: &DatabaseConnection,
    me: Uuid,
    queue: &str,
    want: usize,
    filter: &ClaimFilter<'_>,
) -> Result<Vec<TaskRow>, DurableError> {
    let txn = begin_write(db).await?;
    let limits = store::lock_queue(&txn, queue)
        .await?
        .ok_or_else(|| DurableError::UnknownQueue(queue.to_string()))?;
    let mut room = i64::try_from(want).unwrap_or(i64::MAX);
    if let Some(limit) = limits.concurrency {
        room = room.min(i64::from(limit) - store::running_in_queue(&txn, queue).await?);
    }
    if let (Some(limit), Some(period)) = (limits.rate_limit, limits.rate_period_ms) {
        room = room.min(i64::from(limit) - store::started_since(&txn, queue, period).await?);
    }
    if room <= 0 {
        txn.commit().await?;
        return Ok(Vec::new());
    }
    let candidates =
        store::queue_candidates(&txn, queue, filter, room, limits.key_concurrency).await?;
    let mut claimed = Vec::new();
    for (id, _) in candidates {
        if let Some(row) = store::claim_one(&txn, id, me, filter.app_version).await? {
            claimed.push(row);
        }
    }
    txn.commit().await?;
    Ok(claimed)
}

/// Claim workflows started inline whose owner died, for executors that
/// have their function: no queue, no limits.
pub(super) async fn orphans(
    db: &DatabaseConnection,
    me: Uuid,
    want: usize,
    filter: &ClaimFilter<'_>,
) -> Result<Vec<TaskRow>, DurableError> {
    let txn = begin_write(db).await?;
    let want = i64::try_from(want).unwrap_or(i64::MAX);
    let mut claimed = Vec::new();
    for (id, _) in store::orphan_candidates(&txn, filter, want).await? {
        if let Some(row) = store::claim_one(&txn, id, me, filter.app_version).await? {
            claimed.push(row);
        }
    }
    txn.commit().await?;
    Ok(claimed)
}
