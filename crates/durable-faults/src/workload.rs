//! The work the fleet runs, shared by the `fault-worker` binary (which runs
//! it) and the ledger (which checks it): the `chain` workflow's input, its
//! steps' names and outputs, the checksum it returns, the side-effect log's
//! line format and the `fault_effect` table.
//!
//! Keeping both sides in one module means the checker cannot drift from
//! what the worker actually does.

use serde::{Deserialize, Serialize};

/// The queue the fleet serves.
pub const QUEUE: &str = "faults";
/// The registered workflow.
pub const WORKFLOW: &str = "chain";
/// The queue's limit over all workers: high enough never to be the
/// bottleneck, so a stall seen in the figures is a fault's doing.
pub const QUEUE_CONCURRENCY: u32 = 64;

/// The table transaction steps insert into, created by the driver. No
/// unique constraint on purpose: a step whose user writes committed twice
/// shows as two rows instead of failing the second commit.
pub const EFFECT_TABLE_DDL: &str = "CREATE TABLE IF NOT EXISTS fault_effect (\
     workflow_key TEXT NOT NULL, step INTEGER NOT NULL, pid BIGINT NOT NULL)";

/// Input of a `chain`: workflow number `n` with `steps` steps.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ChainInput {
    /// The workflow's number; its key is [`key`]`(n)`.
    pub n: u64,
    /// How many steps it runs.
    pub steps: u32,
}

/// What each step returns, and so what its checkpoint holds: the value the
/// checksum adds up, and which body run produced it (process and start
/// time, as in that run's `start` log line), so the ledger knows exactly
/// which of several runs of a step was the one that committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutput {
    /// [`step_value`] of the workflow and step.
    pub value: u64,
    /// The process whose body run committed.
    pub pid: u32,
    /// That run's `start` time (Unix ms), as logged.
    pub started_ms: i64,
}

/// The idempotency key of workflow `n`.
pub fn key(n: u64) -> String {
    format!("chain-{n}")
}

/// The name of step `j`; its key in the journal is `s{j}#0`.
pub fn step_name(j: u32) -> String {
    format!("s{j}")
}

/// The journal key of step `j` (first call of its name).
pub fn step_key(j: u32) -> String {
    format!("s{j}#0")
}

/// Every third step (2, 5, 8, ...) is a transaction step that inserts a
/// `fault_effect` row atomically with its checkpoint.
pub fn is_transaction(j: u32) -> bool {
    j % 3 == 2
}

/// The value step `j` of workflow `n` returns.
pub fn step_value(n: u64, j: u32) -> u64 {
    n * 1000 + u64::from(j)
}

/// What a `chain` returns: the sum of its steps' values.
pub fn checksum(n: u64, steps: u32) -> u64 {
    (0..steps).map(|j| step_value(n, j)).sum()
}

/// Whether a side-effect log line marks the start or the end of a body run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The body began.
    Start,
    /// The body finished its work (its checkpoint is not written yet).
    End,
    /// The body was dropped before it finished (its future cancelled, as
    /// a worker may when it gives a workflow up): the run is over, not
    /// running on in the background.
    Dropped,
}

/// One line of the side-effect log:
/// `start|end|drop <workflow-key> <step-index> <pid> <unix-ms>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Start or end.
    pub mark: Mark,
    /// The workflow's key.
    pub key: String,
    /// The step's index.
    pub step: u32,
    /// The process that ran the body.
    pub pid: u32,
    /// When (Unix ms, this host's clock; the database runs on the same host).
    pub ms: i64,
}

impl LogLine {
    /// The line as written, with its newline.
    pub fn render(&self) -> String {
        let mark = match self.mark {
            Mark::Start => "start",
            Mark::End => "end",
            Mark::Dropped => "drop",
        };
        format!(
            "{mark} {} {} {} {}\n",
            self.key, self.step, self.pid, self.ms
        )
    }

    /// Parse one line (without its newline).
    ///
    /// # Errors
    /// A description of what is malformed.
    pub fn parse(line: &str) -> Result<Self, String> {
        let f: Vec<&str> = line.split(' ').collect();
        let bad = || format!("malformed log line {line:?}");
        if f.len() != 5 {
            return Err(bad());
        }
        let mark = match f[0] {
            "start" => Mark::Start,
            "end" => Mark::End,
            "drop" => Mark::Dropped,
            _ => return Err(bad()),
        };
        Ok(LogLine {
            mark,
            key: f[1].to_string(),
            step: f[2].parse().map_err(|_| bad())?,
            pid: f[3].parse().map_err(|_| bad())?,
            ms: f[4].parse().map_err(|_| bad())?,
        })
    }
}

/// Parse a whole log. A torn last line (a process killed mid-write) would
/// be a bug of the log writer, whose lines are single `write_all`s of an
/// append-mode file, so it is an error too.
///
/// # Errors
/// The first malformed line, or a log not ending in a newline.
pub fn parse_log(text: &str) -> Result<Vec<LogLine>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the side-effect log ends in a torn line".into());
    }
    text.lines().map(LogLine::parse).collect()
}

/// Milliseconds since the Unix epoch, by this host's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// SplitMix64: small reproducible randomness from a seed (the fault
/// schedule, step durations), so a printed seed replays a schedule.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_round_trip() {
        let line = LogLine {
            mark: Mark::End,
            key: key(7),
            step: 3,
            pid: 42,
            ms: 1_700_000_000_123,
        };
        let text = line.render();
        assert_eq!(text, "end chain-7 3 42 1700000000123\n");
        assert_eq!(parse_log(&text).unwrap(), vec![line]);
        assert!(parse_log("start chain-7 3 42").is_err(), "torn line");
        assert!(parse_log("begin chain-7 3 42 1\n").is_err());
    }

    #[test]
    fn checksum_adds_the_step_values() {
        assert_eq!(checksum(2, 3), 2000 + 2001 + 2002);
        assert!(is_transaction(2) && is_transaction(5) && !is_transaction(3));
    }
}
