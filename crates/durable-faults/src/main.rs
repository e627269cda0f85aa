//! `durable-faults`: run the fault scenarios and print their figures.
//!
//! ```sh
//! cargo run -p durable-faults --release -- [--long] [--only SCENARIO]...
//! ```
//!
//! Short mode (the default) is what CI runs as tests; `--long` is the run
//! whose figures go into `RELIABILITY.md`. `FAULT_SEED` replays a fault
//! schedule. The exit code is 1 if any invariant was violated.

use std::process::ExitCode;

use durable_faults::fleet::worker_binary;
use durable_faults::ledger::{Report, p50_max};
use durable_faults::scenarios::{self, Mode, NAMES, Suite};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let mut mode = Mode::Short;
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--long" => mode = Mode::Long,
            "--only" => only.push(args.next().expect("--only SCENARIO")),
            "-h" | "--help" => {
                println!(
                    "durable-faults [--long] [--only SCENARIO]...\nscenarios: {}",
                    NAMES.join(", ")
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!(
                    "unknown argument {other:?}; scenarios: {}",
                    NAMES.join(", ")
                );
                return ExitCode::from(2);
            }
        }
    }
    if only.is_empty() {
        only = NAMES.iter().map(|s| s.to_string()).collect();
    }
    let suite = Suite::new(mode, worker_binary());
    eprintln!("durable-faults: {mode:?} mode, seed {}", suite.seed);
    let mut reports = Vec::new();
    for name in &only {
        let report = scenarios::run(&suite, name).await;
        println!("{report}");
        reports.push(report);
    }
    println!("{}", table(&reports));
    if reports.iter().any(|r| !r.violations().is_empty()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The figures of every run as a Markdown table.
fn table(reports: &[Report]) -> String {
    let mut out = String::from(
        "| scenario | faults | workflows | lost | double commits | completed re-run | overlaps | \
         re-executions (bound) | max stall ms | recovery p50/max ms |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let faults: Vec<String> = r.faults.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let (p50, max) = p50_max(&r.recoveries_ms);
        let recovery = if r.recoveries_ms.is_empty() {
            "-".to_string()
        } else {
            format!("{p50} / {max}")
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {} |\n",
            r.scenario,
            faults.join(", "),
            r.enqueued,
            r.lost.len(),
            r.double_commits.len(),
            r.completed_reruns.len(),
            r.overlaps.len(),
            r.re_executions,
            r.in_flight_at_faults,
            r.max_stall_ms,
            recovery
        ));
    }
    out
}
