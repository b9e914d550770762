//! `type: trigger_dag`: triggers a run of another DAG, optionally waiting for it.
//!
//! Schema only. While waiting (`wait_for_completion`), the task pokes like a sensor with the
//! shared [`SensorSettings`], filled by the parser; otherwise they are unused.

use serde::Deserialize;

use super::SensorSettings;

/// `type: trigger_dag`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDagTask {
    /// The DAG to trigger.
    pub trigger_dag_id: String,
    /// Conf (params) for the new run; string values are templated.
    pub conf: Option<serde_json::Value>,
    /// Run id of the new run (templated); generated when absent.
    pub trigger_run_id: Option<String>,
    /// Stay up (as a sensor, without a slot) until the triggered run finishes.
    #[serde(default)]
    pub wait_for_completion: bool,
    /// Poke settings used when waiting (their keys sit beside the ones above).
    #[serde(skip)]
    pub sensor: SensorSettings,
}
