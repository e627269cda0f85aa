//! A differential run: random operations on the model and on the store under test, answer by answer.

#![allow(clippy::wildcard_imports)]

use super::*;

/// splitmix64: a tiny seeded generator for the differential run.
pub(super) struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

pub(super) fn shown<T: std::fmt::Debug>(result: Result<T, DurableError>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(e) => error(&e),
    }
}

pub(super) fn claimed(result: Result<Vec<WorkflowRow>, DurableError>) -> String {
    match result {
        Ok(rows) => rows.iter().map(wf).collect::<Vec<_>>().join(" | "),
        Err(e) => error(&e),
    }
}

/// The lease a workflow's writes are fenced by as the store has it now
/// (its holder: itself if claimable on its own, else its root), made
/// stale one time in four.
pub(super) async fn current_lease(s: &dyn Store, w: &WorkflowRow, rng: &mut Rng) -> Lease {
    let holder = if w.parent_id.is_none() || w.queue.is_some() {
        w.clone()
    } else {
        s.workflow(w.root_id).await.unwrap().expect("its root")
    };
    let lease = Lease {
        holder: holder.id,
        owner: holder.owner_id.unwrap_or(exec_id(1)),
        epoch: holder.lease_epoch,
    };
    if rng.below(4) == 0 {
        stale(lease)
    } else {
        lease
    }
}

/// What `steps` random operations (from `seed`) return on `s`, rendered,
/// and the state they leave. Claims leave room for every candidate where
/// the SQL reads two ranges (a tie among due sleepers cut by a limit is
/// the one order the backends may legitimately disagree on).
pub(super) async fn transcript(s: &dyn Store, seed: u64, steps: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for n in 1..=3 {
        live(s, n).await;
    }
    declare(s, "qa", QueueLimits::default()).await;
    let keyed = QueueLimits {
        key_concurrency: Some(1),
        ..QueueLimits::default()
    };
    declare(s, "qb", keyed).await;
    let any = ClaimFilter {
        names: r#"["wf", "c", "other"]"#,
        app_version: Some("v1"),
        any_version: true,
    };
    // Ids drawn so far (each start, enqueue and child start draws one).
    let mut drawn_ids: u128 = 0;
    for i in 0..steps {
        let e = exec_id(1 + u128::from(rng.below(3)));
        // A workflow that exists (not every drawn id was used), if any.
        let mut target = None;
        let start = rng.below(u64::try_from(drawn_ids.max(1)).unwrap());
        for k in 0..u64::try_from(drawn_ids).unwrap() {
            let n = (start + k) % u64::try_from(drawn_ids).unwrap();
            target = s.workflow(drawn(1 + u128::from(n))).await.unwrap();
            if target.is_some() {
                break;
            }
        }
        let position = i32::try_from(rng.below(5)).unwrap();
        let line = match (rng.below(18), target) {
            (0, _) => {
                let lease_ms = if rng.below(3) == 0 { -60_000 } else { 60_000 };
                let renew = if rng.below(2) == 0 {
                    Renewal::Renew
                } else {
                    Renewal::Register
                };
                let n = e.as_u128() - EXECUTORS;
                shown(s.heartbeat(&executor(n), lease_ms, renew).await)
            }
            (1, _) => shown(s.expire_executor(e).await),
            (2, _) => {
                drawn_ids += 1;
                let key = format!("k{}", rng.below(4));
                let name = if rng.below(6) == 0 { "other" } else { "wf" };
                let new = NewRoot {
                    key: &key,
                    name,
                    input: None,
                    owner: e,
                };
                match s.start_root(&new).await {
                    Ok(Started::Claimed { row, created }) => {
                        format!("claimed {created} {}", wf(&row))
                    }
                    Ok(Started::Refused(row)) => format!("refused {}", wf(&row)),
                    Err(e) => error(&e),
                }
            }
            (3, _) => {
                drawn_ids += 1;
                let key = format!("q{}", rng.below(6));
                let queue = if rng.below(2) == 0 { "qa" } else { "qb" };
                let new = NewEnqueued {
                    priority: i32::try_from(rng.below(3)).unwrap(),
                    concurrency_key: ["A", "B", ""][usize::try_from(rng.below(3)).unwrap()]
                        .to_string()
                        .into(),
                    delay_ms: [None, Some(-1_000), Some(3_600_000)]
                        [usize::try_from(rng.below(3)).unwrap()],
                    ..work(&key, queue)
                };
                shown(s.enqueue(&new).await.map(|id| id.map(self::id)))
            }
            (4, _) => {
                let (queue, want) = match rng.below(4) {
                    0 => ("qa", 50),
                    1 => ("qz", 50),
                    _ => ("qb", 1 + usize::try_from(rng.below(3)).unwrap()),
                };
                claimed(s.claim_from_queue(queue, e, want, &any).await)
            }
            (5, _) => claimed(s.claim_orphans(e, 50, &any).await),
            (12, _) => {
                let mut ids: Vec<String> = s
                    .release_dead()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(id)
                    .collect();
                ids.sort();
                ids.join(" ")
            }
            (13, _) => shown(s.release_owned(e).await),
            (_, None) => "no workflow yet".to_string(),
            (op, Some(w)) => {
                let lease = current_lease(s, &w, &mut rng).await;
                let keys = ["s#0", "s#1", "t#0", "t#1", "w#0"];
                let key = keys[usize::try_from(rng.below(5)).unwrap()];
                match op {
                    6 => {
                        let (kind, status) = match rng.below(3) {
                            0 => (StepKind::Step, Status::Completed),
                            1 => (StepKind::Step, Status::Pending),
                            _ => (StepKind::Wait, Status::Pending),
                        };
                        shown(
                            s.commit(&cp(w.id, position, key, kind, status, lease))
                                .await
                                .map(|seen| seen.map(|seen| seen.status)),
                        )
                    }
                    7 => {
                        let status = if rng.below(2) == 0 {
                            Status::Completed
                        } else {
                            Status::Failed
                        };
                        let spawned_by = w.parent_id.filter(|_| w.queue.is_some());
                        shown(
                            s.finish(w.id, &lease, status, Some("1".into()), None, spawned_by)
                                .await,
                        )
                    }
                    8 => {
                        let suspension = Suspension {
                            workflow: w.id,
                            position,
                            wake_ms: [
                                None,
                                Some(LONG_AGO + i64::try_from(i).unwrap()),
                                Some(FAR_OFF),
                            ][usize::try_from(rng.below(3)).unwrap()],
                            wait_for: Some("something".into()),
                        };
                        let suspension = (rng.below(2) == 0).then_some(&suspension);
                        shown(s.release(w.id, &lease, suspension).await)
                    }
                    9 => {
                        let t = [Transition::Pause, Transition::Resume, Transition::Cancel]
                            [usize::try_from(rng.below(3)).unwrap()];
                        shown(s.transition(w.id, t).await)
                    }
                    10 => {
                        let topic = if rng.below(2) == 0 { "t" } else { "u" };
                        let key = format!("m{}", rng.below(3));
                        let key = (rng.below(2) == 0).then_some(key.as_str());
                        shown(s.send(&message(w.id, topic, key, "3")).await)
                    }
                    11 => {
                        let recv = Checkpoint {
                            wake_ms: Some(FAR_OFF),
                            ..cp(w.id, position, key, StepKind::Recv, Status::Pending, lease)
                        };
                        shown(s.receive(&recv, "t").await)
                    }
                    14 => {
                        drawn_ids += 1;
                        let key = format!("c#{}", rng.below(3));
                        let mut new = child(&w, position, &key, lease);
                        if rng.below(3) == 0 {
                            new.spawn = Some(Spawn {
                                queue: "qa",
                                app_version: None,
                            });
                        }
                        match s.start_child(&new).await {
                            Ok(ChildStart::Created(row)) => format!("created {}", wf(&row)),
                            Ok(ChildStart::Recorded(e)) => format!("recorded {}", entry(&e)),
                            Ok(ChildStart::Fenced) => "fenced".to_string(),
                            Err(e) => error(&e),
                        }
                    }
                    15 => {
                        let effect = match rng.below(4) {
                            0 => Effect::Event {
                                key: "e",
                                value: "1",
                            },
                            1 => Effect::Stream {
                                key: "st",
                                value: Some("1"),
                            },
                            2 => Effect::Stream {
                                key: "st",
                                value: None,
                            },
                            _ => Effect::Send(message(
                                drawn(1 + u128::from(rng.below(4))),
                                "t",
                                None,
                                "4",
                            )),
                        };
                        let c = cp(
                            w.id,
                            position,
                            key,
                            StepKind::Event,
                            Status::Completed,
                            lease,
                        );
                        shown(s.commit_with(&c, &effect).await)
                    }
                    16 => shown(s.wake(w.id, "w", "{}").await),
                    _ => shown(s.set_timeout(w.id, 60_000).await),
                }
            }
        };
        out.push(format!("{i}: {line}"));
    }
    // The state left: every workflow, its journal, events, streams.
    for n in 1..=drawn_ids {
        let w = drawn(n);
        let Some(row) = s.workflow(w).await.unwrap() else {
            continue;
        };
        out.push(wf(&row));
        out.extend(entries(&s.history_page(w, 0, 500).await.unwrap()));
        out.push(format!(
            "event={:?} stream={:?} t={} tree={}",
            s.event(w, "e").await.unwrap(),
            s.stream_page(w, "st", 0, 100).await.unwrap(),
            s.has_message(w, "t").await.unwrap(),
            s.tree(w).await.unwrap().is_some(),
        ));
    }
    out
}

/// Random operations from `seed` give the same answers and leave the
/// same state on this store as on a fresh model (on the model itself:
/// twice the same, so a seed replays).
pub(super) async fn same_as_the_model(store: Arc<dyn Store>, seed: u64) {
    let expected = transcript(memory().await.as_ref(), seed, 300).await;
    let actual = transcript(store.as_ref(), seed, 300).await;
    if std::env::var("SHOW_TRANSCRIPT").is_ok() {
        actual.iter().for_each(|line| eprintln!("{line}"));
    }
    // The run reached the interesting paths, not only refusals.
    let count = |what: &str| expected.iter().filter(|l| l.contains(what)).count();
    assert!(count("no workflow yet") < 20, "{expected:#?}");
    assert!(
        count(": true") >= 20 && count("owner=") >= 20,
        "{expected:#?}"
    );
    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
        assert_eq!(a, e, "seed {seed}, line {i}");
    }
    assert_eq!(actual.len(), expected.len(), "seed {seed}");
}

pub(super) async fn random_operations_seed_1(store: Arc<dyn Store>) {
    same_as_the_model(store, 1).await;
}

pub(super) async fn random_operations_seed_2(store: Arc<dyn Store>) {
    same_as_the_model(store, 2).await;
}

pub(super) async fn random_operations_seed_3(store: Arc<dyn Store>) {
    same_as_the_model(store, 3).await;
}
