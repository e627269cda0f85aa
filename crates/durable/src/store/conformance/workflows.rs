//! Scenarios: executors, starting roots and children, the check read, commits and their effects.

#![allow(clippy::wildcard_imports)]

use super::*;

pub(super) async fn executors_register_renew_expire(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    assert!(
        s.heartbeat(&executor(1), 60_000, Renewal::Renew)
            .await
            .unwrap()
    );
    assert!(s.owner_of(unknown()).await.unwrap().is_none());
    let r = root(s, "k", e1).await;
    let owner = |found: Option<(ExecutorRow, bool)>| {
        found.map(|(e, alive)| {
            format!(
                "{} {} {} {} alive={alive}",
                id(e.id),
                e.hostname,
                e.pid,
                e.pid_started
            )
        })
    };
    assert_eq!(
        owner(s.owner_of(r.id).await.unwrap()).as_deref(),
        Some("E1 host1 101 7 alive=true")
    );
    let live_owners = |v: Vec<ExecutorRow>| v.iter().map(|e| id(e.id)).collect::<Vec<_>>();
    assert_eq!(live_owners(s.live_owners().await.unwrap()), ["E1"]);

    // Expired at once: dead to others, and a renewal is refused.
    s.expire_executor(e1).await.unwrap();
    assert_eq!(
        owner(s.owner_of(r.id).await.unwrap()).as_deref(),
        Some("E1 host1 101 7 alive=false")
    );
    assert!(s.live_owners().await.unwrap().is_empty());
    assert!(
        !s.heartbeat(&executor(1), 60_000, Renewal::Renew)
            .await
            .unwrap()
    );
    assert!(
        s.owner_of(r.id)
            .await
            .unwrap()
            .is_some_and(|(_, alive)| !alive)
    );

    // Registering again revives it; only the lease of an existing row
    // changes.
    let mut again = executor(1);
    again.hostname = "elsewhere".to_string();
    again.pid = 999;
    assert!(
        s.heartbeat(&again, 60_000, Renewal::Register)
            .await
            .unwrap()
    );
    assert_eq!(
        owner(s.owner_of(r.id).await.unwrap()).as_deref(),
        Some("E1 host1 101 7 alive=true")
    );
    assert_eq!(live_owners(s.live_owners().await.unwrap()), ["E1"]);

    // Unknown executors expire without error; a lease that lapsed
    // (registered already expired) is not renewed.
    s.expire_executor(exec_id(9)).await.unwrap();
    dead(s, 2).await;
    assert!(
        !s.heartbeat(&executor(2), 60_000, Renewal::Renew)
            .await
            .unwrap()
    );
    // A finished workflow does not make its owner a live owner.
    let lease = lease(&r);
    assert!(
        s.finish(
            r.id,
            &lease,
            Status::Completed,
            Some("1".into()),
            None,
            None
        )
        .await
        .unwrap()
    );
    assert!(s.live_owners().await.unwrap().is_empty());
}

pub(super) async fn start_root_new_existing_refused_recovered(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (e1, e2) = (live(s, 1).await, live(s, 2).await);
    let new = |key, name, owner| NewRoot {
        key,
        name,
        input: Some(r#"{"a":1}"#.to_string()),
        owner,
    };
    let shown = |started: Started| match started {
        Started::Claimed { row, created } => format!("claimed created={created}: {}", wf(&row)),
        Started::Refused(row) => format!("refused: {}", wf(&row)),
    };
    let started = s.start_root(&new("k", "wf", e1)).await.unwrap();
    assert_eq!(
        shown(started),
        r#"claimed created=true: #1 k wf RUNNING in={"a":1} owner=E1 epoch=1 attempts=1 started=now"#
    );
    // The same owner again: the same claim (no new epoch, no attempt).
    let started = s.start_root(&new("k", "wf", e1)).await.unwrap();
    assert_eq!(
        shown(started),
        r#"claimed created=false: #1 k wf RUNNING in={"a":1} owner=E1 epoch=1 attempts=1 started=now"#
    );
    // Another executor while the owner lives, or another name: refused.
    let started = s.start_root(&new("k", "wf", e2)).await.unwrap();
    assert_eq!(
        shown(started),
        r#"refused: #1 k wf RUNNING in={"a":1} owner=E1 epoch=1 attempts=1 started=now"#
    );
    let started = s.start_root(&new("k", "other", e1)).await.unwrap();
    assert!(shown(started).starts_with("refused: #1 k wf RUNNING"));
    // The owner died: taken over, a recovery under a new epoch.
    s.expire_executor(e1).await.unwrap();
    let started = s.start_root(&new("k", "wf", e2)).await.unwrap();
    assert_eq!(
        shown(started),
        r#"claimed created=false: #1 k wf RUNNING in={"a":1} owner=E2 epoch=2 attempts=2 recoveries=1 started=now"#
    );
    let by_key = s.root_by_key("k").await.unwrap().expect("the root");
    assert_eq!(wf(&by_key), row(s, drawn(1)).await);
    assert!(s.root_by_key("nope").await.unwrap().is_none());
    assert!(s.workflow(unknown()).await.unwrap().is_none());
    // Finished: refused to everyone, its owner too.
    let l = lease(&by_key);
    assert!(
        s.finish(
            by_key.id,
            &l,
            Status::Completed,
            Some("2".into()),
            None,
            None
        )
        .await
        .unwrap()
    );
    let started = s.start_root(&new("k", "wf", e2)).await.unwrap();
    assert!(shown(started).starts_with("refused: #1 k wf COMPLETED"));
    // Every start drew an id (six so far): the next root is #7.
    let other = root(s, "k2", e2).await;
    assert_eq!(id(other.id), "#7");
}

pub(super) async fn start_child_created_recorded_fenced(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let r = root(s, "k", e1).await;
    let l = lease(&r);
    let c = start_child(s, &child(&r, 0, "c#0", l)).await;
    assert_eq!(
        wf(&c),
        "#2 c#0 c RUNNING root=#1 parent=#1 at=0 in=7 attempts=1 started=now"
    );
    assert_eq!(
        entry_at(s, r.id, 0).await.as_deref(),
        Some(
            "@0 c#0 c WORKFLOW COMPLETED completed=now child=#2 c#0 c RUNNING root=#1 parent=#1 at=0 in=7 attempts=1 started=now"
        )
    );
    // The same call again (another handle): recorded.
    match s.start_child(&child(&r, 0, "c#0", l)).await.unwrap() {
        ChildStart::Recorded(e) => assert!(entry(&e).starts_with("@0 c#0 c WORKFLOW COMPLETED")),
        other => panic!("{other:?}"),
    }
    // Another call at a recorded position: nothing written, the entry there.
    match s.start_child(&child(&r, 0, "other#0", l)).await.unwrap() {
        ChildStart::Recorded(e) => assert!(entry(&e).starts_with("@0 c#0 c WORKFLOW")),
        other => panic!("{other:?}"),
    }
    // A stale lease: fenced, nothing written.
    assert!(matches!(
        s.start_child(&child(&r, 1, "d#0", stale(l))).await.unwrap(),
        ChildStart::Fenced
    ));
    assert_eq!(entry_at(s, r.id, 1).await, None);
    // A key taken at another position, no entry at this one: fenced too.
    assert!(matches!(
        s.start_child(&child(&r, 5, "c#0", l)).await.unwrap(),
        ChildStart::Fenced
    ));
    // A spawned child: pending on its queue, its own run unit.
    let new = NewChild {
        spawn: Some(Spawn {
            queue: "default",
            app_version: Some("v1"),
        }),
        ..child(&r, 1, "s#0", l)
    };
    let sp = start_child(s, &new).await;
    assert_eq!(
        wf(&sp),
        "#7 s#0 s PENDING root=#1 parent=#1 at=1 in=7 queue=default ver=v1"
    );
    assert_eq!(
        entry_at(s, r.id, 1).await.as_deref(),
        Some(
            "@1 s#0 s SPAWN COMPLETED completed=now child=#7 s#0 s PENDING root=#1 parent=#1 at=1 in=7 queue=default ver=v1"
        )
    );
    // A grandchild under the inline child, fenced by the root's lease.
    let g = start_child(s, &child(&c, 0, "g#0", l)).await;
    assert_eq!(
        wf(&g),
        "#8 g#0 g RUNNING root=#1 parent=#2 at=0 in=7 attempts=1 started=now"
    );
    let history = s.history_page(r.id, 0, 500).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.position).collect::<Vec<_>>(),
        [0, 1]
    );
}

pub(super) async fn check_reads_states_deadlines_holder_entry(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let r = root(s, "k", e1).await;
    let l = lease(&r);
    let read = |w: Uuid, is_root: bool, holder: Uuid, position: i32| {
        let store = store.clone();
        async move {
            store
                .check(w, is_root, holder, position)
                .await
                .unwrap()
                .as_ref()
                .map(check)
        }
    };
    assert_eq!(
        read(r.id, true, r.id, 0).await.as_deref(),
        Some("holder=E1/1 RUNNING clock=now")
    );
    // A written entry says what its statement saw of the workflow.
    let seen = s.commit(&done(r.id, 0, "s#0", "1", l)).await.unwrap();
    assert_eq!(
        seen.map(|seen| (seen.status, seen.deadline_ms)),
        Some((Status::Running, None))
    );
    assert_eq!(
        read(r.id, true, r.id, 0).await.as_deref(),
        Some("holder=E1/1 RUNNING clock=now entry=@0 s#0 s STEP COMPLETED out=1 completed=now")
    );
    // The deadline is fixed the first time.
    assert!(s.set_timeout(r.id, 3_600_000).await.unwrap());
    assert!(s.set_timeout(r.id, 1_000).await.unwrap());
    assert!(!s.set_timeout(unknown(), 1_000).await.unwrap());
    assert_eq!(
        row(s, r.id).await,
        r#"#1 k wf RUNNING in={"n":1} owner=E1 epoch=1 timeout=3600000 deadline=now+60m attempts=1 started=now"#
    );
    let seen = s.commit(&done(r.id, 5, "t#0", "1", l)).await.unwrap();
    let seen = seen.expect("written");
    let left = seen.deadline_ms.expect("a deadline") - seen.now_ms;
    assert!((3_590_000..=3_600_000).contains(&left), "{left} ms left");
    // A child: its holder's lease, the earliest deadline of its chain.
    let c = start_child(s, &child(&r, 1, "c#0", l)).await;
    assert_eq!(
        read(c.id, false, r.id, 0).await.as_deref(),
        Some("holder=E1/1 RUNNING deadline=now+60m clock=now")
    );
    assert!(s.set_timeout(c.id, 600_000).await.unwrap());
    assert_eq!(
        read(c.id, false, r.id, 0).await.as_deref(),
        Some("holder=E1/1 RUNNING deadline=now+10m clock=now")
    );
    // A paused ancestor blocks; a cancelled one wins over it.
    assert_eq!(s.transition(r.id, Transition::Pause).await.unwrap(), 2);
    assert_eq!(
        read(r.id, true, r.id, 9).await.as_deref(),
        Some("holder=E1/1 PAUSED blocked=PAUSED deadline=now+60m clock=now")
    );
    assert_eq!(
        read(c.id, false, r.id, 9).await.as_deref(),
        Some("holder=E1/1 PAUSED blocked=PAUSED deadline=now+10m clock=now")
    );
    let seen = s.commit(&done(r.id, 6, "u#0", "1", l)).await.unwrap();
    assert_eq!(seen.map(|seen| seen.status), Some(Status::Paused));
    assert_eq!(s.transition(c.id, Transition::Cancel).await.unwrap(), 1);
    assert_eq!(
        read(c.id, false, r.id, 9).await.as_deref(),
        Some("holder=E1/1 CANCELLED blocked=CANCELLED deadline=now+10m clock=now")
    );
    // Unknown workflow, or unknown holder of a child: nothing.
    assert_eq!(read(unknown(), true, unknown(), 0).await, None);
    assert_eq!(read(c.id, false, unknown(), 0).await, None);
    // A root's check reads its own lease, whatever holder is passed.
    assert_eq!(
        read(r.id, true, unknown(), 9).await.as_deref(),
        Some("holder=E1/1 PAUSED blocked=PAUSED deadline=now+60m clock=now")
    );
}

pub(super) async fn commit_fenced_refused_updated(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let r = root(s, "k", e1).await;
    let l = lease(&r);
    assert!(written(s, &done(r.id, 0, "s#0", "1", l)).await);
    // A finished entry is never overwritten.
    assert!(!written(s, &done(r.id, 0, "s#0", "2", l)).await);
    assert_eq!(
        entry_at(s, r.id, 0).await.as_deref(),
        Some("@0 s#0 s STEP COMPLETED out=1 completed=now")
    );
    // A pending entry (between retries) is updated by the same call; its
    // name, retry limit and start time stay as first written.
    let retrying = Checkpoint {
        error: Some("boom".into()),
        retry_count: 1,
        max_retries: 3,
        ..cp(r.id, 1, "s#1", StepKind::Step, Status::Pending, l)
    };
    assert!(written(s, &retrying).await);
    assert_eq!(
        entry_at(s, r.id, 1).await.as_deref(),
        Some("@1 s#1 s STEP PENDING err=boom retries=1/3")
    );
    let retried = Checkpoint {
        name: "renamed",
        output: Some("3".into()),
        retry_count: 2,
        max_retries: 5,
        started_ms: FAR_OFF,
        ..cp(r.id, 1, "s#1", StepKind::Step, Status::Completed, l)
    };
    assert!(written(s, &retried).await);
    assert_eq!(
        entry_at(s, r.id, 1).await.as_deref(),
        Some("@1 s#1 s STEP COMPLETED out=3 retries=2/3 completed=now")
    );
    // Another call at a pending entry's position: refused.
    assert!(written(s, &cp(r.id, 2, "t#0", StepKind::Step, Status::Pending, l)).await);
    assert!(!written(s, &cp(r.id, 2, "u#0", StepKind::Step, Status::Completed, l)).await);
    assert!(!written(s, &cp(r.id, 2, "t#0", StepKind::Wait, Status::Completed, l)).await);
    assert_eq!(
        entry_at(s, r.id, 2).await.as_deref(),
        Some("@2 t#0 t STEP PENDING")
    );
    // A waiting call keeps its first wake-up time.
    let wait = |wake| Checkpoint {
        wake_ms: Some(wake),
        ..cp(r.id, 3, "w#0", StepKind::Wait, Status::Pending, l)
    };
    assert!(written(s, &wait(LONG_AGO)).await);
    assert!(written(s, &wait(FAR_OFF)).await);
    assert_eq!(
        entry_at(s, r.id, 3).await.as_deref(),
        Some("@3 w#0 w WAIT PENDING wake=1000")
    );
    // Fenced: another epoch, another owner.
    assert!(!written(s, &done(r.id, 4, "x#0", "1", stale(l))).await);
    let foreign = Lease {
        owner: exec_id(2),
        ..l
    };
    assert!(!written(s, &done(r.id, 4, "x#0", "1", foreign)).await);
    assert_eq!(entry_at(s, r.id, 4).await, None);
    // After a takeover the old lease writes nothing, the new one does.
    s.expire_executor(e1).await.unwrap();
    let e2 = live(s, 2).await;
    let taken = root(s, "k", e2).await;
    assert!(!written(s, &done(r.id, 4, "x#0", "1", l)).await);
    assert!(written(s, &done(r.id, 4, "x#0", "1", lease(&taken))).await);
    assert_eq!(
        entries(&s.history_page(r.id, 2, 2).await.unwrap()),
        ["@2 t#0 t STEP PENDING", "@3 w#0 w WAIT PENDING wake=1000"]
    );
    assert_eq!(s.history_page(r.id, 0, 500).await.unwrap().len(), 5);
    assert!(s.history_page(unknown(), 0, 500).await.unwrap().is_empty());
    assert_eq!(entry_at(s, unknown(), 0).await, None);
}

pub(super) async fn commit_with_effects_and_their_errors(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let a = root(s, "a", e1).await;
    let b = root(s, "b", e1).await;
    let l = lease(&a);
    let send = |position, to, key| {
        (
            cp(
                a.id,
                position,
                "send#0",
                StepKind::Send,
                Status::Completed,
                l,
            ),
            Effect::Send(message(to, "t", key, "1")),
        )
    };
    let (c, e) = send(0, b.id, Some("k1"));
    assert!(s.commit_with(&c, &e).await.unwrap());
    assert!(s.has_message(b.id, "t").await.unwrap());
    // The same key again: the entry is written, the message is not.
    let (c, e) = send(1, b.id, Some("k1"));
    assert!(s.commit_with(&c, &e).await.unwrap());
    assert!(entry_at(s, a.id, 1).await.is_some());
    // Errors of the effect leave nothing written.
    let (c, e) = send(2, unknown(), None);
    assert_eq!(
        err(s.commit_with(&c, &e).await),
        format!("NotFound({})", unknown())
    );
    assert_eq!(entry_at(s, a.id, 2).await, None);
    let f = root(s, "f", e1).await;
    assert!(
        s.finish(
            f.id,
            &lease(&f),
            Status::Completed,
            Some("0".into()),
            None,
            None
        )
        .await
        .unwrap()
    );
    let (c, e) = send(2, f.id, None);
    assert_eq!(
        err(s.commit_with(&c, &e).await),
        "InvalidTransition(#3 COMPLETED send a message to)"
    );
    let (c, e) = send(2, f.id, Some("never"));
    assert_eq!(
        err(s.commit_with(&c, &e).await),
        "InvalidTransition(#3 COMPLETED send a message to)"
    );
    assert_eq!(entry_at(s, a.id, 2).await, None);
    // Fenced: neither the entry nor the message.
    let (mut c, _) = send(2, b.id, None);
    c.lease = stale(l);
    let e = Effect::Send(message(b.id, "t2", None, "1"));
    assert!(!s.commit_with(&c, &e).await.unwrap());
    assert!(!s.has_message(b.id, "t2").await.unwrap());
    // The effect's error comes first, even where the fence would refuse.
    let (mut c, e) = send(2, unknown(), None);
    c.lease = stale(l);
    assert_eq!(
        err(s.commit_with(&c, &e).await),
        format!("NotFound({})", unknown())
    );

    // Events: the latest call's value.
    let event = |position, value| {
        (
            cp(
                a.id,
                position,
                "ev#0",
                StepKind::Event,
                Status::Completed,
                l,
            ),
            Effect::Event {
                key: "progress",
                value,
            },
        )
    };
    let (c, e) = event(3, "10");
    assert!(s.commit_with(&c, &e).await.unwrap());
    let (c, e) = event(4, "20");
    assert!(s.commit_with(&c, &e).await.unwrap());
    let (mut c, e) = event(5, "30");
    c.lease = stale(l);
    assert!(!s.commit_with(&c, &e).await.unwrap());
    // A finished entry refuses the commit, and the event with it.
    let (c, e) = event(0, "40");
    assert!(!s.commit_with(&c, &e).await.unwrap());
    assert_eq!(
        s.event(a.id, "progress").await.unwrap().as_deref(),
        Some("20")
    );
    assert_eq!(s.event(a.id, "none").await.unwrap(), None);
    assert_eq!(s.event(b.id, "progress").await.unwrap(), None);

    // Streams: items by offset, a close, nothing after it.
    let item = |position, value| {
        (
            cp(
                a.id,
                position,
                "st#0",
                StepKind::Stream,
                Status::Completed,
                l,
            ),
            Effect::Stream { key: "s", value },
        )
    };
    for (position, value) in [(5, Some("x")), (6, Some("y")), (7, None)] {
        let (c, e) = item(position, value);
        assert!(s.commit_with(&c, &e).await.unwrap());
    }
    let (c, e) = item(8, Some("z"));
    let closed = format!("InvalidInput(stream 's' of workflow {} is closed)", a.id);
    assert_eq!(err(s.commit_with(&c, &e).await), closed);
    let (c, e) = item(8, None);
    assert_eq!(err(s.commit_with(&c, &e).await), closed);
    assert_eq!(entry_at(s, a.id, 8).await, None);
    let page = |from, limit| {
        let store = store.clone();
        async move {
            store
                .stream_page(drawn(1), "s", from, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|i| format!("{}:{}", i.offset, i.value.as_deref().unwrap_or("closed")))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(0, 10).await, ["0:x", "1:y", "2:closed"]);
    assert_eq!(page(1, 1).await, ["1:y"]);
    assert!(page(5, 10).await.is_empty());
    // A fenced write to a stream takes no offset.
    let (c, e) = (
        cp(
            a.id,
            9,
            "st#1",
            StepKind::Stream,
            Status::Completed,
            stale(l),
        ),
        Effect::Stream {
            key: "s2",
            value: Some("q"),
        },
    );
    assert!(!s.commit_with(&c, &e).await.unwrap());
    assert!(s.stream_page(a.id, "s2", 0, 10).await.unwrap().is_empty());
}
