//! Ownership: leases, fencing and recovery (guarantees 2 and 3). A workflow
//! owned by a live executor is refused to others; a takeover fences the old
//! owner's writes; a dead owner's work is released and finished by another.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestDb, children, counted, expire, root, root_count};
use durable::sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    Statement,
};
use durable::{Ctx, DurableError, Executor, Uuid};
use durable_db::entity::{executor, task};
use serde_json::json;

/// When `id`'s lease runs out, as its executor row says.
async fn lease_of(db: &DatabaseConnection, id: Uuid) -> i64 {
    executor::Entity::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .expect("executor row")
        .lease_expires_ms
}

/// Asserts that `result` is `StepLocked`.
fn locked<T: std::fmt::Debug>(result: Result<T, DurableError>) {
    assert!(
        matches!(result, Err(DurableError::StepLocked(_))),
        "expected StepLocked, got {result:?}"
    );
}

/// Asserts that `result` is `LeaseLost`.
fn lease_lost<T: std::fmt::Debug>(result: Result<T, DurableError>) {
    assert!(
        matches!(result, Err(DurableError::LeaseLost { .. })),
        "expected LeaseLost, got {result:?}"
    );
}

/// A workflow owned by a live executor is refused (StepLocked) to a second executor and to `Ctx::start`.
async fn live_owner_locks_out_other_executors(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (a, b) = (Executor::new(&t.db), Executor::new(&t.db));
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = a.start("wf", "wf", None).await.unwrap();
    let one: u32 = ctx.step("one", counted(&calls, 1)).await.unwrap();
    locked(b.start("wf", "wf", None).await);
    locked(Ctx::start(&t.db, "wf", None).await);
    let r = root(&t.db, "wf").await;
    assert_eq!(
        (r.owner_id, r.lease_epoch, r.status.as_str()),
        (Some(a.id()), 1, "RUNNING")
    );
    ctx.complete(&one).await.unwrap();
    // Once finished, B may read it: a pure replay that runs nothing.
    let replay = b.start("wf", "wf", None).await.unwrap();
    let again: u32 = replay
        .step("one", || async { panic!("must not run") })
        .await
        .unwrap();
    assert_eq!((again, calls.load(Ordering::SeqCst)), (1, 1));
    assert_eq!(root(&t.db, "wf").await.owner_id, Some(a.id()));
}

/// Two `Ctx::start` handles of one workflow in one process coexist; each replays the other's steps.
async fn two_handles_in_one_process_share_steps(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let first = Ctx::start(&t.db, "shared", None).await.unwrap();
    assert_eq!(first.step("s1", counted(&calls, 1)).await.unwrap(), 1);
    let second = Ctx::start(&t.db, "shared", None).await.unwrap();
    assert_eq!(second.task_id(), first.task_id());
    assert_eq!(first.step("s2", counted(&calls, 2)).await.unwrap(), 2);
    // s1 came with second's history; s2 was recorded after it loaded.
    assert_eq!(second.step("s1", counted(&calls, 10)).await.unwrap(), 1);
    assert_eq!(second.step("s2", counted(&calls, 20)).await.unwrap(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    second.complete(&3).await.unwrap();
    first.complete(&3).await.unwrap();
    let r = root(&t.db, "shared").await;
    assert_eq!((r.lease_epoch, r.status.as_str()), (1, "COMPLETED"));
    assert_eq!(children(&t.db, r.id).await.len(), 2);
}

/// Two handles of one workflow in one process share its lease, so neither
/// may start a step on the strength of its own last checkpoint alone: the
/// other may have recorded the step since. Each step body runs once.
async fn two_handles_never_run_one_step_twice(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    // `first` writes `a`: its next step could start without a read...
    let first = Ctx::start(&t.db, "pair", None).await.unwrap();
    assert_eq!(first.step("a", counted(&calls, 1)).await.unwrap(), 1);
    // ...but `second` replays `a`, records `b`, and is gone...
    let second = Ctx::start(&t.db, "pair", None).await.unwrap();
    assert_eq!(second.step("a", counted(&calls, 10)).await.unwrap(), 1);
    assert_eq!(second.step("b", counted(&calls, 2)).await.unwrap(), 2);
    drop(second);
    // ...so `first`, whose history shows nothing at `b`, reads and replays it.
    assert_eq!(first.step("b", counted(&calls, 20)).await.unwrap(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "a step body ran twice");
    // The same with two pools of one process (an executor each, one owner).
    let other = TestDb::connect(&t.url).await;
    let third = Ctx::start(&other, "pair", None).await.unwrap();
    assert_eq!(third.task_id(), first.task_id());
    assert_eq!(third.step("a", counted(&calls, 30)).await.unwrap(), 1);
    assert_eq!(third.step("b", counted(&calls, 40)).await.unwrap(), 2);
    assert_eq!(third.step("c", counted(&calls, 3)).await.unwrap(), 3);
    assert_eq!(first.step("c", counted(&calls, 50)).await.unwrap(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "a step body ran twice");
}

/// After B takes over A's expired lease, A's stale handle writes nothing: steps and `complete` are LeaseLost.
async fn stale_owner_is_fenced_after_takeover(backend: Backend) {
    let t = TestDb::new(backend).await;
    // The default lease (30 s) keeps A's heartbeat from renewing the lease
    // between the expiry below and B's claim; A is "stalled" by the UPDATE.
    let (a, b) = (Executor::new(&t.db), Executor::new(&t.db));
    let calls = Arc::new(AtomicU32::new(0));
    let a_ctx = a.start("pay", "pay", None).await.unwrap();
    let reserved: String = a_ctx
        .step("reserve", || async { Ok("A1".to_string()) })
        .await
        .unwrap();
    expire(&t.db, a.id()).await;
    let b_ctx = b.start("pay", "pay", None).await.unwrap();
    let r = root(&t.db, "pay").await;
    assert_eq!((r.owner_id, r.lease_epoch), (Some(b.id()), 2));

    lease_lost(
        a_ctx
            .step("charge", counted(&calls, "A2".to_string()))
            .await,
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "a stale owner started a step"
    );
    let again: String = b_ctx
        .step("reserve", || async { panic!("must not run") })
        .await
        .unwrap();
    assert_eq!(again, reserved);
    let charged: String = b_ctx
        .step("charge", || async { Ok("B2".to_string()) })
        .await
        .unwrap();
    assert_eq!(charged, "B2");
    lease_lost(a_ctx.complete(&"A").await);
    lease_lost(a_ctx.fail("stale").await);
    assert_eq!(root(&t.db, "pay").await.status, "RUNNING");
    b_ctx.complete(&"B").await.unwrap();

    let r = root(&t.db, "pay").await;
    assert_eq!(
        (r.status.as_str(), r.output.as_deref(), r.owner_id),
        ("COMPLETED", Some("\"B\""), Some(b.id()))
    );
    let mut steps: Vec<_> = children(&t.db, r.id)
        .await
        .into_iter()
        .map(|s| (s.task_key, s.output))
        .collect();
    steps.sort();
    assert_eq!(
        steps,
        vec![
            ("charge#0".to_string(), Some("\"B2\"".to_string())),
            ("reserve#0".to_string(), Some("\"A1\"".to_string()))
        ]
    );
}

/// A takeover while A's step body runs rejects A's checkpoint (LeaseLost); only B's result is stored.
async fn takeover_during_a_step_rejects_its_commit(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (a, b) = (Executor::new(&t.db), Executor::new(&t.db));
    let runs = Arc::new(AtomicU32::new(0));
    let a_ctx = a.start("slow", "slow", None).await.unwrap();
    let b_slot = Mutex::new(None);
    let r1 = runs.clone();
    let result = a_ctx
        .step("work", || async {
            r1.fetch_add(1, Ordering::SeqCst);
            // A stalls past its lease in the middle of the step; B takes over.
            expire(&t.db, a.id()).await;
            *b_slot.lock().unwrap() = Some(b.start("slow", "slow", None).await.unwrap());
            Ok("A-result".to_string())
        })
        .await;
    lease_lost(result);
    let r = root(&t.db, "slow").await;
    assert!(
        children(&t.db, r.id).await.is_empty(),
        "A's checkpoint was written"
    );
    let b_ctx = b_slot.lock().unwrap().take().unwrap();
    let out: String = b_ctx
        .step("work", counted(&runs, "B-result".to_string()))
        .await
        .unwrap();
    b_ctx.complete(&out).await.unwrap();
    // The body ran twice (A stalled longer than its lease); one result was committed.
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let steps = children(&t.db, r.id).await;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].output.as_deref(), Some("\"B-result\""));
    let any_a = task::Entity::find()
        .filter(task::Column::Output.contains("A-result"))
        .count(&t.db)
        .await
        .unwrap();
    assert_eq!(any_a, 0);
}

/// A dropped executor's heartbeat stops; after its lease `recover` releases its workflow, which another run finishes.
async fn dead_owner_is_recovered_after_its_lease(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let dead = Executor::with_lease(&t.db, Duration::from_secs(1));
    let ctx = dead
        .start("orphan", "orphan", Some(json!({"n": 1})))
        .await
        .unwrap();
    ctx.step("one", counted(&calls, 1)).await.unwrap();
    let id = ctx.task_id();
    drop((ctx, dead));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rescuer = Executor::new(&t.db);
    let mut released = rescuer.recover().await.unwrap();
    for _ in 0..40 {
        if !released.is_empty() {
            break;
        }
        // A slow machine: the lease may not have run out yet.
        tokio::time::sleep(Duration::from_millis(250)).await;
        released = rescuer.recover().await.unwrap();
    }
    assert_eq!(released, vec![id]);
    let r = root(&t.db, "orphan").await;
    assert_eq!(
        (r.owner_id, r.status.as_str(), r.lease_epoch),
        (None, "PENDING", 1)
    );
    assert!(
        rescuer.recover().await.unwrap().is_empty(),
        "released twice"
    );

    let ctx = Ctx::start(&t.db, "orphan", None).await.unwrap();
    let one: u32 = ctx
        .step("one", || async { panic!("must not run") })
        .await
        .unwrap();
    let two: u32 = ctx.step("two", || async { Ok(2) }).await.unwrap();
    ctx.complete(&(one + two)).await.unwrap();
    let r = root(&t.db, "orphan").await;
    assert_eq!(
        (r.status.as_str(), r.output.as_deref(), r.lease_epoch),
        ("COMPLETED", Some("3"), 2)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Heartbeats renew a live owner's short lease: after 2.5 leases others still get StepLocked and recover finds nothing.
async fn heartbeat_keeps_a_live_owner(backend: Backend) {
    let t = TestDb::new(backend).await;
    let owner = Executor::with_lease(&t.db, Duration::from_secs(1));
    let ctx = owner.start("alive", "alive", None).await.unwrap();
    ctx.step("one", || async { Ok(1) }).await.unwrap();
    let first_lease = lease_of(&t.db, owner.id()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        lease_of(&t.db, owner.id()).await > first_lease,
        "the lease was not renewed"
    );
    let other = Executor::new(&t.db);
    locked(other.start("alive", "alive", None).await);
    assert!(other.recover().await.unwrap().is_empty());
    // The owner goes on undisturbed, under its first epoch.
    ctx.step("two", || async { Ok(2) }).await.unwrap();
    ctx.complete(&"done").await.unwrap();
    let r = root(&t.db, "alive").await;
    assert_eq!(
        (r.status.as_str(), r.owner_id, r.lease_epoch),
        ("COMPLETED", Some(owner.id()), 1)
    );
}

/// Insert an executor row for a process of this host that has exited, and a RUNNING workflow it owns.
async fn plant_dead_process_workflow(db: &DatabaseConnection, key: &str) -> (Uuid, Uuid) {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn `true`");
    let pid = i64::from(child.id());
    child.wait().unwrap();
    // The host as this version records it (hostname, boot id, pid
    // namespace): read off the row of an executor of this process.
    let probe = Executor::new(db);
    let ctx = probe
        .start("probe", &format!("probe-{key}"), None)
        .await
        .unwrap();
    ctx.complete(&0).await.unwrap();
    let stmt = Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT hostname FROM durable_executor WHERE id = $1",
        [common::id_value(db, probe.id())],
    );
    let row = db
        .query_one_raw(stmt)
        .await
        .unwrap()
        .expect("the probe's row");
    let hostname: String = row.try_get_by_index(0).unwrap();
    let owner = Uuid::new_v4();
    let planted = common::execute(
        db,
        "INSERT INTO durable_executor (id, hostname, pid, pid_started, started_ms, lease_expires_ms) \
         VALUES ($1, $2, $3, 12345, 0, $4)",
        vec![
            common::id_value(db, owner),
            hostname.into(),
            pid.into(),
            (i64::MAX / 2).into(),
        ],
    )
    .await;
    assert_eq!(planted, 1);
    let id = Uuid::new_v4();
    let planted = common::execute(
        db,
        "INSERT INTO durable_workflow (id, root_id, workflow_key, name, status, owner_id, lease_epoch, created_ms) \
         VALUES ($1, $1, $2, $2, 'RUNNING', $3, 1, 0)",
        vec![
            common::id_value(db, id),
            key.into(),
            common::id_value(db, owner),
        ],
    )
    .await;
    assert_eq!(planted, 1);
    (owner, id)
}

/// A workflow whose owner process on this host is gone is taken over at once, by `Ctx::start` and by `recover`.
async fn dead_process_on_this_host_is_taken_over_at_once(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (x, wf_x) = plant_dead_process_workflow(&t.db, "wf-x").await;
    let (y, wf_y) = plant_dead_process_workflow(&t.db, "wf-y").await;

    let ctx = Ctx::start(&t.db, "wf-x", None).await.unwrap();
    assert_eq!(ctx.task_id(), wf_x);
    let r = root(&t.db, "wf-x").await;
    assert_eq!((r.lease_epoch, r.status.as_str()), (2, "RUNNING"));
    assert!(r.owner_id.is_some_and(|o| o != x));
    ctx.step("s", || async { Ok(1) }).await.unwrap();
    ctx.complete(&1).await.unwrap();
    assert_eq!(root(&t.db, "wf-x").await.status, "COMPLETED");

    assert_eq!(Executor::new(&t.db).recover().await.unwrap(), vec![wf_y]);
    let r = root(&t.db, "wf-y").await;
    assert_eq!((r.owner_id, r.status.as_str()), (None, "PENDING"));
    // Both dead executors were marked dead (lease 0) when noticed.
    assert_eq!((lease_of(&t.db, x).await, lease_of(&t.db, y).await), (0, 0));
    let ctx = Ctx::start(&t.db, "wf-y", None).await.unwrap();
    ctx.complete(&2).await.unwrap();
    let r = root(&t.db, "wf-y").await;
    assert_eq!((r.lease_epoch, r.status.as_str()), (2, "COMPLETED"));
}

/// Concurrent starts of one name from 8 pools create exactly one root; every success sees the same id.
async fn concurrent_starts_from_eight_pools(backend: Backend) {
    let t = TestDb::new(backend).await;
    let mut pools = Vec::new();
    for _ in 0..8 {
        pools.push(TestDb::connect(&t.url).await);
    }
    let starts = pools
        .iter()
        .map(|db| Ctx::start(db, "race", Some(json!({"from": "pool"}))));
    let results = futures::future::join_all(starts).await;
    let mut ids = std::collections::HashSet::new();
    for result in &results {
        match result {
            Ok(ctx) => {
                ids.insert(ctx.task_id());
            }
            Err(DurableError::StepLocked(_)) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(root_count(&t.db).await, 1);
    let r = root(&t.db, "race").await;
    assert!(ids.contains(&r.id));
    // All pools share the process's executor id: no takeover happened.
    assert_eq!(r.lease_epoch, 1);
    let ctx = results.into_iter().find_map(Result::ok).unwrap();
    ctx.step("s", || async { Ok(1) }).await.unwrap();
    ctx.complete(&1).await.unwrap();
    assert_eq!(root(&t.db, "race").await.status, "COMPLETED");
}

/// Two executors racing for one workflow: one wins, the other gets StepLocked; the step's side effect happens once.
async fn racing_executors_run_a_step_once(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (a, b) = (Executor::new(&t.db), Executor::new(&t.db));
    let effects = Arc::new(AtomicU32::new(0));
    let (ra, rb) = futures::future::join(
        a.start("charge", "order-7", None),
        b.start("charge", "order-7", None),
    )
    .await;
    let (winner, loser, ctx) = match (ra, rb) {
        (Ok(ctx), Err(DurableError::StepLocked(_))) => (&a, &b, ctx),
        (Err(DurableError::StepLocked(_)), Ok(ctx)) => (&b, &a, ctx),
        other => panic!("expected exactly one winner, got {other:?}"),
    };
    let (charged, refused) = futures::future::join(
        ctx.step("charge", counted(&effects, winner.id())),
        loser.start("charge", "order-7", None),
    )
    .await;
    assert_eq!(charged.unwrap(), winner.id());
    locked(refused);
    ctx.complete(&"charged").await.unwrap();
    // The loser can now look, and replays the winner's result.
    let late = loser.start("charge", "order-7", None).await.unwrap();
    assert_eq!(
        late.step("charge", counted(&effects, loser.id()))
            .await
            .unwrap(),
        winner.id()
    );
    assert_eq!(effects.load(Ordering::SeqCst), 1);
    let r = root(&t.db, "order-7").await;
    assert_eq!(
        (r.owner_id, r.status.as_str(), r.lease_epoch),
        (Some(winner.id()), "COMPLETED", 1)
    );
    assert_eq!(children(&t.db, r.id).await.len(), 1);
}

both_backends!(
    live_owner_locks_out_other_executors,
    two_handles_in_one_process_share_steps,
    two_handles_never_run_one_step_twice,
    stale_owner_is_fenced_after_takeover,
    takeover_during_a_step_rejects_its_commit,
    dead_owner_is_recovered_after_its_lease,
    heartbeat_keeps_a_live_owner,
    dead_process_on_this_host_is_taken_over_at_once,
    concurrent_starts_from_eight_pools,
    racing_executors_run_a_step_once,
);
