//! What the crash tests share: a seeded random sequence, spawning an
//! example process with its side-effect log, killing it with `kill -9`,
//! and waiting (with a deadline) for one that should finish on its own.
#![allow(dead_code, unreachable_pub)]

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process that should finish may take before the test calls
/// it a hang (and kills it).
pub const HANG: Duration = Duration::from_secs(120);

/// The `i`-th number of the sequence `seed` (splitmix64): the same kill
/// moments on every run of a seed, with no shared state.
pub fn random(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The example binary `bin` on `url`, appending to `dir/crash.log` and its
/// stderr to `dir/{stderr}.stderr` (kept for a failure's post-mortem).
pub fn command(bin: &str, dir: &Path, url: &str, stderr: &str) -> Command {
    let mut cmd = Command::new(bin);
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{stderr}.stderr")))
        .expect("open stderr file");
    cmd.env("DATABASE_URL", url)
        .env("CRASH_LOG", dir.join("crash.log"))
        .env("RUST_LOG", "durable=info,warn")
        .stdout(Stdio::null())
        .stderr(stderr);
    cmd
}

/// SIGKILL the process unless it has exited, and reap it; true if the
/// kill is what ended it.
pub fn kill(child: &mut Child) -> bool {
    if child.try_wait().expect("try_wait").is_some() {
        return false;
    }
    child.kill().ok();
    child.wait().expect("wait for killed process").signal() == Some(9)
}

/// Wait for a process that should exit 0 on its own; fail on another exit
/// and on a hang (after killing it).
pub async fn finish(child: &mut Child, what: &str, dir: &Path) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            assert!(status.success(), "{what} failed ({status}); see {dir:?}");
            return;
        }
        if started.elapsed() > HANG {
            kill(child);
            panic!("{what} did not finish within {HANG:?}; see {dir:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
