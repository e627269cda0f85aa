//! `retry_worker`: the process that `tests/retry_crash.rs` runs, retries
//! under and kills with `kill -9`.
//!
//! Enqueues (idempotently, by key) `order-0` .. `order-{ORDERS-1}` and runs
//! them on a two-slot `Worker`. Each `order` runs step `reserve`, the
//! transaction step `book` (one row into `retry_effect`, whose primary key
//! refuses a second), step `charge`, which fails permanently while the file
//! `BROKEN_FLAG` exists, and `SHIPMENTS` steps `ship`. Every step body first appends
//! `"{key} {step} {pid}"` to the append-only log `CRASH_LOG`. Exits 0 once
//! every order is finished while the flag exists (they fail), or once
//! every order is complete when it does not.
//!
//! Environment: `DATABASE_URL`, `CRASH_LOG`, `BROKEN_FLAG` (all required).

use std::path::Path;
use std::time::Duration;

use durable::sea_orm::{ConnectionTrait, Statement};
use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Status, Worker};
use durable_examples::append;

/// Orders enqueued, and `ship` steps after `charge` in each
/// (`tests/retry_crash.rs` checks against the same).
const ORDERS: u32 = 8;
const SHIPMENTS: u32 = 10;

const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS retry_effect (workflow_key TEXT PRIMARY KEY)";

#[tokio::main]
async fn main() -> Result<(), DurableError> {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is required");
    let log = std::env::var("CRASH_LOG").expect("CRASH_LOG is required");
    let flag = std::env::var("BROKEN_FLAG").expect("BROKEN_FLAG is required");
    let db = durable::connect(&url).await?;
    durable::init(&db).await?;
    db.execute_unprepared(CREATE_TABLE).await?;
    let client = Client::new(&db);
    for i in 0..ORDERS {
        let key = format!("order-{i}");
        client
            .enqueue("order", &key, EnqueueOptions::new().key(&key))
            .await?;
    }
    let worker = Worker::new(&db, registry(&log, &flag))
        .concurrency(2)
        .poll_interval(Duration::from_millis(20));
    worker.run(done(client, flag)).await
}

/// Resolves once every order is finished (flag present) or complete.
async fn done(client: Client, flag: String) {
    loop {
        let broken = Path::new(&flag).exists();
        let mut all = true;
        for i in 0..ORDERS {
            match client.workflow_by_key(&format!("order-{i}")).await {
                Ok(w) if w.status == Status::Completed => {}
                Ok(w) if broken && w.status == Status::Failed => {}
                _ => all = false,
            }
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn registry(log: &str, flag: &str) -> Registry {
    let mut registry = Registry::new();
    let (log, flag) = (log.to_string(), flag.to_string());
    registry.register("order", move |ctx: Ctx, key: String| {
        let (log, flag) = (log.clone(), flag.clone());
        async move {
            let pid = std::process::id();
            let line = |step: &str| format!("{key} {step} {pid}\n");
            let (l, text) = (log.clone(), line("reserve#0"));
            ctx.step("reserve", || async move {
                append(&l, &text);
                tokio::time::sleep(Duration::from_millis(40)).await;
                Ok(())
            })
            .await?;
            let (l, text, k) = (log.clone(), line("book#0"), key.clone());
            ctx.transaction("book", move |tx| {
                Box::pin(async move {
                    append(&l, &text);
                    let insert = Statement::from_sql_and_values(
                        tx.get_database_backend(),
                        "INSERT INTO retry_effect (workflow_key) VALUES ($1)",
                        [k.into()],
                    );
                    tx.execute_raw(insert).await?;
                    Ok(())
                })
            })
            .await?;
            let (l, text) = (log.clone(), line("charge#0"));
            let cents: u32 = ctx
                .step("charge", || async move {
                    append(&l, &text);
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    if Path::new(&flag).exists() {
                        Err(DurableError::permanent("card service down"))
                    } else {
                        Ok(100)
                    }
                })
                .await?;
            for n in 0..SHIPMENTS {
                let (l, text) = (log.clone(), line(&format!("ship#{n}")));
                ctx.step("ship", || async move {
                    append(&l, &text);
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    Ok(())
                })
                .await?;
            }
            Ok(cents)
        }
    });
    registry
}
