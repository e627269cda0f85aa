//! The decision of the call protocol: a pure function of what the history
//! and the one read returned. No database here, so every branch is tested
//! below without one.

use crate::status::{Status, StepKind};
use crate::store::{Check, Entry, Lease};

use super::Call;

/// What the history holds at one call position.
#[derive(Debug)]
pub(crate) enum AtPosition {
    /// Nothing was recorded there: the call is new.
    Nothing,
    /// An entry at this position (its key may still differ).
    Recorded(Entry),
}

/// Why a call may not run. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The workflow or an ancestor is cancelled.
    Cancelled,
    /// The workflow or an ancestor is paused.
    Paused,
    /// The deadline passed this many milliseconds ago.
    DeadlinePassed { ago_ms: i64 },
    /// The workflow itself has finished with this status.
    Finished(Status),
    /// Another executor owns the workflow now.
    LeaseLost,
    /// The workflow row is gone.
    NotFound,
    /// The executor is shutting down.
    Draining,
    /// The entry at this position is of another kind.
    KindMismatch { recorded: StepKind },
    /// The entry at this position is another call (its key).
    Moved { recorded: String },
}

/// What to do with a call.
#[derive(Debug)]
pub(crate) enum Decision {
    /// The call's result is recorded: hand it back without running.
    Replay(Entry),
    /// Run the call. `entry` is its unfinished entry, if any (a step
    /// between retries, a call that waits).
    Run {
        started_ms: i64,
        entry: Option<Entry>,
    },
    /// The call may not run.
    Refuse(Refusal),
}

/// The entry at a call's position against the call itself: another call
/// there, or the same call as another kind, means the code changed.
fn matches(call: &Call, entry: &Entry) -> Option<Refusal> {
    if entry.key != call.key {
        return Some(Refusal::Moved {
            recorded: entry.key.clone(),
        });
    }
    if entry.kind != call.kind {
        return Some(Refusal::KindMismatch {
            recorded: entry.kind,
        });
    }
    None
}

/// What the history alone decides: a finished entry replays, a mismatch
/// refuses; `None` means the one read must decide.
pub(crate) fn from_history(call: &Call, found: &AtPosition) -> Option<Decision> {
    let AtPosition::Recorded(entry) = found else {
        return None;
    };
    if let Some(refusal) = matches(call, entry) {
        return Some(Decision::Refuse(refusal));
    }
    entry.is_finished().then(|| Decision::Replay(entry.clone()))
}

/// The decision for a call the history did not settle, from the one read.
/// `lease` is ours (`None`: this handle may not write); `draining` says
/// the executor is shutting down.
pub(crate) fn from_check(
    call: &Call,
    lease: Option<&Lease>,
    check: Option<&Check>,
    draining: bool,
) -> Decision {
    let Some(check) = check else {
        return Decision::Refuse(Refusal::NotFound);
    };
    // This call's result, recorded since the history was read, stands
    // whatever the state of the workflow now.
    if let Some(entry) = &check.entry
        && matches(call, entry).is_none()
        && entry.is_finished()
    {
        return Decision::Replay(entry.clone());
    }
    let Some(lease) = lease else {
        return Decision::Refuse(Refusal::Finished(check.status));
    };
    if draining {
        return Decision::Refuse(Refusal::Draining);
    }
    match check.blocked {
        Some(Status::Cancelled) => return Decision::Refuse(Refusal::Cancelled),
        Some(_) => return Decision::Refuse(Refusal::Paused),
        None => {}
    }
    if let Some(deadline) = check.deadline_ms
        && check.now_ms > deadline
    {
        return Decision::Refuse(Refusal::DeadlinePassed {
            ago_ms: check.now_ms - deadline,
        });
    }
    if check.status.is_terminal() {
        return Decision::Refuse(Refusal::Finished(check.status));
    }
    // Another owner's entry at our position says nothing about our code.
    if check.holder_owner != Some(lease.owner) || check.holder_epoch != lease.epoch {
        return Decision::Refuse(Refusal::LeaseLost);
    }
    if let Some(refusal) = check.entry.as_ref().and_then(|entry| matches(call, entry)) {
        return Decision::Refuse(refusal);
    }
    Decision::Run {
        started_ms: check.now_ms,
        entry: check.entry.clone(),
    }
}

/// After a refused commit, the entry read back decides: another writer's
/// finished result stands (replay it), a mismatch is non-determinism, and
/// anything else means the lease is gone.
pub(crate) fn after_refused_commit(call: &Call, entry: Option<&Entry>) -> Decision {
    match entry {
        Some(entry) => match matches(call, entry) {
            Some(refusal) => Decision::Refuse(refusal),
            None if entry.is_finished() => Decision::Replay(entry.clone()),
            None => Decision::Refuse(Refusal::LeaseLost),
        },
        None => Decision::Refuse(Refusal::LeaseLost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn call() -> Call {
        Call {
            name: "fetch".into(),
            key: "fetch#0".into(),
            position: 3,
            kind: StepKind::Step,
        }
    }

    fn entry(key: &str, kind: StepKind, status: Status) -> Entry {
        Entry {
            position: 3,
            key: key.into(),
            name: "fetch".into(),
            kind,
            status,
            output: Some("1".into()),
            error: None,
            retry_count: 0,
            max_retries: 0,
            wake_ms: None,
            created_ms: 0,
            started_ms: None,
            completed_ms: None,
            child: None,
        }
    }

    fn lease() -> Lease {
        Lease {
            holder: Uuid::from_u128(1),
            owner: Uuid::from_u128(2),
            epoch: 7,
        }
    }

    fn check() -> Check {
        Check {
            holder_owner: Some(Uuid::from_u128(2)),
            holder_epoch: 7,
            status: Status::Running,
            blocked: None,
            deadline_ms: None,
            now_ms: 1_000,
            entry: None,
        }
    }

    fn refusal(decision: Decision) -> Refusal {
        match decision {
            Decision::Refuse(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn history_replays_a_finished_entry_and_defers_the_rest() {
        let done = AtPosition::Recorded(entry("fetch#0", StepKind::Step, Status::Completed));
        assert!(matches!(
            from_history(&call(), &done),
            Some(Decision::Replay(_))
        ));
        let failed = AtPosition::Recorded(entry("fetch#0", StepKind::Step, Status::Failed));
        assert!(matches!(
            from_history(&call(), &failed),
            Some(Decision::Replay(_))
        ));
        let retrying = AtPosition::Recorded(entry("fetch#0", StepKind::Step, Status::Pending));
        assert!(from_history(&call(), &retrying).is_none());
        assert!(from_history(&call(), &AtPosition::Nothing).is_none());
    }

    #[test]
    fn history_with_another_call_or_kind_is_non_determinism() {
        let moved = AtPosition::Recorded(entry("parse#0", StepKind::Step, Status::Completed));
        assert_eq!(
            refusal(from_history(&call(), &moved).unwrap()),
            Refusal::Moved {
                recorded: "parse#0".into()
            }
        );
        let kind = AtPosition::Recorded(entry("fetch#0", StepKind::Transaction, Status::Completed));
        assert_eq!(
            refusal(from_history(&call(), &kind).unwrap()),
            Refusal::KindMismatch {
                recorded: StepKind::Transaction
            }
        );
    }

    #[test]
    fn a_fresh_call_runs_under_a_live_lease_at_the_database_time() {
        match from_check(&call(), Some(&lease()), Some(&check()), false) {
            Decision::Run { started_ms, entry } => {
                assert_eq!(started_ms, 1_000);
                assert!(entry.is_none());
            }
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn an_unfinished_entry_is_handed_to_the_call() {
        let mut c = check();
        let mut e = entry("fetch#0", StepKind::Step, Status::Pending);
        e.retry_count = 2;
        c.entry = Some(e);
        match from_check(&call(), Some(&lease()), Some(&c), false) {
            Decision::Run { entry: Some(e), .. } => assert_eq!(e.retry_count, 2),
            other => panic!("expected Run with the entry, got {other:?}"),
        }
    }

    #[test]
    fn a_result_recorded_meanwhile_wins_over_any_state() {
        let mut c = check();
        c.blocked = Some(Status::Cancelled);
        c.holder_owner = None;
        c.entry = Some(entry("fetch#0", StepKind::Step, Status::Completed));
        assert!(matches!(
            from_check(&call(), Some(&lease()), Some(&c), true),
            Decision::Replay(_)
        ));
    }

    #[test]
    fn another_call_at_our_position_is_non_determinism_unless_the_lease_is_gone() {
        let mut c = check();
        c.entry = Some(entry("parse#0", StepKind::Step, Status::Completed));
        assert!(matches!(
            refusal(from_check(&call(), Some(&lease()), Some(&c), false)),
            Refusal::Moved { .. }
        ));
        c.holder_epoch = 8;
        assert_eq!(
            refusal(from_check(&call(), Some(&lease()), Some(&c), false)),
            Refusal::LeaseLost
        );
    }

    #[test]
    fn cancel_wins_over_pause_and_both_over_the_deadline() {
        let mut c = check();
        c.deadline_ms = Some(10);
        c.blocked = Some(Status::Cancelled);
        assert_eq!(
            refusal(from_check(&call(), Some(&lease()), Some(&c), false)),
            Refusal::Cancelled
        );
        c.blocked = Some(Status::Paused);
        assert_eq!(
            refusal(from_check(&call(), Some(&lease()), Some(&c), false)),
            Refusal::Paused
        );
        c.blocked = None;
        assert_eq!(
            refusal(from_check(&call(), Some(&lease()), Some(&c), false)),
            Refusal::DeadlinePassed { ago_ms: 990 }
        );
    }

    #[test]
    fn a_deadline_not_yet_passed_lets_the_call_run() {
        let mut c = check();
        c.deadline_ms = Some(1_000);
        assert!(matches!(
            from_check(&call(), Some(&lease()), Some(&c), false),
            Decision::Run { .. }
        ));
    }

    #[test]
    fn another_owner_or_epoch_is_a_lost_lease() {
        let mut c = check();
        c.holder_epoch = 8;
        assert_eq!(
            refusal(from_check(&call(), Some(&lease()), Some(&c), false)),
            Refusal::LeaseLost
        );
        let mut c = check();
        c.holder_owner = Some(Uuid::from_u128(9));
        assert_eq!(
            refusal(from_check(&call(), Some(&lease()), Some(&c), false)),
            Refusal::LeaseLost
        );
    }

    #[test]
    fn finished_workflows_draining_executors_and_missing_rows_refuse() {
        let mut c = check();
        c.status = Status::Failed;
        assert_eq!(
            refusal(from_check(&call(), Some(&lease()), Some(&c), false)),
            Refusal::Finished(Status::Failed)
        );
        assert_eq!(
            refusal(from_check(&call(), None, Some(&check()), false)),
            Refusal::Finished(Status::Running)
        );
        assert_eq!(
            refusal(from_check(&call(), Some(&lease()), Some(&check()), true)),
            Refusal::Draining
        );
        assert_eq!(
            refusal(from_check(&call(), Some(&lease()), None, false)),
            Refusal::NotFound
        );
    }

    #[test]
    fn a_refused_commit_replays_the_winner_or_reports_the_lost_lease() {
        let won = entry("fetch#0", StepKind::Step, Status::Completed);
        assert!(matches!(
            after_refused_commit(&call(), Some(&won)),
            Decision::Replay(_)
        ));
        let pending = entry("fetch#0", StepKind::Step, Status::Pending);
        assert_eq!(
            refusal(after_refused_commit(&call(), Some(&pending))),
            Refusal::LeaseLost
        );
        assert_eq!(
            refusal(after_refused_commit(&call(), None)),
            Refusal::LeaseLost
        );
        let other = entry("other#0", StepKind::Step, Status::Completed);
        assert!(matches!(
            refusal(after_refused_commit(&call(), Some(&other))),
            Refusal::Moved { .. }
        ));
    }
}
