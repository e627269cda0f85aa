//! Leases under faults, in one process: an executor that cannot renew
//! its lease starts no step, and once the database says the lease lapsed
//! it gives its work up rather than carrying on as if nothing happened; a
//! workflow is never run twice at once inside one worker, even when its
//! own lease lapsed in the middle of a step and the work came back to it.
//! (Faults from outside, with real processes, are in `crates/durable-faults`.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Backend, TestDb};
use durable::sea_orm::{
    ConnectionTrait, DatabaseTransaction, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use durable::{Client, DurableError, EnqueueOptions, Executor, Registry, Status, Worker};

/// Hold what an executor's heartbeat needs to write for `hold`: SQLite's
/// write lock (`BEGIN IMMEDIATE` on another connection), PostgreSQL's row
/// of the executor (`FOR UPDATE`), as a stuck transaction of another
/// process would.
async fn block_heartbeats(t: &TestDb, executor: durable::Uuid, hold: Duration) {
    let other = TestDb::connect(&t.url).await;
    let txn: DatabaseTransaction = match t.backend {
        Backend::Sqlite => {
            let options = TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            };
            other.begin_with_options(options).await.unwrap()
        }
        Backend::Postgres => {
            let txn = other.begin().await.unwrap();
            let stmt = Statement::from_sql_and_values(
                txn.get_database_backend(),
                "SELECT id FROM durable_executor WHERE id = $1 FOR UPDATE",
                [common::id_value(&t.db, executor)],
            );
            assert!(txn.query_one_raw(stmt).await.unwrap().is_some());
            txn
        }
    };
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        txn.commit().await.unwrap();
    });
}

/// The call was refused for the lapsed lease (`LeaseLost`, or
/// `Interrupted` after waiting a lease for a beat), its body never ran
/// (`body_runs` is 0: else `why`), and the executor gave the workflow up.
async fn refused_and_released(
    t: &TestDb,
    ctx: &durable::Ctx,
    refused: Result<u32, DurableError>,
    body_runs: &AtomicU32,
    why: &str,
) {
    assert!(
        matches!(
            refused,
            Err(DurableError::LeaseLost { .. } | DurableError::Interrupted(_))
        ),
        "{refused:?}"
    );
    assert_eq!(body_runs.load(Ordering::SeqCst), 0, "{why}");
    let client = Client::new(&t.db);
    common::until_id(&client, ctx.task_id(), |s| {
        (s.status, s.owner) == (Status::Pending, None)
    })
    .await;
}

/// Heartbeats blocked for three leases: the next step does not start
/// while the lease cannot be proven (it waits one lease for a beat, then
/// gives up; its body never ran); when the database answers again the
/// lease has lapsed by its clock, so the executor releases the workflow,
/// and the next run resumes it and runs the step once.
async fn a_lapsed_lease_starts_no_step(backend: Backend) {
    let t = TestDb::new(backend).await;
    let executor = Executor::with_lease(&t.db, Duration::from_secs(1));
    let ctx = executor.start("lapse", "lapse-1", None).await.unwrap();
    let (a, b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let _: u32 = ctx.step("a", common::counted(&a, 1)).await.unwrap();
    block_heartbeats(&t, executor.id(), Duration::from_secs(3)).await;
    // Past the proven part of the lease (0.9 s after the last answered beat).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // It waits at most one lease for a beat to answer (`Interrupted`), or
    // sees the answer: the lease lapsed and the work was released.
    let refused = ctx.step("b", common::counted(&b, 2u32)).await;
    refused_and_released(&t, &ctx, refused, &b, "a step started under a lapsed lease").await;

    let again = Executor::new(&t.db)
        .start("lapse", "lapse-1", None)
        .await
        .unwrap();
    let _: u32 = again.step("a", common::counted(&a, 1)).await.unwrap();
    assert_eq!(again.step("b", common::counted(&b, 2u32)).await.unwrap(), 2);
    again.complete(&"done").await.unwrap();
    assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (1, 1));
}

/// A worker's lease lapses while a step of its only workflow runs (its
/// executor row is expired, as a stall past the lease would): the
/// executor releases its work, the worker claims the workflow again, and
/// the new run waits for the old one to leave the process. The step body
/// never runs twice at once, and the workflow completes.
async fn a_workflow_never_runs_twice_at_once_in_one_worker(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (running, most, runs) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
    );
    let mut registry = Registry::new();
    let (r, m, n) = (running.clone(), most.clone(), runs.clone());
    registry.register("slow", move |ctx: durable::Ctx, _input: u32| {
        let (r, m, n) = (r.clone(), m.clone(), n.clone());
        async move {
            ctx.step("long", || async move {
                n.fetch_add(1, Ordering::SeqCst);
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                Ok(7u32)
            })
            .await
        }
    });
    let worker = Worker::new(&t.db, registry)
        .lease(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(20));
    let me = worker.id();
    let client = worker.client();
    let worker = common::run_worker(worker);
    let handle = client
        .enqueue("slow", &0u32, EnqueueOptions::new().key("slow-1"))
        .await
        .unwrap();
    while runs.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    common::expire(&t.db, me).await;
    let out: u32 = handle.result(Duration::from_secs(60)).await.unwrap();
    worker.stop().await;
    assert_eq!(out, 7);
    assert_eq!(most.load(Ordering::SeqCst), 1, "the step ran twice at once");
    let runs = runs.load(Ordering::SeqCst);
    assert!((1..=2).contains(&runs), "{runs} runs of the step");
}

both_backends!(
    a_lapsed_lease_starts_no_step,
    a_workflow_never_runs_twice_at_once_in_one_worker,
    a_full_pool_does_not_starve_the_heartbeat,
);

/// A transaction step whose transaction cannot open for longer than the
/// lease: another process holds SQLite's write lock, which the executor's
/// heartbeats need too. The step's check answered at once, under a proven
/// lease, but by the time the transaction opens that proof has run out, and
/// another executor could have taken the workflow over and finished the
/// step meanwhile: the body must not start on that check. It checks again,
/// finds the lease lapsed and gives the workflow up; the next run runs the
/// body once. (SQLite only: nothing inside one process can hold up the
/// opening of a PostgreSQL transaction; the fault suite's black holes do
/// it from outside, for PostgreSQL.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_transaction_opened_after_the_lease_runs_no_body() {
    let t = TestDb::new(Backend::Sqlite).await;
    let executor = Executor::with_lease(&t.db, Duration::from_secs(1));
    let ctx = executor.start("opening", "opening-1", None).await.unwrap();
    let (a, b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let _: u32 = ctx.step("a", common::counted(&a, 1)).await.unwrap();
    block_heartbeats(&t, executor.id(), Duration::from_millis(2500)).await;
    let refused = ctx.transaction("t", counted_in_transaction(&b, 2)).await;
    let why = "a transaction step's body started on a check older than the proven lease";
    refused_and_released(&t, &ctx, refused, &b, why).await;

    let again = Executor::new(&t.db)
        .start("opening", "opening-1", None)
        .await
        .unwrap();
    let _: u32 = again.step("a", common::counted(&a, 1)).await.unwrap();
    let out: u32 = again
        .transaction("t", counted_in_transaction(&b, 2))
        .await
        .unwrap();
    again.complete(&"done").await.unwrap();
    assert_eq!(
        (out, a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)),
        (2, 1, 1)
    );
}

/// A transaction step's body that counts its runs and returns `value`.
fn counted_in_transaction(
    calls: &Arc<AtomicU32>,
    value: u32,
) -> impl for<'tx> FnOnce(
    &'tx DatabaseTransaction,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<u32, DurableError>> + Send + 'tx>,
> + Send {
    let calls = calls.clone();
    move |_tx| {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(value)
        })
    }
}

/// Every connection of the user's pool is held (by long transaction steps,
/// or the user's own queries) for three leases: the heartbeats, on a
/// connection of their own, keep the lease alive, and the workflow goes on
/// once the pool is free again.
async fn a_full_pool_does_not_starve_the_heartbeat(backend: Backend) {
    use durable::sea_orm::{ConnectOptions, Database, TransactionTrait};
    let t = TestDb::new(backend).await;
    let mut options = ConnectOptions::new(t.url.clone());
    options.max_connections(2).min_connections(0);
    let pool = Database::connect(options).await.unwrap();
    let executor = Executor::with_lease(&pool, Duration::from_secs(1));
    let ctx = executor.start("full", "full-1", None).await.unwrap();
    let a = Arc::new(AtomicU32::new(0));
    let _: u32 = ctx.step("a", common::counted(&a, 1)).await.unwrap();
    let held = (pool.begin().await.unwrap(), pool.begin().await.unwrap());
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            common::lease_live(&t, executor.id()).await,
            "the lease ran out while the pool was full"
        );
    }
    drop(held);
    let b: u32 = ctx.step("b", common::counted(&a, 2)).await.unwrap();
    ctx.complete(&"done").await.unwrap();
    assert_eq!((b, a.load(Ordering::SeqCst)), (2, 2));
}
