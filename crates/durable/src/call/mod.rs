//! The one protocol every durable call goes through (step, retry step,
//! transaction, child, wait; later sleep, recv, send, spawn):
//!
//! 1. **take** the next position and the call's key (`name#n`), in call
//!    order, synchronously;
//! 2. **check**: the history at that position, and if it does not settle
//!    the call, the one read of the store (which a root's step skips in
//!    its start window, see [`window`]);
//! 3. **decide** ([`decide`], a pure function): replay, run, or refuse;
//! 4. **commit** the outcome, fenced by the lease;
//! 5. **refuse**: a commit the store turned down is read back and decided
//!    again (another writer's result stands, or the lease is gone).

pub(crate) mod decide;
mod window;

#[cfg(feature = "testing")]
pub(crate) use window::set_start_window;
pub(crate) use window::{Sent, StartWindow, outlast};

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::codec;
use crate::ctx::Ctx;
use crate::error::DurableError;
use crate::identity::Proof;
use crate::status::{Status, StepKind};
use crate::store::{Check, Checkpoint, Entry};
use decide::{Decision, Refusal};

/// Identity of one call inside a workflow.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) name: String,
    /// `name#n`: the n-th call of this name in the workflow.
    pub(crate) key: String,
    pub(crate) position: i32,
    pub(crate) kind: StepKind,
}

/// Hands out positions and keys, in call order.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    next_position: AtomicI32,
    by_name: Mutex<HashMap<String, u32>>,
}

impl Calls {
    pub(crate) fn next_position(&self) -> i32 {
        self.next_position.fetch_add(1, Ordering::SeqCst)
    }

    /// The position the next call will take, without taking it.
    pub(crate) fn peek_position(&self) -> i32 {
        self.next_position.load(Ordering::SeqCst)
    }

    fn take(&self, name: &str, kind: StepKind) -> Call {
        let position = self.next_position();
        let n = {
            let mut by_name = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
            let counter = by_name.entry(name.to_string()).or_insert(0);
            let n = *counter;
            *counter += 1;
            n
        };
        Call {
            name: name.to_string(),
            key: format!("{name}#{n}"),
            position,
            kind,
        }
    }
}

/// A call that may run: the database time of the check, its unfinished
/// entry if it has one, and the proof of the lease the check was read under.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) started_ms: i64,
    pub(crate) entry: Option<Entry>,
    pub(crate) proof: Proof,
}

/// What [`Ctx::prepare`] decided.
#[derive(Debug)]
pub(crate) enum Prepared {
    Replay(Entry),
    Run(Run),
}

/// How many times a call reads its check again when the answers keep
/// arriving after the proven lease.
const STALE_CHECKS: usize = 3;

impl Ctx {
    /// Step 1: the call's identity, synchronously, so concurrent calls are
    /// numbered in call order.
    pub(crate) fn take(&self, name: &str, kind: StepKind) -> Result<Call, DurableError> {
        codec::check_name("step", name)?;
        Ok(self.calls.take(name, kind))
    }

    /// Steps 2 and 3: the history first (no round trip in practice), then
    /// the one read.
    pub(crate) async fn prepare(&self, call: &Call) -> Result<Prepared, DurableError> {
        self.prepare_in(call, false).await
    }

    /// [`Ctx::prepare`] for a call's first preparation, which may start in
    /// the start window without the read ([`window`]). A call that wrote
    /// at its position already (a step between retries) must not: only
    /// the read returns what it wrote.
    pub(crate) async fn prepare_first(&self, call: &Call) -> Result<Prepared, DurableError> {
        self.prepare_in(call, true).await
    }

    async fn prepare_in(&self, call: &Call, first: bool) -> Result<Prepared, DurableError> {
        let found = self
            .history
            .take(self.store.as_ref(), call.position)
            .await?;
        if let Some(decision) = decide::from_history(call, &found) {
            return self.decided(call, decision);
        }
        // A handle that may not write refuses without a read.
        if self.lease.is_none() {
            return Err(self.refusal(call, Refusal::Finished(self.found.status)));
        }
        // Nothing recorded here when the history was read, and only this
        // handle writes while our lease holds: a call in the window may
        // start.
        if first
            && self.is_root()
            && matches!(found, decide::AtPosition::Nothing)
            && !self.executor.is_draining()
            && let Some((started_ms, proof)) = self.window.admits(&self.executor)
            && self
                .handle
                .as_ref()
                .is_some_and(crate::identity::Handle::sole)
        {
            tracing::trace!(workflow.id = %self.id, step = %call.key, "starts in the window");
            return Ok(Prepared::Run(Run {
                started_ms,
                entry: None,
                proof,
            }));
        }
        // A paused tree refuses the call; a workflow that waits for the
        // resume reads the check again until then (or its deadline).
        let waits = self.pause_deadline();
        let mut backoff = crate::ctx::Backoff::new();
        loop {
            let (check, proof) = self.check_under_lease(call).await?;
            tracing::debug!(
                workflow.id = %self.id,
                step = %call.key,
                holder_epoch = ?check.as_ref().map(|c| c.holder_epoch),
                our_epoch = ?self.lease.as_ref().map(|l| l.epoch),
                entry = ?check.as_ref().and_then(|c| c.entry.as_ref()).map(|e| e.status),
                "checked"
            );
            let decision = decide::from_check(
                call,
                self.lease.as_ref(),
                check.as_ref(),
                self.executor.is_draining(),
            );
            if let (Decision::Refuse(Refusal::Paused), Some(until)) = (&decision, waits)
                && tokio::time::Instant::now() < until
            {
                backoff.pause(until).await;
                continue;
            }
            return match self.decided(call, decision)? {
                Prepared::Run(run) => Ok(Prepared::Run(Run { proof, ..run })),
                replay => Ok(replay),
            };
        }
    }

    /// Whether the check behind `run` still stands: the proof it was read
    /// under still holds, so nobody can have taken the workflow over since.
    /// A body that does not start right after its check (a transaction
    /// step waits to open its transaction, which on a busy SQLite file or a
    /// silent connection can take longer than a lease) asks this first, and
    /// checks again if it does not.
    pub(crate) fn still_under_lease(&self, run: &Run) -> bool {
        self.executor.holds(&run.proof)
    }

    /// The check read, sent under a proven lease and answered before that
    /// proof ran out (no round trip: the beats' answers tell). An answer
    /// that arrives later (a reply held up by a silent connection, a
    /// stalled process), or after the lease lapsed, may be stale: another
    /// executor may have taken the workflow over and finished this call
    /// since it was read. It is read again, a few times at most.
    async fn check_under_lease(&self, call: &Call) -> Result<(Option<Check>, Proof), DurableError> {
        for _ in 0..STALE_CHECKS {
            self.executor.await_proven_lease().await?;
            let proof = self.executor.proof();
            let check = self
                .store
                .check(self.id, self.is_root(), self.holder(), call.position)
                .await?;
            // The proof in force when the read was sent still holds: the
            // lease was live when the read ran, and nobody can have taken
            // the workflow over before the proof runs out.
            if self.executor.holds(&proof) {
                return Ok((check, proof));
            }
            tracing::debug!(workflow.id = %self.id, step = %call.key, "check answered after the proven lease; reading again");
        }
        Err(DurableError::Interrupted(format!(
            "executor {} could not read the state of workflow {} within its proven lease",
            self.executor.id, self.id
        )))
    }

    fn decided(&self, call: &Call, decision: Decision) -> Result<Prepared, DurableError> {
        match decision {
            Decision::Replay(entry) => Ok(Prepared::Replay(entry)),
            Decision::Run { started_ms, entry } => Ok(Prepared::Run(Run {
                started_ms,
                entry,
                proof: self.executor.proof(),
            })),
            Decision::Refuse(refusal) => Err(self.refusal(call, refusal)),
        }
    }

    /// Step 4: a checkpoint of this call with our lease.
    pub(crate) fn checkpoint<'a>(
        &self,
        call: &'a Call,
        status: Status,
        output: Option<String>,
        error: Option<String>,
        started_ms: i64,
    ) -> Result<Checkpoint<'a>, DurableError> {
        let lease = self
            .lease
            .ok_or_else(|| self.refusal(call, Refusal::Finished(self.found.status)))?;
        Ok(Checkpoint {
            workflow: self.id,
            position: call.position,
            key: &call.key,
            name: &call.name,
            kind: call.kind,
            status,
            output,
            error,
            retry_count: 0,
            max_retries: 0,
            wake_ms: None,
            child: None,
            started_ms,
            lease,
        })
    }

    /// Steps 4 and 5: commit; if refused, read the entry back and decide.
    /// `Ok(None)` when our write stands. What the write saw of a root
    /// opens its start window.
    pub(crate) async fn commit(
        &self,
        call: &Call,
        checkpoint: &Checkpoint<'_>,
    ) -> Result<Option<Entry>, DurableError> {
        let sent = Sent::now(&self.executor);
        if let Some(seen) = self.store.commit(checkpoint).await? {
            if self.is_root() {
                self.window.saw(sent, &seen);
            }
            return Ok(None);
        }
        self.refused(call).await.map(Some)
    }

    /// Step 5: the store turned a write down. The entry read back decides:
    /// another writer's result (returned, to replay), or an error.
    pub(crate) async fn refused(&self, call: &Call) -> Result<Entry, DurableError> {
        let entry = self.store.entry(self.id, call.position).await?;
        self.winner(call, entry.as_ref())
    }

    /// The entry another writer put at our position: ours to replay if it
    /// is this call finished, an error otherwise.
    pub(crate) fn winner(&self, call: &Call, entry: Option<&Entry>) -> Result<Entry, DurableError> {
        match decide::after_refused_commit(call, entry) {
            Decision::Replay(entry) => Ok(entry),
            Decision::Refuse(refusal) => Err(self.refusal(call, refusal)),
            Decision::Run { .. } => Err(self.refusal(call, Refusal::LeaseLost)),
        }
    }

    /// The error a refusal means to the caller.
    pub(crate) fn refusal(&self, call: &Call, refusal: Refusal) -> DurableError {
        let workflow = self.id;
        match refusal {
            Refusal::Cancelled => DurableError::Cancelled(format!(
                "workflow {workflow} is cancelled; step '{}' did not start",
                call.key
            )),
            Refusal::Paused => DurableError::Paused(format!(
                "workflow {workflow} is paused; step '{}' did not start",
                call.key
            )),
            Refusal::DeadlinePassed { ago_ms } => DurableError::Timeout(format!(
                "deadline of workflow {workflow} passed {ago_ms} ms ago; step '{}' did not start",
                call.key
            )),
            Refusal::Finished(Status::Cancelled) => DurableError::Cancelled(format!(
                "workflow {workflow} is cancelled; step '{}' did not start",
                call.key
            )),
            Refusal::Finished(Status::Failed) => DurableError::InvalidTransition {
                task: workflow,
                status: Status::Failed.as_str().to_string(),
                action: "start a step in",
            },
            Refusal::Finished(status) => DurableError::NonDeterminism {
                workflow,
                step: call.key.clone(),
                detail: format!(
                    "the workflow is already {} and has no record of this call",
                    status.as_str()
                ),
            },
            Refusal::LeaseLost => {
                crate::telemetry::lease_lost();
                DurableError::LeaseLost { workflow }
            }
            Refusal::NotFound => DurableError::NotFound(workflow),
            Refusal::Draining => DurableError::Interrupted(format!(
                "executor {} is shutting down; step '{}' of workflow {workflow} did not start",
                self.executor.id, call.key
            )),
            Refusal::KindMismatch { recorded } => DurableError::NonDeterminism {
                workflow,
                step: call.key.clone(),
                detail: format!(
                    "recorded as a {} but called as a {}",
                    recorded.as_str(),
                    call.kind.as_str()
                ),
            },
            Refusal::Moved { recorded } => DurableError::NonDeterminism {
                workflow,
                step: call.key.clone(),
                detail: format!(
                    "the history has '{recorded}' at position {}; was a step renamed or inserted?",
                    call.position
                ),
            },
        }
    }
}
