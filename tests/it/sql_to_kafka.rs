//! `sql_to_kafka` against real PostgreSQL, MariaDB and Kafka on 127.0.0.1: rows reach the
//! topic keyed by their primary key and a second run resumes from the stored cursor; a row
//! that commits late with a timestamp older than the newest one read, but inside the lag
//! window, is still read; a batch cut inside a timestamp group is completed; the cursor store
//! on both metadata databases; and kill -9 of the `updraft` process mid-table, then a
//! restart, skips no row.

use crate::support::common::{self, Db, Env};
use crate::support::operators::Fixture;
use crate::support::streaming::{Servers, unique};
use crate::support::streaming_run::own_binary;
use crate::support::tables::{TestDb, conns, kafka};

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use updraft::operators::{Outcome, execute};
use updraft::store::Store;

async fn fixture(k: &Servers, db: &TestDb, task: &str) -> Fixture {
    let vars = conns(k, db);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    Fixture::with_conns(&[("src", task)], &vars).await
}

async fn run(f: &Fixture) -> Value {
    match execute(&f.ctx("src").await).await {
        Ok(Outcome::Done(Some(v))) => v,
        other => panic!("expected Done with XCom, got {other:?}"),
    }
}

/// Every message of `topic` as (key, payload JSON).
fn messages(k: &Servers, topic: &str) -> Vec<(Option<String>, Value)> {
    k.read_all(topic, Duration::from_secs(60))
        .into_iter()
        .map(|(key, payload, _)| (key, serde_json::from_str(&payload).expect("JSON payload")))
        .collect()
}

async fn incrementing_and_resume(db: TestDb, k: Servers) {
    let topic = unique("src_inc");
    k.create_topic(&topic, 1).await;
    let text = db.text();
    db.exec(&format!("CREATE TABLE items (id BIGINT PRIMARY KEY, name {text}, qty INT)")).await;
    for i in 1..=25 {
        db.exec(&format!("INSERT INTO items VALUES ({i}, 'item {i}', {})", i * 2)).await;
    }
    let task = format!(
        "type: sql_to_kafka\nsql_connection: db\ntable: items\nmode: incrementing\n\
         incrementing_column: id\ntopic: {topic}\nbatch_size: 10"
    );
    let f = fixture(&k, &db, &task).await;
    let out = run(&f).await;
    assert_eq!(out["rows"], json!(25), "{out}");
    assert_eq!(out["cursor"], json!({"id": 25}));
    assert_eq!(f.store.get_cursor("d.src").await.unwrap(), Some(json!({"id": 25})));

    for i in 26..=30 {
        db.exec(&format!("INSERT INTO items VALUES ({i}, 'item {i}', NULL)")).await;
    }
    let out = run(&f).await;
    assert_eq!(out["rows"], json!(5), "the second run starts after the cursor: {out}");

    let msgs = messages(&k, &topic);
    assert_eq!(msgs.len(), 30);
    for (i, (key, v)) in msgs.iter().enumerate() {
        let id = i as i64 + 1;
        assert_eq!(key.as_deref(), Some(id.to_string().as_str()), "keyed by the primary key");
        assert_eq!(v["id"], json!(id));
        assert_eq!(v["name"], json!(format!("item {id}")));
        let qty = if id <= 25 { json!(id * 2) } else { Value::Null };
        assert_eq!(v["qty"], qty, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_reach_kafka_keyed_by_primary_key_and_resume_from_the_cursor() {
    let (Some(k), Some(db)) = (kafka(), TestDb::postgres().await) else { return };
    incrementing_and_resume(db, k).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_rows_reach_kafka_keyed_by_primary_key_and_resume_from_the_cursor() {
    let (Some(k), Some(db)) = (kafka(), TestDb::mysql().await) else { return };
    incrementing_and_resume(db, k).await;
}

/// Waits (bounded) until the database's clock passed the lag for every row of `events`.
async fn wait_out_the_lag(db: &TestDb, lag: f64) {
    let start = Instant::now();
    let sql = format!("SELECT COUNT(*) FROM events WHERE ts >= {}", db.ago(lag));
    while db.int(&sql).await > 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "the lag window never passed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn late_rows_inside_the_lag(db: TestDb, k: Servers) {
    let topic = unique("src_lag");
    k.create_topic(&topic, 1).await;
    let ts = db.timestamp();
    db.exec(&format!("CREATE TABLE events (id BIGINT PRIMARY KEY, ts {ts} NOT NULL, v INT)")).await;
    // An old row, and the newest row: inside the 3 s lag window, so not read yet.
    db.exec(&format!("INSERT INTO events VALUES (1, {}, 1)", db.ago(60.0))).await;
    db.exec(&format!("INSERT INTO events VALUES (3, {}, 3)", db.ago(0.0))).await;
    let task = format!(
        "type: sql_to_kafka\nsql_connection: db\ntable: events\nmode: timestamp+incrementing\n\
         timestamp_column: ts\nincrementing_column: id\ntopic: {topic}\nlag: 3s"
    );
    let f = fixture(&k, &db, &task).await;
    let out = run(&f).await;
    assert_eq!(out["rows"], json!(1), "only the row older than the lag: {out}");

    // A transaction that commits late: its timestamp is older than the newest row's (which a
    // cursor on the newest timestamp seen would already have passed), but inside the lag.
    // Half a second before row 3's, however long the first run took.
    let earlier = if db.kind == "postgres" {
        "ts - INTERVAL '500 milliseconds'"
    } else {
        "ts - INTERVAL 500000 MICROSECOND"
    };
    db.exec(&format!(
        "INSERT INTO events (id, ts, v) SELECT 2, {earlier}, 2 FROM events WHERE id = 3"
    ))
    .await;
    wait_out_the_lag(&db, 3.0).await;
    let out = run(&f).await;
    assert_eq!(out["rows"], json!(2), "{out}");
    let ids: Vec<Value> = messages(&k, &topic).into_iter().map(|(_, v)| v["id"].clone()).collect();
    assert_eq!(ids, vec![json!(1), json!(2), json!(3)], "each row once, in (ts, id) order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_committed_late_inside_the_lag_window_are_picked_up() {
    let (Some(k), Some(db)) = (kafka(), TestDb::postgres().await) else { return };
    late_rows_inside_the_lag(db, k).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_rows_committed_late_inside_the_lag_window_are_picked_up() {
    let (Some(k), Some(db)) = (kafka(), TestDb::mysql().await) else { return };
    late_rows_inside_the_lag(db, k).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cut_inside_a_timestamp_group_is_completed_before_the_cursor_moves() {
    let (Some(k), Some(db)) = (kafka(), TestDb::postgres().await) else { return };
    let topic = unique("src_group");
    k.create_topic(&topic, 1).await;
    db.exec("CREATE TABLE events (id BIGINT PRIMARY KEY, ts TIMESTAMPTZ NOT NULL, v INT)").await;
    // Ten rows of one timestamp, two of a later one; batches of three.
    for i in 1..=10 {
        db.exec(&format!("INSERT INTO events VALUES ({i}, TIMESTAMPTZ '2026-01-01 00:00:00', 0)"))
            .await;
    }
    for i in 11..=12 {
        db.exec(&format!("INSERT INTO events VALUES ({i}, TIMESTAMPTZ '2026-01-01 00:00:01', 0)"))
            .await;
    }
    let task = format!(
        "type: sql_to_kafka\nsql_connection: db\ntable: events\nmode: timestamp+incrementing\n\
         timestamp_column: ts\nincrementing_column: id\ntopic: {topic}\nbatch_size: 3\n\
         until: {{max_messages: 1}}"
    );
    let f = fixture(&k, &db, &task).await;
    let out = run(&f).await;
    assert_eq!(out["polls"], json!(1), "{out}");
    assert_eq!(out["rows"], json!(10), "the first poll read the whole group: {out}");
    assert_eq!(out["cursor"]["id"], json!(10));
    assert!(out["cursor"]["ts"].as_str().unwrap().starts_with("2026-01-01 00:00:00"), "{out}");
    let ids: Vec<i64> =
        messages(&k, &topic).iter().map(|(_, v)| v["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_columns_are_named_with_the_task_and_field() {
    let (Some(k), Some(db)) = (kafka(), TestDb::postgres().await) else { return };
    db.exec("CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT)").await;
    let task = "type: sql_to_kafka\nsql_connection: db\ntable: items\nmode: incrementing\n\
                incrementing_column: idx\ntopic: t";
    let f = fixture(&k, &db, task).await;
    let err = execute(&f.ctx("src").await).await.unwrap_err().to_string();
    assert!(
        err.contains("`incrementing_column` of task `src`") && err.contains("column `idx`"),
        "{err}"
    );
    assert!(err.contains("it has: id, name"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_name_that_is_not_a_plain_name_is_refused_unless_the_columns_are_listed() {
    let (Some(k), Some(db)) = (kafka(), TestDb::postgres().await) else { return };
    let topic = unique("src_names");
    k.create_topic(&topic, 1).await;
    db.exec("CREATE TABLE items (id BIGINT PRIMARY KEY, \"x\"\"); DROP TABLE items; --\" TEXT)")
        .await;
    db.exec("INSERT INTO items VALUES (1, 'a')").await;
    let task = format!(
        "type: sql_to_kafka\nsql_connection: db\ntable: items\nmode: incrementing\n\
         incrementing_column: id\ntopic: {topic}"
    );
    let f = fixture(&k, &db, &task).await;
    let err = execute(&f.ctx("src").await).await.unwrap_err();
    assert!(!err.is_retryable(), "a table's shape does not change on a retry: {err}");
    let err = err.to_string();
    assert!(err.contains("x\"); DROP TABLE items; --") && err.contains("`columns:`"), "{err}");
    assert_eq!(db.int("SELECT COUNT(*) FROM items").await, 1, "the table is intact");
    let f = fixture(&k, &db, &format!("{task}\ncolumns: [id]")).await;
    assert_eq!(run(&f).await["rows"], json!(1), "the listed columns are read");
}

async fn cursors_persist(store: Store) {
    assert_eq!(store.get_cursor("d.t").await.unwrap(), None);
    let now = chrono::Utc::now();
    store.set_cursor("d.t", &json!({"id": 3}), now).await.unwrap();
    store.set_cursor("d.t", &json!({"ts": "x", "id": 4}), now).await.unwrap();
    assert_eq!(store.get_cursor("d.t").await.unwrap(), Some(json!({"ts": "x", "id": 4})));
    store.delete_cursor("d.t").await.unwrap();
    assert!(store.delete_cursor("d.t").await.is_err(), "gone");
}

#[tokio::test]
async fn the_cursor_store_on_sqlite() {
    cursors_persist(Env::new(Db::Sqlite).await.expect("env").store.clone()).await;
}

#[tokio::test]
async fn the_cursor_store_on_postgres() {
    let Some(env) = Env::new(Db::Postgres).await else { return };
    cursors_persist(env.store.clone()).await;
}

const ROWS: i64 = 100_000;

fn start_scheduler(env: &Env, vars: &[(String, String)]) -> Child {
    Command::new(own_binary(env.dir.path()))
        .arg("scheduler")
        .envs(vars.iter().map(|(a, b)| (a.as_str(), b.as_str())))
        .env("UPDRAFT_HOME", &env.settings.home)
        .env("UPDRAFT_DAGS_FOLDER", env.dags_dir())
        .env("UPDRAFT_DATABASE_URL", &env.settings.database_url)
        .env("UPDRAFT_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start updraft scheduler")
}

/// Messages in `topic` now (the sum of its partitions' end offsets).
fn topic_size(k: &Servers, topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = k.client_config().set("group.id", "size").create().unwrap();
    c.fetch_watermarks(topic, 0, Duration::from_secs(5)).map(|(_, high)| high).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_process_mid_table_then_a_restart_skips_no_row() {
    let (Some(k), Some(db)) = (kafka(), TestDb::postgres().await) else { return };
    let env = Env::new(Db::Sqlite).await.expect("env");
    let topic = unique("src_kill9");
    k.create_topic(&topic, 1).await;
    db.exec("CREATE TABLE events (id BIGINT PRIMARY KEY, ts TIMESTAMPTZ NOT NULL, v TEXT)").await;
    // 100,000 rows over 1,000 timestamps (groups of 100), all older than the lag.
    db.exec(&format!(
        "INSERT INTO events SELECT i, TIMESTAMPTZ '2026-01-01' + (i / 100) * INTERVAL '1 second', \
         'row ' || i FROM generate_series(1, {ROWS}) AS i"
    ))
    .await;
    env.write_dag(
        "table_src.yaml",
        &format!(
            "dag_id: table_src\ndefault_args: {{retries: 2, retry_delay: 0s}}\ntasks:\n  src:\n    \
             type: sql_to_kafka\n    sql_connection: db\n    table: events\n    \
             mode: timestamp+incrementing\n    timestamp_column: ts\n    \
             incrementing_column: id\n    topic: {topic}\n    batch_size: 1000\n"
        ),
    );
    let vars = conns(&k, &db);
    let mut first = start_scheduler(&env, &vars);
    env.wait_until("DAG loaded", Duration::from_secs(60), || async {
        env.store.get_dag("table_src").await.is_ok()
    })
    .await;
    let run = env.trigger("table_src", json!({})).await;
    let start = Instant::now();
    while topic_size(&k, &topic) < 30_000 {
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        assert!(first.try_wait().unwrap().is_none(), "the scheduler ended before the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("kill -9");
    let _ = first.wait();
    let at_kill = topic_size(&k, &topic);
    assert!(at_kill < ROWS, "killed mid-table, after {at_kill} messages");
    let cursor = env.store.get_cursor("table_src.src").await.unwrap();
    eprintln!("killed after {at_kill} messages; cursor {cursor:?}");

    let mut second = start_scheduler(&env, &vars);
    let done = env.wait_run(run.id, Duration::from_secs(180)).await;
    let _ = second.kill();
    let _ = second.wait();
    common::assert_success(&done);

    let mut seen: HashMap<i64, u32> = HashMap::new();
    for (key, v) in messages(&k, &topic) {
        let id = v["id"].as_i64().unwrap();
        assert_eq!(key, Some(id.to_string()));
        assert_eq!(v["v"], json!(format!("row {id}")));
        *seen.entry(id).or_default() += 1;
    }
    let missing: Vec<i64> = (1..=ROWS).filter(|i| !seen.contains_key(i)).take(5).collect();
    assert!(missing.is_empty(), "rows skipped, e.g. {missing:?}");
    // At-least-once: only the batch in flight at the kill may be sent twice.
    let twice = seen.values().filter(|n| **n > 1).count();
    assert!(twice <= 1_000, "{twice} rows sent twice");
    eprintln!("restart done: {} rows, {twice} sent twice", seen.len());
}

/// A table of many column types reaches Kafka as the `sql` task reads it with `query` (one
/// mapping of column types to JSON), its fields in the table's column order; `expected` (in
/// that order) are the first row's values as a user checks them by hand; the second row is
/// NULL but for its id.
async fn rows_read_as_the_sql_task_reads_them(
    (db, k): (TestDb, Servers),
    ddl: &str,
    insert: &str,
    query: &str,
    expected: &[(&str, Value)],
) {
    let topic = unique("src_types");
    k.create_topic(&topic, 1).await;
    db.exec(ddl).await;
    db.exec(insert).await;
    let source = format!(
        "type: sql_to_kafka\nsql_connection: db\ntable: typed\nmode: incrementing\n\
         incrementing_column: id\ntopic: {topic}"
    );
    let query = format!("type: sql\nconnection: db\nsql: {query}");
    let vars = conns(&k, &db);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let f = Fixture::with_conns(&[("src", source.as_str()), ("q", query.as_str())], &vars).await;
    assert_eq!(run(&f).await["rows"], json!(2));
    let Ok(Outcome::Done(Some(Value::Array(rows)))) = execute(&f.ctx("q").await).await else {
        panic!("the sql task read no rows")
    };
    let raw = k.read_all(&topic, Duration::from_secs(60));
    assert_eq!(raw.len(), 2);
    for ((key, payload, _), row) in raw.iter().zip(&rows) {
        let msg: Value = serde_json::from_str(payload).expect("JSON payload");
        assert_eq!(&msg, row, "the message is the sql task's row");
        assert_eq!(key.as_deref(), Some(msg["id"].to_string().as_str()), "keyed by the id");
        let names: Vec<String> = msg.as_object().unwrap().keys().cloned().collect();
        let at: Vec<usize> =
            expected.iter().map(|(n, _)| payload.find(&format!("\"{n}\":")).unwrap()).collect();
        assert!(at.is_sorted(), "fields in the table's column order: {payload}");
        assert_eq!(names.len(), expected.len(), "{payload}");
    }
    let first: Value = serde_json::from_str(&raw[0].1).unwrap();
    for (name, want) in expected {
        assert_eq!(&first[name], want, "column `{name}` of {first}");
    }
    let second: Value = serde_json::from_str(&raw[1].1).unwrap();
    assert!(second.as_object().unwrap().iter().all(|(n, v)| n == "id" || v.is_null()), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_column_types_reach_kafka_as_the_sql_task_reads_them() {
    let (Some(k), Some(db)) = (kafka(), TestDb::postgres().await) else { return };
    let ddl = "CREATE TABLE typed (id BIGINT PRIMARY KEY, zeta TEXT, price NUMERIC(10,2), \
               seen TIMESTAMPTZ, local TIMESTAMP, day DATE, ok BOOLEAN, ratio DOUBLE PRECISION, \
               raw BYTEA, tags INT[], span INTERVAL, doc JSONB, alpha UUID)";
    let insert = "INSERT INTO typed VALUES (1, 'z \"quoted\"', 12.50, \
                  '2026-01-02 03:04:05.123456+02', '2026-01-02 03:04:05', '2026-01-02', true, \
                  0.25, '\\x0102ff', '{1,2}', '1 hour 30 minutes', '{\"a\": [1, null]}', \
                  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), \
                  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)";
    // Arrays and intervals have no mapping in the SQL layer: the sql task casts them, the
    // table source selects them through PostgreSQL's to_json.
    let query = "SELECT id, zeta, price, seen, local, day, ok, ratio, raw, to_json(tags) AS tags, \
                 to_json(span) AS span, doc, alpha FROM typed ORDER BY id";
    let expected = [
        ("id", json!(1)),
        ("zeta", json!("z \"quoted\"")),
        ("price", json!("12.50")),
        ("seen", json!("2026-01-02T01:04:05.123456Z")),
        ("local", json!("2026-01-02T03:04:05Z")),
        ("day", json!("2026-01-02")),
        ("ok", json!(true)),
        ("ratio", json!(0.25)),
        ("raw", json!("AQL/")),
        ("tags", json!([1, 2])),
        ("span", json!("01:30:00")),
        ("doc", json!({"a": [1, null]})),
        ("alpha", json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
    ];
    rows_read_as_the_sql_task_reads_them((db, k), ddl, insert, query, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_column_types_reach_kafka_as_the_sql_task_reads_them() {
    let (Some(k), Some(db)) = (kafka(), TestDb::mysql().await) else { return };
    let ddl = "CREATE TABLE typed (id BIGINT PRIMARY KEY, zeta VARCHAR(50), price DECIMAL(10,2), \
               seen DATETIME(6), day DATE, ok BOOLEAN, ratio DOUBLE, raw VARBINARY(8), \
               n INT UNSIGNED, code VARCHAR(8) COLLATE utf8mb4_bin, doc JSON)";
    let insert = "INSERT INTO typed VALUES (1, 'z \"quoted\"', 12.50, \
                  '2026-01-02 03:04:05.123456', '2026-01-02', true, 0.25, x'0102ff', 7, 'AbC', \
                  '{\"a\": [1, null]}'), \
                  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)";
    // Text of a binary collation (and MariaDB's JSON, a text of one) arrives flagged binary,
    // like VARBINARY: the sql task casts it, the table source knows it from the catalog.
    let query = "SELECT id, zeta, price, seen, day, ok, ratio, raw, n, CAST(code AS CHAR) AS \
                 code, CAST(doc AS CHAR) AS doc FROM typed ORDER BY id";
    let expected = [
        ("id", json!(1)),
        ("zeta", json!("z \"quoted\"")),
        ("price", json!("12.50")),
        ("seen", json!("2026-01-02T03:04:05.123456Z")),
        ("day", json!("2026-01-02")),
        ("ok", json!(true)),
        ("ratio", json!(0.25)),
        ("raw", json!("AQL/")),
        ("n", json!(7)),
        ("code", json!("AbC")),
        ("doc", json!("{\"a\": [1, null]}")),
    ];
    rows_read_as_the_sql_task_reads_them((db, k), ddl, insert, query, &expected).await;
}
