//! Cross-field checks of `sql_to_kafka` and `kafka_to_sql`: plain identifiers for every table
//! and column name, the fields each mode needs, key columns that are mapped, and column
//! sources as `kafka_to_cassandra` reads them.
//!
//! Pure, like `kind.rs`: whether the table and its columns exist is checked when the task
//! starts. Table and column names are never templated: they are spliced into SQL text
//! (quoted), so they must be known, plain identifiers at load time.

use super::ctx::{Ctx, child};
use super::kind_streaming::{check_name, check_source, is_identifier};
use crate::dag::kinds::{KafkaToSqlTask, SinkMode, SourceMode, SqlToKafkaTask};

pub(super) fn check_sql_to_kafka(cx: &mut Ctx, t: &SqlToKafkaTask, path: &[String]) {
    let id = &path[1];
    check_name(cx, &t.topic, "topic", path);
    check_name(cx, &t.sql_connection, "sql_connection", path);
    check_table(cx, &t.table, path);
    check_column(cx, &t.incrementing_column, &child(path, "incrementing_column"), id);
    match (t.mode, &t.timestamp_column) {
        (SourceMode::TimestampIncrementing, None) => {
            let msg = format!(
                "task `{id}` (sql_to_kafka) in mode timestamp+incrementing needs \
                 `timestamp_column`"
            );
            cx.at_key(path, msg);
        }
        (SourceMode::Incrementing, Some(_)) => {
            let msg = format!(
                "`timestamp_column` of task `{id}` needs `mode: timestamp+incrementing`; \
                 mode incrementing reads by `incrementing_column` alone"
            );
            cx.at_key(&child(path, "timestamp_column"), msg);
        }
        (SourceMode::TimestampIncrementing, Some(ts)) => {
            check_column(cx, ts, &child(path, "timestamp_column"), id);
        }
        (SourceMode::Incrementing, None) => {}
    }
    for (field, list) in [("key_columns", &t.key_columns), ("columns", &t.columns)] {
        let Some(list) = list else { continue };
        check_list(cx, list, &child(path, field), id, field);
    }
    if t.batch_size == 0 {
        let msg = format!("`batch_size` of task `{id}` must be 1 or more");
        cx.at_value(&child(path, "batch_size"), msg);
    }
    if let Some(name) = &t.cursor_name {
        check_name(cx, name, "cursor_name", path);
    }
}

pub(super) fn check_kafka_to_sql(cx: &mut Ctx, t: &KafkaToSqlTask, path: &[String]) {
    let id = &path[1];
    check_name(cx, &t.topic, "topic", path);
    check_name(cx, &t.group_id, "group_id", path);
    check_name(cx, &t.sql_connection, "sql_connection", path);
    check_table(cx, &t.table, path);
    let columns = child(path, "columns");
    if t.columns.is_empty() {
        cx.at_key(&columns, format!("task `{id}` maps no `columns`"));
    }
    for (name, source) in &t.columns {
        let at = child(&columns, name);
        check_column(cx, name, &at, id);
        check_source(cx, &source.path, name, &at, id);
        if source.cql_type.is_some() {
            let msg = format!(
                "column `{name}` of task `{id}` names a `type`; kafka_to_sql converts each \
                 value to the table's own column type, write the path alone"
            );
            cx.at_value(&at, msg);
        }
    }
    let keys = child(path, "key_columns");
    if !t.key_columns.is_empty() {
        check_list(cx, &t.key_columns, &keys, id, "key_columns");
    }
    for k in &t.key_columns {
        if !t.columns.contains_key(k) {
            let msg = format!("key column `{k}` of task `{id}` is not one of its `columns`");
            cx.at_value(&keys, msg);
        }
    }
    let needs_keys = match (t.mode, t.delete_on_tombstone) {
        (SinkMode::Upsert, _) => Some("`mode: upsert`"),
        (SinkMode::Insert, true) => Some("`delete_on_tombstone`"),
        (SinkMode::Insert, false) => None,
    };
    if let Some(what) = needs_keys.filter(|_| t.key_columns.is_empty()) {
        let msg = format!(
            "task `{id}` (kafka_to_sql) with {what} needs `key_columns`: the columns of the \
             table's primary key or a unique index"
        );
        cx.at_key(path, msg);
    }
    if t.batch_size == 0 {
        let msg = format!("`batch_size` of task `{id}` must be 1 or more");
        cx.at_value(&child(path, "batch_size"), msg);
    }
}

/// `table` or `schema.table`, plain identifiers.
fn check_table(cx: &mut Ctx, table: &str, path: &[String]) {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| is_identifier(p)) {
        let msg = format!(
            "`table` of task `{}` is `{table}`; write `table` or `schema.table` (letters, \
             digits, _; not templated)",
            path[1]
        );
        cx.at_value(&child(path, "table"), msg);
    }
}

fn check_column(cx: &mut Ctx, name: &str, at: &[String], id: &str) {
    if !is_identifier(name) {
        let msg = format!("column `{name}` of task `{id}` is not a plain identifier");
        cx.at_value(at, msg);
    }
}

fn check_list(cx: &mut Ctx, list: &[String], at: &[String], id: &str, field: &str) {
    if list.is_empty() {
        cx.at_value(at, format!("`{field}` of task `{id}` is empty"));
    }
    for (i, name) in list.iter().enumerate() {
        check_column(cx, name, &child(at, &i.to_string()), id);
    }
}
