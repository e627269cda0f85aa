//! Cron schedules on both backends: declaring, reading, pausing, resuming,
//! deleting and triggering; ticks fired by workers exactly once each; the
//! catch-up policies on a cursor left hours behind; bad declarations
//! refused with typed errors and nothing written.

mod common;

use std::time::Duration;

use common::{Backend, TestDb, run_worker};
use durable::{
    CatchUp, Client, Ctx, Direction, DurableError, Queue, Registry, Schedule, SortBy, Status, Tick,
    Worker, WorkflowQuery,
};

/// Workflows whose key starts with `prefix`, oldest first.
async fn keys(client: &Client, prefix: &str) -> Vec<String> {
    let page = client
        .list(
            &WorkflowQuery::new()
                .key_prefix(prefix)
                .sort(SortBy::Created, Direction::Ascending)
                .limit(1000),
        )
        .await
        .unwrap();
    // One firing inserts many ticks at the same instant, so order by the
    // key itself: RFC 3339 keys sort chronologically.
    let mut keys: Vec<String> = page.workflows.into_iter().map(|w| w.key).collect();
    keys.sort();
    keys
}

async fn schedule_rows(t: &TestDb) -> i64 {
    common::scalar(&t.db, "SELECT COUNT(*) FROM durable_schedule").await
}

async fn declare_read_pause_resume_delete(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let nightly = Schedule::new("nightly", "0 0 3 * * *", "report")
        .time_zone("Europe/Berlin")
        .input(&("eu", 7))
        .catch_up(CatchUp::Bounded(2));
    let info = client.declare_schedule(&nightly).await.unwrap();
    assert_eq!(
        (
            info.name.as_str(),
            info.workflow.as_str(),
            info.cron.as_str()
        ),
        ("nightly", "report", "0 0 3 * * *")
    );
    assert_eq!(info.time_zone, "Europe/Berlin");
    assert_eq!(info.input, serde_json::json!(["eu", 7]));
    assert_eq!(info.queue, "default");
    assert_eq!(info.catch_up, CatchUp::Bounded(2));
    assert!(!info.paused);
    assert_eq!((info.last_tick, info.fired), (None, 0));
    let next = info.next_tick.expect("a next tick");
    assert!(next > chrono::Utc::now() && next < chrono::Utc::now() + chrono::Duration::days(1));
    assert_eq!(
        next.with_timezone(&chrono_tz::Europe::Berlin)
            .format("%H:%M:%S")
            .to_string(),
        "03:00:00"
    );

    // The same declaration again (another process starting) changes nothing.
    assert_eq!(client.declare_schedule(&nightly).await.unwrap(), info);
    // Pausing is kept across a changed definition; resuming restarts the cursor.
    client.pause_schedule("nightly").await.unwrap();
    client.pause_schedule("nightly").await.unwrap();
    let changed = client
        .declare_schedule(&Schedule::new("nightly", "0 30 4 * * *", "report"))
        .await
        .unwrap();
    assert!(changed.paused);
    assert_eq!(changed.time_zone, "UTC");
    assert_eq!(changed.input, serde_json::Value::Null);
    assert_eq!(
        changed.next_tick.unwrap().format("%H:%M:%S").to_string(),
        "04:30:00"
    );
    client.resume_schedule("nightly").await.unwrap();
    client.resume_schedule("nightly").await.unwrap();
    let resumed = client.schedule("nightly").await.unwrap();
    assert!(!resumed.paused);
    assert_eq!(resumed.next_tick, changed.next_tick);

    client
        .declare_schedule(&Schedule::new("a-first", "0 0 * * * *", "w"))
        .await
        .unwrap();
    let names: Vec<String> = client
        .schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a-first", "nightly"]);
    client.delete_schedule("nightly").await.unwrap();
    for result in [
        client.schedule("nightly").await.map(|_| ()),
        client.delete_schedule("nightly").await,
        client.pause_schedule("nightly").await,
        client.resume_schedule("nightly").await,
        client.trigger_schedule("nightly").await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(DurableError::ScheduleNotFound(ref n)) if n == "nightly"),
            "{result:?}"
        );
    }
    assert_eq!(schedule_rows(&t).await, 1);
}

async fn bad_declarations_are_refused_and_write_nothing(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let invalid = [
        Schedule::new("s", "every day at nine", "w"),
        Schedule::new("s", "* * * * *", "w"),
        Schedule::new("s", "99 * * * * *", "w"),
        Schedule::new("s", "'; DROP TABLE durable_schedule; --", "w"),
        Schedule::new("s", "* * * * * *", "w").time_zone("Mars/Olympus_Mons"),
        Schedule::new("s", "* * * * * *", "w").time_zone("UTC'; --"),
        Schedule::new("s", "* * * * * *", "w").input(&f64::NAN),
        Schedule::new("s\0nul", "* * * * * *", "w"),
        Schedule::new("", "* * * * * *", "w"),
        Schedule::new("s", "* * * * * *", "w\0"),
        Schedule::new("s", "1,".repeat(500), "w"),
    ];
    for schedule in &invalid {
        let err = client.declare_schedule(schedule).await.unwrap_err();
        assert!(
            matches!(err, DurableError::InvalidInput(_)),
            "{schedule:?}: {err}"
        );
    }
    let err = client
        .declare_schedule(&Schedule::new("s", "* * * * * *", "w").queue("nowhere"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DurableError::UnknownQueue(ref q) if q == "nowhere"),
        "{err}"
    );
    let mut registry = Registry::new();
    registry.register("known", |_ctx: Ctx, _tick: Tick| async move { Ok(()) });
    let with_registry = Client::with_registry(&t.db, std::sync::Arc::new(registry));
    let err = with_registry
        .declare_schedule(&Schedule::new("s", "* * * * * *", "unknown"))
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::UnknownWorkflow(_)), "{err}");
    assert_eq!(schedule_rows(&t).await, 0);

    // A hostile name that is valid is stored as it is, not as SQL.
    let hostile = "q'); DELETE FROM durable_workflow; --";
    let info = client
        .declare_schedule(&Schedule::new(hostile, "0 0 0 1 1 * 2099", hostile))
        .await
        .unwrap();
    assert_eq!(info.name, hostile);
    assert_eq!(client.schedule(hostile).await.unwrap().workflow, hostile);
}

/// The workflow of every schedule here: records its tick.
fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register("tick", |ctx: Ctx, tick: Tick<String>| async move {
        let at = tick.at.timestamp_millis();
        ctx.step("record", || async move {
            Ok((tick.schedule, at, tick.manual, tick.input))
        })
        .await
    });
    registry
}

async fn two_workers_fire_every_tick_once(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    client
        .declare_schedule(
            &Schedule::new("every-second", "* * * * * *", "tick")
                .input(&"payload")
                .catch_up(CatchUp::All),
        )
        .await
        .unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            run_worker(Worker::new(&t.db, registry()).poll_interval(Duration::from_millis(50)))
        })
        .collect();
    // Until four ticks fired (a few seconds of real time).
    for _ in 0..600 {
        if client.schedule("every-second").await.unwrap().fired >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.pause_schedule("every-second").await.unwrap();
    let info = client.schedule("every-second").await.unwrap();
    assert!(info.fired >= 4, "{info:?}");
    let fired = keys(&client, "schedule:every-second@").await;
    for key in &fired {
        common::until_key(&client, key, |w| w.status == Status::Completed).await;
    }
    for worker in workers {
        worker.stop().await;
    }
    // One workflow per tick, for consecutive seconds, each told its tick.
    assert_eq!(fired.len() as u64, info.fired, "{fired:?}");
    let mut previous: Option<i64> = None;
    for key in &fired {
        let w = client.workflow_by_key(key).await.unwrap();
        let (schedule, at, manual, input): (String, i64, bool, String) =
            serde_json::from_value(w.output.clone().unwrap()).unwrap();
        assert_eq!(
            (schedule.as_str(), manual, input.as_str()),
            ("every-second", false, "payload")
        );
        let expected_key = format!(
            "schedule:every-second@{}",
            chrono::DateTime::from_timestamp_millis(at)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
        );
        assert_eq!(key, &expected_key);
        assert_eq!(at % 1000, 0);
        if let Some(p) = previous {
            assert_eq!(at - p, 1000, "a tick was skipped or repeated: {fired:?}");
        }
        previous = Some(at);
    }
    assert_eq!(
        info.last_tick.unwrap().timestamp_millis(),
        previous.unwrap()
    );
}

/// A cursor left five hours behind (every worker was down) on an hourly
/// schedule whose ticks are half an hour away from now: five missed
/// ticks, none on time, whatever the time the test runs.
async fn missed_ticks_follow_the_catch_up_policy(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let half_hour = chrono::Utc::now() + chrono::Duration::minutes(30);
    let cron = format!(
        "{} {} * * * *",
        half_hour.format("%S"),
        half_hour.format("%M")
    );
    let cases = [
        ("skip", CatchUp::Skip, 0),
        ("once", CatchUp::Once, 1),
        ("bounded", CatchUp::Bounded(3), 3),
        ("all", CatchUp::All, 5),
        ("bounded-big", CatchUp::Bounded(50), 5),
    ];
    for (name, policy, _) in cases {
        client
            .declare_schedule(
                &Schedule::new(name, &cron, "tick")
                    .input(&"x")
                    .catch_up(policy),
            )
            .await
            .unwrap();
    }
    let behind = (half_hour - chrono::Duration::hours(5)).timestamp_millis() / 1000 * 1000;
    let moved = common::execute(
        &t.db,
        "UPDATE durable_schedule SET next_tick_ms = $1",
        vec![behind.into()],
    )
    .await;
    assert_eq!(moved, cases.len() as u64);
    let started = client.fire_due_schedules().await.unwrap();
    assert_eq!(started, cases.iter().map(|c| c.2).sum::<u64>());
    for (name, _, expected) in cases {
        let fired = keys(&client, &format!("schedule:{name}@")).await;
        assert_eq!(fired.len() as u64, expected, "{name}: {fired:?}");
        // The latest ones: half an hour, 1.5 h, ... before now.
        let mut want: Vec<String> = (0..expected as i64)
            .map(|h| {
                let at = half_hour - chrono::Duration::hours(h + 1);
                format!("schedule:{name}@{}", at.format("%Y-%m-%dT%H:%M:%SZ"))
            })
            .collect();
        want.reverse();
        assert_eq!(fired, want, "{name}");
        let info = client.schedule(name).await.unwrap();
        assert_eq!(
            info.next_tick.unwrap().timestamp(),
            half_hour.timestamp(),
            "{name}: the cursor goes to the next tick to come"
        );
        assert_eq!(info.fired, expected, "{name}");
    }
    // Nothing is due any more: firing again starts nothing.
    assert_eq!(client.fire_due_schedules().await.unwrap(), 0);
}

async fn a_manual_trigger_starts_the_workflow_now(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    client.declare_queue(&Queue::new("reports")).await.unwrap();
    client
        .declare_schedule(
            &Schedule::new("yearly", "0 0 0 1 1 *", "tick")
                .input(&"by hand")
                .queue("reports"),
        )
        .await
        .unwrap();
    client.pause_schedule("yearly").await.unwrap();
    let handle = client.trigger_schedule("yearly").await.unwrap();
    assert!(
        handle.key().starts_with("schedule:yearly@manual:"),
        "{}",
        handle.key()
    );
    let worker = run_worker(Worker::new(&t.db, registry()).queues(["reports"]));
    let (schedule, at, manual, input): (String, i64, bool, String) =
        handle.result(Duration::from_secs(30)).await.unwrap();
    worker.stop().await;
    assert_eq!(
        (schedule.as_str(), manual, input.as_str()),
        ("yearly", true, "by hand")
    );
    assert!((at - chrono::Utc::now().timestamp_millis()).abs() < 60_000);
    let info = client.schedule("yearly").await.unwrap();
    assert_eq!(info.fired, 0, "a manual trigger is not a tick");
    assert!(info.paused);
}

both_backends!(
    declare_read_pause_resume_delete,
    bad_declarations_are_refused_and_write_nothing,
    two_workers_fire_every_tick_once,
    missed_ticks_follow_the_catch_up_policy,
    a_manual_trigger_starts_the_workflow_now,
);
