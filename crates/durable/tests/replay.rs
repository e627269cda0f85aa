//! Replay: completed steps return their saved output without running; loops
//! and concurrent calls of one name get a checkpoint each; changed code is
//! reported as non-determinism.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Backend, TestDb, counted, root_count};
use durable::{Ctx, DurableError};
use serde_json::json;

async fn completed_step_is_not_run_again(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    for _run in 0..3 {
        let ctx = Ctx::start(&t.db, "wf", Some(json!({"a": 1})))
            .await
            .unwrap();
        let payload = "payload \"quoted\" ünïcode".to_string();
        let out: String = ctx.step("fetch", counted(&calls, payload)).await.unwrap();
        assert_eq!(out, "payload \"quoted\" ünïcode");
        ctx.complete(&out).await.unwrap();
        assert!(ctx.is_completed().await.unwrap());
        assert_eq!(
            ctx.get_output::<String>().await.unwrap().as_deref(),
            Some(out.as_str())
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the step ran more than once"
    );
}

async fn loops_get_one_checkpoint_per_call(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    for run in 0..2 {
        let ctx = Ctx::start(&t.db, "loop", None).await.unwrap();
        let mut seen = Vec::new();
        for i in 0..5u32 {
            let v: u32 = ctx.step("item", counted(&calls, i * 10)).await.unwrap();
            seen.push(v);
        }
        assert_eq!(seen, vec![0, 10, 20, 30, 40], "run {run}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

async fn join_all_keeps_call_order(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    for _run in 0..2 {
        let ctx = Ctx::start(&t.db, "fanout", None).await.unwrap();
        let futures = (0..8u32).map(|i| {
            let c = calls.clone();
            let ctx = &ctx;
            async move {
                ctx.step("part", || async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    // Finish in reverse order of the calls.
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(8 - i) * 3))
                        .await;
                    Ok(i)
                })
                .await
            }
        });
        let results: Vec<u32> = futures::future::join_all(futures)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(results, (0..8).collect::<Vec<_>>());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 8);
}

async fn finished_workflow_is_pure_replay(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "done", None).await.unwrap();
    ctx.step("a", || async { Ok(1) }).await.unwrap();
    let child = ctx.child("kid", Some(json!({"n": 1}))).await.unwrap();
    child.step("k", || async { Ok(2) }).await.unwrap();
    child.complete(&json!({"k": 2})).await.unwrap();
    ctx.complete(&json!({"total": 3})).await.unwrap();
    drop((ctx, child));

    let (db, statements) = t.counted().await;
    let ctx = Ctx::start(&db, "done", Some(json!("ignored")))
        .await
        .unwrap();
    let (before, writes_before) = (statements.total(), statements.writes());
    let a: i32 = ctx
        .step("a", || async { panic!("must not run") })
        .await
        .unwrap();
    let child = ctx.child("kid", None).await.unwrap();
    let k: i32 = child
        .step("k", || async { panic!("must not run") })
        .await
        .unwrap();
    child.complete(&json!({"k": 2})).await.unwrap();
    ctx.complete(&json!({"total": 3})).await.unwrap();
    assert_eq!((a, k), (1, 2));
    // Reads only: one history page for the root and one for the child.
    assert_eq!(statements.writes(), writes_before, "a pure replay wrote");
    assert_eq!(statements.total() - before, 2, "history pages read");
    // A different output for a finished workflow is refused; the first stands.
    assert!(matches!(
        ctx.complete(&json!({"total": 4})).await,
        Err(DurableError::OutputConflict { .. })
    ));
    assert_eq!(
        ctx.get_output::<serde_json::Value>().await.unwrap(),
        Some(json!({"total": 3}))
    );
    // New work in a finished workflow is a typed error, never a write.
    assert!(matches!(
        ctx.step("new", || async { Ok(0) }).await,
        Err(DurableError::NonDeterminism { .. })
    ));
}

async fn renamed_step_is_non_determinism(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "v1", None).await.unwrap();
    ctx.step("fetch", || async { Ok(1) }).await.unwrap();
    ctx.step("parse", || async { Ok(2) }).await.unwrap();
    drop(ctx);
    // The code changed: the first step was renamed.
    let ctx = Ctx::start(&t.db, "v1", None).await.unwrap();
    let err = ctx.step("download", || async { Ok(1) }).await.unwrap_err();
    match err {
        DurableError::NonDeterminism { step, detail, .. } => {
            assert_eq!(step, "download#0");
            assert!(detail.contains("fetch#0"), "{detail}");
        }
        other => panic!("expected non-determinism, got {other:?}"),
    }
    // A step recorded as a step but now called as a transaction is also caught.
    let ctx = Ctx::start(&t.db, "v1", None).await.unwrap();
    let err = ctx
        .transaction("fetch", |_tx| Box::pin(async { Ok(1) }))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DurableError::NonDeterminism { ref step, .. } if step == "fetch#0"),
        "{err:?}"
    );
}

async fn appended_step_runs_after_replay(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "grow", None).await.unwrap();
    ctx.step("a", || async { Ok(1) }).await.unwrap();
    drop(ctx);
    let ctx = Ctx::start(&t.db, "grow", None).await.unwrap();
    let a: i32 = ctx.step("a", || async { Ok(99) }).await.unwrap();
    let b: i32 = ctx.step("b", || async { Ok(2) }).await.unwrap();
    assert_eq!((a, b), (1, 2));
}

async fn keyed_workflows_run_separately(backend: Backend) {
    let t = TestDb::new(backend).await;
    let one = Ctx::start_with_key(&t.db, "charge", "order-1", None)
        .await
        .unwrap();
    let two = Ctx::start_with_key(&t.db, "charge", "order-2", None)
        .await
        .unwrap();
    assert_ne!(one.task_id(), two.task_id());
    let a: i32 = one.step("amount", || async { Ok(10) }).await.unwrap();
    let b: i32 = two.step("amount", || async { Ok(20) }).await.unwrap();
    assert_eq!((a, b), (10, 20));
    let again = Ctx::start_with_key(&t.db, "charge", "order-1", None)
        .await
        .unwrap();
    assert_eq!(again.task_id(), one.task_id());
    let err = Ctx::start_with_key(&t.db, "refund", "order-1", None)
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::InvalidInput(_)), "{err:?}");
}

async fn concurrent_starts_share_one_root(backend: Backend) {
    let t = TestDb::new(backend).await;
    let mut pools = Vec::new();
    for _ in 0..4 {
        pools.push(TestDb::connect(&t.url).await);
    }
    let starts = pools.iter().map(|db| Ctx::start(db, "race", None));
    let results = futures::future::join_all(starts).await;
    let ids: std::collections::HashSet<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|c| c.task_id()))
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(root_count(&t.db).await, 1);
}

both_backends!(
    completed_step_is_not_run_again,
    loops_get_one_checkpoint_per_call,
    join_all_keeps_call_order,
    finished_workflow_is_pure_replay,
    renamed_step_is_non_determinism,
    appended_step_runs_after_replay,
    keyed_workflows_run_separately,
    concurrent_starts_share_one_root,
);

/// Workflows can be spawned onto a multi-threaded runtime: the futures of
/// `start`, `step`, `transaction` and `child` are `Send`.
#[tokio::test]
async fn workflow_futures_are_send() {
    let t = TestDb::new(Backend::Sqlite).await;
    let db = t.db.clone();
    let handle = tokio::spawn(async move {
        let ctx = Ctx::start(&db, "spawned", None).await?;
        let a: u32 = ctx.step("a", || async { Ok(1) }).await?;
        let b: u32 = ctx
            .transaction("b", |_tx| Box::pin(async { Ok(2) }))
            .await?;
        let child = ctx.child("c", None).await?;
        child.complete(&(a + b)).await?;
        ctx.complete(&(a + b)).await?;
        Ok::<u32, DurableError>(a + b)
    });
    assert_eq!(handle.await.unwrap().unwrap(), 3);
}
