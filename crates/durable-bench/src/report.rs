//! The run's conclusions (ratios to the floor, each target met or not) and
//! the table printed for people.

use std::fmt::Write as _;

use serde::Serialize;

use crate::memory::MemoryWorkload;
use crate::run::BenchReport;
use crate::stats::Spread;
use crate::target::Backend;

/// One target of issue 4 and the figure that decides it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TargetCheck {
    pub(crate) name: String,
    pub(crate) target: String,
    pub(crate) measured: String,
    /// `None`: reported only (not a target on this backend, or not measured).
    pub(crate) met: Option<bool>,
}

/// Check the targets against the run's figures.
pub(crate) fn conclude(r: &mut BenchReport) {
    let postgres = r.database.backend == Backend::Postgres;
    let mut checks = Vec::new();
    let mut check = |name: &str, target: &str, measured: String, met: Option<bool>| {
        checks.push(TargetCheck {
            name: name.into(),
            target: target.into(),
            measured,
            met,
        });
    };
    if let Some(cost) = &r.cost {
        let f = cost.fresh;
        check(
            "fresh step: statements",
            "<= 2",
            num(f.statements),
            Some(f.statements <= 2.0),
        );
        match f.write_transactions {
            Some(w) => check(
                "fresh step: commits",
                "1 (transactions that write)",
                format!(
                    "{} write, {} in all (read-only autocommits count too)",
                    num(w),
                    opt(f.transactions)
                ),
                Some(w <= 1.0),
            ),
            None => check(
                "fresh step: commits",
                "1 (autocommitted writes)",
                num(f.writes),
                Some(f.writes <= 1.0),
            ),
        }
        if let Some(trips) = f.round_trips {
            check(
                "fresh step: wire round trips",
                "<= 2, no pings",
                num(trips),
                Some(trips <= 2.0),
            );
        }
        let p = cost.replayed;
        let reads = (p.statements * f64::from(cost.steps)).round();
        check(
            "replayed step: statements",
            "0 writes; at most 1 read per 100 steps (history pages)",
            format!(
                "{} writes, {} reads per step ({reads} for {} steps)",
                num(p.writes),
                num(p.statements),
                cost.steps
            ),
            Some(p.writes == 0.0 && reads <= (f64::from(cost.steps) / 100.0).max(1.0)),
        );
    }
    if let Some(l) = &r.latency {
        let (limit, name) = if postgres {
            (1.3, "<= 1.3 x floor")
        } else {
            (1.5, "<= 1.5 x floor")
        };
        check(
            "sequential step latency",
            name,
            format!(
                "{} x ({} us)",
                opt(l.ratio_to_floor),
                num(l.us_per_step.median)
            ),
            l.ratio_to_floor.map(|x| x <= limit),
        );
        check(
            "sequential step latency vs a bare connection",
            "<= 2 x one insert+commit, no pool",
            format!("{} x", opt(l.ratio_to_bare)),
            l.ratio_to_bare.filter(|_| postgres).map(|x| x <= 2.0),
        );
    }
    if let Some(level) = r.throughput.as_ref().and_then(|t| t.at(r.concurrency)) {
        check(
            &format!("step throughput, {} concurrent", level.concurrency),
            if postgres {
                ">= 0.6 x floor"
            } else {
                ">= 0.6 x floor (PostgreSQL target)"
            },
            format!(
                "{} x ({} steps/s)",
                opt(level.ratio_to_floor),
                num(level.steps_per_s.median)
            ),
            level.ratio_to_floor.filter(|_| postgres).map(|x| x >= 0.6),
        );
        check(
            &format!("step throughput via queue, {} slots", level.concurrency),
            if postgres {
                ">= 0.5 x floor"
            } else {
                ">= 0.5 x floor (PostgreSQL target)"
            },
            format!(
                "{} x ({} steps/s)",
                opt(level.queue_ratio_to_floor),
                num(level.queue_steps_per_s.median)
            ),
            level
                .queue_ratio_to_floor
                .filter(|_| postgres)
                .map(|x| x >= 0.5),
        );
    }
    if let Some(sc) = &r.scale
        && let (Some(one), Some(most)) = (sc.levels.first(), sc.levels.last())
        && most.processes > one.processes
    {
        // Speed-up of the steps against the speed-up of the floor over the
        // same concurrencies: 1 is linear as far as the database allows.
        // Judged only where the floor itself rose (by half at least): on a
        // machine whose floor stalls, both fall with the CPUs, and the
        // ratio says nothing about scaling.
        let steps = most.steps_per_s.median / one.steps_per_s.median;
        let floor = most.floor_per_s.median / one.floor_per_s.median;
        let efficiency = steps / floor;
        check(
            &format!(
                "scale-out, {} -> {} processes",
                one.processes, most.processes
            ),
            ">= 0.8 x the floor's speed-up (judged where the floor rises 1.5 x)",
            format!(
                "{} x ({} x steps/s, floor {} x)",
                num(efficiency),
                num(steps),
                num(floor)
            ),
            (postgres && floor >= 1.5).then_some(efficiency >= 0.8),
        );
    }
    for (kind, wanted) in [
        (crate::claims::Backlog::HotKey, 100_000),
        (crate::claims::Backlog::Queued, 1_000_000),
        (crate::claims::Backlog::Finished, 10_000_000),
    ] {
        let Some(c) = r
            .claims
            .iter()
            .flatten()
            .filter(|c| c.kind == kind)
            .max_by_key(|c| c.backlog)
        else {
            continue;
        };
        let s = c.latency_ms;
        check(
            &format!(
                "claim latency, {} {}",
                num(c.backlog as f64),
                kind.describe()
            ),
            &format!("median <= 20 ms, p99 <= 100 ms (at {})", num(wanted as f64)),
            format!("median {} ms, p99 {} ms", num(s.median), num(s.p99)),
            (c.backlog >= wanted).then_some(s.median <= 20.0 && s.p99 <= 100.0),
        );
    }
    if let Some(rp) = &r.replay {
        check(
            &format!("replay of {} steps vs {} fresh", rp.steps, rp.fresh_steps),
            "< 1 x",
            format!(
                "{} x ({} ms vs {} ms)",
                num(rp.ratio_to_fresh),
                num(rp.replay_ms.median),
                num(rp.fresh_ms.median)
            ),
            Some(rp.ratio_to_fresh < 1.0),
        );
    }
    if let Some(m) = &r.memory {
        if let Some(s) = m.get(MemoryWorkload::History) {
            check(
                "memory: long history replay",
                "< 64 MiB above baseline",
                format!("{} MiB ({})", num(s.above_baseline_mib), s.what),
                Some(s.above_baseline_mib < 64.0),
            );
        }
        if let Some(s) = m.get(MemoryWorkload::InFlight) {
            check(
                "memory: workflows in flight",
                "< 256 MiB resident",
                format!("{} MiB peak ({})", num(s.peak_mib), s.what),
                Some(s.peak_mib < 256.0),
            );
        }
    }
    if let Some(list) = &r.list {
        crate::list::targets(list, &mut checks);
    }
    r.targets = checks;
}

/// The tables for people: timings with their spread and ratio to the
/// floor, throughput by concurrency, exact costs, where the time goes,
/// memory, then the targets.
pub(crate) fn render(r: &BenchReport) -> String {
    let mut out = String::new();
    let settings: Vec<String> = r
        .database
        .settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(
        out,
        "durable bench: {} ({}), pool of {}",
        r.database.version,
        settings.join(", "),
        r.database.pool_size
    );
    let _ = writeln!(
        out,
        "machine: {} CPUs, {}, {} GiB, Linux {}; load average {} -> {}",
        r.machine.cpus,
        r.machine.cpu_model,
        r.machine.memory_gib,
        r.machine.kernel,
        num(r.machine.load_before),
        num(r.machine.load_after)
    );
    let _ = writeln!(
        out,
        "median of {} runs (min-max); ratios: median of back-to-back pairs; {:.0} s",
        r.repeat, r.seconds
    );
    timings(&mut out, r);
    by_concurrency(&mut out, r);
    cost(&mut out, r);
    memory(&mut out, r);
    primitives(&mut out, r);
    scale(&mut out, r);
    claims(&mut out, r);
    if let Some(list) = &r.list {
        crate::list::render(&mut out, list);
    }
    targets(&mut out, r);
    out
}

fn scale(out: &mut String, r: &BenchReport) {
    let Some(s) = &r.scale else {
        return;
    };
    let mut t = Table::new(&[
        "processes",
        "slots in all",
        "steps/s",
        "min-max",
        "floor inserts/s",
        "ratio",
    ]);
    for level in &s.levels {
        t.cells(vec![
            level.processes.to_string(),
            level.concurrency.to_string(),
            num(level.steps_per_s.median),
            format!(
                "{}-{}",
                num(level.steps_per_s.min),
                num(level.steps_per_s.max)
            ),
            num(level.floor_per_s.median),
            num(level.ratio_to_floor),
        ]);
    }
    section(
        out,
        &format!(
            "scale-out: {} x {} steps through the queue, worker processes of {} slots",
            s.workflows, s.steps_per_workflow, s.slots_per_process
        ),
        &t,
    );
}

fn claims(out: &mut String, r: &BenchReport) {
    let Some(c) = &r.claims else {
        return;
    };
    let mut t = Table::new(&["backlog", "workflows", "n", "median ms", "p99 ms", "max ms"]);
    for level in c {
        let s = level.latency_ms;
        t.cells(vec![
            level.kind.describe().into(),
            num(level.backlog as f64),
            s.samples.to_string(),
            num(s.median),
            num(s.p99),
            num(s.max),
        ]);
    }
    section(
        out,
        "claims: enqueue -> first step, behind a backlog (kinds in order, each kept for the next)",
        &t,
    );
}

fn timings(out: &mut String, r: &BenchReport) {
    let n = r.concurrency;
    let mut t = Table::new(&["workload", "measure", "median", "min-max", "vs floor"]);
    if let Some(f) = &r.floor {
        for level in f
            .levels
            .iter()
            .filter(|l| l.concurrency == 1 || l.concurrency == n)
        {
            let c = level.concurrency;
            t.spread(
                "floor",
                format!("insert+commit, {c} at a time: us"),
                level.us_per_insert,
                "",
            );
            t.spread(
                "floor",
                format!("insert+commit, {c} at a time: /s"),
                level.inserts_per_s,
                "",
            );
        }
        if let Some(bare) = f.bare_us_per_insert {
            t.spread(
                "floor",
                "insert+commit, bare connection: us".into(),
                bare,
                "",
            );
        }
    }
    if let Some(l) = &r.latency {
        let measure = format!("fresh step, {} in a row: us", l.steps);
        let vs = format!(
            "{} ({} bare)",
            ratio(l.ratio_to_floor),
            ratio(l.ratio_to_bare)
        );
        t.spread("latency", measure, l.us_per_step, &vs);
    }
    if let Some(tp) = &r.throughput
        && let Some(level) = tp.at(n)
    {
        let measure = format!(
            "steps/s, {} x {} steps, {n} at a time",
            tp.workflows, tp.steps_per_workflow
        );
        t.spread(
            "throughput",
            measure,
            level.steps_per_s,
            &ratio(level.ratio_to_floor),
        );
        let measure = format!("workflows/s, {n} at a time");
        t.spread("throughput", measure, level.workflows_per_s, "");
        let measure = format!("steps/s via queue, worker with {n} slots");
        let ratio_q = ratio(level.queue_ratio_to_floor);
        t.spread("queue", measure, level.queue_steps_per_s, &ratio_q);
        let measure = format!("workflows/s via queue, {n} slots");
        t.spread("queue", measure, level.queue_workflows_per_s, "");
    }
    if let Some(rp) = &r.replay {
        let fresh = format!("{} x fresh", num(rp.ratio_to_fresh));
        let steps = rp.steps;
        t.spread(
            "replay",
            format!("replayed step of {steps}: us"),
            rp.us_per_replayed_step,
            "",
        );
        t.spread(
            "replay",
            format!("whole replay of {steps}: ms"),
            rp.replay_ms,
            &fresh,
        );
        t.spread(
            "replay",
            format!("{} fresh steps: ms", rp.fresh_steps),
            rp.fresh_ms,
            "",
        );
    }
    if t.rows.len() > 1 {
        section(out, "timings", &t);
    }
}

fn by_concurrency(out: &mut String, r: &BenchReport) {
    let (Some(tp), Some(floor)) = (&r.throughput, &r.floor) else {
        return;
    };
    let mut t = Table::new(&[
        "at a time",
        "floor inserts/s",
        "inline steps/s",
        "workflows/s",
        "ratio",
        "queue steps/s",
        "workflows/s",
        "ratio",
    ]);
    for level in &tp.levels {
        let f = floor.at(level.concurrency).map(|f| f.inserts_per_s.median);
        t.cells(vec![
            level.concurrency.to_string(),
            opt(f),
            num(level.steps_per_s.median),
            num(level.workflows_per_s.median),
            opt(level.ratio_to_floor),
            num(level.queue_steps_per_s.median),
            num(level.queue_workflows_per_s.median),
            opt(level.queue_ratio_to_floor),
        ]);
    }
    section(out, "throughput by concurrency (medians)", &t);
}

fn cost(out: &mut String, r: &BenchReport) {
    let Some(c) = &r.cost else {
        return;
    };
    let mut t = Table::new(&[
        "exact, per step or insert",
        "fresh step",
        "replayed step",
        "floor insert",
    ]);
    let (f, p, i) = (c.fresh, c.replayed, c.breakdown.floor);
    let rows = [
        (
            "statements",
            Some(f.statements),
            Some(p.statements),
            Some(i.statements),
        ),
        ("writes", Some(f.writes), Some(p.writes), Some(i.writes)),
        (
            "round trips on the wire",
            f.round_trips,
            p.round_trips,
            i.round_trips,
        ),
        (
            "transactions (ended, on the wire)",
            f.transactions,
            p.transactions,
            i.transactions,
        ),
        (
            "transactions that wrote",
            f.write_transactions,
            p.write_transactions,
            i.write_transactions,
        ),
        ("WAL syncs", f.wal_syncs, p.wal_syncs, i.wal_syncs),
        ("WAL bytes", f.wal_bytes, p.wal_bytes, i.wal_bytes),
    ];
    for (name, fresh, replayed, insert) in rows {
        if fresh.is_some() {
            t.cells(vec![name.into(), opt(fresh), opt(replayed), opt(insert)]);
        }
    }
    section(out, &format!("cost ({} steps each)", c.steps), &t);
    let whole = r.replay.as_ref().map_or_else(String::new, |rp| {
        let trips = rp
            .round_trips
            .map(|x| format!(", {x} round trips"))
            .unwrap_or_default();
        format!(
            "; whole replay of {}: {} statements{trips}",
            rp.steps, rp.statements
        )
    });
    let _ = writeln!(
        out,
        "replay: start {} statements, complete {}{whole}",
        c.replay_start_statements, c.replay_complete_statements
    );

    let mut t = Table::new(&["statements of the replay", "count"]);
    for st in &c.replay_statements {
        t.cells(vec![st.sql.clone(), st.count.to_string()]);
    }
    section(out, "statements of the replay (start, steps, complete)", &t);

    let b = &c.breakdown;
    let mut t = Table::new(&["on one connection", "us", "count"]);
    t.cells(vec![
        "fresh step (wall)".into(),
        num(b.fresh_step_us),
        String::new(),
    ]);
    t.cells(vec![
        "insert+commit (wall)".into(),
        num(b.floor_insert_us),
        String::new(),
    ]);
    for st in &b.statements {
        t.cells(vec![
            format!("  {}", st.sql),
            num(st.mean_us),
            st.count.to_string(),
        ]);
    }
    section(out, "where the time goes (statements: send to result)", &t);
}

fn memory(out: &mut String, r: &BenchReport) {
    let Some(m) = &r.memory else {
        return;
    };
    let mut t = Table::new(&["memory workload", "above baseline MiB", "peak MiB", "s"]);
    for s in &m.samples {
        let what = if s.peak_reset {
            s.what.clone()
        } else {
            format!("{} (peak not reset)", s.what)
        };
        t.cells(vec![
            what,
            num(s.above_baseline_mib),
            num(s.peak_mib),
            num(s.seconds),
        ]);
    }
    section(out, "memory (a child process per workload)", &t);
}

fn primitives(out: &mut String, r: &BenchReport) {
    let Some(p) = &r.primitives else {
        return;
    };
    let mut t = Table::new(&["primitive", "measure", "n", "median", "p99", "max"]);
    let mut row = |what: &str, measure: String, s: crate::primitives::Percentiles| {
        t.cells(vec![
            what.into(),
            measure,
            s.samples.to_string(),
            num(s.median),
            num(s.p99),
            num(s.max),
        ]);
    };
    row(
        "send -> recv",
        "receiver waiting in its process: ms".into(),
        p.recv_waiting_ms,
    );
    row(
        "send -> recv",
        "receiver suspended (woken by the send): ms".into(),
        p.recv_suspended_ms,
    );
    row(
        "sleep",
        format!(
            "lateness of {} sleepers waking over {} s on {} slots: ms",
            p.sleepers,
            p.window_ms / 1000,
            p.slots
        ),
        p.lateness_ms,
    );
    section(
        out,
        "primitives (database clock where it has the times)",
        &t,
    );
    let _ = writeln!(
        out,
        "sleepers: {} asleep at once on {} slots ({} per slot), at most {} owned meanwhile; {:.1} s in all",
        p.most_asleep,
        p.slots,
        num(p.most_asleep as f64 / p.slots as f64),
        p.most_owned,
        p.sleepers_s
    );
}

fn targets(out: &mut String, r: &BenchReport) {
    if r.targets.is_empty() {
        return;
    }
    let mut t = Table::new(&["target", "wanted", "measured", ""]);
    for c in &r.targets {
        let verdict = match c.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        };
        t.cells(vec![
            c.name.clone(),
            c.target.clone(),
            c.measured.clone(),
            verdict.into(),
        ]);
    }
    section(out, "targets (issues 4, 10 and 12)", &t);
}

pub(crate) fn section(out: &mut String, title: &str, table: &Table) {
    let _ = writeln!(out, "\n{title}");
    out.push_str(&table.render());
}

fn ratio(r: Option<f64>) -> String {
    r.map(|x| format!("{} x", num(x))).unwrap_or_default()
}

fn opt(v: Option<f64>) -> String {
    v.map(num).unwrap_or_else(|| "-".into())
}

/// A number for people: three significant digits at most, thousands
/// separated, no needless zeros.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let decimals = match v.abs() {
        a if a >= 100.0 || a == 0.0 || a.fract() == 0.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 0.1 => 2,
        _ => 3,
    };
    let text = format!("{v:.decimals$}");
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A left-aligned text table.
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| (*h).to_string()).collect()],
        }
    }

    pub(crate) fn cells(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn spread(&mut self, workload: &str, measure: String, s: Spread, vs: &str) {
        self.cells(vec![
            workload.into(),
            measure,
            num(s.median),
            format!("{}-{}", num(s.min), num(s.max)),
            vs.into(),
        ]);
    }

    fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for (i, row) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (cell, w) in row.iter().zip(&widths) {
                let _ = write!(line, "{cell:<w$}  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if i == 0 {
                let total = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn numbers_for_people() {
        assert_eq!(num(1234567.8), "1,234,568");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(0.002), "0.002");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(-1500.0), "-1,500");
    }
}
