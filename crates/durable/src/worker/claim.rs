//! The worker's side of a claim: what it may claim (its queues, its free
//! slots), the permits a claimed workflow holds while it runs, and the
//! workflows it is running. (The claim itself is one store operation per
//! queue.)
//!
//! Two parties claim: the worker's loop fills free slots (after a wake-up,
//! a finished workflow, or the poll interval), and each run task, when its
//! workflow ends, claims the next one into the slot it still holds. So a
//! busy queue's slots are refilled in parallel, one statement each, on the
//! task that just freed them, instead of one at a time by the loop after a
//! wake-up (measured: through the queue, the loop alone capped 8 slots at
//! the rate of its serial claims).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, RwLock, Semaphore};
use uuid::Uuid;

use crate::call::Sent;
use crate::identity::ExecutorCore;
use crate::store::{ClaimFilter, WorkflowRow};

/// A queue a worker serves, and its own limit on it.
#[derive(Debug, Clone)]
pub(super) struct Served {
    pub(super) name: String,
    pub(super) slots: Option<Arc<Semaphore>>,
}

/// The permits a claimed workflow holds while it runs: a slot of the
/// worker, and one of the worker's own limit on its queue (if it has one).
pub(super) type Permits = (Option<OwnedSemaphorePermit>, Option<OwnedSemaphorePermit>);

/// The rows a claim round took, each with the permit of this worker's own
/// limit on its queue (if the queue has one).
pub(super) type Claimed = Vec<(WorkflowRow, Option<OwnedSemaphorePermit>)>;

/// A workflow claimed and registered, ready to run.
pub(super) struct Claim {
    pub(super) row: WorkflowRow,
    /// The claiming statement (it opens the first step's start window).
    pub(super) sent: Sent,
    pub(super) permits: Permits,
    pub(super) registered: Registered,
}

/// What claiming needs, shared by the worker's loop and its run tasks.
pub(super) struct Claimer {
    pub(super) executor: Arc<ExecutorCore>,
    queues: Vec<Served>,
    pub(super) slots: Arc<Semaphore>,
    /// JSON array of the registered names.
    names: String,
    app_version: Option<String>,
    any_version: bool,
    in_flight: Arc<InFlight>,
    /// A claim failed: its reply may have been lost after it made this
    /// executor the owner of work it never received.
    stray: AtomicBool,
    /// Held shared by a task's claim until its row is registered, and
    /// exclusively while stray claims are released: a row claimed but not
    /// yet registered is never taken for a stray one.
    registering: RwLock<()>,
    /// The worker is stopping: tasks claim nothing more.
    stopping: AtomicBool,
}

impl Claimer {
    pub(super) fn new(
        executor: Arc<ExecutorCore>,
        queues: Vec<Served>,
        slots: usize,
        names: String,
        (app_version, any_version): (Option<String>, bool),
    ) -> Self {
        Self {
            executor,
            queues,
            slots: Arc::new(Semaphore::new(slots)),
            names,
            app_version,
            any_version,
            in_flight: Arc::default(),
            stray: AtomicBool::new(false),
            registering: RwLock::new(()),
            stopping: AtomicBool::new(false),
        }
    }

    fn filter(&self) -> ClaimFilter<'_> {
        ClaimFilter {
            names: &self.names,
            app_version: self.app_version.as_deref(),
            any_version: self.any_version,
        }
    }

    /// The worker is stopping: run tasks claim nothing more.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// A claim failed: renew the lease now, and have the loop give back
    /// whatever this executor owns and does not run.
    fn failed(&self) {
        self.executor.nudge_heartbeat();
        self.stray.store(true, Ordering::SeqCst);
    }

    /// Claim what there is room for in every served queue, and (with
    /// `orphans`) inline roots to take over, within one budget of free
    /// slots, and whether any claim failed. Errors are logged: the next
    /// round tries again.
    // A short trace of its own at debug level: a round runs every poll
    // interval, mostly claiming nothing.
    #[tracing::instrument(name = "claim", parent = None, level = "debug", skip_all, fields(claimed = tracing::field::Empty))]
    pub(super) async fn round(&self, orphans: bool) -> (Claimed, bool) {
        let mut claimed = Vec::new();
        let mut failed = false;
        let me = self.executor.id;
        let store = &self.executor.store;
        let filter = self.filter();
        let mut free = self.slots.available_permits();
        for queue in &self.queues {
            // This worker's own limit on the queue: its permits are taken
            // before the claim (a run task may take one meanwhile), and
            // those left over given back.
            let mut permits = Vec::new();
            if let Some(limit) = &queue.slots {
                while permits.len() < free {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        break;
                    };
                    permits.push(Some(permit));
                }
            }
            let room = if queue.slots.is_some() {
                permits.len()
            } else {
                free
            };
            if room == 0 {
                continue;
            }
            match store.claim_from_queue(&queue.name, me, room, &filter).await {
                Ok(rows) => {
                    free -= rows.len().min(free);
                    permits.resize_with(rows.len(), || None);
                    claimed.extend(rows.into_iter().zip(permits));
                }
                Err(err) => {
                    failed = true;
                    tracing::warn!(queue = %queue.name, error = %err, "claim failed");
                }
            }
        }
        if orphans && free > 0 {
            match store.claim_orphans(me, free, &filter).await {
                Ok(rows) => claimed.extend(rows.into_iter().map(|row| (row, None))),
                Err(err) => {
                    failed = true;
                    tracing::warn!(error = %err, "claiming orphaned workflows failed");
                }
            }
        }
        if failed {
            self.failed();
        }
        for (row, _) in &claimed {
            note_claimed(row);
        }
        if !claimed.is_empty() {
            tracing::Span::current().record("claimed", claimed.len());
        }
        (claimed, failed)
    }

    /// Register a row the loop's round claimed, with a slot for it (run
    /// tasks only reuse their own, so the round's free slots are there).
    pub(super) fn accept(
        &self,
        (row, queue_permit): (WorkflowRow, Option<OwnedSemaphorePermit>),
        sent: Sent,
    ) -> Claim {
        let permits = (self.slots.clone().try_acquire_owned().ok(), queue_permit);
        let registered = self.in_flight.register(row.id);
        Claim {
            row,
            sent,
            permits,
            registered,
        }
    }

    /// The next workflow for the slot a run task holds (its workflow has
    /// ended): the best one of the first served queue that has one and
    /// room under this worker's limit on it, as the loop would pick for
    /// one free slot. Nothing when the worker is stopping, its lease is
    /// not proven, or no queue has work; the slot is then given back and
    /// the loop learns of it. Inline roots to take over are the loop's.
    pub(super) async fn next(&self, (slot, queue_permit): Permits) -> Option<Claim> {
        drop(queue_permit);
        let slot = slot?;
        if self.stopping.load(Ordering::SeqCst)
            || self.executor.is_draining()
            || !self.executor.lease_proven()
        {
            return None;
        }
        let _registering = self.registering.read().await;
        let filter = self.filter();
        for queue in &self.queues {
            let queue_permit = match &queue.slots {
                Some(limit) => match limit.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => continue,
                },
                None => None,
            };
            let sent = Sent::now(&self.executor);
            match self
                .executor
                .store
                .claim_next(&queue.name, self.executor.id, &filter)
                .await
            {
                Ok(row) => {
                    if let Some(row) = row {
                        note_claimed(&row);
                        tracing::debug!(queue = %queue.name, "claimed the next workflow");
                        let registered = self.in_flight.register(row.id);
                        return Some(Claim {
                            row,
                            sent,
                            permits: (Some(slot), queue_permit),
                            registered,
                        });
                    }
                }
                Err(err) => {
                    tracing::warn!(queue = %queue.name, error = %err, "claim failed");
                    self.failed();
                    return None;
                }
            }
        }
        None
    }

    /// After a failed claim: give back the workflows this executor owns
    /// but does not run (a claim whose reply was lost). Tried again after
    /// the next round if it fails.
    pub(super) async fn release_stray(&self) {
        if !self.stray.swap(false, Ordering::SeqCst) {
            return;
        }
        let _no_claim_unregistered = self.registering.write().await;
        let ids = self.in_flight.ids();
        match self
            .executor
            .store
            .release_stray(self.executor.id, &ids)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "released work claimed without an answer"),
            Err(err) => {
                self.stray.store(true, Ordering::SeqCst);
                tracing::warn!(error = %err, "releasing stray claims failed");
            }
        }
    }
}

/// Record a claim in the metrics: the lag of a first claim only (a row
/// woken, retried or taken over has no record of when it became claimable
/// again).
fn note_claimed(row: &WorkflowRow) {
    let lag = (row.attempts == 1).then(|| {
        let due_ms = row
            .available_ms
            .unwrap_or(row.created_ms)
            .max(row.created_ms);
        Duration::from_millis(u64::try_from(epoch_ms_now() - due_ms).unwrap_or(0))
    });
    crate::telemetry::claimed(row.queue.as_deref(), lag);
}

/// This process's clock, in epoch milliseconds: for the claim lag metric
/// only (leases and deadlines use the database clock).
fn epoch_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
