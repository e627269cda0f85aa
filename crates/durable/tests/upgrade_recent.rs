//! Upgrade: databases written by earlier releases (schema v2 and v3, the
//! dumps in `fixtures/v2/` and `fixtures/v3/`, made by the `generate.rs`
//! beside them with that release's code) carry on after `durable::init`
//! migrates them to this version: every row is kept, finished work replays
//! without running, interrupted and suspended runs finish, paused ones
//! resume, cancelled ones stay cancelled, queued work runs under its
//! queue, old workflows use the primitives, and (v3) a workflow suspended
//! in `recv` with messages, events, a stream and a joined child carries on.
//! Every test runs on both fixtures and both backends.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestDb, step_failed};
use durable::DurableError::{self, Cancelled, InvalidTransition, Paused};
use durable::sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Statement};
use durable::{Client, Ctx, Registry, Status, StepKind, Worker, WorkflowSummary};
use durable_db::entity::{executor, task};
use futures::StreamExt;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The tricky text of the generator (`fetch#0` of `done`, `tricky`, `c0#0`).
const TRICKY: &str = "quote ' dq \" backslash \\ unicode \u{2713} emoji \u{1F600} newline\nend";
const TRICKY_KEY: &str = "tricky ' \" \\ \u{2713} \u{1F600}";
const TEN_YEARS_MS: i64 = 10 * 365 * 24 * 3600 * 1000;

/// Dumps of one earlier release, and what its generator named things.
struct Fixture {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
    /// Workflow and step rows, and executor rows.
    workflows: usize,
    steps: usize,
    executors: usize,
    /// The generator's table of user rows, its queue and app version.
    user_rows: &'static str,
    queue: &'static str,
    app_version: &'static str,
}

const V2: Fixture = Fixture {
    version: 2,
    sqlite: include_str!("fixtures/v2/sqlite.sql"),
    postgres: include_str!("fixtures/v2/postgres.sql"),
    workflows: 19,
    steps: 27,
    executors: 4,
    user_rows: "SELECT COUNT(*) FROM v2_rows",
    queue: "v2q",
    app_version: "v2-app",
};

const V3: Fixture = Fixture {
    version: 3,
    sqlite: include_str!("fixtures/v3/sqlite.sql"),
    postgres: include_str!("fixtures/v3/postgres.sql"),
    workflows: 21,
    steps: 37,
    executors: 5,
    user_rows: "SELECT COUNT(*) FROM v3_rows",
    queue: "v3q",
    app_version: "v3-app",
};

/// A fresh database holding what the fixture's code wrote, not migrated yet.
async fn loaded(backend: Backend, fx: &Fixture) -> TestDb {
    let name = common::unique_name();
    let file = std::env::temp_dir().join(format!("durable-{name}.db"));
    let url = common::empty_database(backend, &name, &file).await;
    let db = TestDb::connect(&url).await;
    let dump = match backend {
        Backend::Sqlite => fx.sqlite,
        Backend::Postgres => fx.postgres,
    };
    db.execute_unprepared(dump).await.expect("load the dump");
    assert_eq!(count(&db, VERSION).await, fx.version, "the dump's version");
    TestDb { db, url, backend }
}

/// The same, migrated to this version.
async fn upgraded(backend: Backend, fx: &Fixture) -> TestDb {
    let t = loaded(backend, fx).await;
    durable::init(&t.db).await.expect("migrate");
    assert_eq!(count(&t.db, VERSION).await, durable_db::SCHEMA_VERSION);
    t
}

const VERSION: &str = "SELECT MAX(version) FROM durable_schema_version";

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let stmt = Statement::from_string(db.get_database_backend(), sql);
    let row = db.query_one_raw(stmt).await.unwrap().unwrap();
    row.try_get_by_index(0).unwrap()
}

/// As [`count`], with one bound text value.
async fn count_with(db: &DatabaseConnection, sql: &str, value: &str) -> i64 {
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, [value.into()]);
    let row = db.query_one_raw(stmt).await.unwrap().unwrap();
    row.try_get_by_index(0).unwrap()
}

/// The columns of v2's tables.
const WORKFLOW_COLUMNS: &str = "id, root_id, parent_id, parent_position, workflow_key, name, \
    status, input, output, error, owner_id, lease_epoch, queue, priority, concurrency_key, \
    available_ms, wait_for, timeout_ms, deadline_ms, app_version, attempts, recoveries, \
    created_ms, started_ms, completed_ms";
const STEP_COLUMNS: &str = "workflow_id, position, step_key, name, kind, status, output, \
    error, retry_count, max_retries, child_id, wake_ms, created_ms, started_ms, completed_ms";

/// Every v2 column of every workflow and step row as text, one line per
/// row, each starting with the row's root id; sorted.
async fn snapshot(db: &DatabaseConnection) -> Vec<String> {
    let line = |alias: &str, columns: &str| {
        let cols = columns.split(", ");
        let cols: Vec<_> = cols
            .map(|c| format!("COALESCE(CAST({alias}.{c} AS TEXT), '~')"))
            .collect();
        format!(
            "SELECT CAST(w.root_id AS TEXT) || ' {alias}|' || {}",
            cols.join(" || '|' || ")
        )
    };
    let queries = [
        line("w", WORKFLOW_COLUMNS) + " FROM durable_workflow w",
        line("s", STEP_COLUMNS)
            + " FROM durable_step s JOIN durable_workflow w ON w.id = s.workflow_id",
    ];
    let mut lines = Vec::new();
    for sql in queries {
        let stmt = Statement::from_string(db.get_database_backend(), sql);
        for row in db.query_all_raw(stmt).await.unwrap() {
            lines.push(row.try_get_by_index::<String>(0).unwrap());
        }
    }
    lines.sort();
    lines
}

/// The lines of [`snapshot`] of the tree rooted at `root`.
fn tree_lines(lines: &[String], root: durable::Uuid) -> Vec<&String> {
    let prefix = format!("{root} ");
    lines.iter().filter(|l| l.starts_with(&prefix)).collect()
}

/// What the step bodies did: runs by `workflow key/step`, and the most
/// `queued` workflows of the concurrency key `c` that ran at once.
#[derive(Default)]
struct Seen {
    runs: Mutex<HashMap<String, u32>>,
    running_c: AtomicU32,
    max_c: AtomicU32,
}

impl Seen {
    fn runs(&self, what: &str) -> u32 {
        self.runs.lock().unwrap().get(what).copied().unwrap_or(0)
    }
    fn total(&self) -> u32 {
        self.runs.lock().unwrap().values().sum()
    }
}

/// Step `name`, whose body counts its runs under `key/name` and returns
/// `value` (what a step that must replay returns if it runs).
async fn step<T>(ctx: &Ctx, seen: &Arc<Seen>, name: &str, value: T) -> Result<T, DurableError>
where
    T: Serialize + DeserializeOwned,
{
    let (seen, what) = (seen.clone(), format!("{}/{name}", ctx.key()));
    ctx.step(name, move || async move {
        *seen.runs.lock().unwrap().entry(what).or_insert(0) += 1;
        Ok(value)
    })
    .await
}

/// Step `name` that must replay: its recorded output (a run would count).
async fn replay<T>(ctx: &Ctx, seen: &Arc<Seen>, name: &str) -> T
where
    T: Serialize + DeserializeOwned + Default,
{
    step(ctx, seen, name, T::default()).await.unwrap()
}

/// Fails the test unless `$result` is an error matching `$pattern`.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}

/// The generators' registered functions, step bodies counted: `waiter`,
/// `job` (without the abort), `mailbox` and `part` as they wrote them,
/// `queued` (one step), and `double` for spawned children.
fn registry(seen: &Arc<Seen>) -> Registry {
    let mut registry = Registry::new();
    let s = seen.clone();
    registry.register("waiter", move |ctx: Ctx, _input: Value| {
        let s = s.clone();
        async move {
            let _: String = step(&ctx, &s, "before", "before".to_string()).await?;
            let approval = ctx
                .wait_for_test("approval", Duration::from_secs(3600))
                .await?;
            step(&ctx, &s, "after", approval.unwrap_or(json!("timed out"))).await
        }
    });
    let s = seen.clone();
    registry.register("job", move |ctx: Ctx, n: u64| {
        let s = s.clone();
        async move {
            let a: u64 = step(&ctx, &s, "one", n + 1).await?;
            step(&ctx, &s, "two", a * 2).await
        }
    });
    let s = seen.clone();
    registry.register("queued", move |ctx: Ctx, n: u64| {
        let s = s.clone();
        async move {
            if n < 2 {
                // queued-0 and queued-1 share the key `c` (limit 1): the
                // pause lets a second one start if the limit were lost.
                let now = s.running_c.fetch_add(1, Ordering::SeqCst) + 1;
                s.max_c.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                s.running_c.fetch_sub(1, Ordering::SeqCst);
            }
            step(&ctx, &s, "work", n * 10).await
        }
    });
    let s = seen.clone();
    registry.register("part", move |ctx: Ctx, n: u64| {
        let s = s.clone();
        async move { step(&ctx, &s, "square", n * n).await }
    });
    let s = seen.clone();
    registry.register("mailbox", move |ctx: Ctx, _input: Value| {
        let s = s.clone();
        async move {
            ctx.set_event("phase", "starting").await?;
            let child = ctx.spawn("part", &7u64).await?;
            let squared: u64 = child.join().await?;
            for item in ["a", "b"] {
                ctx.write_stream("items", item).await?;
            }
            ctx.close_stream("items").await?;
            let first: Option<String> = ctx.recv("first", Duration::from_secs(3600)).await?;
            let phase = json!({"got": first, "squared": squared});
            ctx.set_event("phase", &phase).await?;
            let second: Option<String> = ctx.recv("second", Duration::from_secs(3600)).await?;
            let later: Option<String> = ctx.recv("later", Duration::from_secs(3600)).await?;
            step(&ctx, &s, "done", json!([second, later])).await
        }
    });
    let s = seen.clone();
    registry.register("double", move |ctx: Ctx, x: u64| {
        let s = s.clone();
        async move { step(&ctx, &s, "double", x * 2).await }
    });
    registry
}

type Running = (oneshot::Sender<()>, JoinHandle<Result<(), DurableError>>);

fn start_worker(db: &DatabaseConnection, seen: &Arc<Seen>, queues: &[&str]) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = Worker::new(db, registry(seen))
        .queues(queues.iter().copied())
        .concurrency(4)
        .poll_interval(Duration::from_millis(20));
    let handle = tokio::spawn(worker.run(async move {
        stopped.await.ok();
    }));
    (stop, handle)
}

async fn stop_worker((stop, handle): Running) {
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

/// The result of the root `key` (waits for it at most a minute).
async fn result<T: DeserializeOwned>(client: &Client, key: &str) -> T {
    let handle = client.handle_by_key(key).await.unwrap();
    handle.result(Duration::from_secs(60)).await.unwrap()
}

async fn summary(client: &Client, key: &str) -> WorkflowSummary {
    client.workflow_by_key(key).await.unwrap()
}

/// The migration keeps every row as it was (every column of v2's tables,
/// and the messages, events and streams of v3), the v1 compatibility
/// views still read, the executor rows get no beat time (they are judged
/// as before), and `init` again is a no-op.
async fn migration_keeps_every_row(backend: Backend, fx: &Fixture) {
    let t = loaded(backend, fx).await;
    let db = &t.db;
    let before = snapshot(db).await;
    assert_eq!(before.len(), fx.workflows + fx.steps);
    let feeds = [
        "SELECT COUNT(*) FROM durable_workflow WHERE run_id IS NOT NULL",
        "SELECT COUNT(*) FROM durable_message",
        "SELECT COUNT(*) FROM durable_message WHERE consumed_position IS NOT NULL",
        "SELECT COUNT(*) FROM durable_event",
        "SELECT COUNT(*) FROM durable_stream",
    ];
    let mut feeds_before = Vec::new();
    if fx.version >= 3 {
        for sql in feeds {
            feeds_before.push(count(db, sql).await);
        }
        // The spawned `part`; `first` taken and `later` waiting; two
        // values of `phase`; two items and the close of `items`.
        assert_eq!(feeds_before, [1, 2, 1, 2, 3]);
    }
    durable::init(db).await.expect("migrate");
    assert_eq!(durable_db::SCHEMA_VERSION, 7);
    assert_eq!(count(db, VERSION).await, 7);
    // v7's schedules and debounce bursts start empty.
    assert_eq!(count(db, "SELECT COUNT(*) FROM durable_schedule").await, 0);
    assert_eq!(count(db, "SELECT COUNT(*) FROM durable_debounce").await, 0);
    assert_eq!(snapshot(db).await, before, "the migration changed a row");
    assert_eq!(count(db, fx.user_rows).await, 1);
    let mut feeds_after = Vec::new();
    for sql in feeds {
        feeds_after.push(count(db, sql).await);
    }
    if fx.version >= 3 {
        assert_eq!(feeds_after, feeds_before, "the v3 rows changed");
    } else {
        assert_eq!(feeds_after, [0; 5], "v3's tables start empty");
    }
    let mut indexes = vec![
        "durable_step_waiting",
        "durable_workflow_key_claim",
        // v6: one per sort of `Client::list`.
        "durable_workflow_created",
        "durable_workflow_status_created",
        "durable_workflow_name_created",
        "durable_workflow_started",
        "durable_workflow_finished",
        "durable_step_history", // v6: failed calls set aside by retries
        "durable_message_workflow",
        "durable_schedule_due", // v7: the schedules a worker fires next
    ];
    if backend == Backend::Postgres {
        indexes.push("durable_workflow_name_claim"); // claims per function (LATERAL)
    }
    for name in indexes {
        let index = match backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE name = $1",
            Backend::Postgres => "SELECT COUNT(to_regclass($1))",
        };
        assert_eq!(count_with(db, index, name).await, 1, "{name}");
    }
    let beats = "SELECT COUNT(*) FROM durable_executor WHERE beat_ms IS NULL";
    assert_eq!(count(db, beats).await, i64::try_from(fx.executors).unwrap());

    // The v1 views: every workflow, and every step but the child calls.
    let tasks = task::Entity::find().all(db).await.unwrap();
    let calls = "SELECT COUNT(*) FROM durable_step WHERE kind = 'WORKFLOW'";
    let calls = usize::try_from(count(db, calls).await).unwrap();
    assert_eq!(tasks.len(), fx.workflows + fx.steps - calls);
    let done = tasks.iter().find(|r| r.task_key == "done").unwrap();
    assert_eq!((done.parent_id, done.status.as_str()), (None, "COMPLETED"));
    let executors = executor::Entity::find().all(db).await.unwrap();
    assert_eq!(executors.len(), fx.executors);

    durable::init(db).await.expect("init again");
    let versions = "SELECT COUNT(*) FROM durable_schema_version";
    assert_eq!(count(db, versions).await, durable_db::SCHEMA_VERSION);
    assert_eq!(snapshot(db).await, before);
}

/// Finished work replays byte for byte and runs nothing: `done` (steps, a
/// loop, a transaction, an inline child), the tricky root, and
/// `failed-step`, whose failure replays as `StepFailed`; the replays
/// leave their rows as they were.
async fn finished_work_replays_without_running(backend: Backend, fx: &Fixture) {
    let t = upgraded(backend, fx).await;
    let (db, seen) = (&t.db, Arc::new(Seen::default()));
    let before = snapshot(db).await;
    let ctx = Ctx::start(db, "done", None).await.unwrap();
    let fetched: Value = replay(&ctx, &seen, "fetch").await;
    assert_eq!(fetched, json!({"text": TRICKY, "n": 1}));
    for i in 0..3u32 {
        assert_eq!(replay::<u32>(&ctx, &seen, "parse").await, i * 10);
    }
    let save = ctx.transaction("save", |_tx| Box::pin(async { Ok(7u64) }));
    assert_eq!(save.await.unwrap(), 1);
    let child = ctx.child("embed", None).await.unwrap();
    assert_eq!(replay::<Vec<f64>>(&child, &seen, "vec").await, [0.5, 1.25]);
    assert!(child.is_completed().await.unwrap());
    let output: Option<Value> = ctx.get_output().await.unwrap();
    assert_eq!(output, Some(json!({"ok": true})));
    assert_eq!(count(db, fx.user_rows).await, 1);
    let stmt = Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT output FROM durable_step WHERE workflow_id = $1 AND position = 0",
        [common::id_value(db, ctx.task_id())],
    );
    let row = db.query_one_raw(stmt).await.unwrap().unwrap();
    let text: String = row.try_get("", "output").unwrap();
    let expected = json!({"n": 1, "text": TRICKY}).to_string();
    assert_eq!(text, expected, "the saved text is what v2 wrote");

    let tricky = Ctx::start_with_key(db, "tricky", TRICKY_KEY, None);
    let tricky = tricky.await.unwrap();
    assert_eq!(replay::<String>(&tricky, &seen, "echo").await, TRICKY);
    let output: Option<Value> = tricky.get_output().await.unwrap();
    assert_eq!(output, Some(json!({"echo": TRICKY})));

    let failed = Ctx::start(db, "failed-step", None).await.unwrap();
    assert_eq!(replay::<u32>(&failed, &seen, "first").await, 1);
    let (key, message) = step_failed(step(&failed, &seen, "boom", 0u32).await);
    assert_eq!(key, "boom#0");
    assert_eq!(message, "bad row 'x'; DROP TABLE durable_workflow; --");
    assert_err!(failed.complete(&1).await, InvalidTransition { .. });
    let s = Client::new(db).workflow(failed.task_id()).await.unwrap();
    assert_eq!(s.status, Status::Failed);
    assert_eq!(s.error.as_deref(), Some("gave up after boom"));
    assert_eq!(seen.total(), 0, "a finished step ran again");

    let after = snapshot(db).await;
    for root in [ctx.task_id(), tricky.task_id(), failed.task_id()] {
        let (old, new) = (tree_lines(&before, root), tree_lines(&after, root));
        assert_eq!(new, old, "a replay wrote to {root}");
    }
}

/// Runs killed mid-step under v2 finish: the inline `interrupted` (killed
/// in its child `sub#0`) resumed with the generator's code, and `job-a`
/// and `job-b` (killed in step `two` under a worker) on a v3 worker. Steps
/// that completed do not run again; the ones cut off run once.
async fn interrupted_work_finishes(backend: Backend, fx: &Fixture) {
    let t = upgraded(backend, fx).await;
    let (client, seen) = (Client::new(&t.db), Arc::new(Seen::default()));
    let input = Some(json!({"kind": "mid"}));
    let ctx = Ctx::start(&t.db, "interrupted", input).await.unwrap();
    for i in 0..2u32 {
        assert_eq!(replay::<u32>(&ctx, &seen, "s").await, i * 7);
    }
    let sub = ctx.child("sub", Some(json!({"part": 1}))).await.unwrap();
    assert_eq!(replay::<String>(&sub, &seen, "c0").await, TRICKY);
    assert_eq!(seen.total(), 0, "a completed step ran again");
    let c1 = step(&sub, &seen, "c1", "c1".to_string()).await.unwrap();
    assert_eq!(c1, "c1");
    sub.complete(&"sub done").await.unwrap();
    ctx.complete(&"done").await.unwrap();
    assert_eq!((seen.total(), seen.runs("sub#0/c1")), (1, 1));
    let tree = client.tree(ctx.task_id()).await.unwrap();
    let sub_tree = tree.steps[2].child.as_ref().expect("sub's tree");
    let statuses = (tree.workflow.status, sub_tree.workflow.status);
    assert_eq!(statuses, (Status::Completed, Status::Completed));

    for key in ["job-a", "job-b"] {
        let s = summary(&client, key).await;
        assert_eq!(s.status, Status::Running, "{key}");
        assert!(s.owner.is_some(), "{key} is owned by the killed worker");
    }
    let worker = start_worker(&t.db, &seen, &["default"]);
    assert_eq!(result::<u64>(&client, "job-a").await, 4);
    assert_eq!(result::<u64>(&client, "job-b").await, 6);
    stop_worker(worker).await;
    for key in ["job-a", "job-b"] {
        assert_eq!(seen.runs(&format!("{key}/one")), 0, "{key}: one again");
        assert_eq!(seen.runs(&format!("{key}/two")), 1, "{key}: two");
        let s = summary(&client, key).await;
        assert_eq!((s.status, s.recoveries), (Status::Completed, 1), "{key}");
    }
}

/// The suspended waiters resume on a v3 worker: `waiter-1`, woken with
/// `wake_for_test`, returns the payload; `waiter-2` (woken under v2)
/// finishes at once; `before` runs for neither, `after` once for each.
async fn suspended_waiters_resume(backend: Backend, fx: &Fixture) {
    let t = upgraded(backend, fx).await;
    let (client, seen) = (Client::new(&t.db), Arc::new(Seen::default()));
    let w1 = summary(&client, "waiter-1").await;
    assert_eq!((w1.status, w1.owner), (Status::Pending, None));
    assert_eq!(w1.waiting_for.as_deref(), Some("approval"));
    let wake_at = client.tree(w1.id).await.unwrap().steps[1].wake_at_ms;
    assert!(wake_at.is_some());
    // Woken before any v3 worker runs, so its timeout cannot come first.
    let payload = json!({"by": "bob"});
    let woken = client.wake_for_test(w1.id, "approval", &payload).await;
    assert!(woken.unwrap());
    let worker = start_worker(&t.db, &seen, &["default"]);
    assert_eq!(result::<Value>(&client, "waiter-1").await, payload);
    let w2: Value = result(&client, "waiter-2").await;
    assert_eq!(w2, json!({"by": "alice"}));
    stop_worker(worker).await;
    for key in ["waiter-1", "waiter-2"] {
        assert_eq!(seen.runs(&format!("{key}/before")), 0, "{key}: before");
        assert_eq!(seen.runs(&format!("{key}/after")), 1, "{key}: after");
    }
    let tree = client.tree(w1.id).await.unwrap();
    let wait = &tree.steps[1];
    assert_eq!(wait.key, "approval#0");
    assert_eq!(
        (wait.kind, wait.status),
        (StepKind::Wait, Status::Completed)
    );
    assert_eq!(wait.wake_at_ms, wake_at, "the v2 wake-up time is kept");
    let again = client.wake_for_test(w1.id, "approval", &json!(1)).await;
    assert!(!again.unwrap());
}

/// `paused` stays paused until resumed, then goes on where it was (only
/// the new step runs); `cancelled` takes no step and cannot be resumed.
async fn paused_resumes_and_cancelled_stays_cancelled(backend: Backend, fx: &Fixture) {
    let t = upgraded(backend, fx).await;
    let (client, seen) = (Client::new(&t.db), Arc::new(Seen::default()));
    for round in 0..2 {
        let ctx = Ctx::start(&t.db, "paused", None).await.unwrap();
        assert_eq!(replay::<String>(&ctx, &seen, "a").await, "A");
        let kid = ctx.child("kid", None).await.unwrap();
        assert_eq!(replay::<String>(&kid, &seen, "k").await, "K");
        if round == 0 {
            assert_err!(step(&ctx, &seen, "b", 1u32).await, Paused(_));
            client.resume(ctx.task_id()).await.unwrap();
        } else {
            kid.complete(&"kid done").await.unwrap();
            assert_eq!(step(&ctx, &seen, "b", 2u32).await.unwrap(), 2);
            ctx.complete(&2).await.unwrap();
            let s = client.workflow(ctx.task_id()).await.unwrap();
            assert_eq!(s.status, Status::Completed);
        }
    }
    assert_eq!(seen.total(), 1, "only the new step ran");
    assert_eq!(seen.runs("paused/b"), 1);

    let ctx = Ctx::start(&t.db, "cancelled", None).await.unwrap();
    assert_eq!(replay::<String>(&ctx, &seen, "a").await, "A");
    let kid = ctx.child("kid", None).await.unwrap();
    assert_eq!(replay::<String>(&kid, &seen, "k").await, "K");
    assert_err!(step(&kid, &seen, "more", 1u32).await, Cancelled(_));
    assert_err!(step(&ctx, &seen, "b", 1u32).await, Cancelled(_));
    assert_err!(client.resume(ctx.task_id()).await, InvalidTransition { .. });
    assert_eq!(seen.total(), 1, "a step of the cancelled tree ran");
    let s = client.workflow(ctx.task_id()).await.unwrap();
    assert_eq!(s.status, Status::Cancelled);
}

/// Queued work runs under its queue: a worker of `default` runs `queued-2`
/// and leaves `queued-0/1` of the fixture's queue alone; a worker of both runs them one
/// at a time (per-key limit 1, kept with the queue's other limits);
/// `queued-later` (due in ten years) stays unclaimed.
async fn queued_work_runs_under_its_queue(backend: Backend, fx: &Fixture) {
    let t = upgraded(backend, fx).await;
    let (client, seen) = (Client::new(&t.db), Arc::new(Seen::default()));
    let worker = start_worker(&t.db, &seen, &["default"]);
    assert_eq!(result::<u64>(&client, "queued-2").await, 20);
    stop_worker(worker).await;
    let s = summary(&client, "queued-2").await;
    assert_eq!(
        (s.priority, s.app_version.as_deref()),
        (5, Some(fx.app_version))
    );
    for key in ["queued-0", "queued-1"] {
        let s = summary(&client, key).await;
        assert_eq!((s.status, s.attempts), (Status::Pending, 0), "{key}");
        assert_eq!(
            (s.queue.as_deref(), s.owner),
            (Some(fx.queue), None),
            "{key}"
        );
    }

    let worker = start_worker(&t.db, &seen, &["default", fx.queue]);
    assert_eq!(result::<u64>(&client, "queued-0").await, 0);
    assert_eq!(result::<u64>(&client, "queued-1").await, 10);
    stop_worker(worker).await;
    let most = seen.max_c.load(Ordering::SeqCst);
    assert_eq!(most, 1, "the per-key limit was lost");
    for key in ["queued-0", "queued-1", "queued-2"] {
        assert_eq!(seen.runs(&format!("{key}/work")), 1, "{key}");
    }
    let limits = Statement::from_sql_and_values(
        t.db.get_database_backend(),
        "SELECT COUNT(*) FROM durable_queue WHERE name = $1 AND concurrency = 2 \
         AND key_concurrency = 1 AND rate_limit = 10 AND rate_period_ms = 60000",
        [fx.queue.into()],
    );
    let row = t.db.query_one_raw(limits).await.unwrap().unwrap();
    let kept: i64 = row.try_get_by_index(0).unwrap();
    assert_eq!(kept, 1, "the queue keeps its limits");
    let later = summary(&client, "queued-later").await;
    assert_eq!((later.status, later.attempts), (Status::Pending, 0));
    assert_eq!(later.owner, None);
    assert!(later.wake_at_ms.unwrap() >= later.created_at_ms + TEN_YEARS_MS);
    assert_eq!(seen.runs("queued-later/work"), 0);
}

/// An old workflow uses the primitives of v3: `order-42` (owned by a process
/// that exited) resumes with its key, input and deadline, publishes an
/// event, receives a message sent with `Client::send`, spawns a child
/// that a worker runs, and joins it; a replay does none of it again.
async fn old_workflow_uses_the_primitives(backend: Backend, fx: &Fixture) {
    let t = upgraded(backend, fx).await;
    let (client, seen) = (Client::new(&t.db), Arc::new(Seen::default()));
    let s = summary(&client, "order-42").await;
    assert_eq!((s.name.as_str(), s.status), ("keyed", Status::Running));
    assert_eq!(s.input, Some(json!(42)));
    assert_eq!(s.timeout_ms, Some(TEN_YEARS_MS));
    assert!(s.deadline_ms.unwrap() >= s.created_at_ms + TEN_YEARS_MS);
    let worker = start_worker(&t.db, &seen, &["default"]);
    for round in 0..2 {
        let ctx = Ctx::start_with_key(&t.db, "keyed", "order-42", None);
        let ctx = ctx.await.unwrap();
        assert_eq!(replay::<u32>(&ctx, &seen, "a").await, 42);
        ctx.set_event("progress", &json!({"a": 42})).await.unwrap();
        let event = client.get_event::<Value>(s.id, "progress", Duration::ZERO);
        assert_eq!(event.await.unwrap(), Some(json!({"a": 42})));
        if round == 0 {
            let message = json!({"ok": true});
            client.send(s.id, "approval", &message).await.unwrap();
        }
        let got = ctx.recv::<Value>("approval", Duration::from_secs(30));
        assert_eq!(got.await.unwrap(), Some(json!({"ok": true})));
        let child = ctx.spawn("double", &21u64).await.unwrap();
        assert_eq!(child.join::<u64>().await.unwrap(), 42);
        if round == 0 {
            ctx.complete(&42).await.unwrap();
        }
        assert_eq!(ctx.get_output::<u64>().await.unwrap(), Some(42));
    }
    stop_worker(worker).await;
    assert_eq!(seen.runs("order-42/a"), 0, "step a ran again");
    assert_eq!(seen.runs("double#0/double"), 1, "the spawned child's step");
    let tree = client.tree(s.id).await.unwrap();
    assert_eq!(tree.workflow.status, Status::Completed);
    let kind = |s: &durable::StepSummary| format!("{}:{}", s.key, s.kind);
    let kinds: Vec<_> = tree.steps.iter().map(kind).collect();
    let expected = "a#0:STEP progress#0:EVENT approval#0:RECV double#0:SPAWN join#0:JOIN";
    assert_eq!(kinds.join(" "), expected);
    let spawned = tree.steps[3].child.as_ref().expect("the spawned child");
    assert_eq!(spawned.workflow.status, Status::Completed);
    // What `order-42` wrote (the fixture's other workflows, which the
    // worker may run too, are not counted).
    for sql in [
        "SELECT COUNT(*) FROM durable_event WHERE workflow_id = $1",
        "SELECT COUNT(*) FROM durable_message WHERE workflow_id = $1",
        "SELECT COUNT(*) FROM durable_message WHERE workflow_id = $1 AND consumed_position IS NOT NULL",
        // The spawned child is a run unit of its own; the old rows stay NULL.
        "SELECT COUNT(*) FROM durable_workflow WHERE run_id = id AND parent_id = $1",
        "SELECT COUNT(*) FROM durable_workflow WHERE run_id IS NOT NULL AND root_id = $1",
    ] {
        let stmt = Statement::from_sql_and_values(
            t.db.get_database_backend(),
            sql,
            [common::id_value(&t.db, s.id)],
        );
        let row = t.db.query_one_raw(stmt).await.unwrap().unwrap();
        assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 1, "{sql}");
    }
}

/// `mailbox-1` (v3) carries on: suspended in `recv("second")` under v3,
/// with `first` taken, `later` waiting under its key, its child `part`
/// joined, two values of the event `phase` and a closed stream. After the
/// upgrade its event and stream read as written, a message wakes it, it
/// takes `later` without waiting, and nothing it did before runs again.
async fn v3_mailbox_carries_on(backend: Backend, fx: &Fixture) {
    let t = upgraded(backend, fx).await;
    let (client, seen) = (Client::new(&t.db), Arc::new(Seen::default()));
    let s = summary(&client, "mailbox-1").await;
    assert_eq!((s.status, s.owner), (Status::Pending, None));
    assert_eq!(s.waiting_for.as_deref(), Some("message on 'second'"));
    let phase = client.get_event::<Value>(s.id, "phase", Duration::ZERO);
    assert_eq!(
        phase.await.unwrap(),
        Some(json!({"got": "one", "squared": 49}))
    );
    let items: Vec<Value> = client
        .read_stream(s.id, "items")
        .map(|item| item.unwrap())
        .collect()
        .await;
    assert_eq!(items, [json!("a"), json!("b")]);
    client.send(s.id, "second", "two").await.unwrap();
    let worker = start_worker(&t.db, &seen, &["default"]);
    let done: Value = result(&client, "mailbox-1").await;
    stop_worker(worker).await;
    assert_eq!(done, json!(["two", "three"]));
    assert_eq!(seen.runs("part#0/square"), 0, "the joined child ran again");
    // (The worker also runs the fixture's other claimable work.)
    assert_eq!(seen.runs("mailbox-1/done"), 1);
    let again = client.send_with_key(s.id, "later", "later-key", "3").await;
    assert!(matches!(again, Err(InvalidTransition { .. }) | Ok(false)));
}

/// The tests of every fixture, on both backends.
macro_rules! on_fixtures {
    ($fixture:ident: $($name:ident),* $(,)?) => {
        #[allow(non_snake_case)]
        mod $fixture {
            use super::common::Backend;
            $(
                pub(super) async fn $name(backend: Backend) {
                    super::$name(backend, &super::$fixture).await
                }
            )*
            crate::both_backends!($($name),*);
        }
    };
}

on_fixtures!(V2:
    migration_keeps_every_row,
    finished_work_replays_without_running,
    interrupted_work_finishes,
    suspended_waiters_resume,
    paused_resumes_and_cancelled_stays_cancelled,
    queued_work_runs_under_its_queue,
    old_workflow_uses_the_primitives,
);

on_fixtures!(V3:
    migration_keeps_every_row,
    finished_work_replays_without_running,
    interrupted_work_finishes,
    suspended_waiters_resume,
    paused_resumes_and_cancelled_stays_cancelled,
    queued_work_runs_under_its_queue,
    old_workflow_uses_the_primitives,
    v3_mailbox_carries_on,
);
