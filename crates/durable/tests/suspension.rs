//! Suspension: a workflow that waits releases its executor slot and holds
//! nothing in memory; an executor (another one, even) claims it again when
//! it is due and replays up to the wait. Exercised with the test-only wait
//! (`Ctx::wait_for_test`, feature `testing`); sleep, messages and joins,
//! built on it, are tested in `sleep_and_messages.rs` and `spawn_and_feeds.rs`.

mod common;

use std::time::Duration;

use common::{Backend, RunningWorker, Runs, TestDb, count, ran, run_worker, until_key};
use durable::sea_orm::DatabaseConnection;
use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Status, Worker};
use serde_json::{Value, json};

/// `waiter` (input: the wait in ms): a step, a wait for `approval`, a
/// step; returns the approval, or "timed out". `quick`: one step.
/// `self-waker`: wakes its own wait before it suspends.
fn registry(runs: &Runs, url: &str) -> Registry {
    let mut registry = Registry::new();
    let r = runs.clone();
    registry.register("waiter", move |ctx: Ctx, wait_ms: u64| {
        let r = r.clone();
        async move {
            let key = ctx.key().to_string();
            let (r1, k1) = (r.clone(), key.clone());
            ctx.step("before", move || async move {
                ran(&r1, format!("{k1}/before"));
                Ok(())
            })
            .await?;
            let approval = ctx
                .wait_for_test("approval", Duration::from_millis(wait_ms))
                .await?;
            let answer = approval.unwrap_or_else(|| json!("timed out"));
            let a = answer.clone();
            ctx.step("after", move || async move {
                ran(&r, format!("{key}/after"));
                Ok(a)
            })
            .await
        }
    });
    let r = runs.clone();
    registry.register("quick", move |ctx: Ctx, n: u64| {
        let r = r.clone();
        async move {
            ctx.step("q", move || async move {
                ran(&r, "quick".to_string());
                Ok(n)
            })
            .await
        }
    });
    let url = url.to_string();
    registry.register("self-waker", move |ctx: Ctx, _: ()| {
        let url = url.clone();
        async move {
            match ctx
                .wait_for_test("approval", Duration::from_secs(3600))
                .await
            {
                Err(suspended @ DurableError::Suspended { .. }) => {
                    // The waker comes between the wait's checkpoint and the
                    // release: the release must see it and stay claimable.
                    let db = durable::connect(&url).await?;
                    let woken = Client::new(&db)
                        .wake_for_test(ctx.task_id(), "approval", &json!("early"))
                        .await?;
                    assert!(woken);
                    Err(suspended)
                }
                Ok(approval) => Ok(approval),
                Err(other) => Err(other),
            }
        }
    });
    registry
}

fn spawn_worker(db: &DatabaseConnection, runs: &Runs, url: &str) -> RunningWorker {
    run_worker(
        Worker::new(db, registry(runs, url))
            .concurrency(1)
            .poll_interval(Duration::from_millis(20)),
    )
}

/// A waiting workflow frees the only slot of its worker (another workflow
/// runs meanwhile), survives that worker's shutdown, and is resumed by a
/// new worker when it is woken: the steps before the wait do not run again.
async fn waiting_frees_the_slot_and_resumes_elsewhere(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let worker = spawn_worker(&t.db, &runs, &t.url);
    let waiter = client
        .enqueue("waiter", &3_600_000u64, EnqueueOptions::new().key("w"))
        .await
        .unwrap();
    until_key(&client, "w", |s| s.waiting_for.is_some()).await;
    let summary = client.workflow(waiter.id()).await.unwrap();
    assert_eq!(summary.status, Status::Pending);
    assert!(summary.owner.is_none(), "a suspended workflow has no owner");
    assert_eq!(summary.waiting_for.as_deref(), Some("approval"));
    let wake_at = summary.wake_at_ms.expect("a wake-up time");
    assert!(wake_at >= summary.created_at_ms + 3_600_000);

    // The one slot is free: other work runs while it waits.
    let quick = client
        .enqueue("quick", &7u64, EnqueueOptions::new())
        .await
        .unwrap();
    let q: u64 = quick.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(q, 7);
    worker.stop().await;

    // Nothing of it lives in any process now; a new worker resumes it.
    let worker = spawn_worker(&t.db, &runs, &t.url);
    assert!(
        client
            .wake_for_test(waiter.id(), "approval", &json!({"by": "alice"}))
            .await
            .unwrap()
    );
    let out: Value = waiter.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(out, json!({"by": "alice"}));
    assert_eq!(
        count(&runs, "w/before"),
        1,
        "the step before the wait ran again"
    );
    assert_eq!(count(&runs, "w/after"), 1);
    // A second wake finds nothing waiting.
    assert!(
        !client
            .wake_for_test(waiter.id(), "approval", &json!(1))
            .await
            .unwrap()
    );
    let tree = client.tree(waiter.id()).await.unwrap();
    let wait = &tree.steps[1];
    assert_eq!(
        (wait.key.as_str(), wait.status),
        ("approval#0", Status::Completed)
    );
    assert_eq!(
        wait.wake_at_ms,
        Some(wake_at),
        "the wake-up time was fixed once"
    );
    worker.stop().await;
}

/// A wait that nobody wakes ends at its time (database clock), once.
async fn a_wait_times_out_at_its_time(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let worker = spawn_worker(&t.db, &runs, &t.url);
    let waiter = client
        .enqueue("waiter", &300u64, EnqueueOptions::new().key("short"))
        .await
        .unwrap();
    let out: Value = waiter.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(out, json!("timed out"));
    let tree = client.tree(waiter.id()).await.unwrap();
    let wait = &tree.steps[1];
    let finished = wait.finished_at_ms.expect("finished");
    assert!(finished >= wait.wake_at_ms.unwrap(), "{wait:?}");
    assert_eq!(count(&runs, "short/before"), 1);
    assert_eq!(count(&runs, "short/after"), 1);
    worker.stop().await;
}

/// A wake that lands after the wait was recorded but before the workflow
/// was released is not lost: it is claimable at once, not at its time.
async fn a_wake_during_the_release_is_not_lost(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let worker = spawn_worker(&t.db, &runs, &t.url);
    let handle = client
        .enqueue("self-waker", &(), EnqueueOptions::new().key("sw"))
        .await
        .unwrap();
    let out: Value = handle.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(out, json!("early"));
    worker.stop().await;
}

/// Waking an unknown workflow is a typed error; a finished one has nothing waiting.
async fn waking_bad_targets(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let err = client
        .wake_for_test(durable::Uuid::new_v4(), "approval", &json!(1))
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::NotFound(_)), "{err:?}");
    let ctx = Ctx::start(&t.db, "done", None).await.unwrap();
    ctx.complete(&1).await.unwrap();
    assert!(
        !client
            .wake_for_test(ctx.task_id(), "approval", &json!(1))
            .await
            .unwrap()
    );
}

both_backends!(
    waiting_frees_the_slot_and_resumes_elsewhere,
    a_wait_times_out_at_its_time,
    a_wake_during_the_release_is_not_lost,
    waking_bad_targets,
);
