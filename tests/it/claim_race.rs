//! Races of the claims: two callers at once on the same work. Starting a try and queueing are
//! compare-and-set writes inside one transaction, so two workers never start the same try and
//! two schedulers never queue past a pool. Each store here is its own connection pool, as two
//! processes would have. On SQLite and PostgreSQL.

use crate::support::common;

use chrono::Utc;
use common::{Db, Env, both};
use std::collections::HashMap;
use updraft::dag::parse_dag_str;
use updraft::model::TaskState;
use updraft::store::{FinishTry, NewTi, QueueCaps, Store, TiRow, TiUpdate};

/// A DAG of `n` independent tasks in pool `p`, one started run of it, and its instances moved
/// to scheduled. Returns the instances.
async fn scheduled_tis(env: &Env, n: usize) -> Vec<TiRow> {
    let mut yaml = String::from("dag_id: race\ntasks:\n");
    for i in 0..n {
        yaml.push_str(&format!("  t{i}: {{type: empty, pool: p}}\n"));
    }
    let dag = parse_dag_str(&yaml, "race.yaml".as_ref()).expect("valid DAG");
    let now = Utc::now();
    env.store.sync_dags([&dag], [], now).await.expect("sync");
    env.store.set_pool("p", 3, "three slots").await.expect("pool");
    let run = env.trigger("race", serde_json::json!({})).await;
    let tis: Vec<_> = dag.tasks.values().map(NewTi::for_task).collect();
    assert!(env.store.start_run(run.id, None, &tis, now).await.expect("start run"));
    let rows = env.store.run_tis(run.id).await.expect("tis");
    let updates: Vec<TiUpdate> = rows
        .iter()
        .map(|t| TiUpdate { id: t.id, from: t.state, to: TaskState::Scheduled, note: None })
        .collect();
    env.store.apply_ti_updates(&updates, now).await.expect("schedule");
    env.store.run_tis(run.id).await.expect("tis")
}

/// A second store on the same database: another process's view.
async fn other_store(env: &Env) -> Store {
    Store::open(&env.settings.database_url).await.expect("second store")
}

async fn two_workers_start_one_queued_try_once(env: Env) {
    let tis = scheduled_tis(&env, 1).await;
    let no_caps = HashMap::new();
    let caps = QueueCaps::local(1, &no_caps);
    let queued =
        env.store.queue_scheduled(&caps, Some("scheduler"), Utc::now()).await.expect("queue");
    assert_eq!(queued.len(), 1);
    let other = other_store(&env).await;
    let id = tis[0].id;
    let log = |n: i64| format!("try-{n}.log");
    let (a, b) = tokio::join!(
        env.store.start_try(&queued[0], "host-a", 1, "worker-a", log, Utc::now()),
        other.start_try(&queued[0], "host-b", 2, "worker-b", log, Utc::now()),
    );
    let (a, b) = (a.expect("start a"), b.expect("start b"));
    assert!(a.is_some() != b.is_some(), "exactly one worker starts the try: {a:?} / {b:?}");
    let ti = env.store.get_ti(id).await.expect("get").expect("exists");
    assert_eq!((ti.state, ti.try_number), (TaskState::Running, 1), "one try, started once");
    let tries = env.store.tries(id).await.expect("tries");
    assert_eq!(tries.len(), 1, "one try recorded: {tries:?}");
}

async fn two_schedulers_never_queue_past_a_pool(env: Env) {
    let tis = scheduled_tis(&env, 10).await;
    let other = other_store(&env).await;
    let none = HashMap::new();
    let caps = QueueCaps::local(8, &none);
    let (a, b) = tokio::join!(
        env.store.queue_scheduled(&caps, Some("scheduler-a"), Utc::now()),
        other.queue_scheduled(&caps, Some("scheduler-b"), Utc::now()),
    );
    let (a, b) = (a.expect("queue a"), b.expect("queue b"));
    assert_eq!(a.len() + b.len(), 3, "the pool has 3 slots: {} + {} queued", a.len(), b.len());
    let mut queued = 0;
    for ti in &tis {
        let now = env.store.get_ti(ti.id).await.expect("get").expect("exists");
        queued += usize::from(now.state == TaskState::Queued);
    }
    assert_eq!(queued, 3, "the store agrees with what the callers were handed");
}

/// Many tries started and ended at once through one store are written in shared
/// transactions (`store/group.rs`): each caller still gets its own compare-and-set answer.
async fn tries_started_and_ended_together_each_get_their_own_answer(env: Env) {
    scheduled_tis(&env, 12).await;
    env.store.set_pool("p", 100, "room for all").await.expect("pool");
    let no_caps = HashMap::new();
    let caps = QueueCaps::local(100, &no_caps);
    let tis = env.store.queue_scheduled(&caps, Some("scheduler"), Utc::now()).await.expect("queue");
    assert_eq!(tis.len(), 12);
    let log = |n: i64| format!("try-{n}.log");
    // Two starts per instance, all at once: one of each pair wins.
    let starts = tis.iter().flat_map(|ti| {
        let store = &env.store;
        [0, 1].map(move |w| store.start_try(ti, "host", w, "worker", log, Utc::now()))
    });
    let started = futures::future::join_all(starts).await;
    for (ti, pair) in tis.iter().zip(started.chunks(2)) {
        let won: Vec<_> = pair.iter().map(|r| r.as_ref().expect("start").is_some()).collect();
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{}: one start of two: {won:?}", ti.id);
    }
    // Every end at once, and one for a try that is not running: only that one misses.
    let end = |ti: &TiRow, try_number| FinishTry {
        ti_id: ti.id,
        try_number,
        state: TaskState::Success,
        next_try_at: None,
        first_poke_at: None,
        end: Utc::now(),
        error: None,
        rendered: None,
        xcom: Some(serde_json::json!({"ti": ti.id.0})),
        owner_process: "worker".into(),
        give_back_try: false,
        outlets: Vec::new(),
        outlet_extra: serde_json::Value::Null,
        notify: None,
    };
    let mut ends: Vec<FinishTry> = tis.iter().map(|ti| end(ti, 1)).collect();
    ends.push(end(&tis[0], 7));
    let done = futures::future::join_all(ends.iter().map(|f| env.store.finish_try(f))).await;
    let done: Vec<bool> = done.into_iter().map(|r| r.expect("finish")).collect();
    assert_eq!(done[..12], [true; 12], "each running try ends");
    assert!(!done[12], "an end for try 7, which never ran, writes nothing");
    for ti in &tis {
        let now = env.store.get_ti(ti.id).await.expect("get").expect("exists");
        assert_eq!((now.state, now.try_number), (TaskState::Success, 1), "{}", ti.id);
        let tries = env.store.tries(ti.id).await.expect("tries");
        assert_eq!(tries.len(), 1, "one try recorded: {tries:?}");
        assert_eq!(tries[0].state, TaskState::Success);
    }
    let xcoms = env.store.run_xcoms(tis[0].run_pk).await.expect("xcoms");
    assert_eq!(xcoms.len(), 12, "each try's return value stored once");
}

async fn runs_started_at_once_from_different_sources_each_record_the_version_they_pin(env: Env) {
    let source = |n: usize| {
        let mut yaml = String::from("dag_id: versions\ntasks:\n");
        for i in 0..=n {
            yaml.push_str(&format!("  t{i}: {{type: empty}}\n"));
        }
        parse_dag_str(&yaml, "versions.yaml".as_ref()).expect("valid DAG")
    };
    let now = Utc::now();
    env.store.sync_dags([&source(0)], [], now).await.expect("sync");
    const N: usize = 6;
    let mut runs = Vec::new();
    for _ in 0..N {
        runs.push(env.trigger("versions", serde_json::json!({})).await);
    }
    // Each start comes from its own process, holding a source no scan recorded.
    let dags: Vec<_> = (1..=N).map(source).collect();
    let mut stores = Vec::new();
    for _ in 0..N {
        stores.push(other_store(&env).await);
    }
    let starts = runs.iter().zip(&dags).zip(&stores).map(|((run, dag), store)| {
        let tis: Vec<_> = dag.tasks.values().map(NewTi::for_task).collect();
        async move { store.start_run(run.id, Some(dag), &tis, now).await }
    });
    for started in futures::future::join_all(starts).await {
        assert!(started.expect("start run"), "every run starts");
    }
    let mut numbers = Vec::new();
    for (run, dag) in runs.iter().zip(&dags) {
        let pinned = env.store.get_run(run.id).await.expect("run").dag_version;
        assert_eq!(pinned.as_deref(), Some(dag.version.as_str()));
        let stored = env.store.dag_version("versions", &dag.version).await.expect("recorded");
        assert_eq!(stored.source, dag.source);
        numbers.push(stored.number);
    }
    numbers.sort();
    assert_eq!(numbers, (2..=(N as i64) + 1).collect::<Vec<_>>(), "one number per version");
}

both!(
    two_workers_start_one_queued_try_once,
    two_schedulers_never_queue_past_a_pool,
    tries_started_and_ended_together_each_get_their_own_answer,
    runs_started_at_once_from_different_sources_each_record_the_version_they_pin
);
