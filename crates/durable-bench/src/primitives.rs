//! `primitives`: what waiting costs. Three figures, each from the database
//! clock where the database knows the times:
//! - **send → recv**: a worker's workflow waits for a message; the bench
//!   sends one (a) while the workflow still waits in its process and (b)
//!   after it suspended (woken by the send); the time from the send to the
//!   workflow having it, median, p99 and max;
//! - **timer lateness** of `--sleepers` workflows on a worker of
//!   `--concurrency` slots: all are put to sleep first, then their wake-up
//!   times come one after the other over `--wake-window` seconds; the completion of
//!   each sleep minus its wake-up time, both recorded by the database;
//! - **sleepers per slot**: the most workflows asleep at once while the
//!   worker held at most its slots, and how many it owned meanwhile (0
//!   means no sleeper held a slot).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use durable::scratch::observe;
use durable::sea_orm::DatabaseConnection;
use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Worker};
use serde::Serialize;

use crate::error::{BenchError, Result};
use crate::progress::Progress;

/// Messages per waiting mode, and the delays before each send.
const WAITING_MESSAGES: u32 = 100;
const SUSPENDED_MESSAGES: u32 = 20;
/// A send while the receiver waits in its process: at most this long after
/// it started waiting (it lingers a second before it suspends).
const IN_PROCESS_DELAY_MS: u64 = 600;
/// A send after the receiver suspended.
const SUSPENDED_DELAY_MS: u64 = 1_600;
/// The time it takes at most to put one sleeper to sleep (claim, record the
/// sleep, release), generous for SQLite on this machine (about 9 ms): all
/// sleepers are asleep before the first wakes.
const TO_SLEEP_MS: i64 = 12;
/// The first wake-up comes at least this long after the enqueues.
const LEAD_MS: i64 = 10_000;

/// The sleepers' function.
const SLEEPER: &str = "bench-sleeper";

/// Median, 99th percentile and maximum of one figure, in ms.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) samples: usize,
    pub(crate) median: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Percentiles {
    pub(crate) fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let n = sorted.len();
            if n == 0 {
                return f64::NAN;
            }
            let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            sorted[i]
        };
        Self {
            samples: sorted.len(),
            median: at(0.5),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// What the primitives workload measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PrimitivesReport {
    /// Send → recv while the receiver waits in its process.
    pub(crate) recv_waiting_ms: Percentiles,
    /// Send → recv after the receiver suspended.
    pub(crate) recv_suspended_ms: Percentiles,
    pub(crate) sleepers: u32,
    pub(crate) slots: usize,
    /// The wake-up times were spread over this many ms.
    pub(crate) window_ms: i64,
    /// Wake-up to the end of the sleep, database clock.
    pub(crate) lateness_ms: Percentiles,
    /// Most sleepers asleep at once.
    pub(crate) most_asleep: u64,
    /// Most sleepers owned by the worker at one look while others slept.
    pub(crate) most_owned: u64,
    /// From the first enqueue to the last sleeper finished.
    pub(crate) sleepers_s: f64,
}

fn now_us() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(i64::MAX)
}

/// Received messages: number → microseconds from its send to its receipt.
type Arrivals = Arc<Mutex<BTreeMap<u32, i64>>>;

fn registry(arrivals: &Arrivals) -> Registry {
    let mut registry = Registry::new();
    let arrivals = arrivals.clone();
    registry.register("bench-receiver", move |ctx: Ctx, count: u32| {
        let arrivals = arrivals.clone();
        async move {
            for _ in 0..count {
                let message: Option<(u32, i64)> =
                    ctx.recv("ping", Duration::from_secs(600)).await?;
                let (n, sent_us) =
                    message.ok_or_else(|| DurableError::custom("no message in 10 minutes"))?;
                // A replay after a suspension returns earlier messages
                // again: only the first receipt counts.
                arrivals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(n)
                    .or_insert_with(|| now_us() - sent_us);
            }
            Ok(())
        }
    });
    registry.register(SLEEPER, |ctx: Ctx, wake_at_ms: u64| async move {
        ctx.sleep_until(UNIX_EPOCH + Duration::from_millis(wake_at_ms))
            .await?;
        Ok(())
    });
    registry
}

/// Run the three measurements on one worker of `slots` slots.
pub(crate) async fn run(
    db: &DatabaseConnection,
    sleepers: u32,
    wake_window: Duration,
    slots: usize,
    progress: &Progress,
) -> Result<PrimitivesReport> {
    let arrivals = Arrivals::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(db, registry(&arrivals)).concurrency(slots);
    let worker = tokio::spawn(worker.run(async {
        stopped.await.ok();
    }));
    let client = Client::new(db);
    let run = uuid::Uuid::new_v4().simple().to_string();

    progress.phase(format!(
        "primitives: {WAITING_MESSAGES} messages to a waiting workflow"
    ));
    let waiting = messages(&client, &arrivals, &run, "waiting", WAITING_MESSAGES, |n| {
        Duration::from_millis(u64::from(n) * 37 % IN_PROCESS_DELAY_MS)
    })
    .await?;
    progress.tick();
    progress.phase(format!(
        "primitives: {SUSPENDED_MESSAGES} messages to a suspended workflow"
    ));
    let suspended = messages(
        &client,
        &arrivals,
        &run,
        "suspended",
        SUSPENDED_MESSAGES,
        |_| Duration::from_millis(SUSPENDED_DELAY_MS),
    )
    .await?;
    progress.tick();

    progress.phase(format!("primitives: {sleepers} sleepers on {slots} slots"));
    let started = Instant::now();
    let window_ms = i64::try_from(wake_window.as_millis()).unwrap_or(i64::MAX);
    let first_wake_us = now_us() + 1000 * (LEAD_MS + TO_SLEEP_MS * i64::from(sleepers));
    for i in 0..sleepers {
        let key = format!("sleeper-{run}-{i}");
        let wake_at_ms = first_wake_us / 1000 + window_ms * i64::from(i) / i64::from(sleepers);
        client
            .enqueue(SLEEPER, &wake_at_ms, EnqueueOptions::new().key(&key))
            .await?;
    }
    let (mut most_asleep, mut most_owned) = (0u64, 0u64);
    let lateness = loop {
        let now = observe::sleepers(db, SLEEPER).await?;
        most_asleep = most_asleep.max(now.asleep);
        if now.asleep > 0 {
            most_owned = most_owned.max(now.owned);
        }
        let ended: Vec<f64> = observe::sleep_lateness_ms(db, SLEEPER)
            .await?
            .into_iter()
            .map(|ms| ms as f64)
            .collect();
        if ended.len() >= sleepers as usize {
            break ended;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(BenchError::Measurement(format!(
                "only {} of {sleepers} sleepers woke within 10 minutes",
                ended.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sleepers_s = started.elapsed().as_secs_f64();
    progress.tick();
    stop.send(()).ok();
    worker
        .await
        .map_err(|e| BenchError::Measurement(format!("the worker task failed: {e}")))??;
    Ok(PrimitivesReport {
        recv_waiting_ms: waiting,
        recv_suspended_ms: suspended,
        sleepers,
        slots,
        window_ms,
        lateness_ms: Percentiles::of(&lateness),
        most_asleep,
        most_owned,
        sleepers_s,
    })
}

/// Send `count` messages to a new receiver, each `delay(n)` after the
/// receiver took the one before, and wait for each to arrive.
async fn messages(
    client: &Client,
    arrivals: &Arrivals,
    run: &str,
    mode: &str,
    count: u32,
    delay: impl Fn(u32) -> Duration,
) -> Result<Percentiles> {
    arrivals.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let key = format!("receiver-{run}-{mode}");
    let receiver = client
        .enqueue("bench-receiver", &count, EnqueueOptions::new().key(&key))
        .await?;
    for n in 0..count {
        tokio::time::sleep(delay(n)).await;
        client.send(receiver.id(), "ping", &(n, now_us())).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&n)
        {
            if Instant::now() > deadline {
                return Err(BenchError::Measurement(format!(
                    "message {n} was not received within 60 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    receiver.result::<()>(Duration::from_secs(60)).await?;
    let ms: Vec<f64> = arrivals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|&us| us as f64 / 1000.0)
        .collect();
    Ok(Percentiles::of(&ms))
}

#[cfg(test)]
mod tests {
    use super::Percentiles;

    #[test]
    fn percentiles_by_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&samples);
        assert_eq!(
            (p.median, p.p99, p.max, p.samples),
            (50.0, 99.0, 100.0, 100)
        );
        assert_eq!(Percentiles::of(&[7.0]).p99, 7.0);
    }
}
