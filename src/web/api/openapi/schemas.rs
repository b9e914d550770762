//! The `components/schemas` of the OpenAPI document: one schema per serde struct of `dags`,
//! `runs`, `tis` and `logs` (responses and request bodies), and the shared value rules (run
//! ids, integer ranges).
//!
//! Invariant: a response schema lists every field its struct always serializes as `required`
//! (an `Option` is `nullable`, never left out); a request schema is `additionalProperties:
//! false` exactly where the struct is `deny_unknown_fields`, and nullable exactly where the
//! struct takes `null` for "use the default". Change a struct and its schema together.

use serde_json::{Value, json};

use crate::model::{DagRunState, RunType, TaskState};

/// Longest run id, in characters.
pub const RUN_ID_MAX: usize = 250;

/// A run id as the API accepts it (ECMA-262 and Python syntax alike, no look-arounds): at
/// most [`RUN_ID_MAX`] characters, no `/`, `\` or control character, not `.` or `..`, no
/// leading or trailing white space.
pub const RUN_ID_PATTERN: &str = concat!(
    "^(?:",
    r"[^./\\\s\u0000-\u001f\u007f-\u009f]",
    r"|[^./\\\s\u0000-\u001f\u007f-\u009f][^/\\\u0000-\u001f\u007f-\u009f]*[^/\\\s\u0000-\u001f\u007f-\u009f]",
    r"|\.[^/\\\u0000-\u001f\u007f-\u009f]*[^./\\\s\u0000-\u001f\u007f-\u009f]",
    r"|\.[^/\\\u0000-\u001f\u007f-\u009f]+\.",
    ")$"
);

/// The run-id rule in words, for descriptions.
pub const RUN_ID_RULE: &str = "At most 250 characters; no `/`, `\\` or control characters; \
    not `.` or `..`; no leading or trailing white space";

/// A 64-bit integer between `min` and `i64::MAX`.
pub fn int64(min: i64) -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": min, "maximum": i64::MAX })
}

/// A `$ref` to schema `name`.
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// An object whose every listed property is required.
fn object(properties: Value) -> Value {
    let required: Vec<&String> =
        properties.as_object().map(|p| p.keys().collect()).unwrap_or_default();
    json!({ "type": "object", "required": required, "properties": properties })
}

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Value {
    json!(all.iter().map(|v| name(*v)).collect::<Vec<_>>())
}

/// Every schema of the document.
pub fn schemas() -> Value {
    let string = || json!({ "type": "string" });
    let integer = || json!({ "type": "integer", "format": "int64" });
    let boolean = || json!({ "type": "boolean" });
    let strings = || json!({ "type": "array", "items": { "type": "string" } });
    let time = || json!({ "type": "string", "format": "date-time" });
    let opt_time = || json!({ "type": "string", "format": "date-time", "nullable": true });
    let opt_str = || json!({ "type": "string", "nullable": true });
    let opt_num = || json!({ "type": "number", "nullable": true });
    let any_object = || json!({ "type": "object", "additionalProperties": true });
    let ti_states = names(TaskState::ALL, TaskState::as_str);
    let run_states = names(DagRunState::ALL, DagRunState::as_str);
    let run_types = names(RunType::ALL, RunType::as_str);
    let dag = object(json!({
        "dag_id": string(), "description": opt_str(), "owner": string(), "tags": strings(),
        "schedule": { "type": "string", "nullable": true,
            "description": "As written (`@daily`, cron); null for manual-only DAGs" },
        "is_paused": boolean(), "is_active": boolean(), "fileloc": string(),
        "next_dagrun": opt_time() }));
    let ti = object(json!({
        "dag_id": string(), "dag_run_id": string(), "task_id": string(),
        "map_index": integer(), "state": { "type": "string", "enum": ti_states.clone() },
        "try_number": integer(), "max_tries": integer(), "operator": string(),
        "pool": string(), "queue": string(), "priority_weight": integer(),
        "queued_when": opt_time(), "start_date": opt_time(), "end_date": opt_time(),
        "duration": opt_num(), "hostname": opt_str(), "note": opt_str() }));
    let run_patch = json!({ "type": "object", "required": ["state"],
        "additionalProperties": false,
        "properties": { "state": { "type": "string", "enum": ["success", "failed"] } } });
    let note_text = json!({ "type": "string", "maxLength": crate::actions::MAX_NOTE,
        "description": "The note (trimmed); empty removes it" });
    let note = json!({ "type": "object", "required": ["note"], "additionalProperties": false,
        "properties": { "note": note_text } });
    let ti_note_set = json!({ "type": "object", "required": ["note"],
        "additionalProperties": false,
        "properties": { "note": note_text, "map_index": { "type": "integer", "format": "int64",
            "minimum": -1, "maximum": i64::MAX, "default": -1,
            "description": "One mapped instance (default -1: unmapped)" } } });
    let ti_note = object(json!({
        "dag_id": string(), "dag_run_id": string(), "task_id": string(),
        "map_index": integer(), "note": opt_str() }));
    let backfills = json!({
        "Backfill": object(json!({
            "id": integer(), "dag_id": string(), "from_date": time(), "to_date": time(),
            "reprocess": { "type": "string", "enum": ["none", "failed", "all"] },
            "max_active_runs": integer(), "dag_run_conf": any_object(), "is_paused": boolean(),
            "created_by": opt_str(), "created_at": time(), "cancelled_at": opt_time(),
            "runs": object(json!({ "queued": integer(), "running": integer(),
                "success": integer(), "failed": integer() })) })),
        "BackfillCollection": object(json!({
            "backfills": { "type": "array", "items": reference("Backfill") },
            "total_entries": integer() })),
        "BackfillCreate": { "type": "object", "additionalProperties": false,
            "required": ["dag_id", "from_date", "to_date"], "properties": {
            "dag_id": string(),
            "from_date": { "type": "string", "format": "date-time",
                "description": "First logical date (included); a range holding no schedule \
                    interval plans nothing and creates nothing" },
            "to_date": { "type": "string", "format": "date-time",
                "description": "Last logical date (included)" },
            "reprocess": { "type": "string", "enum": ["none", "failed", "all"],
                "default": "none", "description": "Existing runs run again: none; the failed \
                    instances of failed runs; or every finished run, whole" },
            "max_active_runs": { "type": "integer", "format": "int64", "nullable": true,
                "minimum": 1, "maximum": crate::actions::backfills::MAX_BACKFILL_ACTIVE,
                "description": "Its runs running at once (default: the DAG's)" },
            "dag_run_conf": { "type": "object", "additionalProperties": true,
                "description": "Params of the runs it creates (checked against the DAG's)" },
            "dry_run": { "type": "boolean", "default": false,
                "description": "Only answer the plan; nothing is created" } } },
        "BackfillCreated": object(json!({
            "dry_run": boolean(),
            "backfill": { "allOf": [reference("Backfill")], "nullable": true },
            "dates": { "type": "array", "items": object(json!({
                "logical_date": time(),
                "action": { "type": "string",
                    "enum": ["create", "reprocess", "reprocess_failed", "skip"] },
                "reason": opt_str(), "dag_run_id": string() })) } })),
        "BackfillPatch": { "type": "object", "required": ["is_paused"],
            "additionalProperties": false, "properties": { "is_paused": boolean() } },
    });
    let assets = json!({
        "Asset": object(json!({
            "uri": string(), "producing_dags": strings(), "consuming_dags": strings(),
            "watched": boolean(), "events": integer(), "last_event_at": opt_time() })),
        "AssetCollection": object(json!({
            "assets": { "type": "array", "items": reference("Asset") },
            "total_entries": integer() })),
        "AssetEvent": object(json!({
            "id": integer(), "uri": string(),
            "source": { "type": "string", "enum": ["task", "api", "kafka", "s3"] },
            "source_dag_id": opt_str(), "source_run_id": opt_str(), "source_task_id": opt_str(),
            "source_map_index": { "type": "integer", "format": "int64", "nullable": true },
            "extra": any_object(), "created_by": opt_str(), "timestamp": time() })),
        "AssetEventCollection": object(json!({
            "asset_events": { "type": "array", "items": reference("AssetEvent") },
            "total_entries": integer() })),
        "AssetEventCreate": { "type": "object", "additionalProperties": false,
            "required": ["asset_uri"], "properties": {
            "asset_uri": { "type": "string", "minLength": 1,
                "maxLength": crate::dag::assets::MAX_URI_LEN,
                "pattern": r"^[^\s\u0000-\u001f\u007f-\u009f]+$",
                "description": "An asset an active DAG names; no spaces or control characters" },
            "extra": { "type": "object", "additionalProperties": true,
                "description": "What to tell the DAGs triggered (their \
                    `triggering_asset_events`); at most 64 KiB of JSON" } } },
    });
    let mut all = json!({
        "Error": object(json!({ "error": string(), "status": integer() })),
        "Dag": dag,
        "DagCollection": object(json!({
            "dags": { "type": "array", "items": reference("Dag") },
            "total_entries": integer() })),
        "Task": object(json!({
            "task_id": string(), "type": string(), "depends_on": strings(),
            "trigger_rule": string(), "retries": integer(), "pool": string(),
            "queue": string(), "priority_weight": integer(), "is_mapped": boolean(),
            "doc": opt_str() })),
        "DagDetail": { "allOf": [reference("Dag"), object(json!({
            "max_active_runs": integer(), "max_active_tasks": integer(),
            "params": any_object(),
            "tasks": { "type": "array", "items": reference("Task") } }))] },
        "DagPatch": { "type": "object", "required": ["is_paused"], "additionalProperties": false,
            "properties": { "is_paused": boolean() } },
        "DagRun": object(json!({
            "dag_id": string(), "dag_run_id": string(),
            "run_type": { "type": "string", "enum": run_types },
            "state": { "type": "string", "enum": run_states },
            "logical_date": time(), "data_interval_start": time(), "data_interval_end": time(),
            "conf": any_object(), "triggered_by": opt_str(), "queued_at": time(),
            "start_date": opt_time(), "end_date": opt_time(), "note": opt_str() })),
        "DagRunCollection": object(json!({
            "dag_runs": { "type": "array", "items": reference("DagRun") },
            "total_entries": integer(),
            "next_before": { "type": "integer", "format": "int64", "nullable": true } })),
        "DagRunTrigger": { "type": "object", "additionalProperties": false, "properties": {
            "conf": { "type": "object", "additionalProperties": true,
                "description": "Params of this run, overriding the DAG's defaults key by key. \
                    A value must have the type the DAG declares for that param; otherwise the \
                    answer is a 400 naming the param." },
            "dag_run_id": { "type": "string", "nullable": true, "minLength": 1,
                "maxLength": RUN_ID_MAX, "pattern": RUN_ID_PATTERN,
                "description": format!("Default (absent or null): manual__<now>. {RUN_ID_RULE}.") },
            "logical_date": { "type": "string", "format": "date-time", "nullable": true,
                "description": "Default (absent or null): now" } } },
        "TaskInstance": ti,
        "Try": object(json!({
            "try_number": integer(), "state": { "type": "string", "enum": ti_states },
            "start_date": opt_time(), "end_date": opt_time(), "duration": opt_num(),
            "hostname": opt_str(), "error": opt_str() })),
        "TaskInstanceDetail": { "allOf": [reference("TaskInstance"), object(json!({
            "tries": { "type": "array", "items": reference("Try") } }))] },
        "TaskInstanceCollection": object(json!({
            "task_instances": { "type": "array", "items": reference("TaskInstance") },
            "total_entries": integer(),
            "next_before": { "type": "integer", "format": "int64", "nullable": true } })),
        "TaskInstancePatch": { "type": "object", "required": ["state"],
            "additionalProperties": false, "properties": {
            "state": { "type": "string", "enum": ["success", "failed"] },
            "map_index": { "type": "integer", "format": "int64", "minimum": -1,
                "maximum": i64::MAX, "default": -1 } } },
        "ClearTaskInstance": { "type": "object", "additionalProperties": false, "properties": {
            "map_index": { "type": "integer", "format": "int64", "nullable": true,
                "minimum": -1, "maximum": i64::MAX,
                "description": "One mapped instance; every instance of the task when absent \
                    or null" },
            "include_downstream": { "type": "boolean", "default": false } } },
        "ClearDagRun": { "type": "object", "additionalProperties": false, "properties": {
            "only_failed": { "type": "boolean", "default": false,
                "description": "Only the failed and upstream_failed instances" },
            "run_on_latest_version": { "type": "boolean", "default": false,
                "description": "Run the DAG as it is now (the run is pinned to that version \
                    from then on, with an instance of each task it gained) instead of the \
                    version the run started with" } } },
        "Cleared": object(json!({ "cleared": integer() })),

        "LogChunk": object(json!({
            "content": string(),
            "offset": { "type": "integer", "format": "int64",
                "description": "Where the content ends: the `offset` of the next call" },
            "finished": { "type": "boolean",
                "description": "The try is over; nothing is appended any more" } })),
        "ImportError": object(json!({
            "filename": string(), "line": integer(), "column": integer(),
            "message": string() })),
        "ImportErrorCollection": object(json!({
            "import_errors": { "type": "array", "items": reference("ImportError") },
            "total_entries": integer() })),
        "Health": { "type": "object", "required": ["status", "metadatabase"], "properties": {
            "status": { "type": "string", "enum": ["healthy", "unhealthy"] },
            "metadatabase": { "type": "string", "enum": ["healthy", "unhealthy"] },
            "processes": { "type": "array", "items": { "type": "object",
                "required": ["kind", "heartbeat_age_seconds"], "properties": {
                "kind": string(), "heartbeat_age_seconds": { "type": "number" },
                "id": { "type": "string", "description": "Logged-in callers only" },
                "hostname": { "type": "string", "description": "Logged-in callers only" },
                "pid": { "type": "integer", "description": "Logged-in callers only" } } } } } },
    });
    // Added apart: one json! of every schema passes the macro's recursion limit.
    all["DagRunPatch"] = run_patch;
    all["Note"] = note;
    all["TaskInstanceNoteSet"] = ti_note_set;
    all["TaskInstanceNote"] = ti_note;
    for more in [backfills, assets] {
        if let (Some(all), Some(more)) = (all.as_object_mut(), more.as_object()) {
            all.extend(more.clone());
        }
    }
    all
}
