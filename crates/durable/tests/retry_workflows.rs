//! `Client::retry` on real workflows: a failed workflow runs again from its
//! failed call once the fault is fixed, on a worker or inline, with its
//! completed steps replayed (run once in all) and its failed attempt kept
//! in the tree; a failed spawned child is retried with its root; statuses
//! that cannot be retried are refused and change nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Backend, Runs, TestDb, count, ran, run_worker, until_id};
use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Status, Worker};

/// `order`: step `reserve`, then step `charge`, which fails while `broken`;
/// `parent`: step `plan`, then spawns `order` and joins it.
fn registry(runs: &Runs, broken: &Arc<AtomicBool>) -> Registry {
    let mut registry = Registry::new();
    let (r, b) = (runs.clone(), broken.clone());
    registry.register("order", move |ctx: Ctx, n: u32| {
        let (r, b) = (r.clone(), b.clone());
        async move {
            let r1 = r.clone();
            ctx.step("reserve", move || async move {
                ran(&r1, format!("reserve/{n}"));
                Ok(())
            })
            .await?;
            ctx.step("charge", move || async move {
                ran(&r, format!("charge/{n}"));
                if b.load(Ordering::SeqCst) {
                    Err(DurableError::custom("card service down"))
                } else {
                    Ok(n * 100)
                }
            })
            .await
        }
    });
    let r = runs.clone();
    registry.register("parent", move |ctx: Ctx, n: u32| {
        let r = r.clone();
        async move {
            ctx.step("plan", move || async move {
                ran(&r, format!("plan/{n}"));
                Ok(())
            })
            .await?;
            let child = ctx.spawn("order", &n).await?;
            let cents: u32 = child.join().await?;
            Ok(cents + 1)
        }
    });
    registry
}

fn worker(t: &TestDb, runs: &Runs, broken: &Arc<AtomicBool>) -> common::RunningWorker {
    run_worker(
        Worker::new(&t.db, registry(runs, broken))
            .concurrency(2)
            .poll_interval(Duration::from_millis(20)),
    )
}

/// Queued: fails, is retried after the fix, completes; `reserve` ran once,
/// `charge` twice; the failed attempt is in `retried`.
async fn a_failed_queued_workflow_runs_again_from_its_failed_step(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (runs, broken) = (Runs::default(), Arc::new(AtomicBool::new(true)));
    let w = worker(&t, &runs, &broken);
    let client = Client::new(&t.db);
    let handle = client
        .enqueue("order", &7u32, EnqueueOptions::new().key("order-7"))
        .await
        .unwrap();
    let failed = handle.result::<u32>(Duration::from_secs(30)).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        client.workflow(handle.id()).await.unwrap().status,
        Status::Failed
    );

    broken.store(false, Ordering::SeqCst); // the fix is deployed
    client.retry(handle.id()).await.unwrap();
    let cents: u32 = handle.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(cents, 700);
    assert_eq!(count(&runs, "reserve/7"), 1, "a completed step replays");
    assert_eq!(count(&runs, "charge/7"), 2, "the failed step ran again");
    let tree = client.tree(handle.id()).await.unwrap();
    assert_eq!(tree.workflow.status, Status::Completed);
    assert_eq!(tree.workflow.error, None);
    let charge = &tree.steps[1];
    assert_eq!(
        (charge.key.as_str(), charge.status, charge.attempts),
        ("charge#0", Status::Completed, 1)
    );
    assert_eq!(tree.retried.len(), 1);
    let old = &tree.retried[0];
    assert_eq!(
        (old.round, old.step.key.as_str(), old.step.status),
        (1, "charge#0", Status::Failed)
    );
    assert!(
        old.step
            .error
            .as_deref()
            .unwrap()
            .contains("card service down")
    );
    assert!(old.retried_at_ms >= old.step.created_at_ms);
    let completed = client.retry(handle.id()).await;
    assert!(
        matches!(completed, Err(DurableError::InvalidTransition { .. })),
        "{completed:?}"
    );
    w.stop().await;
}

/// Inline: after a retry, `Ctx::from_id` goes on from the failed step.
async fn a_failed_inline_workflow_goes_on_where_it_reattaches(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let ctx = Ctx::start_with_key(&t.db, "import", "import-1", None)
        .await
        .unwrap();
    let r = runs.clone();
    let fetch = move || {
        let r = r.clone();
        async move {
            ran(&r, "fetch".into());
            Ok(3u32)
        }
    };
    let _: u32 = ctx.step("fetch", fetch.clone()).await.unwrap();
    let parse: Result<u32, _> = ctx
        .step("parse", || async { Err(DurableError::custom("bad row 3")) })
        .await;
    let error = parse.unwrap_err();
    ctx.fail(&error.to_string()).await.unwrap();
    let id = ctx.task_id();
    assert!(matches!(client.retry(id).await, Ok(())));
    // The failed run's handle can write nothing more.
    let stale: Result<u32, _> = ctx.step("parse", || async { Ok(1) }).await;
    assert!(stale.is_err(), "{stale:?}");

    let again = Ctx::from_id(&t.db, id).await.unwrap();
    let _: u32 = again.step("fetch", fetch).await.unwrap();
    let rows: u32 = again.step("parse", || async { Ok(9) }).await.unwrap();
    again.complete(&rows).await.unwrap();
    assert_eq!(count(&runs, "fetch"), 1);
    let tree = client.tree(id).await.unwrap();
    assert_eq!(tree.workflow.status, Status::Completed);
    assert_eq!(tree.workflow.output, Some(serde_json::json!(9)));
    assert_eq!(tree.retried.len(), 1);
    let old = tree.retried[0].step.error.as_deref().unwrap();
    assert!(old.contains("bad row 3"), "{old}");
}

/// A spawned child failed, its join failed the parent: retrying the root
/// runs the child again on the worker and the parent's join again; the
/// parent's and the child's completed steps ran once.
async fn a_failed_spawned_child_is_retried_with_its_root(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (runs, broken) = (Runs::default(), Arc::new(AtomicBool::new(true)));
    let w = worker(&t, &runs, &broken);
    let client = Client::new(&t.db);
    let handle = client
        .enqueue("parent", &3u32, EnqueueOptions::new().key("parent-3"))
        .await
        .unwrap();
    assert!(handle.result::<u32>(Duration::from_secs(30)).await.is_err());
    let tree = client.tree(handle.id()).await.unwrap();
    let child = tree.steps[1].child.as_ref().expect("the spawned child");
    let child_id = child.workflow.id;
    assert_eq!(child.workflow.status, Status::Failed);
    let refused = client.retry(child_id).await;
    assert!(
        matches!(refused, Err(DurableError::InvalidInput(_))),
        "{refused:?}"
    );

    broken.store(false, Ordering::SeqCst);
    client.retry(handle.id()).await.unwrap();
    let total: u32 = handle.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(total, 301);
    until_id(&client, child_id, |w| w.status == Status::Completed).await;
    assert_eq!(count(&runs, "plan/3"), 1);
    assert_eq!(count(&runs, "reserve/3"), 1);
    assert_eq!(count(&runs, "charge/3"), 2);
    let tree = client.tree(handle.id()).await.unwrap();
    let joins: Vec<_> = tree.retried.iter().map(|r| r.step.key.as_str()).collect();
    assert_eq!(joins, ["join#0"], "the failed join was set aside");
    let child = tree.steps[1].child.as_ref().unwrap();
    assert_eq!(child.retried.len(), 1, "and the child's failed charge");
    w.stop().await;
}

/// Running, paused and unknown workflows cannot be retried; nothing changes.
async fn only_failed_or_cancelled_roots_are_retried(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let ctx = Ctx::start_with_key(&t.db, "long", "long-1", None)
        .await
        .unwrap();
    let id = ctx.task_id();
    let running = client.retry(id).await;
    assert!(
        matches!(running, Err(DurableError::InvalidTransition { .. })),
        "{running:?}"
    );
    client.pause(id).await.unwrap();
    let paused = client.retry_cancelled(id).await;
    assert!(
        matches!(paused, Err(DurableError::InvalidTransition { .. })),
        "{paused:?}"
    );
    assert_eq!(client.workflow(id).await.unwrap().status, Status::Paused);
    client.cancel(id).await.unwrap();
    let cancelled = client.retry(id).await;
    assert!(matches!(
        cancelled,
        Err(DurableError::InvalidTransition { .. })
    ));
    client.retry_cancelled(id).await.unwrap();
    assert_eq!(client.workflow(id).await.unwrap().status, Status::Pending);
    let unknown = durable::Uuid::new_v4();
    assert!(matches!(client.retry(unknown).await, Err(DurableError::NotFound(x)) if x == unknown));
}

/// Taken over from dead executors more often than the worker's limit: the
/// next claim fails it with `MaxRecoveryExceeded` instead of running it;
/// a retry starts its count afresh and it runs to its end.
async fn a_workflow_recovered_too_often_is_failed_until_retried(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (runs, broken) = (Runs::default(), Arc::new(AtomicBool::new(false)));
    let client = Client::new(&t.db);
    let mut id = None;
    let mut last = None;
    for _ in 0..3 {
        if let Some(dead) = last.take() {
            common::expire(&t.db, dead).await;
        }
        let executor = durable::Executor::new(&t.db);
        let ctx = executor
            .start("order", "poison-1", Some(serde_json::json!(5)))
            .await
            .unwrap();
        id = Some(ctx.task_id());
        last = Some(executor.id());
    }
    let id = id.unwrap();
    assert_eq!(client.workflow(id).await.unwrap().recoveries, 2);
    common::expire(&t.db, last.unwrap()).await;
    let w = run_worker(
        Worker::new(&t.db, registry(&runs, &broken))
            .max_recoveries(2)
            .poll_interval(Duration::from_millis(20)),
    );
    let handle = client.handle(id).await.unwrap();
    let poisoned = handle.result::<u32>(Duration::from_secs(30)).await;
    assert!(
        matches!(poisoned, Err(DurableError::MaxRecoveryExceeded { workflow, recoveries: 3 }) if workflow == id),
        "{poisoned:?}"
    );
    assert_eq!(count(&runs, "reserve/5"), 0, "it was not run again");
    let summary = client.workflow(id).await.unwrap();
    assert_eq!((summary.status, summary.recoveries), (Status::Failed, 3));

    client.retry(id).await.unwrap();
    let cents: u32 = handle.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(cents, 500);
    assert_eq!(client.workflow(id).await.unwrap().recoveries, 0);
    w.stop().await;
}

/// A fork copies the history before a position and runs on from there on
/// a worker: copied calls replay, later ones run again; the original is
/// untouched; positions past the end, after a child call, below zero,
/// of a child or an unknown id are refused.
async fn a_fork_replays_what_it_copied_and_runs_the_rest(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (runs, broken) = (Runs::default(), Arc::new(AtomicBool::new(false)));
    let w = worker(&t, &runs, &broken);
    let client = Client::new(&t.db);
    let handle = client
        .enqueue("order", &4u32, EnqueueOptions::new().key("order-4"))
        .await
        .unwrap();
    assert_eq!(
        handle.result::<u32>(Duration::from_secs(30)).await.unwrap(),
        400
    );
    let original = client.tree(handle.id()).await.unwrap();

    let fork = client.fork(handle.id(), 1).await.unwrap();
    assert_ne!(fork, handle.id());
    let forked = client.handle(fork).await.unwrap();
    assert_eq!(
        forked.result::<u32>(Duration::from_secs(30)).await.unwrap(),
        400
    );
    assert_eq!(count(&runs, "reserve/4"), 1, "the copied call replayed");
    assert_eq!(
        count(&runs, "charge/4"),
        2,
        "the call at the position ran again"
    );
    assert_eq!(
        client.tree(handle.id()).await.unwrap(),
        original,
        "the original is untouched"
    );
    let summary = client.workflow(fork).await.unwrap();
    assert_eq!(
        (summary.name.as_str(), summary.key),
        ("order", fork.to_string())
    );
    assert_eq!(summary.input, Some(serde_json::json!(4)));

    // At the end: everything replays.
    let whole = client.fork(handle.id(), 2).await.unwrap();
    let whole = client.handle(whole).await.unwrap();
    assert_eq!(
        whole.result::<u32>(Duration::from_secs(30)).await.unwrap(),
        400
    );
    assert_eq!(
        (count(&runs, "reserve/4"), count(&runs, "charge/4")),
        (1, 2)
    );

    for bad in [3, -1, i32::MAX] {
        let past = client.fork(handle.id(), bad).await;
        assert!(
            matches!(past, Err(DurableError::InvalidInput(_))),
            "{bad}: {past:?}"
        );
    }
    let unknown = durable::Uuid::new_v4();
    assert!(matches!(
        client.fork(unknown, 0).await,
        Err(DurableError::NotFound(_))
    ));
    let parent = client
        .enqueue("parent", &2u32, EnqueueOptions::new().key("parent-2"))
        .await
        .unwrap();
    assert_eq!(
        parent.result::<u32>(Duration::from_secs(30)).await.unwrap(),
        201
    );
    let after_spawn = client.fork(parent.id(), 2).await;
    assert!(
        matches!(after_spawn, Err(DurableError::InvalidInput(_))),
        "{after_spawn:?}"
    );
    let kid = client.tree(parent.id()).await.unwrap().steps[1]
        .child
        .as_ref()
        .unwrap()
        .workflow
        .id;
    assert!(matches!(
        client.fork(kid, 0).await,
        Err(DurableError::InvalidInput(_))
    ));
    let before_spawn = client.fork(parent.id(), 1).await.unwrap();
    let before_spawn = client.handle(before_spawn).await.unwrap();
    assert_eq!(
        before_spawn
            .result::<u32>(Duration::from_secs(30))
            .await
            .unwrap(),
        201
    );
    assert_eq!(count(&runs, "plan/2"), 1);
    let listed = client
        .count(&durable::WorkflowQuery::new().name("order"))
        .await
        .unwrap();
    assert_eq!(
        listed, 5,
        "order-4, its two forks, the children of parent-2 and of its fork"
    );
    w.stop().await;
}

/// A workflow that timed out is retried with its whole timeout again: the
/// passed deadline is gone, the run's `set_timeout` fixes a new one, and
/// the call that timed out runs.
async fn a_timed_out_workflow_gets_its_timeout_again(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let ctx = Ctx::start_with_key(&t.db, "slow", "slow-1", None)
        .await
        .unwrap();
    ctx.set_timeout(100).await.unwrap();
    let _: u32 = ctx.step("fetch", || async { Ok(1) }).await.unwrap();
    let first_deadline = client
        .workflow(ctx.task_id())
        .await
        .unwrap()
        .deadline_ms
        .unwrap();
    // Let the deadline pass (the database's clock decides, not this one).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late: Result<u32, _> = ctx.step("parse", || async { Ok(2) }).await;
    let err = late.unwrap_err();
    assert!(matches!(err, DurableError::Timeout(_)), "{err:?}");
    ctx.fail(&err.to_string()).await.unwrap();
    let id = ctx.task_id();

    client.retry(id).await.unwrap();
    assert_eq!(client.workflow(id).await.unwrap().deadline_ms, None);
    let again = Ctx::from_id(&t.db, id).await.unwrap();
    again.set_timeout(60_000).await.unwrap();
    let _: u32 = again.step("fetch", || async { Ok(1) }).await.unwrap();
    let parsed: u32 = again.step("parse", || async { Ok(2) }).await.unwrap();
    again.complete(&parsed).await.unwrap();
    let done = client.workflow(id).await.unwrap();
    assert_eq!(done.status, Status::Completed);
    assert!(
        done.deadline_ms.unwrap() >= first_deadline + 60_000 - 100,
        "a fresh deadline"
    );
}

both_backends!(
    a_fork_replays_what_it_copied_and_runs_the_rest,
    a_workflow_recovered_too_often_is_failed_until_retried,
    a_failed_queued_workflow_runs_again_from_its_failed_step,
    a_failed_inline_workflow_goes_on_where_it_reattaches,
    a_failed_spawned_child_is_retried_with_its_root,
    only_failed_or_cancelled_roots_are_retried,
    a_timed_out_workflow_gets_its_timeout_again,
);
