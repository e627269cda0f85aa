//! Many sleepers hold nothing: thousands of workflows asleep on a worker of
//! four slots are all suspended at once with no owner, other work runs
//! meanwhile, and those whose time comes wake (never before it) and finish
//! once while the others sleep on. How late timers fire is a figure of the
//! benchmark (`durable bench --only primitives`), not of a test.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Backend, Runs, TestDb, count, ran, run_worker};
use durable::{Client, Ctx, EnqueueOptions, Registry, Status, StepKind, Worker};

/// How many of the sleepers wake during the test.
const WAKING: u32 = 100;

/// Sleeping workflows: 2,000 by default (every sleeper passes through a
/// four-slot worker, so 2,000 already shows no slot is kept), more with
/// `DURABLE_SLEEPERS=10000 cargo test -p durable-workflows --test sleepers`.
fn sleepers() -> u32 {
    std::env::var("DURABLE_SLEEPERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
        .max(WAKING + 1)
}

fn registry(runs: &Runs) -> Registry {
    let mut registry = Registry::new();
    let r = runs.clone();
    registry.register("napper", move |ctx: Ctx, wake_at_ms: u64| {
        let r = r.clone();
        async move {
            ctx.sleep_until(UNIX_EPOCH + Duration::from_millis(wake_at_ms))
                .await?;
            let (r, key) = (r.clone(), ctx.key().to_string());
            ctx.step("after", move || async move {
                ran(&r, key);
                Ok(())
            })
            .await
        }
    });
    registry.register("quick", |ctx: Ctx, n: u32| async move {
        ctx.step("q", || async move { Ok(n) }).await
    });
    registry
}

const ASLEEP: &str = "SELECT COUNT(*) FROM durable_workflow \
     WHERE name = 'napper' AND status = 'PENDING' AND owner_id IS NULL AND wait_for IS NOT NULL";
const OWNED: &str = "SELECT COUNT(*) FROM durable_workflow WHERE name = 'napper' AND owner_id IS NOT NULL \
     AND status IN ('PENDING', 'RUNNING')";
const WOKE_EARLY: &str = "SELECT COUNT(*) FROM durable_step \
     WHERE kind = 'SLEEP' AND status = 'COMPLETED' AND completed_ms < wake_ms";

fn epoch_ms(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

async fn sleepers_hold_no_slots(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let client = Client::new(&t.db);
    // Most sleep an hour; the few that wake are enqueued once those sleep.
    let far = epoch_ms(SystemTime::now() + Duration::from_secs(3600));
    let total = sleepers();
    for i in 0..total - WAKING {
        client
            .enqueue(
                "napper",
                &far,
                EnqueueOptions::new().key(format!("far-{i}")),
            )
            .await
            .unwrap();
    }
    let worker = run_worker(
        Worker::new(&t.db, registry(&runs))
            .concurrency(4)
            .poll_interval(Duration::from_millis(20)),
    );
    let sleeping = i64::from(total - WAKING);
    for _ in 0..6000 {
        if common::scalar(&t.db, ASLEEP).await == sleeping {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        common::scalar(&t.db, ASLEEP).await,
        sleeping,
        "not all fell asleep"
    );
    assert_eq!(
        common::scalar(&t.db, OWNED).await,
        0,
        "a sleeper holds a slot"
    );

    // The slots are free: other work runs while they sleep.
    let quick = client
        .enqueue("quick", &7u32, EnqueueOptions::new())
        .await
        .unwrap();
    assert_eq!(
        quick.result::<u32>(Duration::from_secs(60)).await.unwrap(),
        7
    );

    // Some whose time comes soon wake and finish, once each.
    let soon = epoch_ms(SystemTime::now() + Duration::from_secs(2));
    let mut waking = Vec::new();
    for i in 0..WAKING {
        let key = format!("soon-{i}");
        let handle = client
            .enqueue("napper", &soon, EnqueueOptions::new().key(&key))
            .await
            .unwrap();
        waking.push((key, handle));
    }
    for (key, handle) in &waking {
        handle.result::<()>(Duration::from_secs(120)).await.unwrap();
        assert_eq!(count(&runs, key), 1, "{key}");
        let tree = client.tree(handle.id()).await.unwrap();
        let sleep = &tree.steps[0];
        assert_eq!(
            (sleep.kind, sleep.status),
            (StepKind::Sleep, Status::Completed)
        );
    }
    assert_eq!(
        common::scalar(&t.db, WOKE_EARLY).await,
        0,
        "a sleep ended before its time"
    );
    assert_eq!(
        common::scalar(&t.db, ASLEEP).await,
        sleeping,
        "a far sleeper woke"
    );
    assert_eq!(common::scalar(&t.db, OWNED).await, 0);
    worker.stop().await;
}

both_backends!(sleepers_hold_no_slots);
