//! `crash_worker`: the process that `tests/crash.rs` kills with `kill -9`.
//!
//! Runs workflows `crash-0` .. `crash-{WORKFLOWS-1}` one after the other
//! (`Ctx::start_with_key`), each with `STEPS` steps: plain `work` steps, and
//! every fourth a `txn` transaction step that inserts one row into
//! `crash_effect`; then one child workflow (`child`) with two `sub` steps. Before doing
//! anything else, every step body appends a line `"{key} {step} {pid}"` to
//! the append-only log `CRASH_LOG` (written straight to the file, so a
//! `kill -9` loses nothing), so the test can count how often each body ran.
//!
//! Environment: `DATABASE_URL` (required), `CRASH_LOG` (required),
//! `WORKFLOWS` (default 6), `STEPS` (default 12). Exits 0 once every
//! workflow is complete.

use std::time::Duration;

use durable::sea_orm::{ConnectionTrait, Statement};
use durable::{Ctx, DurableError};
use durable_examples::append;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS crash_effect (workflow_key TEXT NOT NULL, \
     step_no BIGINT NOT NULL, PRIMARY KEY (workflow_key, step_no))";

#[tokio::main]
async fn main() -> Result<(), DurableError> {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is required");
    let log = std::env::var("CRASH_LOG").expect("CRASH_LOG is required");
    let workflows = env_number("WORKFLOWS", 6);
    let steps = env_number("STEPS", 12);
    let pid = std::process::id();

    let db = durable::connect(&url).await?;
    durable::init(&db).await?;
    db.execute_unprepared(CREATE_TABLE).await?;

    for i in 0..workflows {
        let key = format!("crash-{i}");
        let ctx = Ctx::start_with_key(&db, "crash", &key, None).await?;
        let (mut sum, mut works, mut txns) = (0u64, 0, 0);
        for j in 0..steps {
            let pause = Duration::from_millis(5 + (j * 7) % 11);
            let value: u64 = if j % 4 == 3 {
                let (line, key, log) = (
                    format!("{key} txn#{txns} {pid}\n"),
                    key.clone(),
                    log.clone(),
                );
                txns += 1;
                ctx.transaction("txn", move |tx| {
                    Box::pin(async move {
                        append(&log, &line);
                        tokio::time::sleep(pause).await;
                        let stmt = Statement::from_sql_and_values(
                            tx.get_database_backend(),
                            "INSERT INTO crash_effect (workflow_key, step_no) VALUES ($1, $2)",
                            [key.into(), (j as i64).into()],
                        );
                        tx.execute_raw(stmt).await?;
                        Ok(j)
                    })
                })
                .await?
            } else {
                let line = format!("{key} work#{works} {pid}\n");
                works += 1;
                ctx.step("work", || async {
                    append(&log, &line);
                    tokio::time::sleep(pause).await;
                    Ok(j)
                })
                .await?
            };
            sum += value;
        }

        let child = ctx.child("child", None).await?;
        let mut child_sum = 0u64;
        for k in 0..2u64 {
            let line = format!("{key} sub#{k} {pid}\n");
            child_sum += child
                .step("sub", || async {
                    append(&log, &line);
                    tokio::time::sleep(Duration::from_millis(5 + k * 5)).await;
                    Ok(k + 1)
                })
                .await?;
        }
        child.complete(&child_sum).await?;
        ctx.complete(&(sum + child_sum)).await?;
    }
    Ok(())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
