//! Spawned children and what workflows publish, on both backends: a
//! spawned child runs on any executor under its own lease and its parent
//! suspends while it joins; a child's failure or cancel reaches the join as
//! a typed error; cancel cascades to spawned children; select picks the
//! first to finish; events keep every value and read the latest; streams
//! give each item once, in order, and end when closed or finished.

mod common;

use std::time::Duration;

use common::{Backend, RunningWorker, Runs, TestDb, count, ran, run_worker, until_id};
use durable::sea_orm::DatabaseConnection;
use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Status, StepKind, Worker};
use futures::StreamExt;
use serde_json::json;

/// `fan-out` (n): spawns n `double` children, joins all, returns the sum.
/// `double` (x): one step, 2x. `fails`: an error. `napper` (ms): sleeps.
/// `joiner` (child name, input): spawns one child and reports how its
/// join ended. `racer`: selects the first of a long and a short napper.
fn registry(runs: &Runs) -> Registry {
    let mut registry = Registry::new();
    let r = runs.clone();
    registry.register("fan-out", move |ctx: Ctx, n: u64| {
        let r = r.clone();
        async move {
            let (r1, key) = (r.clone(), ctx.key().to_string());
            ctx.step("plan", move || async move {
                ran(&r1, format!("{key}/plan"));
                Ok(())
            })
            .await?;
            let mut children = Vec::new();
            for x in 0..n {
                children.push(ctx.spawn("double", &x).await?);
            }
            let doubled: Vec<u64> = ctx.join_all(&children).await?;
            Ok(doubled.iter().sum::<u64>())
        }
    });
    let r = runs.clone();
    registry.register("double", move |ctx: Ctx, x: u64| {
        let r = r.clone();
        async move {
            ctx.step("double", move || async move {
                ran(&r, format!("double/{x}"));
                Ok(x * 2)
            })
            .await
        }
    });
    registry.register("fails", |_ctx: Ctx, _: u64| async move {
        Err::<(), _>(DurableError::custom("no such page"))
    });
    registry.register("napper", |ctx: Ctx, ms: u64| async move {
        ctx.sleep(Duration::from_millis(ms)).await?;
        Ok(ms)
    });
    registry.register(
        "joiner",
        |ctx: Ctx, (name, input): (String, u64)| async move {
            let child = ctx.spawn(&name, &input).await?;
            match child.join::<serde_json::Value>().await {
                Ok(out) => Ok(json!({ "ok": out })),
                Err(DurableError::ChildFailed {
                    status, message, ..
                }) => Ok(json!({ "failed": status.as_str(), "message": message })),
                Err(other) => Err(other),
            }
        },
    );
    registry.register("racer", |ctx: Ctx, _: ()| async move {
        let children = [
            ctx.spawn("napper", &3_600_000u64).await?,
            ctx.spawn("napper", &50u64).await?,
        ];
        let first = ctx.select(&children).await?;
        let ms: u64 = children[first].join().await?;
        Ok((first, ms))
    });
    registry
}

fn start_worker(db: &DatabaseConnection, runs: &Runs, concurrency: usize) -> RunningWorker {
    run_worker(
        Worker::new(db, registry(runs))
            .concurrency(concurrency)
            .poll_interval(Duration::from_millis(20)),
    )
}

/// Fan-out and fan-in on one worker with one slot: the parent suspends
/// while it joins (so its slot serves the children), each child runs once,
/// the parent's earlier step once, and the spawns are recorded.
async fn spawned_children_run_and_join(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let worker = start_worker(&t.db, &runs, 1);
    let handle = client
        .enqueue("fan-out", &4u64, EnqueueOptions::new().key("f"))
        .await
        .unwrap();
    let sum: u64 = handle.result(Duration::from_secs(60)).await.unwrap();
    assert_eq!(sum, 2 * (1 + 2 + 3));
    for x in 0..4 {
        assert_eq!(count(&runs, &format!("double/{x}")), 1, "child {x}");
    }
    assert_eq!(count(&runs, "f/plan"), 1);
    let tree = client.tree(handle.id()).await.unwrap();
    let kinds: Vec<StepKind> = tree.steps.iter().map(|s| s.kind).collect();
    assert_eq!(kinds[1..5], [StepKind::Spawn; 4]);
    assert!(kinds[5..].iter().all(|k| *k == StepKind::Join), "{kinds:?}");
    for spawn in &tree.steps[1..5] {
        let child = spawn.child.as_ref().expect("the spawned child");
        assert_eq!(child.workflow.status, Status::Completed);
        assert_eq!(child.workflow.parent_id, Some(handle.id()));
    }
    worker.stop().await;
}

/// A child that fails, or is cancelled on its own, ends the join with
/// `ChildFailed` carrying how it ended.
async fn a_child_failure_reaches_the_join(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let worker = start_worker(&t.db, &runs, 2);
    let failing = client
        .enqueue("joiner", &("fails", 0u64), EnqueueOptions::new().key("j1"))
        .await
        .unwrap();
    let out: serde_json::Value = failing.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(out["failed"], "FAILED");
    assert!(
        out["message"].as_str().unwrap().contains("no such page"),
        "{out}"
    );

    let waiting = client
        .enqueue(
            "joiner",
            &("napper", 3_600_000u64),
            EnqueueOptions::new().key("j2"),
        )
        .await
        .unwrap();
    until_id(&client, waiting.id(), |s| s.waiting_for.is_some()).await;
    let tree = client.tree(waiting.id()).await.unwrap();
    let child = tree.steps[0].child.as_ref().unwrap().workflow.id;
    until_id(&client, child, |s| s.waiting_for.is_some()).await;
    client.cancel(child).await.unwrap();
    let out: serde_json::Value = waiting.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(out["failed"], "CANCELLED", "{out}");
    worker.stop().await;
}

/// Cancelling the parent cancels its spawned children; pausing pauses them.
async fn pause_and_cancel_reach_spawned_children(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let worker = start_worker(&t.db, &runs, 2);
    let parent = client
        .enqueue(
            "joiner",
            &("napper", 3_600_000u64),
            EnqueueOptions::new().key("p"),
        )
        .await
        .unwrap();
    until_id(&client, parent.id(), |s| s.waiting_for.is_some()).await;
    let tree = client.tree(parent.id()).await.unwrap();
    let child = tree.steps[0].child.as_ref().unwrap().workflow.id;
    until_id(&client, child, |s| s.waiting_for.is_some()).await;
    client.pause(parent.id()).await.unwrap();
    assert_eq!(client.workflow(child).await.unwrap().status, Status::Paused);
    client.resume(parent.id()).await.unwrap();
    assert_eq!(
        client.workflow(child).await.unwrap().status,
        Status::Pending
    );
    client.cancel(parent.id()).await.unwrap();
    assert_eq!(
        client.workflow(child).await.unwrap().status,
        Status::Cancelled
    );
    assert_eq!(
        client.workflow(parent.id()).await.unwrap().status,
        Status::Cancelled
    );
    worker.stop().await;
}

/// Select returns the first child to finish, and a replay the same index.
async fn select_picks_the_first_to_finish(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let worker = start_worker(&t.db, &runs, 3);
    let racer = client
        .enqueue("racer", &(), EnqueueOptions::new().key("r"))
        .await
        .unwrap();
    let (first, ms): (usize, u64) = racer.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!((first, ms), (1, 50));
    worker.stop().await;
    let err = Ctx::start(&t.db, "empty-select", None)
        .await
        .unwrap()
        .select(&[])
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::InvalidInput(_)), "{err:?}");
}

/// Every value of an event is kept; readers get the latest; a replay
/// publishes nothing again; a finished workflow without the event answers
/// `None` at once; a reader waiting for a first value gets it.
async fn events_read_the_latest_value(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let ctx = Ctx::start(&t.db, "progress", None).await.unwrap();
    let id = ctx.task_id();
    let reader = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .get_event::<u32>(id, "late", Duration::from_secs(30))
                .await
        })
    };
    for n in [10u32, 20, 30] {
        ctx.set_event("done", &n).await.unwrap();
    }
    let latest: Option<u32> = client.get_event(id, "done", Duration::ZERO).await.unwrap();
    assert_eq!(latest, Some(30));
    ctx.set_event("late", &1u32).await.unwrap();
    assert_eq!(reader.await.unwrap().unwrap(), Some(1));
    ctx.complete(&()).await.unwrap();
    drop(ctx);
    let replay = Ctx::start(&t.db, "progress", None).await.unwrap();
    for n in [10u32, 20, 30] {
        replay.set_event("done", &n).await.unwrap();
    }
    let rows = common::execute(
        &t.db,
        "DELETE FROM durable_event WHERE event_key = 'done'",
        vec![],
    )
    .await;
    assert_eq!(rows, 3, "a replay published again, or values were lost");
    let missing: Option<u32> = client
        .get_event(id, "never", Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(missing, None);
    let err = client
        .get_event::<u32>(durable::Uuid::new_v4(), "done", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::NotFound(_)), "{err:?}");
}

/// A stream read while it is written gives every item once, in order, and
/// ends at the close; a read from an offset starts there; a closed stream
/// takes nothing; a stream of a finished workflow ends without a close.
async fn streams_give_each_item_once_in_order(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let ctx = Ctx::start(&t.db, "writer", None).await.unwrap();
    let id = ctx.task_id();
    let reader = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .read_stream::<u32>(id, "numbers")
                .map(Result::unwrap)
                .collect::<Vec<_>>()
                .await
        })
    };
    for n in 0..60u32 {
        ctx.write_stream("numbers", &n).await.unwrap();
    }
    ctx.close_stream("numbers").await.unwrap();
    let all = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the reader did not end at the close")
        .unwrap();
    assert_eq!(all, (0..60).collect::<Vec<_>>());
    let tail: Vec<u32> = client
        .read_stream_from::<u32>(id, "numbers", 55)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(tail, [55, 56, 57, 58, 59]);
    let err = ctx.write_stream("numbers", &99u32).await.unwrap_err();
    assert!(matches!(err, DurableError::InvalidInput(_)), "{err:?}");
    ctx.write_stream("open", &"a").await.unwrap();
    ctx.complete(&()).await.unwrap();
    let open: Vec<String> = client
        .read_stream::<String>(id, "open")
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(open, ["a"]);
    let err = client
        .read_stream::<u32>(durable::Uuid::new_v4(), "numbers")
        .collect::<Vec<_>>()
        .await;
    assert!(
        matches!(err.as_slice(), [Err(DurableError::NotFound(_))]),
        "{err:?}"
    );
}

both_backends!(
    spawned_children_run_and_join,
    a_child_failure_reaches_the_join,
    pause_and_cancel_reach_spawned_children,
    select_picks_the_first_to_finish,
    events_read_the_latest_value,
    streams_give_each_item_once_in_order,
);
