//! Who this process is, and whether another process on this host is gone.
//! (The executor row records it.)
//!
//! An executor's lease tells other hosts it died only once it expires. On the
//! same host we can do better: the executor row records the host, pid and
//! the process start time, so a restarted program sees at once that the
//! previous owner no longer exists and takes its workflows over. Linux only
//! (`/proc`); elsewhere only the lease counts.
//!
//! "The same host" must mean the same process table, or a live process
//! would read as gone: containers that share a hostname (host networking)
//! have pid namespaces of their own, and a rebooted host reuses pids. So
//! the recorded host is the hostname with the boot id and the pid
//! namespace (`name boot=<id> pidns=<inode>`); only an identical record
//! proves anything, and a row written without them (by an older version)
//! never does.

use std::sync::OnceLock;

/// This process, as recorded in its executor rows.
#[derive(Debug)]
pub(crate) struct ProcessIdentity {
    /// Hostname, boot id and pid namespace (see the module docs); empty
    /// when any of them is unknown, which proves nothing.
    pub(crate) host: String,
    pub(crate) pid: i64,
    pub(crate) started: i64,
}

pub(crate) fn this_process() -> &'static ProcessIdentity {
    static IDENTITY: OnceLock<ProcessIdentity> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        let pid = std::process::id();
        ProcessIdentity {
            host: host().unwrap_or_default(),
            pid: i64::from(pid),
            started: process_start(i64::from(pid)).unwrap_or(0),
        }
    })
}

/// `name boot=<boot id> pidns=<namespace inode>`, or `None` if any part is
/// unknown.
fn host() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())?;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!(
        "{name} boot={} pidns={}",
        boot.trim(),
        namespace.display()
    ))
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/PID/stat`).
fn process_start(pid: i64) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// True only when we can prove the process is gone: same host, and no
/// process with that pid and start time exists. A process table that
/// hides others' processes (`hidepid`) proves nothing: the start time must
/// be read and differ, or the pid must not exist at all (`kill(pid, 0)`
/// says so without sending anything).
pub(crate) fn is_gone(host: &str, pid: i64, started: i64) -> bool {
    let me = this_process();
    if me.host.is_empty() || host != me.host || me.started == 0 || started == 0 {
        return false;
    }
    match process_start(pid) {
        Some(now_started) => now_started != started,
        None => no_such_process(pid),
    }
}

fn no_such_process(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_gone() {
        let me = this_process();
        assert!(
            me.host.contains(" boot=") && me.host.contains(" pidns="),
            "{}",
            me.host
        );
        assert!(!is_gone(&me.host, me.pid, me.started));
    }

    #[test]
    fn a_process_that_exited_is_gone_on_this_host_only() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = i64::from(child.id());
        let started = process_start(pid).unwrap_or(1);
        child.wait().expect("wait");
        let me = this_process();
        assert!(is_gone(&me.host, pid, started));
        // Another host, an older row (a bare hostname), another pid
        // namespace or boot: nothing is proven.
        let bare = me.host.split(' ').next().unwrap_or_default();
        assert!(!is_gone(bare, pid, started));
        assert!(!is_gone("elsewhere", pid, started));
        let other_ns = me.host.replace("pidns=", "pidns=x");
        assert!(!is_gone(&other_ns, pid, started));
    }

    #[test]
    fn a_live_process_with_another_start_time_is_gone() {
        let me = this_process();
        // Our pid, started at another time: the pid was reused.
        assert!(is_gone(&me.host, me.pid, me.started + 1));
    }
}
