//! Helpers of the tests against the real Kafka, Cassandra and S3 servers and the schema
//! registry (127.0.0.1 only): which servers the test command started (`server_var`), unique
//! names, and the tests' own clients (they check what the operators wrote without going through
//! Updraft's code).
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

/// The address of a server in `var`, or `None` (with a printed note) when the test command did
/// not start that server. In CI every server is started, so a missing one fails the test with
/// the reason.
pub fn server_var(var: &str) -> Option<String> {
    let v = std::env::var(var).ok().filter(|v| !v.is_empty());
    if v.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{var} must be set in CI: scripts/test.sh starts the servers and sets it"
        );
        eprintln!("{var} is not set: test SKIPPED (scripts/test.sh starts the servers)");
    }
    v
}

/// Addresses of the servers `scripts/test.sh` started.
#[derive(Debug, Clone)]
pub struct Servers {
    /// `host:port` of Kafka.
    pub kafka: String,
    /// `host:port` of Cassandra's CQL port.
    pub cassandra: String,
    /// S3 endpoint URL.
    pub s3: String,
}

impl Servers {
    /// The servers, or `None` (with a printed note) when the test command did not start them.
    /// In CI they are always started, so a missing one fails the test with the reason.
    pub fn get() -> Option<Servers> {
        let kafka = server_var("UPDRAFT_TEST_KAFKA_BROKERS");
        let cassandra = server_var("UPDRAFT_TEST_CASSANDRA_HOST");
        let s3 = server_var("UPDRAFT_TEST_S3_ENDPOINT");
        Some(Servers { kafka: kafka?, cassandra: cassandra?, s3: s3? })
    }

    /// `UPDRAFT_CONN_*` settings pointing the default connections at these servers.
    pub fn conns(&self) -> Vec<(String, String)> {
        let s3 = self.s3.trim_start_matches("http://");
        vec![
            ("UPDRAFT_CONN_KAFKA_DEFAULT".into(), format!("kafka://{}", self.kafka)),
            ("UPDRAFT_CONN_CASSANDRA_DEFAULT".into(), format!("cassandra://{}", self.cassandra)),
            (
                "UPDRAFT_CONN_AWS_DEFAULT".into(),
                format!("s3://testing:testing@{s3}?scheme=http&region_name=us-east-1"),
            ),
        ]
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.kafka);
        c
    }

    /// Creates a topic with `partitions` partitions.
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create().unwrap();
        let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let res = admin.create_topics([&t], &AdminOptions::new()).await.unwrap();
        for r in res {
            r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
        }
    }

    pub fn producer(&self) -> FutureProducer {
        self.client_config()
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .unwrap()
    }

    /// Produces `(key, payload)` messages and waits for every acknowledgement.
    pub async fn produce(&self, topic: &str, messages: Vec<(Option<String>, Vec<u8>)>) {
        self.produce_at(topic, messages, None).await
    }

    /// Like `produce`, with an explicit timestamp (ms) on every message.
    pub async fn produce_at(
        &self,
        topic: &str,
        messages: Vec<(Option<String>, Vec<u8>)>,
        timestamp: Option<i64>,
    ) {
        let producer = self.producer();
        let p = &producer;
        let mut sends = futures::stream::iter(messages)
            .map(|(k, v)| async move {
                let mut r = FutureRecord::to(topic).payload(&v);
                if let Some(k) = &k {
                    r = r.key(k);
                }
                if let Some(ts) = timestamp {
                    r = r.timestamp(ts);
                }
                p.send(r, Duration::from_secs(30)).await.map(|_| ()).map_err(|(e, _)| e)
            })
            .buffer_unordered(50_000);
        while let Some(r) = sends.next().await {
            r.expect("produce");
        }
    }

    /// Every message of a topic: (key, payload, headers), read until the end (bounded).
    pub fn read_all(
        &self,
        topic: &str,
        limit: Duration,
    ) -> Vec<(Option<String>, String, HashMap<String, String>)> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", format!("reader-{}", unique("g")))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let meta = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
        let mut tpl = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for p in meta.topics()[0].partitions() {
            let (_, high) =
                consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).unwrap();
            ends.insert(p.id(), high);
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let total: i64 = ends.values().sum();
        let mut out = Vec::new();
        let start = Instant::now();
        while (out.len() as i64) < total && start.elapsed() < limit {
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else { continue };
            let mut headers = HashMap::new();
            if let Some(h) = m.headers() {
                for hd in h.iter() {
                    let v = hd.value.map(|v| String::from_utf8_lossy(v).into_owned());
                    headers.insert(hd.key.to_string(), v.unwrap_or_default());
                }
            }
            out.push((
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                headers,
            ));
        }
        out
    }

    pub async fn cassandra(&self) -> Session {
        SessionBuilder::new()
            .known_node(&self.cassandra)
            .build()
            .await
            .expect("connect to Cassandra")
    }

    /// A keyspace with replication factor 1.
    pub async fn create_keyspace(&self, session: &Session, ks: &str) {
        let cql = format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', \
             'replication_factor': '1'}}"
        );
        session.query_unpaged(cql, &[]).await.unwrap();
        session.await_schema_agreement().await.unwrap();
    }

    /// Creates a bucket (moto accepts unsigned requests; object_store cannot create buckets).
    pub async fn create_bucket(&self, bucket: &str) {
        let resp = updraft::tls::http_client()
            .build()
            .expect("client")
            .put(format!("{}/{bucket}", self.s3))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "create bucket {bucket}: {}", resp.status());
    }

    pub fn s3_store(&self, bucket: &str) -> AmazonS3 {
        updraft::tls::install_provider();
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.s3)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap()
    }

    /// Every object under `prefix` with its content, sorted by key.
    pub async fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let store = self.s3_store(bucket);
        let prefix = Path::from(prefix);
        let metas: Vec<_> = store.list(Some(&prefix)).collect().await;
        let mut out = Vec::new();
        for m in metas {
            let m = m.unwrap();
            let bytes = store.get(&m.location).await.unwrap().bytes().await.unwrap();
            out.push((m.location.to_string(), String::from_utf8_lossy(&bytes).into_owned()));
        }
        out.sort();
        out
    }
}

/// A name no other test run uses: `prefix_<pid>_<nanos>` (letters, digits and `_`, so it is a
/// valid topic, keyspace and, lower-cased with `-`, bucket name).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// Counts the rows of a table (bounded by the page iteration; fine for test sizes).
pub async fn count_rows(session: &Session, table: &str) -> i64 {
    let r = session.query_unpaged(format!("SELECT COUNT(*) FROM {table}"), &[]).await.unwrap();
    let rows = r.into_rows_result().unwrap();
    let (n,): (i64,) = rows.first_row().unwrap();
    n
}
