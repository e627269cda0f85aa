//! Scenarios: schedules declared, read, paused and deleted; due schedules
//! fired as the planner decides, each tick once; debounce bursts gathered
//! into one workflow until it is claimed.

#![allow(clippy::wildcard_imports)]

use super::*;
use crate::store::{Firing, NewDebounce, ScheduleRow};

fn schedule(name: &str, next_tick_ms: Option<i64>) -> ScheduleRow {
    ScheduleRow {
        name: name.into(),
        workflow: "wf".into(),
        cron: "* * * * * *".into(),
        time_zone: "UTC".into(),
        input: "null".into(),
        queue: "q".into(),
        catch_up: "ALL".into(),
        catch_up_limit: 0,
        paused: false,
        next_tick_ms,
        last_tick_ms: None,
        fired: 0,
    }
}

/// A row as `name workflow cron state next last fired`.
fn sched(row: &ScheduleRow) -> String {
    let at = |ms: Option<i64>| ms.map_or_else(|| "-".to_string(), |ms| ms.to_string());
    format!(
        "{} {} {} {} {}{} next={} last={} fired={}",
        row.name,
        row.workflow,
        row.cron,
        if row.paused { "PAUSED" } else { "ACTIVE" },
        row.catch_up,
        if row.catch_up == "BOUNDED" {
            format!(":{}", row.catch_up_limit)
        } else {
            String::new()
        },
        at(row.next_tick_ms),
        at(row.last_tick_ms),
        row.fired
    )
}

pub(super) async fn schedules_declare_pause_delete(store: Arc<dyn Store>) {
    let s = store.as_ref();
    assert_eq!(s.schedule("a").await.unwrap(), None);
    let a = s.put_schedule(&schedule("a", Some(5_000))).await.unwrap();
    assert_eq!(
        sched(&a),
        "a wf * * * * * * ACTIVE ALL next=5000 last=- fired=0"
    );
    // The same definition again (another process starting) keeps the cursor.
    let again = s.put_schedule(&schedule("a", Some(9_000))).await.unwrap();
    assert_eq!(again.next_tick_ms, Some(5_000));
    assert!(s.set_schedule_paused("a", true, None).await.unwrap());
    // A changed definition replaces the cursor and keeps the paused state.
    let changed = ScheduleRow {
        cron: "0 * * * * *".into(),
        catch_up: "BOUNDED".into(),
        catch_up_limit: 3,
        ..schedule("a", Some(60_000))
    };
    let a = s.put_schedule(&changed).await.unwrap();
    assert_eq!(
        sched(&a),
        "a wf 0 * * * * * PAUSED BOUNDED:3 next=60000 last=- fired=0"
    );
    s.put_schedule(&schedule("b", None)).await.unwrap();
    let names: Vec<String> = s
        .schedules()
        .await
        .unwrap()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(
        s.set_schedule_paused("a", false, Some(120_000))
            .await
            .unwrap()
    );
    let a = s.schedule("a").await.unwrap().unwrap();
    assert_eq!((a.paused, a.next_tick_ms), (false, Some(120_000)));
    assert!(!s.set_schedule_paused("nope", true, None).await.unwrap());
    assert!(s.delete_schedule("a").await.unwrap());
    assert!(!s.delete_schedule("a").await.unwrap());
    assert_eq!(s.schedule("a").await.unwrap(), None);
}

pub(super) async fn due_schedules_fire_each_tick_once(store: Arc<dyn Store>) {
    let s = store.as_ref();
    declare(s, "q", QueueLimits::default()).await;
    let now = s.clock_ms().await.unwrap();
    let far = now + 3_600_000;
    s.put_schedule(&schedule("due", Some(now - 2_000)))
        .await
        .unwrap();
    s.put_schedule(&schedule("later", Some(far))).await.unwrap();
    s.put_schedule(&schedule("ended", None)).await.unwrap();
    s.put_schedule(&schedule("paused", Some(now - 2_000)))
        .await
        .unwrap();
    assert!(s.set_schedule_paused("paused", true, None).await.unwrap());
    // Two ticks, the second one's key taken already: it is skipped.
    enqueue(s, &work("tick-2", "q")).await;
    let planned = std::sync::Mutex::new(Vec::new());
    let planner = |row: &ScheduleRow, clock: i64| {
        planned
            .lock()
            .unwrap()
            .push((row.name.clone(), row.next_tick_ms, clock >= now));
        Firing {
            ticks: vec![
                ("tick-1".into(), r#"{"n":1}"#.into(), now - 2_000),
                ("tick-2".into(), r#"{"n":2}"#.into(), now - 1_000),
            ],
            next_tick_ms: Some(far),
        }
    };
    let (queues, fired) = s.fire_schedules(&planner, 16).await.unwrap();
    assert_eq!((queues, fired), (vec!["q".to_string()], 1));
    assert_eq!(
        *planned.lock().unwrap(),
        [("due".to_string(), Some(now - 2_000), true)]
    );
    let due = s.schedule("due").await.unwrap().unwrap();
    assert_eq!(
        (due.next_tick_ms, due.last_tick_ms, due.fired),
        (Some(far), Some(now - 1_000), 2),
        "every planned tick counts, enqueued now or before"
    );
    let query = crate::WorkflowQuery::new()
        .key_prefix("tick-")
        .sort(crate::SortBy::Created, crate::Direction::Ascending);
    let mut ticks = Vec::new();
    for listed in s.list(&query, 10).await.unwrap() {
        ticks.push(wf(&s.workflow(listed.id).await.unwrap().unwrap()));
    }
    ticks.sort();
    assert_eq!(
        ticks,
        [
            r#"#1 tick-2 wf PENDING in={} queue=q"#,
            r#"#2 tick-1 wf PENDING in={"n":1} queue=q"#,
        ]
    );
    // Nothing is due any more: the planner is not asked again.
    assert_eq!(s.fire_schedules(&planner, 16).await.unwrap(), (vec![], 0));
    assert_eq!(planned.lock().unwrap().len(), 1);
}

pub(super) async fn debounce_gathers_a_burst_until_claimed(store: Arc<dyn Store>) {
    let s = store.as_ref();
    declare(s, "q", QueueLimits::default()).await;
    let call = |input: &str| NewDebounce {
        key: "burst",
        period_ms: 60_000,
        max_wait_ms: 600_000,
        work: NewEnqueued {
            input: input.into(),
            ..work("", "q")
        },
    };
    let (first, new) = s.debounce(&call(r#""v1""#)).await.unwrap();
    assert!(new);
    let (again, new) = s.debounce(&call(r#""v2""#)).await.unwrap();
    assert_eq!((again, new), (first, false));
    let row = s.workflow(first).await.unwrap().unwrap();
    assert_eq!(row.input.as_deref(), Some(r#""v2""#), "the latest input");
    assert!(row.available_ms.unwrap() >= row.created_ms + 60_000);
    // Once its workflow is claimed, the key's next call opens a new burst.
    let quick = |input: &str| NewDebounce {
        key: "quick",
        period_ms: 0,
        ..call(input)
    };
    let (q1, new) = s.debounce(&quick("1")).await.unwrap();
    assert!(new);
    let e1 = live(s, 1).await;
    let claimed = s.claim_from_queue("q", e1, 10, &filter(WF)).await.unwrap();
    assert_eq!(
        claimed.iter().map(|w| w.id).collect::<Vec<_>>(),
        [q1],
        "only the due one"
    );
    let (q2, new) = s.debounce(&quick("2")).await.unwrap();
    assert!(new && q2 != q1);
    assert_eq!(
        s.workflow(q1).await.unwrap().unwrap().input.as_deref(),
        Some("1"),
        "kept"
    );
    assert_eq!(
        s.workflow(q2).await.unwrap().unwrap().input.as_deref(),
        Some("2")
    );
}
