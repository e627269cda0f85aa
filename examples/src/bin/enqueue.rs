//! `enqueue`: put `job` workflows on the queue `jobs` for the `worker`
//! processes of the scale-out demo to run.
//!
//! ```sh
//! cargo run --release --bin enqueue -- 200          # enqueue job-0 .. job-199
//! cargo run --release --bin enqueue -- 200 --wait   # ... and print every result
//! ```
//!
//! Job `i` gets the key `job-{i}` (an idempotency key) and the input
//! `{"n": i}`, so running `enqueue` again creates nothing new: it reports
//! how many jobs already existed. With `--wait` it waits for every result
//! (the workers must be running; see `src/bin/worker.rs` for how to start
//! several of them against one PostgreSQL and watch the work spread).
//!
//! Environment: `DATABASE_URL` (default `sqlite://durable-demo.db`),
//! `JOBS_CONCURRENCY` and `KEY_LIMIT` as for `worker` (the queue is declared
//! with them), `KEYS`: spread the jobs over this many concurrency keys
//! `k0` ... (default: none).

use std::time::Duration;

use durable::{Client, DurableError, EnqueueOptions, Queue};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), DurableError> {
    let mut count = 20u64;
    let mut wait = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--wait" => wait = true,
            n => {
                count = n
                    .parse()
                    .unwrap_or_else(|_| panic!("usage: enqueue [N] [--wait], not {n:?}"))
            }
        }
    }
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://durable-demo.db".into());
    let keys = env_opt("KEYS");

    let db = durable::connect(&url).await?;
    durable::init(&db).await?;
    let client = Client::new(&db);
    let mut queue = Queue::new("jobs").concurrency(env_opt("JOBS_CONCURRENCY").unwrap_or(8) as u32);
    if let Some(limit) = env_opt("KEY_LIMIT") {
        queue = queue.concurrency_per_key(limit as u32);
    }
    client.declare_queue(&queue).await?;

    let (mut created, mut existing) = (0, 0);
    let mut handles = Vec::new();
    for i in 0..count {
        let mut options = EnqueueOptions::new().key(format!("job-{i}")).queue("jobs");
        if let Some(keys) = keys.filter(|&k| k > 0) {
            options = options.concurrency_key(format!("k{}", i % keys));
        }
        let handle = client.enqueue("job", &json!({ "n": i }), options).await?;
        if handle.is_new() {
            created += 1;
        } else {
            existing += 1;
        }
        handles.push(handle);
    }
    println!("{created} jobs enqueued, {existing} already there, on {url}");

    if wait {
        for handle in handles {
            let sum: u64 = handle.result(Duration::from_secs(3600)).await?;
            println!("{} -> {sum}", handle.key());
        }
    }
    Ok(())
}

fn env_opt(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}
