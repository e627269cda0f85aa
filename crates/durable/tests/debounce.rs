//! Debounce on both backends: a burst of calls makes one workflow that
//! runs once with the latest input; a call after it started begins a new
//! burst; each call pushes the start back but never past the bound;
//! concurrent calls of one key on real connections share one workflow;
//! bad input is refused with nothing written.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Backend, TestDb, run_worker};
use durable::sea_orm::{ConnectionTrait, Statement};
use durable::{Client, Ctx, Debounce, DurableError, Registry, Status, Uuid, Worker};

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register("reindex", |ctx: Ctx, doc: String| async move {
        ctx.step("index", || async move { Ok(format!("indexed {doc}")) })
            .await
    });
    registry
}

async fn workflows(t: &TestDb) -> i64 {
    common::scalar(&t.db, "SELECT COUNT(*) FROM durable_workflow").await
}

/// When the workflow may be claimed (epoch ms).
async fn available_ms(t: &TestDb, id: Uuid) -> i64 {
    let stmt = Statement::from_sql_and_values(
        t.db.get_database_backend(),
        "SELECT available_ms FROM durable_workflow WHERE id = $1",
        [common::id_value(&t.db, id)],
    );
    let row = t.db.query_one_raw(stmt).await.unwrap().unwrap();
    row.try_get::<i64>("", "available_ms").unwrap()
}

async fn a_burst_runs_once_with_the_latest_input(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let rule = Debounce::new(Duration::from_millis(300)).max_wait(Duration::from_secs(30));
    let first = client
        .debounce("reindex", "doc-1", &"rev 1", &rule)
        .await
        .unwrap();
    assert!(first.is_new());
    for rev in 2..=5 {
        let again = client
            .debounce("reindex", "doc-1", &format!("rev {rev}"), &rule)
            .await
            .unwrap();
        assert_eq!(again.id(), first.id(), "rev {rev} joined another burst");
        assert!(!again.is_new());
    }
    // Another key, or another workflow name with the same key, is apart.
    let other = client
        .debounce("reindex", "doc-2", &"rev 1", &rule)
        .await
        .unwrap();
    assert_ne!(other.id(), first.id());
    let worker =
        run_worker(Worker::new(&t.db, registry()).poll_interval(Duration::from_millis(20)));
    let output: String = first.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(output, "indexed rev 5");
    let _: String = other.result(Duration::from_secs(30)).await.unwrap();

    // After it ran, the next call is a new burst.
    let next = client
        .debounce("reindex", "doc-1", &"rev 6", &rule)
        .await
        .unwrap();
    assert!(next.is_new());
    assert_ne!(next.id(), first.id());
    let output: String = next.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(output, "indexed rev 6");
    worker.stop().await;
    assert_eq!(workflows(&t).await, 3);
    assert_eq!(first.status().await.unwrap(), Status::Completed);
}

async fn each_call_pushes_the_start_back_within_the_bound(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    // A long bound: a later call moves the start later.
    let loose = Debounce::new(Duration::from_secs(60)).max_wait(Duration::from_secs(3600));
    let a = client
        .debounce("reindex", "loose", &1, &loose)
        .await
        .unwrap();
    let first = available_ms(&t, a.id()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    client
        .debounce("reindex", "loose", &2, &loose)
        .await
        .unwrap();
    assert!(available_ms(&t, a.id()).await > first);
    // The bound equal to the period: no call moves it past the first start.
    let tight = Debounce::new(Duration::from_secs(60)).max_wait(Duration::from_secs(60));
    let b = client
        .debounce("reindex", "tight", &1, &tight)
        .await
        .unwrap();
    let first = available_ms(&t, b.id()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    client
        .debounce("reindex", "tight", &2, &tight)
        .await
        .unwrap();
    assert!(available_ms(&t, b.id()).await <= first);
}

async fn concurrent_calls_of_one_key_share_one_workflow(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let rule = Arc::new(Debounce::new(Duration::from_secs(60)));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (client, rule) = (client.clone(), rule.clone());
        calls.spawn(async move { client.debounce("reindex", "hot", &i, &rule).await });
    }
    let mut ids = Vec::new();
    let mut new = 0;
    while let Some(result) = calls.join_next().await {
        let handle = result.unwrap().unwrap();
        new += u32::from(handle.is_new());
        ids.push(handle.id());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(new, 1);
    assert_eq!(workflows(&t).await, 1);
}

async fn bad_debounces_are_refused_and_write_nothing(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let ok = Debounce::new(Duration::from_secs(1));
    for (name, key, rule) in [
        ("reindex", "k", Debounce::new(Duration::ZERO)),
        (
            "reindex",
            "k",
            Debounce::new(Duration::from_secs(10)).max_wait(Duration::from_secs(1)),
        ),
        ("reindex", "nul\0key", ok.clone()),
        ("reindex", "", ok.clone()),
        ("bad\0name", "k", ok.clone()),
    ] {
        let err = client.debounce(name, key, &1, &rule).await.unwrap_err();
        assert!(
            matches!(err, DurableError::InvalidInput(_)),
            "{key:?}: {err}"
        );
    }
    let err = client
        .debounce("reindex", "k", &f64::NAN, &ok)
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::InvalidInput(_)), "{err}");
    let err = client
        .debounce("reindex", "k", &1, &ok.clone().queue("nowhere"))
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::UnknownQueue(_)), "{err}");
    let known = Client::with_registry(&t.db, Arc::new(registry()));
    let err = known.debounce("other", "k", &1, &ok).await.unwrap_err();
    assert!(matches!(err, DurableError::UnknownWorkflow(_)), "{err}");
    assert_eq!(workflows(&t).await, 0);
    // A hostile key is a key.
    let hostile = "k'); DELETE FROM durable_workflow; --";
    let h = client.debounce("reindex", hostile, &1, &ok).await.unwrap();
    assert!(h.key().contains(hostile));
    assert_eq!(workflows(&t).await, 1);
}

both_backends!(
    a_burst_runs_once_with_the_latest_input,
    each_call_pushes_the_start_back_within_the_bound,
    concurrent_calls_of_one_key_share_one_workflow,
    bad_debounces_are_refused_and_write_nothing,
);
