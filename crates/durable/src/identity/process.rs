//! Who this process is, and whether another process on this host is gone.
//! (The executor row records it.)
//!
//! An executor's lease tells other hosts it died only once it expires. On the
//! same host we can do better: the executor row records hostname, pid and
//! the process start time, so a restarted program sees at once that the
//! previous owner no longer exists and takes its workflows over. Linux only
//! (`/proc`); elsewhere only the lease counts.

use std::sync::OnceLock;

/// This process, as recorded in its executor rows.
#[derive(Debug)]
pub(crate) struct ProcessIdentity {
    pub(crate) hostname: String,
    pub(crate) pid: i64,
    pub(crate) started: i64,
}

pub(crate) fn this_process() -> &'static ProcessIdentity {
    static IDENTITY: OnceLock<ProcessIdentity> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        let pid = std::process::id();
        ProcessIdentity {
            hostname: hostname(),
            pid: i64::from(pid),
            started: process_start(i64::from(pid)).unwrap_or(0),
        }
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/PID/stat`).
fn process_start(pid: i64) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// True only when we can prove the process is gone: same host, and no
/// process with that pid and start time exists.
pub(crate) fn is_gone(hostname: &str, pid: i64, started: i64) -> bool {
    let me = this_process();
    if me.hostname.is_empty() || hostname != me.hostname || me.started == 0 || started == 0 {
        return false;
    }
    process_start(pid) != Some(started)
}
