//! Deadlines: fixed once (database clock), never extended by a restart,
//! inherited by children; after it passes no new step starts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Backend, TestDb, child_row, counted, row, row_under};
use durable::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use durable::{Ctx, DurableError};
use durable_db::entity::task;

/// Sleep until a deadline of `timeout_ms` set just before is certainly past.
async fn sleep_past(timeout_ms: u64) {
    tokio::time::sleep(Duration::from_millis(timeout_ms + 250)).await;
}

/// Steps before the deadline run; after it, a new step is Timeout and its body never runs.
async fn step_after_deadline_times_out(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start_with_timeout(&t.db, "short", None, 400)
        .await
        .unwrap();
    let r = row(&t.db, ctx.task_id()).await;
    assert_eq!(r.timeout_ms, Some(400));
    let deadline = r.deadline_ms.expect("deadline_ms was not set");
    assert!(
        deadline >= r.created_ms + 400,
        "deadline {deadline} is before creation + 400 ms"
    );
    assert_eq!(ctx.step("early", counted(&calls, 7)).await.unwrap(), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    sleep_past(400).await;
    let err = ctx.step("late", counted(&calls, 7)).await.unwrap_err();
    assert!(matches!(err, DurableError::Timeout(_)), "{err:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a step body ran after the deadline"
    );
    assert!(child_row(&t.db, ctx.task_id(), "late#0").await.is_none());
    assert_eq!(
        row_under(&t.db, ctx.task_id(), "early#0").await.status,
        "COMPLETED"
    );
    // Running into the deadline does not move it.
    assert_eq!(row(&t.db, ctx.task_id()).await.deadline_ms, Some(deadline));

    // Completed steps still replay after the deadline; new ones still time out.
    drop(ctx);
    let ctx = Ctx::start(&t.db, "short", None).await.unwrap();
    assert_eq!(ctx.step("early", counted(&calls, 7)).await.unwrap(), 7);
    let err = ctx.step("late", counted(&calls, 7)).await.unwrap_err();
    assert!(matches!(err, DurableError::Timeout(_)), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// The deadline is fixed when first set: restarting with a longer timeout does not move it.
async fn deadline_survives_restart(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start_with_timeout(&t.db, "fixed", None, 500)
        .await
        .unwrap();
    let first = row(&t.db, ctx.task_id()).await;
    let deadline = first.deadline_ms.expect("deadline_ms was not set");
    ctx.step("a", || async { Ok(1) }).await.unwrap();
    drop(ctx);

    let ctx = Ctx::start_with_timeout(&t.db, "fixed", None, 3_600_000)
        .await
        .unwrap();
    ctx.set_timeout(7_200_000).await.unwrap();
    let again = row(&t.db, ctx.task_id()).await;
    assert_eq!(again.id, first.id);
    assert_eq!(
        again.deadline_ms,
        Some(deadline),
        "a restart moved the deadline"
    );
    assert_eq!(again.timeout_ms, Some(500), "a restart changed the timeout");
    assert_eq!(ctx.step("a", || async { Ok(99) }).await.unwrap(), 1);

    sleep_past(500).await;
    let calls = Arc::new(AtomicU32::new(0));
    let err = ctx.step("b", counted(&calls, 7)).await.unwrap_err();
    assert!(matches!(err, DurableError::Timeout(_)), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(child_row(&t.db, ctx.task_id(), "b#0").await.is_none());
    assert_eq!(row(&t.db, ctx.task_id()).await.deadline_ms, Some(deadline));
}

/// A child cannot outlive its root's deadline, even with a longer timeout of its own.
async fn children_cannot_outlive_the_deadline(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let root = Ctx::start_with_timeout(&t.db, "parent", None, 500)
        .await
        .unwrap();
    let child = root.child("kid", None).await.unwrap();
    let patient = root.child("patient", None).await.unwrap();
    patient.set_timeout(3_600_000).await.unwrap();
    let grandchild = child.child("grandkid", None).await.unwrap();
    assert_eq!(child.step("early", counted(&calls, 7)).await.unwrap(), 7);
    assert_eq!(row(&t.db, child.task_id()).await.deadline_ms, None);
    let root_deadline = row(&t.db, root.task_id()).await.deadline_ms.unwrap();
    assert!(row(&t.db, patient.task_id()).await.deadline_ms.unwrap() > root_deadline);

    sleep_past(500).await;
    for ctx in [&child, &patient, &grandchild] {
        let err = ctx.step("late", counted(&calls, 7)).await.unwrap_err();
        assert!(matches!(err, DurableError::Timeout(_)), "{err:?}");
        assert!(child_row(&t.db, ctx.task_id(), "late#0").await.is_none());
    }
    let err = root.child("too_late", None).await.unwrap_err();
    assert!(matches!(err, DurableError::Timeout(_)), "{err:?}");
    assert!(
        child_row(&t.db, root.task_id(), "too_late#0")
            .await
            .is_none()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A zero or negative timeout is InvalidInput and writes no deadline.
async fn non_positive_timeout_is_rejected(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "wf", None).await.unwrap();
    for bad in [0, -1, -60_000, i64::MIN] {
        let err = ctx.set_timeout(bad).await.unwrap_err();
        assert!(
            matches!(err, DurableError::InvalidInput(_)),
            "{bad}: {err:?}"
        );
    }
    let r = row(&t.db, ctx.task_id()).await;
    assert_eq!((r.timeout_ms, r.deadline_ms), (None, None));

    let err = Ctx::start_with_timeout(&t.db, "other", None, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::InvalidInput(_)), "{err:?}");
    let err = Ctx::start_with_timeout(&t.db, "other", None, -5)
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::InvalidInput(_)), "{err:?}");
    let others = task::Entity::find()
        .filter(task::Column::TaskKey.eq("other"))
        .all(&t.db)
        .await
        .unwrap();
    for r in &others {
        assert_eq!((r.timeout_ms, r.deadline_ms), (None, None));
    }
    // The workflow is untouched and still runs steps.
    assert_eq!(ctx.step("a", || async { Ok(1) }).await.unwrap(), 1);
}

/// An absurdly large timeout is refused as InvalidInput (or accepted harmlessly): never a corrupt row.
async fn huge_timeout_is_typed_error_and_harmless(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "wf", None).await.unwrap();
    let result = ctx.set_timeout(i64::MAX).await;
    // The row must still read back through the entity, whatever happened.
    let r = task::Entity::find_by_id(ctx.task_id()).one(&t.db).await;
    let r = r.expect("the task row no longer decodes").unwrap();
    match result {
        Err(DurableError::InvalidInput(_)) => {
            assert_eq!((r.timeout_ms, r.deadline_ms), (None, None))
        }
        Ok(()) => assert!(r.deadline_ms.is_some_and(|d| d > r.created_ms)),
        Err(other) => panic!("expected InvalidInput or Ok, got {other:?}"),
    }
    // The workflow goes on.
    assert_eq!(ctx.step("a", || async { Ok(1) }).await.unwrap(), 1);
}

both_backends!(
    step_after_deadline_times_out,
    deadline_survives_restart,
    children_cannot_outlive_the_deadline,
    non_positive_timeout_is_rejected,
    huge_timeout_is_typed_error_and_harmless,
);
