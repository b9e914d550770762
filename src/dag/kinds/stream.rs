//! Settings of the Kafka task types: `kafka_produce`, `http_to_kafka`, `kafka_to_cassandra`,
//! `kafka_to_s3` and `kafka_sensor`, and the pieces they share (`until`, column mappings).
//!
//! Like the rest of `kinds`, this file is the schema only: plain data, `deny_unknown_fields`,
//! no clients and no I/O. Templated fields are `String`s rendered at run time; cross-field rules
//! (exactly one record source, a pagination style) are checked in `parse/kind.rs`.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};

use super::{Dur, HttpTask};

fn kafka_default() -> String {
    "kafka_default".into()
}

fn cassandra_default() -> String {
    "cassandra_default".into()
}

fn aws_default() -> String {
    "aws_default".into()
}

/// When a streaming task stops. Written `caught_up`, `forever`, `{max_messages: N}` or
/// `{duration: 5m}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Every assigned partition reached the end offset it had when the task looked (a batch
    /// task that drains the backlog: the scheduled-pipeline default).
    CaughtUp,
    /// Never: a long-running streaming task, stopped by its cancellation (kill, timeout).
    Forever,
    /// After this many messages (good ones and dead letters alike).
    MaxMessages(u64),
    /// After this long.
    Duration(Dur),
}

impl<'de> Deserialize<'de> for Until {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Map(UntilMap),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct UntilMap {
            max_messages: Option<u64>,
            duration: Option<Dur>,
        }
        let msg = "`until` must be caught_up, forever, {max_messages: N} or {duration: 5m}";
        match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(msg))? {
            Raw::Word(w) if w == "caught_up" => Ok(Until::CaughtUp),
            Raw::Word(w) if w == "forever" => Ok(Until::Forever),
            Raw::Map(UntilMap { max_messages: Some(n), duration: None }) => {
                Ok(Until::MaxMessages(n))
            }
            Raw::Map(UntilMap { max_messages: None, duration: Some(d) }) => Ok(Until::Duration(d)),
            _ => Err(serde::de::Error::custom(msg)),
        }
    }
}

fn caught_up() -> Until {
    Until::CaughtUp
}

/// Where a new consumer group starts: Kafka's `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The oldest message still in the topic (the pipelines' default: nothing is missed).
    Earliest,
    /// Only messages produced after the group first joins.
    Latest,
}

fn earliest() -> StartFrom {
    StartFrom::Earliest
}

/// `type: kafka_produce`: records given inline, from a file, or from an upstream XCom.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaProduceTask {
    /// Kafka connection.
    #[serde(default = "kafka_default")]
    pub connection: String,
    /// Topic (templated).
    pub topic: String,
    /// Records written inline; string values are templated.
    pub records: Option<Vec<serde_json::Value>>,
    /// A file of records (templated path): JSON lines, or one JSON array.
    pub file: Option<String>,
    /// A template that renders to a JSON list, e.g. an upstream XCom:
    /// `"{{ ti.xcom_pull('fetch') }}"`.
    pub xcom: Option<String>,
    /// Message key, templated per record with `record` (e.g. `"{{ record.id }}"`); none when
    /// absent.
    pub key: Option<String>,
    /// Extra producer settings (librdkafka names), e.g. `compression.type: zstd`.
    #[serde(default)]
    pub producer_config: BTreeMap<String, String>,
}

/// How `http_to_kafka` walks through pages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// Dotted path, in each response, to the URL of the next page (absolute, or relative to
    /// the request's); stops when it is missing, null or empty.
    pub next_link: Option<String>,
    /// Query parameter carrying the page number; stops on a page without records.
    pub page_param: Option<String>,
    /// First page number.
    #[serde(default = "one")]
    pub start_page: u64,
    /// Dotted path to the number of the last page (e.g. `info.pages`): stop after it.
    pub last_page: Option<String>,
    /// Upper bound on pages per try, whatever the API says (an API that never stops).
    #[serde(default = "max_pages")]
    pub max_pages: u64,
}

fn one() -> u64 {
    1
}

fn max_pages() -> u64 {
    1000
}

fn three() -> u32 {
    3
}

/// `type: http_to_kafka`: REST ingestion.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpToKafkaTask {
    /// HTTP connection: base URL, credentials, default headers.
    pub connection: Option<String>,
    /// Path appended to the connection's base URL (templated).
    pub endpoint: Option<String>,
    /// Full URL (templated), when there is no connection.
    pub url: Option<String>,
    /// Request headers (values templated).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters (values templated).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Dotted path to the array of records in each response; the whole body when absent (an
    /// array, or one object as one record).
    pub records: Option<String>,
    /// Pagination; one request when absent.
    pub pagination: Option<Pagination>,
    /// Kafka connection.
    #[serde(default = "kafka_default")]
    pub kafka_connection: String,
    /// Topic (templated).
    pub topic: String,
    /// Message key, templated per record with `record` (e.g. `"{{ record.login.uuid }}"`).
    pub key: Option<String>,
    /// Attempts per request on 5xx, 408, 429, timeouts and refused connections, with
    /// exponential back-off (1 s, 2 s, 4 s...), before the try fails.
    #[serde(default = "three")]
    pub request_retries: u32,
    /// Request timeout.
    pub timeout: Option<Dur>,
    /// Extra producer settings (librdkafka names).
    #[serde(default)]
    pub producer_config: BTreeMap<String, String>,
}

impl HttpToKafkaTask {
    /// The GET request of the first page, as the `http` operator understands it.
    pub fn request(&self) -> HttpTask {
        HttpTask {
            method: "GET".into(),
            connection: self.connection.clone(),
            endpoint: self.endpoint.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            query: self.query.clone(),
            body: None,
            expected_status: vec![],
            timeout: self.timeout,
        }
    }
}

/// CQL types a column mapping may name; the table's own type is used when none is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CqlType {
    Text,
    Int,
    Bigint,
    Double,
    Boolean,
    Timestamp,
    Uuid,
}

/// Where one column's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSource {
    /// Dotted path into the JSON message (`name.first`, `results.0.id`), or a message field:
    /// `$key`, `$topic`, `$partition`, `$offset`, `$timestamp`.
    pub path: String,
    /// The type to convert to; checked against the table's at start.
    pub cql_type: Option<CqlType>,
}

impl<'de> Deserialize<'de> for ColumnSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Path(String),
            Typed(Typed),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Typed {
            path: String,
            #[serde(rename = "type")]
            cql_type: Option<CqlType>,
        }
        let msg = "a column is a dotted path, or {path: ..., type: text|int|bigint|double|\
                   boolean|timestamp|uuid}";
        Ok(match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(msg))? {
            Raw::Path(path) => ColumnSource { path, cql_type: None },
            Raw::Typed(t) => ColumnSource { path: t.path, cql_type: t.cql_type },
        })
    }
}

fn concurrency() -> usize {
    256
}

fn progress() -> Dur {
    Dur(std::time::Duration::from_secs(5))
}

/// `type: kafka_to_cassandra`: streaming sink, at-least-once, idempotent upserts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaToCassandraTask {
    /// Kafka connection.
    #[serde(default = "kafka_default")]
    pub kafka_connection: String,
    /// Cassandra connection.
    #[serde(default = "cassandra_default")]
    pub cassandra_connection: String,
    /// Topic (templated).
    pub topic: String,
    /// Consumer group (templated): its committed offsets are where a restart resumes.
    pub group_id: String,
    /// `keyspace.table` (or `table` with the connection's keyspace); templated.
    pub table: String,
    /// Column name -> where its value comes from, in insert order.
    pub columns: IndexMap<String, ColumnSource>,
    /// When to stop.
    #[serde(default = "caught_up")]
    pub until: Until,
    /// Where malformed messages go, with the reason in the `updraft.error` header; the
    /// default is `<topic>.dlq`.
    pub dead_letter_topic: Option<String>,
    /// Writes in flight at once.
    #[serde(default = "concurrency")]
    pub concurrency: usize,
    /// Stamp each write with the message's Kafka timestamp (`USING TIMESTAMP`) so that a
    /// replay of old messages never overwrites newer rows.
    #[serde(default = "yes")]
    pub write_timestamp: bool,
    /// Where a new group starts.
    #[serde(default = "earliest")]
    pub start_from: StartFrom,
    /// How often progress goes to the task log.
    #[serde(default = "progress")]
    pub progress_interval: Dur,
    /// Extra consumer settings (librdkafka names).
    #[serde(default)]
    pub consumer_config: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

/// Object format of `kafka_to_s3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectFormat {
    /// One JSON message per line (`.jsonl`).
    Jsonl,
}

fn jsonl() -> ObjectFormat {
    ObjectFormat::Jsonl
}

fn max_records() -> usize {
    100_000
}

fn max_bytes() -> u64 {
    64 * 1024 * 1024
}

fn max_age() -> Dur {
    Dur(std::time::Duration::from_secs(60))
}

/// `type: kafka_to_s3`: batches messages into time-partitioned objects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaToS3Task {
    /// Kafka connection.
    #[serde(default = "kafka_default")]
    pub kafka_connection: String,
    /// S3 connection (endpoint, region, credentials); unused for `file://` URLs.
    #[serde(default = "aws_default")]
    pub s3_connection: String,
    /// Topic (templated).
    pub topic: String,
    /// Consumer group (templated).
    pub group_id: String,
    /// Where objects go (templated): `s3://bucket/prefix` or `file:///folder`.
    pub url: String,
    /// Object format.
    #[serde(default = "jsonl")]
    pub format: ObjectFormat,
    /// An object is written when it holds this many messages...
    #[serde(default = "max_records")]
    pub max_records: usize,
    /// ...or this many bytes...
    #[serde(default = "max_bytes")]
    pub max_bytes: u64,
    /// ...or its first message was read this long ago.
    #[serde(default = "max_age")]
    pub max_age: Dur,
    /// When to stop.
    #[serde(default = "caught_up")]
    pub until: Until,
    /// Where messages that are not JSON go; the default is `<topic>.dlq`.
    pub dead_letter_topic: Option<String>,
    /// Where a new group starts.
    #[serde(default = "earliest")]
    pub start_from: StartFrom,
    /// How often progress goes to the task log.
    #[serde(default = "progress")]
    pub progress_interval: Dur,
    /// Extra consumer settings (librdkafka names).
    #[serde(default)]
    pub consumer_config: BTreeMap<String, String>,
}
