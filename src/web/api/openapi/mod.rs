//! The OpenAPI 3.0 document of `/api/v1`, served at `/api/v1/openapi.json` without login.
//!
//! Invariant: the document's paths and methods are generated from `super::ROUTES`, the same
//! table `super::router` registers, and [`operation`] matches every `Op` exhaustively — a
//! route cannot be served undocumented or documented unserved. Every answer the server can
//! give is documented: the operation's own codes, 400 (a parameter or body that does not
//! parse), 401 (with `WWW-Authenticate`), 403, 404 on paths with ids, 413 on bodies and 414 on
//! every path. `schemas` describes the serde structs of `dags`, `runs`, `tis` and `logs`;
//! change them together. `tests/it/api_schemathesis.rs` holds the server to this document.

mod schemas;

use std::sync::LazyLock;

use axum::Json;
use serde_json::{Map, Value, json};

use super::{MAX_LIMIT, Op, PREFIX, ROUTES, Route, Verb};
use crate::model::{DagRunState, RunType, TaskState};
use crate::web::auth::SESSION_COOKIE;
use schemas::{RUN_ID_RULE, int64, reference};

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
                Authenticate with `Authorization: Bearer <token>` (the scheme name in any \
                case; tokens are created per user on the account page and carry the user's \
                roles: viewer reads, operator also triggers, pauses, clears and marks). A \
                browser's session cookie works too; its writes must then send the session's \
                CSRF token in `X-CSRF-Token`. Times are RFC 3339; states are Airflow's \
                spellings. Errors are `{\"error\": message, \"status\": code}`; the message \
                names the parameter or field at fault.",
        },
        "servers": [{ "url": PREFIX }],
        "security": [{ "bearerAuth": [] }, { "cookieAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer",
                    "description": "An API token (`Bearer`, `bearer`: any case)" },
                "cookieAuth": { "type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                    "description": "A browser session; writes must also send `X-CSRF-Token`" },
            },
            "schemas": schemas::schemas(),
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
            "dag_run_id" => path_param(
                name,
                &format!("Run id within the DAG. {RUN_ID_RULE}."),
                json!({ "type": "string" }),
            ),
            "task_id" => path_param(name, "Task id", json!({ "type": "string" })),
            "try_number" => path_param(name, "Try, from 1", int64(1)),
            "backfill_id" => path_param(name, "Backfill id", int64(i64::MIN)),
            other => path_param(other, other, json!({ "type": "string" })),
        })
        .collect()
}

/// The header a cookie-authenticated write must send.
fn csrf_header() -> Value {
    json!({ "name": "X-CSRF-Token", "in": "header", "required": false,
            "description": "The session's CSRF token: required when authenticated by the \
                session cookie, ignored with a bearer token",
            "schema": { "type": "string" } })
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
        &format!("Page size (default 100; larger values are lowered to {MAX_LIMIT})"),
        json!({ "type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX,
                "default": 100 }),
    )
}

fn before() -> Value {
    query_param(
        "before",
        "Cursor: `next_before` of the previous page",
        json!({ "type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX }),
    )
}

fn date_param(name: &str, what: &str) -> Value {
    query_param(
        name,
        &format!("{what} (RFC 3339)"),
        json!({ "type": "string", "format": "date-time" }),
    )
}

fn names<T: Copy + std::fmt::Display>(all: &[T]) -> Value {
    json!(all.iter().map(|v| v.to_string()).collect::<Vec<_>>())
}

fn map_index() -> Value {
    query_param(
        "map_index",
        "Map index of a mapped instance (default -1: unmapped)",
        json!({ "type": "integer", "format": "int64", "minimum": -1, "maximum": i64::MAX,
                "default": -1 }),
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
                query_param("offset", "Rows to skip", int64(0)),
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
                before(),
                query_param(
                    "state",
                    "Only runs in this state",
                    json!({ "type": "string", "enum": names(DagRunState::ALL) }),
                ),
                query_param(
                    "run_type",
                    "Only runs of this type",
                    json!({ "type": "string", "enum": names(RunType::ALL) }),
                ),
                date_param("logical_date_gte", "Logical date at or after"),
                date_param("logical_date_lte", "Logical date at or before"),
            ];
            codes.push(("200", ok("Runs, newest first", "DagRunCollection")));
            ("get_dag_runs", "List runs of a DAG (`~`: of every DAG)", "DAGRun")
        }
        Op::PatchRun => {
            request = Some(body("DagRunPatch", true));
            codes.push(("200", ok("The run after the change", "DagRun")));
            codes.push(("409", error("The run has that state already, or changed meanwhile")));
            ("patch_dag_run", "Mark a run success or failed (operator)", "DAGRun")
        }
        Op::DeleteRun => {
            codes.push((
                "204",
                json!({ "description": "Deleted, with its task instances and logs" }),
            ));
            codes.push((
                "409",
                error("A task instance is queued or running: mark the run failed first"),
            ));
            ("delete_dag_run", "Delete a run (operator)", "DAGRun")
        }
        Op::SetRunNote => {
            request = Some(body("Note", true));
            codes.push(("200", ok("The run with its note", "DagRun")));
            ("set_dag_run_note", "Set the note on a run (operator)", "DAGRun")
        }
        Op::SetTiNote => {
            request = Some(body("TaskInstanceNoteSet", true));
            codes.push(("200", ok("The task instance's note", "TaskInstanceNote")));
            ("set_task_instance_note", "Set the note on a task instance (operator)", "TaskInstance")
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
            query = vec![
                query_param(
                    "state",
                    "Only instances in this state",
                    json!({ "type": "string", "enum": names(TaskState::ALL) }),
                ),
                limit(),
                before(),
                date_param("logical_date_gte", "Across runs: their logical date at or after"),
                date_param("logical_date_lte", "Across runs: their logical date at or before"),
            ];
            codes.push((
                "200",
                ok(
                    "Every task instance of the run; with run id `~`, a page across runs",
                    "TaskInstanceCollection",
                ),
            ));
            (
                "get_task_instances",
                "List task instances of a run (`~/~`: of every run of every DAG)",
                "TaskInstance",
            )
        }
        Op::GetTi => {
            query = vec![map_index()];
            codes.push(("200", ok("The task instance and its tries", "TaskInstanceDetail")));
            ("get_task_instance", "Get a task instance", "TaskInstance")
        }
        Op::PatchTi => {
            request = Some(body("TaskInstancePatch", true));
            codes.push(("200", ok("The task instance after the change", "TaskInstanceDetail")));
            codes.push((
                "409",
                error("The task instance's state does not allow it, or changed meanwhile"),
            ));
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
        Op::ClearRun => {
            request = Some(body("ClearDagRun", false));
            codes.push(("200", ok("How many instances were cleared", "Cleared")));
            codes.push(("409", error("Nothing to clear: no failed instance, or all queued")));
            (
                "post_clear_dag_run",
                "Clear (re-run) a run, or its failed instances (operator)",
                "DAGRun",
            )
        }
        Op::GetLog => {
            query = vec![
                map_index(),
                query_param(
                    "offset",
                    "Byte offset: `offset` of the previous answer (default 0)",
                    int64(0),
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
            codes.push((
                "200",
                ok("Healthy (process hosts and pids for logged-in callers)", "Health"),
            ));
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
        Op::ListBackfills => {
            query = vec![
                query_param("dag_id", "Only backfills of this DAG", json!({ "type": "string" })),
                limit(),
            ];
            codes.push(("200", ok("Backfills, newest first", "BackfillCollection")));
            ("get_backfills", "List backfills", "Backfill")
        }
        Op::CreateBackfill => {
            request = Some(body("BackfillCreate", true));
            codes.push((
                "200",
                ok("The plan of every date, and the backfill unless a dry run", "BackfillCreated"),
            ));
            codes.push(("404", error("No such DAG")));
            codes.push(("409", error("The DAG is not active, or has no schedule")));
            (
                "post_backfill",
                "Backfill a date range, or plan one with dry_run (operator)",
                "Backfill",
            )
        }
        Op::GetBackfill => {
            codes.push(("200", ok("The backfill with its runs by state", "Backfill")));
            ("get_backfill", "Get a backfill", "Backfill")
        }
        Op::PatchBackfill => {
            request = Some(body("BackfillPatch", true));
            codes.push(("200", ok("The backfill after the change", "Backfill")));
            codes.push(("409", error("The backfill is cancelled")));
            ("patch_backfill", "Pause or unpause a backfill (operator)", "Backfill")
        }
        Op::CancelBackfill => {
            codes.push(("200", ok("The cancelled backfill", "Backfill")));
            codes.push(("409", error("The backfill is cancelled already")));
            (
                "post_cancel_backfill",
                "Cancel a backfill: its queued runs fail, none starts (operator)",
                "Backfill",
            )
        }
        Op::ListAssets => {
            codes.push((
                "200",
                ok(
                    "Every asset an active DAG names or an event was recorded for",
                    "AssetCollection",
                ),
            ));
            ("get_assets", "List assets with their producing and consuming DAGs", "Asset")
        }
        Op::ListAssetEvents => {
            query = vec![
                query_param("asset_uri", "Only events of this asset", json!({ "type": "string" })),
                query_param(
                    "dag_id",
                    "Only events of the assets this DAG is scheduled on or produces",
                    json!({ "type": "string" }),
                ),
                query_param(
                    "before_id",
                    "Only events older than this id (paging)",
                    int64(i64::MIN),
                ),
                limit(),
            ];
            codes.push(("200", ok("Events, newest first", "AssetEventCollection")));
            ("get_asset_events", "List asset events", "Asset")
        }
        Op::PostAssetEvent => {
            request = Some(body("AssetEventCreate", true));
            codes.push((
                "200",
                ok(
                    "The recorded event; DAGs scheduled on the asset are told at once",
                    "AssetEvent",
                ),
            ));
            codes.push(("404", error("No active DAG names the asset")));
            ("post_asset_event", "Record an asset event (operator)", "Asset")
        }
    };
    let public = matches!(r.op, Op::Health | Op::OpenApi);
    if !public {
        codes.push(("400", error("A parameter or the body is malformed; the message names it")));
        codes.push((
            "401",
            json!({ "description": "No valid token or session",
                "headers": { "WWW-Authenticate": { "required": true,
                    "description": "The scheme to use: `Bearer realm=\"updraft\"`",
                    "schema": { "type": "string" } } },
                "content": { "application/json": { "schema": reference("Error") } } }),
        ));
        codes.push(("403", error("The user's roles do not allow this (or a missing CSRF token)")));
    }
    if r.path.contains('{') {
        codes.push(("404", error("No such DAG, run, task instance, try or backfill")));
    }
    if request.is_some() {
        codes.push(("413", error("The body is larger than 1 MiB")));
    }
    codes.push(("414", json!({ "description": "The URL is longer than the server reads" })));
    let writes = r.verb != Verb::Get;
    let mut op = json!({
        "operationId": id,
        "summary": summary,
        "tags": [tag],
        "parameters": path_params(r.path)
            .into_iter()
            .chain(query)
            .chain(writes.then(csrf_header))
            .collect::<Vec<_>>(),
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
