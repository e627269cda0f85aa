//! The engine takes seeded rows as its own, on both backends: seeded
//! queues are claimed and run, seeded finished work is listed as such,
//! a seeded history replays without running a step, and the observed
//! figures of sleeps read what the engine recorded.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use super::observe;
use super::seed::{self, Finished, Roots};
use crate::{Client, Ctx, DurableError, Registry, Status, Worker, WorkflowQuery};

/// Workflows of `name` in `status`.
async fn count(db: &DatabaseConnection, name: &str, status: Status) -> u64 {
    Client::new(db)
        .count(&WorkflowQuery::new().name(name).status(status))
        .await
        .expect("count")
}

async fn pending_roots_are_claimed_and_run(db: DatabaseConnection) {
    let roots = Roots::new("seeded").key_prefix("s-");
    assert_eq!(seed::pending(&db, &roots, 1..=3).await.unwrap(), 3);
    let (next, last) = (4, 3); // nothing to add
    assert_eq!(seed::pending(&db, &roots, next..=last).await.unwrap(), 0);
    let page = Client::new(&db)
        .list(&WorkflowQuery::new().key_prefix("s-"))
        .await
        .unwrap();
    let mut keys: Vec<_> = page.workflows.iter().map(|w| w.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["s-1", "s-2", "s-3"]);
    assert!(
        page.workflows.iter().all(
            |w| w.status == Status::Pending && w.queue.as_deref() == Some(crate::DEFAULT_QUEUE)
        )
    );

    let mut registry = Registry::new();
    registry.register("seeded", |ctx: Ctx, _: serde_json::Value| async move {
        ctx.step("one", || async { Ok(1u32) }).await
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(&db, registry).run(async {
        stopped.await.ok();
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count(&db, "seeded", Status::Completed).await < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the seeded workflows were not run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).ok();
    worker.await.unwrap().unwrap();
}

async fn completed_roots_are_finished(db: DatabaseConnection) {
    let roots = Roots::new("done").queue("elsewhere").concurrency_key("k");
    assert_eq!(seed::completed(&db, &roots, 1..=4).await.unwrap(), 4);
    seed::analyze(&db).await.unwrap();
    let page = Client::new(&db)
        .list(&WorkflowQuery::new().name("done"))
        .await
        .unwrap();
    assert_eq!(page.workflows.len(), 4);
    for w in &page.workflows {
        assert_eq!(w.status, Status::Completed);
        assert!(w.key.starts_with("done-"), "{}", w.key);
        assert_eq!(w.queue.as_deref(), Some("elsewhere"));
        assert_eq!(w.concurrency_key.as_deref(), Some("k"));
        assert!(w.finished_at_ms.is_some());
    }
    // Keys are unique: seeding a number twice is refused.
    let again = seed::completed(&db, &roots, 4..=4).await.unwrap_err();
    assert!(matches!(again, DurableError::Db(_)), "{again:?}");
}

async fn finished_rows_spread_over_names_and_outcomes(db: DatabaseConnection) {
    let rows = Finished::new("mix-", 1_000).names(4).key_prefix("m-");
    assert_eq!(seed::finished(&db, &rows, 1..=40).await.unwrap(), 40);
    for (status, expected) in [
        (Status::Failed, 2),
        (Status::Cancelled, 2),
        (Status::Completed, 36),
    ] {
        let all = WorkflowQuery::new().status(status);
        assert_eq!(Client::new(&db).count(&all).await.unwrap(), expected);
    }
    for name in ["mix-0", "mix-1", "mix-2", "mix-3"] {
        let named = WorkflowQuery::new().name(name);
        assert_eq!(Client::new(&db).count(&named).await.unwrap(), 10, "{name}");
    }
    let client = Client::new(&db);
    let first = client
        .list(&WorkflowQuery::new().created(..=1_001))
        .await
        .unwrap();
    let w = &first.workflows[0];
    assert_eq!((w.key.as_str(), w.name.as_str()), ("m-1", "mix-1"));
    assert_eq!((w.created_at_ms, w.finished_at_ms), (1_001, Some(1_006)));
}

/// Every seeded row is a root of its own (`root_id = id`), so the engine's
/// tree reads and retention see it whole: purging the finished ones
/// deletes them all.
async fn seeded_rows_are_roots_and_purge(db: DatabaseConnection) {
    let rows = Finished::new("old-", 1_000).names(2).key_prefix("o-");
    assert_eq!(seed::finished(&db, &rows, 1..=30).await.unwrap(), 30);
    let roots = Roots::new("fresh").key_prefix("f-");
    assert_eq!(seed::completed(&db, &roots, 1..=5).await.unwrap(), 5);
    let client = Client::new(&db);
    let page = client.list(&WorkflowQuery::new().limit(100)).await.unwrap();
    assert_eq!(page.workflows.len(), 35);
    for w in &page.workflows {
        assert_eq!(w.root_id, w.id, "{} is a root of its own", w.key);
        assert!(client.tree(w.id).await.is_ok(), "{} reads as a tree", w.key);
    }
    // The 30 finished in 1970 are purged; the 5 finished now stay.
    let purged = client
        .purge_finished(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(purged, 30);
    assert_eq!(client.count(&WorkflowQuery::new()).await.unwrap(), 5);
}

async fn a_seeded_history_replays(db: DatabaseConnection) {
    let steps = seed::HISTORY_CHUNK + 3;
    let ctx = Ctx::start_with_key(&db, "long", "long-1", None)
        .await
        .unwrap();
    seed::history(&db, ctx.task_id(), "fetch", &"out", steps)
        .await
        .unwrap();
    drop(ctx);
    let ctx = Ctx::start_with_key(&db, "long", "long-1", None)
        .await
        .unwrap();
    for i in 0..steps {
        let out: String = ctx
            .step("fetch", || async move {
                Err(DurableError::custom(format!("step {i} ran on replay")))
            })
            .await
            .unwrap();
        assert_eq!(out, "out");
    }
    let fresh: u32 = ctx.step("after", || async { Ok(7) }).await.unwrap();
    assert_eq!(fresh, 7);
    ctx.complete(&()).await.unwrap();

    let bad = seed::history(&db, ctx.task_id(), "", &1, 1)
        .await
        .unwrap_err();
    assert!(matches!(bad, DurableError::InvalidInput(_)), "{bad:?}");
    let nan = seed::history(&db, ctx.task_id(), "x", &f64::NAN, 1)
        .await
        .unwrap_err();
    assert!(matches!(nan, DurableError::InvalidInput(_)), "{nan:?}");
}

async fn sleeps_are_observed(db: DatabaseConnection) {
    assert_eq!(
        observe::sleepers(&db, "sleepy").await.unwrap(),
        observe::Sleepers::default()
    );
    assert!(
        observe::sleep_lateness_ms(&db, "sleepy")
            .await
            .unwrap()
            .is_empty()
    );
    let ctx = Ctx::start_with_key(&db, "sleepy", "sleepy-1", None)
        .await
        .unwrap();
    ctx.sleep(Duration::from_millis(10)).await.unwrap();
    ctx.complete(&()).await.unwrap();
    let late = observe::sleep_lateness_ms(&db, "sleepy").await.unwrap();
    assert_eq!(late.len(), 1);
    assert!(late[0] >= 0, "ended before it was due: {late:?}");
    assert_eq!(
        observe::sleepers(&db, "sleepy").await.unwrap(),
        observe::Sleepers::default(),
        "finished: neither asleep nor owned"
    );
}

/// One `#[tokio::test]` per behaviour and backend.
macro_rules! on_both_backends {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $behaviour() { super::$behaviour(crate::testdb::sqlite("seeded").await).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $behaviour() { super::$behaviour(crate::testdb::postgres().await).await; })*
        }
    };
}

on_both_backends!(
    pending_roots_are_claimed_and_run,
    completed_roots_are_finished,
    finished_rows_spread_over_names_and_outcomes,
    a_seeded_history_replays,
    sleeps_are_observed,
    seeded_rows_are_roots_and_purge,
);
