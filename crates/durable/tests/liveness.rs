//! PostgreSQL: a lost connection is not a dead executor. An executor's
//! connections can be terminated (by an administrator, a proxy, a server
//! restart) while its process runs on; its work stays its own until its
//! lease expires by the database clock, so two live executors never run
//! one workflow. (An owner on this host whose process is gone is taken over
//! at once: `ownership.rs`; a real server restarted under load: the fault
//! suite, `crates/durable-faults`.)

mod common;

use common::{Backend, TestDb};
use durable::sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use durable::{DurableError, Executor};
use std::time::Duration;

/// A pool of its own, tagged so its backends can be found: `application_name`.
async fn tagged_pool(t: &TestDb, tag: &str) -> DatabaseConnection {
    let sep = if t.url.contains('?') { '&' } else { '?' };
    TestDb::connect(&format!("{}{sep}application_name={tag}", t.url)).await
}

/// Terminate every backend of the pool tagged `tag`, as an administrator,
/// a proxy or a network cut would. Returns how many there were.
async fn terminate_backends(t: &TestDb, tag: &str) -> i64 {
    let stmt = Statement::from_sql_and_values(
        t.db.get_database_backend(),
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        [tag.into()],
    );
    let row = t.db.query_one_raw(stmt).await.unwrap().unwrap();
    row.try_get_by_index(0).unwrap()
}

/// Every connection of a live executor is terminated: nobody takes its
/// workflow over (not `Ctx::start` elsewhere, not `recover`), and the
/// owner carries on, on new connections, under its first epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connections_of_a_live_executor_do_not_read_as_death() {
    let t = TestDb::new(Backend::Postgres).await;
    let tag = common::unique_name();
    let pool = tagged_pool(&t, &tag).await;
    let first = Executor::with_lease(&pool, Duration::from_secs(300));
    let ctx = first.start("job", "job-1", None).await.unwrap();
    let _: u32 = ctx.step("one", || async { Ok(1) }).await.unwrap();

    assert!(terminate_backends(&t, &tag).await >= 1);
    let second = Executor::new(&t.db);
    // Long enough for the server to have ended the sessions (it does so
    // asynchronously), and for a takeover on that signal to have happened.
    for _ in 0..20 {
        let err = second.start("job", "job-1", None).await.unwrap_err();
        assert!(matches!(err, DurableError::StepLocked(_)), "{err:?}");
        assert!(
            second.recover().await.unwrap().is_empty(),
            "released a live owner"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let two: u32 = ctx.step("two", || async { Ok(2) }).await.unwrap();
    assert_eq!(two, 2);
    ctx.complete(&2).await.unwrap();
    let r = common::root(&t.db, "job-1").await;
    assert_eq!(
        (r.status.as_str(), r.owner_id, r.lease_epoch),
        ("COMPLETED", Some(first.id()), 1)
    );
}

/// A takeover reads the owner's executor row as it is now, not as its
/// snapshot had it: while a renewal of an expired-looking lease is still
/// in flight (it holds the row's lock), the owner counts as alive; once it
/// is gone without renewing, the work is taken over. (Here the test holds
/// the lock, as a renewal that has not committed yet would.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_in_flight_keeps_its_owner_alive() {
    let t = TestDb::new(Backend::Postgres).await;
    // A lease of 300 s: its first beat is 100 s away, after the test.
    let first = Executor::with_lease(&t.db, Duration::from_secs(300));
    let ctx = first.start("job", "job-2", None).await.unwrap();
    let _: u32 = ctx.step("one", || async { Ok(1) }).await.unwrap();
    common::expire(&t.db, first.id()).await;
    let renewal = t.db.begin().await.unwrap();
    let stmt = Statement::from_sql_and_values(
        t.db.get_database_backend(),
        "SELECT id FROM durable_executor WHERE id = $1 FOR UPDATE",
        [first.id().into()],
    );
    assert!(renewal.query_one_raw(stmt).await.unwrap().is_some());

    let second = Executor::new(&t.db);
    let err = second.start("job", "job-2", None).await.unwrap_err();
    assert!(matches!(err, DurableError::StepLocked(_)), "{err:?}");
    assert!(
        second.recover().await.unwrap().is_empty(),
        "released the work of an owner whose renewal is in flight"
    );
    // The renewal does not happen: now the owner is dead.
    renewal.rollback().await.unwrap();
    let taken = second.start("job", "job-2", None).await.unwrap();
    let one: u32 = taken.step("one", || async { Ok(100) }).await.unwrap();
    assert_eq!(one, 1);
    taken.complete(&1).await.unwrap();
}

/// `durable::connect` asks the server to probe every connection, so a
/// client that vanished without closing its socket (a host lost, a network
/// black hole) has its session, and any lock or transaction it held, ended
/// by the server.
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
