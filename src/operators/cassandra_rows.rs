//! From a Kafka message to the bound values of one prepared INSERT: the column mapping of
//! `kafka_to_cassandra`, checked once against the table's real types.
//!
//! This file owns the INSERT statement's shape and the per-message mapping from a message's
//! decoded record and key (`records::Decoder`). A message that cannot become a row returns a
//! reason (a sentence naming the column), which the operator sends
//! to the dead-letter topic: it must never panic on a message and never drop one silently.

use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use scylla::frame::response::result::{ColumnType, NativeType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlValue};
use serde_json::Value;

use super::OperatorError;
use super::cassandra_client::to_cql;
use super::json_path::{Source, lookup};
use crate::dag::kinds::{ColumnSource, CqlType};

/// The bound values of one INSERT (the write time last, when stamped).
pub type RowValues = Vec<Option<CqlValue>>;

/// `INSERT INTO table (a, b) VALUES (?, ?) [USING TIMESTAMP ?]`.
pub fn insert_statement<'a>(
    table: &str,
    columns: impl Iterator<Item = &'a String>,
    write_timestamp: bool,
) -> String {
    let names: Vec<&str> = columns.map(String::as_str).collect();
    let marks = vec!["?"; names.len()].join(", ");
    let using = if write_timestamp { " USING TIMESTAMP ?" } else { "" };
    format!("INSERT INTO {table} ({}) VALUES ({marks}){using}", names.join(", "))
}

/// The mapping of a task, with each column's type as the table declares it.
pub struct RowMapper {
    columns: Vec<(String, Source, ColumnType<'static>)>,
    /// Indexes of the partition-key columns: a row without them cannot be written.
    key_columns: Vec<usize>,
    write_timestamp: bool,
}

impl RowMapper {
    /// Checks the mapping against the prepared statement's bind markers (the table's types).
    pub fn new(
        mapping: &indexmap::IndexMap<String, ColumnSource>,
        prepared: &PreparedStatement,
        write_timestamp: bool,
    ) -> Result<RowMapper, OperatorError> {
        let specs = prepared.get_variable_col_specs();
        let mut columns = Vec::new();
        for (i, (name, src)) in mapping.iter().enumerate() {
            let Some(spec) = specs.get_by_index(i) else {
                return Err(OperatorError::Fatal(format!("column `{name}` has no bind marker")));
            };
            let typ = spec.typ().clone().into_owned();
            if let Some(want) = src.cql_type
                && !same_type(want, &typ)
            {
                return Err(OperatorError::Fatal(format!(
                    "column `{name}` is declared {want:?} in the task but is {typ:?} in the table"
                )));
            }
            let source = Source::of(&src.path);
            columns.push((name.clone(), source, typ));
        }
        let key_columns =
            prepared.get_variable_pk_indexes().iter().map(|k| k.index as usize).collect();
        Ok(RowMapper { columns, key_columns, write_timestamp })
    }

    /// Whether a column reads the message key (only then is it decoded).
    pub fn uses_key(&self) -> bool {
        self.columns.iter().any(|(_, s, _)| matches!(s, Source::Key))
    }

    /// The values of the row of `msg`, whose value decoded to `json` and key to `key`, or why
    /// there is none.
    pub fn values(
        &self,
        msg: &BorrowedMessage<'_>,
        json: &Value,
        key: Option<&Value>,
    ) -> Result<RowValues, String> {
        if !json.is_object() {
            return Err("the message is not a JSON object".into());
        }
        let mut row = Vec::with_capacity(self.columns.len() + 1);
        for (name, source, typ) in &self.columns {
            let value = match source {
                Source::Path(p) => match lookup(json, p) {
                    Some(v) => to_cql(v, typ).map_err(|e| format!("column `{name}` ({p}): {e}"))?,
                    None => None,
                },
                Source::Key => match key {
                    Some(k) => {
                        to_cql(k, typ).map_err(|e| format!("column `{name}` ($key): {e}"))?
                    }
                    None => None,
                },
                Source::Topic => Some(CqlValue::Text(msg.topic().to_string())),
                Source::Partition => int_of(i64::from(msg.partition()), typ),
                Source::Offset => int_of(msg.offset(), typ),
                Source::Timestamp => {
                    msg.timestamp().to_millis().map(|ms| CqlValue::Timestamp(CqlTimestamp(ms)))
                }
            };
            row.push(value);
        }
        for &i in &self.key_columns {
            if row.get(i).is_some_and(Option::is_none) {
                let (name, source, _) = &self.columns[i];
                let from = match source {
                    Source::Path(p) => p.as_str(),
                    _ => "the message",
                };
                return Err(format!("primary key column `{name}` is missing ({from})"));
            }
        }
        if self.write_timestamp {
            row.push(Some(CqlValue::BigInt(write_time(msg))));
        }
        Ok(row)
    }
}

/// The write time of a message's row, in microseconds: its Kafka timestamp. A replay of old
/// messages then never overwrites a row written from a newer one (Cassandra keeps the cell
/// with the highest write time, whatever the order the writes arrive in).
pub fn write_time(msg: &BorrowedMessage<'_>) -> i64 {
    let ms = msg.timestamp().to_millis().unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    ms * 1000
}

fn int_of(v: i64, typ: &ColumnType<'_>) -> Option<CqlValue> {
    match typ {
        ColumnType::Native(NativeType::Int) => i32::try_from(v).ok().map(CqlValue::Int),
        ColumnType::Native(NativeType::Text) => Some(CqlValue::Text(v.to_string())),
        _ => Some(CqlValue::BigInt(v)),
    }
}

fn same_type(want: CqlType, have: &ColumnType<'_>) -> bool {
    let ColumnType::Native(n) = have else { return false };
    matches!(
        (want, n),
        (CqlType::Text, NativeType::Text | NativeType::Ascii)
            | (CqlType::Int, NativeType::Int)
            | (CqlType::Bigint, NativeType::BigInt)
            | (CqlType::Double, NativeType::Double)
            | (CqlType::Boolean, NativeType::Boolean)
            | (CqlType::Timestamp, NativeType::Timestamp)
            | (CqlType::Uuid, NativeType::Uuid)
    )
}

#[cfg(test)]
mod tests {
    use super::insert_statement;

    #[test]
    fn statement_shape() {
        let cols = ["id".to_string(), "name".to_string()];
        assert_eq!(
            insert_statement("ks.t", cols.iter(), true),
            "INSERT INTO ks.t (id, name) VALUES (?, ?) USING TIMESTAMP ?"
        );
        assert_eq!(
            insert_statement("t", cols.iter(), false),
            "INSERT INTO t (id, name) VALUES (?, ?)"
        );
    }
}
