//! `type: file_sensor`: waits for a file, or any file matching a glob.
//!
//! Schema only. The poke settings are the shared [`SensorSettings`], filled by the parser.

use serde::Deserialize;

use super::SensorSettings;

/// `type: file_sensor`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSensorTask {
    /// File path or glob (templated); true when at least one file matches.
    pub path: String,
    /// Poke settings (their keys sit beside `path`).
    #[serde(skip)]
    pub sensor: SensorSettings,
}
