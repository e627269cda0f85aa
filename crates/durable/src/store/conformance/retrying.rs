//! Retry: a failed tree runs again from its failed calls, which are set
//! aside round by round and shown; the failed run's lease writes nothing
//! more; wrong statuses, children and unknown ids are refused untouched.

#![allow(clippy::wildcard_imports)]

use super::*;

/// A failed call `key` at `position`, its retries spent.
fn failed<'a>(
    workflow: Uuid,
    position: i32,
    key: &'a str,
    error: &str,
    l: Lease,
) -> Checkpoint<'a> {
    Checkpoint {
        error: Some(error.into()),
        retry_count: 2,
        max_retries: 2,
        ..cp(workflow, position, key, StepKind::Step, Status::Failed, l)
    }
}

async fn fail(store: &dyn Store, id: Uuid, l: &Lease, error: &str) {
    let finished = store
        .finish(id, l, Status::Failed, None, Some(error.into()), None)
        .await
        .unwrap();
    assert!(finished);
}

/// The set-aside calls of a tree, as `round position key error`.
async fn retried(store: &dyn Store, id: Uuid) -> Vec<String> {
    fn walk(tree: &WorkflowTree, out: &mut Vec<String>) {
        for r in &tree.retried {
            out.push(format!(
                "{} {} {} {} x{}",
                r.round,
                r.step.position,
                r.step.key,
                r.step.error.as_deref().unwrap_or("-"),
                r.step.attempts
            ));
        }
        for step in &tree.steps {
            if let Some(child) = &step.child {
                walk(child, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&store.tree(id).await.unwrap().expect("a tree"), &mut out);
    out
}

pub(super) async fn retry_sets_failed_calls_aside(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let r = root(s, "r", e1).await;
    let l = lease(&r);
    assert!(written(s, &done(r.id, 0, "fetch#0", "1", l)).await);
    assert!(written(s, &failed(r.id, 1, "charge#0", "declined", l)).await);
    // A child that failed, and one that caught its failed step and completed.
    let c = start_child(s, &child(&r, 2, "c#0", l)).await;
    assert!(written(s, &failed(c.id, 0, "inner#0", "inner broke", l)).await);
    fail(s, c.id, &l, "c failed").await;
    let d = start_child(s, &child(&r, 3, "d#0", l)).await;
    assert!(written(s, &failed(d.id, 0, "soft#0", "caught", l)).await);
    assert!(
        s.finish(d.id, &l, Status::Completed, Some("3".into()), None, None)
            .await
            .unwrap()
    );

    // Refused while it runs, for a child, for an unknown id.
    let from = [Status::Failed];
    let running = s.retry(r.id, &from).await;
    assert!(
        matches!(running, Err(DurableError::InvalidTransition { .. })),
        "{running:?}"
    );
    assert!(matches!(
        s.retry(c.id, &from).await,
        Err(DurableError::InvalidInput(_))
    ));
    assert!(matches!(
        s.retry(unknown(), &from).await,
        Err(DurableError::NotFound(_))
    ));
    fail(s, r.id, &l, "charge failed").await;
    let before = row(s, r.id).await;
    assert!(matches!(
        s.retry(c.id, &from).await,
        Err(DurableError::InvalidInput(_))
    ));
    assert_eq!(row(s, r.id).await, before, "a refused retry writes nothing");

    let done_retry = s.retry(r.id, &from).await.unwrap();
    assert_eq!(
        done_retry,
        Retried {
            workflows: 2,
            steps: 2,
            queues: vec![]
        }
    );
    let w = s.workflow(r.id).await.unwrap().unwrap();
    assert_eq!(w.status, Status::Pending);
    assert_eq!(
        (w.error, w.output, w.completed_ms, w.owner_id),
        (None, None, None, None)
    );
    assert_eq!(w.lease_epoch, r.lease_epoch + 1);
    assert_eq!(
        s.workflow(c.id).await.unwrap().unwrap().status,
        Status::Pending
    );
    assert_eq!(
        s.workflow(d.id).await.unwrap().unwrap().status,
        Status::Completed
    );
    assert!(entry_at(s, r.id, 0).await.is_some(), "completed calls stay");
    assert!(
        entry_at(s, r.id, 1).await.is_none(),
        "the failed call runs again"
    );
    assert!(entry_at(s, c.id, 0).await.is_none());
    assert!(
        entry_at(s, d.id, 0).await.is_some(),
        "a completed child is left alone"
    );
    assert_eq!(
        retried(s, r.id).await,
        ["1 1 charge#0 declined x3", "1 0 inner#0 inner broke x3"]
    );
    // The failed run's lease is fenced off.
    assert!(!written(s, &done(r.id, 1, "charge#0", "9", l)).await);
    assert!(entry_at(s, r.id, 1).await.is_none());

    // A new run claims it, fails once more, and a second retry is round 2.
    let again = root(s, "r", e1).await;
    assert_eq!(again.id, r.id);
    let l2 = lease(&again);
    assert!(written(s, &failed(r.id, 1, "charge#0", "declined again", l2)).await);
    fail(s, r.id, &l2, "charge failed again").await;
    s.retry(r.id, &from).await.unwrap();
    assert_eq!(
        retried(s, r.id).await,
        [
            "1 1 charge#0 declined x3",
            "2 1 charge#0 declined again x3",
            "1 0 inner#0 inner broke x3"
        ]
    );
    let third = root(s, "r", e1).await;
    let l3 = lease(&third);
    assert!(written(s, &done(r.id, 1, "charge#0", "5", l3)).await);
    assert!(
        s.finish(r.id, &l3, Status::Completed, Some("ok".into()), None, None)
            .await
            .unwrap()
    );
    let completed = s.retry(r.id, &from).await;
    assert!(matches!(
        completed,
        Err(DurableError::InvalidTransition { .. })
    ));

    // Cancelled: only when asked.
    let x = root(s, "x", e1).await;
    s.transition(x.id, Transition::Cancel).await.unwrap();
    let refused = s.retry(x.id, &from).await;
    assert!(matches!(
        refused,
        Err(DurableError::InvalidTransition { .. })
    ));
    let both = s
        .retry(x.id, &[Status::Failed, Status::Cancelled])
        .await
        .unwrap();
    assert_eq!((both.workflows, both.steps), (1, 0));
    assert_eq!(
        s.workflow(x.id).await.unwrap().unwrap().status,
        Status::Pending
    );
}

/// Retention: only trees finished before the cutoff whose every workflow
/// is finished go, oldest first, a batch at a time, with their entries,
/// set-aside entries and messages; a key can be used again afterwards.
pub(super) async fn purge_takes_finished_trees_only(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let finish = |row: &WorkflowRow, status| {
        let (id, l) = (row.id, lease(row));
        async move {
            let finished = s.finish(id, &l, status, Some("1".into()), None, None).await;
            assert!(finished.unwrap());
        }
    };
    // a: completed, with a step, a child, a message and a retried call.
    let a = root(s, "a", e1).await;
    let la = lease(&a);
    assert!(written(s, &failed(a.id, 0, "x#0", "boom", la)).await);
    fail(s, a.id, &la, "x failed").await;
    s.retry(a.id, &[Status::Failed]).await.unwrap();
    let a = root(s, "a", e1).await;
    let la = lease(&a);
    assert!(written(s, &done(a.id, 0, "x#0", "1", la)).await);
    let ac = start_child(s, &child(&a, 1, "c#0", la)).await;
    assert!(
        s.finish(ac.id, &la, Status::Completed, None, None, None)
            .await
            .unwrap()
    );
    assert!(s.send(&message(a.id, "t", None, "1")).await.unwrap());
    finish(&a, Status::Completed).await;
    // b: failed. c: running. d: completed, a spawned child still pending.
    let b = root(s, "b", e1).await;
    fail(s, b.id, &lease(&b), "no").await;
    let c = root(s, "c", e1).await;
    let d = root(s, "d", e1).await;
    let spawned = spawn(s, &d, 0, "s#0", lease(&d)).await;
    finish(&d, Status::Completed).await;

    // Nothing finished an hour ago.
    assert!(s.purge(3_600_000, 10).await.unwrap().is_empty());
    // A batch of one: the oldest first.
    assert_eq!(s.purge(0, 1).await.unwrap(), [a.id]);
    assert!(s.workflow(a.id).await.unwrap().is_none());
    assert!(
        s.workflow(ac.id).await.unwrap().is_none(),
        "the child went with it"
    );
    assert!(s.tree(a.id).await.unwrap().is_none());
    assert!(s.history_page(a.id, 0, 10).await.unwrap().is_empty());
    assert!(!s.has_message(a.id, "t").await.unwrap());
    assert_eq!(s.purge(0, 10).await.unwrap(), [b.id]);
    assert!(s.purge(0, 10).await.unwrap().is_empty());
    for kept in [c.id, d.id, spawned.id] {
        assert!(
            s.workflow(kept).await.unwrap().is_some(),
            "unfinished work stays"
        );
    }
    // The key is free again.
    let again = root(s, "a", e1).await;
    assert_ne!(again.id, a.id);
    assert_eq!(again.attempts, 1);
}

/// Fork: the history before the position is copied to a new PENDING root
/// with the source's fields; bad positions and children are refused.
pub(super) async fn fork_copies_the_history_before_a_position(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let r = root(s, "r", e1).await;
    let l = lease(&r);
    assert!(written(s, &done(r.id, 0, "a#0", "1", l)).await);
    assert!(written(s, &failed(r.id, 1, "b#0", "no", l)).await);
    assert!(written(s, &done(r.id, 2, "c#0", "3", l)).await);
    let fork = s.fork(r.id, 2).await.unwrap();
    let w = s.workflow(fork).await.unwrap().expect("the fork");
    assert_eq!(
        (w.status, w.root_id, w.parent_id, w.owner_id),
        (Status::Pending, fork, None, None)
    );
    assert_eq!(
        (w.name.as_str(), w.input.as_deref()),
        ("wf", Some(r#"{"n":1}"#))
    );
    assert_eq!(w.key, fork.hyphenated().to_string());
    assert_eq!(entry_at(s, fork, 0).await, entry_at(s, r.id, 0).await);
    assert_eq!(entry_at(s, fork, 1).await, entry_at(s, r.id, 1).await);
    assert!(entry_at(s, fork, 2).await.is_none());
    assert!(
        s.fork(r.id, 3).await.is_ok(),
        "one past the last call is the end"
    );
    for bad in [4, -1] {
        assert!(
            matches!(s.fork(r.id, bad).await, Err(DurableError::InvalidInput(_))),
            "{bad}"
        );
    }
    let c = start_child(s, &child(&r, 3, "k#0", l)).await;
    assert!(
        matches!(s.fork(r.id, 4).await, Err(DurableError::InvalidInput(_))),
        "after a child"
    );
    assert!(
        matches!(s.fork(c.id, 0).await, Err(DurableError::InvalidInput(_))),
        "a child"
    );
    assert!(matches!(
        s.fork(unknown(), 0).await,
        Err(DurableError::NotFound(_))
    ));
    let pending = Checkpoint {
        retry_count: 1,
        max_retries: 3,
        ..cp(r.id, 4, "p#0", StepKind::Step, Status::Pending, l)
    };
    assert!(written(s, &pending).await);
    assert!(
        matches!(s.fork(r.id, 5).await, Err(DurableError::InvalidInput(_))),
        "unfinished"
    );
}
