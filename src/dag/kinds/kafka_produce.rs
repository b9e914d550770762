//! `type: kafka_produce`: records given inline, from a file, or from an upstream XCom.
//!
//! Schema only; "exactly one record source" is checked in `parse/kind_streaming.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{RecordSettings, kafka_default};

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
    /// Record format, schema and transforms (their keys sit beside the ones above).
    #[serde(skip)]
    pub record_settings: RecordSettings,
}
