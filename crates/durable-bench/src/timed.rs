//! The timed workloads `floor`, `latency` and `throughput`, interleaved:
//! each run of a durable workload follows a run of the floor at the same
//! concurrency, so the ratio of each pair is measured under the same
//! conditions (disk flush times on shared machines drift), and the ratio
//! reported is the median of the pairs'.

use durable::sea_orm::DatabaseConnection;

use crate::error::Result;
use crate::floor::{self, FloorLevel, FloorReport};
use crate::latency::{self, LatencyReport};
use crate::progress::Progress;
use crate::stats::Spread;
use crate::throughput::{self, ThroughputLevel, ThroughputReport};

/// What to measure.
pub(crate) struct Plan {
    /// Concurrency levels of the floor (1 included when latency runs).
    pub(crate) floor_levels: Vec<usize>,
    pub(crate) floor_inserts: u32,
    /// Steps of the latency workflow, if latency runs.
    pub(crate) latency_steps: Option<u32>,
    /// Levels of the throughput workload (a subset of the floor's).
    pub(crate) throughput_levels: Vec<usize>,
    pub(crate) workflows: u32,
    pub(crate) workflow_steps: u32,
    pub(crate) repeat: usize,
}

/// Results of the timed workloads.
pub(crate) struct Timed {
    pub(crate) floor: FloorReport,
    pub(crate) latency: Option<LatencyReport>,
    pub(crate) throughput: Option<ThroughputReport>,
}

/// Run the plan on `db`.
pub(crate) async fn run(
    db: &DatabaseConnection,
    plan: &Plan,
    progress: &Progress,
) -> Result<Timed> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut floor_levels = Vec::new();
    let mut latency = None;
    let mut tp_levels = Vec::new();
    let mut bare = Vec::new();
    for &level in &plan.floor_levels {
        let latency_steps = plan.latency_steps.filter(|_| level == 1);
        let throughput = plan.throughput_levels.contains(&level);
        let mut what = vec!["floor"];
        if latency_steps.is_some() {
            what.push("latency");
        }
        if throughput {
            what.push("throughput (inline and queue)");
        }
        progress.phase(format!("{}: {level} at a time", what.join(" + ")));
        floor::warm(db, level).await?;
        let mut f = Samples::default();
        let mut l = Samples::default();
        let mut t = Samples::default();
        let mut q = Samples::default();
        for rep in 0..plan.repeat {
            let (us, per_s) = floor::sample(db, level, plan.floor_inserts).await?;
            f.push(us, per_s);
            progress.tick();
            if let Some(steps) = latency_steps {
                let bare_us = floor::bare_sample(db, plan.floor_inserts).await?;
                let key = format!("latency-{run}-{rep}");
                let step_us = latency::sample(db, &key, steps).await?;
                l.push3(step_us, step_us / us, step_us / bare_us);
                bare.push(bare_us);
                progress.tick();
            }
            if throughput {
                let prefix = format!("tp-{run}-{level}-{rep}");
                let (steps_s, wf_s) =
                    throughput::sample(db, &prefix, level, plan.workflows, plan.workflow_steps)
                        .await?;
                t.push3(steps_s, wf_s, steps_s / per_s);
                let prefix = format!("q-{run}-{level}-{rep}");
                let (steps_s, wf_s) = throughput::queue_sample(
                    db,
                    &prefix,
                    level,
                    plan.workflows,
                    plan.workflow_steps,
                )
                .await?;
                q.push3(steps_s, wf_s, steps_s / per_s);
                progress.tick();
            }
        }
        floor_levels.push(FloorLevel {
            concurrency: level,
            us_per_insert: Spread::of(&f.a),
            inserts_per_s: Spread::of(&f.b),
        });
        if let Some(steps) = latency_steps {
            latency = Some(LatencyReport {
                steps,
                us_per_step: Spread::of(&l.a),
                ratio_to_floor: Some(Spread::of(&l.b).median),
                ratio_to_bare: Some(Spread::of(&l.c).median),
            });
        }
        if throughput {
            tp_levels.push(ThroughputLevel {
                concurrency: level,
                steps_per_s: Spread::of(&t.a),
                workflows_per_s: Spread::of(&t.b),
                ratio_to_floor: Some(Spread::of(&t.c).median),
                queue_steps_per_s: Spread::of(&q.a),
                queue_workflows_per_s: Spread::of(&q.b),
                queue_ratio_to_floor: Some(Spread::of(&q.c).median),
            });
        }
    }
    Ok(Timed {
        floor: FloorReport {
            inserts: plan.floor_inserts,
            levels: floor_levels,
            bare_us_per_insert: (!bare.is_empty()).then(|| Spread::of(&bare)),
        },
        latency,
        throughput: (!plan.throughput_levels.is_empty()).then_some(ThroughputReport {
            workflows: plan.workflows,
            steps_per_workflow: plan.workflow_steps,
            levels: tp_levels,
        }),
    })
}

/// Samples of up to three figures of one measurement.
#[derive(Default)]
struct Samples {
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

impl Samples {
    fn push(&mut self, a: f64, b: f64) {
        self.a.push(a);
        self.b.push(b);
    }

    fn push3(&mut self, a: f64, b: f64, c: f64) {
        self.push(a, b);
        self.c.push(c);
    }
}
