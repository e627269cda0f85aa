//! Builders and short-hands the scenarios share.

#![allow(clippy::wildcard_imports)]

use super::*;

pub(super) fn executor(n: u128) -> ExecutorRow {
    ExecutorRow {
        id: exec_id(n),
        hostname: format!("host{n}"),
        pid: 100 + i64::try_from(n).expect("small"),
        pid_started: 7,
    }
}

/// Register executor `n` with a live lease (a minute).
pub(super) async fn live(store: &dyn Store, n: u128) -> Uuid {
    let registered = store
        .heartbeat(&executor(n), 60_000, Renewal::Register)
        .await
        .unwrap();
    assert!(registered);
    exec_id(n)
}

/// Register executor `n` with a lease that expired a minute ago.
pub(super) async fn dead(store: &dyn Store, n: u128) -> Uuid {
    let registered = store
        .heartbeat(&executor(n), -60_000, Renewal::Register)
        .await
        .unwrap();
    assert!(registered, "a registration writes the row");
    exec_id(n)
}

/// Start (create or claim) the root `key` of workflow `wf` for `owner`.
pub(super) async fn root(store: &dyn Store, key: &str, owner: Uuid) -> WorkflowRow {
    let started = store
        .start_root(&NewRoot {
            key,
            name: "wf",
            input: Some(r#"{"n":1}"#.to_string()),
            owner,
        })
        .await
        .unwrap();
    match started {
        Started::Claimed { row, .. } => row,
        Started::Refused(row) => panic!("refused: {}", wf(&row)),
    }
}

pub(super) fn lease(row: &WorkflowRow) -> Lease {
    Lease {
        holder: row.id,
        owner: row.owner_id.expect("owned"),
        epoch: row.lease_epoch,
    }
}

/// A lease no longer current: the epoch after `lease`'s.
pub(super) fn stale(lease: Lease) -> Lease {
    Lease {
        epoch: lease.epoch + 1,
        ..lease
    }
}

/// A checkpoint of the call `key` (`name#n`) at `position`.
pub(super) fn cp<'a>(
    workflow: Uuid,
    position: i32,
    key: &'a str,
    kind: StepKind,
    status: Status,
    lease: Lease,
) -> Checkpoint<'a> {
    Checkpoint {
        workflow,
        position,
        key,
        name: key.split_once('#').map_or(key, |(name, _)| name),
        kind,
        status,
        output: None,
        error: None,
        retry_count: 0,
        max_retries: 0,
        wake_ms: None,
        child: None,
        started_ms: STARTED,
        lease,
    }
}

/// A completed step with `output`.
pub(super) fn done<'a>(
    workflow: Uuid,
    position: i32,
    key: &'a str,
    output: &str,
    lease: Lease,
) -> Checkpoint<'a> {
    Checkpoint {
        output: Some(output.to_string()),
        ..cp(
            workflow,
            position,
            key,
            StepKind::Step,
            Status::Completed,
            lease,
        )
    }
}

pub(super) fn child<'a>(
    parent: &WorkflowRow,
    position: i32,
    key: &'a str,
    lease: Lease,
) -> NewChild<'a> {
    NewChild {
        root: parent.root_id,
        parent: parent.id,
        position,
        key,
        name: key.split_once('#').map_or(key, |(name, _)| name),
        input: Some("7".to_string()),
        started_ms: STARTED,
        lease,
        spawn: None,
    }
}

pub(super) async fn start_child(store: &dyn Store, new: &NewChild<'_>) -> WorkflowRow {
    match store.start_child(new).await.unwrap() {
        ChildStart::Created(row) => *row,
        other => panic!("not created: {other:?}"),
    }
}

pub(super) async fn spawn(
    store: &dyn Store,
    parent: &WorkflowRow,
    position: i32,
    key: &str,
    lease: Lease,
) -> WorkflowRow {
    let new = NewChild {
        spawn: Some(Spawn {
            queue: "default",
            app_version: None,
        }),
        ..child(parent, position, key, lease)
    };
    start_child(store, &new).await
}

pub(super) async fn row(store: &dyn Store, w: Uuid) -> String {
    wf(&store.workflow(w).await.unwrap().expect("a workflow"))
}

pub(super) async fn entry_at(store: &dyn Store, w: Uuid, position: i32) -> Option<String> {
    store.entry(w, position).await.unwrap().as_ref().map(entry)
}

pub(super) fn filter(names: &str) -> ClaimFilter<'_> {
    ClaimFilter {
        names,
        app_version: None,
        any_version: false,
    }
}

pub(super) const WF: &str = r#"["wf"]"#;

pub(super) fn work<'a>(key: &'a str, queue: &'a str) -> NewEnqueued<'a> {
    NewEnqueued {
        key,
        name: "wf",
        input: "{}".to_string(),
        queue,
        priority: 0,
        concurrency_key: None,
        delay_ms: None,
        app_version: None,
    }
}

pub(super) async fn enqueue(store: &dyn Store, work: &NewEnqueued<'_>) -> Uuid {
    store.enqueue(work).await.unwrap().expect("enqueued")
}

pub(super) async fn declare(store: &dyn Store, queue: &str, limits: QueueLimits) {
    store.declare_queue(queue, &limits).await.unwrap();
}

pub(super) fn message<'a>(
    to: Uuid,
    topic: &'a str,
    key: Option<&'a str>,
    payload: &'a str,
) -> NewMessage<'a> {
    NewMessage {
        to,
        topic,
        key,
        payload,
    }
}

/// Whether the store wrote `cp` (its fence and the entry there let it).
pub(super) async fn written(s: &dyn Store, cp: &Checkpoint<'_>) -> bool {
    s.commit(cp).await.unwrap().is_some()
}
