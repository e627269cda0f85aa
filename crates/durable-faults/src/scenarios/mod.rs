//! The fault classes, one function each, in a short mode (CI) and a long
//! one (the figures of `RELIABILITY.md`), and the harness they share: a
//! database of their own, a fleet of worker processes, a feeder that
//! enqueues `chain` workflows at a steady rate while the faults run (so
//! every fault meets work in flight), and the ledger's verdict at the end.

mod postgres;
mod process;
mod sqlite;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use durable::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use durable::{Client, EnqueueOptions, Queue};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::fleet::{self, Fleet};
use crate::ledger::{self, Enqueued, Evidence, Fault, FaultKind, Report};
use crate::workload::{self, ChainInput, Rng, now_ms};

pub use postgres::{backend_termination, black_hole, server_crash_restart};
pub use process::{kill9_at_points, kill9_random, worker_stop_in_claim, worker_stop_past_lease};
pub use sqlite::sqlite_lock_holder;

/// How hard to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Within the CI budget: a few faults of each class.
    Short,
    /// The long run whose figures go into `RELIABILITY.md`.
    Long,
}

/// Which database the workers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A server of the suite's own ([`Cluster`]).
    Postgres,
    /// A file in the run's directory.
    Sqlite,
}

/// What every scenario needs: the mode, the worker binary, the seed of
/// the fault schedule.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Short or long.
    pub mode: Mode,
    /// The `fault-worker` binary.
    pub worker_bin: PathBuf,
    /// Seed of the fault schedule (`FAULT_SEED` to replay one; timings
    /// still vary from run to run).
    pub seed: u64,
}

impl Suite {
    /// A suite in `mode` running `worker_bin`, seeded from `FAULT_SEED` or
    /// the clock.
    pub fn new(mode: Mode, worker_bin: PathBuf) -> Suite {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| now_ms().unsigned_abs());
        Suite {
            mode,
            worker_bin,
            seed,
        }
    }

    /// `short` in short mode, `long` in long mode.
    fn pick<T>(&self, short: T, long: T) -> T {
        match self.mode {
            Mode::Short => short,
            Mode::Long => long,
        }
    }
}

/// Every worker's lease (ms) in both modes: short enough that stops of two
/// leases fit the CI budget.
pub const LEASE_MS: i64 = 3000;
/// Steps per workflow.
const STEPS: u32 = 6;

/// The names of the scenarios, as `--only` takes them.
pub const NAMES: [&str; 9] = [
    "server_crash_restart",
    "backend_termination",
    "worker_stop_past_lease",
    "worker_stop_in_claim",
    "black_hole",
    "sqlite_lock_holder",
    "kill9_random_postgres",
    "kill9_random_sqlite",
    "kill9_at_points",
];

/// Run the scenario `name` (one of [`NAMES`]).
///
/// # Panics
/// For an unknown name.
pub async fn run(suite: &Suite, name: &str) -> Report {
    match name {
        "server_crash_restart" => server_crash_restart(suite).await,
        "backend_termination" => backend_termination(suite).await,
        "worker_stop_past_lease" => worker_stop_past_lease(suite).await,
        "worker_stop_in_claim" => worker_stop_in_claim(suite).await,
        "black_hole" => black_hole(suite).await,
        "sqlite_lock_holder" => sqlite_lock_holder(suite).await,
        "kill9_random_postgres" => kill9_random(suite, Backend::Postgres).await,
        "kill9_random_sqlite" => kill9_random(suite, Backend::Sqlite).await,
        "kill9_at_points" => kill9_at_points(suite).await,
        other => panic!("unknown scenario {other:?}; one of {NAMES:?}"),
    }
}

/// One scenario's database, fleet, feeder and fault record.
pub(crate) struct Harness {
    name: String,
    seed: u64,
    backend: Backend,
    worker_bin: PathBuf,
    /// The server (PostgreSQL only); dropped last, after the verdict.
    pub(crate) cluster: Option<Cluster>,
    url: String,
    /// The driver's own pool.
    db: DatabaseConnection,
    dir: PathBuf,
    pub(crate) fleet: Fleet,
    pub(crate) faults: Vec<Fault>,
    pub(crate) rng: Rng,
    feeder: Option<JoinHandle<Vec<Enqueued>>>,
    failures: Vec<String>,
    started: Instant,
    /// When faults may begin: work is flowing (Unix ms).
    pub(crate) flowing_ms: i64,
    /// Restart (and record as a fault) a worker that aborted at a fault
    /// point, instead of calling it a failure.
    pub(crate) restart_aborted: bool,
    last_check_ms: i64,
}

impl Harness {
    /// A fresh database with the durable schema, the queue and the
    /// `fault_effect` table; an empty fleet.
    pub(crate) async fn new(suite: &Suite, name: &str, backend: Backend) -> Harness {
        let dir = std::env::temp_dir().join(format!(
            "durable-faults-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("create the run directory");
        let (cluster, url) = match backend {
            Backend::Postgres => {
                let cluster = Cluster::start().await;
                cluster.create_database("faults").await;
                let url = cluster.url("faults", None);
                (Some(cluster), url)
            }
            Backend::Sqlite => (
                None,
                format!("sqlite://{}", dir.join("faults.db").display()),
            ),
        };
        let db = durable::connect(&url).await.expect("connect");
        durable::init(&db).await.expect("create the durable schema");
        Client::new(&db)
            .declare_queue(&Queue::new(workload::QUEUE).concurrency(workload::QUEUE_CONCURRENCY))
            .await
            .expect("declare the queue");
        db.execute_unprepared(workload::EFFECT_TABLE_DDL)
            .await
            .expect("create fault_effect");
        let env = vec![
            ("LEASE_MS".to_string(), LEASE_MS.to_string()),
            ("POLL_MS".to_string(), "50".to_string()),
            ("WORKER_CONCURRENCY".to_string(), "16".to_string()),
            ("STEP_MS".to_string(), "5-20".to_string()),
            ("GRACE_MS".to_string(), "5000".to_string()),
        ];
        let fleet = Fleet::new(suite.worker_bin.clone(), &dir, env);
        let label = match backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        };
        Harness {
            name: format!("{name} [{label}]"),
            seed: suite.seed,
            backend,
            worker_bin: suite.worker_bin.clone(),
            cluster,
            url,
            db,
            dir,
            fleet,
            faults: Vec::new(),
            rng: Rng::new(suite.seed),
            feeder: None,
            failures: Vec::new(),
            started: Instant::now(),
            flowing_ms: 0,
            restart_aborted: false,
            last_check_ms: now_ms(),
        }
    }

    /// The URL a worker in `slot` connects with: on PostgreSQL it names
    /// the slot as its `application_name`, so its backends can be found.
    pub(crate) fn worker_url(&self, slot: usize) -> String {
        match (self.backend, &self.cluster) {
            (Backend::Postgres, Some(c)) => c.url("faults", Some(&fleet::application_name(slot))),
            _ => self.url.clone(),
        }
    }

    /// The `fault-worker` binary (for helper processes).
    pub(crate) fn worker_bin(&self) -> &std::path::Path {
        &self.worker_bin
    }

    /// The database URL (for helper processes).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Start a worker in a new slot with `extra` environment; its slot.
    pub(crate) fn add_worker(&mut self, extra: &[(&str, String)]) -> usize {
        let slot = self.fleet.len();
        let mut env = vec![("DATABASE_URL".to_string(), self.worker_url(slot))];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.fleet.add(env)
    }

    /// Enqueue `workflows` chains at a steady rate over `over`, in a task
    /// of its own that retries through faults (the keys make retries
    /// idempotent); then wait until work is flowing (a step ended).
    pub(crate) async fn feed(&mut self, workflows: u64, over: Duration) {
        let db = self.db.clone();
        self.feeder = Some(tokio::spawn(async move {
            let client = Client::new(&db);
            let started = Instant::now();
            let mut out = Vec::new();
            for n in 0..workflows {
                let due = over.mul_f64(n as f64 / workflows as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
                let input = ChainInput { n, steps: STEPS };
                let id = retry("enqueue", || {
                    client.enqueue(
                        workload::WORKFLOW,
                        &input,
                        EnqueueOptions::new()
                            .key(workload::key(n))
                            .queue(workload::QUEUE),
                    )
                })
                .await
                .id();
                out.push(Enqueued {
                    n,
                    id,
                    steps: STEPS,
                });
            }
            out
        }));
        let started = Instant::now();
        while !self.log_has_end() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{}: no step ended within 60 s of the start; see {}",
                self.name,
                self.fleet.stderr_path().display()
            );
            self.check_workers();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.flowing_ms = now_ms();
    }

    /// Wait (at most 5 s) until process `pid` has a step body running, by
    /// the tail of the log, so that a fault aimed at it meets work in
    /// flight; whether it did.
    pub(crate) async fn wait_busy(&mut self, pid: u32) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if self.busy(pid) {
                return true;
            }
            self.check_workers();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    }

    /// Whether process `pid` runs a step body now, by the log's tail.
    pub(crate) fn busy(&self, pid: u32) -> bool {
        open_runs(&self.fleet.log_path(), pid) > 0
    }

    fn log_has_end(&self) -> bool {
        std::fs::read_to_string(self.fleet.log_path())
            .is_ok_and(|t| t.contains("\nend ") || t.starts_with("end "))
    }

    /// Record a fault.
    pub(crate) fn record(&mut self, kind: FaultKind, pid: Option<u32>, from_ms: i64, to_ms: i64) {
        self.faults.push(Fault {
            kind,
            pid,
            from_ms,
            to_ms,
        });
    }

    /// Note workers that ended on their own: a failure, unless
    /// [`Harness::restart_aborted`] is set and it aborted (SIGABRT) at a
    /// fault point, which is recorded and restarted.
    pub(crate) fn check_workers(&mut self) {
        let now = now_ms();
        for exit in self.fleet.reap() {
            if self.restart_aborted && exit.status == "killed by signal 6" {
                self.record(
                    FaultKind::AbortedAtPoint,
                    Some(exit.pid),
                    self.last_check_ms,
                    now,
                );
                self.fleet.start(exit.slot);
                continue;
            }
            self.failures.push(format!(
                "slot {} pid {} ended on its own: {}",
                exit.slot, exit.pid, exit.status
            ));
        }
        self.last_check_ms = now;
    }

    /// Record a failure the ledger cannot see (a worker that ended badly).
    pub(crate) fn failure(&mut self, what: String) {
        self.failures.push(what);
    }

    /// Sleep until `at` after work began flowing, watching the workers.
    pub(crate) async fn sleep_until(&mut self, at: Duration) {
        let due = self.flowing_ms + i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
        while now_ms() < due {
            self.check_workers();
            let left = (due - now_ms()).clamp(0, 50);
            tokio::time::sleep(Duration::from_millis(left as u64)).await;
        }
    }

    /// Wait for the feeder and for every workflow to complete (at most
    /// `limit`), stop the fleet gracefully, and judge the run.
    pub(crate) async fn finish(mut self, limit: Duration) -> (Report, Evidence) {
        let enqueued = self
            .feeder
            .take()
            .expect("feed() before finish()")
            .await
            .expect("the feeder");
        let started = Instant::now();
        loop {
            self.check_workers();
            let done = retry("count completed", || completed(&self.db)).await;
            if done >= enqueued.len() as u64 || started.elapsed() > limit {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.check_workers();
        let shutdown = self.fleet.stop_all(Duration::from_secs(30));
        self.failures.extend(shutdown);
        let restarts = self
            .cluster
            .as_ref()
            .map(|c| c.restarts().to_vec())
            .unwrap_or_default();
        let (mut report, ev) = ledger::judge(
            &self.db,
            &self.fleet.log_path(),
            &enqueued,
            &self.faults,
            &restarts,
        )
        .await;
        report.scenario = self.name.clone();
        report.seed = self.seed;
        report.worker_failures = std::mem::take(&mut self.failures);
        report.duration_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(0);
        report.dir = self.dir.display().to_string();
        self.db.clone().close().await.ok();
        if report.violations().is_empty() && std::env::var_os("FAULT_KEEP").is_none() {
            std::fs::remove_dir_all(&self.dir).ok();
            report.dir = "(removed)".into();
        }
        (report, ev)
    }
}

/// Body runs of `pid` open (started, not ended or dropped) in the last
/// 64 KiB of the log.
fn open_runs(log: &std::path::Path, pid: u32) -> usize {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(log) else {
        return 0;
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let from = len.saturating_sub(64 * 1024);
    if file.seek(SeekFrom::Start(from)).is_err() {
        return 0;
    }
    let mut tail = String::new();
    if file.read_to_string(&mut tail).is_err() {
        return 0;
    }
    let mut open = std::collections::HashMap::<(String, u32), i64>::new();
    // The first line may be cut by the seek; the parse skips it.
    for line in tail
        .lines()
        .filter_map(|l| workload::LogLine::parse(l).ok())
    {
        if line.pid != pid {
            continue;
        }
        let n = open.entry((line.key, line.step)).or_insert(0);
        *n += if line.mark == workload::Mark::Start {
            1
        } else {
            -1
        };
    }
    open.values().filter(|&&n| n > 0).count()
}

/// Roots COMPLETED so far (a progress poll through the documented table;
/// the verdict itself reads the public API).
async fn completed(db: &DatabaseConnection) -> Result<u64, durable::sea_orm::DbErr> {
    let stmt = Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) FROM durable_workflow WHERE parent_id IS NULL AND status = 'COMPLETED'",
    );
    let row = db.query_one_raw(stmt).await?;
    Ok(row.map_or(0, |r| r.try_get_by_index::<i64>(0).unwrap_or(0)) as u64)
}

/// Retry a driver-side database call through faults (a server restarting,
/// SQLite's lock held) for up to two minutes.
async fn retry<T, E: std::fmt::Display, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(err) => {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "{what} kept failing for two minutes: {err}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// How long (ms) the work `pid` had in flight at `from` took to move on.
/// Its work in flight: the workflows not finished at `from` whose latest
/// step run begun by then was its own. For each, the time from `from` to
/// the workflow's next progress by another process (a step checkpoint of
/// another pid's run, or the workflow's finish): a statement the faulted
/// worker had already sent may still land, but that is not its work moving
/// on; a workflow that waited for the fault to end shows as the whole
/// fault. The maximum, and the workflows (-1 and none when it
/// had nothing in flight).
pub(crate) fn move_on_ms(ev: &Evidence, pid: u32, from: i64) -> (i64, Vec<String>) {
    let mut latest: std::collections::HashMap<&str, &ledger::Run> =
        std::collections::HashMap::new();
    for run in ev.runs.iter().filter(|r| r.start_ms <= from) {
        let slot = latest.entry(run.key.as_str()).or_insert(run);
        if run.start_ms >= slot.start_ms {
            *slot = run;
        }
    }
    let mut keys: Vec<String> = latest
        .iter()
        .filter(|(key, run)| run.pid == pid && ev.finished.get(**key).is_none_or(|&f| f > from))
        .map(|(key, _)| key.to_string())
        .collect();
    keys.sort();
    let mut worst = -1;
    for key in &keys {
        let next_step = ev
            .checkpoints
            .iter()
            .filter(|((k, _), c)| k == key && c.at_ms > from && c.output.pid != pid)
            .map(|(_, c)| c.at_ms)
            .min();
        let finish = ev.finished.get(key).copied().filter(|&f| f > from);
        if let Some(at) = [next_step, finish].into_iter().flatten().min() {
            worst = worst.max(at - from);
        }
    }
    (worst, keys)
}

/// Checkpoints of runs process `pid` started before `from` and wrote after
/// `to`: a process that lost its lease during the fault committed anyway.
pub(crate) fn zombie_commits(ev: &Evidence, pid: u32, from: i64, to: i64) -> usize {
    ev.checkpoints
        .values()
        .filter(|c| c.output.pid == pid && c.output.started_ms < from && c.at_ms > to)
        .count()
}
