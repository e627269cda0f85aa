//! `schedule_worker`: the executor process that `tests/schedule_crash.rs`
//! runs three of at once and kills with `kill -9` at random.
//!
//! Declares (idempotently) the schedule `every-second`: workflow `tick` at
//! every second, missed ticks all caught up. Then runs a `Worker` (which
//! fires due schedules) until it is killed. Each `tick` runs one step,
//! `record`, whose body appends `"{tick second} {pid}"` to the append-only
//! log `CRASH_LOG` and then takes a little while, so that kills land
//! inside it too.
//!
//! Environment: `DATABASE_URL`, `CRASH_LOG` (both required).

use std::time::Duration;

use durable::{CatchUp, Ctx, DurableError, Registry, Schedule, Tick, Worker};
use durable_examples::append;

/// The schedule the test checks (`tests/schedule_crash.rs` uses the same).
const SCHEDULE: &str = "every-second";

#[tokio::main]
async fn main() -> Result<(), DurableError> {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is required");
    let log = std::env::var("CRASH_LOG").expect("CRASH_LOG is required");
    let db = durable::connect(&url).await?;
    durable::init(&db).await?;
    let client = durable::Client::new(&db);
    client.declare_schedule(&schedule()).await?;
    let worker = Worker::new(&db, registry(log))
        .concurrency(4)
        .poll_interval(Duration::from_millis(20));
    worker.run(std::future::pending::<()>()).await
}

/// The one definition every process declares: declaring it again changes
/// nothing, so restarts keep the schedule's cursor.
fn schedule() -> Schedule {
    Schedule::new(SCHEDULE, "* * * * * *", "tick").catch_up(CatchUp::All)
}

fn registry(log: String) -> Registry {
    let mut registry = Registry::new();
    registry.register("tick", move |ctx: Ctx, tick: Tick| {
        let log = log.clone();
        async move {
            let line = format!("{} {}\n", tick.at.timestamp(), std::process::id());
            ctx.step("record", || async move {
                append(&log, &line);
                tokio::time::sleep(Duration::from_millis(150)).await;
                Ok(())
            })
            .await
        }
    });
    registry
}
