//! `type: kafka_to_s3`: the streaming sink from a topic to time-partitioned objects, and its
//! [`ObjectFormat`].
//!
//! Schema only; the object URL's form is checked in `parse/kind_streaming.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::stream::{StartFrom, Until, caught_up, earliest, progress};
use super::{Dur, RecordSettings, aws_default, kafka_default};

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
    /// Object format (`format` is the messages' one, shared by every Kafka task).
    #[serde(default = "jsonl")]
    pub object_format: ObjectFormat,
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
    /// Where messages that do not decode (or whose transform fails) go; the default is
    /// `<topic>.dlq`.
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
    /// Record format, schema and transforms (their keys sit beside the ones above).
    #[serde(skip)]
    pub record_settings: RecordSettings,
}
