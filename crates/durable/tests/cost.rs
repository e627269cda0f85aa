//! Cost: the statements a step issues, counted on the connection itself
//! (deterministic, unlike timings). A fresh step is one read and one fenced
//! write; a replayed step issues nothing once the history is loaded.

mod common;

use std::sync::atomic::Ordering;

use common::{Backend, TestDb};
use durable::Ctx;

/// A fresh step costs exactly two statements (check read + fenced write,
/// each autocommitted: no BEGIN/COMMIT round trips); a replay costs none.
async fn fresh_step_costs_two_statements_replay_none(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (db, count) = t.counted().await;
    let ctx = Ctx::start(&db, "cost", None).await.unwrap();
    let steps = 50;
    let before = count.load(Ordering::SeqCst);
    for i in 0..steps {
        let _: u32 = ctx.step("noop", || async move { Ok(i) }).await.unwrap();
    }
    let fresh = count.load(Ordering::SeqCst) - before;
    assert_eq!(
        fresh,
        2 * u64::from(steps),
        "statements for {steps} fresh steps"
    );
    ctx.complete(&steps).await.unwrap();
    drop(ctx);

    let before = count.load(Ordering::SeqCst);
    let ctx = Ctx::start(&db, "cost", None).await.unwrap();
    let start_cost = count.load(Ordering::SeqCst) - before;
    let before = count.load(Ordering::SeqCst);
    for i in 0..steps {
        let v: u32 = ctx
            .step("noop", || async move { Ok(i + 1000) })
            .await
            .unwrap();
        assert_eq!(v, i);
    }
    ctx.complete(&steps).await.unwrap();
    assert_eq!(
        count.load(Ordering::SeqCst) - before,
        0,
        "replay issued statements"
    );
    // Resuming a finished workflow: the claim (refused), a read of the row
    // and the history in one query on the user's pool; on SQLite also the
    // executor row (on PostgreSQL it goes through the executor's own session).
    let expected = if backend == Backend::Sqlite { 4 } else { 3 };
    assert_eq!(start_cost, expected, "resume cost");
}

/// A transaction step adds only its checkpoint write to the user's
/// transaction; a child workflow costs one read and one claim.
async fn transaction_and_child_costs(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (db, count) = t.counted().await;
    let ctx = Ctx::start(&db, "cost", None).await.unwrap();
    let before = count.load(Ordering::SeqCst);
    let _: u32 = ctx
        .transaction("tx", |_tx| Box::pin(async { Ok(1) }))
        .await
        .unwrap();
    // check read + checkpoint write (BEGIN/COMMIT are not statements here).
    assert_eq!(count.load(Ordering::SeqCst) - before, 2);
    let before = count.load(Ordering::SeqCst);
    let child = ctx.child("kid", None).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst) - before, 2);
    child.complete(&1).await.unwrap();
}

both_backends!(
    fresh_step_costs_two_statements_replay_none,
    transaction_and_child_costs,
);
