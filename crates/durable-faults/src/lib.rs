//! The fault-injection suite of `durable` (issue 8, part 2).
//!
//! Real `fault-worker` processes serve a queue of `chain` workflows while
//! faults are injected from outside: a PostgreSQL server of the suite's
//! own is crash-restarted, its backends terminated or stopped; workers are
//! stopped past their lease or inside a claim transaction, killed at
//! random or at the library's named fault points; another process holds
//! SQLite's write lock. Afterwards the [`ledger`] judges the run from the
//! database and the workers' append-only side-effect log only: nothing
//! lost, no double commit, no completed step run again, no step running
//! twice at once in one process; and it counts re-executions, stalls and
//! recovery times.
//!
//! - [`cluster`]: the PostgreSQL server the suite controls;
//! - [`fleet`]: the worker processes and the faults done to them;
//! - [`ledger`]: the verdict, as a [`ledger::Report`];
//! - [`scenarios`]: one function per fault class, short or long mode;
//! - [`workload`]: what the workers run, shared with the checker.
//!
//! `cargo test -p durable-faults` runs the short mode;
//! `cargo run -p durable-faults --release -- --long` the long one.

pub mod cluster;
pub mod fleet;
pub mod ledger;
pub mod scenarios;
pub mod workload;
