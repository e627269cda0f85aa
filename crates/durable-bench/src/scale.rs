//! `scale`: steps per second with 1, 2, 4 ... worker processes on one
//! database, against the floor at the same total concurrency.
//!
//! Each process is this binary (`durable bench --internal-scale-worker`)
//! running one `Worker` of `--concurrency` slots on the queue
//! `bench-scale`, until its standard input closes. With every process
//! started and polling, the workflows are put on the queue in one
//! statement (`durable::scratch::seed::pending`), and the time runs from
//! that statement to the last completion, both read from the database
//! clock.
//! The floor runs at the same total concurrency right after.

use std::process::Stdio;
use std::time::Duration;

use durable::scratch::seed::{self, Roots};
use durable::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use durable::{
    Client, Ctx, Direction, EnqueueOptions, Queue, Registry, SortBy, Status, Worker, WorkflowQuery,
};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::error::{BenchError, Result};
use crate::floor;
use crate::progress::Progress;
use crate::sql;
use crate::stats::Spread;
use crate::target::{Backend, Target};

const QUEUE: &str = "bench-scale";
const NAME: &str = "bench-scale";

/// Steps per second at one number of processes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScaleLevel {
    pub(crate) processes: usize,
    /// Slots in all (processes x slots per process).
    pub(crate) concurrency: usize,
    pub(crate) steps_per_s: Spread,
    /// The floor's inserts per second at the same concurrency.
    pub(crate) floor_per_s: Spread,
    /// Median over runs of steps/s over the floor's inserts/s.
    pub(crate) ratio_to_floor: f64,
}

/// The scale-out workload's results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScaleReport {
    pub(crate) workflows: u32,
    pub(crate) steps_per_workflow: u32,
    pub(crate) slots_per_process: usize,
    pub(crate) levels: Vec<ScaleLevel>,
}

fn registry(steps: u32) -> Registry {
    let mut registry = Registry::new();
    registry.register(NAME, move |ctx: Ctx, _: serde_json::Value| async move {
        for i in 0..steps {
            let _: u32 = ctx.step("s", || async move { Ok(i) }).await?;
        }
        Ok(steps)
    });
    registry
}

/// In a child process: run a worker until standard input closes.
pub(crate) async fn child(url: &str, slots: usize, steps: u32) -> Result<()> {
    let db = durable::connect(url).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(&db, registry(steps))
        .concurrency(slots)
        .queues([QUEUE]);
    let running = tokio::spawn(worker.run(async {
        stopped.await.ok();
    }));
    println!("ready");
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    let _ = stop.send(());
    running
        .await
        .map_err(|e| BenchError::Internal(format!("worker task: {e}")))??;
    Ok(())
}

/// Measure each level `repeat` times.
pub(crate) async fn run(
    target: &Target,
    db: &DatabaseConnection,
    plan: &Plan,
    progress: &Progress,
) -> Result<ScaleReport> {
    Client::new(db).declare_queue(&Queue::new(QUEUE)).await?;
    let exe = std::env::current_exe().map_err(|e| BenchError::io("find this program", e))?;
    let mut levels = Vec::new();
    let mut next = 0u64;
    for &processes in &plan.processes {
        let concurrency = processes * plan.slots;
        progress.phase(format!(
            "scale: {processes} worker processes of {} slots",
            plan.slots
        ));
        floor::warm(db, concurrency).await?;
        let (mut steps, mut floors, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..plan.repeat {
            let mut children = Vec::new();
            for _ in 0..processes {
                let mut child = tokio::process::Command::new(&exe)
                    .arg("bench")
                    .arg("--internal-scale-worker")
                    .args(["--database-url", &target.url])
                    .args(["--concurrency", &plan.slots.to_string()])
                    .args(["--workflow-steps", &plan.steps.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| BenchError::io("start a scale worker process", e))?;
                let stdout = child.stdout.take().expect("piped");
                let mut line = String::new();
                BufReader::new(stdout)
                    .read_line(&mut line)
                    .await
                    .map_err(|e| BenchError::io("read a scale worker", e))?;
                if line.trim() != "ready" {
                    return Err(BenchError::Child {
                        workload: "scale worker".into(),
                        message: format!("did not start (it said {:?})", line.trim()),
                    });
                }
                children.push(child);
            }
            let first = next + 1;
            next += u64::from(plan.workflows);
            let per_s = measure(db, target.backend, plan, first, next).await?;
            for mut child in children {
                drop(child.stdin.take()); // stop it
                let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
            }
            let (_, floor_per_s) = floor::sample(db, concurrency, plan.floor_inserts).await?;
            steps.push(per_s);
            floors.push(floor_per_s);
            ratios.push(per_s / floor_per_s);
            progress.tick();
        }
        levels.push(ScaleLevel {
            processes,
            concurrency,
            steps_per_s: Spread::of(&steps),
            floor_per_s: Spread::of(&floors),
            ratio_to_floor: Spread::of(&ratios).median,
        });
    }
    Ok(ScaleReport {
        workflows: plan.workflows,
        steps_per_workflow: plan.steps,
        slots_per_process: plan.slots,
        levels,
    })
}

/// What to measure.
pub(crate) struct Plan {
    pub(crate) processes: Vec<usize>,
    pub(crate) slots: usize,
    pub(crate) workflows: u32,
    pub(crate) steps: u32,
    pub(crate) floor_inserts: u32,
    pub(crate) repeat: usize,
}

/// Queue workflows `first..=last`, wait for them; steps per second.
async fn measure(
    db: &DatabaseConnection,
    backend: Backend,
    plan: &Plan,
    first: u64,
    last: u64,
) -> Result<f64> {
    let now = match backend {
        Backend::Postgres => sql::POSTGRES_NOW_MS,
        Backend::Sqlite => sql::SQLITE_NOW_MS,
    };
    let started = one_i64(db, Statement::from_string(db.get_database_backend(), now)).await?;
    // All but the last in one statement, the last through `enqueue`,
    // whose notification wakes the workers at once.
    let roots = Roots::new(NAME).key_prefix("scale-").queue(QUEUE);
    seed::pending(db, &roots, first..=last - 1).await?;
    let client = Client::new(db);
    client
        .enqueue(
            NAME,
            &serde_json::Value::Null,
            EnqueueOptions::new()
                .queue(QUEUE)
                .key(format!("scale-{last}")),
        )
        .await?;
    let done = WorkflowQuery::new()
        .name(NAME)
        .status(Status::Completed)
        .created(started..);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while client.count(&done).await? <= last - first {
        if tokio::time::Instant::now() > deadline {
            return Err(BenchError::Measurement(
                "scale: the workflows did not finish within 10 minutes".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The last completion, as the database recorded it.
    let last_done = done.sort(SortBy::Finished, Direction::Descending).limit(1);
    let ended = client
        .list(&last_done)
        .await?
        .workflows
        .first()
        .and_then(|w| w.finished_at_ms)
        .ok_or_else(|| BenchError::Internal("scale: no finished workflow".into()))?;
    let seconds = (ended - started).max(1) as f64 / 1000.0;
    Ok(f64::from(plan.workflows) * f64::from(plan.steps) / seconds)
}

async fn one_i64(db: &DatabaseConnection, stmt: Statement) -> Result<i64> {
    let row = db
        .query_one_raw(stmt)
        .await?
        .ok_or_else(|| BenchError::Internal("no row".into()))?;
    Ok(row.try_get_by_index(0)?)
}
