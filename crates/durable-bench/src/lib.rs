//! `durable bench`: what a durable step costs on this machine, measured
//! against the raw database floor in the same run (issue 4).
//!
//! The `durable` binary runs it as its `bench` subcommand: it parses
//! [`BenchArgs`] and calls [`run`]. The bench starts child processes of
//! that binary (`durable bench --internal-...`) for the workloads that
//! need a process of their own (memory, scale), so it is a library of the
//! CLI rather than a program of its own. Tables of many workflows, and
//! long histories, are seeded through the SDK (`durable::scratch::seed`);
//! the only table the bench writes itself is its floor's.
//!
//! Each workload has its own file; `report.rs` prints the table and the
//! targets, `svg.rs` draws the chart. Timings are medians of `--repeat`
//! runs with their spread; the `cost` counts are exact.

mod args; // BenchArgs: workloads, sizes, the child processes' flags
mod error; // BenchError
mod run; // run: the database of the run, the workloads in order, the output

// The workloads.
mod claims; // enqueue to first step behind backlogs
mod cost; // statements, round trips, commits and WAL per step, counted
mod floor; // one-row INSERTs: the floor every figure is compared with
mod latency; // one workflow of sequential fresh steps
mod list; // pages of Client::list and purges among millions of rows
mod memory; // peak memory of each workload, in a child process
mod primitives; // send → recv, timer lateness, sleepers per slot
mod replay; // replaying a completed workflow
mod scale; // steps per second over worker processes
mod throughput; // many workflows, N at a time
mod timed; // floor, latency and throughput interleaved

// What the workloads share.
mod counted; // a pool whose statements are counted
mod drive; // N concurrent tasks over a numbered batch
mod progress; // progress on stderr
mod report; // the table, the targets
mod sql; // the bench's own statements (its floor table, server settings)
mod stats; // median and range of repeated measurements
mod svg; // the chart
mod svg_scaling; // the second chart: claims by backlog, steps/s by processes
mod target; // the run's fresh database, the machine
mod workflow; // the no-op workflows every workload runs

pub use args::BenchArgs;
pub use error::BenchError;
pub use run::run;
