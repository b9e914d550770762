//! Kill and restart: a streaming task is stopped half-way through 100,000 messages, restarted,
//! and then every message is in Cassandra exactly once as a row, and in S3 exactly once in
//! exactly one whole object. Twice over: with the task's future dropped inside the test process,
//! and with `kill -9` of the whole `updraft` process (no drain, no last commit, no destructor).
//! Real servers on 127.0.0.1; unique names per run.

use crate::support::operators as operators_support;
use crate::support::streaming as streaming_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use serde_json::{Value, json};
use updraft::operators::{Outcome, TaskContext, execute};

use crate::support::streaming_run::{kill_9_at, spawn_task, wait_success};
use operators_support::Fixture;
use streaming_support::{Servers, unique};

const MESSAGES: i64 = 100_000;

async fn fixture(servers: &Servers, tasks: &[(&str, &str)]) -> Fixture {
    let vars = servers.conns();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Fixture::with_conns(tasks, &vars).await
}

async fn produce(s: &Servers, topic: &str) {
    s.create_topic(topic, 3).await;
    let msgs = (0..MESSAGES)
        .map(|i| {
            (
                Some(format!("k{i}")),
                json!({"id": i, "v": format!("value {i}")}).to_string().into_bytes(),
            )
        })
        .collect();
    s.produce(topic, msgs).await;
}

/// The highest "N messages in" count of the task's progress lines so far.
fn logged_progress(ctx: &TaskContext) -> u64 {
    let log = std::fs::read_to_string(ctx.log.path().unwrap()).unwrap_or_default();
    log.lines()
        .filter_map(|l| l.split_once(" messages in ").map(|(head, _)| head))
        .filter_map(|head| head.rsplit(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Runs the task until `progress` (polled) reaches `at`, then drops it (bounded wait). Returns
/// the progress seen when it was killed.
async fn kill_half_way<F, Fut>(ctx: &TaskContext, at: u64, mut progress: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let watch = async {
        let start = Instant::now();
        loop {
            let n = progress().await;
            if n >= at {
                return n;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "no progress past {n}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        r = execute(ctx) => panic!("the task finished before it was killed: {r:?}"),
        n = watch => n,
    }
}

fn done(r: Result<Outcome, updraft::operators::OperatorError>) -> Value {
    match r {
        Ok(Outcome::Done(Some(v))) => v,
        other => panic!("expected Done with XCom, got {other:?}"),
    }
}

/// A session and the sink's table `ks.t (id bigint PRIMARY KEY, v text)` in a new keyspace.
async fn sink_table(s: &Servers, ks: &str) -> scylla::client::session::Session {
    let session = s.cassandra().await;
    s.create_keyspace(&session, ks).await;
    session
        .query_unpaged(format!("CREATE TABLE {ks}.t (id bigint PRIMARY KEY, v text)"), &[])
        .await
        .unwrap();
    session.await_schema_agreement().await.unwrap();
    session
}

/// Every produced message is exactly one row of `table`, holding its own value.
async fn assert_every_message_once(session: &scylla::client::session::Session, table: &str) {
    let mut rows = session
        .query_iter(format!("SELECT id, v FROM {table}"), &[])
        .await
        .unwrap()
        .rows_stream::<(i64, String)>()
        .unwrap();
    let mut seen = vec![0u8; MESSAGES as usize];
    while let Some((id, v)) = rows.try_next().await.unwrap() {
        assert_eq!(v, format!("value {id}"), "row {id} holds its own message");
        seen[id as usize] += 1;
    }
    let missing: Vec<usize> = (0..seen.len()).filter(|i| seen[*i] == 0).take(5).collect();
    assert!(missing.is_empty(), "rows missing, e.g. {missing:?}");
    assert!(seen.iter().all(|n| *n == 1), "a row appears twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_cassandra_sink_resumes_without_loss_or_duplicates() {
    let Some(s) = Servers::get() else { return };
    let (topic, ks) = (unique("crash"), unique("ks"));
    let session = sink_table(&s, &ks).await;
    let t0 = Instant::now();
    produce(&s, &topic).await;
    eprintln!("cassandra: produced in {:?}", t0.elapsed());
    let task = format!(
        "type: kafka_to_cassandra\ntopic: {topic}\ngroup_id: {topic}\ntable: {ks}.t\n\
         columns: {{id: id, v: v}}\nprogress_interval: 0.1"
    );
    let f = fixture(&s, &[("sink", &task)]).await;
    let ctx = f.ctx("sink").await;
    let killed_at = kill_half_way(&ctx, 30_000, || async { logged_progress(&ctx) }).await;
    assert!(killed_at < MESSAGES as u64, "{killed_at}");
    eprintln!("cassandra: killed at {killed_at} after {:?}", t0.elapsed());

    let out = done(execute(&f.ctx("sink").await).await);
    eprintln!("cassandra: restart done after {:?}: {out}", t0.elapsed());
    let resumed = out["messages"].as_i64().unwrap();
    assert!(resumed < MESSAGES && resumed > 0, "the restart resumed from the commits: {out}");
    assert_eq!(out["dead_letters"], json!(0));

    assert_every_message_once(&session, &format!("{ks}.t")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_s3_sink_rewrites_the_same_objects() {
    let Some(s) = Servers::get() else { return };
    let (topic, bucket) = (unique("crash_s3"), unique("crash").replace('_', "-"));
    s.create_bucket(&bucket).await;
    produce(&s, &topic).await;
    let task = format!(
        "type: kafka_to_s3\ntopic: {topic}\ngroup_id: {topic}\nurl: 's3://{bucket}/lake'\n\
         max_records: 500"
    );
    let f = fixture(&s, &[("lake", &task)]).await;
    // Killed once 40 of its 200 objects are written: reading runs far ahead of the writes
    // here, so the objects, not the messages read, say how far it got.
    let store = s.s3_store(&bucket);
    let objects = || async {
        let prefix = object_store::path::Path::from("lake");
        let listed: Vec<_> = store.list(Some(&prefix)).collect().await;
        listed.len() as u64
    };
    let killed_at = kill_half_way(&f.ctx("lake").await, 40, objects).await;
    assert!(killed_at < 200, "killed after {killed_at} objects");

    let ctx = f.ctx("lake").await;
    let out = done(execute(&ctx).await);
    assert!(out["messages"].as_i64().unwrap() < MESSAGES, "resumed from the commits: {out}");
    let log = std::fs::read_to_string(ctx.log.path().unwrap()).unwrap_or_default();
    let rewinds = log.lines().filter(|l| l.contains("rewound")).count();
    eprintln!("s3: killed after {killed_at} objects; the restart saw {rewinds} rewind(s): {out}");

    let objects = s.objects(&bucket, "lake").await;
    let mut seen: HashMap<i64, String> = HashMap::new();
    for (key, body) in &objects {
        let name = key.rsplit('/').next().unwrap();
        let first: i64 =
            name.trim_end_matches(".jsonl").rsplit('-').next().unwrap().parse().unwrap();
        assert!(first >= 0, "{key}");
        for line in body.lines() {
            let id = serde_json::from_str::<Value>(line).unwrap()["id"].as_i64().unwrap();
            if let Some(other) = seen.insert(id, key.clone()) {
                panic!("message {id} is in {other} and in {key}");
            }
        }
    }
    assert_eq!(seen.len() as i64, MESSAGES, "every message is in an object");
}

fn spawn_sink(s: &Servers, dir: &std::path::Path, task_yaml: &str) -> std::process::Child {
    spawn_task(dir, task_yaml, &s.conns())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_process_mid_cassandra_sink_loses_and_duplicates_nothing() {
    let Some(s) = Servers::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (topic, ks) = (unique("kill9"), unique("ks"));
    let session = sink_table(&s, &ks).await;
    produce(&s, &topic).await;
    let task = format!(
        "type: kafka_to_cassandra\ntopic: {topic}\ngroup_id: {topic}\ntable: {ks}.t\n\
         columns: {{id: id, v: v}}"
    );
    let table = format!("{ks}.t");
    let mut first = spawn_sink(&s, dir.path(), &task);
    let killed_at = kill_9_at(&mut first, 30_000, || async {
        streaming_support::count_rows(&session, &table).await as u64
    })
    .await;
    assert!(killed_at < MESSAGES as u64, "killed after {killed_at} rows");

    wait_success(spawn_sink(&s, dir.path(), &task), dir.path());
    assert_every_message_once(&session, &table).await;
    assert_eq!(streaming_support::count_rows(&session, &table).await, MESSAGES, "count in = out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_process_mid_s3_sink_leaves_whole_objects_each_message_once() {
    let Some(s) = Servers::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (topic, bucket) = (unique("kill9_s3"), unique("kill9").replace('_', "-"));
    s.create_bucket(&bucket).await;
    produce(&s, &topic).await;
    let task = format!(
        "type: kafka_to_s3\ntopic: {topic}\ngroup_id: {topic}\nurl: 's3://{bucket}/lake'\n\
         max_records: 500"
    );
    let store = s.s3_store(&bucket);
    let mut first = spawn_sink(&s, dir.path(), &task);
    let killed_at = kill_9_at(&mut first, 40, || async {
        let prefix = object_store::path::Path::from("lake");
        let listed: Vec<_> = store.list(Some(&prefix)).collect().await;
        listed.len() as u64
    })
    .await;
    assert!(killed_at < 200, "killed after {killed_at} of 200 objects");

    wait_success(spawn_sink(&s, dir.path(), &task), dir.path());
    let mut seen: HashMap<i64, String> = HashMap::new();
    for (key, body) in s.objects(&bucket, "lake").await {
        // A reader sees whole objects only: every line is a complete message.
        assert!(body.ends_with('\n'), "{key} ends mid-line");
        for line in body.lines() {
            let msg: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{key} holds a partial line `{line}`: {e}"));
            let id = msg["id"].as_i64().unwrap();
            if let Some(other) = seen.insert(id, key.clone()) {
                panic!("message {id} is in {other} and in {key}");
            }
        }
    }
    assert_eq!(seen.len() as i64, MESSAGES, "count in = out: every message is in an object");
}
