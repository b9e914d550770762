//! `type: kafka_sensor`: waits until a topic holds enough messages.
//!
//! Schema only. The poke settings are the shared [`SensorSettings`], filled by the parser.

use serde::Deserialize;

use super::{SensorSettings, kafka_default, one};

/// `type: kafka_sensor`: waits until a topic holds enough messages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSensorTask {
    /// Kafka connection.
    #[serde(default = "kafka_default")]
    pub connection: String,
    /// Topic (templated).
    pub topic: String,
    /// With a group (templated): messages the group has not consumed yet (end offsets minus
    /// its committed offsets). Without: messages in the topic (end minus beginning offsets).
    pub group_id: Option<String>,
    /// Done when at least this many messages are there.
    #[serde(default = "one")]
    pub min_messages: u64,
    /// Poke settings (their keys sit beside the ones above).
    #[serde(skip)]
    pub sensor: SensorSettings,
}
