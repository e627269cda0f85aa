//! The worker's side of a claim: how much room it has, and the permits a
//! claimed workflow holds while it runs. (The claim itself is one store
//! operation per queue.)

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// The workflows this worker runs, by id, each behind a lock held for the
/// whole run: a workflow claimed again while an earlier run of it is still
/// inside a step here (possible only after this executor's lease lapsed
/// and it released its work) starts once that run ended, so no step ever
/// runs twice at once in one process.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    runs: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

impl InFlight {
    /// Wait for any earlier run of `id` in this process to end, then hold
    /// the run until the guard is dropped.
    pub(super) async fn enter(self: &Arc<Self>, id: uuid::Uuid) -> RunGuard {
        let lock = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default()
            .clone();
        RunGuard {
            _held: lock.lock_owned().await,
            id,
            in_flight: self.clone(),
        }
    }
}

/// One run of a workflow in this process (see [`InFlight`]).
pub(super) struct RunGuard {
    _held: tokio::sync::OwnedMutexGuard<()>,
    id: uuid::Uuid,
    in_flight: Arc<InFlight>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let mut runs = self
            .in_flight
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Only the map and this guard's lock hold it: nobody waits.
        if runs
            .get(&self.id)
            .is_some_and(|l| Arc::strong_count(l) <= 2)
        {
            runs.remove(&self.id);
        }
    }
}
