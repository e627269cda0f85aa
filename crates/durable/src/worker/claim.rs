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
