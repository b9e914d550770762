//! `type: s3_key_sensor`: waits for an object, or any object under a prefix.
//!
//! Schema only. The poke settings are the shared [`SensorSettings`], filled by the parser.

use serde::Deserialize;

use super::{SensorSettings, aws_default};

/// `type: s3_key_sensor`: waits for an object, or any object under a prefix.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3KeySensorTask {
    /// S3 connection.
    #[serde(default = "aws_default")]
    pub connection: String,
    /// Object URL (templated); a URL ending in `/` waits for any object under that prefix.
    pub key: String,
    /// Poke settings (their keys sit beside the ones above).
    #[serde(skip)]
    pub sensor: SensorSettings,
}
