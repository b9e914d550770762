//! Avro over real Kafka and a real schema registry, checked against an independent client:
//! Updraft's Avro read by fastavro (Confluent framing by hand in `support/avro_peer.py`) and
//! fastavro's read by Updraft, every logical type of the pipelines both ways; a schema the
//! registry refuses fails the task with the registry's own message; a message that does not
//! decode lands in the dead-letter topic with the reason; transforms on a source and a sink,
//! Avro keys, and a reader schema newer than the writer's.
//!
//! Needs `UPDRAFT_TEST_KAFKA_BROKERS`, `UPDRAFT_TEST_SCHEMA_REGISTRY_URL` and
//! `UPDRAFT_TEST_FASTAVRO` (`scripts/fastavro.sh path`); skips without them, fails in CI.

use crate::support::operators::Fixture;
use crate::support::streaming::{Servers, server_var, unique};

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use updraft::operators::{OperatorError, Outcome, execute};

const SCHEMA: &str = include_str!("../fixtures/avro/arrival.avsc");

/// The records of `avro_peer.py`'s RECORDS, in Updraft's documented JSON forms.
fn records() -> Vec<Value> {
    vec![
        json!({
            "id": 9_007_199_254_740_993_i64, "count": 3, "ratio": 0.5, "ok": true,
            "station": "Clark/Lake", "day": "2026-01-02", "t_ms": "03:04:05.123",
            "t_us": "03:04:05.123456", "ts_ms": "2026-01-02T03:04:05.123Z",
            "ts_us": "2026-01-02T03:04:05.123456Z", "fare": "2.50",
            "trip": "67e55044-10b1-426f-9247-bb680e5fe0c8", "line": "blue", "delay": 4,
            "note": null, "tags": ["a", "b"], "counts": {"x": 1}, "raw": "AAEC",
            "where": {"lat": 41.88, "lon": -87.63}, "from": null
        }),
        json!({
            "id": -1, "count": -2_147_483_648_i64, "ratio": -1.25, "ok": false,
            "station": "Ærøskøbing ✓", "day": "1969-12-31", "t_ms": "23:59:59.999",
            "t_us": "00:00:00.000001", "ts_ms": "1999-12-31T23:59:59.999Z",
            "ts_us": "2038-01-19T03:14:08.000001Z", "fare": "-1234567.89",
            "trip": "00000000-0000-0000-0000-000000000001", "line": "green", "delay": null,
            "note": "late", "tags": [], "counts": {}, "raw": "",
            "where": {"lat": 0.0, "lon": 0.0}, "from": {"lat": 1.5, "lon": -2.5}
        }),
    ]
}

/// Kafka, the registry and the peer's Python, or `None` (skipped) outside CI.
struct Env {
    servers: Servers,
    registry: String,
    python: String,
}

impl Env {
    fn get() -> Option<Env> {
        let kafka = server_var("UPDRAFT_TEST_KAFKA_BROKERS");
        let registry = server_var("UPDRAFT_TEST_SCHEMA_REGISTRY_URL");
        let python = server_var("UPDRAFT_TEST_FASTAVRO");
        let servers = Servers { kafka: kafka?, cassandra: String::new(), s3: String::new() };
        Some(Env {
            servers,
            registry: registry?.trim_end_matches('/').to_string(),
            python: python?,
        })
    }

    async fn fixture(&self, tasks: &[(&str, Value)]) -> Fixture {
        let yaml: Vec<(String, String)> = tasks
            .iter()
            .map(|(id, t)| (id.to_string(), serde_yaml::to_string(t).expect("YAML")))
            .collect();
        let tasks: Vec<(&str, &str)> = yaml.iter().map(|(i, y)| (i.as_str(), y.as_str())).collect();
        let kafka = format!("kafka://{}", self.servers.kafka);
        let vars = [
            ("UPDRAFT_CONN_KAFKA_DEFAULT", kafka.as_str()),
            ("UPDRAFT_CONN_SCHEMA_REGISTRY_DEFAULT", self.registry.as_str()),
        ];
        Fixture::with_conns(&tasks, &vars).await
    }

    /// Runs the peer with `args`, `input` on stdin; its stdout, or a panic with its stderr.
    fn peer(&self, args: &[&str], input: &str) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/avro_peer.py");
        let mut child = Command::new(&self.python)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the fastavro peer starts");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
        let out = child.wait_with_output().expect("the peer ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "avro_peer.py {args:?} failed: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn http(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let resp = updraft::tls::http_client()
            .build()
            .expect("client")
            .request(method, format!("{}{path}", self.registry))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .timeout(Duration::from_secs(15))
            .body(body.to_string())
            .send()
            .await
            .expect("the registry answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// One message as read raw: key, payload, headers.
type Raw = (Option<Vec<u8>>, Vec<u8>, HashMap<String, String>);

/// Every message of `topic`, bytes untouched, read until its end offsets (bounded by `limit`).
fn read_raw(servers: &Servers, topic: &str, limit: Duration) -> Vec<Raw> {
    let consumer: BaseConsumer = servers
        .client_config()
        .set("group.id", unique("raw"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let meta = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    let mut total = 0;
    for p in meta.topics()[0].partitions() {
        let (_, high) =
            consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).expect("wm");
        total += high;
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let (start, mut out) = (Instant::now(), Vec::new());
    while (out.len() as i64) < total && start.elapsed() < limit {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else { continue };
        let mut headers = HashMap::new();
        for h in m.headers().iter().flat_map(|h| h.iter()) {
            let v = h.value.map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
            headers.insert(h.key.to_string(), v);
        }
        out.push((m.key().map(<[u8]>::to_vec), m.payload().unwrap_or_default().to_vec(), headers));
    }
    out
}

fn done(r: Result<Outcome, OperatorError>) -> Value {
    match r {
        Ok(Outcome::Done(Some(v))) => v,
        other => panic!("expected Done with XCom, got {other:?}"),
    }
}

/// The JSON lines of every object under `dir`, sorted by their `id`.
fn lines_under(dir: &std::path::Path) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let text = std::fs::read_to_string(&p).expect("object");
                out.extend(text.lines().map(|l| serde_json::from_str::<Value>(l).expect("JSON")));
            }
        }
    }
    out.sort_by_key(|v| v["id"].as_i64());
    out
}

#[tokio::test]
async fn updraft_avro_is_read_by_fastavro_with_every_logical_type() {
    let Some(env) = Env::get() else { return };
    let topic = unique("arrivals");
    env.servers.create_topic(&topic, 1).await;
    let task = json!({
        "type": "kafka_produce", "topic": topic, "records": records(), "key": "{{ record.id }}",
        "format": "avro", "schema": SCHEMA,
    });
    let f = env.fixture(&[("produce", task)]).await;
    let out = done(execute(&f.ctx("produce").await).await);
    assert_eq!(out["messages"], json!(2), "{out}");
    let messages = read_raw(&env.servers, &topic, Duration::from_secs(30));
    assert_eq!(messages.len(), 2);
    let hex: Vec<String> = messages.iter().map(|(_, p, _)| to_hex(p)).collect();
    assert_eq!(env.peer(&["decode", &env.registry], &hex.join("\n")).trim(), "ok 2");
    let keys: Vec<Option<Vec<u8>>> = messages.into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(keys, vec![Some(b"9007199254740993".to_vec()), Some(b"-1".to_vec())]);
}

#[tokio::test]
async fn fastavro_messages_are_read_by_updraft_and_bad_ones_are_dead_letters() {
    let Some(env) = Env::get() else { return };
    let topic = unique("arrivals_in");
    env.servers.create_topic(&topic, 1).await;
    let subject = format!("{topic}-value");
    let schema_file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/avro/arrival.avsc");
    let encoded = env.peer(&["encode", &env.registry, &subject, schema_file], "");
    let mut messages: Vec<(Option<String>, Vec<u8>)> =
        encoded.lines().map(|h| (None, from_hex(h))).collect();
    assert_eq!(messages.len(), 2);
    messages.push((None, br#"{"id": 3}"#.to_vec()));
    messages.push((None, vec![0, 0x7f, 0xff, 0xff, 0xf0, 1, 2]));
    env.servers.produce(&topic, messages).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let task = json!({
        "type": "kafka_to_s3", "topic": topic, "group_id": topic,
        "url": format!("file://{}", dir.path().display()), "format": "avro",
    });
    let f = env.fixture(&[("lake", task)]).await;
    let out = done(execute(&f.ctx("lake").await).await);
    assert_eq!(
        (out["records"].clone(), out["dead_letters"].clone()),
        (json!(2), json!(2)),
        "{out}"
    );
    let mut want = records();
    want.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(lines_under(dir.path()), want);
    let dead = read_raw(&env.servers, &format!("{topic}.dlq"), Duration::from_secs(30));
    assert_eq!(dead.len(), 2);
    let reason = |want: &str| dead.iter().find(|(_, _, h)| h["updraft.error"].contains(want));
    let not_framed = reason("does not start with the Confluent magic byte 0").expect("JSON");
    assert_eq!(not_framed.1, br#"{"id": 3}"#.to_vec(), "a dead letter is the message as it came");
    assert!(reason("schema id 2147483632 is not in the registry").is_some(), "{dead:?}");
}

#[tokio::test]
async fn a_schema_the_registry_refuses_fails_the_task_with_the_registrys_message() {
    let Some(env) = Env::get() else { return };
    let topic = unique("stations");
    env.servers.create_topic(&topic, 1).await;
    let subject = format!("{topic}-value");
    let v1 = r#"{"type":"record","name":"Station","fields":[{"name":"id","type":"int"}]}"#;
    let v2 = r#"{"type":"record","name":"Station","fields":[{"name":"id","type":"string"}]}"#;
    let (status, _) = env
        .http(
            reqwest::Method::PUT,
            &format!("/config/{subject}"),
            json!({"compatibility": "BACKWARD"}),
        )
        .await;
    assert_eq!(status, 200);
    let task = |schema: &str| json!({"type": "kafka_produce", "topic": topic, "records": [{"id": 1}], "format": "avro", "schema": schema});
    let f = env.fixture(&[("v1", task(v1)), ("v2", task(v2))]).await;
    done(execute(&f.ctx("v1").await).await);
    let err = execute(&f.ctx("v2").await).await.expect_err("an incompatible schema");
    // What the registry itself says to the same request.
    let (status, answer) = env
        .http(
            reqwest::Method::POST,
            &format!("/subjects/{subject}/versions"),
            json!({"schema": v2}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    let message = answer["message"].as_str().expect("the registry's message");
    match err {
        OperatorError::Fatal(e) => {
            assert!(e.contains("refused the schema for subject"), "{e}");
            assert!(e.contains(message), "{e}\nshould carry: {message}");
        }
        other => panic!("expected a fatal error, got {other:?}"),
    }
}

#[tokio::test]
async fn transforms_on_a_source_and_a_sink_with_a_reader_schema() {
    let Some(env) = Env::get() else { return };
    let topic = unique("flights");
    env.servers.create_topic(&topic, 2).await;
    let writer = r#"{"type":"record","name":"Flight","fields":[
        {"name":"id","type":"long"},{"name":"airline_name","type":"string"},
        {"name":"delay_min","type":["null","double"],"default":null},
        {"name":"day","type":{"type":"int","logicalType":"date"}}]}"#;
    // The sink reads with a newer schema: a field added with a default.
    let reader = r#"{"type":"record","name":"Flight","fields":[
        {"name":"id","type":"long"},{"name":"airline_name","type":"string"},
        {"name":"delay_min","type":["null","double"],"default":null},
        {"name":"day","type":{"type":"int","logicalType":"date"}},
        {"name":"gate","type":"string","default":"unknown"}]}"#;
    let flights: Vec<Value> = (1..=6)
        .map(|i| {
            json!({"id": i, "status": if i % 3 == 0 { "cancelled" } else { "landed" },
                   "airline": {"name": format!("A{i}")}, "times": {"sched": 0, "actual": i * 60}})
        })
        .collect();
    let source = json!({
        "type": "kafka_produce", "topic": topic, "records": flights, "key": "{{ record.id }}",
        "format": "avro", "schema": writer, "key_format": "avro", "key_schema": "long",
        "transform": [
            {"filter": "status != 'cancelled'"},
            {"compute": {"delay_min": "(times.actual - times.sched) / 60", "day": "ds"}},
            {"flatten": {}},
        ],
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = json!({
        "type": "kafka_to_s3", "topic": topic, "group_id": topic,
        "url": format!("file://{}", dir.path().display()), "format": "avro", "schema": reader,
        "transform": [{"filter": "delay_min < 5"}, {"rename": {"airline_name": "airline"}}],
    });
    let f = env.fixture(&[("source", source), ("sink", sink)]).await;
    let out = done(execute(&f.ctx("source").await).await);
    assert_eq!((out["messages"].clone(), out["filtered"].clone()), (json!(4), json!(2)), "{out}");
    // The keys are Avro longs under `<topic>-key`, as fastavro reads them.
    let raw = read_raw(&env.servers, &topic, Duration::from_secs(30));
    let hex: Vec<String> = raw.iter().filter_map(|(k, _, _)| k.as_deref().map(to_hex)).collect();
    let mut keys: Vec<i64> = env
        .peer(&["read", &env.registry], &hex.join("\n"))
        .lines()
        .map(|l| l.parse().expect("a long"))
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, vec![1, 2, 4, 5]);
    let out = done(execute(&f.ctx("sink").await).await);
    assert_eq!((out["records"].clone(), out["filtered"].clone()), (json!(3), json!(1)), "{out}");
    let want: Vec<Value> = [1, 2, 4]
        .iter()
        .map(|i| json!({"id": i, "airline": format!("A{i}"), "delay_min": f64::from(*i), "day": "2026-01-02", "gate": "unknown"}))
        .collect();
    assert_eq!(lines_under(dir.path()), want);
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}
