//! PostgreSQL: an executor's liveness is bound to a session of its own. When
//! that session ends (process killed, host gone, connection lost) the
//! server drops its advisory lock and other executors take over at once,
//! long before the lease expires; the old owner is fenced out.

mod common;

use common::{Backend, TestDb, children};
use durable::sea_orm::{ConnectionTrait, Statement};
use durable::{Ctx, DurableError, Executor};
use std::time::Duration;

/// Terminate the backend that holds `executor`'s advisory lock, as a dead
/// process or a lost connection would.
async fn kill_session(t: &TestDb, executor: &Executor) -> i64 {
    let db = &t.db;
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT l.pid FROM pg_locks l JOIN durable_executor e ON l.objid::BIGINT = e.lock_key \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND e.id = $1",
            [executor.id().into()],
        ))
        .await
        .unwrap()
        .expect("the executor holds its advisory lock");
    let pid: i32 = row.try_get_by_index(0).unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "SELECT pg_terminate_backend($1)",
        [pid.into()],
    ))
    .await
    .unwrap();
    i64::from(pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_session_lets_another_executor_take_over_at_once() {
    let t = TestDb::new(Backend::Postgres).await;
    let first = Executor::with_lease(&t.db, Duration::from_secs(300));
    let ctx = first.start("job", "job-1", None).await.unwrap();
    let _: u32 = ctx.step("one", || async { Ok(1) }).await.unwrap();

    // While the first executor's session lives, nobody else may run the job.
    let second = Executor::new(&t.db);
    let err = second.start("job", "job-1", None).await.unwrap_err();
    assert!(matches!(err, DurableError::StepLocked(_)), "{err:?}");

    kill_session(&t, &first).await;
    // The server ends the session asynchronously; the takeover must follow
    // within moments, not after the 300 s lease.
    let mut taken = None;
    for _ in 0..50 {
        match second.start("job", "job-1", None).await {
            Ok(ctx) => {
                taken = Some(ctx);
                break;
            }
            Err(DurableError::StepLocked(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let taken = taken.expect("second executor took over after the session ended");
    let one: u32 = taken.step("one", || async { Ok(100) }).await.unwrap();
    let two: u32 = taken.step("two", || async { Ok(2) }).await.unwrap();
    assert_eq!((one, two), (1, 2));

    // The first owner is fenced out: its late step writes nothing.
    let late = ctx.step("three", || async { Ok(3u32) }).await;
    assert!(
        matches!(late, Err(DurableError::LeaseLost { .. })),
        "{late:?}"
    );
    let rows = children(&t.db, taken.task_id()).await;
    let keys: Vec<_> = rows.iter().map(|r| r.task_key.as_str()).collect();
    assert_eq!(rows.len(), 2, "{keys:?}");
    assert!(!keys.contains(&"three#0"));
    taken.complete(&2).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_releases_workflows_of_a_lost_session() {
    let t = TestDb::new(Backend::Postgres).await;
    let first = Executor::with_lease(&t.db, Duration::from_secs(300));
    let ctx = first.start("job", "job-2", None).await.unwrap();
    let id = ctx.task_id();
    let other = Executor::new(&t.db);
    assert!(
        other.recover().await.unwrap().is_empty(),
        "a live owner is not released"
    );
    kill_session(&t, &first).await;
    let mut released = Vec::new();
    for _ in 0..50 {
        released = other.recover().await.unwrap();
        if !released.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(released, vec![id]);
    let _ = Ctx::start_with_key(&t.db, "job", "job-2", None)
        .await
        .unwrap();
}

/// After a server restart every session lock is gone at once, the live
/// owners' too: an owner whose last beat came before the server started
/// is judged by its lease alone (it has not had a chance to take its lock
/// again), so nobody takes its work over; once it has beaten since the
/// start, a missing lock means it is dead. (The restart is stood in for by
/// ending the owner's session and moving its last beat before the
/// server's start; the fault suite restarts a real server.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_lost_to_a_server_restart_does_not_read_as_death() {
    let t = TestDb::new(Backend::Postgres).await;
    let first = Executor::with_lease(&t.db, Duration::from_secs(300));
    let ctx = first.start("job", "job-3", None).await.unwrap();
    let _: u32 = ctx.step("one", || async { Ok(1) }).await.unwrap();
    let set_beat = |sql: &'static str| {
        let db = t.db.clone();
        let id = first.id();
        async move {
            let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, [id.into()]);
            assert_eq!(db.execute_raw(stmt).await.unwrap().rows_affected(), 1);
        }
    };
    set_beat("UPDATE durable_executor SET beat_ms = 0 WHERE id = $1").await;
    kill_session(&t, &first).await;
    let second = Executor::new(&t.db);
    // Long enough for the server to have ended the session.
    for _ in 0..20 {
        let err = second.start("job", "job-3", None).await.unwrap_err();
        assert!(matches!(err, DurableError::StepLocked(_)), "{err:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        second.recover().await.unwrap().is_empty(),
        "released a live owner"
    );

    // The owner has beaten since the start but holds no lock: it is dead.
    set_beat(
        "UPDATE durable_executor SET beat_ms = (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT \
         WHERE id = $1",
    )
    .await;
    let taken = second.start("job", "job-3", None).await.unwrap();
    let one: u32 = taken.step("one", || async { Ok(100) }).await.unwrap();
    assert_eq!(one, 1);
    taken.complete(&1).await.unwrap();
}

/// `durable::connect` asks the server to probe every connection, so a
/// client that vanished without closing its socket (a host lost, a network
/// black hole) has its session ended, and its locks released, by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_have_server_side_keepalives() {
    let t = TestDb::new(Backend::Postgres).await;
    let mut settings = Vec::new();
    for name in [
        "tcp_keepalives_idle",
        "tcp_keepalives_interval",
        "tcp_keepalives_count",
    ] {
        let stmt = Statement::from_sql_and_values(
            t.db.get_database_backend(),
            "SELECT current_setting($1)",
            [name.into()],
        );
        let row = t.db.query_one_raw(stmt).await.unwrap().unwrap();
        settings.push(row.try_get_by_index::<String>(0).unwrap());
    }
    assert_eq!(settings, ["10", "5", "3"]);
}
