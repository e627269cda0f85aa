//! Upgrade: databases written by durable 0.1 (schema v1, the dumps in
//! `fixtures/v1/`, made by the v1 code) carry on after `durable::init`
//! migrates them: nothing completed runs again and replays byte for byte,
//! interrupted runs finish, paused ones resume, cancelled ones stay
//! cancelled, recorded failures replay, queued work runs under its queue's
//! limits, and a v1 executor that is still running is refused.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestDb, counted, step_failed};
use durable::sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Statement};
use durable::{Client, Ctx, DurableError, Registry, RetryPolicy, Status, StepKind, Worker};
use durable_db::entity::task;
use serde_json::json;

/// The text a v1 step saved for `fetch#0` of `done` and `c0#0` of `sub`.
const TRICKY: &str = "quote ' dq \" backslash \\ unicode \u{2713} emoji \u{1F600} newline\nend";

/// A fresh database holding what the v1 code wrote, migrated to this version.
async fn upgraded(backend: Backend) -> TestDb {
    let name = common::unique_name();
    let file = std::env::temp_dir().join(format!("durable-{name}.db"));
    let url = common::empty_database(backend, &name, &file).await;
    let db = TestDb::connect(&url).await;
    let dump = match backend {
        Backend::Sqlite => include_str!("fixtures/v1/sqlite.sql"),
        Backend::Postgres => include_str!("fixtures/v1/postgres.sql"),
    };
    db.execute_unprepared(dump).await.expect("load the v1 dump");
    assert_eq!(version(&db).await, 1, "the dump is a v1 database");
    durable::init(&db).await.expect("migrate");
    assert_eq!(version(&db).await, durable_db::SCHEMA_VERSION);
    TestDb { db, url, backend }
}

async fn version(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT MAX(version) AS v FROM durable_schema_version",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "v").unwrap()
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

/// The finished tree replays byte for byte and runs nothing; the user's
/// row written by its transaction step is there once.
async fn completed_tree_replays_without_running(backend: Backend) {
    let t = upgraded(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start(&t.db, "done", None).await.unwrap();
    let fetched: serde_json::Value = ctx.step("fetch", counted(&calls, json!(0))).await.unwrap();
    assert_eq!(fetched, json!({"text": TRICKY, "n": 1}));
    for i in 0..3u32 {
        let v: u32 = ctx.step("parse", counted(&calls, 99)).await.unwrap();
        assert_eq!(v, i * 10);
    }
    let rows: u64 = ctx
        .transaction("save", |_tx| Box::pin(async { Ok(7) }))
        .await
        .unwrap();
    assert_eq!(rows, 1);
    let child = ctx.child("embed", None).await.unwrap();
    let vec: Vec<f64> = child.step("vec", counted(&calls, vec![])).await.unwrap();
    assert_eq!(vec, [0.5, 1.25]);
    assert!(child.is_completed().await.unwrap());
    let blob: String = ctx
        .step("blob", counted(&calls, String::new()))
        .await
        .unwrap();
    assert_eq!(blob, "x".repeat(100_000));
    assert_eq!(
        ctx.get_output::<serde_json::Value>().await.unwrap(),
        Some(json!({"ok": true}))
    );
    ctx.complete(&json!({"ok": true})).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "a completed step ran again"
    );
    assert_eq!(count(&t.db, "SELECT COUNT(*) FROM v1_rows").await, 1);

    // The saved text is what v1 wrote, byte for byte.
    let tree = Client::new(&t.db).tree(ctx.task_id()).await.unwrap();
    let keys: Vec<&str> = tree.steps.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "fetch#0", "parse#0", "parse#1", "parse#2", "save#0", "embed#0", "blob#0"
        ]
    );
    let embed = &tree.steps[5];
    assert_eq!(embed.kind, StepKind::Workflow);
    let child_tree = embed.child.as_ref().expect("the child's tree");
    assert_eq!(child_tree.workflow.status, Status::Completed);
    assert_eq!(child_tree.steps[0].key, "vec#0");
    let stmt = Statement::from_sql_and_values(
        t.db.get_database_backend(),
        "SELECT output FROM durable_step WHERE workflow_id = $1 AND position = 0",
        [common::id_value(&t.db, ctx.task_id())],
    );
    let text: String =
        t.db.query_one_raw(stmt)
            .await
            .unwrap()
            .unwrap()
            .try_get("", "output")
            .unwrap();
    assert_eq!(
        text,
        serde_json::to_string(&json!({"n": 1, "text": TRICKY})).unwrap()
    );
}

/// A paused tree stays paused until resumed, then goes on from where it was.
async fn paused_tree_resumes(backend: Backend) {
    let t = upgraded(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start(&t.db, "paused", None).await.unwrap();
    let a: String = ctx
        .step("a", counted(&calls, "?".to_string()))
        .await
        .unwrap();
    assert_eq!(a, "A");
    let kid = ctx.child("kid", None).await.unwrap();
    let k: String = kid
        .step("k", counted(&calls, "?".to_string()))
        .await
        .unwrap();
    assert_eq!(k, "K");
    let err = ctx.step("b", counted(&calls, 1u32)).await.unwrap_err();
    assert!(matches!(err, DurableError::Paused(_)), "{err:?}");
    let id = ctx.task_id();
    drop((ctx, kid));

    Client::new(&t.db).resume(id).await.unwrap();
    let ctx = Ctx::start(&t.db, "paused", None).await.unwrap();
    let _: String = ctx
        .step("a", counted(&calls, "?".to_string()))
        .await
        .unwrap();
    let kid = ctx.child("kid", None).await.unwrap();
    let _: String = kid
        .step("k", counted(&calls, "?".to_string()))
        .await
        .unwrap();
    kid.complete(&"kid done").await.unwrap();
    let b: u32 = ctx.step("b", counted(&calls, 2u32)).await.unwrap();
    assert_eq!(b, 2);
    ctx.complete(&b).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "only the new step ran");
    let summary = Client::new(&t.db).workflow(id).await.unwrap();
    assert_eq!(summary.status, Status::Completed);
}

/// A cancelled tree stays cancelled: no new step, no resume.
async fn cancelled_tree_stays_cancelled(backend: Backend) {
    let t = upgraded(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start(&t.db, "cancelled", None).await.unwrap();
    let a: String = ctx
        .step("a", counted(&calls, "?".to_string()))
        .await
        .unwrap();
    assert_eq!(a, "A");
    let kid = ctx.child("kid", None).await.unwrap();
    let k: String = kid
        .step("k", counted(&calls, "?".to_string()))
        .await
        .unwrap();
    assert_eq!(k, "K");
    let err = kid.step("more", counted(&calls, 1u32)).await.unwrap_err();
    assert!(matches!(err, DurableError::Cancelled(_)), "{err:?}");
    let err = ctx.step("b", counted(&calls, 1u32)).await.unwrap_err();
    assert!(matches!(err, DurableError::Cancelled(_)), "{err:?}");
    let err = Client::new(&t.db).resume(ctx.task_id()).await.unwrap_err();
    assert!(
        matches!(err, DurableError::InvalidTransition { .. }),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// A recorded failure replays its message; a failed workflow stays failed.
async fn recorded_failures_replay(backend: Backend) {
    let t = upgraded(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start(&t.db, "failing", None).await.unwrap();
    let first: u32 = ctx.step("first", counted(&calls, 0)).await.unwrap();
    assert_eq!(first, 1);
    let (step, message) = step_failed(ctx.step("boom", counted(&calls, 0u32)).await);
    assert_eq!(step, "boom#0");
    assert_eq!(message, "bad row 'x'; DROP TABLE durable_task; --");

    let failed = Ctx::start(&t.db, "failed-wf", None).await.unwrap();
    let a: u32 = failed.step("a", counted(&calls, 0)).await.unwrap();
    assert_eq!(a, 1);
    failed.fail("gave up").await.unwrap();
    let err = failed.complete(&1).await.unwrap_err();
    assert!(
        matches!(err, DurableError::InvalidTransition { .. }),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // The keyed workflow keeps its key and its deadline.
    let keyed = Ctx::start_with_key(&t.db, "keyed", "order-42", None)
        .await
        .unwrap();
    let a: u32 = keyed.step("a", counted(&calls, 0)).await.unwrap();
    assert_eq!(a, 42);
    let summary = Client::new(&t.db)
        .workflow_by_key("order-42")
        .await
        .unwrap();
    assert_eq!(summary.name, "keyed");
    assert_eq!(summary.input, Some(json!(42)));
    assert!(summary.deadline_ms.is_some() && summary.timeout_ms.is_some());
}

/// Runs killed by `abort()` in v1 finish: between retry attempts (the
/// count goes on), and inside a child workflow.
async fn interrupted_runs_finish(backend: Backend) {
    let t = upgraded(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start(&t.db, "retrying", None).await.unwrap();
    let ok: String = ctx
        .step("ok", counted(&calls, String::new()))
        .await
        .unwrap();
    assert_eq!(ok, "fine");
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let flaky: u32 = ctx
        .step_with_retry("flaky", RetryPolicy::fixed(5, Duration::ZERO), move || {
            a.fetch_add(1, Ordering::SeqCst);
            async { Ok(5) }
        })
        .await
        .unwrap();
    assert_eq!((flaky, attempts.load(Ordering::SeqCst)), (5, 1));
    let tree = Client::new(&t.db).tree(ctx.task_id()).await.unwrap();
    assert_eq!(
        tree.steps[1].attempts, 3,
        "two failed attempts in v1, one now"
    );
    ctx.complete(&flaky).await.unwrap();

    let ctx = Ctx::start(&t.db, "interrupted", None).await.unwrap();
    for i in 0..3u32 {
        let v: u32 = ctx.step("s", counted(&calls, 99)).await.unwrap();
        assert_eq!(v, i * 7);
    }
    let sub = ctx.child("sub", None).await.unwrap();
    let c0: String = sub
        .step("c0", counted(&calls, String::new()))
        .await
        .unwrap();
    assert_eq!(c0, TRICKY);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "a completed step ran again"
    );
    let c1: String = sub
        .step("c1", counted(&calls, "c1".to_string()))
        .await
        .unwrap();
    assert_eq!(c1, "c1");
    sub.complete(&"sub done").await.unwrap();
    ctx.complete(&"done").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Enqueued work (never started, and started by a worker that was killed)
/// runs on a v2 worker: completed steps do not run again.
async fn queued_work_runs_on_a_new_worker(backend: Backend) {
    let t = upgraded(backend).await;
    let client = Client::new(&t.db);
    // Which jobs the killed v1 worker got as far as step one (it depends on
    // the timing of the run that made the dump).
    let mut recorded = Vec::new();
    for (key, n) in [
        ("job-0", 0u64),
        ("job-1", 1),
        ("job-2", 2),
        ("job-running", 100),
    ] {
        let id = client.workflow_by_key(key).await.unwrap().id;
        let tree = client.tree(id).await.unwrap();
        if tree
            .steps
            .iter()
            .any(|s| s.key == "one#0" && s.status == Status::Completed)
        {
            recorded.push(n);
        }
    }
    assert!(
        !recorded.is_empty(),
        "the dump has a job killed after step one"
    );
    let runs: Arc<Mutex<HashMap<(u64, &'static str), u32>>> = Arc::default();
    let mut registry = Registry::new();
    let r = runs.clone();
    registry.register("job", move |ctx: Ctx, n: u64| {
        let r = r.clone();
        async move {
            let r1 = r.clone();
            let a: u64 = ctx
                .step("one", move || {
                    *r1.lock().unwrap().entry((n, "one")).or_insert(0) += 1;
                    async move { Ok(n + 1) }
                })
                .await?;
            let b: u64 = ctx
                .step("two", move || {
                    *r.lock().unwrap().entry((n, "two")).or_insert(0) += 1;
                    async move { Ok(a * 2) }
                })
                .await?;
            Ok(b)
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(&t.db, registry)
        .queues(["default", "v1q"])
        .poll_interval(Duration::from_millis(20));
    let task = tokio::spawn(worker.run(async {
        stopped.await.ok();
    }));
    for (key, expected) in [
        ("job-0", 2u64),
        ("job-1", 4),
        ("job-2", 6),
        ("job-running", 202),
    ] {
        let handle = client.handle_by_key(key).await.unwrap();
        let out: u64 = handle.result(Duration::from_secs(60)).await.unwrap();
        assert_eq!(out, expected, "{key}");
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let runs = runs.lock().unwrap().clone();
    for n in [0, 1, 2, 100] {
        let one = if recorded.contains(&n) {
            None
        } else {
            Some(&1)
        };
        assert_eq!(runs.get(&(n, "one")), one, "job {n} step one");
        assert_eq!(runs.get(&(n, "two")), Some(&1), "job {n} step two");
    }
    let limits = count(
        &t.db,
        "SELECT COUNT(*) FROM durable_queue WHERE name = 'v1q' AND concurrency = 2 AND key_concurrency = 1",
    )
    .await;
    assert_eq!(limits, 1, "the queue keeps its limits");
}

/// Reads written against v1 keep working through the `durable_task` view.
async fn v1_reads_keep_working(backend: Backend) {
    let t = upgraded(backend).await;
    let tasks = task::Entity::find().all(&t.db).await.unwrap();
    let done = tasks
        .iter()
        .find(|r| r.parent_id.is_none() && r.task_key == "done")
        .expect("the done root");
    assert_eq!(
        (done.kind.as_str(), done.status.as_str()),
        ("WORKFLOW", "COMPLETED")
    );
    let mut under: Vec<(i32, &str)> = tasks
        .iter()
        .filter(|r| r.parent_id == Some(done.id))
        .map(|r| (r.sequence.unwrap(), r.task_key.as_str()))
        .collect();
    under.sort();
    assert_eq!(
        under,
        [
            (0, "fetch#0"),
            (1, "parse#0"),
            (2, "parse#1"),
            (3, "parse#2"),
            (4, "save#0"),
            (5, "embed#0"),
            (6, "blob#0")
        ]
    );
    let by_id = task::Entity::find_by_id(done.id).one(&t.db).await.unwrap();
    assert_eq!(by_id.map(|r| r.task_key), Some("done".to_string()));
}

/// What a v1 executor still running after the upgrade meets: its reads
/// work, its writes are refused with a message that says why, and nothing
/// it tries is written.
async fn old_executors_are_refused(backend: Backend) {
    let t = upgraded(backend).await;
    // Statements of the v1 code, as it sent them (finish_workflow,
    // release_one, claim_root).
    let finish = "UPDATE durable_task SET status = $2, output = $3, error = NULL, completed_ms = 0 \
         WHERE id = $1 AND status IN ('PENDING', 'RUNNING') RETURNING id";
    let interrupted = Client::new(&t.db)
        .workflow_by_key("interrupted")
        .await
        .unwrap();
    let id = match backend {
        Backend::Sqlite => durable::sea_orm::Value::from(interrupted.id.as_bytes().to_vec()),
        Backend::Postgres => interrupted.id.into(),
    };
    let stmt = Statement::from_sql_and_values(
        t.db.get_database_backend(),
        finish,
        [id, "COMPLETED".into(), "1".into()],
    );
    let err = t.db.query_one_raw(stmt).await.unwrap_err().to_string();
    assert!(
        err.contains("read-only view since durable schema v2"),
        "{err}"
    );
    let claim = "INSERT INTO durable_task (id, root_id, task_key, name, kind, status, owner_id, lease_epoch, created_ms) \
         VALUES ($1, $1, 'fresh', 'fresh', 'WORKFLOW', 'RUNNING', $1, 1, 0) \
         ON CONFLICT (task_key) WHERE parent_id IS NULL DO UPDATE SET owner_id = excluded.owner_id RETURNING id";
    let new_id = durable::Uuid::new_v4();
    let value = match backend {
        Backend::Sqlite => durable::sea_orm::Value::from(new_id.as_bytes().to_vec()),
        Backend::Postgres => new_id.into(),
    };
    let stmt = Statement::from_sql_and_values(t.db.get_database_backend(), claim, [value]);
    assert!(t.db.query_one_raw(stmt).await.is_err());
    let summary = Client::new(&t.db).workflow(interrupted.id).await.unwrap();
    assert_eq!(summary.status, Status::Pending, "nothing was written");
    assert!(summary.owner.is_none(), "the upgrade released it");
    let err = Client::new(&t.db)
        .workflow_by_key("fresh")
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::KeyNotFound(_)), "{err:?}");
}

both_backends!(
    completed_tree_replays_without_running,
    paused_tree_resumes,
    cancelled_tree_stays_cancelled,
    recorded_failures_replay,
    interrupted_runs_finish,
    queued_work_runs_on_a_new_worker,
    v1_reads_keep_working,
    old_executors_are_refused,
);
