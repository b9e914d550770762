//! Load-time checks of the record settings every Kafka task shares (`kinds::RecordSettings`):
//! Avro schemas read and parsed (a `{file: x.avsc}` beside the DAG file is read here), the
//! format and its schemas consistent, and every transform step well-formed, its expressions
//! compiled.
//!
//! Besides the DAG file itself, the `.avsc` files a task names are the only files the parser
//! reads. No network, no registry: whether the registry accepts a schema is known at run time.

use std::path::Path;

use super::ctx::{Ctx, child};
use crate::dag::kinds::{AvroSchema, Format, KeyFormat, RecordSettings, SchemaSource, Transform};

/// Types that write records (a producer needs the schema it writes with); the others read.
const PRODUCERS: [&str; 3] = ["kafka_produce", "http_to_kafka", "sql_to_kafka"];

/// Checks `r` of the task at `path` (of type `type_name`), resolving schema files in place.
pub(super) fn check(cx: &mut Ctx, r: &mut RecordSettings, type_name: &str, path: &[String]) {
    let id = path[1].clone();
    for (field, source) in [("schema", &mut r.schema), ("key_schema", &mut r.key_schema)] {
        if let Some(s) = source {
            resolve(cx, s, &child(path, field), &id, field);
        }
    }
    let producer = PRODUCERS.contains(&type_name);
    if r.format == Format::Avro && r.schema.is_none() && producer {
        let msg = format!("task `{id}` has `format: avro` and needs the `schema` it writes with");
        cx.at_key(&child(path, "format"), msg);
    }
    if r.format != Format::Avro && r.schema.is_some() {
        let msg =
            format!("`schema` of task `{id}` is for `format: avro`; add it or drop the schema");
        cx.at_key(&child(path, "schema"), msg);
    }
    if r.key_format == KeyFormat::Avro && r.key_schema.is_none() && producer {
        let msg = format!("task `{id}` has `key_format: avro` and needs a `key_schema`");
        cx.at_key(&child(path, "key_format"), msg);
    }
    if r.key_format != KeyFormat::Avro && r.key_schema.is_some() {
        let msg = format!("`key_schema` of task `{id}` is for `key_format: avro`");
        cx.at_key(&child(path, "key_schema"), msg);
    }
    if r.schema_registry.trim().is_empty() {
        let msg = format!("`schema_registry` of task `{id}` is empty");
        cx.at_value(&child(path, "schema_registry"), msg);
    }
    let at = child(path, "transform");
    for (i, step) in r.transform.iter().enumerate() {
        check_step(cx, step, &child(&at, &i.to_string()), &id, i);
    }
}

/// Reads and parses a `{file: ...}` schema, relative to the DAG file's folder.
fn resolve(cx: &mut Ctx, source: &mut SchemaSource, at: &[String], id: &str, field: &str) {
    let SchemaSource::File(name) = source else { return };
    if !SchemaSource::stays_inside(name) {
        let msg = format!(
            "`{field}` of task `{id}` names `{name}`; a schema file is a relative path inside \
             the DAG file's folder (no `..`)"
        );
        cx.at_value(at, msg);
        return;
    }
    // A copy of the DAG parsed without its folder (a worker or the web server reading the
    // stored source): the folder's parse checked the file, and a run reads it again
    // (`operators::records`).
    let Some(dir) = cx.dir else { return };
    let file = dir.join(Path::new(name.as_str()));
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            cx.at_value(at, format!("`{field}` of task `{id}`: cannot read `{name}`: {e}"));
            return;
        }
    };
    match AvroSchema::parse(&text, Some(name.clone())) {
        Ok(parsed) => *source = SchemaSource::Parsed(parsed),
        Err(e) => {
            let msg = format!("`{field}` of task `{id}`: `{name}` is not a valid Avro schema: {e}");
            cx.at_value(at, msg);
        }
    }
}

fn check_step(cx: &mut Ctx, step: &Transform, at: &[String], id: &str, i: usize) {
    let bad_path = |p: &str| p.is_empty() || p.split('.').any(str::is_empty);
    let n = i + 1;
    match step {
        Transform::Select(fields) | Transform::Drop(fields) => {
            let (name, list) = match step {
                Transform::Select(_) => ("select", fields),
                _ => ("drop", fields),
            };
            if list.is_empty() {
                cx.at_value(
                    &child(at, name),
                    format!("`{name}` (step {n} of the transform of task `{id}`) names no field"),
                );
            }
            for f in list.iter().filter(|f| bad_path(f)) {
                let msg = format!(
                    "`{name}` (step {n} of the transform of task `{id}`) has `{f}`, not a field name or dotted path"
                );
                cx.at_value(&child(at, name), msg);
            }
        }
        Transform::Rename(pairs) => {
            for (from, to) in pairs.iter().filter(|(f, t)| bad_path(f) || bad_path(t)) {
                let msg = format!(
                    "`rename` (step {n} of the transform of task `{id}`) has `{from}: {to}`; both sides are field names or dotted paths"
                );
                cx.at_value(&child(at, "rename"), msg);
            }
        }
        Transform::Filter(expr) => compile(cx, expr, &child(at, "filter"), id, n, "filter"),
        Transform::Compute(fields) => {
            for (field, expr) in fields {
                let here = child(&child(at, "compute"), field);
                if bad_path(field) {
                    let msg = format!(
                        "`compute` (step {n} of the transform of task `{id}`) sets `{field}`, not a field name or dotted path"
                    );
                    cx.at_key(&here, msg);
                }
                compile(cx, expr, &here, id, n, &format!("compute.{field}"));
            }
        }
        Transform::Flatten(f) if f.separator.is_empty() => {
            let msg =
                format!("`flatten.separator` (step {n} of the transform of task `{id}`) is empty");
            cx.at_value(&child(at, "flatten"), msg);
        }
        Transform::Flatten(_) => {}
    }
}

/// An expression must compile; the run-time evaluator compiles it the same way.
fn compile(cx: &mut Ctx, expr: &str, at: &[String], id: &str, n: usize, what: &str) {
    let env = minijinja::Environment::new();
    if let Err(e) = env.compile_expression(expr) {
        let detail = e.detail().map_or_else(|| e.to_string(), str::to_string);
        let msg = format!(
            "`{what}` (step {n} of the transform of task `{id}`) is not a valid expression: {detail}"
        );
        cx.at_value(at, msg);
    }
}
