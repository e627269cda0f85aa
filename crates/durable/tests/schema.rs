//! Schema set-up: `durable::init` is idempotent, safe when many processes
//! call it at once, and refuses a schema newer than the build.

mod common;

use common::{Backend, TestDb, empty_database, unique_name};
use durable::sea_orm::{ConnectionTrait, Statement};
use durable::{Ctx, DurableError};

/// Eight pools (as eight processes would) initialise one empty database at
/// the same moment: all succeed, the schema exists once, and it works.
async fn concurrent_init_is_safe(backend: Backend) {
    let name = unique_name();
    let file = std::env::temp_dir().join(format!("durable-{name}.db"));
    let url = empty_database(backend, &name, &file).await;
    let mut pools = Vec::new();
    for _ in 0..8 {
        pools.push(TestDb::connect(&url).await);
    }
    let results = futures::future::join_all(pools.iter().map(durable::init)).await;
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    let db = &pools[0];
    let versions = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM durable_schema_version",
        ))
        .await
        .unwrap();
    assert_eq!(
        versions.len() as i64,
        durable_db::SCHEMA_VERSION,
        "one row per version applied"
    );
    // Again, later: nothing to do, nothing breaks.
    durable::init(db).await.unwrap();
    let ctx = Ctx::start(db, "after-init", None).await.unwrap();
    let v: u32 = ctx.step("s", || async { Ok(1) }).await.unwrap();
    assert_eq!(v, 1);
}

/// A database nobody initialised: the first call says what to do (call
/// `durable::init`), as a typed error, and writes nothing.
async fn missing_schema_says_to_init(backend: Backend) {
    let name = unique_name();
    let file = std::env::temp_dir().join(format!("durable-{name}.db"));
    let url = empty_database(backend, &name, &file).await;
    let db = TestDb::connect(&url).await;
    let err = match Ctx::start(&db, "too-early", None).await {
        Ok(_) => panic!("started without tables"),
        Err(err) => err,
    };
    assert!(
        matches!(&err, DurableError::SchemaMissing { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("call durable::init(&db)"), "{err}");
    let listed = durable::Client::new(&db)
        .list(&durable::WorkflowQuery::new())
        .await
        .unwrap_err();
    assert!(
        matches!(listed, DurableError::SchemaMissing { .. }),
        "{listed:?}"
    );
    // After init, the same connection works.
    durable::init(&db).await.unwrap();
    Ctx::start(&db, "in-time", None)
        .await
        .unwrap()
        .complete(&1)
        .await
        .unwrap();
}

/// A database migrated by a newer build is refused with a typed error, and
/// left as it is.
async fn newer_schema_is_refused(backend: Backend) {
    let t = TestDb::new(backend).await;
    t.db.execute_unprepared("INSERT INTO durable_schema_version (version) VALUES (999)")
        .await
        .unwrap();
    let err = durable::init(&t.db).await.unwrap_err();
    match &err {
        DurableError::Db(db) => assert!(db.to_string().contains("999"), "{db}"),
        other => panic!("expected a database error, got {other:?}"),
    }
    // Nothing was dropped: the tables still work.
    let ctx = Ctx::start(&t.db, "still-there", None).await.unwrap();
    ctx.complete(&1).await.unwrap();
}

/// Ids are readable where they are stored: a workflow is found by its id
/// written as text (on SQLite they are text; on PostgreSQL `UUID`, which
/// casts from the same text), and its steps by the workflow's id.
async fn ids_are_readable_as_text(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "readable", None).await.unwrap();
    let _: u32 = ctx.step("s", || async { Ok(1) }).await.unwrap();
    let id = ctx.task_id().hyphenated().to_string();
    // Bound as text, as `WHERE id = '...'` typed in a shell would be.
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT w.workflow_key, s.step_key FROM durable_workflow w \
             JOIN durable_step s ON s.workflow_id = w.id WHERE w.id = $1"
        }
        Backend::Postgres => {
            "SELECT w.workflow_key, s.step_key FROM durable_workflow w \
             JOIN durable_step s ON s.workflow_id = w.id WHERE w.id = CAST($1 AS TEXT)::UUID"
        }
    };
    let stmt = Statement::from_sql_and_values(t.db.get_database_backend(), sql, [id.into()]);
    let row =
        t.db.query_one_raw(stmt)
            .await
            .unwrap()
            .expect("found by its id as text");
    let key: String = row.try_get("", "workflow_key").unwrap();
    let step: String = row.try_get("", "step_key").unwrap();
    assert_eq!((key.as_str(), step.as_str()), ("readable", "s#0"));
}

both_backends!(
    concurrent_init_is_safe,
    missing_schema_says_to_init,
    newer_schema_is_refused,
    ids_are_readable_as_text
);

/// A pool whose `search_path` is set after connect (SeaORM's
/// `set_schema_search_path`, a pool hook, not a URL option) has the engine's
/// own connections (checkpoints, heartbeats) in that schema too: the step
/// commits and the executor row lands there, nowhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_connections_keep_a_search_path_set_after_connect() {
    let base = common::postgres_url();
    let name = unique_name();
    let _ = durable::scratch::create_schema(&base, &name).await.unwrap();
    let mut options = durable::sea_orm::ConnectOptions::new(base.clone());
    options.set_schema_search_path(name.clone());
    let db = durable::sea_orm::Database::connect(options).await.unwrap();
    durable::init(&db).await.unwrap();
    let executor = durable::Executor::new(&db);
    let ctx = executor
        .start("in-schema", "in-schema", None)
        .await
        .unwrap();
    let v: u32 = ctx.step("s", || async { Ok(7) }).await.unwrap();
    ctx.complete(&v).await.unwrap();
    let in_schema = |table: &str| {
        Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM information_schema.tables \
             WHERE table_schema = $1 AND table_name = $2",
            [name.clone().into(), table.to_string().into()],
        )
    };
    let tables = db
        .query_one_raw(in_schema("durable_step"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tables.try_get::<i64>("", "n").unwrap(), 1);
    let count = |sql: &str| Statement::from_string(db.get_database_backend(), sql);
    let steps = db
        .query_one_raw(count("SELECT count(*) AS n FROM durable_step"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(steps.try_get::<i64>("", "n").unwrap(), 1);
    let executors = db
        .query_one_raw(count("SELECT count(*) AS n FROM durable_executor"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(executors.try_get::<i64>("", "n").unwrap(), 1);
    durable::scratch::drop_schema(&base, &name).await.unwrap();
}
