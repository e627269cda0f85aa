//! Durable sleep and messages, on both backends: a sleep's wake-up time is
//! fixed once and a restarted workflow sleeps only the remainder; a long
//! sleep or wait suspends the workflow (no owner, no slot); a message is
//! received once, in order, never lost, and wakes its waiting recipient;
//! bad durations, targets and payloads get typed errors and store nothing.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Backend, RunningWorker, Runs, TestDb, count, ran, run_worker, until_key};
use durable::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Status, StepKind, Worker};
use serde_json::{Value, json};

/// A step that counts its runs under `key/name`.
async fn counted_step(ctx: &Ctx, runs: &Runs, name: &str) -> Result<(), DurableError> {
    let (r, what) = (runs.clone(), format!("{}/{name}", ctx.key()));
    ctx.step(name, move || async move {
        ran(&r, what);
        Ok(())
    })
    .await
}

/// `sleeper` (input: ms): step, sleep, step. `approver` (input: timeout
/// ms): step, recv "approval", step; returns the message or "timed out".
/// `self-sender`: sends itself its message between the recv's record and
/// the release.
fn registry(runs: &Runs, url: &str) -> Registry {
    let mut registry = Registry::new();
    let r = runs.clone();
    registry.register("sleeper", move |ctx: Ctx, ms: u64| {
        let r = r.clone();
        async move {
            counted_step(&ctx, &r, "before").await?;
            ctx.sleep(Duration::from_millis(ms)).await?;
            counted_step(&ctx, &r, "after").await?;
            Ok(())
        }
    });
    let r = runs.clone();
    registry.register("approver", move |ctx: Ctx, ms: u64| {
        let r = r.clone();
        async move {
            counted_step(&ctx, &r, "before").await?;
            let answer: Option<Value> = ctx.recv("approval", Duration::from_millis(ms)).await?;
            counted_step(&ctx, &r, "after").await?;
            Ok(answer.unwrap_or_else(|| json!("timed out")))
        }
    });
    let url = url.to_string();
    registry.register("self-sender", move |ctx: Ctx, _: ()| {
        let url = url.clone();
        async move {
            match ctx
                .recv::<Value>("approval", Duration::from_secs(3600))
                .await
            {
                Err(suspended @ DurableError::Suspended { .. }) => {
                    let db = durable::connect(&url).await?;
                    Client::new(&db)
                        .send(ctx.task_id(), "approval", &json!("early"))
                        .await?;
                    Err(suspended)
                }
                other => other,
            }
        }
    });
    registry
}

fn start_worker(db: &DatabaseConnection, runs: &Runs, url: &str) -> RunningWorker {
    run_worker(
        Worker::new(db, registry(runs, url))
            .concurrency(1)
            .poll_interval(Duration::from_millis(20)),
    )
}

async fn count_rows(db: &DatabaseConnection, table_query: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            table_query,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// A sleep past a second suspends the workflow; after the worker stopped
/// and a new one started, it wakes at the time fixed at the first run,
/// not a whole sleep later, and the step before it does not run again.
async fn sleep_suspends_and_sleeps_only_the_remainder(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let worker = start_worker(&t.db, &runs, &t.url);
    let handle = client
        .enqueue("sleeper", &2_500u64, EnqueueOptions::new().key("s"))
        .await
        .unwrap();
    until_key(&client, "s", |s| s.waiting_for.is_some()).await;
    let summary = client.workflow(handle.id()).await.unwrap();
    assert_eq!(summary.status, Status::Pending);
    assert!(summary.owner.is_none(), "a sleeping workflow has no owner");
    assert_eq!(summary.waiting_for.as_deref(), Some("sleep"));
    worker.stop().await;

    // Restart the worker late in the sleep: it must not sleep 2.5 s again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let worker = start_worker(&t.db, &runs, &t.url);
    handle.result::<()>(Duration::from_secs(30)).await.unwrap();
    let tree = client.tree(handle.id()).await.unwrap();
    let sleep = &tree.steps[1];
    assert_eq!(
        (sleep.kind, sleep.status),
        (StepKind::Sleep, Status::Completed)
    );
    let (wake, done) = (sleep.wake_at_ms.unwrap(), sleep.finished_at_ms.unwrap());
    assert!(wake >= sleep.started_at_ms.unwrap() + 2_500, "{sleep:?}");
    assert!(done >= wake, "woke early: {sleep:?}");
    assert!(
        done < wake + 2_500,
        "slept the whole duration again after the restart: {sleep:?}"
    );
    assert_eq!(count(&runs, "s/before"), 1);
    assert_eq!(count(&runs, "s/after"), 1);
    worker.stop().await;
}

/// An inline workflow sleeps in its process (nothing resumes it otherwise);
/// a re-run replays the sleep without sleeping.
async fn inline_sleep_waits_in_process(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "nap", None).await.unwrap();
    ctx.sleep(Duration::from_millis(1_200)).await.unwrap();
    ctx.sleep(Duration::ZERO).await.unwrap();
    let past = SystemTime::now() - Duration::from_secs(60);
    ctx.sleep_until(past).await.unwrap();
    drop(ctx);
    let again = Ctx::start(&t.db, "nap", None).await.unwrap();
    let started = std::time::Instant::now();
    again.sleep(Duration::from_secs(3_600)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "a recorded sleep ran again"
    );
    again.complete(&()).await.unwrap();
    let tree = Client::new(&t.db).tree(again.task_id()).await.unwrap();
    let kinds: Vec<_> = tree
        .steps
        .iter()
        .map(|s| (s.key.as_str(), s.kind, s.status))
        .collect();
    assert_eq!(
        kinds,
        [
            ("sleep#0", StepKind::Sleep, Status::Completed),
            ("sleep#1", StepKind::Sleep, Status::Completed),
            ("sleep#2", StepKind::Sleep, Status::Completed),
        ]
    );
}

/// Absurd times are refused with a typed error and record nothing.
async fn bad_sleeps(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "bad-naps", None).await.unwrap();
    let err = ctx.sleep(Duration::from_secs(u64::MAX)).await.unwrap_err();
    assert!(matches!(err, DurableError::InvalidInput(_)), "{err:?}");
    let err = ctx
        .sleep_until(UNIX_EPOCH - Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::InvalidInput(_)), "{err:?}");
    let far = SystemTime::now() + Duration::from_secs(200 * 366 * 24 * 3600);
    let err = ctx.sleep_until(far).await.unwrap_err();
    assert!(matches!(err, DurableError::InvalidInput(_)), "{err:?}");
    let tree = Client::new(&t.db).tree(ctx.task_id()).await.unwrap();
    assert!(tree.steps.is_empty(), "{:?}", tree.steps);
}

/// A workflow waiting for a message is suspended, and a send wakes it at
/// once: its result is the message, received once.
async fn recv_suspends_and_a_send_wakes_it(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let worker = start_worker(&t.db, &runs, &t.url);
    let handle = client
        .enqueue("approver", &3_600_000u64, EnqueueOptions::new().key("a"))
        .await
        .unwrap();
    until_key(&client, "a", |s| s.waiting_for.is_some()).await;
    assert!(client.workflow(handle.id()).await.unwrap().owner.is_none());
    client
        .send(handle.id(), "approval", &json!({"by": "alice"}))
        .await
        .unwrap();
    let out: Value = handle.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(out, json!({"by": "alice"}));
    assert_eq!(count(&runs, "a/before"), 1);
    assert_eq!(count(&runs, "a/after"), 1);
    let taken = count_rows(
        &t.db,
        "SELECT COUNT(*) FROM durable_message WHERE consumed_position IS NOT NULL",
    )
    .await;
    assert_eq!(taken, 1);
    worker.stop().await;
}

/// A message that arrives between the recv's record and the release is not
/// lost: the workflow stays claimable and takes it at once.
async fn a_message_during_the_release_is_not_lost(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    let worker = start_worker(&t.db, &runs, &t.url);
    let handle = client
        .enqueue("self-sender", &(), EnqueueOptions::new().key("ss"))
        .await
        .unwrap();
    let out: Value = handle.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(out, json!("early"));
    worker.stop().await;
}

/// A recv that times out records `None`: a replay gives `None` again even
/// if a message came since, and that message waits for the next recv.
async fn recv_times_out_and_replays_the_same_answer(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let ctx = Ctx::start(&t.db, "patient", None).await.unwrap();
    let none: Option<u32> = ctx.recv("ping", Duration::from_millis(200)).await.unwrap();
    assert_eq!(none, None);
    client.send(ctx.task_id(), "ping", &7u32).await.unwrap();
    drop(ctx);
    let again = Ctx::start(&t.db, "patient", None).await.unwrap();
    let replayed: Option<u32> = again
        .recv("ping", Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(replayed, None, "a replay changed its answer");
    let next: Option<u32> = again.recv("ping", Duration::from_secs(5)).await.unwrap();
    assert_eq!(next, Some(7), "the later message was lost");
}

/// Messages of a topic are received in the order sent, each once; a key
/// makes a repeated send a no-op; topics do not mix.
async fn messages_arrive_in_order_once(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let ctx = Ctx::start(&t.db, "inbox", None).await.unwrap();
    let id = ctx.task_id();
    for n in 0..5u32 {
        client.send(id, "numbers", &n).await.unwrap();
    }
    client.send(id, "other", &"x").await.unwrap();
    assert!(
        client
            .send_with_key(id, "numbers", "k", &100u32)
            .await
            .unwrap()
    );
    assert!(
        !client
            .send_with_key(id, "numbers", "k", &100u32)
            .await
            .unwrap()
    );
    let mut got = Vec::new();
    while let Some(n) = ctx.recv::<u32>("numbers", Duration::ZERO).await.unwrap() {
        got.push(n);
    }
    assert_eq!(got, [0, 1, 2, 3, 4, 100]);
    let other: Option<String> = ctx.recv("other", Duration::ZERO).await.unwrap();
    assert_eq!(other.as_deref(), Some("x"));
    // A message that does not fit the type is an error, and stays recorded.
    client.send(id, "typed", &"not a number").await.unwrap();
    let err = ctx.recv::<u32>("typed", Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, DurableError::InvalidInput(_)), "{err:?}");
}

/// Unknown and finished recipients, bad topics and payloads: typed errors,
/// and not one message stored.
async fn bad_sends_store_nothing(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let err = client
        .send(durable::Uuid::new_v4(), "t", &1)
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::NotFound(_)), "{err:?}");
    let done = Ctx::start(&t.db, "done", None).await.unwrap();
    done.complete(&1).await.unwrap();
    let err = client.send(done.task_id(), "t", &1).await.unwrap_err();
    assert!(
        matches!(err, DurableError::InvalidTransition { .. }),
        "{err:?}"
    );
    let open = Ctx::start(&t.db, "open", None).await.unwrap();
    let id = open.task_id();
    let huge = "x".repeat(2 << 20);
    for err in [
        client.send(id, "t", &huge).await.unwrap_err(),
        client.send(id, "", &1).await.unwrap_err(),
        client.send(id, "nul\0topic", &1).await.unwrap_err(),
        client.send(id, "t", &f64::NAN).await.unwrap_err(),
        client.send_with_key(id, "t", "", &1).await.unwrap_err(),
    ] {
        assert!(matches!(err, DurableError::InvalidInput(_)), "{err:?}");
    }
    // Hostile text is only data.
    let hostile = "'); DROP TABLE durable_message; --";
    client.send(id, hostile, &hostile).await.unwrap();
    let got: Option<String> = open.recv(hostile, Duration::ZERO).await.unwrap();
    assert_eq!(got.as_deref(), Some(hostile));
    assert_eq!(
        count_rows(&t.db, "SELECT COUNT(*) FROM durable_message").await,
        1
    );
}

/// `ctx.send` is a durable call: a replay sends nothing again; a send to a
/// finished workflow is recorded as failed and replays as that failure.
async fn ctx_send_is_exactly_once(backend: Backend) {
    let t = TestDb::new(backend).await;
    let receiver = Ctx::start(&t.db, "receiver", None).await.unwrap();
    let finished = Ctx::start(&t.db, "finished", None).await.unwrap();
    finished.complete(&()).await.unwrap();
    for _ in 0..2 {
        let sender = Ctx::start(&t.db, "sender", None).await.unwrap();
        sender.send(receiver.task_id(), "t", &"hi").await.unwrap();
        let err = sender
            .send(finished.task_id(), "t", &"late")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                DurableError::InvalidTransition { .. } | DurableError::StepFailed { .. }
            ),
            "{err:?}"
        );
    }
    assert_eq!(
        count_rows(&t.db, "SELECT COUNT(*) FROM durable_message").await,
        1
    );
    let got: Option<String> = receiver.recv("t", Duration::ZERO).await.unwrap();
    assert_eq!(got.as_deref(), Some("hi"));
}

both_backends!(
    sleep_suspends_and_sleeps_only_the_remainder,
    inline_sleep_waits_in_process,
    bad_sleeps,
    recv_suspends_and_a_send_wakes_it,
    a_message_during_the_release_is_not_lost,
    recv_times_out_and_replays_the_same_answer,
    messages_arrive_in_order_once,
    bad_sends_store_nothing,
    ctx_send_is_exactly_once,
);
