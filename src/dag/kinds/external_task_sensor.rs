//! `type: external_task_sensor`: waits for a task (or a whole run) of another DAG.
//!
//! Schema only. Empty state lists mean Airflow's defaults (`[success]`, `[failed]`). The poke
//! settings are the shared [`SensorSettings`], filled by the parser.

use serde::Deserialize;

use super::SensorSettings;

/// `type: external_task_sensor`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "ExternalRaw")]
pub struct ExternalTaskSensorTask {
    /// The other DAG.
    pub external_dag_id: String,
    /// The task to wait for; the whole run when absent.
    pub external_task_id: Option<String>,
    /// Logical date of the run to look at (templated); this run's logical date when absent.
    pub logical_date: Option<String>,
    /// States that mean done.
    pub allowed_states: Vec<String>,
    /// States that fail this sensor at once.
    pub failed_states: Vec<String>,
    /// Poke settings (their keys sit beside the ones above).
    pub sensor: SensorSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExternalRaw {
    external_dag_id: String,
    external_task_id: Option<String>,
    logical_date: Option<String>,
    #[serde(default)]
    allowed_states: Vec<String>,
    #[serde(default)]
    failed_states: Vec<String>,
}

/// The list as written, or `default` when it is empty (written `[]` or not at all).
fn or_default(states: Vec<String>, default: &str) -> Vec<String> {
    if states.is_empty() { vec![default.to_string()] } else { states }
}

impl From<ExternalRaw> for ExternalTaskSensorTask {
    fn from(r: ExternalRaw) -> Self {
        ExternalTaskSensorTask {
            external_dag_id: r.external_dag_id,
            external_task_id: r.external_task_id,
            logical_date: r.logical_date,
            allowed_states: or_default(r.allowed_states, "success"),
            failed_states: or_default(r.failed_states, "failed"),
            sensor: SensorSettings::default(),
        }
    }
}
