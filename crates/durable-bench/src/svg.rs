//! The chart: latency per step beside the floor's insert + commit, and
//! throughput against concurrency with the floor beside durable. Plain SVG
//! written by hand: bars, axes and labels.

use std::fmt::Write as _;

use crate::report::num;
use crate::run::BenchReport;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 430.0;
pub(crate) const FLOOR: &str = "#9aa0a6";
pub(crate) const DURABLE: &str = "#1a73e8";
pub(crate) const REPLAY: &str = "#34a853";
pub(crate) const QUEUE: &str = "#f29900";

/// A bar: label, value, colour.
type Bar<'a> = (String, f64, &'a str);

/// A chart's opening: the `<svg>` element of `width` x `height`, a white
/// ground, and the title `durable bench: <database>, <n> CPUs<what>`.
pub(crate) fn open(r: &BenchReport, (width, height): (f64, f64), what: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let version = r.database.version.split(" (").next().unwrap_or_default();
    let title = format!("durable bench: {version}, {} CPUs{what}", r.machine.cpus);
    text(&mut s, 20.0, 26.0, "start", 15.0, "bold", &title);
    s
}

/// Draw the report's chart.
pub(crate) fn render(r: &BenchReport) -> String {
    let mut s = open(
        r,
        (WIDTH, HEIGHT),
        &format!(", median of {} runs", r.repeat),
    );

    // Left: latency per step.
    let area = Area {
        x: 70.0,
        y: 80.0,
        w: 300.0,
        h: 270.0,
    };
    text(
        &mut s,
        area.x - 50.0,
        58.0,
        "start",
        13.0,
        "bold",
        "Time per step, us (lower is better)",
    );
    let mut bars: Vec<Bar<'_>> = Vec::new();
    if let Some(f) = r.floor.as_ref().and_then(|f| f.at(1)) {
        bars.push(("insert+commit".into(), f.us_per_insert.median, FLOOR));
    }
    if let Some(l) = &r.latency {
        bars.push(("fresh step".into(), l.us_per_step.median, DURABLE));
    }
    if let Some(rp) = &r.replay {
        bars.push((
            "replayed step".into(),
            rp.us_per_replayed_step.median,
            REPLAY,
        ));
    }
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let top = axis(&mut s, &area, max);
    let slot = area.w / bars.len().max(1) as f64;
    for (i, (label, value, colour)) in bars.iter().enumerate() {
        let x = area.x + slot * i as f64 + slot * 0.2;
        bar(&mut s, &area, x, slot * 0.6, *value, top, colour);
        text(
            &mut s,
            x + slot * 0.3,
            area.y + area.h + 16.0,
            "middle",
            12.0,
            "normal",
            label,
        );
    }
    if let Some(ratio) = r.latency.as_ref().and_then(|l| l.ratio_to_floor) {
        let note = format!("fresh step = {} x insert+commit", num(ratio));
        text(
            &mut s,
            area.x,
            area.y + area.h + 40.0,
            "start",
            12.0,
            "normal",
            &note,
        );
    }

    // Right: throughput vs concurrency.
    let area = Area {
        x: 500.0,
        y: 80.0,
        w: 430.0,
        h: 270.0,
    };
    text(
        &mut s,
        area.x - 60.0,
        58.0,
        "start",
        13.0,
        "bold",
        "Per second vs concurrency (higher is better)",
    );
    legend(
        &mut s,
        area.x + 10.0,
        area.y - 6.0,
        FLOOR,
        "floor: inserts/s",
    );
    legend(
        &mut s,
        area.x + 140.0,
        area.y - 6.0,
        DURABLE,
        "inline: steps/s",
    );
    legend(
        &mut s,
        area.x + 270.0,
        area.y - 6.0,
        QUEUE,
        "queue: steps/s",
    );
    let mut groups = Vec::new();
    if let (Some(tp), Some(floor)) = (&r.throughput, &r.floor) {
        for level in &tp.levels {
            let f = floor
                .at(level.concurrency)
                .map_or(0.0, |f| f.inserts_per_s.median);
            groups.push(Group {
                level: level.concurrency,
                floor: f,
                inline: level.steps_per_s.median,
                queue: level.queue_steps_per_s.median,
                ratio: level.ratio_to_floor,
            });
        }
    }
    let max = groups
        .iter()
        .map(|g| g.floor.max(g.inline).max(g.queue))
        .fold(0.0, f64::max);
    let top = axis(&mut s, &area, max);
    let slot = area.w / groups.len().max(1) as f64;
    for (i, g) in groups.iter().enumerate() {
        let x = area.x + slot * i as f64 + slot * 0.1;
        let w = slot * 0.8 / 3.0;
        bar(&mut s, &area, x, w, g.floor, top, FLOOR);
        bar(&mut s, &area, x + w, w, g.inline, top, DURABLE);
        bar(&mut s, &area, x + 2.0 * w, w, g.queue, top, QUEUE);
        let middle = x + 1.5 * w;
        let below = area.y + area.h;
        text(
            &mut s,
            middle,
            below + 16.0,
            "middle",
            12.0,
            "normal",
            &g.level.to_string(),
        );
        if let Some(ratio) = g.ratio {
            let label = format!("{} x", num(ratio));
            text(
                &mut s,
                middle,
                below + 31.0,
                "middle",
                10.0,
                "normal",
                &label,
            );
        }
    }
    text(
        &mut s,
        area.x + area.w / 2.0,
        area.y + area.h + 50.0,
        "middle",
        12.0,
        "normal",
        "at once: connections (floor), workflows or slots; inline / floor below",
    );
    s.push_str("</svg>\n");
    s
}

/// One concurrency level of the throughput chart.
struct Group {
    level: usize,
    floor: f64,
    inline: f64,
    queue: f64,
    /// Inline steps/s over floor inserts/s.
    ratio: Option<f64>,
}

pub(crate) struct Area {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) w: f64,
    pub(crate) h: f64,
}

/// A step of 1, 2 or 5 times a power of ten giving about five ticks.
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Gridlines and tick labels up to the first tick above `max`; returns
/// the value at the top of the area, which bars scale to.
pub(crate) fn axis(s: &mut String, a: &Area, max: f64) -> f64 {
    let step = tick_step(max);
    let top = (max / step).ceil().max(1.0) * step;
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let y = a.y + a.h - v / top * a.h;
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/>"##,
            a.x,
            a.x + a.w
        );
        text(s, a.x - 6.0, y + 4.0, "end", 11.0, "normal", &num(v));
        v += step;
    }
    let _ = writeln!(
        s,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#555"/>"##,
        a.x,
        a.y + a.h,
        a.x + a.w,
        a.y + a.h
    );
    top
}

/// A bar from the axis up to `value`, its value written above it.
pub(crate) fn bar(s: &mut String, a: &Area, x: f64, w: f64, value: f64, top: f64, colour: &str) {
    let h = (value / top).clamp(0.0, 1.0) * a.h;
    let y = a.y + a.h - h;
    let _ = writeln!(
        s,
        r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}"/>"#
    );
    text(
        s,
        x + w / 2.0,
        y - 4.0,
        "middle",
        10.0,
        "normal",
        &num(value),
    );
}

pub(crate) fn legend(s: &mut String, x: f64, y: f64, colour: &str, label: &str) {
    let _ = writeln!(
        s,
        r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/>"#,
        y - 10.0
    );
    text(s, x + 17.0, y, "start", 12.0, "normal", label);
}

pub(crate) fn text(
    s: &mut String,
    x: f64,
    y: f64,
    anchor: &str,
    size: f64,
    weight: &str,
    body: &str,
) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" font-weight="{weight}">{}</text>"#,
        escape(body)
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::{escape, tick_step};

    #[test]
    fn ticks_and_escaping() {
        assert_eq!(tick_step(1234.0), 500.0);
        assert_eq!(tick_step(9.0), 2.0);
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
