//! `fault-worker`: one worker process of the fault suite.
//!
//! It serves queue `faults` with the `chain` workflow (see
//! `durable_faults::workload`): input `{"n": N, "steps": S}`, S steps, each
//! logging `start` and `end` lines to the append-only `SIDE_EFFECT_LOG`
//! around a sleep of `STEP_MS` (a number, or a range `lo-hi` drawn per
//! run); every third step is a transaction step that also inserts a row
//! into `fault_effect`. The workflow returns the checksum of its steps.
//! SIGTERM shuts it down gracefully.
//!
//! The suite's faults come from outside (signals, a restarted server,
//! terminated or stopped backends) or from the library's fault points,
//! armed by `DURABLE_FAULT_AT` / `DURABLE_FAULT_DO` in this process's
//! environment (the library reads them; this binary only runs).
//!
//! `fault-worker hold-lock <ms>` instead opens the SQLite database of
//! `DATABASE_URL`, takes its write lock (`BEGIN IMMEDIATE`), prints
//! `locked`, holds it for `<ms>` and commits: the lock holder of the
//! SQLite scenario, a process of its own as a real one would be.
//!
//! Environment: `DATABASE_URL`, `SIDE_EFFECT_LOG`, `LEASE_MS` (3000),
//! `POLL_MS` (50), `WORKER_CONCURRENCY` (16), `STEP_MS` (`5-20`),
//! `GRACE_MS` (5000).

use std::fs::File;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use durable::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use durable::{Client, Ctx, DurableError, Queue, Registry, Worker};
use durable_faults::workload::{self, ChainInput, LogLine, Mark, Rng, StepOutput};
use tokio::signal::unix::{SignalKind, signal};

/// What every step body needs.
struct Env {
    log: File,
    pid: u32,
    step_ms: (u64, u64),
}

impl Env {
    /// Append one line with a single `write_all` on an append-mode file:
    /// a `kill -9` loses the line or keeps it whole, never half of it.
    fn mark(&self, mark: Mark, key: &str, step: u32) -> i64 {
        let ms = workload::now_ms();
        let line = LogLine {
            mark,
            key: key.to_string(),
            step,
            pid: self.pid,
            ms,
        };
        let mut file = &self.log;
        file.write_all(line.render().as_bytes())
            .and_then(|()| file.flush())
            .expect("write the side-effect log");
        ms
    }
}

/// One body run in progress: logs its `end`, or, if the run is dropped
/// before it (its future cancelled), a `drop` line.
struct Running {
    env: Arc<Env>,
    key: String,
    step: u32,
    ended: bool,
}

impl Running {
    fn end(mut self) {
        self.ended = true;
        self.env.mark(Mark::End, &self.key, self.step);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.ended {
            self.env.mark(Mark::Dropped, &self.key, self.step);
        }
    }
}

impl Env {
    /// Log the start of a body run; the guard logs its end or its drop.
    fn begin(self: &Arc<Self>, key: &str, step: u32) -> (Running, i64) {
        let started_ms = self.mark(Mark::Start, key, step);
        let guard = Running {
            env: self.clone(),
            key: key.to_string(),
            step,
            ended: false,
        };
        (guard, started_ms)
    }

    /// How long this run of a step sleeps.
    fn step_sleep(&self, key: &str, step: u32, started_ms: i64) -> Duration {
        let seed = key
            .bytes()
            .fold(u64::from(step) ^ started_ms.unsigned_abs(), |h, b| {
                h.wrapping_mul(31).wrapping_add(u64::from(b))
            });
        let (lo, hi) = self.step_ms;
        Duration::from_millis(Rng::new(seed).range(lo, hi))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // Installed before anything else: a SIGTERM that arrives while the
    // worker starts up must still mean a graceful stop, not death.
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    // No worker outlives the driver that started it (one killed without
    // running its cleanup would leave the fleet running).
    let parent = std::os::unix::process::parent_id();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(3);
            }
        }
    });
    // `RUST_LOG` (e.g. `durable=debug`) traces the library to stderr, which
    // the suite keeps in `workers.stderr`.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let result = if args.get(1).map(String::as_str) == Some("hold-lock") {
        let ms = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
        hold_lock(&url, Duration::from_millis(ms)).await
    } else {
        serve(&url, async move {
            term.recv().await;
        })
        .await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fault-worker (pid {}): {err}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

/// Connect and create the schema, retrying for a while: a restarted
/// worker may come up while the server is down for a crash-restart.
async fn open(url: &str) -> Result<DatabaseConnection, DurableError> {
    let mut last = None;
    for _ in 0..100 {
        match durable::connect(url).await {
            Ok(db) => match durable::init(&db).await {
                Ok(()) => return Ok(db),
                Err(err) => last = Some(err),
            },
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last.expect("at least one attempt"))
}

async fn serve(url: &str, shutdown: impl Future<Output = ()>) -> Result<(), DurableError> {
    let log_path = std::env::var("SIDE_EFFECT_LOG").expect("SIDE_EFFECT_LOG");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("open the side-effect log");
    let pid = std::process::id();
    let env = Arc::new(Env {
        log,
        pid,
        step_ms: step_ms(),
    });

    let db = open(url).await?;
    Client::new(&db)
        .declare_queue(&Queue::new(workload::QUEUE).concurrency(workload::QUEUE_CONCURRENCY))
        .await?;
    let mut registry = Registry::new();
    registry.register(workload::WORKFLOW, move |ctx: Ctx, input: ChainInput| {
        chain(ctx, input, env.clone())
    });
    let worker = Worker::new(&db, registry)
        .queues([workload::QUEUE])
        .concurrency(env_number("WORKER_CONCURRENCY", 16) as usize)
        .poll_interval(Duration::from_millis(env_number("POLL_MS", 50)))
        .lease(Duration::from_millis(env_number("LEASE_MS", 3000)))
        .shutdown_grace(Duration::from_millis(env_number("GRACE_MS", 5000)));
    eprintln!("fault-worker {} (pid {pid}) serving", worker.id());
    worker.run(shutdown).await?;
    eprintln!("fault-worker (pid {pid}) stopped");
    Ok(())
}

/// The `chain` workflow: its steps in order, then their checksum.
async fn chain(ctx: Ctx, input: ChainInput, env: Arc<Env>) -> Result<u64, DurableError> {
    let key = workload::key(input.n);
    let mut sum = 0;
    for j in 0..input.steps {
        let out: StepOutput = if workload::is_transaction(j) {
            let (env, key) = (env.clone(), key.clone());
            ctx.transaction(&workload::step_name(j), move |tx| {
                Box::pin(async move {
                    let (run, started_ms) = env.begin(&key, j);
                    tokio::time::sleep(env.step_sleep(&key, j, started_ms)).await;
                    let stmt = Statement::from_sql_and_values(
                        tx.get_database_backend(),
                        "INSERT INTO fault_effect (workflow_key, step, pid) VALUES ($1, $2, $3)",
                        [key.clone().into(), j.into(), i64::from(env.pid).into()],
                    );
                    tx.execute_raw(stmt).await?;
                    run.end();
                    Ok(StepOutput {
                        value: workload::step_value(input.n, j),
                        pid: env.pid,
                        started_ms,
                    })
                })
            })
            .await?
        } else {
            let (env, key) = (env.clone(), key.clone());
            ctx.step(&workload::step_name(j), move || async move {
                let (run, started_ms) = env.begin(&key, j);
                tokio::time::sleep(env.step_sleep(&key, j, started_ms)).await;
                run.end();
                Ok(StepOutput {
                    value: workload::step_value(input.n, j),
                    pid: env.pid,
                    started_ms,
                })
            })
            .await?
        };
        if out.value != workload::step_value(input.n, j) {
            return Err(DurableError::permanent(format!(
                "{key} step {j} returned {} (expected {})",
                out.value,
                workload::step_value(input.n, j)
            )));
        }
        sum += out.value;
    }
    Ok(sum)
}

/// Hold SQLite's write lock for `hold`, from a connection of this process.
async fn hold_lock(url: &str, hold: Duration) -> Result<(), DurableError> {
    let db = durable::connect(url).await?;
    // SeaORM's SQLite pool has one connection, so the BEGIN and the COMMIT
    // run on the same one. `BEGIN IMMEDIATE` takes the write lock at once.
    db.execute_unprepared("BEGIN IMMEDIATE").await?;
    println!("locked");
    std::io::stdout().flush().ok();
    tokio::time::sleep(hold).await;
    db.execute_unprepared("COMMIT").await?;
    println!("released");
    Ok(())
}

/// `STEP_MS`: `n` or `lo-hi` (default `5-20`).
fn step_ms() -> (u64, u64) {
    let text = std::env::var("STEP_MS").unwrap_or_else(|_| "5-20".into());
    let parse = |s: &str| -> u64 {
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("STEP_MS must be N or LO-HI, not {text:?}"))
    };
    match text.split_once('-') {
        Some((lo, hi)) => (parse(lo), parse(hi)),
        None => (parse(&text), parse(&text)),
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}
