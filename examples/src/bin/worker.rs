//! `worker`: an executor process for the scale-out demo (and for
//! `tests/scale.rs`, which kills it with `kill -9`).
//!
//! It registers one workflow, `job` (input `{"n": 7}`, enqueued under the
//! key `job-7`): ten steps `step`, each of which appends a line
//! `"job-{n} step#{j} {pid} {unix ms}"`
//! to the append-only log `SIDE_EFFECT_LOG` (if set), sleeps `STEP_MS` and
//! returns `j`; the workflow returns the sum of the steps (45). It declares
//! the queue `jobs` and serves it until Ctrl-C or SIGTERM, then shuts down
//! gracefully: running workflows stop at a step boundary and are released
//! to the other workers at once. What it runs goes to stderr.
//!
//! # Watch the work spread
//!
//! Start PostgreSQL, then, in three terminals:
//!
//! ```sh
//! export DATABASE_URL=postgres://user@localhost/app
//! cargo run --release --bin worker         # terminal 1
//! cargo run --release --bin worker         # terminal 2 (and 3, 4 ...; or on other machines)
//! ```
//!
//! and in a fourth, enqueue 200 jobs and wait for their results:
//!
//! ```sh
//! cargo run --release --bin enqueue -- 200 --wait
//! ```
//!
//! Every worker prints the jobs it runs: they spread over the workers, at
//! most `JOBS_CONCURRENCY` at a time over all of them. Kill a worker with
//! Ctrl-\ or `kill -9`: another one resumes its jobs within a second or two,
//! from the step after the last one it completed. Stop one with Ctrl-C: it
//! finishes its current steps and hands its jobs over. Start it again
//! whenever you like; re-running `enqueue` creates nothing new (keys
//! `job-0` ... are idempotency keys).
//!
//! Environment:
//! - `DATABASE_URL` (default `sqlite://durable-demo.db`);
//! - `SIDE_EFFECT_LOG`: file the steps append to (default: none);
//! - `STEP_MS`: how long each step sleeps (default 20);
//! - `JOBS_CONCURRENCY`: the queue's limit over all workers (default 8);
//! - `KEY_LIMIT`: at most this many running per concurrency key (default: no limit);
//! - `WORKER_LIMIT`: this worker's own limit on `jobs` (default: none but its concurrency);
//! - `WORKER_CONCURRENCY` (default 16), `POLL_MS` (default 250), `LEASE_MS`
//!   (default 30 000), `GRACE_MS` (shutdown grace, default 10 000).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use durable::{Client, Ctx, DurableError, Queue, Registry, Worker};
use durable_examples::append;
use serde::Deserialize;
use tokio::signal::unix::{SignalKind, signal};

/// Input of a `job`.
#[derive(Debug, Deserialize)]
struct Job {
    n: u64,
}

/// The queue the demo uses, with its limits from the environment.
fn jobs_queue() -> Queue {
    let mut queue = Queue::new("jobs").concurrency(env_number("JOBS_CONCURRENCY", 8) as u32);
    if let Some(limit) = env_opt("KEY_LIMIT") {
        queue = queue.concurrency_per_key(limit as u32);
    }
    queue
}

#[tokio::main]
async fn main() -> Result<(), DurableError> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://durable-demo.db".into());
    let log = std::env::var("SIDE_EFFECT_LOG").ok();
    let step_ms = env_number("STEP_MS", 20);
    let pid = std::process::id();

    let db = durable::connect(&url).await?;
    durable::init(&db).await?;
    Client::new(&db).declare_queue(&jobs_queue()).await?;

    let mut registry = Registry::new();
    registry.register("job", move |ctx: Ctx, job: Job| {
        let log = log.clone();
        async move { run_job(ctx, job, log, step_ms, pid).await }
    });

    let mut worker = Worker::new(&db, registry)
        .queues(Vec::<String>::new())
        .concurrency(env_number("WORKER_CONCURRENCY", 16) as usize)
        .poll_interval(Duration::from_millis(env_number("POLL_MS", 250)))
        .lease(Duration::from_millis(env_number("LEASE_MS", 30_000)))
        .shutdown_grace(Duration::from_millis(env_number("GRACE_MS", 10_000)));
    worker = match env_opt("WORKER_LIMIT") {
        Some(limit) => worker.queue_with_limit("jobs", limit as usize),
        None => worker.queues(["jobs"]),
    };
    eprintln!(
        "worker {} (pid {pid}) serving queue 'jobs' on {url}",
        worker.id()
    );
    worker.run(shutdown_signal()).await?;
    eprintln!("worker (pid {pid}) stopped");
    Ok(())
}

/// The `job` workflow: ten logged steps, then the sum of their outputs.
async fn run_job(
    ctx: Ctx,
    job: Job,
    log: Option<String>,
    step_ms: u64,
    pid: u32,
) -> Result<u64, DurableError> {
    // `enqueue` gives job `n` the key `job-{n}`.
    let key = format!("job-{}", job.n);
    eprintln!("[{pid}] {key} (n = {}) running", job.n);
    let mut sum = 0;
    for j in 0..10u64 {
        let (key, log) = (key.clone(), log.clone());
        sum += ctx
            .step("step", move || async move {
                if let Some(log) = &log {
                    append(log, &format!("{key} step#{j} {pid} {}\n", now_ms()));
                }
                tokio::time::sleep(Duration::from_millis(step_ms)).await;
                Ok(j)
            })
            .await?;
    }
    eprintln!("[{pid}] {key} done: {sum}");
    Ok(sum)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("shutting down: finishing current steps");
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn env_opt(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

fn env_number(name: &str, default: u64) -> u64 {
    env_opt(name).unwrap_or(default)
}
