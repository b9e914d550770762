//! `type: kafka_to_sql`: the streaming sink from a topic into a PostgreSQL or MySQL/MariaDB
//! table, with the column mapping of `kafka_to_cassandra` ([`ColumnSource`]).
//!
//! Schema only; identifiers, key columns and sources are checked in
//! `parse/kind_sql_kafka.rs`, the mapping against the real table when the task starts.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::Deserialize;

use super::kafka_to_cassandra::ColumnSource;
use super::stream::{StartFrom, Until, caught_up, earliest, progress};
use super::{Dur, RecordSettings, kafka_default};

/// How a message becomes a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkMode {
    /// A plain INSERT: a duplicate key is the database's error (the row goes to the
    /// dead-letter topic), and a replay after a crash may meet its own rows.
    Insert,
    /// INSERT, or UPDATE of the row with the same `key_columns` (`ON CONFLICT ... DO UPDATE`,
    /// `ON DUPLICATE KEY UPDATE`): replays are idempotent.
    Upsert,
}

fn insert() -> SinkMode {
    SinkMode::Insert
}

fn batch_size() -> usize {
    5_000
}

fn max_age() -> Dur {
    Dur(std::time::Duration::from_secs(1))
}

/// `type: kafka_to_sql`: streaming sink, at-least-once, batched, idempotent with `upsert`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaToSqlTask {
    /// Kafka connection.
    #[serde(default = "kafka_default")]
    pub kafka_connection: String,
    /// The database: a `postgres://`, `mysql://` or `sqlite://` connection.
    pub sql_connection: String,
    /// Topic (templated).
    pub topic: String,
    /// Consumer group (templated): its committed offsets are where a restart resumes.
    pub group_id: String,
    /// The table (`table` or `schema.table`).
    pub table: String,
    /// Column name -> where its value comes from (a dotted JSON path or `$key`, `$topic`,
    /// `$partition`, `$offset`, `$timestamp`); checked against the table at start.
    pub columns: IndexMap<String, ColumnSource>,
    /// `insert` (the default) or `upsert`.
    #[serde(default = "insert")]
    pub mode: SinkMode,
    /// The columns that identify a row (a primary key or unique index of the table): the
    /// conflict target of `upsert`, the batch's de-duplication key (last message wins) and
    /// the WHERE of a tombstone's DELETE.
    #[serde(default)]
    pub key_columns: Vec<String>,
    /// A message without a payload deletes the row its key names. The key is mapped by the
    /// `$key` column, or parsed as a JSON object holding the key columns.
    #[serde(default)]
    pub delete_on_tombstone: bool,
    /// Rows per database transaction.
    #[serde(default = "batch_size")]
    pub batch_size: usize,
    /// A batch is written once its first message is this old, full or not.
    #[serde(default = "max_age")]
    pub max_age: Dur,
    /// When to stop.
    #[serde(default = "caught_up")]
    pub until: Until,
    /// Where bad messages and refused rows go, with the reason in the `updraft.error`
    /// header; the default is `<topic>.dlq`.
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
