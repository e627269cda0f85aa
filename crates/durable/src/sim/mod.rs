//! Deterministic simulation: several workers on the in-memory store, with
//! crashes, stalls, failed, lost and delayed replies and clock steps, all
//! drawn from one seed; the guarantees checked from an append-only log of
//! what step bodies did and what commits the store accepted.
//!
//! Everything runs on one thread under tokio's paused clock: time advances
//! only when every task waits, and the store's clock follows it, so a run
//! depends on nothing but its seed (the ids, the faults, the jitter of
//! retries, the order of `select!` branches, which the library fixes with
//! `biased`). A failing seed replays exactly:
//!
//! ```sh
//! SIM_SEED=1234 cargo test -p durable-workflows --features testing --lib sim::one_seed -- --nocapture
//! ```
//!
//! `SIM_SEEDS=N` sets how many seeds the `seeds_*` tests run (default: the
//! CI budget); `sim::same_seed_same_run` checks that a seed replays the
//! same log.

mod faulty;
mod rng;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use self::faulty::{FaultRates, FaultyStore, Link};
use self::rng::Rng;
use crate::client::{Client, EnqueueOptions};
use crate::ctx::Ctx;
use crate::error::DurableError;
use crate::queue::Queue;
use crate::registry::Registry;
use crate::status::Status;
use crate::store::memory::MemoryStore;
use crate::store::{Store, sql::chance};
use crate::worker::Worker;

/// The lease of every simulated executor.
const LEASE: Duration = Duration::from_secs(2);
/// Faults are injected for this long (virtual time), then the run settles.
const FAULTS_FOR: Duration = Duration::from_secs(40);
/// Every workflow must have finished this long after the faults stopped.
const SETTLE_WITHIN: Duration = Duration::from_secs(180);
const EXECUTORS: usize = 3;
const CHAINS: u64 = 10;
const STEPS: u64 = 4;

/// One thing a step body did, or a commit the store accepted, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Event {
    Start {
        executor: Uuid,
        workflow: Uuid,
        position: i32,
    },
    End {
        executor: Uuid,
        workflow: Uuid,
        position: i32,
    },
    Committed {
        workflow: Uuid,
        position: i32,
    },
}

/// The append-only log of a run.
#[derive(Debug, Default)]
pub(super) struct Log {
    events: Mutex<Vec<Event>>,
}

impl Log {
    pub(super) fn push(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

/// What a run measured; `violations` must be empty.
#[derive(Debug, Default)]
pub(super) struct Report {
    pub(super) seed: u64,
    pub(super) workflows: usize,
    pub(super) unfinished: Vec<String>,
    pub(super) wrong_output: Vec<String>,
    pub(super) step_runs: usize,
    pub(super) steps: usize,
    pub(super) crashes: u32,
    pub(super) stalls: u32,
    pub(super) clock_steps: u32,
    pub(super) injected: u64,
    pub(super) violations: Vec<String>,
    pub(super) log_hash: u64,
    pub(super) virtual_ms: u128,
}

impl Report {
    fn ok(&self) -> bool {
        self.violations.is_empty() && self.unfinished.is_empty() && self.wrong_output.is_empty()
    }
}

/// Step `position` of a workflow: logs its start and end, takes a while
/// (a function of the workflow and the position, not of the run), and
/// returns a value the checksum adds up.
async fn logged_step(
    ctx: &Ctx,
    log: &Arc<Log>,
    position: i32,
    n: u64,
) -> Result<u64, DurableError> {
    let (log, executor, workflow) = (log.clone(), ctx.executor.id, ctx.task_id());
    ctx.step("s", move || async move {
        log.push(Event::Start {
            executor,
            workflow,
            position,
        });
        let ms = (n * 37 + u64::try_from(position).unwrap_or(0) * 101) % 400;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        log.push(Event::End {
            executor,
            workflow,
            position,
        });
        Ok(n * 10 + u64::try_from(position).unwrap_or(0))
    })
    .await
}

/// What a chain of `STEPS` steps returns for input `n`.
fn chain_sum(n: u64) -> u64 {
    (0..STEPS).map(|p| n * 10 + p).sum()
}

/// The simulated application: `chain` (steps), `sleeper` (a durable sleep
/// between steps, long enough to suspend), `parent` (spawns two chains and
/// joins them), `mailbox` (waits for a message the driver sends).
fn registry(log: &Arc<Log>) -> Registry {
    let mut registry = Registry::new();
    let l = log.clone();
    registry.register("chain", move |ctx: Ctx, n: u64| {
        let l = l.clone();
        async move {
            let mut sum = 0;
            for position in 0..STEPS {
                sum += logged_step(&ctx, &l, i32::try_from(position).unwrap_or(0), n).await?;
            }
            Ok(sum)
        }
    });
    let l = log.clone();
    registry.register("sleeper", move |ctx: Ctx, n: u64| {
        let l = l.clone();
        async move {
            let a = logged_step(&ctx, &l, 0, n).await?;
            ctx.sleep(Duration::from_secs(3)).await?;
            let b = logged_step(&ctx, &l, 2, n).await?;
            Ok(a + b)
        }
    });
    registry.register("parent", move |ctx: Ctx, n: u64| async move {
        let a = ctx.spawn("chain", &(n + 1)).await?;
        let b = ctx.spawn("chain", &(n + 2)).await?;
        let sums: Vec<u64> = ctx.join_all(&[a, b]).await?;
        Ok(sums.iter().sum::<u64>())
    });
    let l = log.clone();
    registry.register("mailbox", move |ctx: Ctx, n: u64| {
        let l = l.clone();
        async move {
            let got: Option<u64> = ctx.recv("go", Duration::from_secs(600)).await?;
            let a = logged_step(&ctx, &l, 1, n).await?;
            Ok(a + got.unwrap_or(0))
        }
    });
    registry
}

/// The workflows of a run: key, name, input, expected output.
fn workload() -> Vec<(String, &'static str, u64, u64)> {
    let mut work: Vec<_> = (0..CHAINS)
        .map(|n| (format!("chain-{n}"), "chain", n, chain_sum(n)))
        .collect();
    work.push(("sleeper-0".into(), "sleeper", 50, 50 * 10 + 50 * 10 + 2));
    work.push((
        "parent-0".into(),
        "parent",
        60,
        chain_sum(61) + chain_sum(62),
    ));
    work.push(("mailbox-0".into(), "mailbox", 70, 70 * 10 + 1 + 7));
    work
}

/// One simulated executor: its link (to stall or crash it) and its task.
struct Running {
    link: Arc<Link>,
    task: JoinHandle<Result<(), DurableError>>,
}

/// Everything a run shares.
struct World {
    memory: Arc<MemoryStore>,
    rng: Arc<Mutex<Rng>>,
    rates: FaultRates,
    log: Arc<Log>,
    injected: Arc<Mutex<u64>>,
}

impl World {
    fn start_executor(&self) -> Running {
        let id = Uuid::from_u128(u128::from(self.rng.lock().unwrap().next()));
        let link = Arc::new(Link::default());
        let store: Arc<dyn Store> = Arc::new(FaultyStore {
            inner: self.memory.clone(),
            rng: self.rng.clone(),
            rates: self.rates,
            link: link.clone(),
            injected: self.injected.clone(),
            log: self.log.clone(),
        });
        let worker = Worker::on_store(store, registry(&self.log), id, LEASE)
            .queues(["sim", crate::queue::DEFAULT_QUEUE])
            .concurrency(3)
            .poll_interval(Duration::from_millis(100));
        let task = tokio::spawn(worker.run(std::future::pending()));
        Running { link, task }
    }
}

/// Run one seed to its end and check it.
pub(super) async fn simulate(seed: u64) -> Report {
    let mut rng = Rng::new(seed);
    let ids = {
        let counter = Arc::new(Mutex::new(0u64));
        let high = u128::from(seed) << 64;
        Arc::new(move || {
            let mut n = counter.lock().unwrap();
            *n += 1;
            Uuid::from_u128(high | u128::from(*n))
        })
    };
    let rates = FaultRates {
        fail_before: rng.unit() * 0.03,
        lose_reply: rng.unit() * 0.03,
        delay: rng.unit() * 0.1,
        max_delay: Duration::from_millis(rng.between(10, 500)),
    };
    tracing::info!(?rates, "simulation faults");
    let world = World {
        // A fixed epoch: nothing in a run depends on when it runs.
        memory: Arc::new(
            MemoryStore::new()
                .with_ids(ids)
                .with_base_ms(1_800_000_000_000),
        ),
        rng: Arc::new(Mutex::new(Rng::new(seed ^ 0xD00D_F00D))),
        rates,
        log: Arc::new(Log::default()),
        injected: Arc::new(Mutex::new(0)),
    };
    let began = Instant::now();
    let client = Client::on_store(world.memory.clone());
    client
        .declare_queue(&Queue::new("sim").concurrency(6))
        .await
        .expect("declare the queue");
    let work = workload();
    let mut ids = BTreeMap::new();
    for (key, name, input, _) in &work {
        let handle = client
            .enqueue(
                name,
                input,
                EnqueueOptions::new().key(key.as_str()).queue("sim"),
            )
            .await
            .expect("enqueue");
        ids.insert(key.clone(), handle.id());
    }
    let mut report = Report {
        seed,
        workflows: work.len(),
        ..Report::default()
    };
    let mut executors: Vec<Running> = (0..EXECUTORS).map(|_| world.start_executor()).collect();
    let mut sent = false;
    let send_at = began + Duration::from_millis(rng.between(0, 20_000));
    while began.elapsed() < FAULTS_FOR {
        tokio::time::sleep(Duration::from_millis(rng.between(200, 2_000))).await;
        if !sent && Instant::now() >= send_at {
            let mailbox = ids["mailbox-0"];
            // Keyed: a lost reply and a retry store it once.
            sent = client
                .send_with_key(mailbox, "go", "go-1", &7u64)
                .await
                .is_ok();
        }
        let victim = usize::try_from(rng.between(0, executors.len() as u64)).unwrap_or(0);
        match rng.between(0, 10) {
            0 | 1 => {
                executors[victim].link.crash();
                executors[victim].task.abort();
                report.crashes += 1;
                tokio::time::sleep(Duration::from_millis(rng.between(100, 3_000))).await;
                executors[victim] = world.start_executor();
            }
            2 | 3 => {
                let stall = rng.between(LEASE.as_millis() as u64 / 2, 3 * LEASE.as_millis() as u64);
                executors[victim]
                    .link
                    .stall_until(Instant::now() + Duration::from_millis(stall));
                report.stalls += 1;
            }
            4 => {
                let step = rng.between(100, 3 * LEASE.as_millis() as u64);
                world.memory.step_clock(i64::try_from(step).unwrap_or(0));
                report.clock_steps += 1;
            }
            _ => {}
        }
        // A worker that ended (its start failed on a fault) is replaced.
        for running in &mut executors {
            if running.task.is_finished() {
                *running = world.start_executor();
            }
        }
    }
    // The faults stop: the network is healthy again, the run must settle.
    if !sent {
        sent = client
            .send_with_key(ids["mailbox-0"], "go", "go-1", &7u64)
            .await
            .is_ok();
    }
    // The survivors carry on (work they own but lost track of must come
    // back without anyone dying); the dead are replaced by healthy ones.
    let settle_by = Instant::now() + SETTLE_WITHIN;
    for running in &mut executors {
        if running.task.is_finished() {
            *running = world.start_executor();
        }
        running.link.heal();
    }
    while !sent {
        sent = client
            .send_with_key(ids["mailbox-0"], "go", "go-1", &7u64)
            .await
            .is_ok();
    }
    loop {
        let mut unfinished = Vec::new();
        for (key, id) in &ids {
            match client.workflow(*id).await {
                Ok(s) if s.status == Status::Completed => {}
                _ => unfinished.push(key.clone()),
            }
        }
        if unfinished.is_empty() || Instant::now() >= settle_by {
            report.unfinished = unfinished;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (key, _, _, expected) in &work {
        let out: Option<u64> = match client.workflow(ids[key]).await {
            Ok(s) => s.output.and_then(|o| serde_json::from_value(o).ok()),
            Err(_) => None,
        };
        if out.is_some() && out != Some(*expected) {
            report
                .wrong_output
                .push(format!("{key}: {out:?}, expected {expected}"));
        }
    }
    for running in executors {
        running.task.abort();
    }
    report.virtual_ms = began.elapsed().as_millis();
    report.injected = *world.injected.lock().unwrap();
    check(&world.log.events(), &mut report);
    report
}

/// The guarantees, from the log: no completed step's body starts again,
/// no step is committed twice, no step body runs twice at once in one
/// executor. Also counts the step runs and hashes the log.
fn check(events: &[Event], report: &mut Report) {
    use std::hash::{Hash, Hasher};
    let mut committed: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    let mut running: BTreeMap<(Uuid, Uuid, i32), u32> = BTreeMap::new();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (seq, event) in events.iter().enumerate() {
        event.hash(&mut hasher);
        match event {
            Event::Start {
                executor,
                workflow,
                position,
            } => {
                report.step_runs += 1;
                if committed.contains_key(&(*workflow, *position)) {
                    report.violations.push(format!(
                        "#{seq}: step {position} of {workflow} started again after its commit"
                    ));
                }
                let now = running
                    .entry((*executor, *workflow, *position))
                    .or_insert(0);
                *now += 1;
                if *now > 1 {
                    report.violations.push(format!(
                        "#{seq}: step {position} of {workflow} runs twice at once in {executor}"
                    ));
                }
            }
            Event::End {
                executor,
                workflow,
                position,
            } => {
                if let Some(now) = running.get_mut(&(*executor, *workflow, *position)) {
                    *now = now.saturating_sub(1);
                }
            }
            Event::Committed { workflow, position } => {
                let times = committed.entry((*workflow, *position)).or_insert(0);
                *times += 1;
                if *times > 1 {
                    report.violations.push(format!(
                        "#{seq}: step {position} of {workflow} committed twice"
                    ));
                }
            }
        }
    }
    report.steps = committed.len();
    report.log_hash = hasher.finish();
}

/// Run `seed` on a fresh single-threaded runtime with a paused clock.
pub(super) fn run_seed(seed: u64) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    chance::seed(Some(seed));
    // `SIM_LOG=debug` (any filter) shows what the library logs.
    let _log = std::env::var("SIM_LOG").ok().map(|filter| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .finish();
        tracing::subscriber::set_default(subscriber)
    });
    let report = runtime.block_on(simulate(seed));
    chance::seed(None);
    report
}

/// Seeds `from..to`, failing with every failing seed and its report.
fn run_seeds(from: u64, count: u64) {
    let count = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(count, |n| n / 4);
    let mut failed = Vec::new();
    let (mut runs, mut steps, mut injected) = (0, 0, 0);
    for seed in from * count..(from + 1) * count {
        let report = run_seed(seed);
        runs += report.step_runs;
        steps += report.steps;
        injected += report.injected;
        if !report.ok() {
            failed.push(format!(
                "seed {} ({} workflows): {report:#?}",
                report.seed, report.workflows
            ));
        }
    }
    println!(
        "{count} seeds from {}: {steps} steps committed, {runs} step runs, {injected} faults injected",
        from * count
    );
    assert!(failed.is_empty(), "failing seeds:\n{}", failed.join("\n"));
}

/// Seeds per `seeds_*` test in CI (four tests).
const SEEDS_PER_TEST: u64 = 500;

#[test]
fn seeds_0() {
    run_seeds(0, SEEDS_PER_TEST);
}

#[test]
fn seeds_1() {
    run_seeds(1, SEEDS_PER_TEST);
}

#[test]
fn seeds_2() {
    run_seeds(2, SEEDS_PER_TEST);
}

#[test]
fn seeds_3() {
    run_seeds(3, SEEDS_PER_TEST);
}

/// `SIM_SEED=n`: run that seed alone and print its report (default 0).
#[test]
fn one_seed() {
    let seed = std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let report = run_seed(seed);
    println!("{report:#?}");
    assert!(report.ok(), "seed {seed} failed");
}

/// A seed replays the same run: the same log, event for event.
#[test]
fn same_seed_same_run() {
    for seed in [3, 77, 1234] {
        let (a, b) = (run_seed(seed), run_seed(seed));
        assert_eq!(a.log_hash, b.log_hash, "seed {seed} did not replay");
        assert_eq!(a.step_runs, b.step_runs);
    }
}
