//! PostgreSQL: a lost connection is not a dead executor. An executor's
//! connections can be terminated (by an administrator, a proxy, a server
//! restart) while its process runs on; its work stays its own until its
//! lease expires by the database clock, so two live executors never run
//! one workflow. (An owner on this host whose process is gone is taken over
//! at once: `ownership.rs`; a real server restarted under load: the fault
//! suite, `crates/durable-faults`.)

mod common;

use common::{Backend, TestDb};
use durable::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
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
