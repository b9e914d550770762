//! Values in and out of the SQL databases: JSON values bound as parameters, and result rows as
//! JSON objects, per dialect.
//!
//! Rows: integers and floats are JSON numbers (a float that is not finite is `null`), booleans
//! booleans, NULL `null`; `NUMERIC`/`DECIMAL` are **strings** holding the exact decimal text
//! (`"12.50"`: a JSON number would round through a float, and money must not); dates are
//! `YYYY-MM-DD`, times `HH:MM:SS[.f]`, timestamps RFC 3339 in UTC (`2026-01-02T03:04:05Z`; a
//! timestamp without time zone is read as UTC, which every session is set to); JSON columns
//! are JSON values; UUIDs strings; binary columns base64 (standard alphabet, padded). A column
//! type with no mapping here is an error naming the column and its type, asking for a cast.
//!
//! Parameters: PostgreSQL receives every value as text and the statement casts it to the type
//! the server infers for its spot (see `db.rs`), so `'2026-01-02'` works for a date and `'5'`
//! for an integer; MySQL and SQLite receive strings, numbers, booleans and NULL as such (both
//! convert by column type). Lists and objects are sent as their JSON text.
//!
//! Invariant: a value only ever travels as a bound parameter; nothing here builds SQL text.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use sqlx::{Column, Row, TypeInfo, ValueRef};

/// The text PostgreSQL receives for a value (`None` is NULL).
pub(super) fn pg_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Binds `v` to a MySQL or SQLite query by its JSON type.
macro_rules! bind_typed {
    ($q:expr, $v:expr) => {
        match $v {
            serde_json::Value::Null => $q.bind(None::<String>),
            serde_json::Value::Bool(b) => $q.bind(*b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => $q.bind(i),
                (None, Some(f)) if n.is_f64() => $q.bind(f),
                // A u64 past i64::MAX: as text, converted by the column.
                _ => $q.bind(n.to_string()),
            },
            serde_json::Value::String(s) => $q.bind(s.clone()),
            other => $q.bind(other.to_string()),
        }
    };
}
pub(super) use bind_typed;

/// Why a row could not become JSON.
pub(super) fn column_error(name: &str, ty: &str, e: impl std::fmt::Display) -> String {
    format!(
        "column `{name}` has type {ty}, which cannot be read as JSON ({e}); cast it in the \
         query, e.g. `CAST({name} AS TEXT)`"
    )
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn utc(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A row as a JSON object, one column at a time by `value`.
pub(super) fn row_map<R: Row>(
    row: &R,
    value: fn(&R, usize) -> Result<Value, String>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        out.insert(col.name().to_string(), value(row, i)?);
    }
    Ok(out)
}

/// Column `i` of a PostgreSQL row as JSON.
pub(super) fn pg_value(row: &sqlx::postgres::PgRow, i: usize) -> Result<Value, String> {
    let col = &row.columns()[i];
    let name = col.name();
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = col.type_info().name().to_string();
    let fail = |e: &dyn std::fmt::Display| column_error(name, &ty, e);
    macro_rules! get {
        ($t:ty) => {
            row.try_get::<$t, _>(i).map_err(|e| fail(&e))?
        };
    }
    Ok(match ty.as_str() {
        "BOOL" => Value::Bool(get!(bool)),
        "INT2" => Value::from(get!(i16)),
        "INT4" => Value::from(get!(i32)),
        "INT8" => Value::from(get!(i64)),
        "OID" => Value::from(get!(sqlx::postgres::types::Oid).0),
        "FLOAT4" => float(f64::from(get!(f32))),
        "FLOAT8" => float(get!(f64)),
        "NUMERIC" => {
            let bytes = raw.as_bytes().map_err(|e| fail(&e))?;
            Value::String(super::numeric::pg_numeric_text(bytes).map_err(|e| fail(&e))?)
        }
        "DATE" => Value::String(get!(NaiveDate).to_string()),
        "TIME" => Value::String(get!(NaiveTime).to_string()),
        "TIMESTAMP" => utc(get!(NaiveDateTime).and_utc()),
        "TIMESTAMPTZ" => utc(get!(DateTime<Utc>)),
        "UUID" => Value::String(get!(uuid::Uuid).to_string()),
        "JSON" | "JSONB" => get!(Value),
        "BYTEA" => b64(&get!(Vec<u8>)),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "UNKNOWN" | "CITEXT" => {
            Value::String(get!(String))
        }
        // An enum's binary form is its label; other types are refused below.
        _ if matches!(col.type_info().kind(), sqlx::postgres::PgTypeKind::Enum(_)) => {
            Value::String(raw.as_str().map_err(|e| fail(&e))?.to_string())
        }
        _ => return Err(fail(&"no conversion")),
    })
}

/// Whether [`pg_value`] reads a PostgreSQL column of catalog type `data_type`
/// (`information_schema.columns.data_type`, lower-case) itself. A reader of a whole table
/// (`sql_to_kafka`) selects the other columns — arrays, intervals, network addresses,
/// composites, extension types — through `to_json`, PostgreSQL's own JSON form of them.
pub fn pg_reads_natively(data_type: &str) -> bool {
    matches!(
        data_type,
        "boolean"
            | "smallint"
            | "integer"
            | "bigint"
            | "oid"
            | "real"
            | "double precision"
            | "numeric"
            | "date"
            | "time without time zone"
            | "timestamp without time zone"
            | "timestamp with time zone"
            | "uuid"
            | "json"
            | "jsonb"
            | "bytea"
            | "text"
            | "character varying"
            | "character"
            | "name"
            | "\"char\""
    )
}

/// Column `i` of a MySQL/MariaDB row as JSON.
pub(super) fn mysql_value(row: &sqlx::mysql::MySqlRow, i: usize) -> Result<Value, String> {
    let col = &row.columns()[i];
    let name = col.name();
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = col.type_info().name().to_string();
    let fail = |e: &dyn std::fmt::Display| column_error(name, &ty, e);
    macro_rules! get {
        ($t:ty) => {
            row.try_get_unchecked::<$t, _>(i).map_err(|e| fail(&e))?
        };
    }
    Ok(match ty.as_str() {
        "BOOLEAN" => Value::Bool(get!(bool)),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => Value::from(get!(i64)),
        t if t.ends_with("UNSIGNED") || t == "BIT" || t == "YEAR" => Value::from(get!(u64)),
        "FLOAT" => float(f64::from(get!(f32))),
        "DOUBLE" => float(get!(f64)),
        "DATE" => Value::String(get!(NaiveDate).to_string()),
        "DATETIME" => utc(get!(NaiveDateTime).and_utc()),
        "TIMESTAMP" => utc(get!(DateTime<Utc>)),
        "JSON" => {
            let text = get!(String);
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
            b64(&get!(Vec<u8>))
        }
        // DECIMAL, TIME (which may exceed a day), text, ENUM and SET: the server's text.
        _ => Value::String(get!(String)),
    })
}

/// Column `i` of a SQLite row as JSON: by the value's storage class, and a column declared
/// `BOOLEAN` holding 0 or 1 as a boolean.
pub(super) fn sqlite_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Value, String> {
    let col = &row.columns()[i];
    let name = col.name();
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    let storage = raw.type_info().name().to_string();
    let declared = col.type_info().name().to_ascii_uppercase();
    let fail = |e: &dyn std::fmt::Display| column_error(name, &storage, e);
    macro_rules! get {
        ($t:ty) => {
            row.try_get_unchecked::<$t, _>(i).map_err(|e| fail(&e))?
        };
    }
    Ok(match storage.as_str() {
        "NULL" => Value::Null,
        "INTEGER" if declared == "BOOLEAN" => Value::Bool(get!(i64) != 0),
        "INTEGER" => Value::from(get!(i64)),
        "REAL" => float(get!(f64)),
        "BLOB" => b64(&get!(Vec<u8>)),
        _ => Value::String(get!(String)),
    })
}
