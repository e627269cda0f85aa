//! One behaviour suite of the [`Store`] interface, run against every
//! implementation: the in-memory model ([`MemoryStore`]), the SQL store on
//! a fresh SQLite file, and the SQL store on PostgreSQL (`DATABASE_URL`, a
//! fresh schema per test; without `DATABASE_URL` those tests fail, they
//! never skip). The SQL store is the reference: a scenario states what it
//! does, and the model must do the same.
//!
//! Each scenario is an `async fn(Arc<dyn Store>)`; [`conformance!`] makes
//! one `#[tokio::test]` of it per store (`memory::`, `sqlite::`,
//! `postgres::`).
//!
//! Results are compared field by field through a rendering that keeps
//! every field that differs from a fresh row's default, with two
//! normalisations, each because the backends legitimately differ there:
//! - **ids**: every store gets the same deterministic id generator (the
//!   seam `with_ids`), so the n-th id a store draws is the same everywhere
//!   and renders as `#n` (executors' ids, chosen by the tests, as `E1`..).
//!   Drawing ids at the same moments is part of the contract (a
//!   simulation replays a seed through them), so they are not normalised
//!   away, only named.
//! - **times read from the database clock** (creation, start, completion,
//!   deadlines, delays): each store has its own clock (PostgreSQL's
//!   server, SQLite's `julianday('now')`, the model's tokio instant), so
//!   such a time renders relative to this process's clock, in whole
//!   minutes (`now`, `now+60m`); times the test hands in (wake-up times,
//!   start times of calls) lie years away from now and render exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use super::memory::MemoryStore;
use super::sql::{IdSource, SqlStore};
use super::{
    Check, Checkpoint, ChildStart, ClaimFilter, Effect, Entry, ExecutorRow, Lease, NewChild,
    NewEnqueued, NewMessage, NewRoot, QueueLimits, Received, Renewal, Retried, Spawn, Started,
    Store, Suspension, Transition, WorkflowRow,
};
use crate::error::DurableError;
use crate::read::{WorkflowSummary, WorkflowTree};
use crate::status::{Status, StepKind};

mod differential;
mod helpers;
mod listing;
mod queues;
mod render;
mod retrying;
mod schedules;
mod signals;
mod workflows;

use differential::*;
use helpers::*;
use listing::*;
use queues::*;
use render::*;
use retrying::*;
use schedules::*;
use signals::*;
use workflows::*;

// ── The stores under test ───────────────────────────────────────────

/// Ids drawn by the stores: `#1`, `#2`, ... in drawing order.
const DRAWN: u128 = 0x1_0000;
/// Ids of executors the tests register: `E1`, `E2`, ...
const EXECUTORS: u128 = 0xE_0000;

/// The deterministic id generator every store of a test gets.
fn counter() -> IdSource {
    let next = Arc::new(AtomicU64::new(1));
    Arc::new(move || Uuid::from_u128(DRAWN + u128::from(next.fetch_add(1, Ordering::SeqCst))))
}

async fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new().with_ids(counter()))
}

async fn sqlite() -> Arc<dyn Store> {
    let db = crate::testdb::sqlite("conformance").await;
    Arc::new(SqlStore::new(&db).with_ids(counter()))
}

async fn postgres() -> Arc<dyn Store> {
    let db = crate::testdb::postgres().await;
    Arc::new(SqlStore::new(&db).with_ids(counter()))
}

/// One `#[tokio::test]` per scenario and store.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::memory().await).await; })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::sqlite().await).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $scenario() { super::$scenario(super::postgres().await).await; })*
        }
    };
}

conformance!(
    executors_register_renew_expire,
    start_root_new_existing_refused_recovered,
    start_child_created_recorded_fenced,
    check_reads_states_deadlines_holder_entry,
    commit_fenced_refused_updated,
    commit_with_effects_and_their_errors,
    send_receive_with_keys,
    suspension_woken_by_send_and_waker,
    finished_or_cancelled_child_wakes_joining_parent,
    transitions_cascade_and_are_checked,
    enqueue_is_idempotent_by_key,
    claims_in_order_never_own_work,
    claims_tell_whether_the_history_is_empty,
    queue_limits_concurrency_key_rate,
    claim_next_takes_the_best_within_limits,
    claim_orphans_of_dead_owners,
    release_dead_owned_stray,
    summary_and_tree_shapes,
    queues_count_work_where_it_is,
    list_filters_sorts_and_pages,
    retry_sets_failed_calls_aside,
    purge_takes_finished_trees_only,
    fork_copies_the_history_before_a_position,
    schedules_declare_pause_delete,
    due_schedules_fire_each_tick_once,
    debounce_gathers_a_burst_until_claimed,
    random_operations_seed_1,
    random_operations_seed_2,
    random_operations_seed_3,
);
