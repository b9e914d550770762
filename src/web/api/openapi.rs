//! The OpenAPI 3.0 document of `/api/v1`, served at `/api/v1/openapi.json` without login.
//!
//! Invariant: the document's paths and methods are generated from `super::ROUTES`, the same
//! table `super::router` registers, and [`operation`] matches every `Op` exhaustively — a
//! route cannot be served undocumented or documented unserved. The schemas here describe the
//! serde structs of `dags`, `runs`, `tis` and `logs`; change them together.

use std::sync::LazyLock;

use axum::Json;
use serde_json::{Map, Value, json};

use super::{Op, PREFIX, ROUTES, Route};

/// The document, built once.
static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

/// `GET /openapi.json`.
pub(super) async fn serve() -> Json<Value> {
    Json(DOCUMENT.clone())
}

/// The OpenAPI document of every route in `ROUTES`.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let item = paths.entry(r.path).or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(r.verb.as_str().into(), operation(r));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Updraft REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "DAGs, runs, task instances, logs, import errors and health. \
                Authenticate with `Authorization: Bearer <token>` (tokens are created per user \
                and carry the user's roles: viewer reads, operator also triggers, pauses, \
                clears and marks). A browser session cookie works too; its writes must then send \
                the session's CSRF token in `X-CSRF-Token`. Times are RFC 3339; states are Airflow's spellings. Errors \
                are `{\"error\": message, \"status\": code}`.",
        },
        "servers": [{ "url": PREFIX }],
        "security": [{ "bearerAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "description": "An API token" },
            },
            "schemas": schemas(),
        },
    })
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description,
            "schema": schema })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description,
            "schema": schema })
}

/// The path parameters named in `path`, in order.
fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| match name {
            "dag_id" => path_param(name, "DAG id", json!({ "type": "string" })),
            "dag_run_id" => path_param(name, "Run id within the DAG", json!({ "type": "string" })),
            "task_id" => path_param(name, "Task id", json!({ "type": "string" })),
            "try_number" => {
                path_param(name, "Try, from 1", json!({ "type": "integer", "minimum": 1 }))
            }
            other => path_param(other, other, json!({ "type": "string" })),
        })
        .collect()
}

fn reference(schema: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{schema}") })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({ "description": description,
            "content": { "application/json": { "schema": reference(schema) } } })
}

fn error(description: &str) -> Value {
    ok(description, "Error")
}

fn body(schema: &str, required: bool) -> Value {
    json!({ "required": required,
            "content": { "application/json": { "schema": reference(schema) } } })
}

fn limit() -> Value {
    query_param(
        "limit",
        "Page size (default 100; larger values are lowered to 1000)",
        json!({ "type": "integer", "minimum": 1, "default": 100 }),
    )
}

fn map_index() -> Value {
    query_param(
        "map_index",
        "Map index of a mapped instance (default -1: unmapped)",
        json!({ "type": "integer", "default": -1 }),
    )
}

/// One operation: summary, parameters, body, responses.
fn operation(r: &Route) -> Value {
    let mut query = Vec::new();
    let mut request = None;
    let mut codes: Vec<(&str, Value)> = Vec::new();
    let (id, summary, tag) = match r.op {
        Op::ListDags => {
            query = vec![
                limit(),
                query_param("offset", "Rows to skip", json!({ "type": "integer", "minimum": 0 })),
                query_param("tags", "Only DAGs with this tag", json!({ "type": "string" })),
                query_param("owner", "Only DAGs of this owner", json!({ "type": "string" })),
                query_param(
                    "paused",
                    "Only paused (true) or unpaused (false) DAGs",
                    json!({ "type": "boolean" }),
                ),
                query_param(
                    "dag_id_pattern",
                    "Part of the DAG id (case-insensitive)",
                    json!({ "type": "string" }),
                ),
            ];
            codes.push(("200", ok("A page of active DAGs by id", "DagCollection")));
            ("get_dags", "List DAGs", "DAG")
        }
        Op::GetDag => {
            codes.push(("200", ok("The DAG", "DagDetail")));
            ("get_dag", "Get a DAG with its tasks and params", "DAG")
        }
        Op::PatchDag => {
            request = Some(body("DagPatch", true));
            codes.push(("200", ok("The DAG after the change", "DagDetail")));
            ("patch_dag", "Pause or unpause a DAG (operator)", "DAG")
        }
        Op::ListRuns => {
            query = vec![
                limit(),
                query_param(
                    "before",
                    "Cursor: `next_before` of the previous page",
                    json!({ "type": "integer" }),
                ),
            ];
            codes.push(("200", ok("Runs, newest first", "DagRunCollection")));
            ("get_dag_runs", "List runs of a DAG", "DAGRun")
        }
        Op::TriggerRun => {
            request = Some(body("DagRunTrigger", false));
            codes.push(("200", ok("The queued run", "DagRun")));
            codes.push(("409", error("The run id is taken, or the DAG is not active")));
            ("post_dag_run", "Trigger a run (operator)", "DAGRun")
        }
        Op::GetRun => {
            codes.push(("200", ok("The run", "DagRun")));
            ("get_dag_run", "Get a run", "DAGRun")
        }
        Op::ListTis => {
            codes.push(("200", ok("Every task instance of the run", "TaskInstanceCollection")));
            ("get_task_instances", "List task instances of a run", "TaskInstance")
        }
        Op::GetTi => {
            query = vec![map_index()];
            codes.push(("200", ok("The task instance and its tries", "TaskInstanceDetail")));
            ("get_task_instance", "Get a task instance", "TaskInstance")
        }
        Op::PatchTi => {
            request = Some(body("TaskInstancePatch", true));
            codes.push(("200", ok("The task instance after the change", "TaskInstanceDetail")));
            codes.push(("409", error("The task instance changed state meanwhile")));
            (
                "patch_task_instance",
                "Mark a task instance success or failed (operator)",
                "TaskInstance",
            )
        }
        Op::ClearTi => {
            request = Some(body("ClearTaskInstance", false));
            codes.push(("200", ok("How many instances were cleared", "Cleared")));
            codes.push(("409", error("Everything picked is queued (about to run)")));
            (
                "post_clear_task_instance",
                "Clear (re-run) a task instance (operator)",
                "TaskInstance",
            )
        }
        Op::GetLog => {
            query = vec![
                map_index(),
                query_param(
                    "offset",
                    "Byte offset: `offset` of the previous answer",
                    json!({ "type": "integer", "minimum": 0, "default": 0 }),
                ),
            ];
            codes.push(("200", ok("Log text from the offset", "LogChunk")));
            ("get_log", "Read the log of one try (tail it with offset)", "TaskInstance")
        }
        Op::ImportErrors => {
            codes
                .push(("200", ok("Problems of the last DAG folder scan", "ImportErrorCollection")));
            ("get_import_errors", "List import errors", "ImportError")
        }
        Op::Health => {
            codes.push(("200", ok("Healthy", "Health")));
            codes.push(("503", ok("The database does not answer", "Health")));
            ("get_health", "Health of the database and processes (no login)", "Monitoring")
        }
        Op::OpenApi => {
            codes.push((
                "200",
                json!({ "description": "This document",
                "content": { "application/json": { "schema": { "type": "object" } } } }),
            ));
            ("get_openapi", "This document (no login)", "Monitoring")
        }
    };
    let public = matches!(r.op, Op::Health | Op::OpenApi);
    if !public {
        codes.push(("400", error("A parameter or the body is malformed; the message names it")));
        codes.push(("401", error("No valid token")));
        codes.push(("403", error("The user's roles do not allow this")));
    }
    if r.path.contains('{') {
        codes.push(("404", error("No such DAG, run, task instance or try")));
    }
    let mut op = json!({
        "operationId": id,
        "summary": summary,
        "tags": [tag],
        "parameters": path_params(r.path).into_iter().chain(query).collect::<Vec<_>>(),
        "responses": codes.into_iter().map(|(c, v)| (c.to_string(), v)).collect::<Map<_, _>>(),
    });
    if let Some(request) = request {
        op["requestBody"] = request;
    }
    if public {
        op["security"] = json!([]);
    }
    op
}

fn schemas() -> Value {
    let time = || json!({ "type": "string", "format": "date-time" });
    let opt_time = || json!({ "type": "string", "format": "date-time", "nullable": true });
    let opt_str = || json!({ "type": "string", "nullable": true });
    let run_states = json!(["queued", "running", "success", "failed"]);
    let ti_states = json!([
        "none",
        "scheduled",
        "queued",
        "running",
        "success",
        "failed",
        "up_for_retry",
        "up_for_reschedule",
        "upstream_failed",
        "skipped",
        "removed"
    ]);
    let dag = json!({ "type": "object", "properties": {
        "dag_id": { "type": "string" }, "description": opt_str(), "owner": { "type": "string" },
        "tags": { "type": "array", "items": { "type": "string" } },
        "schedule": { "type": "string", "nullable": true,
            "description": "As written (`@daily`, cron); null for manual-only DAGs" },
        "is_paused": { "type": "boolean" }, "is_active": { "type": "boolean" },
        "fileloc": { "type": "string" }, "next_dagrun": opt_time() } });
    json!({
        "Error": { "type": "object", "properties": {
            "error": { "type": "string" }, "status": { "type": "integer" } } },
        "Dag": dag,
        "DagCollection": { "type": "object", "properties": {
            "dags": { "type": "array", "items": reference("Dag") },
            "total_entries": { "type": "integer" } } },
        "Task": { "type": "object", "properties": {
            "task_id": { "type": "string" }, "type": { "type": "string" },
            "depends_on": { "type": "array", "items": { "type": "string" } },
            "trigger_rule": { "type": "string" }, "retries": { "type": "integer" },
            "pool": { "type": "string" }, "queue": { "type": "string" },
            "priority_weight": { "type": "integer" }, "is_mapped": { "type": "boolean" },
            "doc": opt_str() } },
        "DagDetail": { "allOf": [reference("Dag"), { "type": "object", "properties": {
            "max_active_runs": { "type": "integer" }, "max_active_tasks": { "type": "integer" },
            "params": { "type": "object", "additionalProperties": true },
            "tasks": { "type": "array", "items": reference("Task") } } }] },
        "DagPatch": { "type": "object", "required": ["is_paused"], "additionalProperties": false,
            "properties": { "is_paused": { "type": "boolean" } } },
        "DagRun": { "type": "object", "properties": {
            "dag_id": { "type": "string" }, "dag_run_id": { "type": "string" },
            "run_type": { "type": "string", "enum": ["scheduled", "manual", "backfill"] },
            "state": { "type": "string", "enum": run_states },
            "logical_date": time(), "data_interval_start": time(), "data_interval_end": time(),
            "conf": { "type": "object", "additionalProperties": true },
            "triggered_by": opt_str(), "queued_at": time(),
            "start_date": opt_time(), "end_date": opt_time() } },
        "DagRunCollection": { "type": "object", "properties": {
            "dag_runs": { "type": "array", "items": reference("DagRun") },
            "total_entries": { "type": "integer" },
            "next_before": { "type": "integer", "nullable": true } } },
        "DagRunTrigger": { "type": "object", "additionalProperties": false, "properties": {
            "conf": { "type": "object", "additionalProperties": true },
            "dag_run_id": { "type": "string", "description": "Default: manual__<now>" },
            "logical_date": { "type": "string", "format": "date-time",
                "description": "Default: now" } } },
        "TaskInstance": { "type": "object", "properties": {
            "dag_id": { "type": "string" }, "dag_run_id": { "type": "string" },
            "task_id": { "type": "string" }, "map_index": { "type": "integer" },
            "state": { "type": "string", "enum": ti_states.clone() },
            "try_number": { "type": "integer" }, "max_tries": { "type": "integer" },
            "operator": { "type": "string" }, "pool": { "type": "string" },
            "queue": { "type": "string" }, "priority_weight": { "type": "integer" },
            "queued_when": opt_time(), "start_date": opt_time(), "end_date": opt_time(),
            "duration": { "type": "number", "nullable": true }, "hostname": opt_str(),
            "note": opt_str() } },
        "Try": { "type": "object", "properties": {
            "try_number": { "type": "integer" },
            "state": { "type": "string", "enum": ti_states },
            "start_date": opt_time(), "end_date": opt_time(),
            "duration": { "type": "number", "nullable": true }, "hostname": opt_str(),
            "error": opt_str() } },
        "TaskInstanceDetail": { "allOf": [reference("TaskInstance"), { "type": "object",
            "properties": { "tries": { "type": "array", "items": reference("Try") } } }] },
        "TaskInstanceCollection": { "type": "object", "properties": {
            "task_instances": { "type": "array", "items": reference("TaskInstance") },
            "total_entries": { "type": "integer" } } },
        "TaskInstancePatch": { "type": "object", "required": ["state"],
            "additionalProperties": false, "properties": {
            "state": { "type": "string", "enum": ["success", "failed"] },
            "map_index": { "type": "integer", "default": -1 } } },
        "ClearTaskInstance": { "type": "object", "additionalProperties": false, "properties": {
            "map_index": { "type": "integer",
                "description": "One mapped instance; every instance of the task when absent" },
            "include_downstream": { "type": "boolean", "default": false } } },
        "Cleared": { "type": "object", "properties": { "cleared": { "type": "integer" } } },
        "LogChunk": { "type": "object", "properties": {
            "content": { "type": "string" },
            "offset": { "type": "integer", "description": "Where the content ends" },
            "finished": { "type": "boolean",
                "description": "The try is over; nothing is appended any more" } } },
        "ImportError": { "type": "object", "properties": {
            "filename": { "type": "string" }, "line": { "type": "integer" },
            "column": { "type": "integer" }, "message": { "type": "string" } } },
        "ImportErrorCollection": { "type": "object", "properties": {
            "import_errors": { "type": "array", "items": reference("ImportError") },
            "total_entries": { "type": "integer" } } },
        "Health": { "type": "object", "properties": {
            "status": { "type": "string" }, "metadatabase": { "type": "string" },
            "processes": { "type": "array", "items": { "type": "object" } } } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_paths_are_the_route_table() {
        let doc = document();
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        let mut routes: Vec<(String, String)> =
            ROUTES.iter().map(|r| (r.verb.as_str().to_string(), r.path.to_string())).collect();
        documented.sort();
        routes.sort();
        assert_eq!(documented, routes);
        // Every `$ref` points at a defined schema.
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            assert!(doc["components"]["schemas"].get(name).is_some(), "undefined {name}");
        }
    }
}
