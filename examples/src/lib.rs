//! What the example programs share: the append-only side-effect log that
//! the crash tests read back.

use std::io::Write;

/// Append `line` to the side-effect log at `path`: one `write` call on a
/// file opened for appending, so the whole line is in the kernel before
/// the step goes on, and a `kill -9` right after cannot lose or tear it.
///
/// # Panics
/// If the file cannot be opened or written: the log is what the crash
/// tests judge by, so a lost line must stop the run.
pub fn append(path: &str, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the side-effect log");
    file.write_all(line.as_bytes())
        .expect("append to the side-effect log");
}
