//! One typed settings struct per task type (`type:` in YAML), and the closed [`TaskKind`] enum.
//!
//! Adding a task type = one variant here, one struct here, one module in `operators/`, one
//! example DAG and one parse test. Structs deny unknown fields so a typo is a load error.
//! Templated fields are plain `String`s: rendering happens at run time, never here.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

mod kafka_sensor;
mod s3;
mod stream;

pub use kafka_sensor::{KafkaSensorTask, S3KeySensorTask};
pub use s3::{CqlTask, S3Operation, S3Task};
pub use stream::{
    ColumnSource, CqlType, HttpToKafkaTask, KafkaProduceTask, KafkaToCassandraTask, KafkaToS3Task,
    ObjectFormat, Pagination, StartFrom, Until,
};

/// The task types, closed: `type:` in YAML picks the variant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TaskKind {
    /// Runs a shell command.
    Bash(BashTask),
    /// Does nothing; joins and placeholders.
    Empty(EmptyTask),
    /// One HTTP request.
    Http(HttpTask),
    /// Waits for a file or glob to exist.
    FileSensor(FileSensorTask),
    /// Waits for an HTTP endpoint to answer as expected.
    HttpSensor(HttpSensorTask),
    /// Waits for a task (or a whole run) of another DAG to reach a state.
    ExternalTaskSensor(ExternalTaskSensorTask),
    /// Triggers a run of another DAG, optionally waiting for it.
    TriggerDag(TriggerDagTask),
    /// Produces records to a Kafka topic.
    KafkaProduce(KafkaProduceTask),
    /// REST ingestion: pages of a JSON API, split into records, produced to Kafka.
    HttpToKafka(HttpToKafkaTask),
    /// Streaming sink: Kafka -> Cassandra rows.
    KafkaToCassandra(KafkaToCassandraTask),
    /// Streaming sink: Kafka -> time-partitioned objects.
    KafkaToS3(KafkaToS3Task),
    /// Object operations: put, get, copy, delete, list.
    S3(S3Task),
    /// Statements on Cassandra.
    Cql(CqlTask),
    /// Waits until a topic holds enough (new) messages.
    KafkaSensor(KafkaSensorTask),
    /// Waits for an object or prefix.
    S3KeySensor(S3KeySensorTask),
}

impl TaskKind {
    /// The YAML `type:` value of every task type, for messages and docs.
    pub const TYPE_NAMES: [&'static str; 15] = [
        "bash",
        "empty",
        "http",
        "file_sensor",
        "http_sensor",
        "external_task_sensor",
        "trigger_dag",
        "kafka_produce",
        "http_to_kafka",
        "kafka_to_cassandra",
        "kafka_to_s3",
        "s3",
        "cql",
        "kafka_sensor",
        "s3_key_sensor",
    ];

    /// Whether the task type can read a named connection. The others never do, so a worker
    /// skips loading the stored connections for them (bash tries are the hand-off hot path).
    pub fn uses_connections(&self) -> bool {
        !matches!(
            self,
            TaskKind::Bash(_)
                | TaskKind::Empty(_)
                | TaskKind::FileSensor(_)
                | TaskKind::ExternalTaskSensor(_)
                | TaskKind::TriggerDag(_)
        )
    }

    /// The YAML `type:` value.
    pub fn type_name(&self) -> &'static str {
        match self {
            TaskKind::Bash(_) => "bash",
            TaskKind::Empty(_) => "empty",
            TaskKind::Http(_) => "http",
            TaskKind::FileSensor(_) => "file_sensor",
            TaskKind::HttpSensor(_) => "http_sensor",
            TaskKind::ExternalTaskSensor(_) => "external_task_sensor",
            TaskKind::TriggerDag(_) => "trigger_dag",
            TaskKind::KafkaProduce(_) => "kafka_produce",
            TaskKind::HttpToKafka(_) => "http_to_kafka",
            TaskKind::KafkaToCassandra(_) => "kafka_to_cassandra",
            TaskKind::KafkaToS3(_) => "kafka_to_s3",
            TaskKind::S3(_) => "s3",
            TaskKind::Cql(_) => "cql",
            TaskKind::KafkaSensor(_) => "kafka_sensor",
            TaskKind::S3KeySensor(_) => "s3_key_sensor",
        }
    }

    /// Poke settings when the task is a sensor: the scheduler then releases the executor slot
    /// between pokes instead of holding it.
    pub fn sensor(&self) -> Option<SensorSettings> {
        match self {
            TaskKind::FileSensor(t) => Some(t.sensor),
            TaskKind::HttpSensor(t) => Some(t.sensor),
            TaskKind::ExternalTaskSensor(t) => Some(t.sensor),
            TaskKind::TriggerDag(t) if t.wait_for_completion => Some(t.sensor),
            TaskKind::KafkaSensor(t) => Some(t.sensor),
            TaskKind::S3KeySensor(t) => Some(t.sensor),
            _ => None,
        }
    }
}

/// A duration written as `30s`, `10m`, `1h30m` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses the text form; the error is a sentence for the user.
    pub fn parse(text: &str) -> Result<Dur, String> {
        let t = text.trim();
        if let Ok(secs) = t.parse::<f64>() {
            return Dur::from_secs_f64(secs);
        }
        humantime::parse_duration(t).map(Dur).map_err(|_| {
            format!("`{text}` is not a duration; write e.g. 30s, 10m, 1h30m or seconds")
        })
    }

    fn from_secs_f64(secs: f64) -> Result<Dur, String> {
        if secs.is_finite() && secs >= 0.0 {
            Ok(Dur(Duration::from_secs_f64(secs)))
        } else {
            Err(format!("`{secs}` is not a duration; it must be zero or more seconds"))
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 10m, 1h30m or a number of seconds")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                Dur::from_secs_f64(v as f64).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Dur::from_secs_f64(v).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// How a sensor pokes. Between pokes the task is `up_for_reschedule` and holds no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorSettings {
    /// Time between two pokes.
    pub poke_interval: Duration,
    /// Give up (fail, or skip when `soft_fail`) this long after the first poke.
    pub timeout: Duration,
    /// On timeout, mark the task skipped instead of failed.
    pub soft_fail: bool,
}

/// Airflow's defaults: poke every minute, give up after seven days.
const DEFAULT_POKE: Duration = Duration::from_secs(60);
const DEFAULT_SENSOR_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SensorFields {
    poke_interval: Option<Dur>,
    timeout: Option<Dur>,
    #[serde(default)]
    soft_fail: bool,
}

impl From<SensorFields> for SensorSettings {
    fn from(f: SensorFields) -> Self {
        SensorSettings {
            poke_interval: f.poke_interval.map_or(DEFAULT_POKE, |d| d.0),
            timeout: f.timeout.map_or(DEFAULT_SENSOR_TIMEOUT, |d| d.0),
            soft_fail: f.soft_fail,
        }
    }
}

fn default_skip_codes() -> Vec<i32> {
    // Airflow's BashOperator skips the task when the command exits with 99.
    vec![99]
}

/// `type: bash`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BashTask {
    /// Shell command (templated), run with `bash -c` in its own process group.
    pub command: String,
    /// Extra environment variables (values templated).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Keep the environment of the Updraft process (true) or start from an empty one.
    #[serde(default = "yes")]
    pub append_env: bool,
    /// Working directory (templated); a fresh temporary folder when absent.
    pub cwd: Option<String>,
    /// Exit codes that mark the task skipped instead of failed.
    #[serde(default = "default_skip_codes")]
    pub skip_on_exit_code: Vec<i32>,
}

fn yes() -> bool {
    true
}

/// `type: empty`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyTask {}

/// `type: http`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTask {
    /// HTTP method, GET by default.
    #[serde(default = "get")]
    pub method: String,
    /// Connection whose URI gives the base URL, credentials and default headers.
    pub connection: Option<String>,
    /// Path appended to the connection's base URL (templated).
    pub endpoint: Option<String>,
    /// Full URL (templated), when there is no connection.
    pub url: Option<String>,
    /// Request headers (values templated).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters (values templated).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Request body: a string (templated) sent as is, or a mapping sent as JSON.
    pub body: Option<serde_json::Value>,
    /// Statuses counted as success; any 2xx when empty.
    #[serde(default)]
    pub expected_status: Vec<u16>,
    /// Request timeout; the task's execution_timeout still applies on top.
    pub timeout: Option<Dur>,
}

fn get() -> String {
    "GET".to_string()
}

/// `type: file_sensor`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "FileSensorRaw")]
pub struct FileSensorTask {
    /// File path or glob (templated); true when at least one file matches.
    pub path: String,
    /// Poke settings.
    pub sensor: SensorSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSensorRaw {
    path: String,
    poke_interval: Option<Dur>,
    timeout: Option<Dur>,
    #[serde(default)]
    soft_fail: bool,
}

impl From<FileSensorRaw> for FileSensorTask {
    fn from(r: FileSensorRaw) -> Self {
        let sensor = SensorFields {
            poke_interval: r.poke_interval,
            timeout: r.timeout,
            soft_fail: r.soft_fail,
        };
        FileSensorTask { path: r.path, sensor: sensor.into() }
    }
}

/// `type: http_sensor`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "HttpSensorRaw")]
pub struct HttpSensorTask {
    /// The request to make on each poke.
    pub request: HttpTask,
    /// Template rendered with `response` (status, text, json); truthy means done. When absent,
    /// an expected status means done.
    pub response_check: Option<String>,
    /// Poke settings.
    pub sensor: SensorSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSensorRaw {
    #[serde(default = "get")]
    method: String,
    connection: Option<String>,
    endpoint: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    body: Option<serde_json::Value>,
    #[serde(default)]
    expected_status: Vec<u16>,
    response_check: Option<String>,
    poke_interval: Option<Dur>,
    timeout: Option<Dur>,
    #[serde(default)]
    soft_fail: bool,
}

impl From<HttpSensorRaw> for HttpSensorTask {
    fn from(r: HttpSensorRaw) -> Self {
        let sensor = SensorFields {
            poke_interval: r.poke_interval,
            timeout: r.timeout,
            soft_fail: r.soft_fail,
        };
        HttpSensorTask {
            request: HttpTask {
                method: r.method,
                connection: r.connection,
                endpoint: r.endpoint,
                url: r.url,
                headers: r.headers,
                query: r.query,
                body: r.body,
                expected_status: r.expected_status,
                // One poke is one request; the poke interval bounds it.
                timeout: None,
            },
            response_check: r.response_check,
            sensor: sensor.into(),
        }
    }
}

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
    /// Poke settings.
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
    poke_interval: Option<Dur>,
    timeout: Option<Dur>,
    #[serde(default)]
    soft_fail: bool,
}

impl From<ExternalRaw> for ExternalTaskSensorTask {
    fn from(r: ExternalRaw) -> Self {
        let sensor = SensorFields {
            poke_interval: r.poke_interval,
            timeout: r.timeout,
            soft_fail: r.soft_fail,
        };
        ExternalTaskSensorTask {
            external_dag_id: r.external_dag_id,
            external_task_id: r.external_task_id,
            logical_date: r.logical_date,
            allowed_states: if r.allowed_states.is_empty() {
                vec!["success".into()]
            } else {
                r.allowed_states
            },
            failed_states: if r.failed_states.is_empty() {
                vec!["failed".into()]
            } else {
                r.failed_states
            },
            sensor: sensor.into(),
        }
    }
}

/// `type: trigger_dag`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "TriggerRaw")]
pub struct TriggerDagTask {
    /// The DAG to trigger.
    pub trigger_dag_id: String,
    /// Conf (params) for the new run; string values are templated.
    pub conf: Option<serde_json::Value>,
    /// Run id of the new run (templated); generated when absent.
    pub trigger_run_id: Option<String>,
    /// Stay up (as a sensor, without a slot) until the triggered run finishes.
    pub wait_for_completion: bool,
    /// Poke settings used when waiting.
    pub sensor: SensorSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerRaw {
    trigger_dag_id: String,
    conf: Option<serde_json::Value>,
    trigger_run_id: Option<String>,
    #[serde(default)]
    wait_for_completion: bool,
    poke_interval: Option<Dur>,
    timeout: Option<Dur>,
    #[serde(default)]
    soft_fail: bool,
}

impl From<TriggerRaw> for TriggerDagTask {
    fn from(r: TriggerRaw) -> Self {
        let sensor = SensorFields {
            poke_interval: r.poke_interval,
            timeout: r.timeout,
            soft_fail: r.soft_fail,
        };
        TriggerDagTask {
            trigger_dag_id: r.trigger_dag_id,
            conf: r.conf,
            trigger_run_id: r.trigger_run_id,
            wait_for_completion: r.wait_for_completion,
            sensor: sensor.into(),
        }
    }
}
