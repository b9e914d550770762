//! Settings of the sensors of the streaming systems: `kafka_sensor` and `s3_key_sensor`.
//!
//! Schema only, like the rest of `kinds`. The poke settings are Airflow's, shared with the
//! other sensors through `SensorFields`.

use serde::Deserialize;

use super::{Dur, SensorFields, SensorSettings};

fn kafka_default() -> String {
    "kafka_default".into()
}

fn aws_default() -> String {
    "aws_default".into()
}

fn one() -> u64 {
    1
}

/// `type: kafka_sensor`: waits until a topic holds enough messages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "KafkaSensorRaw")]
pub struct KafkaSensorTask {
    /// Kafka connection.
    pub connection: String,
    /// Topic (templated).
    pub topic: String,
    /// With a group (templated): messages the group has not consumed yet (end offsets minus
    /// its committed offsets). Without: messages in the topic (end minus beginning offsets).
    pub group_id: Option<String>,
    /// Done when at least this many messages are there.
    pub min_messages: u64,
    /// Poke settings.
    pub sensor: SensorSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaSensorRaw {
    #[serde(default = "kafka_default")]
    connection: String,
    topic: String,
    group_id: Option<String>,
    #[serde(default = "one")]
    min_messages: u64,
    poke_interval: Option<Dur>,
    timeout: Option<Dur>,
    #[serde(default)]
    soft_fail: bool,
}

impl From<KafkaSensorRaw> for KafkaSensorTask {
    fn from(r: KafkaSensorRaw) -> Self {
        let sensor = SensorFields {
            poke_interval: r.poke_interval,
            timeout: r.timeout,
            soft_fail: r.soft_fail,
        };
        KafkaSensorTask {
            connection: r.connection,
            topic: r.topic,
            group_id: r.group_id,
            min_messages: r.min_messages,
            sensor: sensor.into(),
        }
    }
}

/// `type: s3_key_sensor`: waits for an object, or any object under a prefix.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "S3KeySensorRaw")]
pub struct S3KeySensorTask {
    /// S3 connection.
    pub connection: String,
    /// Object URL (templated); a URL ending in `/` waits for any object under that prefix.
    pub key: String,
    /// Poke settings.
    pub sensor: SensorSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct S3KeySensorRaw {
    #[serde(default = "aws_default")]
    connection: String,
    key: String,
    poke_interval: Option<Dur>,
    timeout: Option<Dur>,
    #[serde(default)]
    soft_fail: bool,
}

impl From<S3KeySensorRaw> for S3KeySensorTask {
    fn from(r: S3KeySensorRaw) -> Self {
        let sensor = SensorFields {
            poke_interval: r.poke_interval,
            timeout: r.timeout,
            soft_fail: r.soft_fail,
        };
        S3KeySensorTask { connection: r.connection, key: r.key, sensor: sensor.into() }
    }
}
