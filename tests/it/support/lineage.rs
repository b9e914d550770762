//! An OpenLineage consumer for the tests: a real HTTP receiver on 127.0.0.1 that the engine's
//! lineage transport POSTs to, the events it got, and their check against the OpenLineage
//! JSON schemas (`tests/data/openlineage`, validated by Python's `jsonschema` from
//! `scripts/jsonschema.sh`, `UPDRAFT_TEST_JSONSCHEMA`).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use updraft::config::{LineageSettings, LineageTarget};

use super::common::Env;
use super::receivers::Receiver;

/// The bearer token the engine is given, which every request must carry.
pub const API_KEY: &str = "ol-test-key";

/// The receiver of one test's events.
pub struct Lineage {
    receiver: Receiver,
    namespace: String,
}

/// (namespace, name) of a dataset.
pub type Named = (String, String);

impl Lineage {
    /// Starts a receiver and points `env`'s lineage at it (namespace `ns`).
    pub async fn start(env: &mut Env, ns: &str) -> Lineage {
        let receiver = Receiver::default();
        let base = receiver.start().await;
        env.settings.lineage = LineageSettings {
            target: Some(LineageTarget::Http {
                url: format!("{base}/ok/lineage"),
                api_key: Some(API_KEY.into()),
            }),
            namespace: ns.into(),
            queue: 10_000,
        };
        Lineage { receiver, namespace: ns.into() }
    }

    /// Every event received so far, in arrival order; each request carried the API key.
    pub fn events(&self) -> Vec<Value> {
        let got = self.receiver.at("/ok/lineage");
        for r in &got {
            let auth = r.headers.get("authorization").map(String::as_str);
            assert_eq!(auth, Some(format!("Bearer {API_KEY}").as_str()), "{r:?}");
        }
        got.into_iter().map(|r| r.body).collect()
    }

    /// Waits (at most `limit`) until the event of `job` of type `kind` of run `run_id` arrived;
    /// the run's events (see [`of_run`]).
    pub async fn wait_for(
        &self,
        run: (&str, &str),
        job: &str,
        kind: &str,
        limit: Duration,
    ) -> Vec<Value> {
        let until = std::time::Instant::now() + limit;
        loop {
            let events = of_run(self.events(), &self.namespace, run.0, run.1);
            if events.iter().any(|e| e["job"]["name"] == job && e["eventType"] == kind) {
                return events;
            }
            assert!(
                std::time::Instant::now() < until,
                "no {kind} of {job} in {limit:?}; got: {:?}",
                summary(&events)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The events of DAG run `run_id` of `dag_id` (job namespace `ns`) and of its tries: other
/// runs of the DAG (a scheduled one beside the test's) are not the test's.
pub fn of_run(events: Vec<Value>, ns: &str, dag_id: &str, run_id: &str) -> Vec<Value> {
    let id = updraft::lineage::run_uuid(ns, dag_id, run_id).to_string();
    events
        .into_iter()
        .filter(|e| e["run"]["runId"] == id || e["run"]["facets"]["parent"]["run"]["runId"] == id)
        .collect()
}

/// (job, eventType) of each event, for a failure message.
pub fn summary(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e["job"]["name"].as_str().unwrap_or("").into(), e["eventType"].to_string()))
        .collect()
}

/// The event of `job` of type `kind`; panics naming what arrived when there is not one.
pub fn event<'a>(events: &'a [Value], job: &str, kind: &str) -> &'a Value {
    let found: Vec<&Value> =
        events.iter().filter(|e| e["job"]["name"] == job && e["eventType"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} of {job}: {:?}", summary(events));
    found[0]
}

/// The (namespace, name) of an event's `side` (`inputs` or `outputs`).
pub fn named(event: &Value, side: &str) -> Vec<Named> {
    let list = event[side].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
            (s("namespace"), s("name"))
        })
        .collect()
}

/// The field names of the schema facet of the dataset `name` of an event's `side`.
pub fn fields(event: &Value, side: &str, name: &str) -> Vec<String> {
    let list = event[side].as_array().cloned().unwrap_or_default();
    let d = list.iter().find(|d| d["name"] == name).unwrap_or_else(|| panic!("{name} in {side}"));
    let fields = d["facets"]["schema"]["fields"].as_array().cloned().unwrap_or_default();
    fields.iter().map(|f| f["name"].as_str().unwrap_or("").to_string()).collect()
}

/// Checks `events` against the OpenLineage schemas with the reference validator; panics with
/// its findings. Skips (fails in CI) without `UPDRAFT_TEST_JSONSCHEMA`.
pub fn assert_valid(events: &[Value], scratch: &Path) {
    let Some(python) = super::streaming::server_var("UPDRAFT_TEST_JSONSCHEMA") else { return };
    assert!(!events.is_empty(), "no events to check");
    let file = scratch.join("openlineage-events.jsonl");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n") + "\n").expect("write the events");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python)
        .arg(root.join("tests/it/support/openlineage_check.py"))
        .arg(root.join("tests/data/openlineage"))
        .arg(&file)
        .output()
        .expect("run the validator");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "events do not validate:\n{text}{err}");
    assert!(text.contains(&format!("{} events valid", events.len())), "{text}{err}");
}
