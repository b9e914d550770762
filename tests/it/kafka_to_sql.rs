//! `kafka_to_sql` against real Kafka, PostgreSQL and MariaDB on 127.0.0.1 (and SQLite): upserts keep the
//! last message of a key (inside a batch and across batches); rows the database refuses go to
//! the dead-letter topic with its reason while the rest of their batch is written; tombstones
//! delete rows; a mapping to a missing column fails at start naming task, field and column;
//! and kill -9 of the `updraft` process in the middle of 100,000 messages, then a restart,
//! loses no row and leaves no duplicate key.

use crate::support::operators::Fixture;
use crate::support::streaming::{Servers, unique};
use crate::support::streaming_run::{kill_9_at, spawn_task, wait_success};
use crate::support::tables::{TestDb, conns, kafka, produce_tombstone};

use std::time::Duration;

use serde_json::{Value, json};
use updraft::operators::{Outcome, execute};

async fn fixture(k: &Servers, db: &TestDb, task: &str) -> Fixture {
    let vars = conns(k, db);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    Fixture::with_conns(&[("sink", task)], &vars).await
}

async fn run(f: &Fixture) -> Value {
    match execute(&f.ctx("sink").await).await {
        Ok(Outcome::Done(Some(v))) => v,
        other => panic!("expected Done with XCom, got {other:?}"),
    }
}

fn msg(key: &str, v: Value) -> (Option<String>, Vec<u8>) {
    (Some(key.to_string()), v.to_string().into_bytes())
}

async fn upserts_dead_letters_and_tombstones(db: TestDb, k: Servers) {
    let topic = unique("sink");
    k.create_topic(&topic, 1).await;
    let text = db.text();
    db.exec(&format!(
        "CREATE TABLE flights (id BIGINT PRIMARY KEY, status {text} NOT NULL, gate INT, \
         CHECK (gate IS NULL OR gate > 0))"
    ))
    .await;
    db.exec("INSERT INTO flights VALUES (9, 'gone', NULL)").await;
    k.produce(
        &topic,
        vec![
            msg("1", json!({"id": 1, "s": {"status": "scheduled"}, "gate": 4})),
            msg("2", json!({"id": 2, "s": {"status": "boarding"}, "gate": 7})),
            // The same key again in the same batch: the last one wins.
            msg("1", json!({"id": 1, "s": {"status": "departed"}, "gate": 4})),
            // Refused by the database (NOT NULL, CHECK), and not JSON at all.
            msg("3", json!({"id": 3, "gate": 2})),
            msg("4", json!({"id": 4, "s": {"status": "x"}, "gate": -1})),
            (Some("5".into()), b"{not json".to_vec()),
            msg("6", json!({"id": 6, "s": {"status": "landed"}})),
        ],
    )
    .await;
    // A tombstone deletes the row its key names.
    produce_tombstone(&k, &topic, "9").await;
    let task = format!(
        "type: kafka_to_sql\nsql_connection: db\ntopic: {topic}\ngroup_id: {topic}\n\
         table: flights\nmode: upsert\nkey_columns: [id]\ndelete_on_tombstone: true\n\
         columns: {{id: id, status: s.status, gate: gate}}"
    );
    let f = fixture(&k, &db, &task).await;
    let out = run(&f).await;
    assert_eq!(out["messages"], json!(8), "{out}");
    assert_eq!(out["rows"], json!(3), "{out}");
    assert_eq!(out["deleted"], json!(1), "{out}");
    assert_eq!(out["dead_letters"], json!(3), "{out}");
    assert_eq!(out["merged"], json!(1), "{out}");
    let rows = db.pairs("SELECT id, status FROM flights ORDER BY id").await;
    assert_eq!(
        rows,
        vec![
            (1, Some("departed".into())),
            (2, Some("boarding".into())),
            (6, Some("landed".into()))
        ]
    );

    let letters = k.read_all(&format!("{topic}.dlq"), Duration::from_secs(30));
    assert_eq!(letters.len(), 3);
    let reason = |key: &str| {
        let (_, _, h) = letters.iter().find(|(k, _, _)| k.as_deref() == Some(key)).unwrap();
        h["updraft.error"].clone()
    };
    assert!(reason("3").contains("the database refused the row"), "{}", reason("3"));
    assert!(reason("3").to_lowercase().contains("null"), "the database's reason: {}", reason("3"));
    assert!(reason("4").contains("refused"), "{}", reason("4"));
    assert!(reason("5").contains("not JSON"), "{}", reason("5"));

    // Across runs, an upsert replaces the row.
    k.produce(&topic, vec![msg("2", json!({"id": 2, "s": {"status": "closed"}, "gate": 8}))]).await;
    let out = run(&f).await;
    assert_eq!(out["rows"], json!(1), "resumed from the committed offsets: {out}");
    let rows = db.pairs("SELECT gate, status FROM flights WHERE id = 2").await;
    assert_eq!(rows, vec![(8, Some("closed".into()))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upserts_dedupe_dead_letters_and_tombstones() {
    let (Some(k), Some(db)) = (kafka(), TestDb::postgres().await) else { return };
    upserts_dead_letters_and_tombstones(db, k).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_upserts_dedupe_dead_letters_and_tombstones() {
    let (Some(k), Some(db)) = (kafka(), TestDb::mysql().await) else { return };
    upserts_dead_letters_and_tombstones(db, k).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upserts_dedupe_dead_letters_and_tombstones() {
    let Some(k) = kafka() else { return };
    let dir = tempfile::tempdir().unwrap();
    upserts_dead_letters_and_tombstones(TestDb::sqlite(dir.path()).await, k).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_to_a_missing_column_fails_at_start_naming_task_field_and_column() {
    let (Some(k), Some(db)) = (kafka(), TestDb::postgres().await) else { return };
    db.exec("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)").await;
    let task = "type: kafka_to_sql\nsql_connection: db\ntopic: x\ngroup_id: g\ntable: t\n\
                columns: {id: id, value: v}";
    let f = fixture(&k, &db, task).await;
    let err = execute(&f.ctx("sink").await).await.unwrap_err().to_string();
    assert!(err.contains("`columns` of task `sink`") && err.contains("column `value`"), "{err}");
}

const MESSAGES: i64 = 100_000;

async fn kill_9_mid_stream(db: TestDb, k: Servers) {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("sink_kill9");
    k.create_topic(&topic, 3).await;
    let text = db.text();
    db.exec(&format!("CREATE TABLE t (id BIGINT PRIMARY KEY, v {text})")).await;
    let msgs =
        (0..MESSAGES).map(|i| msg(&format!("k{i}"), json!({"id": i, "v": format!("value {i}")})));
    k.produce(&topic, msgs.collect()).await;
    let task = format!(
        "type: kafka_to_sql\nsql_connection: db\ntopic: {topic}\ngroup_id: {topic}\ntable: t\n\
         mode: upsert\nkey_columns: [id]\ncolumns: {{id: id, v: v}}\nbatch_size: 2000"
    );
    let vars = conns(&k, &db);
    let mut first = spawn_task(dir.path(), &task, &vars);
    let killed_at =
        kill_9_at(&mut first, 30_000, || async { db.int("SELECT COUNT(*) FROM t").await as u64 })
            .await;
    assert!(killed_at < MESSAGES as u64, "killed after {killed_at} rows");

    wait_success(spawn_task(dir.path(), &task, &vars), dir.path());
    let rows = db.pairs("SELECT id, v FROM t ORDER BY id").await;
    assert_eq!(rows.len() as i64, MESSAGES, "count in = out (the key is the primary key)");
    for (i, (id, v)) in rows.iter().enumerate() {
        assert_eq!(*id, i as i64, "every id once");
        assert_eq!(v.as_deref(), Some(format!("value {id}").as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_mid_stream_loses_no_row_and_duplicates_no_key() {
    let (Some(k), Some(db)) = (kafka(), TestDb::postgres().await) else { return };
    kill_9_mid_stream(db, k).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_kill_9_mid_stream_loses_no_row_and_duplicates_no_key() {
    let (Some(k), Some(db)) = (kafka(), TestDb::mysql().await) else { return };
    kill_9_mid_stream(db, k).await;
}
