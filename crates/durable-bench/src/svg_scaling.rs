//! The second chart: how claims and throughput scale. Left, the claim
//! latency (enqueue to first step, median and p99) against the size of
//! each backlog the claims workload built; right, steps per second
//! against the number of worker processes, beside the floor's inserts
//! per second at the same total concurrency. Drawn with the first
//! chart's axes, bars and labels.

use crate::claims::ClaimLatency;
use crate::report::num;
use crate::run::BenchReport;
use crate::scale::ScaleReport;
use crate::svg::{Area, DURABLE, FLOOR, QUEUE, axis, bar, legend, text};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 450.0;

/// The chart, if the report has claims or scale figures.
pub(crate) fn render(r: &BenchReport) -> Option<String> {
    if r.claims.is_none() && r.scale.is_none() {
        return None;
    }
    let mut s = crate::svg::open(r, (WIDTH, HEIGHT), ": claims and scale-out");
    if let Some(claims) = &r.claims {
        claims_panel(&mut s, claims);
    }
    if let Some(scale) = &r.scale {
        scale_panel(&mut s, scale);
    }
    s.push_str("</svg>\n");
    Some(s)
}

/// Claim latency, ms, one pair of bars (median, p99) per backlog.
fn claims_panel(s: &mut String, claims: &[ClaimLatency]) {
    let area = Area {
        x: 70.0,
        y: 80.0,
        w: 400.0,
        h: 250.0,
    };
    text(
        s,
        area.x - 50.0,
        58.0,
        "start",
        13.0,
        "bold",
        "Enqueue to first step, ms (lower is better)",
    );
    legend(s, area.x + 10.0, area.y - 6.0, DURABLE, "median");
    legend(s, area.x + 110.0, area.y - 6.0, QUEUE, "p99");
    let pairs: Vec<Pair> = claims
        .iter()
        .map(|c| Pair {
            values: (c.latency_ms.median, c.latency_ms.p99),
            colours: (DURABLE, QUEUE),
            label: count(c.backlog),
            note: match c.kind {
                crate::claims::Backlog::HotKey => "hot key".into(),
                crate::claims::Backlog::Queued => "queued".into(),
                crate::claims::Backlog::Finished => "finished".into(),
            },
        })
        .collect();
    pairs_of_bars(s, &area, &pairs);
    text(
        s,
        area.x + area.w / 2.0,
        area.y + area.h + 52.0,
        "middle",
        12.0,
        "normal",
        "workflows in the tables: waiting on one key, others' queued, finished",
    );
}

/// Steps/s and the floor's inserts/s by worker processes.
fn scale_panel(s: &mut String, scale: &ScaleReport) {
    let area = Area {
        x: 590.0,
        y: 80.0,
        w: 340.0,
        h: 250.0,
    };
    text(
        s,
        area.x - 60.0,
        58.0,
        "start",
        13.0,
        "bold",
        "Per second vs worker processes",
    );
    legend(s, area.x + 10.0, area.y - 6.0, FLOOR, "floor: inserts/s");
    legend(s, area.x + 150.0, area.y - 6.0, DURABLE, "steps/s");
    let pairs: Vec<Pair> = scale
        .levels
        .iter()
        .map(|level| Pair {
            values: (level.floor_per_s.median, level.steps_per_s.median),
            colours: (FLOOR, DURABLE),
            label: level.processes.to_string(),
            note: format!("{} x", num(level.ratio_to_floor)),
        })
        .collect();
    pairs_of_bars(s, &area, &pairs);
    let note = format!(
        "processes of {} slots each; steps/s over the floor below",
        scale.slots_per_process
    );
    text(
        s,
        area.x + area.w / 2.0,
        area.y + area.h + 52.0,
        "middle",
        12.0,
        "normal",
        &note,
    );
}

/// Two bars side by side, a label and a note below them.
struct Pair {
    values: (f64, f64),
    colours: (&'static str, &'static str),
    label: String,
    note: String,
}

/// The pairs across `area`, on one axis scaled to the largest value.
fn pairs_of_bars(s: &mut String, area: &Area, pairs: &[Pair]) {
    let max = pairs
        .iter()
        .map(|p| p.values.0.max(p.values.1))
        .fold(0.0, f64::max);
    let top = axis(s, area, max);
    let slot = area.w / pairs.len().max(1) as f64;
    for (i, p) in pairs.iter().enumerate() {
        let x = area.x + slot * i as f64 + slot * 0.15;
        let w = slot * 0.35;
        bar(s, area, x, w, p.values.0, top, p.colours.0);
        bar(s, area, x + w, w, p.values.1, top, p.colours.1);
        let below = area.y + area.h;
        text(s, x + w, below + 16.0, "middle", 11.0, "normal", &p.label);
        text(s, x + w, below + 30.0, "middle", 10.0, "normal", &p.note);
    }
}

/// A backlog size, short: 100000 as "100k", 10000000 as "10M".
fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backlog_sizes_are_short() {
        assert_eq!(super::count(0), "0");
        assert_eq!(super::count(100_000), "100k");
        assert_eq!(super::count(10_000_000), "10M");
        assert_eq!(super::count(1_500), "1500");
    }
}
