//! `Ctx::wait_when_paused` on both backends: an inline workflow paused
//! from outside holds its next call (nothing runs) until it is resumed,
//! and then goes on where it stopped, steps, children and `complete`
//! alike; a cancel while it waits fails the call with `Cancelled`; without
//! the wait (or once the wait is over) the call fails with `Paused` as
//! before.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Backend, TestDb};
use durable::{Client, Ctx, DurableError, Status};

const LONG: Duration = Duration::from_secs(60);

/// Long enough for a spawned call to reach its check (the assertions
/// hold either way; this only makes the waiting path the one taken).
async fn let_it_reach_the_check() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn counted(
    runs: &Arc<AtomicU32>,
    value: u32,
) -> impl Fn() -> std::future::Ready<Result<u32, DurableError>> + use<> {
    let runs = runs.clone();
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(value))
    }
}

async fn a_paused_inline_workflow_waits_for_the_resume(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let runs = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start_with_key(&t.db, "import", "imp-1", None)
        .await
        .unwrap()
        .wait_when_paused(LONG);
    assert_eq!(ctx.step("a", counted(&runs, 1)).await.unwrap(), 1);
    let kid = ctx
        .child("part", None)
        .await
        .unwrap()
        .wait_when_paused(LONG);
    client.pause(ctx.task_id()).await.unwrap();

    let (ctx, kid) = (Arc::new(ctx), Arc::new(kid));
    let (c, k, r) = (ctx.clone(), kid.clone(), runs.clone());
    let held = tokio::spawn(async move {
        let in_kid = k.step("k", counted(&r, 10)).await?;
        k.complete(&in_kid).await?;
        let b = c.step("b", counted(&r, 2)).await?;
        c.complete(&(in_kid + b)).await?;
        Ok::<u32, DurableError>(in_kid + b)
    });
    let_it_reach_the_check().await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a call ran while paused");
    assert!(!held.is_finished(), "the call did not wait for the resume");
    assert_eq!(
        client.workflow(ctx.task_id()).await.unwrap().status,
        Status::Paused
    );

    client.resume(ctx.task_id()).await.unwrap();
    assert_eq!(held.await.unwrap().unwrap(), 12);
    assert_eq!(runs.load(Ordering::SeqCst), 3, "each call ran once");
    let tree = client.tree(ctx.task_id()).await.unwrap();
    assert_eq!(tree.workflow.status, Status::Completed);
    assert_eq!(tree.workflow.output, Some(serde_json::json!(12)));
    let child = tree.steps[1].child.as_ref().expect("the child");
    assert_eq!(child.workflow.status, Status::Completed);
}

async fn a_cancel_while_waiting_fails_the_call(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let runs = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start_with_key(&t.db, "import", "imp-2", None)
        .await
        .unwrap()
        .wait_when_paused(LONG);
    let id = ctx.task_id();
    client.pause(id).await.unwrap();
    let r = runs.clone();
    let held = tokio::spawn(async move { ctx.step("b", counted(&r, 2)).await });
    let_it_reach_the_check().await;
    client.cancel(id).await.unwrap();
    let err = held.await.unwrap().unwrap_err();
    assert!(matches!(err, DurableError::Cancelled(_)), "{err:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(client.workflow(id).await.unwrap().status, Status::Cancelled);
}

async fn without_the_wait_a_paused_call_fails(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let runs = Arc::new(AtomicU32::new(0));
    let plain = Ctx::start_with_key(&t.db, "import", "imp-3", None)
        .await
        .unwrap();
    let over = Ctx::start_with_key(&t.db, "import", "imp-4", None)
        .await
        .unwrap()
        .wait_when_paused(Duration::from_millis(50));
    for ctx in [&plain, &over] {
        client.pause(ctx.task_id()).await.unwrap();
        let err = ctx.step("b", counted(&runs, 2)).await.unwrap_err();
        assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
        let err = ctx.complete(&0).await.unwrap_err();
        assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

both_backends!(
    a_paused_inline_workflow_waits_for_the_resume,
    a_cancel_while_waiting_fails_the_call,
    without_the_wait_a_paused_call_fails,
);
