//! The streaming scenarios: `kafka_to_cassandra` and `kafka_to_s3` throughput on N messages
//! (1,000,000 by default), each beside a bare rdkafka loop that does the same work on the same
//! data with none of Updraft around it (no DAG, no offset bookkeeping, no dead letters).
//!
//! Both sides read the same topic with their own consumer group from the beginning, parse each
//! message as JSON, and write it: one prepared INSERT per message with 256 in flight
//! (Cassandra), or JSON lines per partition in objects of 100,000 messages (S3). Servers come
//! from `UPDRAFT_BENCH_KAFKA_BROKERS`, `UPDRAFT_BENCH_CASSANDRA_HOST` and
//! `UPDRAFT_BENCH_S3_ENDPOINT` (scripts/bench.sh starts them and sets these). Only loopback.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use object_store::{ObjectStoreExt, PutPayload};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

/// Writes in flight, the same on both sides (the task's default `concurrency`).
const CONCURRENCY: usize = 256;
/// Messages per object on both S3 sides.
const OBJECT_RECORDS: usize = 100_000;

/// The servers of the streaming scenarios.
pub struct Servers {
    pub kafka: String,
    pub cassandra: String,
    pub s3: String,
}

impl Servers {
    pub fn from_env() -> Option<Servers> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(Servers {
            kafka: var("UPDRAFT_BENCH_KAFKA_BROKERS")?,
            cassandra: var("UPDRAFT_BENCH_CASSANDRA_HOST")?,
            s3: var("UPDRAFT_BENCH_S3_ENDPOINT")?,
        })
    }

    /// `UPDRAFT_CONN_*` style connections for the engine, by connection id.
    pub fn connections(&self) -> Vec<(String, String)> {
        let s3 = self.s3.trim_start_matches("http://");
        vec![
            ("kafka_default".into(), format!("kafka://{}", self.kafka)),
            ("cassandra_default".into(), format!("cassandra://{}", self.cassandra)),
            ("aws_default".into(), format!("s3://bench:bench@{s3}?scheme=http")),
        ]
    }

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.kafka);
        c
    }

    /// A 3-partition topic holding `n` JSON messages like a quotes feed.
    pub async fn fill_topic(&self, topic: &str, n: usize) {
        let admin: AdminClient<DefaultClientContext> = self.config().create().expect("admin");
        let t = NewTopic::new(topic, 3, TopicReplication::Fixed(1));
        admin.create_topics([&t], &AdminOptions::new()).await.expect("create topic");
        let producer: FutureProducer = self
            .config()
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .expect("producer");
        let p = &producer;
        let started = Instant::now();
        let mut sends = futures::stream::iter(0..n)
            .map(|i| async move {
                let payload = message(i);
                let key = format!("k{}", i % 1000);
                let r = FutureRecord::to(topic).payload(&payload).key(&key);
                p.send(r, Duration::from_secs(60)).await.map(|_| ()).map_err(|(e, _)| e)
            })
            .buffer_unordered(100_000);
        while let Some(r) = sends.next().await {
            r.expect("produce");
        }
        println!("  produced {n} messages in {:.1} s", started.elapsed().as_secs_f64());
    }

    pub async fn cassandra(&self, ks: &str) -> Session {
        let s = SessionBuilder::new().known_node(&self.cassandra).build().await.expect("cassandra");
        let cql = format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', \
             'replication_factor': '1'}}"
        );
        s.query_unpaged(cql, &[]).await.expect("keyspace");
        for t in ["bare", "updraft"] {
            let cql = format!(
                "CREATE TABLE {ks}.{t} (id bigint PRIMARY KEY, symbol text, price double, \
                 volume bigint, ts timestamp)"
            );
            s.query_unpaged(cql, &[]).await.expect("table");
        }
        s.await_schema_agreement().await.expect("schema agreement");
        s
    }

    pub async fn bucket(&self, bucket: &str) {
        let url = format!("{}/{bucket}", self.s3);
        let resp = updraft::tls::http_client()
            .build()
            .expect("client")
            .put(url)
            .send()
            .await
            .expect("create bucket");
        assert!(resp.status().is_success(), "create bucket: {}", resp.status());
    }

    fn consumer(&self, group: &str) -> StreamConsumer {
        self.config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer")
    }

    /// The bare rdkafka -> Cassandra loop: recv, parse, bind, execute with 256 in flight.
    pub async fn bare_cassandra(
        &self,
        session: Session,
        ks: &str,
        topic: &str,
        n: usize,
    ) -> Duration {
        let consumer = self.consumer(&format!("{topic}-bare"));
        consumer.subscribe(&[topic]).expect("subscribe");
        let session = Arc::new(session);
        let insert = format!(
            "INSERT INTO {ks}.bare (id, symbol, price, volume, ts) VALUES (?, ?, ?, ?, ?) \
             USING TIMESTAMP ?"
        );
        let prepared = Arc::new(session.prepare(insert).await.expect("prepare"));
        let started = Instant::now();
        let mut inflight = FuturesUnordered::new();
        let mut read = 0;
        while read < n || !inflight.is_empty() {
            tokio::select! {
                Some(r) = inflight.next(), if !inflight.is_empty() => {
                    let r: Result<_, scylla::errors::ExecutionError> = r;
                    r.expect("write");
                }
                m = consumer.recv(), if read < n && inflight.len() < CONCURRENCY => match m {
                    Ok(m) => {
                        read += 1;
                        let v: serde_json::Value =
                            serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
                        let row = (
                            v["id"].as_i64().unwrap_or(0),
                            v["symbol"].as_str().unwrap_or("").to_string(),
                            v["price"].as_f64().unwrap_or(0.0),
                            v["volume"].as_i64().unwrap_or(0),
                            scylla::value::CqlTimestamp(v["ts"].as_i64().unwrap_or(0)),
                            m.timestamp().to_millis().unwrap_or(0) * 1000,
                        );
                        let (s, p) = (session.clone(), prepared.clone());
                        inflight.push(async move { s.execute_unpaged(&p, row).await.map(|_| ()) });
                    }
                    Err(KafkaError::PartitionEOF(_)) => {}
                    Err(e) => panic!("consume: {e}"),
                },
            }
        }
        started.elapsed()
    }

    /// The bare rdkafka -> S3 loop: recv, validate JSON, append to the partition's buffer,
    /// put full buffers (and the rest at the end).
    pub async fn bare_s3(&self, bucket: &str, topic: &str, n: usize) -> Duration {
        let consumer = self.consumer(&format!("{topic}-bare"));
        consumer.subscribe(&[topic]).expect("subscribe");
        updraft::tls::install_provider();
        let store = Arc::new(
            object_store::aws::AmazonS3Builder::new()
                .with_endpoint(&self.s3)
                .with_allow_http(true)
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_access_key_id("bench")
                .with_secret_access_key("bench")
                .build()
                .expect("s3"),
        );
        let started = Instant::now();
        let mut buffers: HashMap<i32, (i64, Vec<u8>, usize)> = HashMap::new();
        let mut puts = FuturesUnordered::new();
        let put = |p: i32, (first, lines, _): (i64, Vec<u8>, usize)| {
            let store = store.clone();
            async move {
                let key = object_store::path::Path::from(format!("bare/part-{p}-{first}.jsonl"));
                store.put(&key, PutPayload::from(lines)).await.map(|_| ())
            }
        };
        let mut read = 0;
        while read < n {
            match consumer.recv().await {
                Ok(m) => {
                    read += 1;
                    let payload = m.payload().unwrap_or_default();
                    serde_json::from_slice::<serde::de::IgnoredAny>(payload).expect("json");
                    let b = buffers.entry(m.partition()).or_insert((m.offset(), Vec::new(), 0));
                    b.1.extend_from_slice(payload);
                    b.1.push(b'\n');
                    b.2 += 1;
                    if b.2 >= OBJECT_RECORDS {
                        let full = std::mem::replace(b, (m.offset() + 1, Vec::new(), 0));
                        puts.push(put(m.partition(), full));
                    }
                }
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(e) => panic!("consume: {e}"),
            }
        }
        for (p, b) in buffers.drain().filter(|(_, b)| b.2 > 0) {
            puts.push(put(p, b));
        }
        while let Some(r) = puts.next().await {
            r.expect("put");
        }
        started.elapsed()
    }
}

/// One message of the benchmark feed.
fn message(i: usize) -> Vec<u8> {
    let symbols = ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "NFLX"];
    serde_json::json!({
        "id": i,
        "symbol": symbols[i % symbols.len()],
        "price": 100.0 + (i % 10_000) as f64 / 100.0,
        "volume": 1000 + i % 5000,
        "ts": 1_767_323_045_000i64 + i as i64,
        "exchange": "NASDAQ",
    })
    .to_string()
    .into_bytes()
}

/// The DAG of the Updraft side of `kafka_to_cassandra`.
pub fn cassandra_dag(name: &str, topic: &str, ks: &str) -> String {
    format!(
        "dag_id: {name}\ntasks:\n  sink:\n    type: kafka_to_cassandra\n    topic: {topic}\n    \
         group_id: {topic}-updraft\n    table: {ks}.updraft\n    columns: {{id: id, symbol: \
         symbol, price: price, volume: volume, ts: ts}}\n    progress_interval: 10s\n"
    )
}

/// The DAG of the Updraft side of `kafka_to_s3`.
pub fn s3_dag(name: &str, topic: &str, bucket: &str) -> String {
    format!(
        "dag_id: {name}\ntasks:\n  lake:\n    type: kafka_to_s3\n    topic: {topic}\n    \
         group_id: {topic}-updraft\n    url: 's3://{bucket}/updraft'\n    max_records: \
         {OBJECT_RECORDS}\n    max_age: 10m\n    progress_interval: 10s\n"
    )
}

/// Prints one comparison line.
pub fn report(what: &str, n: usize, bare: Duration, updraft: Duration) {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{what}: {n} messages — bare loop {:.1} s ({:.0} msg/s), updraft {:.1} s ({:.0} msg/s): \
         {:.0} % of bare",
        bare.as_secs_f64(),
        rate(bare),
        updraft.as_secs_f64(),
        rate(updraft),
        100.0 * rate(updraft) / rate(bare)
    );
}
