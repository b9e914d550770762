//! Cross-field checks of `sql_to_kafka` and `kafka_to_sql`: plain identifiers for every table
//! and column name, the fields each mode needs, key columns that are mapped, and column
//! sources as `kafka_to_cassandra` reads them.
//!
//! Pure, like `kind.rs`: whether the table and its columns exist is checked when the task
//! starts. Table and column names are never templated: they are spliced into SQL text
//! (quoted), so they must be known, plain identifiers at load time.

use super::ctx::{Ctx, child};
use super::kind_streaming::{check_name, check_source};
use crate::dag::kinds::{KafkaToSqlTask, SinkMode, SourceMode, SqlToKafkaTask};
use crate::dag::sql_text::{Dialect, quote_identifier};

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

/// The SQL layer's one rule for a name written into SQL: a plain name, or `schema.name`
/// (the same in every dialect; only the quotes differ).
fn plain(name: &str) -> bool {
    quote_identifier(name, Dialect::Postgres).is_ok()
}

/// `table` or `schema.table`, plain identifiers.
fn check_table(cx: &mut Ctx, table: &str, path: &[String]) {
    if !plain(table) {
        let msg = format!(
            "`table` of task `{}` is `{table}`; write `table` or `schema.table` (letters, \
             digits, _, at most 63 characters; not templated)",
            path[1]
        );
        cx.at_value(&child(path, "table"), msg);
    }
}

fn check_column(cx: &mut Ctx, name: &str, at: &[String], id: &str) {
    if name.contains('.') || !plain(name) {
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::dag::kinds::{SinkMode, SourceMode};
    use crate::dag::{TaskKind, parse_dag_str};

    fn errors(src: &str) -> Vec<String> {
        match parse_dag_str(src, Path::new("dags/t.yaml")) {
            Ok(_) => panic!("expected errors for:\n{src}"),
            Err(e) => e.iter().map(|e| format!("{}:{}: {}", e.line, e.column, e.message)).collect(),
        }
    }

    #[test]
    fn sql_to_kafka_settings_and_defaults() {
        let src = "tasks:\n  src:\n    type: sql_to_kafka\n    sql_connection: pg\n    \
                   table: public.stations\n    mode: timestamp+incrementing\n    \
                   timestamp_column: updated_at\n    incrementing_column: id\n    topic: st\n";
        let dag = parse_dag_str(src, Path::new("dags/t.yaml")).expect("valid");
        let TaskKind::SqlToKafka(t) = &dag.tasks["src"].kind else { panic!() };
        assert_eq!(t.mode, SourceMode::TimestampIncrementing);
        assert_eq!(t.lag.0, Duration::from_secs(5));
        assert_eq!(t.batch_size, 10_000);
        assert_eq!(t.kafka_connection, "kafka_default");
    }

    #[test]
    fn sql_to_kafka_mistakes_are_located() {
        let base = "tasks:\n  src:\n    type: sql_to_kafka\n    sql_connection: pg\n    topic: t\n";
        let e = errors(&format!(
            "{base}    table: 'a b'\n    mode: timestamp+incrementing\n    incrementing_column: id\n"
        ));
        assert!(
            e.iter().any(|m| m.starts_with("6:12:") && m.contains("`table` of task `src`")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("needs `timestamp_column`")), "{e:?}");
        let e = errors(&format!(
            "{base}    table: t\n    mode: incrementing\n    incrementing_column: 'id; drop'\n    \
             timestamp_column: ts\n    key_columns: []\n"
        ));
        assert!(
            e.iter().any(|m| m.contains("column `id; drop` of task `src` is not a plain")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("needs `mode: timestamp+incrementing`")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("`key_columns` of task `src` is empty")), "{e:?}");
    }

    #[test]
    fn kafka_to_sql_keys_sources_and_modes() {
        let base = "tasks:\n  sink:\n    type: kafka_to_sql\n    sql_connection: db\n    \
                    topic: t\n    group_id: g\n    table: flights\n";
        let ok =
            format!("{base}    mode: upsert\n    key_columns: [id]\n    columns: {{id: id}}\n");
        let dag = parse_dag_str(&ok, Path::new("dags/t.yaml")).expect("valid");
        let TaskKind::KafkaToSql(t) = &dag.tasks["sink"].kind else { panic!() };
        assert_eq!((t.mode, t.batch_size), (SinkMode::Upsert, 5_000));
        let e = errors(&format!(
            "{base}    mode: upsert\n    columns: {{id: id, at: $when, n: {{path: x, type: int}}}}\n"
        ));
        assert!(e.iter().any(|m| m.contains("with `mode: upsert` needs `key_columns`")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("reads `$when`")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("names a `type`")), "{e:?}");
        let e = errors(&format!(
            "{base}    delete_on_tombstone: true\n    key_columns: [code]\n    columns: {{id: id}}\n"
        ));
        assert!(
            e.iter().any(|m| m.contains("key column `code` of task `sink` is not one of")),
            "{e:?}"
        );
    }
}
