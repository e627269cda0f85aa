//! Pause, resume and cancel: they cascade over the whole subtree, cancel is
//! terminal, a step never starts in a paused or cancelled workflow, and bad
//! transitions are typed errors.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, TestDb, child_row, counted, row, row_under};
use durable::sea_orm::EntityTrait;
use durable::{Ctx, DurableError, Uuid};
use durable_db::entity::task;

/// Asserts that `result` is `InvalidTransition` of task `id` by `action` from `status`.
fn assert_transition(result: Result<(), DurableError>, id: Uuid, action: &str, status: &str) {
    match result {
        Err(DurableError::InvalidTransition {
            task,
            status: s,
            action: a,
        }) => {
            assert_eq!((task, s.as_str(), a), (id, status, action));
        }
        other => panic!("expected InvalidTransition({action} from {status}), got {other:?}"),
    }
}

/// Pause reaches every active descendant; afterwards no step starts anywhere in the tree.
async fn pause_cascades_and_blocks_steps(backend: Backend) {
    let t = TestDb::new(backend).await;
    let root = Ctx::start(&t.db, "tree", None).await.unwrap();
    root.step("before", || async { Ok(1) }).await.unwrap();
    let child = root.child("kid", None).await.unwrap();
    let grandchild = child.child("grandkid", None).await.unwrap();
    let finished = root.child("finished", None).await.unwrap();
    finished.complete(&"done").await.unwrap();

    durable::Client::new(&t.db)
        .pause(root.task_id())
        .await
        .unwrap();

    for id in [root.task_id(), child.task_id(), grandchild.task_id()] {
        assert_eq!(row(&t.db, id).await.status, "PAUSED", "task {id}");
    }
    assert_eq!(row(&t.db, finished.task_id()).await.status, "COMPLETED");
    let before = row_under(&t.db, root.task_id(), "before#0").await;
    assert_eq!(before.status, "COMPLETED");

    let calls = Arc::new(AtomicU32::new(0));
    let err = root.step("after", counted(&calls, 7)).await.unwrap_err();
    assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
    let err = child.step("mid", counted(&calls, 7)).await.unwrap_err();
    assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
    let err = grandchild
        .step("deep", counted(&calls, 7))
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "a step body ran in a paused tree"
    );
    assert!(child_row(&t.db, root.task_id(), "after#0").await.is_none());
    assert!(
        child_row(&t.db, grandchild.task_id(), "deep#0")
            .await
            .is_none()
    );
    // Completing is also refused while paused.
    let err = grandchild.complete(&1).await.unwrap_err();
    assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
}

/// Resume makes the root RUNNING and paused descendants PENDING; steps then run.
async fn resume_reactivates_subtree(backend: Backend) {
    let t = TestDb::new(backend).await;
    let root = Ctx::start(&t.db, "tree", None).await.unwrap();
    let child = root.child("kid", None).await.unwrap();
    let grandchild = child.child("grandkid", None).await.unwrap();
    durable::Client::new(&t.db)
        .pause(root.task_id())
        .await
        .unwrap();
    durable::Client::new(&t.db)
        .resume(root.task_id())
        .await
        .unwrap();

    assert_eq!(row(&t.db, root.task_id()).await.status, "RUNNING");
    assert_eq!(row(&t.db, child.task_id()).await.status, "PENDING");
    assert_eq!(row(&t.db, grandchild.task_id()).await.status, "PENDING");

    let calls = Arc::new(AtomicU32::new(0));
    assert_eq!(root.step("r", counted(&calls, 7)).await.unwrap(), 7);
    assert_eq!(grandchild.step("g", counted(&calls, 7)).await.unwrap(), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        row_under(&t.db, root.task_id(), "r#0").await.status,
        "COMPLETED"
    );
    assert_eq!(
        row_under(&t.db, grandchild.task_id(), "g#0").await.status,
        "COMPLETED"
    );
    grandchild.complete(&"g").await.unwrap();
    child.complete(&"c").await.unwrap();
    root.complete(&"r").await.unwrap();
    for id in [root.task_id(), child.task_id(), grandchild.task_id()] {
        assert_eq!(row(&t.db, id).await.status, "COMPLETED", "task {id}");
    }
}

/// Cancel reaches every unfinished descendant, keeps finished records, and is terminal.
async fn cancel_cascades_and_is_terminal(backend: Backend) {
    let t = TestDb::new(backend).await;
    let root = Ctx::start(&t.db, "tree", None).await.unwrap();
    root.step("a", || async { Ok(1) }).await.unwrap();
    let child = root.child("kid", None).await.unwrap();
    child.step("b", || async { Ok(2) }).await.unwrap();
    let grandchild = child.child("grandkid", None).await.unwrap();
    let a_before = row_under(&t.db, root.task_id(), "a#0").await;

    durable::Client::new(&t.db)
        .cancel(root.task_id())
        .await
        .unwrap();

    for id in [root.task_id(), child.task_id(), grandchild.task_id()] {
        let r = row(&t.db, id).await;
        assert_eq!(r.status, "CANCELLED", "task {id}");
        assert!(r.completed_ms.is_some(), "task {id} has no completed_ms");
    }
    let a_after = row_under(&t.db, root.task_id(), "a#0").await;
    assert_eq!(a_after, a_before, "a completed step changed");
    let b = row_under(&t.db, child.task_id(), "b#0").await;
    assert_eq!(
        (b.status.as_str(), b.output.as_deref()),
        ("COMPLETED", Some("2"))
    );

    let calls = Arc::new(AtomicU32::new(0));
    let err = root.step("after", counted(&calls, 7)).await.unwrap_err();
    assert!(matches!(err, DurableError::Cancelled(_)), "{err:?}");
    let err = grandchild
        .step("deep", counted(&calls, 7))
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::Cancelled(_)), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    assert_transition(
        durable::Client::new(&t.db).resume(root.task_id()).await,
        root.task_id(),
        "resume",
        "CANCELLED",
    );
    assert_transition(
        durable::Client::new(&t.db).pause(root.task_id()).await,
        root.task_id(),
        "pause",
        "CANCELLED",
    );
    assert_transition(
        durable::Client::new(&t.db).resume(child.task_id()).await,
        child.task_id(),
        "resume",
        "CANCELLED",
    );
    assert_eq!(row(&t.db, root.task_id()).await.status, "CANCELLED");
    assert_eq!(row(&t.db, grandchild.task_id()).await.status, "CANCELLED");
}

/// Running a cancelled workflow again replays what was done and starts nothing new.
async fn restarted_cancelled_workflow_reports_cancelled(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "stopped", None).await.unwrap();
    ctx.step("a", || async { Ok(1) }).await.unwrap();
    durable::Client::new(&t.db)
        .cancel(ctx.task_id())
        .await
        .unwrap();
    drop(ctx);

    let ctx = Ctx::start(&t.db, "stopped", None).await.unwrap();
    assert_eq!(ctx.step("a", || async { Ok(99) }).await.unwrap(), 1);
    let calls = Arc::new(AtomicU32::new(0));
    let err = ctx.step("b", counted(&calls, 7)).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(child_row(&t.db, ctx.task_id(), "b#0").await.is_none());
    assert!(
        matches!(err, DurableError::Cancelled(_)),
        "expected Cancelled, got {err:?}"
    );
}

/// Invalid transitions and unknown ids are typed errors that change nothing.
async fn invalid_transitions_are_typed_errors(backend: Backend) {
    let t = TestDb::new(backend).await;
    let paused = Ctx::start_with_key(&t.db, "wf", "paused", None)
        .await
        .unwrap();
    durable::Client::new(&t.db)
        .pause(paused.task_id())
        .await
        .unwrap();
    assert_transition(
        durable::Client::new(&t.db).pause(paused.task_id()).await,
        paused.task_id(),
        "pause",
        "PAUSED",
    );
    assert_eq!(row(&t.db, paused.task_id()).await.status, "PAUSED");

    let running = Ctx::start_with_key(&t.db, "wf", "running", None)
        .await
        .unwrap();
    assert_transition(
        durable::Client::new(&t.db).resume(running.task_id()).await,
        running.task_id(),
        "resume",
        "RUNNING",
    );
    assert_eq!(row(&t.db, running.task_id()).await.status, "RUNNING");

    let done = Ctx::start_with_key(&t.db, "wf", "done", None)
        .await
        .unwrap();
    done.complete(&"ok").await.unwrap();
    assert_transition(
        durable::Client::new(&t.db).cancel(done.task_id()).await,
        done.task_id(),
        "cancel",
        "COMPLETED",
    );
    assert_transition(
        durable::Client::new(&t.db).pause(done.task_id()).await,
        done.task_id(),
        "pause",
        "COMPLETED",
    );
    let r = row(&t.db, done.task_id()).await;
    assert_eq!(
        (r.status.as_str(), r.output.as_deref()),
        ("COMPLETED", Some("\"ok\""))
    );

    let failed = Ctx::start_with_key(&t.db, "wf", "failed", None)
        .await
        .unwrap();
    failed.fail("broken").await.unwrap();
    assert_transition(
        durable::Client::new(&t.db).cancel(failed.task_id()).await,
        failed.task_id(),
        "cancel",
        "FAILED",
    );

    let cancelled = Ctx::start_with_key(&t.db, "wf", "cancelled", None)
        .await
        .unwrap();
    durable::Client::new(&t.db)
        .cancel(cancelled.task_id())
        .await
        .unwrap();
    let first_cancel = row(&t.db, cancelled.task_id()).await.completed_ms;
    assert_transition(
        durable::Client::new(&t.db)
            .cancel(cancelled.task_id())
            .await,
        cancelled.task_id(),
        "cancel",
        "CANCELLED",
    );
    assert_eq!(
        row(&t.db, cancelled.task_id()).await.completed_ms,
        first_cancel
    );

    let unknown = Uuid::new_v4();
    for result in [
        durable::Client::new(&t.db).pause(unknown).await,
        durable::Client::new(&t.db).resume(unknown).await,
        durable::Client::new(&t.db).cancel(unknown).await,
    ] {
        assert!(
            matches!(result, Err(DurableError::NotFound(id)) if id == unknown),
            "{result:?}"
        );
    }
    assert!(
        task::Entity::find_by_id(unknown)
            .one(&t.db)
            .await
            .unwrap()
            .is_none()
    );
}

/// A pause issued through another connection pool stops the next step of a running workflow.
async fn pause_from_another_pool_is_seen(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "remote", None).await.unwrap();
    ctx.step("a", || async { Ok(1) }).await.unwrap();

    let other = TestDb::connect(&t.url).await;
    durable::Client::new(&other)
        .pause(ctx.task_id())
        .await
        .unwrap();
    assert_eq!(row(&t.db, ctx.task_id()).await.status, "PAUSED");

    let calls = Arc::new(AtomicU32::new(0));
    let err = ctx.step("b", counted(&calls, 7)).await.unwrap_err();
    assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // After a resume the workflow runs again (a new run, as after any
    // interruption) and the step that was refused now runs.
    durable::Client::new(&other)
        .resume(ctx.task_id())
        .await
        .unwrap();
    drop(ctx);
    let ctx = Ctx::start(&t.db, "remote", None).await.unwrap();
    assert_eq!(ctx.step("a", || async { Ok(99) }).await.unwrap(), 1);
    assert_eq!(ctx.step("b", counted(&calls, 7)).await.unwrap(), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        row_under(&t.db, ctx.task_id(), "b#0").await.status,
        "COMPLETED"
    );
}

/// A child asked for after its parent (or an ancestor) was paused cannot start work.
async fn child_of_paused_parent_cannot_start(backend: Backend) {
    let t = TestDb::new(backend).await;
    let root = Ctx::start(&t.db, "tree", None).await.unwrap();
    let kid = root.child("kid", None).await.unwrap();

    // Pause only the child: its new children are refused, the root goes on.
    durable::Client::new(&t.db)
        .pause(kid.task_id())
        .await
        .unwrap();
    let err = kid.child("late", None).await.unwrap_err();
    assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
    assert!(child_row(&t.db, kid.task_id(), "late#0").await.is_none());
    assert_eq!(row(&t.db, root.task_id()).await.status, "RUNNING");
    assert_eq!(root.step("free", || async { Ok(1) }).await.unwrap(), 1);

    // Pause the root: a new child of the root is refused too, even after a restart.
    durable::Client::new(&t.db)
        .resume(kid.task_id())
        .await
        .unwrap();
    durable::Client::new(&t.db)
        .pause(root.task_id())
        .await
        .unwrap();
    let err = root.child("second", None).await.unwrap_err();
    assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
    drop((root, kid));
    let root = Ctx::start(&t.db, "tree", None).await.unwrap();
    // The recorded child comes back (a replay starts nothing), but no step
    // of it starts while the root is paused.
    let kid = root.child("kid", None).await.unwrap();
    let err = kid.step("k", || async { Ok(5) }).await.unwrap_err();
    assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
    assert_eq!(root.step("free", || async { Ok(99) }).await.unwrap(), 1);
    let calls = Arc::new(AtomicU32::new(0));
    match root.child("second", None).await {
        Err(DurableError::Paused(_)) => {}
        Ok(child) => {
            let err = child.step("s", counted(&calls, 7)).await.unwrap_err();
            assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
        }
        Err(other) => panic!("expected Paused, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(child_row(&t.db, root.task_id(), "second#0").await.is_none());
    assert_eq!(row(&t.db, root.task_id()).await.status, "PAUSED");
}

/// The seed's management calls on `Ctx` (deprecated for `Client`) still
/// work, with the same transitions.
#[allow(deprecated)]
async fn seed_management_calls_still_work(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "seed", None).await.unwrap();
    let _: u32 = ctx.step("a", || async { Ok(1) }).await.unwrap();
    Ctx::pause(&t.db, ctx.task_id()).await.unwrap();
    assert_eq!(row(&t.db, ctx.task_id()).await.status, "PAUSED");
    Ctx::resume(&t.db, ctx.task_id()).await.unwrap();
    assert_eq!(row(&t.db, ctx.task_id()).await.status, "RUNNING");
    Ctx::cancel(&t.db, ctx.task_id()).await.unwrap();
    assert_eq!(row(&t.db, ctx.task_id()).await.status, "CANCELLED");
    let err = Ctx::resume(&t.db, ctx.task_id()).await.unwrap_err();
    assert!(
        matches!(err, DurableError::InvalidTransition { .. }),
        "{err:?}"
    );
}

/// Races pause and cancel, from another pool, against a root that starts
/// steps back to back: no step starts after the call returned. A step
/// of a root may start without reading its workflow's state shortly after
/// its previous checkpoint; this fails if pause and cancel return before
/// that window has passed. One process, one monotonic clock.
async fn no_step_starts_after_pause_or_cancel_returned(backend: Backend) {
    const ROUNDS: usize = 12;
    let t = TestDb::new(backend).await;
    let other = TestDb::connect(&t.url).await;
    let client = durable::Client::new(&other);
    for round in 0..ROUNDS {
        let ctx = Ctx::start_with_key(&t.db, "busy", &format!("busy-{round}"), None)
            .await
            .unwrap();
        let id = ctx.task_id();
        let starts = Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
        let runner = tokio::spawn({
            let starts = starts.clone();
            async move {
                for i in 0u32.. {
                    let starts = starts.clone();
                    let step = ctx.step("s", || async move {
                        starts.lock().unwrap().push(Instant::now());
                        Ok(i)
                    });
                    if let Err(err) = step.await {
                        return err;
                    }
                }
                unreachable!()
            }
        });
        // Let it run a few steps, a different number each round.
        while starts.lock().unwrap().len() < 3 + round % 5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let cancel = round % 2 == 1;
        if cancel {
            client.cancel(id).await.unwrap();
        } else {
            client.pause(id).await.unwrap();
        }
        let returned = Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(30), runner)
            .await
            .expect("the workflow stops")
            .unwrap();
        match (&err, cancel) {
            (DurableError::Cancelled(_), true) | (DurableError::Paused(_), false) => {}
            _ => panic!("round {round}: {err:?}"),
        }
        let late = starts
            .lock()
            .unwrap()
            .iter()
            .filter(|start| **start >= returned)
            .count();
        assert_eq!(
            late, 0,
            "round {round}: steps started after the call returned"
        );
    }
}

/// A step called right after the workflow completed does not run: it
/// reads the workflow's state, though the previous step's checkpoint saw
/// it running a moment before.
async fn a_step_after_complete_does_not_run(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start(&t.db, "done", None).await.unwrap();
    ctx.step("a", counted(&calls, 1)).await.unwrap();
    ctx.complete(&1).await.unwrap();
    let err = ctx.step("b", counted(&calls, 2)).await.unwrap_err();
    assert!(
        matches!(err, DurableError::NonDeterminism { .. }),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(child_row(&t.db, ctx.task_id(), "b#0").await.is_none());
}

/// A pause right after the workflow was created stops its first step:
/// the statement that created it saw it running a moment before, and the
/// pause waits that moment out.
async fn pause_right_after_start_is_seen(backend: Backend) {
    let t = TestDb::new(backend).await;
    let other = TestDb::connect(&t.url).await;
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start(&t.db, "fresh", None).await.unwrap();
    durable::Client::new(&other)
        .pause(ctx.task_id())
        .await
        .unwrap();
    let err = ctx.step("a", counted(&calls, 1)).await.unwrap_err();
    assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

both_backends!(
    pause_right_after_start_is_seen,
    a_step_after_complete_does_not_run,
    no_step_starts_after_pause_or_cancel_returned,
    seed_management_calls_still_work,
    pause_cascades_and_blocks_steps,
    resume_reactivates_subtree,
    cancel_cascades_and_is_terminal,
    restarted_cancelled_workflow_reports_cancelled,
    invalid_transitions_are_typed_errors,
    pause_from_another_pool_is_seen,
    child_of_paused_parent_cannot_start,
);
