//! The worker processes: `fault-worker` binaries sharing one environment
//! and one side-effect log, each in a slot (`fault-worker-<slot>` is its
//! PostgreSQL `application_name`) that keeps its number across restarts.
//!
//! Faults on processes: `kill -9`, SIGSTOP / SIGCONT, and spotting a
//! process that stopped itself at a fault point (state `T` in
//! `/proc/<pid>/stat`). Every process is killed when the fleet is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::signal;

/// The `application_name` of the workers in slot `slot`.
pub fn application_name(slot: usize) -> String {
    format!("fault-worker-{slot}")
}

/// The `fault-worker` binary: `FAULT_WORKER_BIN` if set, else next to the
/// running executable (or one directory up, as for test executables in
/// `target/<profile>/deps`).
///
/// # Panics
/// If it cannot be found.
pub fn worker_binary() -> PathBuf {
    if let Ok(path) = std::env::var("FAULT_WORKER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the current executable");
    let mut dir = exe.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        let candidate = d.join("fault-worker");
        if candidate.exists() {
            return candidate;
        }
        dir = d
            .parent()
            .map(Path::to_path_buf)
            .filter(|_| d.ends_with("deps"));
    }
    panic!(
        "fault-worker binary not found next to {}; build it (cargo build -p durable-faults) \
         or set FAULT_WORKER_BIN",
        exe.display()
    );
}

/// One slot's process.
#[derive(Debug)]
pub struct Slot {
    child: Option<Child>,
    /// Environment of this slot only (fault points, the URL with its
    /// `application_name`).
    env: Vec<(String, String)>,
    /// Every pid that ran in this slot.
    pub pids: Vec<u32>,
}

/// A process that ended without being asked to.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Its slot.
    pub slot: usize,
    /// Its pid.
    pub pid: u32,
    /// How it ended.
    pub status: String,
    /// When it was noticed (Unix ms).
    pub at_ms: i64,
}

/// Worker processes sharing one environment.
#[derive(Debug)]
pub struct Fleet {
    bin: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    slots: Vec<Slot>,
}

impl Fleet {
    /// A fleet writing its log and stderr into `dir`, with `env` for every
    /// process (the slot's own environment comes on top).
    pub fn new(bin: PathBuf, dir: &Path, env: Vec<(String, String)>) -> Fleet {
        let mut env = env;
        env.push((
            "SIDE_EFFECT_LOG".into(),
            dir.join("effects.log").display().to_string(),
        ));
        Fleet {
            bin,
            dir: dir.to_path_buf(),
            env,
            slots: Vec::new(),
        }
    }

    /// The side-effect log every worker appends to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("effects.log")
    }

    /// The file the workers' stderr goes to.
    pub fn stderr_path(&self) -> PathBuf {
        self.dir.join("workers.stderr")
    }

    /// Add a slot with its own environment and start its process; its index.
    pub fn add(&mut self, env: Vec<(String, String)>) -> usize {
        self.slots.push(Slot {
            child: None,
            env,
            pids: Vec::new(),
        });
        let slot = self.slots.len() - 1;
        self.start(slot);
        slot
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Replace one variable of a slot's own environment (for its next start).
    pub fn set_env(&mut self, slot: usize, name: &str, value: String) {
        let env = &mut self.slots[slot].env;
        env.retain(|(k, _)| k != name);
        env.push((name.to_string(), value));
    }

    /// Start the slot's process (after a kill, a restart).
    pub fn start(&mut self, slot: usize) -> u32 {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("open workers.stderr");
        let s = &mut self.slots[slot];
        let child = Command::new(&self.bin)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(s.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        let pid = child.id();
        s.pids.push(pid);
        s.child = Some(child);
        pid
    }

    /// The pid of the slot's running process.
    pub fn pid(&self, slot: usize) -> Option<u32> {
        self.slots[slot].child.as_ref().map(Child::id)
    }

    /// Every pid that ever ran in a slot.
    pub fn all_pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .flat_map(|s| s.pids.iter().copied())
            .collect()
    }

    /// `kill -9` the slot's process and reap it; its pid.
    pub fn kill9(&mut self, slot: usize) -> Option<u32> {
        let mut child = self.slots[slot].child.take()?;
        let pid = child.id();
        child.kill().ok();
        child.wait().ok();
        Some(pid)
    }

    /// SIGSTOP the slot's process.
    pub fn stop(&self, slot: usize) -> Option<u32> {
        let pid = self.pid(slot)?;
        signal("STOP", pid);
        Some(pid)
    }

    /// SIGCONT the slot's process.
    pub fn cont(&self, slot: usize) -> Option<u32> {
        let pid = self.pid(slot)?;
        signal("CONT", pid);
        Some(pid)
    }

    /// Whether the slot's process is stopped (state `T`, as after a SIGSTOP
    /// it sent itself at a fault point).
    pub fn is_stopped(&self, slot: usize) -> bool {
        self.pid(slot).is_some_and(process_stopped)
    }

    /// Reap processes that ended on their own since the last call: what
    /// ended, and the slot is left empty (start it again to restart).
    pub fn reap(&mut self) -> Vec<Exit> {
        let mut exits = Vec::new();
        for (slot, s) in self.slots.iter_mut().enumerate() {
            let Some(child) = s.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                exits.push(Exit {
                    slot,
                    pid: child.id(),
                    status: describe(status),
                    at_ms: crate::workload::now_ms(),
                });
                s.child = None;
            }
        }
        exits
    }

    /// SIGTERM every running process (SIGCONT first, in case one is
    /// stopped) and wait up to `limit` for each to exit on its own: the
    /// failed shutdowns (exit status, or "did not stop").
    pub fn stop_all(&mut self, limit: Duration) -> Vec<String> {
        let mut failures = Vec::new();
        for s in &self.slots {
            if let Some(child) = &s.child {
                signal("CONT", child.id());
                signal("TERM", child.id());
            }
        }
        let started = Instant::now();
        for (slot, s) in self.slots.iter_mut().enumerate() {
            let Some(mut child) = s.child.take() else {
                continue;
            };
            let pid = child.id();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    if !status.success() {
                        failures.push(format!("slot {slot} pid {pid}: {}", describe(status)));
                    }
                    break;
                }
                if started.elapsed() > limit {
                    child.kill().ok();
                    child.wait().ok();
                    failures.push(format!(
                        "slot {slot} pid {pid}: did not stop within {limit:?} of SIGTERM"
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        failures
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for s in &mut self.slots {
            if let Some(child) = s.child.as_mut() {
                child.kill().ok();
                child.wait().ok();
            }
        }
    }
}

/// Whether process `pid` is stopped: the state field of
/// `/proc/<pid>/stat` (after the parenthesised command name) is `T`.
pub fn process_stopped(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "T")
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}
