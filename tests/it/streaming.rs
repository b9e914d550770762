//! The Kafka, Cassandra and S3 task types against the real servers (started by scripts/test.sh,
//! all on 127.0.0.1): produce, cql, kafka_to_cassandra (write time, offsets, dead letters),
//! kafka_to_s3 (objects, names, re-runs), s3 operations, the sensors, and http_to_kafka against
//! a local HTTP server. Every test uses its own topics, keyspaces and buckets.

use crate::support::operators as operators_support;
use crate::support::streaming as streaming_support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use updraft::operators::{OperatorError, Outcome, execute};

use operators_support::Fixture;
use streaming_support::{Servers, count_rows, unique};

async fn fixture(servers: &Servers, tasks: &[(&str, &str)], extra: &[(&str, &str)]) -> Fixture {
    let mut vars = servers.conns();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Fixture::with_conns(tasks, &vars).await
}

fn done(r: Result<Outcome, OperatorError>) -> Value {
    match r {
        Ok(Outcome::Done(Some(v))) => v,
        other => panic!("expected Done with XCom, got {other:?}"),
    }
}

fn user(id: &str, name: &str, age: Value) -> Value {
    json!({"login": {"uuid": id}, "name": {"first": name}, "age": age,
           "registered": {"date": "2020-05-06T07:08:09.000Z"}})
}

const UUIDS: [&str; 3] = [
    "0b7b2c2e-1f6a-4c53-9a0e-3d8f8c1e0001",
    "0b7b2c2e-1f6a-4c53-9a0e-3d8f8c1e0002",
    "0b7b2c2e-1f6a-4c53-9a0e-3d8f8c1e0003",
];

#[tokio::test]
async fn produce_cql_and_kafka_to_cassandra_upsert_with_write_times() {
    let Some(s) = Servers::get() else { return };
    let (topic, ks) = (unique("users"), unique("ks"));
    s.create_topic(&topic, 3).await;
    let records: Vec<Value> =
        UUIDS.iter().enumerate().map(|(i, id)| user(id, &format!("n{i}"), json!(30 + i))).collect();
    let sink = format!(
        "type: kafka_to_cassandra\ntopic: {topic}\ngroup_id: {topic}\ntable: {ks}.users\n\
         columns: {{id: login.uuid, first_name: name.first, age: {{path: age, type: int}}, \
         registered: registered.date, k: $key, off: $offset}}\nprogress_interval: 1s"
    );
    let f = fixture(
        &s,
        &[
            (
                "ddl",
                &format!(
                    "type: cql\nstatements:\n - \"CREATE KEYSPACE {ks} WITH replication = \
                     {{'class': 'SimpleStrategy', 'replication_factor': '1'}}\"\n - CREATE TABLE \
                     {ks}.users (id uuid PRIMARY KEY, first_name text, age int, registered \
                     timestamp, k text, off bigint)\n - SELECT keyspace_name FROM \
                     system_schema.keyspaces WHERE keyspace_name = '{ks}'"
                ),
            ),
            (
                "produce",
                &format!(
                    "type: kafka_produce\ntopic: {topic}\nkey: '{{{{ record.login.uuid }}}}'\n\
                     records: {}",
                    serde_json::to_string(&records).unwrap()
                ),
            ),
            ("sink", &sink),
        ],
        &[],
    )
    .await;
    assert_eq!(done(execute(&f.ctx("ddl").await).await), json!([{"keyspace_name": ks}]));
    let out = done(execute(&f.ctx("produce").await).await);
    assert_eq!(out["messages"], json!(3));
    let ctx = f.ctx("sink").await;
    let out = done(execute(&ctx).await);
    assert_eq!((out["messages"].clone(), out["rows"].clone()), (json!(3), json!(3)), "{out}");
    let log = std::fs::read_to_string(ctx.log.path().unwrap()).unwrap();
    assert!(log.contains("3 messages: 3 rows, 0 dead letters"), "{log}");

    let session = s.cassandra().await;
    assert_eq!(count_rows(&session, &format!("{ks}.users")).await, 3);
    let row = session
        .query_unpaged(
            format!(
                "SELECT first_name, age, k, WRITETIME(first_name) FROM {ks}.users WHERE id = {}",
                UUIDS[0]
            ),
            &[],
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (name, age, key, wt): (String, i32, String, i64) = row.first_row().unwrap();
    assert_eq!((name.as_str(), age, key.as_str()), ("n0", 30, UUIDS[0]));
    let now_us = chrono::Utc::now().timestamp_micros();
    assert!((now_us - wt).abs() < 120_000_000, "write time is the message time: {wt}");

    // Offsets were committed: the same group finds nothing new.
    let out = done(execute(&f.ctx("sink").await).await);
    assert_eq!(out["messages"], json!(0));

    // A replay of an older version of the row (older Kafka timestamp) does not overwrite it; a
    // newer one does.
    let old = user(UUIDS[0], "old", json!(1)).to_string().into_bytes();
    s.produce_at(&topic, vec![(Some(UUIDS[0].into()), old)], Some(1_000_000_000_000)).await;
    let new = user(UUIDS[1], "new", json!(2)).to_string().into_bytes();
    s.produce(&topic, vec![(Some(UUIDS[1].into()), new)]).await;
    let out = done(execute(&f.ctx("sink").await).await);
    assert_eq!(out["rows"], json!(2), "{out}");
    let names = session
        .query_unpaged(format!("SELECT id, first_name FROM {ks}.users"), &[])
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let names: BTreeSet<String> =
        names.rows::<(uuid::Uuid, String)>().unwrap().map(|r| r.unwrap().1).collect();
    assert_eq!(names, ["n0", "n2", "new"].into_iter().map(String::from).collect());
}

#[tokio::test]
async fn malformed_messages_go_to_the_dead_letter_topic_with_reasons() {
    let Some(s) = Servers::get() else { return };
    let (topic, ks) = (unique("dl"), unique("ks"));
    s.create_topic(&topic, 2).await;
    let session = s.cassandra().await;
    s.create_keyspace(&session, &ks).await;
    session
        .query_unpaged(format!("CREATE TABLE {ks}.t (id uuid PRIMARY KEY, n int)"), &[])
        .await
        .unwrap();
    session.await_schema_agreement().await.unwrap();
    let good = |i: usize| {
        let id = format!("00000000-0000-4000-8000-{:012}", i);
        json!({"id": id, "n": i}).to_string()
    };
    let mut msgs: Vec<String> = (0..50).map(good).collect();
    let bad = [
        ("not json at all", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (r#"{"n": 5}"#, "primary key column `id` is missing"),
        (r#"{"id": "nope", "n": 5}"#, "column `id` (id): \"nope\" is not a uuid"),
        (r#"{"id": "00000000-0000-4000-8000-000000000999", "n": "many"}"#, "column `n` (n)"),
    ];
    for (i, (payload, _)) in bad.iter().enumerate() {
        msgs.insert(i * 10 + 3, payload.to_string());
    }
    let n = msgs.len();
    s.produce(&topic, msgs.into_iter().map(|m| (Some("k".to_string()), m.into_bytes())).collect())
        .await;
    let dlq = format!("{topic}_dead");
    let f = fixture(
        &s,
        &[(
            "sink",
            &format!(
                "type: kafka_to_cassandra\ntopic: {topic}\ngroup_id: {topic}\ntable: {ks}.t\n\
                 columns: {{id: id, n: n}}\ndead_letter_topic: {dlq}"
            ),
        )],
        &[],
    )
    .await;
    let out = done(execute(&f.ctx("sink").await).await);
    assert_eq!(out["messages"], json!(n));
    assert_eq!((out["rows"].clone(), out["dead_letters"].clone()), (json!(50), json!(5)), "{out}");
    assert_eq!(count_rows(&session, &format!("{ks}.t")).await, 50);
    let letters = s.read_all(&dlq, Duration::from_secs(20));
    assert_eq!(letters.len(), 5, "{letters:?}");
    for (payload, reason) in bad {
        let found = letters
            .iter()
            .find(|(_, p, _)| p == payload)
            .unwrap_or_else(|| panic!("{payload} is not in the dead-letter topic: {letters:?}"));
        let why = &found.2["updraft.error"];
        assert!(why.contains(reason), "{payload}: reason `{why}` lacks `{reason}`");
        assert!(found.2["updraft.source"].starts_with(&format!("{topic}/")), "{found:?}");
        assert_eq!(found.0.as_deref(), Some("k"), "the key is kept");
    }
}

#[tokio::test]
async fn cancelling_a_forever_sink_stops_promptly() {
    let Some(s) = Servers::get() else { return };
    let (topic, ks) = (unique("forever"), unique("ks"));
    s.create_topic(&topic, 1).await;
    let session = s.cassandra().await;
    s.create_keyspace(&session, &ks).await;
    session.query_unpaged(format!("CREATE TABLE {ks}.t (id int PRIMARY KEY)"), &[]).await.unwrap();
    session.await_schema_agreement().await.unwrap();
    let f = fixture(
        &s,
        &[(
            "sink",
            &format!(
                "type: kafka_to_cassandra\ntopic: {topic}\ngroup_id: {topic}\ntable: {ks}.t\n\
                 columns: {{id: id}}\nuntil: forever"
            ),
        )],
        &[],
    )
    .await;
    let ctx = f.ctx("sink").await;
    let cancel = ctx.cancel.clone();
    let stopper = async {
        // Kept sleep: the cancel must land while the sink's loop waits on a topic that never
        // ends (`until: forever`); what is measured is how fast it stops after that.
        tokio::time::sleep(Duration::from_secs(3)).await;
        cancel.cancel();
        std::time::Instant::now()
    };
    let (result, cancelled_at) = tokio::join!(execute(&ctx), stopper);
    assert!(cancelled_at.elapsed() < Duration::from_secs(2), "{:?}", cancelled_at.elapsed());
    assert!(matches!(result, Err(OperatorError::Retryable(m)) if m.starts_with("killed")));
}

#[tokio::test]
async fn kafka_produce_reads_a_json_lines_file_with_templated_keys() {
    let Some(s) = Servers::get() else { return };
    let topic = unique("file");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.jsonl");
    std::fs::write(
        &path,
        "{\"sym\": \"AAPL\", \"p\": 1}\n\n{\"sym\": \"MSFT\", \"p\": 2}\n\"plain text\"\n",
    )
    .unwrap();
    let f = fixture(
        &s,
        &[(
            "p",
            &format!(
                "type: kafka_produce\ntopic: {topic}\nfile: '{}'\nkey: \"{{{{ record.sym | default('none') | lower }}}}-{{{{ ds }}}}\"",
                path.display()
            ),
        )],
        &[],
    )
    .await;
    let out = done(execute(&f.ctx("p").await).await);
    assert_eq!(out["messages"], json!(3));
    let mut got: Vec<(Option<String>, Value)> = s
        .read_all(&topic, Duration::from_secs(20))
        .into_iter()
        .map(|(k, v, _)| (k, serde_json::from_str(&v).unwrap_or(Value::String(v))))
        .collect();
    got.sort_by_key(|(k, _)| k.clone());
    let want = vec![
        (Some("aapl-2026-01-02".to_string()), json!({"sym": "AAPL", "p": 1})),
        (Some("msft-2026-01-02".to_string()), json!({"sym": "MSFT", "p": 2})),
        (Some("none-2026-01-02".to_string()), json!("plain text")),
    ];
    assert_eq!(got, want);
}

#[tokio::test]
async fn max_messages_and_duration_bound_a_run() {
    let Some(s) = Servers::get() else { return };
    let (topic, ks) = (unique("bounded"), unique("ks"));
    s.create_topic(&topic, 1).await;
    let session = s.cassandra().await;
    s.create_keyspace(&session, &ks).await;
    session.query_unpaged(format!("CREATE TABLE {ks}.t (id int PRIMARY KEY)"), &[]).await.unwrap();
    session.await_schema_agreement().await.unwrap();
    let msgs = (0..20).map(|i| (None, json!({"id": i}).to_string().into_bytes())).collect();
    s.produce(&topic, msgs).await;
    let sink = |until: &str| {
        format!(
            "type: kafka_to_cassandra\ntopic: {topic}\ngroup_id: {topic}\ntable: {ks}.t\n\
             columns: {{id: id}}\nuntil: {until}"
        )
    };
    let f = fixture(
        &s,
        &[("five", &sink("{max_messages: 5}")), ("two_secs", &sink("{duration: 2s}"))],
        &[],
    )
    .await;
    let out = done(execute(&f.ctx("five").await).await);
    assert_eq!((out["messages"].clone(), out["rows"].clone()), (json!(5), json!(5)));
    let started = std::time::Instant::now();
    let out = done(execute(&f.ctx("two_secs").await).await);
    let took = started.elapsed();
    assert_eq!(out["messages"], json!(15), "resumes after the first five: {out}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(10), "{took:?}");
    assert_eq!(count_rows(&session, &format!("{ks}.t")).await, 20);
}
