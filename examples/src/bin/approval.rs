//! `approval`: a workflow that waits for a human's answer, with a deadline.
//!
//! An expense report is submitted; the workflow asks for approval and waits
//! for a message on the topic `approval` for at most `TIMEOUT`. Waiting
//! suspends it: the worker's slot is free meanwhile, and a send wakes it. Here
//! the approver answers from the same program after a moment; in a service
//! the answer would come from a web handler calling `Client::send`.
//!
//! ```sh
//! cargo run --bin approval                      # SQLite file approval.db
//! DATABASE_URL=postgres://... cargo run --bin approval
//! ```

use std::time::Duration;

use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Worker};
use serde::{Deserialize, Serialize};

/// How long a report may wait for an answer.
const TIMEOUT: Duration = Duration::from_secs(3 * 24 * 3600);

#[derive(Debug, Serialize, Deserialize)]
struct Report {
    employee: String,
    cents: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    approved: bool,
    by: String,
}

async fn expense(ctx: Ctx, report: Report) -> Result<String, DurableError> {
    let cents = report.cents;
    ctx.step("ask_manager", || async move {
        println!("asking for approval of {cents} cents");
        Ok(())
    })
    .await?;
    ctx.set_event("state", "waiting for approval").await?;
    let answer: Option<Answer> = ctx.recv("approval", TIMEOUT).await?;
    let outcome = match answer {
        Some(Answer { approved: true, by }) => {
            ctx.step(
                "pay",
                || async move { Ok(format!("paid, approved by {by}")) },
            )
            .await?
        }
        Some(Answer { by, .. }) => format!("rejected by {by}"),
        None => "no answer in time: escalated".to_string(),
    };
    ctx.set_event("state", &outcome).await?;
    Ok(outcome)
}

#[tokio::main]
async fn main() -> Result<(), DurableError> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://approval.db".into());
    let db = durable::connect(&url).await?;
    durable::init(&db).await?;
    let mut registry = Registry::new();
    registry.register("expense", expense);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(&db, registry).run(async {
        stopped.await.ok();
    }));

    let client = Client::new(&db);
    let report = Report {
        employee: "ada".into(),
        cents: 12_300,
    };
    let key = format!("expense-{}", std::process::id());
    let handle = client
        .enqueue("expense", &report, EnqueueOptions::new().key(&key))
        .await?;
    let state: Option<String> = client
        .get_event(handle.id(), "state", Duration::from_secs(30))
        .await?;
    println!("{} {}: {state:?}", report.employee, key);
    client
        .send(
            handle.id(),
            "approval",
            &Answer {
                approved: true,
                by: "grace".into(),
            },
        )
        .await?;
    let outcome: String = handle.result(Duration::from_secs(60)).await?;
    println!("outcome: {outcome}");
    stop.send(()).ok();
    worker.await.expect("worker task")?;
    Ok(())
}
