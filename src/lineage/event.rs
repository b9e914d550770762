//! The JSON of one OpenLineage RunEvent (spec 2-0-2): run ids, job names and facets.
//!
//! Run ids are derived, never drawn: a DAG run's from (namespace, dag_id, run_id), a try's from
//! (namespace, dag_id, run_id, task_id, map_index, try_number), hashed with SHA-256 into a
//! name-based UUID (version 8, RFC 9562's layout for a hash other than SHA-1). So the START a
//! scheduler sends and the COMPLETE another process sends after a restart name one run, and a
//! task's `parent` facet names its DAG run without asking anyone.
//!
//! Invariant: pure — no I/O, no clock (times are given); each facet carries the `_schemaURL`
//! of the facet version whose fields it writes.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::datasets::Datasets;
use crate::model::TaskState;
use crate::store::{RunRow, TiRow};

/// The event schema every event names.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const NOMINAL_TIME: &str =
    "https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet";
const PARENT: &str =
    "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
const ERROR_MESSAGE: &str = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const JOB_TYPE: &str =
    "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
pub(super) const SCHEMA: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";

/// The transition an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Start,
    Complete,
    Fail,
    Abort,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Start => "START",
            EventType::Complete => "COMPLETE",
            EventType::Fail => "FAIL",
            EventType::Abort => "ABORT",
        }
    }
}

/// The run id of DAG run `run_id` of `dag_id`, in job namespace `namespace`.
pub fn run_uuid(namespace: &str, dag_id: &str, run_id: &str) -> uuid::Uuid {
    name_uuid(&["run", namespace, dag_id, run_id])
}

/// The run id of try `try_number` of a task instance.
pub fn try_uuid(
    namespace: &str,
    (dag_id, run_id, task_id): (&str, &str, &str),
    map_index: i64,
    try_number: i64,
) -> uuid::Uuid {
    let (map, tries) = (map_index.to_string(), try_number.to_string());
    name_uuid(&["try", namespace, dag_id, run_id, task_id, &map, &tries])
}

/// A name-based UUID: SHA-256 of the parts (each NUL-terminated, so no two lists hash alike),
/// with the version (8) and variant bits set.
fn name_uuid(parts: &[&str]) -> uuid::Uuid {
    let mut h = Sha256::new();
    h.update(b"updraft-openlineage\0");
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b)
}

/// What every event of this process shares.
pub(super) struct Ids {
    namespace: String,
    producer: String,
}

/// One try, as its events name it.
pub(super) struct Try {
    dag_id: String,
    run_id: String,
    task_id: String,
    map_index: i64,
    try_number: i64,
    /// The task type, for the error facet's language.
    type_name: &'static str,
    interval: (DateTime<Utc>, DateTime<Utc>),
}

impl Try {
    pub(super) fn new(ti: &TiRow, run: &RunRow, type_name: &'static str) -> Try {
        Try {
            dag_id: ti.dag_id.clone(),
            run_id: ti.run_id.clone(),
            task_id: ti.task_id.clone(),
            map_index: ti.map_index,
            try_number: ti.try_number,
            type_name,
            interval: (run.data_interval_start, run.data_interval_end),
        }
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The text of a run's FAIL: which tasks failed, from the run's instance counts.
pub(super) fn failed_tasks(counts: &HashMap<String, HashMap<TaskState, i64>>) -> String {
    let mut failed: Vec<&str> = counts
        .iter()
        .filter(|(_, by)| by.get(&TaskState::Failed).is_some_and(|n| *n > 0))
        .map(|(t, _)| t.as_str())
        .collect();
    failed.sort_unstable();
    match failed.as_slice() {
        [] => "the run failed: an upstream failure reached a leaf task".into(),
        tasks => format!("the run failed: task(s) {} failed", tasks.join(", ")),
    }
}

impl Ids {
    /// `namespace` is the job namespace; `base_url` the web UI's, which with the version makes
    /// the producer URL (Updraft has no fixed home of its own to name).
    pub(super) fn new(namespace: &str, base_url: &str) -> Ids {
        let producer = format!("{base_url}/?producer=updraft-{}", env!("CARGO_PKG_VERSION"));
        Ids { namespace: namespace.to_string(), producer }
    }

    /// The producer URL every event and facet carries.
    pub(super) fn producer(&self) -> &str {
        &self.producer
    }

    fn facet(&self, schema: &str, fields: Value) -> Value {
        let mut f = json!({ "_producer": self.producer, "_schemaURL": schema });
        if let (Some(f), Value::Object(fields)) = (f.as_object_mut(), fields) {
            f.extend(fields);
        }
        f
    }

    fn nominal_time(&self, (start, end): (DateTime<Utc>, DateTime<Utc>)) -> Value {
        let mut fields = json!({ "nominalStartTime": time(start) });
        if end > start {
            fields["nominalEndTime"] = json!(time(end));
        }
        self.facet(NOMINAL_TIME, fields)
    }

    fn job(&self, name: &str, job_type: &str) -> Value {
        let facet =
            json!({ "processingType": "BATCH", "integration": "UPDRAFT", "jobType": job_type });
        json!({
            "namespace": self.namespace,
            "name": name,
            "facets": { "jobType": self.facet(JOB_TYPE, facet) },
        })
    }

    fn error(&self, message: &str, language: &str) -> Value {
        self.facet(ERROR_MESSAGE, json!({ "message": message, "programmingLanguage": language }))
    }

    fn event(
        &self,
        kind: EventType,
        at: DateTime<Utc>,
        run_id: uuid::Uuid,
        run_facets: Map<String, Value>,
        job: Value,
        datasets: &Datasets,
    ) -> Value {
        json!({
            "eventType": kind.as_str(),
            "eventTime": time(at),
            "producer": self.producer,
            "schemaURL": SCHEMA_URL,
            "run": { "runId": run_id.to_string(), "facets": run_facets },
            "job": job,
            "inputs": datasets.inputs.iter().map(|d| d.to_json(self)).collect::<Vec<_>>(),
            "outputs": datasets.outputs.iter().map(|d| d.to_json(self)).collect::<Vec<_>>(),
        })
    }

    /// A DAG run's event: job `dag_id`, the nominal time of its data interval, the error of a
    /// FAIL or an ABORT.
    pub(super) fn run_event(
        &self,
        kind: EventType,
        run: &RunRow,
        at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Value {
        let mut facets = Map::new();
        let interval = (run.data_interval_start, run.data_interval_end);
        facets.insert("nominalTime".into(), self.nominal_time(interval));
        if let Some(e) = error {
            facets.insert("errorMessage".into(), self.error(e, "updraft"));
        }
        let id = run_uuid(&self.namespace, &run.dag_id, &run.run_id);
        let job = self.job(&run.dag_id, "DAG");
        self.event(kind, at, id, facets, job, &Datasets::default())
    }

    /// A try's event: job `dag_id.task_id`, its DAG run as `parent` (and root), the nominal
    /// time of the run's data interval, the error of a FAIL or an ABORT, its datasets.
    pub(super) fn try_event(
        &self,
        kind: EventType,
        t: &Try,
        at: DateTime<Utc>,
        datasets: &Datasets,
        error: Option<&str>,
    ) -> Value {
        let parent_run =
            json!({ "runId": run_uuid(&self.namespace, &t.dag_id, &t.run_id).to_string() });
        let parent_job = json!({ "namespace": self.namespace, "name": t.dag_id });
        let parent = json!({
            "run": parent_run,
            "job": parent_job,
            "root": { "run": parent_run, "job": parent_job },
        });
        let mut facets = Map::new();
        facets.insert("parent".into(), self.facet(PARENT, parent));
        facets.insert("nominalTime".into(), self.nominal_time(t.interval));
        if let Some(e) = error {
            let language = match t.type_name {
                "bash" => "shell",
                "sql" | "sql_sensor" => "sql",
                "cql" => "cql",
                _ => "rust",
            };
            facets.insert("errorMessage".into(), self.error(e, language));
        }
        let ids = (t.dag_id.as_str(), t.run_id.as_str(), t.task_id.as_str());
        let id = try_uuid(&self.namespace, ids, t.map_index, t.try_number);
        let job = self.job(&format!("{}.{}", t.dag_id, t.task_id), "TASK");
        self.event(kind, at, id, facets, job, datasets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_derived_and_distinct() {
        let a = run_uuid("updraft", "etl", "manual__1");
        assert_eq!(a, run_uuid("updraft", "etl", "manual__1"), "same run, same id");
        assert_eq!(a.get_version_num(), 8);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, run_uuid("prod", "etl", "manual__1"), "the namespace counts");
        assert_ne!(run_uuid("u", "a.b", "c"), run_uuid("u", "a", "b.c"), "no ambiguous joins");
        let ids = ("etl", "manual__1", "load");
        let t1 = try_uuid("updraft", ids, -1, 1);
        assert_eq!(t1, try_uuid("updraft", ids, -1, 1));
        assert_ne!(t1, try_uuid("updraft", ids, -1, 2), "each try is a run of its own");
        assert_ne!(t1, try_uuid("updraft", ids, 0, 1), "each mapped instance too");
        assert_ne!(t1, a);
    }

    #[test]
    fn a_failed_run_names_its_failed_tasks() {
        let mut counts: HashMap<String, HashMap<TaskState, i64>> = HashMap::new();
        counts.entry("b".into()).or_default().insert(TaskState::Failed, 1);
        counts.entry("a".into()).or_default().insert(TaskState::Failed, 2);
        counts.entry("c".into()).or_default().insert(TaskState::UpstreamFailed, 1);
        assert_eq!(failed_tasks(&counts), "the run failed: task(s) a, b failed");
        counts.clear();
        assert!(failed_tasks(&counts).contains("upstream failure"));
    }

    #[test]
    fn facets_carry_producer_and_schema_and_an_open_interval_has_no_end() {
        let ids = Ids::new("updraft", "http://127.0.0.1:8080");
        let t = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let f = ids.nominal_time((t, t));
        assert_eq!(f["nominalStartTime"], "2026-01-01T00:00:00.000000Z");
        assert!(f.get("nominalEndTime").is_none());
        assert_eq!(f["_schemaURL"], NOMINAL_TIME);
        assert!(f["_producer"].as_str().unwrap().starts_with("http://127.0.0.1:8080/?producer="));
        let f = ids.nominal_time((t, t + chrono::Duration::hours(1)));
        assert_eq!(f["nominalEndTime"], "2026-01-01T01:00:00.000000Z");
    }
}
