//! The verdict of a run, computed offline from what the run left behind:
//! the database (the workflows and their journals through durable's public
//! read API, `fault_effect` rows through raw SQL) and the append-only
//! side-effect log. Never from a process's memory.
//!
//! # Rules
//! - **Lost**: a workflow not COMPLETED with its checksum by the end.
//! - **Double commit**: more than one `fault_effect` row for one
//!   (workflow, step): a transaction step's writes committed twice.
//!   **Torn**: a transaction step COMPLETED without its row, or a row for
//!   a step that is not COMPLETED (writes and checkpoint not atomic).
//! - **Completed step re-run**: a run of a step's body that started after
//!   the step's checkpoint was written. The checkpoint's `finished_at_ms`
//!   is the database clock (`statement_timestamp()`) of the statement that
//!   wrote it, so the step was not durably done before it, and a body that
//!   started later started after the step was done; the server runs on this
//!   host, so its clock is the log's clock (up to [`CLOCK_SLACK_MS`] of
//!   rounding). The committing run itself is
//!   known exactly (its output records its pid and start time) and is never
//!   counted. This is stricter than "a start after some run's end": a run
//!   that ended but was killed before its checkpoint is rightly run again.
//!   A re-run is *excused* (counted apart) when its process was stopped
//!   (SIGSTOP, from outside or at a fault point) at some moment between
//!   the checkpoint and the re-run's start: a process frozen between its
//!   check and its body cannot be kept from running the body when it
//!   thaws, only from committing it. Nothing else is excused: a process
//!   whose connections were terminated or black-holed runs on, and must
//!   not start a body it can no longer prove it owns.
//! - **Overlap**: two `start`s of one step in one process with no `end`
//!   (or `drop`: the body's future was cancelled) between: the process ran
//!   a step twice at once.
//! - **Re-executions**: body runs minus steps that ran. Bounded by the
//!   runs in flight during the faults: runs (of the faulted process, or of
//!   every process for a server fault) that started before the fault ended
//!   and whose step was not yet checkpointed when it began.
//! - **Stall**: the longest gap between consecutive `end` lines of the
//!   whole fleet while faults ran.
//! - **Recovery**: from a restarted server accepting connections to the
//!   first step checkpoint written after it (progress, not just a query).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use durable::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use durable::{Client, Status, Uuid};

use crate::workload::{self, LogLine, Mark, StepOutput};

/// How far (ms) a checkpoint's database time may lag the log's clock: the
/// database's millisecond is truncated from a float on SQLite
/// (`julianday`), so a checkpoint written in the millisecond of its run's
/// `end` line can read one less.
pub const CLOCK_SLACK_MS: i64 = 2;

/// What kind of fault was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// `pg_ctl stop -m immediate` and a start.
    ServerRestart,
    /// `pg_terminate_backend` of one worker backend.
    BackendTerminated,
    /// SIGSTOP of a worker process from outside, later SIGCONT.
    ProcessStopped,
    /// A worker stopped itself at a fault point, later SIGCONT.
    StoppedAtPoint,
    /// The server backends of one worker stopped (a black-holed connection).
    BlackHole,
    /// Another process held SQLite's write lock.
    LockHeld,
    /// `kill -9` of a worker.
    Killed,
    /// A worker aborted itself at a fault point.
    AbortedAtPoint,
}

impl FaultKind {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::ServerRestart => "server restarts",
            FaultKind::BackendTerminated => "backends terminated",
            FaultKind::ProcessStopped => "workers stopped",
            FaultKind::StoppedAtPoint => "stops in claim",
            FaultKind::BlackHole => "black holes",
            FaultKind::LockHeld => "lock holds",
            FaultKind::Killed => "kill -9",
            FaultKind::AbortedAtPoint => "aborts at points",
        }
    }

    /// Whether the process was frozen (and so may run a body it had
    /// checked before it froze, after it thaws). A black-holed process is
    /// not: its connections are silent, but it runs, and it must notice
    /// that it can no longer prove its lease before it starts a body.
    fn freezes_process(self) -> bool {
        matches!(self, FaultKind::ProcessStopped | FaultKind::StoppedAtPoint)
    }
}

/// One injected fault: what, on which worker process (`None`: all of
/// them, as a server fault), and when (Unix ms; an instant fault has
/// `from_ms == to_ms`).
#[derive(Debug, Clone)]
pub struct Fault {
    /// What was done.
    pub kind: FaultKind,
    /// The worker process it hit, if one.
    pub pid: Option<u32>,
    /// When it began.
    pub from_ms: i64,
    /// When it ended (the process continued, the server accepted
    /// connections, the lock was released).
    pub to_ms: i64,
}

/// One workflow the driver enqueued.
#[derive(Debug, Clone)]
pub struct Enqueued {
    /// Its number (input `n`).
    pub n: u64,
    /// Its id.
    pub id: Uuid,
    /// Its step count.
    pub steps: u32,
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The scenario and backend.
    pub scenario: String,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, usize>,
    /// Workflows enqueued, and COMPLETED with the right checksum.
    pub enqueued: usize,
    /// Workflows COMPLETED with the right checksum.
    pub completed: usize,
    /// Keys (and status) of the workflows not completed correctly.
    pub lost: Vec<String>,
    /// Steps that ran (at least one body run).
    pub steps: usize,
    /// Body runs (`start` lines).
    pub runs: usize,
    /// Runs minus steps.
    pub re_executions: usize,
    /// Runs in flight during the faults (the bound on re-executions).
    pub in_flight_at_faults: usize,
    /// `(key, step, rows)` with more than one `fault_effect` row.
    pub double_commits: Vec<String>,
    /// Transaction steps whose writes and checkpoint disagree.
    pub torn: Vec<String>,
    /// Completed steps whose body started again, not excused.
    pub completed_reruns: Vec<String>,
    /// Such re-runs by a process frozen in between.
    pub excused_reruns: usize,
    /// Runs of one step overlapping inside one process.
    pub overlaps: Vec<String>,
    /// Checkpoints whose committing run is not in the log as it should be.
    pub inconsistencies: Vec<String>,
    /// Longest gap between consecutive `end` lines while faults ran (ms).
    pub max_stall_ms: i64,
    /// Per server restart: accepting connections to the next checkpoint (ms).
    pub recoveries_ms: Vec<i64>,
    /// Worker processes that ended unexpectedly or failed their shutdown.
    pub worker_failures: Vec<String>,
    /// Scenario-specific figures, by name.
    pub figures: BTreeMap<String, i64>,
    /// Where the run's files are (log, workers' stderr).
    pub dir: String,
    /// How long the run took (ms).
    pub duration_ms: i64,
    /// The seed of the fault schedule.
    pub seed: u64,
}

/// One run of a step's body, from the log.
#[derive(Debug, Clone)]
pub struct Run {
    /// The workflow key.
    pub key: String,
    /// The step index.
    pub step: u32,
    /// The process.
    pub pid: u32,
    /// `start` time.
    pub start_ms: i64,
    /// `end` time, if it got there.
    pub end_ms: Option<i64>,
}

/// A step's checkpoint as the read API shows it.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    /// When it was written (database clock).
    pub at_ms: i64,
    /// The committing run's output.
    pub output: StepOutput,
}

/// Everything read back after a run, with the derived rules as methods.
#[derive(Debug, Default)]
pub struct Evidence {
    /// Body runs in log order.
    pub runs: Vec<Run>,
    /// `end` times, sorted, with their pids.
    pub ends: Vec<(i64, u32)>,
    /// Checkpoints of COMPLETED steps by (key, step).
    pub checkpoints: HashMap<(String, u32), Checkpoint>,
    /// Runs of one step in one process that overlapped.
    pub overlaps: Vec<String>,
    /// When each finished workflow finished (database clock), by key.
    pub finished: HashMap<String, i64>,
}

impl Evidence {
    /// Pair the log's lines into runs and collect the checkpoints of
    /// `trees` (key, and its steps' keys, finish times and outputs).
    pub fn new(lines: &[LogLine], checkpoints: HashMap<(String, u32), Checkpoint>) -> Evidence {
        let mut runs: Vec<Run> = Vec::new();
        // Open runs per (key, step, pid): indexes into `runs`.
        let mut open: HashMap<(String, u32, u32), Vec<usize>> = HashMap::new();
        let mut overlaps = Vec::new();
        let mut ends = Vec::new();
        for line in lines {
            let id = (line.key.clone(), line.step, line.pid);
            match line.mark {
                Mark::Start => {
                    let list = open.entry(id).or_default();
                    if let Some(&other) = list.first() {
                        overlaps.push(format!(
                            "{} step {} in pid {}: started at {} while its run of {} was open",
                            line.key, line.step, line.pid, line.ms, runs[other].start_ms
                        ));
                    }
                    list.push(runs.len());
                    runs.push(Run {
                        key: line.key.clone(),
                        step: line.step,
                        pid: line.pid,
                        start_ms: line.ms,
                        end_ms: None,
                    });
                }
                Mark::End | Mark::Dropped => {
                    if line.mark == Mark::End {
                        ends.push((line.ms, line.pid));
                    }
                    if let Some(list) = open.get_mut(&id)
                        && !list.is_empty()
                    {
                        let i = list.remove(0);
                        if line.mark == Mark::End {
                            runs[i].end_ms = Some(line.ms);
                        }
                    }
                }
            }
        }
        ends.sort_unstable();
        Evidence {
            runs,
            ends,
            checkpoints,
            overlaps,
            finished: HashMap::new(),
        }
    }

    /// The checkpoint of a run's step, if the step completed.
    pub fn checkpoint(&self, run: &Run) -> Option<&Checkpoint> {
        self.checkpoints.get(&(run.key.clone(), run.step))
    }

    /// Whether `run` is the one whose output was checkpointed.
    pub fn is_committer(&self, run: &Run) -> bool {
        self.checkpoint(run)
            .is_some_and(|c| c.output.pid == run.pid && c.output.started_ms == run.start_ms)
    }

    /// Runs in flight during `fault`: of its process (or any, for a server
    /// fault), started before it ended, their step not checkpointed before
    /// it began.
    pub fn in_flight(&self, fault: &Fault) -> usize {
        self.runs
            .iter()
            .filter(|r| fault.pid.is_none_or(|p| p == r.pid))
            .filter(|r| r.start_ms <= fault.to_ms)
            .filter(|r| self.checkpoint(r).is_none_or(|c| c.at_ms >= fault.from_ms))
            .count()
    }

    /// The longest gap (ms) between consecutive `end` lines of processes
    /// `pids` accepts, within `from..=to` (the window's edges count as
    /// ends, so a silence at its start or end counts too).
    pub fn max_gap(&self, from: i64, to: i64, pids: impl Fn(u32) -> bool) -> i64 {
        let mut last = from;
        let mut max = 0;
        for &(ms, pid) in &self.ends {
            if ms < from || !pids(pid) {
                continue;
            }
            if ms > to {
                break;
            }
            max = max.max(ms - last);
            last = ms;
        }
        max.max(to - last)
    }

    /// The first checkpoint written after `ms` by a run of a process other
    /// than `not_pid`, among the workflows `keys` (all if `None`).
    pub fn first_checkpoint_after(
        &self,
        ms: i64,
        not_pid: Option<u32>,
        keys: Option<&[String]>,
    ) -> Option<i64> {
        self.checkpoints
            .iter()
            .filter(|((key, _), _)| keys.is_none_or(|k| k.contains(key)))
            .filter(|(_, c)| c.at_ms > ms && not_pid.is_none_or(|p| c.output.pid != p))
            .map(|(_, c)| c.at_ms)
            .min()
    }
}

/// Read the checkpoints and statuses of every enqueued workflow, the
/// `fault_effect` rows and the log, and judge the run. Scenario-specific
/// figures are added by the caller from the returned [`Evidence`].
///
/// # Panics
/// If the database cannot be read or the log is malformed.
pub async fn judge(
    db: &DatabaseConnection,
    log: &Path,
    enqueued: &[Enqueued],
    faults: &[Fault],
    restarts: &[i64],
) -> (Report, Evidence) {
    let client = Client::new(db);
    let mut report = Report {
        enqueued: enqueued.len(),
        ..Report::default()
    };
    let mut checkpoints = HashMap::new();
    let mut finished = HashMap::new();
    let mut completed_tx_steps = Vec::new();
    for w in enqueued {
        let key = workload::key(w.n);
        let tree = client.tree(w.id).await.expect("read a workflow tree");
        let summary = &tree.workflow;
        if let Some(at) = summary.finished_at_ms {
            finished.insert(key.clone(), at);
        }
        let expected = serde_json::json!(workload::checksum(w.n, w.steps));
        if summary.status == Status::Completed && summary.output.as_ref() == Some(&expected) {
            report.completed += 1;
        } else {
            report.lost.push(format!(
                "{key}: {} output {:?} error {:?}",
                summary.status, summary.output, summary.error
            ));
        }
        for step in &tree.steps {
            let Some(j) = (0..w.steps).find(|&j| workload::step_key(j) == step.key) else {
                report
                    .inconsistencies
                    .push(format!("{key}: unexpected journal entry {}", step.key));
                continue;
            };
            if step.status != Status::Completed {
                continue;
            }
            let output = step
                .output
                .clone()
                .and_then(|o| serde_json::from_value::<StepOutput>(o).ok());
            match (output, step.finished_at_ms) {
                (Some(output), Some(at_ms)) => {
                    checkpoints.insert((key.clone(), j), Checkpoint { at_ms, output });
                    if workload::is_transaction(j) {
                        completed_tx_steps.push((key.clone(), j));
                    }
                }
                _ => report.inconsistencies.push(format!(
                    "{key} {}: COMPLETED without a readable output or finish time",
                    step.key
                )),
            }
        }
    }

    // Transaction steps' writes: exactly one row each, and none for a step
    // that did not complete.
    let stmt = Statement::from_string(
        db.get_database_backend(),
        "SELECT workflow_key, step, COUNT(*) FROM fault_effect GROUP BY workflow_key, step",
    );
    let rows = db.query_all_raw(stmt).await.expect("read fault_effect");
    let mut effects: HashMap<(String, u32), i64> = HashMap::new();
    for row in &rows {
        let key: String = row.try_get_by_index(0).expect("workflow_key");
        let step: i32 = row.try_get_by_index(1).expect("step");
        let count: i64 = row.try_get_by_index(2).expect("count");
        effects.insert((key, step as u32), count);
    }
    for ((key, step), count) in &effects {
        if *count > 1 {
            report
                .double_commits
                .push(format!("{key} step {step}: {count} rows"));
        }
        if !checkpoints.contains_key(&(key.clone(), *step)) {
            report.torn.push(format!(
                "{key} step {step}: {count} row(s), step not COMPLETED"
            ));
        }
    }
    for (key, step) in &completed_tx_steps {
        if !effects.contains_key(&(key.clone(), *step)) {
            report
                .torn
                .push(format!("{key} step {step}: COMPLETED without its row"));
        }
    }

    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines = workload::parse_log(&text).unwrap_or_else(|e| panic!("{e} ({})", log.display()));
    let mut ev = Evidence::new(&lines, checkpoints);
    ev.finished = finished;
    report.overlaps = ev.overlaps.clone();

    // Committers are in the log, whole, before their checkpoint.
    for ((key, step), c) in &ev.checkpoints {
        let run = ev.runs.iter().find(|r| {
            &r.key == key
                && r.step == *step
                && r.pid == c.output.pid
                && r.start_ms == c.output.started_ms
        });
        match run {
            Some(Run {
                end_ms: Some(end), ..
            }) if *end <= c.at_ms + CLOCK_SLACK_MS => {}
            other => report.inconsistencies.push(format!(
                "{key} step {step}: checkpoint at {} by pid {} started {}, log run {other:?}",
                c.at_ms, c.output.pid, c.output.started_ms
            )),
        }
    }

    // Runs that started after their step was checkpointed.
    for run in &ev.runs {
        let Some(c) = ev.checkpoint(run) else {
            continue;
        };
        if ev.is_committer(run) || run.start_ms <= c.at_ms + CLOCK_SLACK_MS {
            continue;
        }
        let frozen = faults.iter().any(|f| {
            f.kind.freezes_process()
                && f.pid == Some(run.pid)
                && f.to_ms >= c.at_ms
                && f.from_ms <= run.start_ms
        });
        if frozen {
            report.excused_reruns += 1;
        } else {
            report.completed_reruns.push(format!(
                "{} step {} re-ran in pid {} at {} ({} ms after its checkpoint at {} by pid {})",
                run.key,
                run.step,
                run.pid,
                run.start_ms,
                run.start_ms - c.at_ms,
                c.at_ms,
                c.output.pid
            ));
        }
    }

    let mut steps: Vec<(&str, u32)> = ev.runs.iter().map(|r| (r.key.as_str(), r.step)).collect();
    steps.sort_unstable();
    steps.dedup();
    report.steps = steps.len();
    report.runs = ev.runs.len();
    report.re_executions = report.runs - report.steps;
    report.in_flight_at_faults = faults.iter().map(|f| ev.in_flight(f)).sum();
    for f in faults {
        *report.faults.entry(f.kind.name()).or_insert(0) += 1;
    }
    if let (Some(first), Some(last)) = (
        faults.iter().map(|f| f.from_ms).min(),
        faults.iter().map(|f| f.to_ms).max(),
    ) {
        // While faults ran: from the first to a lease's worth after the
        // last ended, or the last `end` if the work ran out before that.
        let to = ev.ends.last().map_or(last, |&(ms, _)| ms.min(last + 3000));
        report.max_stall_ms = ev.max_gap(first, to.max(first), |_| true);
    }
    report.recoveries_ms = restarts
        .iter()
        .map(|&ready| {
            ev.first_checkpoint_after(ready, None, None)
                .map_or(-1, |at| at - ready)
        })
        .collect();
    (report, ev)
}

impl Report {
    /// The invariants every scenario must keep, as one list of failures
    /// (empty when all hold).
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        let mut list = |what: &str, items: &[String]| {
            if !items.is_empty() {
                v.push(format!(
                    "{} {what}: {:?}",
                    items.len(),
                    &items[..items.len().min(5)]
                ));
            }
        };
        list("lost workflows", &self.lost);
        list("double commits", &self.double_commits);
        list("torn transaction steps", &self.torn);
        list("completed steps re-run", &self.completed_reruns);
        list("overlapping runs in one process", &self.overlaps);
        list("log/checkpoint inconsistencies", &self.inconsistencies);
        list("worker failures", &self.worker_failures);
        v
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        writeln!(
            f,
            "== {} (seed {}, {} ms, files in {})",
            self.scenario, self.seed, self.duration_ms, self.dir
        )?;
        writeln!(f, "   faults: {}", faults.join(", "))?;
        writeln!(
            f,
            "   workflows: {} enqueued, {} completed, {} lost",
            self.enqueued,
            self.completed,
            self.lost.len()
        )?;
        writeln!(
            f,
            "   steps {}, body runs {}, re-executions {} (runs in flight at the faults: {})",
            self.steps, self.runs, self.re_executions, self.in_flight_at_faults
        )?;
        writeln!(
            f,
            "   double commits {}, torn {}, completed steps re-run {} (+{} by frozen processes), \
             overlaps in one process {}, inconsistencies {}",
            self.double_commits.len(),
            self.torn.len(),
            self.completed_reruns.len(),
            self.excused_reruns,
            self.overlaps.len(),
            self.inconsistencies.len()
        )?;
        let (p50, max) = p50_max(&self.recoveries_ms);
        writeln!(
            f,
            "   max stall {} ms; recovery after restarts: {:?} (p50 {p50}, max {max})",
            self.max_stall_ms, self.recoveries_ms
        )?;
        for (name, value) in &self.figures {
            writeln!(f, "   {name}: {value}")?;
        }
        for failure in self.violations() {
            writeln!(f, "   VIOLATION {failure}")?;
        }
        Ok(())
    }
}

/// Median and maximum (-1 for none).
pub fn p50_max(v: &[i64]) -> (i64, i64) {
    let mut v = v.to_vec();
    v.sort_unstable();
    (
        v.get(v.len() / 2).copied().unwrap_or(-1),
        v.last().copied().unwrap_or(-1),
    )
}
