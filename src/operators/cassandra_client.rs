//! Cassandra sessions from a connection, and the conversions between JSON and CQL values.
//!
//! Connection URI: `cassandra://[user:password@]host[:port][/keyspace][?hosts=h2:9042,h3:9042
//! &consistency=local_quorum]` (port 9042 by default; `hosts` adds contact points).
//!
//! This file owns the JSON <-> CQL type mapping. A conversion error is a sentence about the
//! value (it becomes a dead letter's reason), never a panic: messages are user input.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::frame::response::result::{ColumnType, NativeType};
use scylla::statement::Consistency;
use scylla::value::{CqlTimestamp, CqlValue};
use serde_json::{Value, json};

use super::{Connection, OperatorError, TaskContext};

/// How long connecting may take before the try fails (retryable: the node may be starting).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A session on the connection `conn_id`, and the connection's keyspace if it names one.
pub async fn session(
    ctx: &TaskContext,
    conn_id: &str,
) -> Result<(Session, Option<String>), OperatorError> {
    let conn = ctx.connection(conn_id)?;
    let builder = builder(&conn)?;
    let session = tokio::select! {
        s = builder.build() => s.map_err(|e| {
            OperatorError::Retryable(format!("cannot connect to Cassandra `{conn_id}`: {e}"))
        })?,
        () = ctx.cancel.cancelled() => {
            return Err(OperatorError::Retryable("killed while connecting to Cassandra".into()));
        }
    };
    Ok((session, conn.schema.clone()))
}

pub(crate) fn builder(conn: &Connection) -> Result<SessionBuilder, OperatorError> {
    let Some(host) = &conn.host else {
        return Err(OperatorError::Fatal(format!(
            "connection `{}` names no host: write cassandra://host:9042",
            conn.conn_id
        )));
    };
    let mut b = SessionBuilder::new()
        .known_node(format!("{host}:{}", conn.port.unwrap_or(9042)))
        .connection_timeout(CONNECT_TIMEOUT);
    if let Some(hosts) = conn.extra.get("hosts") {
        b = b.known_nodes(hosts.split(',').map(str::trim).filter(|h| !h.is_empty()));
    }
    if let Some(user) = &conn.login {
        b = b.user(user, conn.password.as_deref().unwrap_or(""));
    }
    let consistency = match conn.extra.get("consistency").map(|c| c.to_ascii_lowercase()) {
        None => Consistency::LocalQuorum,
        Some(c) => parse_consistency(&c).ok_or_else(|| {
            OperatorError::Fatal(format!(
                "connection `{}`: consistency `{c}` is not one of one, two, three, quorum, all, \
                 local_quorum, each_quorum, local_one",
                conn.conn_id
            ))
        })?,
    };
    let profile = ExecutionProfile::builder().consistency(consistency).build();
    Ok(b.default_execution_profile_handle(profile.into_handle()))
}

fn parse_consistency(c: &str) -> Option<Consistency> {
    Some(match c {
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        _ => return None,
    })
}

/// Converts a JSON value to the CQL type of a column. `null` is a CQL null. Strings are parsed
/// for numbers, booleans, timestamps and UUIDs (APIs often quote them); numbers are accepted
/// for text. Timestamps: RFC 3339, `YYYY-MM-DD`, or epoch milliseconds.
pub fn to_cql(value: &Value, typ: &ColumnType<'_>) -> Result<Option<CqlValue>, String> {
    if value.is_null() {
        return Ok(None);
    }
    let ColumnType::Native(native) = typ else {
        return Err(format!("column type {typ:?} is not supported (use text, numbers, ...)"));
    };
    let bad = |what: &str| format!("{value} is not {what}");
    let text = || match value {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let cql = match native {
        NativeType::Text | NativeType::Ascii => CqlValue::Text(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        NativeType::Int => {
            CqlValue::Int(text().and_then(|t| t.parse().ok()).ok_or_else(|| bad("an int"))?)
        }
        NativeType::BigInt => {
            CqlValue::BigInt(text().and_then(|t| t.parse().ok()).ok_or_else(|| bad("a bigint"))?)
        }
        NativeType::SmallInt => CqlValue::SmallInt(
            text().and_then(|t| t.parse().ok()).ok_or_else(|| bad("a smallint"))?,
        ),
        NativeType::Double => {
            CqlValue::Double(text().and_then(|t| t.parse().ok()).ok_or_else(|| bad("a double"))?)
        }
        NativeType::Float => {
            CqlValue::Float(text().and_then(|t| t.parse().ok()).ok_or_else(|| bad("a float"))?)
        }
        NativeType::Boolean => CqlValue::Boolean(match value {
            Value::Bool(b) => *b,
            _ => match text().as_deref() {
                Some("true" | "True" | "1") => true,
                Some("false" | "False" | "0") => false,
                _ => return Err(bad("a boolean")),
            },
        }),
        NativeType::Timestamp => CqlValue::Timestamp(CqlTimestamp(
            timestamp_millis(value).ok_or_else(|| bad("a timestamp"))?,
        )),
        NativeType::Uuid => CqlValue::Uuid(
            text().and_then(|t| uuid::Uuid::parse_str(&t).ok()).ok_or_else(|| bad("a uuid"))?,
        ),
        other => return Err(format!("column type {other:?} is not supported")),
    };
    Ok(Some(cql))
}

fn timestamp_millis(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.timestamp_millis());
            }
            if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis());
            }
            s.parse().ok()
        }
        _ => None,
    }
}

/// A CQL value as JSON, for XCom.
pub fn to_json(value: Option<&CqlValue>) -> Value {
    let Some(v) = value else { return Value::Null };
    match v {
        CqlValue::Ascii(s) | CqlValue::Text(s) => json!(s),
        CqlValue::Boolean(b) => json!(b),
        CqlValue::Int(i) => json!(i),
        CqlValue::BigInt(i) => json!(i),
        CqlValue::SmallInt(i) => json!(i),
        CqlValue::TinyInt(i) => json!(i),
        CqlValue::Double(f) => json!(f),
        CqlValue::Float(f) => json!(f),
        CqlValue::Counter(c) => json!(c.0),
        CqlValue::Uuid(u) => json!(u.to_string()),
        CqlValue::Timeuuid(u) => json!(u.to_string()),
        CqlValue::Timestamp(t) => match DateTime::<Utc>::from_timestamp_millis(t.0) {
            Some(d) => json!(d.to_rfc3339()),
            None => json!(t.0),
        },
        CqlValue::List(items) | CqlValue::Set(items) => {
            Value::Array(items.iter().map(|i| to_json(Some(i))).collect())
        }
        CqlValue::Map(pairs) => Value::Array(
            pairs.iter().map(|(k, v)| json!([to_json(Some(k)), to_json(Some(v))])).collect(),
        ),
        other => json!(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(t: NativeType) -> ColumnType<'static> {
        ColumnType::Native(t)
    }

    #[test]
    fn conversions() {
        let ok = |v: Value, t: NativeType| to_cql(&v, &native(t)).unwrap();
        assert_eq!(ok(json!("x"), NativeType::Text), Some(CqlValue::Text("x".into())));
        assert_eq!(ok(json!(5), NativeType::Text), Some(CqlValue::Text("5".into())));
        assert_eq!(ok(json!("42"), NativeType::Int), Some(CqlValue::Int(42)));
        assert_eq!(ok(json!(7), NativeType::BigInt), Some(CqlValue::BigInt(7)));
        assert_eq!(ok(json!("1.5"), NativeType::Double), Some(CqlValue::Double(1.5)));
        assert_eq!(ok(json!("true"), NativeType::Boolean), Some(CqlValue::Boolean(true)));
        assert_eq!(ok(Value::Null, NativeType::Int), None);
        let ts = ok(json!("2026-01-02T03:04:05.006Z"), NativeType::Timestamp);
        assert_eq!(ts, Some(CqlValue::Timestamp(CqlTimestamp(1_767_323_045_006))));
        assert_eq!(
            ok(json!(1000), NativeType::Timestamp),
            Some(CqlValue::Timestamp(CqlTimestamp(1000)))
        );
        let u = "8a1c2e0f-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(
            ok(json!(u), NativeType::Uuid),
            Some(CqlValue::Uuid(uuid::Uuid::parse_str(u).unwrap()))
        );
        for (v, t) in [
            (json!("x"), NativeType::Int),
            (json!(3_000_000_000i64), NativeType::Int),
            (json!("nope"), NativeType::Uuid),
            (json!("maybe"), NativeType::Boolean),
            (json!({"a": 1}), NativeType::Timestamp),
        ] {
            assert!(to_cql(&v, &native(t.clone())).is_err(), "{v} {t:?}");
        }
    }
}
