//! Queues: limits that hold across executors (global, per executor, per
//! concurrency key, rate), priority, delay, application versions, graceful
//! shutdown and enqueue idempotency under a race. In-process workers, each
//! its own executor; facts read back from the database.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestDb};
use durable::sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Statement,
};
use durable::{Client, Ctx, DurableError, EnqueueOptions, Queue, Registry, Uuid, Worker};
use durable_db::entity::task;
use serde::{Deserialize, Serialize};
use tokio::sync::{Barrier, oneshot};

/// How often each step of each workflow ran, by `"{tag} step#{j}"`.
type Runs = Arc<Mutex<HashMap<String, u32>>>;

/// Input of `work`: `steps` steps of `ms` each.
#[derive(Debug, Serialize, Deserialize)]
struct Work {
    tag: String,
    steps: u32,
    ms: u64,
}

fn work(tag: &str, steps: u32, ms: u64) -> Work {
    Work {
        tag: tag.into(),
        steps,
        ms,
    }
}

/// `work`, counting step runs in `runs`; with `hang`, step 1 never ends.
fn registry(runs: &Runs, hang: bool) -> Registry {
    let runs = runs.clone();
    let mut registry = Registry::new();
    registry.register("work", move |ctx: Ctx, w: Work| {
        let runs = runs.clone();
        async move {
            for j in 0..w.steps {
                let (runs, label) = (runs.clone(), format!("{} step#{j}", w.tag));
                let ms = if hang && j == 1 { 3_600_000 } else { w.ms };
                ctx.step("step", move || async move {
                    *runs.lock().unwrap().entry(label).or_insert(0) += 1;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(j)
                })
                .await?;
            }
            Ok(w.steps)
        }
    });
    registry
}

fn runs() -> Runs {
    Arc::default()
}

/// A worker running in a task of this process.
struct Running {
    id: Uuid,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), DurableError>>,
}

fn run(worker: Worker) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = worker.poll_interval(Duration::from_millis(20));
    let id = worker.id();
    let task = tokio::spawn(worker.run(async move {
        stopped.await.ok();
    }));
    Running { id, stop, task }
}

impl Running {
    /// Shut down gracefully; the worker must return `Ok`.
    async fn stop(self) {
        self.stop.send(()).ok();
        self.task.await.unwrap().unwrap();
    }
}

async fn declare(db: &DatabaseConnection, queue: Queue) {
    Client::new(db).declare_queue(&queue).await.unwrap();
}

/// Enqueue `work` with `steps` steps of `ms` under `key` (also its tag).
async fn enqueue(db: &DatabaseConnection, key: &str, steps: u32, ms: u64, options: EnqueueOptions) {
    let w = work(key, steps, ms);
    let handle = Client::new(db)
        .enqueue("work", &w, options.key(key))
        .await
        .unwrap();
    assert!(handle.is_new());
}

/// Enqueue `{prefix}0` .. `{prefix}{n-1}`, options by index; their keys.
async fn enqueue_n(
    db: &DatabaseConnection,
    prefix: &str,
    n: usize,
    (steps, ms): (u32, u64),
    options: impl Fn(usize) -> EnqueueOptions,
) -> Vec<String> {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        enqueue(db, key, steps, ms, options(i)).await;
    }
    keys
}

async fn wait_all(db: &DatabaseConnection, keys: &[String]) {
    let client = Client::new(db);
    for key in keys {
        let handle = client.handle_by_key(key).await.unwrap();
        handle.result::<u32>(Duration::from_secs(60)).await.unwrap();
    }
}

async fn roots(db: &DatabaseConnection) -> Vec<task::Model> {
    task::Entity::find()
        .filter(task::Column::ParentId.is_null())
        .all(db)
        .await
        .unwrap()
}

/// Most workflows whose `[started_ms, completed_ms)` overlap, per group.
fn max_overlap<'a>(rows: impl Iterator<Item = &'a task::Model>) -> usize {
    let mut events = Vec::new();
    for r in rows {
        events.push((r.started_ms.unwrap(), 1i32));
        events.push((r.completed_ms.unwrap(), -1));
    }
    events.sort();
    let (mut now, mut max) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        max = max.max(now);
    }
    max as usize
}

/// Peaks of RUNNING workflows of live executors (the SDK's rule, as in
/// `owner_alive!`): in all, per concurrency key, per executor.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    all: usize,
    key: usize,
    owner: usize,
}

fn sampler(t: &TestDb, queue: &'static str) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Peaks>) {
    let sql = format!(
        "SELECT t.owner_id, t.concurrency_key FROM durable_workflow t JOIN durable_executor e \
         ON e.id = t.owner_id WHERE t.parent_id IS NULL AND t.queue = $1 \
         AND t.status = 'RUNNING' AND e.lease_expires_ms > {}",
        common::db_now(t.backend)
    );
    let (db, stop) = (t.db.clone(), Arc::new(AtomicBool::new(false)));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let mut peaks = Peaks::default();
        while !flag.load(Ordering::SeqCst) {
            let stmt =
                Statement::from_sql_and_values(db.get_database_backend(), &sql, [queue.into()]);
            let rows = db.query_all_raw(stmt).await.unwrap();
            let (mut keys, mut owners) = (HashMap::new(), HashMap::new());
            for row in &rows {
                let owner = common::id_at(&db, row, 0);
                *owners.entry(owner).or_insert(0) += 1;
                if let Some(key) = row.try_get_by_index::<Option<String>>(1).unwrap() {
                    *keys.entry(key).or_insert(0) += 1;
                }
            }
            peaks.all = peaks.all.max(rows.len());
            peaks.key = peaks.key.max(keys.values().copied().max().unwrap_or(0));
            peaks.owner = peaks.owner.max(owners.values().copied().max().unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        peaks
    });
    (stop, task)
}

async fn stop_sampler(sampler: (Arc<AtomicBool>, tokio::task::JoinHandle<Peaks>)) -> Peaks {
    sampler.0.store(true, Ordering::SeqCst);
    sampler.1.await.unwrap()
}

/// 16 concurrent enqueues of one key from 16 pools: one workflow, and
/// exactly one caller is told it created it.
async fn enqueue_race_creates_one_workflow(backend: Backend) {
    let t = TestDb::new(backend).await;
    let barrier = Arc::new(Barrier::new(16));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (db, barrier) = (TestDb::connect(&t.url).await, barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let options = EnqueueOptions::new().key("race");
            Client::new(&db)
                .enqueue("work", &work("race", 1, 0), options)
                .await
        }));
    }
    let mut handles = Vec::new();
    for task in tasks {
        handles.push(task.await.unwrap().unwrap());
    }
    assert_eq!(handles.iter().filter(|h| h.is_new()).count(), 1);
    assert!(handles.iter().all(|h| h.id() == handles[0].id()));
    assert_eq!(common::root_count(&t.db).await, 1);
    assert_eq!(common::root(&t.db, "race").await.id, handles[0].id());
}

/// A queue's concurrency limit holds across three executors, and is reached.
async fn global_limit_holds_across_workers(backend: Backend) {
    let t = TestDb::new(backend).await;
    declare(&t.db, Queue::new("capped").concurrency(3)).await;
    let sampler = sampler(&t, "capped");
    let r = runs();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let w = Worker::new(&t.db, registry(&r, false)).concurrency(2);
            run(w.queues(["capped"]))
        })
        .collect();
    let keys = enqueue_n(&t.db, "c", 12, (2, 40), |_| {
        EnqueueOptions::new().queue("capped")
    })
    .await;
    wait_all(&t.db, &keys).await;
    let peaks = stop_sampler(sampler).await;
    for w in workers {
        w.stop().await;
    }
    let done = roots(&t.db).await;
    assert_eq!(peaks.all, 3, "sampled peak {peaks:?}");
    assert_eq!(max_overlap(done.iter()), 3);
    assert!(peaks.owner <= 2, "{peaks:?}");
    let owners: std::collections::HashSet<_> = done.iter().map(|r| r.owner_id).collect();
    assert!(owners.len() >= 2, "one executor ran everything");
}

/// `queue_with_limit` caps one executor's share of a queue.
async fn per_executor_limit_holds(backend: Backend) {
    let t = TestDb::new(backend).await;
    declare(&t.db, Queue::new("mine")).await;
    let sampler = sampler(&t, "mine");
    let r = runs();
    let w = run(Worker::new(&t.db, registry(&r, false)).queue_with_limit("mine", 2));
    let keys = enqueue_n(&t.db, "m", 6, (2, 40), |_| {
        EnqueueOptions::new().queue("mine")
    })
    .await;
    wait_all(&t.db, &keys).await;
    let peaks = stop_sampler(sampler).await;
    w.stop().await;
    assert_eq!(peaks.owner, 2, "{peaks:?}");
    assert_eq!(max_overlap(roots(&t.db).await.iter()), 2);
}

/// A worker's own concurrency bounds all the queues it serves together.
async fn worker_concurrency_spans_queues(backend: Backend) {
    let t = TestDb::new(backend).await;
    declare(&t.db, Queue::new("qa")).await;
    declare(&t.db, Queue::new("qb")).await;
    let queue = |i: usize| EnqueueOptions::new().queue(["qa", "qb"][i % 2]);
    let keys = enqueue_n(&t.db, "s", 8, (2, 40), queue).await;
    let r = runs();
    let w = Worker::new(&t.db, registry(&r, false)).concurrency(2);
    let w = run(w.queues(["qa", "qb"]));
    wait_all(&t.db, &keys).await;
    w.stop().await;
    assert_eq!(max_overlap(roots(&t.db).await.iter()), 2);
}

/// A slot freed by a workflow of a later queue goes to the first served
/// queue that has work, not back to the queue of the workflow that ended
/// (the task that ends a workflow claims the next one into its slot).
async fn a_freed_slot_goes_to_the_first_queue_with_work(backend: Backend) {
    let t = TestDb::new(backend).await;
    declare(&t.db, Queue::new("first")).await;
    declare(&t.db, Queue::new("second")).await;
    let on = |queue: &'static str| move |_| EnqueueOptions::new().queue(queue);
    let r = runs();
    let early = enqueue_n(&t.db, "early", 1, (3, 60), on("second")).await;
    let w = Worker::new(&t.db, registry(&r, false)).concurrency(1);
    let w = run(w.queues(["first", "second"]));
    while r.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let later = enqueue_n(&t.db, "later", 3, (1, 10), on("second")).await;
    let firsts = enqueue_n(&t.db, "first", 3, (1, 10), on("first")).await;
    for keys in [&early, &later, &firsts] {
        wait_all(&t.db, keys).await;
    }
    w.stop().await;
    let mut done = roots(&t.db).await;
    done.sort_by_key(|r| r.started_ms);
    let order: Vec<&str> = done.iter().map(|r| r.task_key.as_str()).collect();
    assert_eq!(
        order,
        [
            "early0", "first0", "first1", "first2", "later0", "later1", "later2"
        ]
    );
}

/// At most N starts per period: any N+1 consecutive starts (database
/// clock) span at least the period; N starts do fit in one.
async fn rate_limit_holds(backend: Backend) {
    let t = TestDb::new(backend).await;
    declare(
        &t.db,
        Queue::new("rated").rate_limit(2, Duration::from_millis(700)),
    )
    .await;
    let r = runs();
    let w = run(Worker::new(&t.db, registry(&r, false)).queues(["rated"]));
    let keys = enqueue_n(&t.db, "r", 6, (1, 0), |_| {
        EnqueueOptions::new().queue("rated")
    })
    .await;
    wait_all(&t.db, &keys).await;
    w.stop().await;
    let mut starts: Vec<i64> = roots(&t.db)
        .await
        .iter()
        .map(|r| r.started_ms.unwrap())
        .collect();
    starts.sort_unstable();
    for window in starts.windows(3) {
        assert!(
            window[2] - window[0] >= 700,
            "3 starts within 700 ms: {starts:?}"
        );
    }
    assert!(starts.windows(2).any(|w| w[1] - w[0] < 700), "{starts:?}");
}

/// With one slot, higher priority starts first; ties go by enqueue order.
async fn priority_orders_starts(backend: Backend) {
    let t = TestDb::new(backend).await;
    let jobs = [("a", 0), ("b", 5), ("c", 10), ("d", 5), ("e", -1)];
    for (key, priority) in jobs {
        enqueue(&t.db, key, 1, 20, EnqueueOptions::new().priority(priority)).await;
    }
    let r = runs();
    let w = run(Worker::new(&t.db, registry(&r, false)).concurrency(1));
    let keys: Vec<String> = jobs.iter().map(|(k, _)| k.to_string()).collect();
    wait_all(&t.db, &keys).await;
    w.stop().await;
    let mut done = roots(&t.db).await;
    done.sort_by_key(|r| r.started_ms);
    let order: Vec<&str> = done.iter().map(|r| r.task_key.as_str()).collect();
    assert_eq!(order, ["c", "b", "d", "a", "e"]);
}

/// Workflows of one priority start in enqueue order, also those enqueued
/// in the same millisecond (ids are ordered by creation).
async fn equal_priorities_start_in_enqueue_order(backend: Backend) {
    let t = TestDb::new(backend).await;
    let keys: Vec<String> = (0..20).map(|i| format!("q{i:02}")).collect();
    for key in &keys {
        enqueue(&t.db, key, 1, 2, EnqueueOptions::new()).await;
    }
    let r = runs();
    let w = run(Worker::new(&t.db, registry(&r, false)).concurrency(1));
    wait_all(&t.db, &keys).await;
    w.stop().await;
    let mut done = roots(&t.db).await;
    done.sort_by_key(|r| r.started_ms);
    let order: Vec<&str> = done.iter().map(|r| r.task_key.as_str()).collect();
    assert_eq!(order, keys);
}

/// A delayed workflow does not start before its time (database clock),
/// while work enqueued after it runs at once.
async fn delay_defers_the_start(backend: Backend) {
    let t = TestDb::new(backend).await;
    let r = runs();
    let w = run(Worker::new(&t.db, registry(&r, false)));
    let delay = EnqueueOptions::new().delay(Duration::from_millis(1500));
    enqueue(&t.db, "late", 1, 0, delay).await;
    enqueue(&t.db, "soon", 1, 0, EnqueueOptions::new()).await;
    wait_all(&t.db, &["late".into(), "soon".into()]).await;
    w.stop().await;
    let late = common::root(&t.db, "late").await;
    let soon = common::root(&t.db, "soon").await;
    assert_eq!(late.available_ms, Some(late.created_ms + 1500));
    assert!(
        late.started_ms.unwrap() >= late.available_ms.unwrap(),
        "{late:?}"
    );
    assert!(
        soon.completed_ms.unwrap() <= late.started_ms.unwrap(),
        "{soon:?} {late:?}"
    );
}

/// At most K running per concurrency key, while other keys run beside them.
async fn concurrency_key_limit_holds(backend: Backend) {
    let t = TestDb::new(backend).await;
    declare(&t.db, Queue::new("keyed").concurrency_per_key(1)).await;
    let sampler = sampler(&t, "keyed");
    let r = runs();
    let workers: Vec<_> = (0..2)
        .map(|_| run(Worker::new(&t.db, registry(&r, false)).queues(["keyed"])))
        .collect();
    let group = |i: usize| {
        EnqueueOptions::new()
            .queue("keyed")
            .concurrency_key(["A", "B"][i % 2])
    };
    let keys = enqueue_n(&t.db, "k", 6, (2, 40), group).await;
    wait_all(&t.db, &keys).await;
    let peaks = stop_sampler(sampler).await;
    for w in workers {
        w.stop().await;
    }
    let done = roots(&t.db).await;
    let group = |g: &'static str| {
        let done = &done;
        done.iter()
            .filter(move |r| r.concurrency_key.as_deref() == Some(g))
    };
    assert_eq!(peaks.key, 1, "{peaks:?}");
    assert_eq!(max_overlap(group("A")), 1);
    assert_eq!(max_overlap(group("B")), 1);
    assert_eq!(
        max_overlap(done.iter()),
        2,
        "the two keys never ran side by side"
    );
}

/// A per-key limit above one is held and reached (a claim takes one
/// workflow per key a round and asks again while a key has room): a
/// worker with four slots runs two of key A at once, never three.
async fn concurrency_key_limit_above_one_fills_each_key(backend: Backend) {
    let t = TestDb::new(backend).await;
    declare(&t.db, Queue::new("keyed2").concurrency_per_key(2)).await;
    let sampler = sampler(&t, "keyed2");
    let r = runs();
    let w = run(Worker::new(&t.db, registry(&r, false))
        .concurrency(4)
        .queues(["keyed2"]));
    let group = |_| EnqueueOptions::new().queue("keyed2").concurrency_key("A");
    let keys = enqueue_n(&t.db, "k", 6, (2, 60), group).await;
    wait_all(&t.db, &keys).await;
    let peaks = stop_sampler(sampler).await;
    w.stop().await;
    let done = roots(&t.db).await;
    assert_eq!(peaks.key, 2, "{peaks:?}");
    assert_eq!(max_overlap(done.iter()), 2);
}

/// A backlog under one concurrency key does not hold back another key's
/// work: the per-key limit isolates keys (e.g. customers).
async fn concurrency_key_backlog_does_not_block_other_keys(backend: Backend) {
    let t = TestDb::new(backend).await;
    declare(&t.db, Queue::new("keyed").concurrency_per_key(1)).await;
    let key = |k: &str| EnqueueOptions::new().queue("keyed").concurrency_key(k);
    let mut keys = enqueue_n(&t.db, "a", 40, (1, 20), |_| key("A")).await;
    enqueue(&t.db, "b", 1, 20, key("B")).await;
    keys.push("b".into());
    let r = runs();
    let w = run(Worker::new(&t.db, registry(&r, false))
        .concurrency(4)
        .queues(["keyed"]));
    wait_all(&t.db, &keys).await;
    w.stop().await;
    let done = roots(&t.db).await;
    let b = common::root(&t.db, "b").await.started_ms.unwrap();
    let a: Vec<_> = done.iter().filter(|r| r.task_key != "b").collect();
    assert_eq!(max_overlap(a.iter().copied()), 1);
    // B is claimed in the first round, beside the first A.
    let before_b = a.iter().filter(|r| r.completed_ms.unwrap() < b).count();
    assert_eq!(
        before_b, 0,
        "key B waited for {before_b} of key A's workflows"
    );
}

/// A workflow started by a v1 executor that dies is not resumed by a v2
/// executor (which runs other work meanwhile), but by another v1 executor
/// or one that accepts any version; completed steps do not run again.
async fn recovery_respects_app_versions(backend: Backend) {
    let t = TestDb::new(backend).await;
    declare(&t.db, Queue::new("qa")).await;
    declare(&t.db, Queue::new("qb")).await;
    let r = runs();
    let a = Worker::new(&t.db, registry(&r, true)).app_version("v1");
    let a = run(a.queues(["qa", "qb"]));
    enqueue(&t.db, "v1a", 3, 0, EnqueueOptions::new().queue("qa")).await;
    enqueue(&t.db, "v1b", 3, 0, EnqueueOptions::new().queue("qb")).await;
    let hung = |label: &str| r.lock().unwrap().get(label).copied() == Some(1);
    while !(hung("v1a step#1") && hung("v1b step#1")) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The v1 executor dies: its task stops and its lease is gone.
    a.task.abort();
    assert!(a.task.await.unwrap_err().is_cancelled());
    common::expire(&t.db, a.id).await;

    let b = Worker::new(&t.db, registry(&r, false)).app_version("v2");
    let b = run(b.queues(["qa", "qb"]));
    enqueue(&t.db, "ctl", 1, 0, EnqueueOptions::new().queue("qa")).await;
    wait_all(&t.db, &["ctl".into()]).await;
    b.stop().await;
    assert_eq!(
        common::root(&t.db, "ctl").await.app_version.as_deref(),
        Some("v2")
    );
    for key in ["v1a", "v1b"] {
        let row = common::root(&t.db, key).await;
        assert_eq!((row.status.as_str(), row.owner_id), ("RUNNING", Some(a.id)));
        assert_eq!(row.app_version.as_deref(), Some("v1"));
    }

    let c = Worker::new(&t.db, registry(&r, false)).app_version("v1");
    let c = run(c.queues(["qa"]));
    wait_all(&t.db, &["v1a".into()]).await;
    let d = Worker::new(&t.db, registry(&r, false)).app_version("v2");
    let d = run(d.any_version(true).queues(["qb"]));
    wait_all(&t.db, &["v1b".into()]).await;
    let (c_id, d_id) = (c.id, d.id);
    c.stop().await;
    d.stop().await;
    assert_eq!(common::root(&t.db, "v1a").await.owner_id, Some(c_id));
    assert_eq!(common::root(&t.db, "v1b").await.owner_id, Some(d_id));
    let runs = r.lock().unwrap().clone();
    for key in ["v1a", "v1b"] {
        assert_eq!(
            runs[&format!("{key} step#0")],
            1,
            "a completed step ran again"
        );
        assert_eq!(runs[&format!("{key} step#1")], 2, "the interrupted step");
        assert_eq!(runs[&format!("{key} step#2")], 1);
    }
}

/// Graceful shutdown: running workflows stop at a step boundary and are
/// released; none stays RUNNING under the stopped worker, whose lease ends;
/// with no grace they are stopped mid-step and released all the same.
async fn graceful_shutdown_releases_everything(backend: Backend) {
    let t = TestDb::new(backend).await;
    let r = runs();
    let keys = enqueue_n(&t.db, "g", 4, (10, 80), |_| EnqueueOptions::new()).await;
    let started = |r: &Runs, n: usize| r.lock().unwrap().len() >= n;
    for (grace, begun) in [(Duration::from_secs(10), 4), (Duration::ZERO, 12)] {
        let w = run(Worker::new(&t.db, registry(&r, false)).shutdown_grace(grace));
        while !started(&r, begun) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let id = w.id;
        w.stop().await;
        for root in roots(&t.db).await {
            assert_ne!(root.status, "RUNNING", "{root:?}");
            assert!(
                root.status == "COMPLETED" || root.owner_id.is_none(),
                "{root:?}"
            );
        }
        assert!(
            !common::lease_live(&t, id).await,
            "the stopped worker still looks alive"
        );
        if !grace.is_zero() {
            // Stopped at a step boundary, not run to the end; every step
            // begun was finished and recorded before the stop.
            let pending = roots(&t.db)
                .await
                .iter()
                .filter(|r| r.status == "PENDING")
                .count();
            assert!(pending > 0, "the shutdown waited for whole workflows");
            let labels: Vec<String> = r.lock().unwrap().keys().cloned().collect();
            for label in labels {
                let (key, step) = label.split_once(' ').unwrap();
                let root = common::root(&t.db, key).await;
                assert_eq!(
                    common::child_row(&t.db, root.id, step)
                        .await
                        .unwrap()
                        .status,
                    "COMPLETED"
                );
            }
        }
    }
    let w = run(Worker::new(&t.db, registry(&r, false)));
    wait_all(&t.db, &keys).await;
    w.stop().await;
    let runs: u32 = r.lock().unwrap().values().sum();
    assert!((40..=44).contains(&runs), "{runs} step runs for 40 steps");
}

/// A worker claims only workflows it has the function of; another worker
/// that has it runs them.
async fn unregistered_workflows_are_left_alone(backend: Backend) {
    let t = TestDb::new(backend).await;
    let mut other = Registry::new();
    other.register("other", |_ctx: Ctx, n: u32| async move { Ok(n) });
    let a = run(Worker::new(&t.db, other));
    enqueue(&t.db, "mine", 1, 0, EnqueueOptions::new()).await;
    let client = Client::new(&t.db);
    let ctl = client
        .enqueue("other", &7u32, EnqueueOptions::new())
        .await
        .unwrap();
    assert_eq!(ctl.result::<u32>(Duration::from_secs(30)).await.unwrap(), 7);
    let row = common::root(&t.db, "mine").await;
    assert_eq!(
        (row.status.as_str(), row.owner_id, row.started_ms),
        ("PENDING", None, None)
    );
    let r = runs();
    let b = run(Worker::new(&t.db, registry(&r, false)));
    wait_all(&t.db, &["mine".into()]).await;
    assert_eq!(common::root(&t.db, "mine").await.owner_id, Some(b.id));
    a.stop().await;
    b.stop().await;
}

/// A queue declared without limits is claimed from in one statement; a
/// concurrency limit declared later, while its workers run, holds for
/// everything enqueued after it (the one-statement claim reads the limits
/// itself and gives way to the claim transaction).
async fn a_limit_declared_later_holds(backend: Backend) {
    let t = TestDb::new(backend).await;
    declare(&t.db, Queue::new("later")).await;
    let r = runs();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let w = Worker::new(&t.db, registry(&r, false)).concurrency(8);
            run(w.queues(["later"]))
        })
        .collect();
    let free = enqueue_n(&t.db, "free", 8, (2, 60), |_| {
        EnqueueOptions::new().queue("later")
    })
    .await;
    wait_all(&t.db, &free).await;
    declare(&t.db, Queue::new("later").concurrency(2)).await;
    let sampler = sampler(&t, "later");
    let capped = enqueue_n(&t.db, "capped", 8, (2, 30), |_| {
        EnqueueOptions::new().queue("later")
    })
    .await;
    wait_all(&t.db, &capped).await;
    let peaks = stop_sampler(sampler).await;
    for w in workers {
        w.stop().await;
    }
    let done = roots(&t.db).await;
    let of = |prefix: &'static str| {
        max_overlap(done.iter().filter(move |r| r.task_key.starts_with(prefix)))
    };
    assert!(
        of("free") > 2,
        "the unlimited queue ran {} at once",
        of("free")
    );
    assert_eq!(of("capped"), 2, "after the limit");
    assert!(peaks.all <= 2, "sampled peak after the limit {peaks:?}");
}

both_backends!(
    a_limit_declared_later_holds,
    enqueue_race_creates_one_workflow,
    global_limit_holds_across_workers,
    per_executor_limit_holds,
    worker_concurrency_spans_queues,
    a_freed_slot_goes_to_the_first_queue_with_work,
    rate_limit_holds,
    priority_orders_starts,
    equal_priorities_start_in_enqueue_order,
    delay_defers_the_start,
    concurrency_key_limit_holds,
    concurrency_key_limit_above_one_fills_each_key,
    concurrency_key_backlog_does_not_block_other_keys,
    recovery_respects_app_versions,
    graceful_shutdown_releases_everything,
    unregistered_workflows_are_left_alone,
);
