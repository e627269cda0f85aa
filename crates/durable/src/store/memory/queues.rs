//! Queues and claims: enqueue, queue limits, claims of queued work and of
//! inline roots whose owner died (`sql/queue.rs`).
//!
//! A claim reads its candidates the way the SQL does, including its two
//! index ranges (the best ready work and the earliest due sleepers, each
//! cut at the room left, then merged), so the same rows are chosen; the
//! one order SQL leaves open is spelled out here (see [`due_order`]).

use std::cmp::Reverse;
use std::collections::BTreeMap;

use uuid::Uuid;

use super::state::State;
use crate::error::DurableError;
use crate::status::Status;
use crate::store::{ClaimFilter, NewEnqueued, QueueLimits, StoreResult, WorkflowRow};

/// The claim order of a queue: priority first, then age, then id.
fn best_first(w: &WorkflowRow) -> (Reverse<i32>, i64, Uuid) {
    (Reverse(w.priority), w.created_ms, w.id)
}

/// The order sleepers are read in (`ORDER BY available_ms`). A sleeper
/// woken early has no wake-up time: it comes first here (as NULLs sort on
/// SQLite; PostgreSQL sorts them last), and ties go by id. This decides
/// anything only when more sleepers are due than the claim has room for.
fn due_order(w: &WorkflowRow) -> (Option<i64>, Uuid) {
    (w.available_ms, w.id)
}

/// Which rows a claim may take besides [`State::claimable`]: the names
/// the executor runs and its version.
struct Eligible {
    names: Vec<String>,
    app_version: Option<String>,
    any_version: bool,
}

impl Eligible {
    fn new(filter: &ClaimFilter<'_>) -> StoreResult<Self> {
        Ok(Self {
            names: serde_json::from_str(filter.names).map_err(|e| {
                DurableError::InvalidInput(format!("claim filter names are not a JSON list: {e}"))
            })?,
            app_version: filter.app_version.map(str::to_string),
            any_version: filter.any_version,
        })
    }

    fn admits(&self, w: &WorkflowRow) -> bool {
        self.names.contains(&w.name)
            && (w.app_version.is_none() || self.any_version || w.app_version == self.app_version)
    }
}

impl State {
    /// `enqueue`: a pending root unless the key exists; its id if created.
    pub(super) fn enqueue(
        &mut self,
        work: &NewEnqueued<'_>,
        new_id: Uuid,
        now: i64,
    ) -> Option<Uuid> {
        if self.roots.contains_key(work.key) {
            return None;
        }
        let mut row = Self::blank_row(new_id, new_id, work.key, work.name, now);
        row.input = Some(work.input.clone());
        row.queue = Some(work.queue.to_string());
        row.priority = work.priority;
        row.concurrency_key = work.concurrency_key.clone();
        row.available_ms = work.delay_ms.map(|delay| now.saturating_add(delay));
        row.app_version = work.app_version.clone();
        self.insert_workflow(row, None);
        Some(new_id)
    }

    /// `upsert` of a queue.
    pub(super) fn declare_queue(&mut self, name: &str, limits: &QueueLimits) {
        self.queues.insert(name.to_string(), limits.clone());
    }

    /// Workflows of `queue` running under a live owner (`running`), and of
    /// those the ones of a concurrency key.
    fn running_in(&self, queue: &str, now: i64) -> impl Iterator<Item = &WorkflowRow> {
        self.workflows.values().map(|w| &w.row).filter(move |w| {
            w.queue.as_deref() == Some(queue)
                && w.status == Status::Running
                && w.owner_id.is_some()
                && self.owner_alive(w.owner_id, now)
        })
    }

    /// `claim_queue`: the room the queue's limits leave, the candidates
    /// that fit, each claimed.
    pub(super) fn claim_from_queue(
        &mut self,
        queue: &str,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
        now: i64,
    ) -> StoreResult<Vec<WorkflowRow>> {
        let limits = self
            .queues
            .get(queue)
            .cloned()
            .ok_or_else(|| DurableError::UnknownQueue(queue.to_string()))?;
        let eligible = Eligible::new(filter)?;
        let mut room = i64::try_from(want).unwrap_or(i64::MAX);
        if let Some(limit) = limits.concurrency {
            let running = i64::try_from(self.running_in(queue, now).count()).unwrap_or(i64::MAX);
            room = room.min(i64::from(limit) - running);
        }
        if let (Some(limit), Some(period)) = (limits.rate_limit, limits.rate_period_ms) {
            let since = now - period;
            let started = self
                .workflows
                .values()
                .filter(|w| {
                    w.row.queue.as_deref() == Some(queue)
                        && w.row.started_ms.is_some_and(|s| s > since)
                })
                .count();
            room = room.min(i64::from(limit) - i64::try_from(started).unwrap_or(i64::MAX));
        }
        if room <= 0 {
            return Ok(Vec::new());
        }
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        let candidates: Vec<&WorkflowRow> = self
            .workflows
            .values()
            .map(|w| &w.row)
            .filter(|w| {
                w.queue.as_deref() == Some(queue)
                    && self.claimable(w, owner, now)
                    && eligible.admits(w)
            })
            .collect();
        let ids = match limits.key_concurrency {
            None => two_ranges(candidates, room, best_first),
            Some(per_key) => self.keyed(queue, candidates, per_key, room, now),
        };
        Ok(self.claim_each(&ids, owner, filter.app_version, now))
    }

    /// `keyed_candidates`: the best candidates, leaving out those whose
    /// concurrency key is at its limit counting the running ones and the
    /// better candidates of the same key.
    fn keyed(
        &self,
        queue: &str,
        mut candidates: Vec<&WorkflowRow>,
        per_key: i32,
        room: usize,
        now: i64,
    ) -> Vec<Uuid> {
        let mut running: BTreeMap<&str, i64> = BTreeMap::new();
        for w in self.running_in(queue, now) {
            if let Some(key) = w.concurrency_key.as_deref() {
                *running.entry(key).or_default() += 1;
            }
        }
        candidates.sort_by_key(|w| best_first(w));
        let mut rank: BTreeMap<&str, i64> = BTreeMap::new();
        candidates
            .into_iter()
            .filter(|w| match w.concurrency_key.as_deref() {
                None => true,
                Some(key) => {
                    let r = rank.entry(key).or_default();
                    *r += 1;
                    *r + running.get(key).copied().unwrap_or(0) <= i64::from(per_key)
                }
            })
            .take(room)
            .map(|w| w.id)
            .collect()
    }

    /// `claim_orphan_roots`: inline roots whose owner died; no limits.
    pub(super) fn claim_orphans(
        &mut self,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
        now: i64,
    ) -> StoreResult<Vec<WorkflowRow>> {
        let eligible = Eligible::new(filter)?;
        let candidates: Vec<&WorkflowRow> = self
            .workflows
            .values()
            .map(|w| &w.row)
            .filter(|w| {
                w.queue.is_none()
                    && w.parent_id.is_none()
                    && self.claimable(w, owner, now)
                    && eligible.admits(w)
            })
            .collect();
        let ids = two_ranges(candidates, want, |w| (w.created_ms, w.id));
        Ok(self.claim_each(&ids, owner, filter.app_version, now))
    }

    /// `claim_one` for each candidate still claimable.
    fn claim_each(
        &mut self,
        ids: &[Uuid],
        owner: Uuid,
        app_version: Option<&str>,
        now: i64,
    ) -> Vec<WorkflowRow> {
        let mut claimed = Vec::new();
        for id in ids {
            if !self.claimable(&self.workflows[id].row, owner, now) {
                continue;
            }
            let w = &mut self.workflows.get_mut(id).expect("a candidate").row;
            if w.owner_id.is_some() {
                w.recoveries += 1;
            }
            w.owner_id = Some(owner);
            w.lease_epoch += 1;
            w.status = Status::Running;
            w.wait_for = None;
            w.attempts += 1;
            w.started_ms.get_or_insert(now);
            if w.app_version.is_none() {
                w.app_version = app_version.map(str::to_string);
            }
            let mut row = w.clone();
            row.claimed_ms = Some(now);
            row.history_empty = row.attempts == 1
                && self
                    .steps
                    .range((*id, i32::MIN)..=(*id, i32::MAX))
                    .next()
                    .is_none();
            claimed.push(row);
        }
        claimed
    }
}

/// The candidates as the SQL reads them: the best `limit` of those ready
/// (`wait_for` unset) and the first `limit` due sleepers, merged and cut
/// at `limit` by `order`.
fn two_ranges<K: Ord>(
    candidates: Vec<&WorkflowRow>,
    limit: usize,
    order: impl Fn(&WorkflowRow) -> K,
) -> Vec<Uuid> {
    let (mut ready, mut due): (Vec<&WorkflowRow>, Vec<&WorkflowRow>) =
        candidates.into_iter().partition(|w| w.wait_for.is_none());
    ready.sort_by_key(|w| order(w));
    ready.truncate(limit);
    due.sort_by_key(|w| due_order(w));
    due.truncate(limit);
    ready.extend(due);
    ready.sort_by_key(|w| order(w));
    ready.into_iter().take(limit).map(|w| w.id).collect()
}
