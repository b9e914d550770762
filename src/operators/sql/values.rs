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
//! Each column is read once into a [`Cell`], which borrows text from the row: a caller builds
//! a JSON value from it, or writes its JSON text straight out. MySQL sends a text column of a
//! binary collation (`utf8mb4_bin`, MariaDB's `JSON`) flagged binary, and the driver does not
//! pass on the character set that would tell it from `VARBINARY`: it reads as base64 unless
//! the query casts it (`CAST(c AS CHAR)`; `sql_to_kafka` does so from the catalog).
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

/// One column's value as the mapping reads it, borrowing text from the row where it can: a
/// reader that writes JSON text (`sql_to_kafka`'s messages) writes it without building a
/// [`Value`], and [`Cell::into_value`] gives the same JSON as a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'r> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// Not finite: `null`.
    Float(f64),
    /// Text of the row.
    Text(&'r str),
    /// Text made from the value (a date, a decimal, base64).
    Owned(String),
    /// A JSON column.
    Json(Value),
}

impl Cell<'_> {
    /// The cell as a JSON value.
    pub fn into_value(self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(b),
            Cell::Int(n) => Value::from(n),
            Cell::UInt(n) => Value::from(n),
            Cell::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Cell::Text(s) => Value::String(s.to_string()),
            Cell::Owned(s) => Value::String(s),
            Cell::Json(v) => v,
        }
    }

    /// Appends the cell's JSON text (what [`into_value`](Self::into_value) serializes to).
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), String> {
        let r = match self {
            Cell::Null => {
                out.extend_from_slice(b"null");
                Ok(())
            }
            Cell::Bool(b) => serde_json::to_writer(&mut *out, b),
            Cell::Int(n) => serde_json::to_writer(&mut *out, n),
            Cell::UInt(n) => serde_json::to_writer(&mut *out, n),
            Cell::Float(f) if f.is_finite() => serde_json::to_writer(&mut *out, f),
            Cell::Float(_) => {
                out.extend_from_slice(b"null");
                Ok(())
            }
            Cell::Text(s) => serde_json::to_writer(&mut *out, s),
            Cell::Owned(s) => serde_json::to_writer(&mut *out, s),
            Cell::Json(v) => serde_json::to_writer(&mut *out, v),
        };
        r.map_err(|e| e.to_string())
    }
}

fn utc(t: DateTime<Utc>) -> Cell<'static> {
    Cell::Owned(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn b64(bytes: &[u8]) -> Cell<'static> {
    Cell::Owned(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A row as a JSON object, one column at a time by `cell`.
pub(super) fn row_map<'r, R: Row>(
    row: &'r R,
    cell: fn(&'r R, usize) -> Result<Cell<'r>, String>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        out.insert(col.name().to_string(), cell(row, i)?.into_value());
    }
    Ok(out)
}

/// A column that is not NULL: its raw value, its name and its type's name (the column's
/// declared type, which PostgreSQL and MySQL send with every result).
struct Present<'r, R: Row> {
    raw: <R::Database as sqlx::Database>::ValueRef<'r>,
    name: &'r str,
    ty: &'r str,
}

/// Column `i` of `row`, or None when it is NULL.
fn present<R: Row>(row: &R, i: usize) -> Result<Option<Present<'_, R>>, String>
where
    usize: sqlx::ColumnIndex<R>,
{
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    let col = &row.columns()[i];
    Ok((!raw.is_null()).then(|| Present { raw, name: col.name(), ty: col.type_info().name() }))
}

/// Column `i` of a PostgreSQL row.
pub(super) fn pg_cell(row: &sqlx::postgres::PgRow, i: usize) -> Result<Cell<'_>, String> {
    let Some(Present { raw, name, ty }) = present(row, i)? else { return Ok(Cell::Null) };
    let fail = |e: &dyn std::fmt::Display| column_error(name, ty, e);
    macro_rules! get {
        ($t:ty) => {
            row.try_get::<$t, _>(i).map_err(|e| fail(&e))?
        };
    }
    Ok(match ty {
        "BOOL" => Cell::Bool(get!(bool)),
        "INT2" => Cell::Int(get!(i16).into()),
        "INT4" => Cell::Int(get!(i32).into()),
        "INT8" => Cell::Int(get!(i64)),
        "OID" => Cell::UInt(get!(sqlx::postgres::types::Oid).0.into()),
        "FLOAT4" => Cell::Float(get!(f32).into()),
        "FLOAT8" => Cell::Float(get!(f64)),
        "NUMERIC" => {
            let bytes = raw.as_bytes().map_err(|e| fail(&e))?;
            Cell::Owned(super::numeric::pg_numeric_text(bytes).map_err(|e| fail(&e))?)
        }
        "DATE" => Cell::Owned(get!(NaiveDate).to_string()),
        "TIME" => Cell::Owned(get!(NaiveTime).to_string()),
        "TIMESTAMP" => utc(get!(NaiveDateTime).and_utc()),
        "TIMESTAMPTZ" => utc(get!(DateTime<Utc>)),
        "UUID" => Cell::Owned(get!(uuid::Uuid).to_string()),
        "JSON" | "JSONB" => Cell::Json(get!(Value)),
        "BYTEA" => b64(get!(&[u8])),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "UNKNOWN" | "CITEXT" => {
            Cell::Text(get!(&str))
        }
        // An enum's binary form is its label; other types are refused below.
        _ if matches!(row.columns()[i].type_info().kind(), sqlx::postgres::PgTypeKind::Enum(_)) => {
            Cell::Text(raw.as_str().map_err(|e| fail(&e))?)
        }
        _ => return Err(fail(&"no conversion")),
    })
}

/// Whether [`pg_cell`] reads a PostgreSQL column of catalog type `data_type`
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

/// Column `i` of a MySQL/MariaDB row.
pub(super) fn mysql_cell(row: &sqlx::mysql::MySqlRow, i: usize) -> Result<Cell<'_>, String> {
    let Some(Present { name, ty, .. }) = present(row, i)? else { return Ok(Cell::Null) };
    let fail = |e: &dyn std::fmt::Display| column_error(name, ty, e);
    macro_rules! get {
        ($t:ty) => {
            row.try_get_unchecked::<$t, _>(i).map_err(|e| fail(&e))?
        };
    }
    Ok(match ty {
        "BOOLEAN" => Cell::Bool(get!(bool)),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => Cell::Int(get!(i64)),
        t if t.ends_with("UNSIGNED") || t == "BIT" || t == "YEAR" => Cell::UInt(get!(u64)),
        "FLOAT" => Cell::Float(get!(f32).into()),
        "DOUBLE" => Cell::Float(get!(f64)),
        "DATE" => Cell::Owned(get!(NaiveDate).to_string()),
        "DATETIME" => utc(get!(NaiveDateTime).and_utc()),
        "TIMESTAMP" => utc(get!(DateTime<Utc>)),
        "JSON" => {
            let text = get!(&str);
            serde_json::from_str(text).map_or(Cell::Text(text), Cell::Json)
        }
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
            b64(get!(&[u8]))
        }
        // DECIMAL, TIME (which may exceed a day), text, ENUM and SET: the server's text.
        _ => Cell::Text(get!(&str)),
    })
}

/// Column `i` of a SQLite row, by the value's storage class; a column declared `BOOLEAN`
/// holding 0 or 1 is a boolean.
pub(super) fn sqlite_cell(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Cell<'_>, String> {
    let col = &row.columns()[i];
    let name = col.name();
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    let info = raw.type_info();
    let storage = info.name();
    let declared = col.type_info().name();
    let fail = |e: &dyn std::fmt::Display| column_error(name, storage, e);
    macro_rules! get {
        ($t:ty) => {
            row.try_get_unchecked::<$t, _>(i).map_err(|e| fail(&e))?
        };
    }
    Ok(match storage {
        "NULL" => Cell::Null,
        "INTEGER" if declared.eq_ignore_ascii_case("BOOLEAN") => Cell::Bool(get!(i64) != 0),
        "INTEGER" => Cell::Int(get!(i64)),
        "REAL" => Cell::Float(get!(f64)),
        "BLOB" => b64(get!(&[u8])),
        _ => Cell::Text(get!(&str)),
    })
}
