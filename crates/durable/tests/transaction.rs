//! Transaction steps: the user's writes and the checkpoint commit together
//! or not at all, also when the workflow was taken over by another executor.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Backend, TestDb, child_row, counted, expire, row, row_under, step_failed};
use durable::sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement};
use durable::{Ctx, DurableError, Executor};

/// A fresh test database with the user table `docs`.
async fn with_docs(backend: Backend) -> TestDb {
    let t = TestDb::new(backend).await;
    t.db.execute_unprepared("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .await
        .unwrap();
    t
}

/// Insert one row into `docs` (inside the step's transaction).
async fn insert(tx: &DatabaseTransaction, id: i32, body: &str) -> Result<u64, DurableError> {
    let stmt = Statement::from_sql_and_values(
        tx.get_database_backend(),
        "INSERT INTO docs (id, body) VALUES ($1, $2)",
        [id.into(), body.into()],
    );
    Ok(tx.execute_raw(stmt).await?.rows_affected())
}

/// The future a transaction step's body returns.
type TxFuture<'tx, T> = Pin<Box<dyn Future<Output = Result<T, DurableError>> + Send + 'tx>>;

/// A transaction body that counts its runs in `calls` and inserts one row into `docs`.
fn counted_insert(
    calls: &Arc<AtomicU32>,
    id: i32,
    body: &'static str,
) -> impl for<'tx> FnOnce(&'tx DatabaseTransaction) -> TxFuture<'tx, u64> + Send {
    let calls = calls.clone();
    move |tx| {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            insert(tx, id, body).await
        })
    }
}

/// How many rows `docs` holds, as any other connection sees it.
async fn docs(db: &DatabaseConnection) -> i64 {
    let stmt = Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) FROM docs");
    db.query_one_raw(stmt)
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap()
}

/// Rows and the COMPLETED checkpoint become visible together; a replay neither runs nor writes.
async fn rows_and_checkpoint_commit_together(backend: Backend) {
    let t = with_docs(backend).await;
    let ctx = Ctx::start(&t.db, "load", None).await.unwrap();
    let n: u64 = ctx
        .transaction("insert", |tx| {
            Box::pin(async move {
                let mut n = 0;
                for id in 1..=3 {
                    n += insert(tx, id, "it's \"quoted\"").await?;
                }
                Ok(n)
            })
        })
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(docs(&t.db).await, 3);
    let r = row_under(&t.db, ctx.task_id(), "insert#0").await;
    assert_eq!(
        (r.kind.as_str(), r.status.as_str(), r.output.as_deref()),
        ("TRANSACTION", "COMPLETED", Some("3"))
    );

    drop(ctx);
    let ctx = Ctx::start(&t.db, "load", None).await.unwrap();
    let again = ctx
        .transaction::<u64, _>("insert", |_tx| {
            Box::pin(async { panic!("a committed transaction ran again") })
        })
        .await
        .unwrap();
    assert_eq!(again, 3);
    assert_eq!(docs(&t.db).await, 3, "a replay wrote rows");
    assert_eq!(row_under(&t.db, ctx.task_id(), "insert#0").await, r);
}

/// A closure that wrote rows and then returned an error leaves no rows and no COMPLETED record.
async fn error_rolls_back_user_writes(backend: Backend) {
    let t = with_docs(backend).await;
    let ctx = Ctx::start(&t.db, "bad", None).await.unwrap();
    let err = ctx
        .transaction::<u64, _>("insert", |tx| {
            Box::pin(async move {
                insert(tx, 1, "one").await?;
                insert(tx, 2, "two").await?;
                Err(DurableError::custom("validation failed after insert"))
            })
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DurableError::Custom(m) if m == "validation failed after insert"),
        "{err:?}"
    );
    assert_eq!(
        docs(&t.db).await,
        0,
        "rows of a failed transaction are visible"
    );
    let r = row_under(&t.db, ctx.task_id(), "insert#0").await;
    assert_eq!((r.status.as_str(), r.output.as_deref()), ("FAILED", None));
    assert_eq!(r.error.as_deref(), Some("validation failed after insert"));

    drop(ctx);
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start(&t.db, "bad", None).await.unwrap();
    let replayed = ctx
        .transaction("insert", counted_insert(&calls, 1, "one"))
        .await;
    let (step, message) = step_failed(replayed);
    assert_eq!(
        (step.as_str(), message.as_str()),
        ("insert#0", "validation failed after insert")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(docs(&t.db).await, 0);
}

/// A database error inside the closure (duplicate key) rolls back the rows written before it.
async fn db_error_rolls_back_user_writes(backend: Backend) {
    let t = with_docs(backend).await;
    let ctx = Ctx::start(&t.db, "dup", None).await.unwrap();
    let err = ctx
        .transaction("insert", |tx| {
            Box::pin(async move {
                insert(tx, 1, "first").await?;
                insert(tx, 2, "second").await?;
                insert(tx, 1, "duplicate").await
            })
        })
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::Db(_)), "{err:?}");
    assert_eq!(
        docs(&t.db).await,
        0,
        "rows before the failing statement are visible"
    );
    let r = child_row(&t.db, ctx.task_id(), "insert#0").await;
    assert!(r.as_ref().is_none_or(|r| r.status != "COMPLETED"), "{r:?}");
    // The workflow goes on: a later transaction commits normally.
    let n = ctx
        .transaction("again", |tx| {
            Box::pin(async move { insert(tx, 1, "ok").await })
        })
        .await
        .unwrap();
    assert_eq!((n, docs(&t.db).await), (1, 1));
}

/// After a takeover the stale owner commits nothing: no rows, no checkpoints; the new owner does.
async fn stale_owner_writes_nothing(backend: Backend) {
    let t = with_docs(backend).await;
    let old = Executor::new(&t.db);
    let ctx1 = old.start("pay", "order-1", None).await.unwrap();
    assert_eq!(ctx1.step("a", || async { Ok(1) }).await.unwrap(), 1);
    let epoch = row(&t.db, ctx1.task_id()).await.lease_epoch;

    expire(&t.db, old.id()).await;
    let new = Executor::new(&t.db);
    let ctx2 = new.start("pay", "order-1", None).await.unwrap();
    assert_eq!(ctx2.task_id(), ctx1.task_id());
    let root = row(&t.db, ctx1.task_id()).await;
    assert_eq!(
        (root.owner_id, root.lease_epoch),
        (Some(new.id()), epoch + 1)
    );

    let calls = Arc::new(AtomicU32::new(0));
    let err = ctx1
        .transaction("write", counted_insert(&calls, 1, "stale"))
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::LeaseLost { .. }), "{err:?}");
    let err = ctx1.step("b", counted(&calls, 2)).await.unwrap_err();
    assert!(matches!(err, DurableError::LeaseLost { .. }), "{err:?}");
    let err = ctx1.complete(&"stale").await.unwrap_err();
    assert!(matches!(err, DurableError::LeaseLost { .. }), "{err:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the stale owner ran step bodies"
    );
    assert_eq!(docs(&t.db).await, 0);
    assert!(child_row(&t.db, ctx1.task_id(), "write#0").await.is_none());
    assert!(child_row(&t.db, ctx1.task_id(), "b#0").await.is_none());

    // The new owner replays `a` and does the work once.
    assert_eq!(ctx2.step("a", || async { Ok(99) }).await.unwrap(), 1);
    let n = ctx2
        .transaction("write", |tx| {
            Box::pin(async move { insert(tx, 1, "new owner").await })
        })
        .await
        .unwrap();
    ctx2.complete(&n).await.unwrap();
    assert_eq!(docs(&t.db).await, 1);
    assert_eq!(
        row_under(&t.db, ctx1.task_id(), "write#0").await.status,
        "COMPLETED"
    );
    let root = row(&t.db, ctx1.task_id()).await;
    assert_eq!(
        (root.status.as_str(), root.owner_id),
        ("COMPLETED", Some(new.id()))
    );
}

/// A takeover while a plain step runs: the step's result is refused (LeaseLost) and never recorded.
async fn takeover_during_step_rejects_its_checkpoint(backend: Backend) {
    let t = with_docs(backend).await;
    let old = Executor::new(&t.db);
    let new = Executor::new(&t.db);
    let ctx1 = old.start("pay", "order-2", None).await.unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let taken = Arc::new(tokio::sync::Mutex::new(None));

    let (c, slot, db, old_id, new2) = (
        calls.clone(),
        taken.clone(),
        t.db.clone(),
        old.id(),
        new.clone(),
    );
    let err = ctx1
        .step("charge", || async move {
            c.fetch_add(1, Ordering::SeqCst);
            // The owner stalls past its lease; another executor takes over.
            expire(&db, old_id).await;
            *slot.lock().await = Some(new2.start("pay", "order-2", None).await.unwrap());
            Ok(1)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::LeaseLost { .. }), "{err:?}");
    assert!(
        child_row(&t.db, ctx1.task_id(), "charge#0").await.is_none(),
        "a stale result was recorded"
    );

    let ctx2 = taken.lock().await.take().unwrap();
    let v = ctx2.step("charge", counted(&calls, 2)).await.unwrap();
    assert_eq!(v, 2);
    // At least once: the body ran in both owners, and one result was recorded.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let r = row_under(&t.db, ctx1.task_id(), "charge#0").await;
    assert_eq!(
        (r.status.as_str(), r.output.as_deref()),
        ("COMPLETED", Some("2"))
    );
}

/// A takeover racing a transaction step: rows and checkpoint are both committed or neither,
/// and in the end the rows exist exactly once.
async fn takeover_during_transaction_commits_both_or_neither(backend: Backend) {
    let t = with_docs(backend).await;
    let other = TestDb::connect(&t.url).await;
    let old = Executor::new(&t.db);
    let new = Executor::new(&other);
    let ctx1 = old.start("pay", "order-3", None).await.unwrap();
    let old_id = old.id();
    type Takeover = tokio::task::JoinHandle<Result<Ctx, DurableError>>;
    let pending: Arc<tokio::sync::Mutex<Option<Takeover>>> = Arc::default();
    let taken: Arc<tokio::sync::Mutex<Option<Ctx>>> = Arc::default();

    let (slot, ctx_slot) = (pending.clone(), taken.clone());
    let result = ctx1
        .transaction("write", move |tx| {
            Box::pin(async move {
                insert(tx, 1, "racing").await?;
                // The owner stalls past its lease and another executor takes over.
                let mut handle = tokio::spawn(async move {
                    expire(&other, old_id).await;
                    new.start("pay", "order-3", None).await
                });
                // PostgreSQL: the takeover does not wait for this transaction
                // and finishes now. SQLite: this transaction holds the write
                // lock, so the takeover must wait for it; give it a moment.
                let wait = match backend {
                    Backend::Postgres => Duration::from_secs(30),
                    Backend::Sqlite => Duration::from_millis(300),
                };
                match tokio::time::timeout(wait, &mut handle).await {
                    Ok(ctx2) => *ctx_slot.lock().await = Some(ctx2.unwrap().unwrap()),
                    Err(_) => *slot.lock().await = Some(handle),
                }
                Ok(1u64)
            })
        })
        .await;
    let took_over_first = taken.lock().await.is_some();
    let record = child_row(&t.db, ctx1.task_id(), "write#0").await;
    let committed = record.as_ref().is_some_and(|r| r.status == "COMPLETED");
    // Both or neither.
    assert_eq!(
        docs(&t.db).await,
        i64::from(committed),
        "rows and checkpoint disagree: {record:?}"
    );
    match backend {
        Backend::Postgres => {
            assert!(took_over_first, "the takeover waited for the transaction");
            assert!(
                matches!(result, Err(DurableError::LeaseLost { .. })),
                "{result:?}"
            );
            assert!(record.is_none(), "{record:?}");
        }
        Backend::Sqlite => {
            assert!(
                !took_over_first,
                "the takeover did not wait for the write lock"
            );
            assert_eq!(result.unwrap(), 1);
            assert!(committed);
        }
    }

    // Let the takeover finish; the new owner then completes the step once.
    let handle = pending.lock().await.take();
    let ctx2 = match handle {
        Some(handle) => handle.await.unwrap().unwrap(),
        None => taken.lock().await.take().unwrap(),
    };
    let err = ctx1.step("after", || async { Ok(0) }).await.unwrap_err();
    assert!(matches!(err, DurableError::LeaseLost { .. }), "{err:?}");
    let calls = Arc::new(AtomicU32::new(0));
    let n = ctx2
        .transaction("write", counted_insert(&calls, 1, "new owner"))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        u32::from(!committed),
        "ran again after a commit"
    );
    assert_eq!(docs(&t.db).await, 1, "the rows are not there exactly once");
    let r = row_under(&t.db, ctx1.task_id(), "write#0").await;
    assert_eq!(
        (r.status.as_str(), r.output.as_deref()),
        ("COMPLETED", Some("1"))
    );
    let root = row(&t.db, ctx1.task_id()).await;
    assert_ne!(root.owner_id, Some(old_id));
}

both_backends!(
    rows_and_checkpoint_commit_together,
    error_rolls_back_user_writes,
    db_error_rolls_back_user_writes,
    stale_owner_writes_nothing,
    takeover_during_step_rejects_its_checkpoint,
    takeover_during_transaction_commits_both_or_neither,
);
