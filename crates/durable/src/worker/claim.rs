//! The worker's side of a claim: how much room it has, and the permits a
//! claimed workflow holds while it runs. (The claim itself is one store
//! operation per queue.)

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

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
/// runs twice at once in one process. Registered when claimed (before the
/// task runs), so [`InFlight::ids`] is what this worker is responsible for.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    runs: std::sync::Mutex<BTreeMap<Uuid, Run>>,
}

/// The runs of one workflow here: how many are registered, and the lock
/// they take turns on.
#[derive(Debug, Default)]
struct Run {
    registered: usize,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl InFlight {
    /// Register a run of `id` now; [`Registered::turn`] waits for any
    /// earlier one to end.
    pub(super) fn register(self: &Arc<Self>, id: Uuid) -> Registered {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let run = runs.entry(id).or_default();
        run.registered += 1;
        Registered {
            turn: run.turn.clone(),
            id,
            in_flight: self.clone(),
        }
    }

    /// The workflows registered here.
    pub(super) fn ids(&self) -> Vec<Uuid> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.keys().copied().collect()
    }
}

/// A registered run of a workflow (see [`InFlight`]); dropping it
/// unregisters it.
pub(super) struct Registered {
    turn: Arc<tokio::sync::Mutex<()>>,
    id: Uuid,
    in_flight: Arc<InFlight>,
}

impl Registered {
    /// Wait until no earlier run of the workflow is running here; the
    /// guard holds the turn.
    pub(super) async fn turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.turn.clone().lock_owned().await
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut runs = self
            .in_flight
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(run) = runs.get_mut(&self.id) {
            run.registered -= 1;
            if run.registered == 0 {
                runs.remove(&self.id);
            }
        }
    }
}
