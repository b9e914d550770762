//! `type: kafka_to_cassandra`: the streaming sink from a topic to Cassandra rows, and its
//! column mapping ([`ColumnSource`], [`CqlType`]).
//!
//! Schema only; well-formed table and column names are checked in `parse/kind_streaming.rs`,
//! the columns against the table's real types when the task starts.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};

use super::stream::{StartFrom, Until, caught_up, earliest, progress};
use super::{Dur, RecordSettings, cassandra_default, kafka_default, yes};

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
    /// Record format, schema and transforms (their keys sit beside the ones above).
    #[serde(skip)]
    pub record_settings: RecordSettings,
}
