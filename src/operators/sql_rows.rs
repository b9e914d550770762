//! From Kafka messages to the statements of `kafka_to_sql`: the column mapping (sources as
//! `kafka_to_cassandra` reads them, `json_path::Source`), checked once against the table; the
//! batch's de-duplication by key (last message wins); the INSERT / upsert / DELETE text per
//! dialect; and which database errors are a row's fault.
//!
//! Invariants: a message never panics the mapping; it becomes an operation or a reason for the
//! dead-letter topic. Values are bound, never spliced; on PostgreSQL each placeholder is cast
//! to its column's type so JSON text and numbers land in any column type the database can
//! convert them to.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use serde_json::Value;

use super::OperatorError;
use super::json_path::{Source, as_text, disjoint, lookup, take};
use super::sql_link::{Column, Dialect, SqlText, find};
use crate::dag::kinds::{KafkaToSqlTask, SinkMode};

/// Bound parameters per statement: below every dialect's limit (SQLite 32,766; PostgreSQL and
/// MySQL 65,535), large enough that a batch is a handful of statements.
const MAX_PARAMS: usize = 30_000;

/// What one message asks of the table.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Insert (or upsert) a row: one value per mapped column.
    Write(Vec<Value>),
    /// Delete the row with these key values (a tombstone).
    Delete(Vec<Value>),
    /// The message cannot become a row: why.
    Reject(String),
}

/// A mapped column.
struct Mapped {
    name: String,
    source: Source,
    /// PostgreSQL: the type the placeholder is cast to.
    cast: Option<String>,
    /// MySQL datetime/timestamp: ISO 8601 text is rewritten as `YYYY-MM-DD HH:MM:SS.ffffff`.
    mysql_time: bool,
    /// No other column reads this path or a part of it: its value is moved out of the record
    /// instead of cloned.
    sole: bool,
}

/// The task's table and mapping, checked against the real table.
pub struct SinkTable {
    pub dialect: Dialect,
    table: String,
    columns: Vec<Mapped>,
    /// Indexes (into `columns`) of the key columns.
    key: Vec<usize>,
    mode: SinkMode,
    delete_on_tombstone: bool,
    /// The last INSERT text built and its row count: every full batch has the same one.
    insert_text: Mutex<Option<(usize, Arc<str>)>>,
}

impl SinkTable {
    /// Checks every mapped and key column against `cols` (the table's, from the catalog).
    pub fn new(
        task: &KafkaToSqlTask,
        task_id: &str,
        dialect: Dialect,
        cols: &[Column],
    ) -> Result<SinkTable, OperatorError> {
        let mut columns = Vec::new();
        for (name, src) in &task.columns {
            let col = find(cols, name, task_id, "columns", &task.table)?;
            let t = col.data_type.as_str();
            columns.push(Mapped {
                name: name.clone(),
                source: Source::of(&src.path),
                cast: if dialect == Dialect::Postgres { col.cast_type.clone() } else { None },
                mysql_time: dialect == Dialect::MySql && (t == "datetime" || t == "timestamp"),
                sole: false,
            });
        }
        for i in 0..columns.len() {
            let Source::Path(p) = &columns[i].source else { continue };
            columns[i].sole = columns.iter().enumerate().all(|(j, c)| match &c.source {
                Source::Path(q) => i == j || disjoint(p, q),
                _ => true,
            });
        }
        let key = task
            .key_columns
            .iter()
            .map(|k| columns.iter().position(|c| &c.name == k))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                OperatorError::Fatal(format!(
                    "`key_columns` of task `{task_id}` must be among its `columns`"
                ))
            })?;
        Ok(SinkTable {
            dialect,
            table: dialect.quote(&task.table),
            columns,
            key,
            mode: task.mode,
            delete_on_tombstone: task.delete_on_tombstone,
            insert_text: Mutex::new(None),
        })
    }

    /// What `msg` asks of the table.
    pub fn op(&self, msg: &BorrowedMessage<'_>) -> Op {
        let Some(payload) = msg.payload() else { return self.tombstone(msg) };
        match serde_json::from_slice(payload) {
            Ok(json) => self.op_of_record(msg, json),
            Err(e) => Op::Reject(format!("the message is not JSON: {e}")),
        }
    }

    /// What `msg` asks of the table, its value already decoded (and transformed) to `json`.
    pub fn op_of_record(&self, msg: &BorrowedMessage<'_>, mut json: Value) -> Op {
        if !json.is_object() {
            return Op::Reject("the message is not a JSON object".into());
        }
        let values: Vec<Value> =
            self.columns.iter().map(|c| self.value(c, msg, &mut json)).collect();
        for &i in &self.key {
            if values[i].is_null() {
                let c = &self.columns[i];
                return Op::Reject(format!("key column `{}` is missing ({})", c.name, origin(c)));
            }
        }
        Op::Write(values)
    }

    fn tombstone(&self, msg: &BorrowedMessage<'_>) -> Op {
        if !self.delete_on_tombstone {
            return Op::Reject("a tombstone (no payload) and `delete_on_tombstone` is off".into());
        }
        let text = msg.key().map(|k| String::from_utf8_lossy(k).into_owned());
        let Some(text) = text else { return Op::Reject("a tombstone without a key".into()) };
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        let mut values = Vec::with_capacity(self.key.len());
        for &i in &self.key {
            let c = &self.columns[i];
            let v = match &c.source {
                Source::Key => Value::String(text.clone()),
                Source::Path(p) if parsed.is_object() => {
                    lookup(&parsed, p).cloned().unwrap_or_default()
                }
                // A key that is a bare value is the one key column.
                Source::Path(_) if self.key.len() == 1 => parsed.clone(),
                _ => Value::Null,
            };
            if v.is_null() {
                return Op::Reject(format!(
                    "the tombstone's key does not give key column `{}` ({})",
                    c.name,
                    origin(c)
                ));
            }
            values.push(self.normalize(c, v));
        }
        Op::Delete(values)
    }

    fn value(&self, c: &Mapped, msg: &BorrowedMessage<'_>, json: &mut Value) -> Value {
        let v = match &c.source {
            Source::Path(p) if c.sole => take(json, p).unwrap_or_default(),
            Source::Path(p) => lookup(json, p).cloned().unwrap_or_default(),
            Source::Key => {
                msg.key().map_or(Value::Null, |k| String::from_utf8_lossy(k).into_owned().into())
            }
            Source::Topic => msg.topic().into(),
            Source::Partition => msg.partition().into(),
            Source::Offset => msg.offset().into(),
            Source::Timestamp => msg
                .timestamp()
                .to_millis()
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map_or(Value::Null, |t| t.to_rfc3339().into()),
        };
        self.normalize(c, v)
    }

    fn normalize(&self, c: &Mapped, v: Value) -> Value {
        match v {
            Value::String(s) if c.mysql_time => match chrono::DateTime::parse_from_rfc3339(&s) {
                Ok(t) => t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string().into(),
                Err(_) => Value::String(s),
            },
            v => v,
        }
    }

    /// The key of a batch entry, for de-duplication; `None` without key columns.
    fn key_of<'o>(&'o self, op: &'o Op) -> Option<RowKey<'o>> {
        if self.key.is_empty() {
            return None;
        }
        match op {
            Op::Write(values) => Some(RowKey { values, at: Some(&self.key) }),
            Op::Delete(values) => Some(RowKey { values, at: None }),
            Op::Reject(_) => None,
        }
    }

    /// Indexes of the operations to apply: for each key, only its last one (a later message
    /// replaces an earlier one, as it would row by row).
    pub fn dedupe(&self, ops: &[&Op]) -> Vec<usize> {
        let mut last: HashMap<RowKey<'_>, usize> = HashMap::with_capacity(ops.len());
        let mut keep = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match self.key_of(op) {
                Some(k) => {
                    last.insert(k, i);
                }
                None => keep.push(i),
            }
        }
        keep.extend(last.into_values());
        keep.sort_unstable();
        keep
    }

    /// Rows per INSERT statement.
    pub fn rows_per_statement(&self) -> usize {
        (MAX_PARAMS / self.columns.len().max(1)).max(1)
    }

    fn placeholder(&self, n: usize, c: &Mapped) -> String {
        let p = self.dialect.placeholder(n);
        match &c.cast {
            Some(t) => format!("CAST({p} AS {t})"),
            None => p,
        }
    }

    /// `INSERT INTO t (..) VALUES (..), (..)` for `rows` rows, with the upsert clause; built
    /// once per row count in a row (a full batch's text is hundreds of kilobytes).
    pub fn insert_sql(&self, rows: usize) -> Arc<str> {
        let mut last = self.insert_text.lock().unwrap_or_else(|e| e.into_inner());
        match &*last {
            Some((n, sql)) if *n == rows => sql.clone(),
            _ => {
                let sql: Arc<str> = self.build_insert_sql(rows).into();
                *last = Some((rows, sql.clone()));
                sql
            }
        }
    }

    fn build_insert_sql(&self, rows: usize) -> String {
        let d = self.dialect;
        let names: Vec<String> = self.columns.iter().map(|c| d.quote(&c.name)).collect();
        let mut sql = format!("INSERT INTO {} ({}) VALUES ", self.table, names.join(", "));
        let mut n = 0;
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            let marks: Vec<String> = self
                .columns
                .iter()
                .map(|c| {
                    n += 1;
                    self.placeholder(n, c)
                })
                .collect();
            sql.push('(');
            sql.push_str(&marks.join(", "));
            sql.push(')');
        }
        if self.mode == SinkMode::Upsert {
            let rest: Vec<&String> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| !self.key.contains(i))
                .map(|(_, n)| n)
                .collect();
            let keys: Vec<&String> = self.key.iter().map(|&i| &names[i]).collect();
            match d {
                Dialect::MySql => {
                    let set: Vec<String> = if rest.is_empty() { keys.clone() } else { rest }
                        .iter()
                        .map(|c| format!("{c} = VALUES({c})"))
                        .collect();
                    sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {}", set.join(", ")));
                }
                Dialect::Postgres | Dialect::Sqlite => {
                    let target = keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
                    if rest.is_empty() {
                        sql.push_str(&format!(" ON CONFLICT ({target}) DO NOTHING"));
                    } else {
                        let set: Vec<String> =
                            rest.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
                        sql.push_str(&format!(
                            " ON CONFLICT ({target}) DO UPDATE SET {}",
                            set.join(", ")
                        ));
                    }
                }
            }
        }
        sql
    }

    /// `DELETE FROM t WHERE k1 = .. AND k2 = ..`.
    pub fn delete_sql(&self) -> String {
        let conds: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let c = &self.columns[i];
                format!("{} = {}", self.dialect.quote(&c.name), self.placeholder(n + 1, c))
            })
            .collect();
        format!("DELETE FROM {} WHERE {}", self.table, conds.join(" AND "))
    }
}

fn origin(c: &Mapped) -> &str {
    match &c.source {
        Source::Path(p) => p,
        Source::Key => "$key",
        Source::Topic => "$topic",
        Source::Partition => "$partition",
        Source::Offset => "$offset",
        Source::Timestamp => "$timestamp",
    }
}

/// The key columns' values of one operation, hashed and compared as JSON values, without
/// building a string per message.
#[derive(Clone, Copy)]
struct RowKey<'o> {
    values: &'o [Value],
    /// The key's positions in `values` (a write's row); `None`: all of them (a delete's key).
    at: Option<&'o [usize]>,
}

impl RowKey<'_> {
    fn parts(&self) -> impl Iterator<Item = &Value> {
        let n = self.at.map_or(self.values.len(), <[usize]>::len);
        (0..n).map(|i| &self.values[self.at.map_or(i, |at| at[i])])
    }
}

impl PartialEq for RowKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.parts().eq(other.parts())
    }
}

impl Eq for RowKey<'_> {}

impl Hash for RowKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for v in self.parts() {
            hash_value(v, state);
        }
    }
}

/// Hashes a JSON value consistently with its `==`: integers by value, floats by their bits
/// (`serde_json` tells 1 and 1.0 apart too; 0.0 and -0.0 are equal and hash alike), objects
/// by their size only (equal objects may iterate in different orders).
fn hash_value<H: Hasher>(v: &Value, state: &mut H) {
    match v {
        Value::Null => 0u8.hash(state),
        Value::Bool(b) => (1u8, b).hash(state),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => (2u8, i).hash(state),
            (None, Some(u)) => (3u8, u).hash(state),
            _ => (4u8, n.as_f64().map(|f| if f == 0.0 { 0 } else { f.to_bits() })).hash(state),
        },
        Value::String(s) => (5u8, s).hash(state),
        Value::Array(items) => {
            (6u8, items.len()).hash(state);
            items.iter().for_each(|i| hash_value(i, state));
        }
        Value::Object(map) => (7u8, map.len()).hash(state),
    }
}

/// Binds one JSON value by its JSON type (text for objects and arrays); text is bound borrowed.
pub fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    v: &'q Value,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match v {
        Value::Null => q.bind(None::<String>),
        Value::Bool(b) => q.bind(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => q.bind(i),
            None => q.bind(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => q.bind(s.as_str()),
        other => q.bind(as_text(other).unwrap_or_default()),
    }
}

/// The database's reason when `e` is about the row itself (a constraint, a value the column
/// cannot hold), so the row belongs in the dead-letter topic; `None` for everything else
/// (connection lost, permissions, a dropped table), which fails the try instead.
pub fn row_fault(e: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = e else { return None };
    let state = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let by_state = state.starts_with("22") || state.starts_with("23") || state == "42804";
    let by_kind = !matches!(db.kind(), sqlx::error::ErrorKind::Other);
    let by_number = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().is_some_and(|m| {
        matches!(
            m.number(),
            1048 | 1062 | 1264 | 1265 | 1292 | 1364 | 1366 | 1406 | 1452 | 3819 | 4025
        )
    });
    let sqlite_mismatch = db
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some_and(|_| state == "20" || state.parse::<u32>().is_ok_and(|c| c & 0xff == 19));
    (by_state || by_kind || by_number || sqlite_mismatch).then(|| db.message().to_string())
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;

    use super::*;
    use crate::dag::kinds::ColumnSource;

    fn table(dialect: Dialect, mode: SinkMode, keys: &[&str]) -> SinkTable {
        let mut columns = IndexMap::new();
        for (c, p) in [("id", "id"), ("name", "who.name"), ("at", "$timestamp")] {
            columns.insert(c.to_string(), ColumnSource { path: p.into(), cql_type: None });
        }
        let yaml = format!(
            "sql_connection: db\ntopic: t\ngroup_id: g\ntable: s.t\ncolumns: {{id: id}}\n\
             key_columns: {keys:?}"
        );
        let mut task: KafkaToSqlTask = serde_yaml::from_str(&yaml).unwrap();
        task.columns = columns;
        task.mode = mode;
        let cols: Vec<Column> =
            [("id", "bigint", "int8"), ("name", "text", "text"), ("at", "datetime", "x")]
                .iter()
                .map(|(n, t, u)| Column {
                    name: n.to_string(),
                    data_type: t.to_string(),
                    cast_type: (dialect == Dialect::Postgres).then(|| u.to_string()),
                })
                .collect();
        SinkTable::new(&task, "sink", dialect, &cols).unwrap()
    }

    #[test]
    fn upserts_per_dialect() {
        let pg = table(Dialect::Postgres, SinkMode::Upsert, &["id"]);
        assert_eq!(
            &*pg.insert_sql(2),
            "INSERT INTO \"s\".\"t\" (\"id\", \"name\", \"at\") VALUES (CAST($1 AS int8), \
             CAST($2 AS text), CAST($3 AS x)), (CAST($4 AS int8), CAST($5 AS text), CAST($6 AS \
             x)) ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\", \"at\" = \
             EXCLUDED.\"at\""
        );
        assert_eq!(pg.delete_sql(), "DELETE FROM \"s\".\"t\" WHERE \"id\" = CAST($1 AS int8)");
        let my = table(Dialect::MySql, SinkMode::Upsert, &["id"]);
        assert_eq!(
            &*my.insert_sql(1),
            "INSERT INTO `s`.`t` (`id`, `name`, `at`) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE \
             `name` = VALUES(`name`), `at` = VALUES(`at`)"
        );
        let plain = table(Dialect::MySql, SinkMode::Insert, &[]);
        assert_eq!(
            &*plain.insert_sql(1),
            "INSERT INTO `s`.`t` (`id`, `name`, `at`) VALUES (?, ?, ?)"
        );
        assert_eq!(plain.rows_per_statement(), 10_000);
        // The text is kept for the next batch of the same size, and rebuilt for another size.
        assert!(Arc::ptr_eq(&plain.insert_sql(1), &plain.insert_sql(1)));
        assert_eq!(plain.insert_sql(2).matches("(?, ?, ?)").count(), 2);
        assert_eq!(plain.insert_sql(1).matches("(?, ?, ?)").count(), 1);
    }

    #[test]
    fn keys_are_equal_as_json_values() {
        let t = table(Dialect::Postgres, SinkMode::Upsert, &["id", "name"]);
        let w = |id: Value, name: Value| Op::Write(vec![id, name, Value::Null]);
        let ops = [
            w(1.into(), "a".into()),
            w(1.5.into(), "a".into()),
            w(serde_json::json!(1.0), "a".into()),
            w(1.into(), "b".into()),
            w(1.5.into(), "a".into()),
            w(1.into(), "a".into()),
            w(serde_json::json!(-0.0), Value::Null),
            w(serde_json::json!(0.0), Value::Null),
            Op::Delete(vec![1.into(), "b".into()]),
        ];
        let refs: Vec<&Op> = ops.iter().collect();
        // (1, a) twice, (1.5, a) twice, (0.0, null) twice, (1, b) then its delete; 1.0 is not 1.
        assert_eq!(t.dedupe(&refs), vec![2, 4, 5, 7, 8]);
    }

    #[test]
    fn the_last_message_of_a_key_wins_and_unkeyed_rows_all_stay() {
        let t = table(Dialect::Postgres, SinkMode::Upsert, &["id"]);
        let w = |id: i64, name: &str| Op::Write(vec![id.into(), name.into(), Value::Null]);
        let ops =
            [w(1, "a"), w(2, "b"), w(1, "c"), Op::Delete(vec![2.into()]), Op::Reject("x".into())];
        let refs: Vec<&Op> = ops.iter().collect();
        assert_eq!(t.dedupe(&refs), vec![2, 3, 4]);
        let plain = table(Dialect::Postgres, SinkMode::Insert, &[]);
        assert_eq!(plain.dedupe(&refs), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn mysql_times_are_written_as_utc_datetimes() {
        let t = table(Dialect::MySql, SinkMode::Insert, &[]);
        let at = &t.columns[2];
        assert_eq!(
            t.normalize(at, "2026-03-01T10:00:00.5+02:00".into()),
            Value::from("2026-03-01 08:00:00.500000")
        );
        assert_eq!(t.normalize(at, "not a time".into()), Value::from("not a time"));
        assert_eq!(
            t.normalize(&t.columns[1], "2026-03-01T10:00:00Z".into()),
            Value::from("2026-03-01T10:00:00Z")
        );
    }
}
