//! Cost: the statements a step issues, counted on the connection itself
//! (deterministic, unlike timings). A fresh step of a root is one fenced
//! write; replayed steps issue one read per page of history.

mod common;

use std::time::Duration;

use common::{Backend, TestDb, run_worker};
use durable::{Ctx, EnqueueOptions, Executor, Registry, Worker};

/// Records read per history query (the SDK's page size).
const PAGE: u64 = 500;

/// A fresh step of a root costs one statement, its fenced write
/// (autocommitted: no BEGIN/COMMIT round trips), which also reads the
/// workflow's state for the next step (the first step's was read by the
/// statement that created the workflow). Replaying costs one read per page
/// of history and no write.
async fn fresh_step_costs_one_statement_replay_one_read_per_page(backend: Backend) {
    // However slow the machine, every step after the first starts in the
    // window its predecessor's write opened (this binary pauses nothing).
    durable::scratch::set_start_window(Duration::from_secs(3600));
    let t = TestDb::new(backend).await;
    let (db, count) = t.counted().await;
    // A lease of an hour: no heartbeat (a third of it) falls inside the
    // counts below, however slow the machine (beats have a connection of
    // their own anyway).
    let executor = Executor::with_lease(&db, Duration::from_secs(3600));
    let ctx = executor.start("cost", "cost", None).await.unwrap();
    let steps: u32 = 600;
    let (before, trips_before) = (count.total(), count.round_trips());
    for i in 0..steps {
        let _: u32 = ctx.step("noop", || async move { Ok(i) }).await.unwrap();
    }
    assert_eq!(
        count.total() - before,
        u64::from(steps),
        "statements for {steps} fresh steps"
    );
    // On the wire (PostgreSQL): one round trip per statement, no ping;
    // the first step also prepares its statement.
    if let (Some(after), Some(before)) = (count.round_trips(), trips_before) {
        assert_eq!(
            after - before,
            u64::from(steps) + 1,
            "round trips for {steps} fresh steps"
        );
    }
    ctx.complete(&steps).await.unwrap();
    drop(ctx);

    let before = count.total();
    let ctx = Executor::with_lease(&db, Duration::from_secs(3600))
        .start("cost", "cost", None)
        .await
        .unwrap();
    let start_cost = count.total() - before;
    let (before, writes) = (count.total(), count.writes());
    for i in 0..steps {
        let v: u32 = ctx
            .step("noop", || async move { Ok(i + 1000) })
            .await
            .unwrap();
        assert_eq!(v, i);
    }
    ctx.complete(&steps).await.unwrap();
    assert_eq!(count.writes(), writes, "replay wrote");
    assert_eq!(
        count.total() - before,
        u64::from(steps).div_ceil(PAGE),
        "history pages"
    );
    // Resuming a finished workflow under a new executor: the claim
    // (refused) and a read of the workflow row; and the executor's row,
    // written on the heartbeats' own connection, which only the wire
    // count (PostgreSQL) sees.
    let registration = u64::from(count.round_trips().is_some());
    assert_eq!(start_cost, 2 + registration, "resume cost");
}

/// A transaction step adds only its checkpoint write (and on PostgreSQL
/// its idle bound) to the user's transaction; a new child workflow costs one read and one transaction
/// of two writes (its row, and the entry in its parent's journal); a
/// recorded child costs nothing.
async fn transaction_and_child_costs(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (db, count) = t.counted().await;
    let ctx = Ctx::start(&db, "cost", None).await.unwrap();
    let before = count.total();
    let _: u32 = ctx
        .transaction("tx", |_tx| Box::pin(async { Ok(1) }))
        .await
        .unwrap();
    // check read + checkpoint write (BEGIN/COMMIT are not statements
    // here); on PostgreSQL also the bound on how long the transaction may
    // sit idle (a stopped executor must not hold its rows past its lease).
    let idle_bound = u64::from(backend == Backend::Postgres);
    assert_eq!(count.total() - before, 2 + idle_bound);
    let before = count.total();
    let child = ctx.child("kid", None).await.unwrap();
    assert_eq!(count.total() - before, 3);
    // The new child has no history to read: its first step is two statements.
    let before = count.total();
    let _: u32 = child.step("s", || async { Ok(1) }).await.unwrap();
    assert_eq!(count.total() - before, 2);
    child.complete(&1).await.unwrap();
    ctx.complete(&2).await.unwrap();
    drop((ctx, child));

    // Replaying the tree: one history read for the root (the child's row
    // comes with it), one for the child, nothing else.
    let ctx = Ctx::start(&db, "cost", None).await.unwrap();
    let before = count.total();
    let _: u32 = ctx
        .transaction("tx", |_tx| Box::pin(async { Ok(9) }))
        .await
        .unwrap();
    let child = ctx.child("kid", None).await.unwrap();
    let _: u32 = child.step("s", || async { Ok(9) }).await.unwrap();
    assert_eq!(count.total() - before, 2, "history pages of root and child");
}

/// The engine's statements are planned once per connection and reused,
/// never planned for each call's values. (Left to choose, PostgreSQL plans
/// a prepared statement for its values on its first five calls, and on
/// every call for good once its generic plan looks the costlier: the claim
/// of a queue's next workflow did in about one benchmark run in four, at
/// 1.1 to 1.45 ms of the server's time a call.)
async fn engine_statements_are_planned_once(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "plans", None).await.unwrap();
    for i in 0..20u32 {
        let _: u32 = ctx.step("s", || async move { Ok(i) }).await.unwrap();
    }
    ctx.complete(&0u32).await.unwrap();
    // Claims of queued work, one slot: each claim of the next workflow is
    // the one statement on the engine's connection.
    let mut registry = Registry::new();
    registry.register("queued", |ctx: Ctx, n: u32| async move {
        let _: u32 = ctx.step("s", || async move { Ok(n) }).await?;
        Ok(n)
    });
    let worker = Worker::new(&t.db, registry).concurrency(1);
    let client = worker.client();
    let mut handles = Vec::new();
    for n in 0..10u32 {
        let options = EnqueueOptions::new().key(format!("queued-{n}"));
        handles.push(client.enqueue("queued", &n, options).await.unwrap());
    }
    let running = run_worker(worker);
    for (n, handle) in (0u32..).zip(&handles) {
        let got: u32 = handle.result(Duration::from_secs(60)).await.unwrap();
        assert_eq!(got, n);
    }
    running.stop().await;
    match durable::scratch::engine_plans(&t.db).await.unwrap() {
        Some(plans) => {
            assert_eq!(plans.custom, 0, "calls planned for their values: {plans:?}");
            assert!(plans.generic >= 20, "calls of a generic plan: {plans:?}");
        }
        None => assert_eq!(backend, Backend::Sqlite, "PostgreSQL has a plan cache"),
    }
}

both_backends!(
    fresh_step_costs_one_statement_replay_one_read_per_page,
    transaction_and_child_costs,
    engine_statements_are_planned_once,
);
