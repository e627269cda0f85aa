//! `list`: what a page of `Client::list` costs when the tables hold
//! millions of finished workflows (issue 10). At each size, seeded in bulk
//! and analysed, each kind of page is timed `probes` times through the
//! SDK, and its plan is read with `scratch::explain_list` (the very
//! statement the list runs): which index it reads, and whether it scans
//! the table or sorts (either would make a page cost grow with the table).
//! Then retention: [`PURGE_BATCHES`] batches of `Client::purge_batch` are
//! timed (trees deleted per second) and the batch's plan read the same way.

use std::time::Instant;

use durable::scratch::seed::{self, Finished};
use durable::sea_orm::DatabaseConnection;
use durable::{Client, Direction, SortBy, Status, WorkflowQuery};
use serde::Serialize;

use crate::error::Result;
use crate::primitives::Percentiles;
use crate::progress::Progress;
use crate::report::{Table, TargetCheck, num, section};

/// Rows seeded per statement (one transaction each).
const BATCH: u64 = 1_000_000;
/// Where the seeded creation times start (2026-01-01, epoch ms).
const BASE_MS: i64 = 1_767_225_600_000;
/// The size the issue asks the figures at.
const WANTED: u64 = 10_000_000;
/// A page's median at the wanted size, at most.
const PAGE_MS: f64 = 20.0;
/// Purge batches timed at each size.
const PURGE_BATCHES: u32 = 10;

/// Retention at one size: deletion rate and the batch's plan.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PurgeRate {
    pub(crate) rows: u64,
    /// Trees deleted (each one workflow here).
    pub(crate) deleted: u64,
    pub(crate) per_s: f64,
    pub(crate) index: Option<String>,
    pub(crate) scans_or_sorts: bool,
}

/// What the workload measured.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ListReport {
    pub(crate) pages: Vec<ListLatency>,
    pub(crate) purges: Vec<PurgeRate>,
}

/// One kind of page at one size.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ListLatency {
    /// Workflows in the table.
    pub(crate) rows: u64,
    pub(crate) query: &'static str,
    /// Workflows the page returned (for a count: the count).
    pub(crate) returned: u64,
    pub(crate) latency_ms: Percentiles,
    /// The index the plan reads, if any.
    pub(crate) index: Option<String>,
    /// The plan reads the whole table, or sorts: its cost grows with it.
    pub(crate) scans_or_sorts: bool,
}

/// The page kinds, by name; `mid_ms` is a creation time halfway through.
fn queries(client_cursor: Option<durable::Cursor>) -> Vec<(&'static str, WorkflowQuery)> {
    let mut out = vec![
        ("newest 100", WorkflowQuery::new()),
        (
            "newest 100 failed",
            WorkflowQuery::new().status(Status::Failed),
        ),
        (
            "newest 100 of one name",
            WorkflowQuery::new().name("bench-list-3"),
        ),
        (
            "first 100 by name",
            WorkflowQuery::new().sort(SortBy::Name, Direction::Ascending),
        ),
        (
            "last 100 finished",
            WorkflowQuery::new().sort(SortBy::Finished, Direction::Descending),
        ),
        (
            "oldest 100 started",
            WorkflowQuery::new().sort(SortBy::Started, Direction::Ascending),
        ),
    ];
    if let Some(cursor) = client_cursor {
        out.push(("100 from the middle", WorkflowQuery::new().after(cursor)));
    }
    out
}

/// Measure at each size, `probes` times per page kind.
pub(crate) async fn run(
    db: &DatabaseConnection,
    sizes: &[u64],
    probes: u32,
    progress: &Progress,
) -> Result<ListReport> {
    let client = Client::new(db);
    let mut out = Vec::new();
    let mut purges = Vec::new();
    let mut seeded = 0u64;
    for &rows in sizes {
        progress.phase(format!("list: seeding {} workflows", num(rows as f64)));
        // Ten names, keys `list-<n>`, 5% failed, 5% cancelled, created a
        // millisecond apart from BASE_MS.
        let finished = Finished::new("bench-list-", BASE_MS)
            .names(10)
            .key_prefix("list-");
        while seeded < rows {
            let to = rows.min(seeded + BATCH);
            seed::finished(db, &finished, seeded + 1..=to).await?;
            seeded = to;
        }
        seed::analyze(db).await?;
        progress.phase(format!("list: pages at {} workflows", num(rows as f64)));
        let mid_ms = BASE_MS + i64::try_from(rows / 2).unwrap_or(0);
        let middle = client
            .list(&WorkflowQuery::new().created(..=mid_ms).limit(1))
            .await?
            .next;
        for (name, query) in queries(middle) {
            let query = query.limit(100);
            let plan = durable::scratch::explain_list(db, &query).await?;
            let mut samples = Vec::new();
            let mut returned = 0;
            for _ in 0..probes {
                let t = Instant::now();
                let page = client.list(&query).await?;
                samples.push(t.elapsed().as_secs_f64() * 1e3);
                returned = page.workflows.len() as u64;
            }
            out.push(ListLatency {
                rows,
                query: name,
                returned,
                latency_ms: Percentiles::of(&samples),
                index: index_of(&plan),
                scans_or_sorts: scans_or_sorts(&plan),
            });
        }
        let failed = WorkflowQuery::new().status(Status::Failed);
        for (name, query) in [
            ("count failed", failed),
            ("count all", WorkflowQuery::new()),
        ] {
            let mut samples = Vec::new();
            let mut n = 0;
            for _ in 0..probes.min(5) {
                let t = Instant::now();
                n = client.count(&query).await?;
                samples.push(t.elapsed().as_secs_f64() * 1e3);
            }
            out.push(ListLatency {
                rows,
                query: name,
                returned: n,
                latency_ms: Percentiles::of(&samples),
                index: None,
                scans_or_sorts: false,
            });
        }
        // Every seeded workflow finished in 2026-01: older than a day.
        let day = std::time::Duration::from_secs(86_400);
        let plan = durable::scratch::explain_purge(db, day).await?;
        let t = Instant::now();
        let mut deleted = 0;
        for _ in 0..PURGE_BATCHES {
            deleted += client.purge_batch(day).await?;
        }
        let seconds = t.elapsed().as_secs_f64();
        purges.push(PurgeRate {
            rows,
            deleted,
            per_s: deleted as f64 / seconds,
            index: index_of(&plan),
            scans_or_sorts: scans_or_sorts(&plan),
        });
        progress.tick();
    }
    Ok(ListReport { pages: out, purges })
}

/// The first index a plan names (`... using <index>` on PostgreSQL,
/// `... USING [COVERING] INDEX <index>` on SQLite).
fn index_of(plan: &[String]) -> Option<String> {
    plan.iter().find_map(|line| {
        let at = line
            .find(" using ")
            .map(|i| i + " using ".len())
            .or_else(|| line.find("INDEX ").map(|i| i + "INDEX ".len()))?;
        line[at..].split_whitespace().next().map(str::to_string)
    })
}

/// Whether a plan reads the table whole or sorts its rows.
fn scans_or_sorts(plan: &[String]) -> bool {
    plan.iter().any(|line| {
        line.contains("Seq Scan")
            || line.trim_start().starts_with("Sort")
            || line.contains("-> Sort")
            || line.contains("TEMP B-TREE")
            || (line.starts_with("SCAN") && !line.contains("INDEX"))
    })
}

/// The tables of the workload.
pub(crate) fn render(out: &mut String, report: &ListReport) {
    let list = &report.pages;
    let mut t = Table::new(&[
        "workflows",
        "page",
        "returned",
        "median ms",
        "p99 ms",
        "index",
        "scan/sort",
    ]);
    for l in list {
        t.cells(vec![
            num(l.rows as f64),
            l.query.into(),
            num(l.returned as f64),
            num(l.latency_ms.median),
            num(l.latency_ms.p99),
            l.index.clone().unwrap_or_else(|| "-".into()),
            if l.query.starts_with("count") {
                "-".into()
            } else if l.scans_or_sorts {
                "yes".into()
            } else {
                "no".into()
            },
        ]);
    }
    section(
        out,
        "list: a page of Client::list among finished workflows (5% failed, 10 names)",
        &t,
    );
    let mut t = Table::new(&["workflows", "deleted", "trees/s", "index", "scan/sort"]);
    for p in &report.purges {
        t.cells(vec![
            num(p.rows as f64),
            num(p.deleted as f64),
            num(p.per_s),
            p.index.clone().unwrap_or_else(|| "-".into()),
            if p.scans_or_sorts { "yes" } else { "no" }.into(),
        ]);
    }
    section(
        out,
        &format!(
            "retention: {PURGE_BATCHES} batches of Client::purge_batch, oldest finished first"
        ),
        &t,
    );
}

/// Targets: at the largest size, every page is read from an index without
/// a scan or a sort, and its median is at most [`PAGE_MS`] (judged at
/// [`WANTED`] rows).
pub(crate) fn targets(report: &ListReport, checks: &mut Vec<TargetCheck>) {
    let list = &report.pages;
    let Some(largest) = list.iter().map(|l| l.rows).max() else {
        return;
    };
    let pages: Vec<_> = list
        .iter()
        .filter(|l| l.rows == largest && !l.query.starts_with("count"))
        .collect();
    let worst = pages
        .iter()
        .map(|l| l.latency_ms.median)
        .fold(0.0_f64, f64::max);
    let indexed = pages.iter().all(|l| !l.scans_or_sorts && l.index.is_some());
    checks.push(TargetCheck {
        name: format!("list page, {} workflows", num(largest as f64)),
        target: format!(
            "median <= {PAGE_MS} ms, each sort read from an index (at {})",
            num(WANTED as f64)
        ),
        measured: format!(
            "slowest page median {} ms; {}",
            num(worst),
            if indexed {
                "all from an index, no scan or sort"
            } else {
                "a page scans or sorts"
            }
        ),
        met: (largest >= WANTED).then_some(worst <= PAGE_MS && indexed),
    });
    if let Some(p) = report.purges.iter().max_by_key(|p| p.rows) {
        checks.push(TargetCheck {
            name: format!("purge batch, {} workflows", num(p.rows as f64)),
            target: format!(
                "read from an index, no scan or sort (at {})",
                num(WANTED as f64)
            ),
            measured: format!(
                "{} trees/s; {}",
                num(p.per_s),
                p.index.as_deref().unwrap_or("no index")
            ),
            met: (p.rows >= WANTED).then_some(!p.scans_or_sorts && p.index.is_some()),
        });
    }
}
