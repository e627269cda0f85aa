//! `claims`: how long a new workflow waits to be claimed when the tables
//! hold a backlog. One at a time, a workflow is enqueued and timed from just
//! before its `enqueue` to the start of its first step (both on this
//! process's clock), behind three kinds of backlog, grown from one size to
//! the next and left in place for the kinds after it:
//! - **hot key**: a queue with a per-key limit of one; one workflow on the
//!   key `hot` runs for the whole measurement (holding the key) and N more
//!   wait behind it; the timed workflow has a fresh key;
//! - **queued**: N workflows wait in the timed workflow's (unkeyed) queue,
//!   ahead of it, for a function no executor here runs (another
//!   deployment's work);
//! - **finished**: N completed workflows of the timed function and queue.
//!
//! Backlogs are seeded in bulk, one statement per size
//! (`durable::scratch::seed`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use durable::scratch::seed::{self, Roots};
use durable::sea_orm::DatabaseConnection;
use durable::{Client, Ctx, EnqueueOptions, Queue, Registry, Worker};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::{BenchError, Result};
use crate::primitives::Percentiles;
use crate::progress::Progress;

const KEYED: &str = "bench-keyed";
const PLAIN: &str = "bench-plain";
/// The longest a probe may wait before the run gives up on it.
const PATIENCE: Duration = Duration::from_secs(120);

/// What the tables hold while a claim is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Backlog {
    HotKey,
    Queued,
    Finished,
}

impl Backlog {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Backlog::HotKey => "waiting on one busy key",
            Backlog::Queued => "queued ahead, others' work",
            Backlog::Finished => "finished",
        }
    }
}

/// Claim latency at one backlog size.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClaimLatency {
    pub(crate) kind: Backlog,
    /// Workflows of that kind.
    pub(crate) backlog: u64,
    /// Enqueue to first step, ms.
    pub(crate) latency_ms: Percentiles,
}

fn registry(hold: &Arc<AtomicBool>, started: &mpsc::UnboundedSender<(u32, Instant)>) -> Registry {
    let mut registry = Registry::new();
    let hold = hold.clone();
    registry.register("bench-hold", move |ctx: Ctx, _: serde_json::Value| {
        let hold = hold.clone();
        async move {
            ctx.step("hold", || async {
                while hold.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(())
            })
            .await
        }
    });
    let started = started.clone();
    registry.register("bench-probe", move |ctx: Ctx, n: u32| {
        let started = started.clone();
        async move {
            ctx.step("first", || async {
                let _ = started.send((n, Instant::now()));
                Ok(())
            })
            .await
        }
    });
    registry
}

/// Measure at each backlog size of each kind, `probes` workflows each.
pub(crate) async fn run(
    db: &DatabaseConnection,
    plan: &[(Backlog, Vec<u64>)],
    probes: u32,
    progress: &Progress,
) -> Result<Vec<ClaimLatency>> {
    let client = Client::new(db);
    client
        .declare_queue(&Queue::new(KEYED).concurrency_per_key(1))
        .await?;
    client.declare_queue(&Queue::new(PLAIN)).await?;
    let hold = Arc::new(AtomicBool::new(true));
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(db, registry(&hold, &started_tx))
        .concurrency(4)
        .queues([KEYED, PLAIN]);
    let worker = tokio::spawn(worker.run(async {
        stopped.await.ok();
    }));
    let hot = EnqueueOptions::new().queue(KEYED).concurrency_key("hot");
    client
        .enqueue("bench-hold", &serde_json::Value::Null, hot.key("hot-0"))
        .await?;
    let mut out = Vec::new();
    let mut n = 0u32;
    for (kind, sizes) in plan {
        let mut seeded = 0u64;
        for &backlog in sizes {
            progress.phase(format!("claims: {backlog} {}", kind.describe()));
            if backlog > seeded {
                add_backlog(db, *kind, seeded + 1, backlog).await?;
                seeded = backlog;
            }
            let mut samples = Vec::new();
            for _ in 0..probes {
                n += 1;
                let options = match kind {
                    Backlog::HotKey => EnqueueOptions::new()
                        .queue(KEYED)
                        .concurrency_key(format!("probe-{n}")),
                    Backlog::Queued | Backlog::Finished => EnqueueOptions::new().queue(PLAIN),
                };
                let sent = Instant::now();
                client
                    .enqueue("bench-probe", &n, options.key(format!("probe-{n}")))
                    .await?;
                let at = loop {
                    match tokio::time::timeout(PATIENCE, started.recv()).await {
                        Ok(Some((m, at))) if m == n => break at,
                        Ok(Some(_)) => continue, // a replay of an earlier probe
                        _ => {
                            return Err(BenchError::Measurement(format!(
                                "claims: a workflow behind {backlog} {} was not claimed within {PATIENCE:?}",
                                kind.describe()
                            )));
                        }
                    }
                };
                samples.push((at - sent).as_secs_f64() * 1e3);
            }
            progress.tick();
            out.push(ClaimLatency {
                kind: *kind,
                backlog,
                latency_ms: Percentiles::of(&samples),
            });
        }
    }
    hold.store(false, Ordering::SeqCst);
    let _ = stop.send(());
    let _ = worker.await;
    Ok(out)
}

/// Add the workflows number `from..=to` of a backlog.
async fn add_backlog(db: &DatabaseConnection, kind: Backlog, from: u64, to: u64) -> Result<()> {
    let roots = match kind {
        Backlog::HotKey => Roots::new("bench-hold")
            .key_prefix("hot-")
            .queue(KEYED)
            .concurrency_key("hot"),
        Backlog::Queued => Roots::new("bench-elsewhere")
            .key_prefix("queued-")
            .queue(PLAIN),
        Backlog::Finished => Roots::new("bench-probe")
            .key_prefix("finished-")
            .queue(PLAIN),
    };
    if kind == Backlog::Finished {
        seed::completed(db, &roots, from..=to).await?;
    } else {
        seed::pending(db, &roots, from..=to).await?;
    }
    // What autovacuum would do within a minute of such an insert: the
    // plans measured are those of a table whose statistics are current.
    seed::analyze(db).await?;
    Ok(())
}
