//! Cross-field checks of the Kafka, Cassandra and S3 task types: exactly one record source, one
//! pagination style, the fields each `s3` operation needs, well-formed column mappings.
//!
//! Like `kind.rs`, these checks are pure (no I/O, no clients): what can only be known from the
//! servers (does the table have these columns?) is checked when the task starts.

use super::ctx::{Ctx, child};
use crate::dag::kinds::{
    HttpToKafkaTask, KafkaProduceTask, KafkaToCassandraTask, KafkaToS3Task, S3Operation, S3Task,
};

/// Message fields a column may take instead of a JSON path.
pub const MESSAGE_FIELDS: [&str; 5] = ["$key", "$topic", "$partition", "$offset", "$timestamp"];

pub(super) fn check_produce(cx: &mut Ctx, t: &KafkaProduceTask, path: &[String]) {
    let given = [t.records.is_some(), t.file.is_some(), t.xcom.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        let msg = format!(
            "task `{}` (kafka_produce) needs exactly one of `records`, `file` or `xcom`",
            path[1]
        );
        cx.at_key(path, msg);
    }
    check_name(cx, &t.topic, "topic", path);
}

pub(super) fn check_http_to_kafka(cx: &mut Ctx, t: &HttpToKafkaTask, path: &[String]) {
    check_name(cx, &t.topic, "topic", path);
    let Some(p) = &t.pagination else { return };
    let at = child(path, "pagination");
    let id = &path[1];
    match (&p.next_link, &p.page_param) {
        (Some(_), Some(_)) | (None, None) => {
            let msg = format!(
                "`pagination` of task `{id}` needs exactly one of `next_link` (a path to the \
                 next page's URL) or `page_param` (a page-number query parameter)"
            );
            cx.at_key(&at, msg);
        }
        (Some(_), None) if p.last_page.is_some() => {
            let msg = format!("`pagination.last_page` of task `{id}` goes with `page_param`");
            cx.at_key(&at, msg);
        }
        _ => {}
    }
    if p.max_pages == 0 {
        cx.at_key(&at, format!("`pagination.max_pages` of task `{id}` must be 1 or more"));
    }
}

pub(super) fn check_to_cassandra(cx: &mut Ctx, t: &KafkaToCassandraTask, path: &[String]) {
    let id = &path[1];
    check_name(cx, &t.topic, "topic", path);
    check_name(cx, &t.group_id, "group_id", path);
    let parts: Vec<&str> = t.table.split('.').collect();
    let templated = t.table.contains("{{");
    if !templated && (parts.len() > 2 || !parts.iter().all(|p| is_identifier(p))) {
        let msg = format!(
            "`table` of task `{id}` is `{}`; write `keyspace.table` (letters, digits, _)",
            t.table
        );
        cx.at_value(&child(path, "table"), msg);
    }
    if t.columns.is_empty() {
        cx.at_key(&child(path, "columns"), format!("task `{id}` maps no `columns`"));
    }
    for (name, source) in &t.columns {
        let at = child(&child(path, "columns"), name);
        if !is_identifier(name) {
            cx.at_key(&at, format!("column `{name}` of task `{id}` is not a CQL identifier"));
        }
        check_source(cx, &source.path, name, &at, id);
    }
    if t.concurrency == 0 {
        let msg = format!("`concurrency` of task `{id}` must be 1 or more");
        cx.at_value(&child(path, "concurrency"), msg);
    }
}

pub(super) fn check_to_s3(cx: &mut Ctx, t: &KafkaToS3Task, path: &[String]) {
    let id = &path[1];
    check_name(cx, &t.topic, "topic", path);
    check_name(cx, &t.group_id, "group_id", path);
    check_url(cx, &t.url, "url", path);
    if t.max_records == 0 || t.max_bytes == 0 {
        let msg = format!("`max_records` and `max_bytes` of task `{id}` must be 1 or more");
        cx.at_key(path, msg);
    }
}

pub(super) fn check_s3(cx: &mut Ctx, t: &S3Task, path: &[String]) {
    let id = &path[1];
    let (needs, forbids): (&[&str], &[&str]) = match t.operation {
        S3Operation::Put | S3Operation::Get | S3Operation::Copy => (&["source", "dest"], &["url"]),
        S3Operation::Delete | S3Operation::List => (&["url"], &["source", "dest"]),
    };
    let has = |f: &str| match f {
        "source" => t.source.is_some(),
        "dest" => t.dest.is_some(),
        _ => t.url.is_some(),
    };
    let op = format!("{:?}", t.operation).to_lowercase();
    for f in needs.iter().filter(|f| !has(f)) {
        cx.at_key(path, format!("task `{id}` (s3 {op}) needs `{f}`"));
    }
    for f in forbids.iter().filter(|f| has(f)) {
        let msg = format!("`{f}` does not apply to task `{id}` (s3 {op}); it uses {needs:?}");
        cx.at_key(&child(path, f), msg);
    }
    let object_fields: &[&str] = match t.operation {
        S3Operation::Put => &["dest"],
        S3Operation::Get => &["source"],
        S3Operation::Copy => &["source", "dest"],
        S3Operation::Delete | S3Operation::List => &["url"],
    };
    for f in object_fields {
        let value = match *f {
            "source" => t.source.as_deref(),
            "dest" => t.dest.as_deref(),
            _ => t.url.as_deref(),
        };
        if let Some(v) = value {
            check_url(cx, v, f, path);
        }
    }
}

/// An object URL must say its store, unless a template decides it at run time.
fn check_url(cx: &mut Ctx, url: &str, field: &str, path: &[String]) {
    let templated = url.contains("{{") || url.contains("{%");
    if !templated && !url.starts_with("s3://") && !url.starts_with("file:///") {
        let msg = format!(
            "`{field}` of task `{}` is `{url}`; write s3://bucket/key or file:///folder/key",
            path[1]
        );
        cx.at_value(&child(path, field), msg);
    }
}

/// A column's source is a dotted JSON path or one of [`MESSAGE_FIELDS`] (every sink with a
/// column mapping reads its sources this way).
pub(super) fn check_source(cx: &mut Ctx, p: &str, name: &str, at: &[String], id: &str) {
    let bad_path = p.is_empty() || p.split('.').any(str::is_empty);
    if (p.starts_with('$') && !MESSAGE_FIELDS.contains(&p)) || bad_path {
        let msg = format!(
            "column `{name}` of task `{id}` reads `{p}`; write a dotted JSON path (a.b.c) or \
             one of {}",
            MESSAGE_FIELDS.join(", ")
        );
        cx.at_value(at, msg);
    }
}

pub(super) fn check_name(cx: &mut Ctx, value: &str, field: &str, path: &[String]) {
    if value.trim().is_empty() {
        cx.at_value(&child(path, field), format!("`{field}` of task `{}` is empty", path[1]));
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
