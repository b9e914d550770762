//! `type: sql_to_kafka`: the incremental table source, reading new rows of a PostgreSQL or
//! MySQL/MariaDB table by a cursor and producing them to a topic.
//!
//! Schema only; identifiers and the fields each mode needs are checked in
//! `parse/kind_sql_kafka.rs`, the columns against the real table when the task starts.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::stream::{Until, caught_up, progress};
use super::{Dur, RecordSettings, kafka_default};

/// How new rows are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SourceMode {
    /// By a strictly increasing id column (`WHERE id > :id`): rows must get their ids in
    /// commit order, and updates are not seen.
    #[serde(rename = "incrementing")]
    Incrementing,
    /// By `(timestamp column, unique id)` (`WHERE (ts, id) > (:ts, :id)`): inserts and
    /// updates that set the timestamp, read only once older than the database's clock minus
    /// `lag`.
    #[serde(rename = "timestamp+incrementing")]
    TimestampIncrementing,
}

fn lag() -> Dur {
    Dur(std::time::Duration::from_secs(5))
}

fn poll_interval() -> Dur {
    Dur(std::time::Duration::from_secs(5))
}

fn batch_size() -> u64 {
    10_000
}

/// `type: sql_to_kafka`: table rows -> Kafka messages, at-least-once, resumable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlToKafkaTask {
    /// The database: a `postgres://` or `mysql://` connection.
    pub sql_connection: String,
    /// Kafka connection.
    #[serde(default = "kafka_default")]
    pub kafka_connection: String,
    /// The table (`table` or `schema.table`), read with its real column names.
    pub table: String,
    /// How new rows are found.
    pub mode: SourceMode,
    /// The strictly increasing, unique integer column (the second half of the cursor in
    /// `timestamp+incrementing`).
    pub incrementing_column: String,
    /// The timestamp column of `timestamp+incrementing` (set on insert, and on update to see
    /// updates).
    pub timestamp_column: Option<String>,
    /// The columns of the message key (default: the table's primary key, else the
    /// incrementing column). One column is the key as text; several are a JSON array.
    pub key_columns: Option<Vec<String>>,
    /// The columns of the message (default: every column).
    pub columns: Option<Vec<String>>,
    /// Topic (templated).
    pub topic: String,
    /// Rows younger than the database's clock minus this are left for a later poll, so a
    /// transaction that commits late with an older timestamp is not skipped.
    #[serde(default = "lag")]
    pub lag: Dur,
    /// Rows read and produced per poll.
    #[serde(default = "batch_size")]
    pub batch_size: u64,
    /// How long to wait after a poll that found no new rows (`until` other than `caught_up`).
    #[serde(default = "poll_interval")]
    pub poll_interval: Dur,
    /// The name the cursor is stored under (default `<dag_id>.<task_id>`): two tasks with one
    /// name share one cursor.
    pub cursor_name: Option<String>,
    /// When to stop: `caught_up` once a poll finds no row old enough, a duration,
    /// `{max_messages: N}` (rounded up to a whole poll), or `forever`.
    #[serde(default = "caught_up")]
    pub until: Until,
    /// How often progress goes to the task log.
    #[serde(default = "progress")]
    pub progress_interval: Dur,
    /// Extra producer settings (librdkafka names).
    #[serde(default)]
    pub producer_config: BTreeMap<String, String>,
    /// Record format, schema and transforms (their keys sit beside the ones above).
    #[serde(skip)]
    pub record_settings: RecordSettings,
}
