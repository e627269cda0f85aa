//! Rendering of rows, entries and errors for comparison (see the module docs for the normalisations).

#![allow(clippy::wildcard_imports)]

use super::*;

/// A time the tests hand in: far from now, so it renders exactly.
pub(super) const LONG_AGO: i64 = 1_000;
pub(super) const FAR_OFF: i64 = 4_000_000_000_000;
/// The start time of every call the tests commit.
pub(super) const STARTED: i64 = 1_234;

pub(super) fn exec_id(n: u128) -> Uuid {
    Uuid::from_u128(EXECUTORS + n)
}

pub(super) fn drawn(n: u128) -> Uuid {
    Uuid::from_u128(DRAWN + n)
}

/// An id no store has.
pub(super) fn unknown() -> Uuid {
    Uuid::from_u128(0xDEAD)
}

pub(super) fn id(id: Uuid) -> String {
    let n = id.as_u128();
    if (DRAWN..DRAWN + 0xFFFF).contains(&n) {
        format!("#{}", n - DRAWN)
    } else if (EXECUTORS..EXECUTORS + 0xFFFF).contains(&n) {
        format!("E{}", n - EXECUTORS)
    } else {
        id.to_string()
    }
}

pub(super) fn sys_now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_millis()).expect("ms fit")
}

/// A time: relative to now in minutes if it is near now (a clock
/// reading), else exactly (a time the test handed in).
pub(super) fn t(ms: i64) -> String {
    const YEAR_MS: i64 = 366 * 24 * 3600 * 1000;
    let ago = ms - sys_now_ms();
    if ms == i64::MAX {
        "MAX".to_string()
    } else if ago.abs() < YEAR_MS {
        match (ago + 30_000).div_euclid(60_000) {
            0 => "now".to_string(),
            m => format!("now{m:+}m"),
        }
    } else {
        ms.to_string()
    }
}

pub(super) fn field<T: std::fmt::Display>(out: &mut String, name: &str, value: Option<T>) {
    if let Some(value) = value {
        out.push_str(&format!(" {name}={value}"));
    }
}

/// A workflow row: identity and status, then every field that differs
/// from a fresh row's default.
pub(super) fn wf(w: &WorkflowRow) -> String {
    let mut s = format!("{} {} {} {}", id(w.id), w.key, w.name, w.status);
    field(&mut s, "root", (w.root_id != w.id).then(|| id(w.root_id)));
    field(&mut s, "parent", w.parent_id.map(id));
    field(&mut s, "at", w.parent_position);
    field(&mut s, "in", w.input.as_ref());
    field(&mut s, "out", w.output.as_ref());
    field(&mut s, "err", w.error.as_ref());
    field(&mut s, "owner", w.owner_id.map(id));
    field(
        &mut s,
        "epoch",
        (w.lease_epoch != 0).then_some(w.lease_epoch),
    );
    field(&mut s, "queue", w.queue.as_ref());
    field(&mut s, "prio", (w.priority != 0).then_some(w.priority));
    field(&mut s, "ckey", w.concurrency_key.as_ref());
    field(&mut s, "avail", w.available_ms.map(t));
    field(&mut s, "wait", w.wait_for.as_ref());
    field(&mut s, "timeout", w.timeout_ms);
    field(&mut s, "deadline", w.deadline_ms.map(t));
    field(&mut s, "ver", w.app_version.as_ref());
    field(&mut s, "attempts", (w.attempts != 0).then_some(w.attempts));
    field(
        &mut s,
        "recoveries",
        (w.recoveries != 0).then_some(w.recoveries),
    );
    field(
        &mut s,
        "created",
        Some(t(w.created_ms)).filter(|c| c != "now"),
    );
    field(&mut s, "started", w.started_ms.map(t));
    field(&mut s, "completed", w.completed_ms.map(t));
    s
}

/// A journal entry, with the id of its child's row if it was joined.
pub(super) fn entry(e: &Entry) -> String {
    let mut s = format!(
        "@{} {} {} {} {}",
        e.position, e.key, e.name, e.kind, e.status
    );
    field(&mut s, "out", e.output.as_ref());
    field(&mut s, "err", e.error.as_ref());
    field(
        &mut s,
        "retries",
        (e.retry_count != 0 || e.max_retries != 0)
            .then(|| format!("{}/{}", e.retry_count, e.max_retries)),
    );
    field(&mut s, "wake", e.wake_ms.map(t));
    field(
        &mut s,
        "created",
        Some(t(e.created_ms)).filter(|c| c != "now"),
    );
    field(
        &mut s,
        "started",
        e.started_ms.filter(|s| *s != STARTED).map(t),
    );
    field(&mut s, "completed", e.completed_ms.map(t));
    field(&mut s, "child", e.child.as_ref().map(|c| wf(c)));
    s
}

pub(super) fn entries(es: &[Entry]) -> Vec<String> {
    es.iter().map(entry).collect()
}

pub(super) fn check(c: &Check) -> String {
    let mut s = format!(
        "holder={}/{} {}",
        c.holder_owner.map_or("-".to_string(), id),
        c.holder_epoch,
        c.status
    );
    field(&mut s, "blocked", c.blocked);
    field(&mut s, "deadline", c.deadline_ms.map(t));
    s.push_str(&format!(" clock={}", t(c.now_ms)));
    field(&mut s, "entry", c.entry.as_ref().map(entry));
    s
}

pub(super) fn ids(rows: &[WorkflowRow]) -> Vec<String> {
    rows.iter().map(|w| id(w.id)).collect()
}

pub(super) fn summary(w: &WorkflowSummary) -> String {
    let mut s = format!("{} {} {} {}", id(w.id), w.key, w.name, w.status);
    field(&mut s, "root", (w.root_id != w.id).then(|| id(w.root_id)));
    field(&mut s, "parent", w.parent_id.map(id));
    field(&mut s, "at", w.parent_position);
    field(&mut s, "queue", w.queue.as_ref());
    field(&mut s, "prio", (w.priority != 0).then_some(w.priority));
    field(&mut s, "ckey", w.concurrency_key.as_ref());
    field(&mut s, "ver", w.app_version.as_ref());
    field(&mut s, "owner", w.owner.map(id));
    field(&mut s, "attempts", (w.attempts != 0).then_some(w.attempts));
    field(
        &mut s,
        "recoveries",
        (w.recoveries != 0).then_some(w.recoveries),
    );
    field(
        &mut s,
        "created",
        Some(t(w.created_at_ms)).filter(|c| c != "now"),
    );
    field(&mut s, "started", w.started_at_ms.map(t));
    field(&mut s, "finished", w.finished_at_ms.map(t));
    field(&mut s, "timeout", w.timeout_ms);
    field(&mut s, "deadline", w.deadline_ms.map(t));
    field(&mut s, "wake", w.wake_at_ms.map(t));
    field(&mut s, "waiting", w.waiting_for.as_ref());
    field(&mut s, "in", w.input.as_ref());
    field(&mut s, "out", w.output.as_ref());
    field(&mut s, "err", w.error.as_ref());
    s
}

/// A tree as an outline: a workflow's summary, its steps indented under
/// it, each child's tree under its step.
pub(super) fn outline(tree: &WorkflowTree, depth: usize, out: &mut Vec<String>) {
    out.push(format!("{:depth$}{}", "", summary(&tree.workflow)));
    for step in &tree.steps {
        let mut s = format!(
            "{:w$}@{} {} {} {} {} x{}",
            "",
            step.position,
            step.key,
            step.name,
            step.kind,
            step.status,
            step.attempts,
            w = depth + 2
        );
        field(
            &mut s,
            "max",
            (step.max_retries != 0).then_some(step.max_retries),
        );
        field(
            &mut s,
            "started",
            step.started_at_ms.filter(|s| *s != STARTED).map(t),
        );
        field(&mut s, "finished", step.finished_at_ms.map(t));
        field(&mut s, "wake", step.wake_at_ms.map(t));
        field(&mut s, "out", step.output.as_ref());
        field(&mut s, "err", step.error.as_ref());
        out.push(s);
        if let Some(child) = &step.child {
            outline(child, depth + 4, out);
        }
    }
}

pub(super) fn error(e: &DurableError) -> String {
    match e {
        DurableError::NotFound(w) => format!("NotFound({})", id(*w)),
        DurableError::InvalidTransition {
            task,
            status,
            action,
        } => format!("InvalidTransition({} {status} {action})", id(*task)),
        DurableError::UnknownQueue(q) => format!("UnknownQueue({q})"),
        DurableError::InvalidInput(m) => format!("InvalidInput({m})"),
        other => format!("other: {other}"),
    }
}

pub(super) fn err<T: std::fmt::Debug>(result: Result<T, DurableError>) -> String {
    error(&result.expect_err("an error"))
}
