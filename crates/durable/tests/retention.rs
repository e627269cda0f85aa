//! Retention on real workflows: `Client::purge_finished` and a worker's
//! retention duty delete finished trees with every row of theirs (steps,
//! children, messages, events, streams) and never touch unfinished work.

mod common;

use std::time::Duration;

use common::{Backend, TestDb, run_worker};
use durable::sea_orm::{ConnectionTrait, Statement};
use durable::{Client, Ctx, Registry, Status, Worker, WorkflowQuery};

/// Rows of each table of the durable schema.
async fn rows(t: &TestDb) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for (table, sql) in [
        (
            "durable_workflow",
            "SELECT COUNT(*) AS n FROM durable_workflow",
        ),
        ("durable_step", "SELECT COUNT(*) AS n FROM durable_step"),
        (
            "durable_step_history",
            "SELECT COUNT(*) AS n FROM durable_step_history",
        ),
        (
            "durable_message",
            "SELECT COUNT(*) AS n FROM durable_message",
        ),
        ("durable_event", "SELECT COUNT(*) AS n FROM durable_event"),
        ("durable_stream", "SELECT COUNT(*) AS n FROM durable_stream"),
    ] {
        let row =
            t.db.query_one_raw(Statement::from_string(t.db.get_database_backend(), sql))
                .await
                .unwrap()
                .unwrap();
        out.push((table, row.try_get::<i64>("", "n").unwrap()));
    }
    out
}

/// A finished tree with a row in every table.
async fn finished_tree(t: &TestDb, key: &str) {
    let client = Client::new(&t.db);
    let ctx = Ctx::start_with_key(&t.db, "full", key, None).await.unwrap();
    let _: u32 = ctx.step("one", || async { Ok(1) }).await.unwrap();
    let kid = ctx.child("kid", None).await.unwrap();
    kid.complete(&2).await.unwrap();
    ctx.set_event("phase", &"done").await.unwrap();
    ctx.write_stream("log", &"line").await.unwrap();
    client.send(ctx.task_id(), "late", &1).await.unwrap();
    ctx.complete(&3).await.unwrap();
}

async fn purge_deletes_finished_trees_whole_and_nothing_else(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    for i in 0..3 {
        finished_tree(&t, &format!("done-{i}")).await;
    }
    let running = Ctx::start_with_key(&t.db, "full", "running", None)
        .await
        .unwrap();
    let _: u32 = running.step("one", || async { Ok(1) }).await.unwrap();
    running.set_event("phase", &"busy").await.unwrap();
    let before = rows(&t).await;
    assert!(
        before
            .iter()
            .all(|(table, n)| *n > 0 || *table == "durable_step_history"),
        "{before:?}"
    );

    assert_eq!(
        client
            .purge_finished(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(rows(&t).await, before, "nothing finished an hour ago");
    assert_eq!(client.purge_finished(Duration::ZERO).await.unwrap(), 3);
    assert_eq!(
        rows(&t).await,
        [
            ("durable_workflow", 1),
            ("durable_step", 2), // its step and its set_event call
            ("durable_step_history", 0),
            ("durable_message", 0),
            ("durable_event", 1),
            ("durable_stream", 0),
        ],
        "only the running workflow's rows are left"
    );
    let left = client.list(&WorkflowQuery::new()).await.unwrap();
    assert_eq!(left.workflows.len(), 1);
    assert_eq!(left.workflows[0].status, Status::Running);
    assert_eq!(client.purge_batch(Duration::ZERO).await.unwrap(), 0);
}

/// A worker with a retention purges at its start.
async fn a_worker_with_a_retention_purges(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    for i in 0..2 {
        finished_tree(&t, &format!("old-{i}")).await;
    }
    let worker = run_worker(Worker::new(&t.db, Registry::new()).retention(Duration::ZERO));
    for _ in 0..1500 {
        if client.count(&WorkflowQuery::new()).await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.count(&WorkflowQuery::new()).await.unwrap(), 0);
    worker.stop().await;
}

both_backends!(
    purge_deletes_finished_trees_whole_and_nothing_else,
    a_worker_with_a_retention_purges,
);
