//! Workers: enqueued workflows run on executors, with typed errors for bad
//! work and a worker that survives it.

mod common;

use std::time::Duration;

use common::{Backend, TestDb};
use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Status, Worker};
use tokio::sync::oneshot;

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register("double", |ctx: Ctx, n: u64| async move {
        let a: u64 = ctx.step("first", || async move { Ok(n) }).await?;
        ctx.step("second", || async move { Ok(a * 2) }).await
    });
    registry.register("explode", |_ctx: Ctx, _: ()| async move {
        if true {
            panic!("boom at {}", 42);
        }
        Ok(())
    });
    registry
}

/// Start a worker; the sender stops it.
fn spawn_worker(
    db: &durable::sea_orm::DatabaseConnection,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), DurableError>>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = Worker::new(db, registry()).poll_interval(Duration::from_millis(50));
    let handle = tokio::spawn(worker.run(async move {
        stopped.await.ok();
    }));
    (stop, handle)
}

/// An enqueued workflow runs on a worker and its typed result comes back.
async fn enqueued_workflow_runs(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (stop, worker) = spawn_worker(&t.db);
    let client = Client::new(&t.db);
    let handle = client
        .enqueue("double", &21u64, EnqueueOptions::new())
        .await
        .unwrap();
    assert!(handle.is_new());
    let out: u64 = handle.result(Duration::from_secs(20)).await.unwrap();
    assert_eq!(out, 42);
    assert_eq!(handle.status().await.unwrap(), Status::Completed);
    // Looked up later by id, from another pool.
    let other = Client::new(&TestDb::connect(&t.url).await);
    let again: u64 = other
        .handle(handle.id())
        .await
        .unwrap()
        .result(Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(again, 42);
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
}

/// Enqueueing one key twice gives one workflow and says so; a different
/// name or input under that key is a conflict.
async fn enqueue_is_idempotent_by_key(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let first = client
        .enqueue("double", &1u64, EnqueueOptions::new().key("k1"))
        .await
        .unwrap();
    let second = client
        .enqueue("double", &1u64, EnqueueOptions::new().key("k1"))
        .await
        .unwrap();
    assert!(first.is_new() && !second.is_new());
    assert_eq!(first.id(), second.id());
    let err = client
        .enqueue("double", &2u64, EnqueueOptions::new().key("k1"))
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::Conflict { .. }), "{err:?}");
    let err = client
        .enqueue("explode", &(), EnqueueOptions::new().key("k1"))
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::Conflict { .. }), "{err:?}");
}

/// Unknown queues and (with a registry) unknown workflows are refused.
async fn unknown_queue_and_workflow_are_typed_errors(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let err = client
        .enqueue("double", &1u64, EnqueueOptions::new().queue("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DurableError::UnknownQueue(ref q) if q == "nope"),
        "{err:?}"
    );
    let client = Worker::new(&t.db, registry()).client();
    let err = client
        .enqueue("missing", &1u64, EnqueueOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DurableError::UnknownWorkflow(ref n) if n == "missing"),
        "{err:?}"
    );
}

/// A workflow that panics is FAILED with the panic message; one whose input
/// does not deserialize is FAILED with a typed message; the worker goes on.
async fn panics_and_bad_input_fail_the_workflow_not_the_worker(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (stop, worker) = spawn_worker(&t.db);
    let client = Client::new(&t.db);
    let boom = client
        .enqueue("explode", &(), EnqueueOptions::new())
        .await
        .unwrap();
    let bad = client
        .enqueue("double", &"not a number", EnqueueOptions::new())
        .await
        .unwrap();
    let good = client
        .enqueue("double", &5u64, EnqueueOptions::new())
        .await
        .unwrap();
    match boom
        .result::<()>(Duration::from_secs(20))
        .await
        .unwrap_err()
    {
        DurableError::WorkflowFailed { message, .. } => {
            assert!(message.contains("panicked: boom at 42"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match bad
        .result::<u64>(Duration::from_secs(20))
        .await
        .unwrap_err()
    {
        DurableError::WorkflowFailed { message, .. } => {
            assert!(message.contains("does not deserialize"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        good.result::<u64>(Duration::from_secs(20)).await.unwrap(),
        10
    );
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
}

/// A registered workflow runs inline with `Client::run`; a second run
/// returns the saved output.
async fn registered_workflow_runs_inline(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Worker::new(&t.db, registry()).client();
    let out: u64 = client.run("double", "inline-1", &4u64).await.unwrap();
    assert_eq!(out, 8);
    let again: u64 = client.run("double", "inline-1", &999u64).await.unwrap();
    assert_eq!(again, 8);
}

/// `Client::run` runs a workflow as a worker does: a panic is caught and
/// recorded (the workflow is FAILED, not left RUNNING), and a re-run
/// returns the recorded failure without running it again.
async fn inline_run_records_a_panic(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Worker::new(&t.db, registry()).client();
    let err = client
        .run::<_, ()>("explode", "boom-1", &())
        .await
        .unwrap_err();
    match &err {
        DurableError::WorkflowFailed { message, .. } => {
            assert!(message.contains("panicked: boom at 42"), "{message}")
        }
        other => panic!("expected WorkflowFailed, got {other:?}"),
    }
    let summary = client.workflow_by_key("boom-1").await.unwrap();
    assert_eq!(summary.status, Status::Failed);
    assert!(summary.error.unwrap().contains("boom at 42"));
    let again = client
        .run::<_, ()>("explode", "boom-1", &())
        .await
        .unwrap_err();
    assert!(
        matches!(again, DurableError::WorkflowFailed { .. }),
        "{again:?}"
    );
}

/// Waiting for a result that is not there yet says so, with its own
/// variant (not the deadline's `Timeout`); the workflow goes on.
async fn waiting_for_a_result_times_out_distinctly(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let handle = client
        .enqueue("double", &1u64, EnqueueOptions::new().key("nobody-runs-me"))
        .await
        .unwrap();
    let err = handle
        .result::<u64>(Duration::from_millis(50))
        .await
        .unwrap_err();
    match err {
        DurableError::WaitTimeout { workflow, waited } => {
            assert_eq!((workflow, waited), (handle.id(), Duration::from_millis(50)));
        }
        other => panic!("expected WaitTimeout, got {other:?}"),
    }
    assert_eq!(handle.status().await.unwrap(), Status::Pending);
    let err = client.handle_by_key("no-such-key").await.unwrap_err();
    assert!(
        matches!(&err, DurableError::KeyNotFound(k) if k == "no-such-key"),
        "{err:?}"
    );
    assert!(err.is_not_found());
    let err = client.handle(durable::Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, DurableError::NotFound(_)) && err.is_not_found());
}

/// A workflow paused while a worker runs it: the running step finishes and
/// is saved, the next one does not start, the worker lets it go; after
/// `resume` a worker takes it again and it finishes, nothing run twice.
async fn paused_under_a_worker_resumes_after_resume(backend: Backend) {
    let t = TestDb::new(backend).await;
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let runs = std::sync::Arc::new(std::sync::Mutex::new(Vec::<&'static str>::new()));
    let mut registry = Registry::new();
    let (g, r) = (gate.clone(), runs.clone());
    registry.register("gated", move |ctx: Ctx, _: ()| {
        let (g, r) = (g.clone(), r.clone());
        async move {
            let r1 = r.clone();
            ctx.step("gate", move || async move {
                r1.lock().unwrap().push("gate");
                g.acquire().await.unwrap().forget();
                Ok(())
            })
            .await?;
            ctx.step("after", move || async move {
                r.lock().unwrap().push("after");
                Ok(1u32)
            })
            .await
        }
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = Worker::new(&t.db, registry).poll_interval(Duration::from_millis(20));
    let task = tokio::spawn(worker.run(async move {
        stopped.await.ok();
    }));
    let client = Client::new(&t.db);
    let handle = client
        .enqueue("gated", &(), EnqueueOptions::new().key("g"))
        .await
        .unwrap();
    while runs.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.pause(handle.id()).await.unwrap();
    gate.add_permits(1);
    let mut released = false;
    for _ in 0..1500 {
        let s = client.workflow(handle.id()).await.unwrap();
        if s.status == Status::Paused && s.owner.is_none() {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "the worker did not let the paused workflow go");
    assert_eq!(*runs.lock().unwrap(), ["gate"]);
    client.resume(handle.id()).await.unwrap();
    let out: u32 = handle.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(out, 1);
    assert_eq!(*runs.lock().unwrap(), ["gate", "after"]);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

both_backends!(
    paused_under_a_worker_resumes_after_resume,
    inline_run_records_a_panic,
    waiting_for_a_result_times_out_distinctly,
    enqueued_workflow_runs,
    enqueue_is_idempotent_by_key,
    unknown_queue_and_workflow_are_typed_errors,
    panics_and_bad_input_fail_the_workflow_not_the_worker,
    registered_workflow_runs_inline,
);
