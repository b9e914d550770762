//! The cursor of `sql_to_kafka`: its stored form, and the polling queries that read the rows
//! after it, in cursor order, per dialect.
//!
//! In `timestamp+incrementing` the cursor is `(ts, id)` and the next rows are those with
//! `(ts, id) > (:ts, :id)`, written portably as `ts > :ts OR (ts = :ts AND id > :id)`, ordered
//! by both, and only those older than the database's clock minus the lag (the clock is read
//! in the query, so the application's and Updraft's clocks never matter). The timestamp
//! travels as the database's own text of the value and is cast back to the column's type, so
//! no precision or zone is lost on the way. The message columns are selected as they are and
//! read in Rust by the SQL layer's mapping of column types to JSON, the `sql` task's; on
//! PostgreSQL a column of a type that mapping does not know is selected as `to_json(column)`.
//!
//! Invariants: identifiers are quoted by the dialect, values bound; a batch cut by the LIMIT
//! is completed to the end of its last timestamp group ([`PollQuery::group_rest`]) before the
//! cursor moves, so a cursor never stops inside a group.

use serde_json::{Value, json};

use super::sql_link::{Dialect, SqlText};
use crate::dag::kinds::SourceMode;

/// A position in the table: everything up to and including it was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The timestamp, as the database prints it (`timestamp+incrementing` only).
    pub ts: Option<String>,
    /// The id.
    pub id: i64,
}

impl Position {
    /// The stored form: `{"id": 42}` or `{"ts": "...", "id": 42}`.
    pub fn to_json(&self) -> Value {
        match &self.ts {
            Some(ts) => json!({"ts": ts, "id": self.id}),
            None => json!({"id": self.id}),
        }
    }

    /// Reads a stored cursor; it must have the shape of `mode` (a task whose mode changed
    /// needs a new `cursor_name`).
    pub fn from_json(v: &Value, mode: SourceMode) -> Result<Position, String> {
        let id = v.get("id").and_then(Value::as_i64);
        let ts = v.get("ts").and_then(Value::as_str);
        match (mode, id, ts) {
            (SourceMode::Incrementing, Some(id), None) => Ok(Position { ts: None, id }),
            (SourceMode::TimestampIncrementing, Some(id), Some(ts)) => {
                Ok(Position { ts: Some(ts.to_string()), id })
            }
            _ => Err(format!(
                "the stored cursor {v} does not fit this mode; give the task a new \
                 `cursor_name` (or delete the old cursor) to read the table again"
            )),
        }
    }
}

/// A value bound to a polling query.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// Where the message columns start in a polled row: after the id, the timestamp and the key.
pub const FIRST_MESSAGE_COLUMN: usize = 3;

/// A column of the messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageColumn {
    /// Its plain name.
    pub name: String,
    /// How it is selected.
    pub select: Select,
}

/// How a message column is selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// As it is.
    Column,
    /// As `to_json(column)`: a PostgreSQL type the SQL layer does not read itself.
    ToJson,
    /// As `CAST(column AS CHAR)`: a MySQL text column. With a binary collation (`_bin`, and
    /// MariaDB's `JSON`) the server flags it binary, which the driver cannot tell from
    /// `VARBINARY`; the cast gives it the connection's character set.
    Text,
}

/// The shape of a table's polling queries, built once per task.
#[derive(Debug, Clone)]
pub struct PollQuery {
    pub dialect: Dialect,
    /// Quoted table name.
    pub table: String,
    /// Quoted id column.
    pub id: String,
    /// Quoted timestamp column and the type its cursor value is cast back to.
    pub ts: Option<(String, String)>,
    /// Message columns, in message order.
    pub columns: Vec<MessageColumn>,
    /// Key columns (plain names).
    pub key: Vec<String>,
    /// The lag, in microseconds.
    pub lag_us: u128,
}

impl PollQuery {
    /// The selected expressions: id, timestamp text (or NULL), key text (one column's text, or
    /// a JSON array of several), then the message columns under their own names, from
    /// [`FIRST_MESSAGE_COLUMN`] on.
    fn select_list(&self) -> String {
        let d = self.dialect;
        let col = |c: &str| format!("t.{}", d.quote(c));
        let text = match d {
            Dialect::MySql => "CHAR",
            Dialect::Postgres | Dialect::Sqlite => "TEXT",
        };
        let int = match d {
            Dialect::MySql => "SIGNED",
            Dialect::Postgres | Dialect::Sqlite => "BIGINT",
        };
        let ts = match &self.ts {
            Some((c, _)) => format!("CAST(t.{c} AS {text})"),
            None => format!("CAST(NULL AS {text})"),
        };
        let key = match (self.key.as_slice(), d) {
            ([one], _) => format!("CAST({} AS {text})", col(one)),
            (many, Dialect::Postgres) => {
                let cols: Vec<String> = many.iter().map(|c| col(c)).collect();
                format!("CAST(json_build_array({}) AS TEXT)", cols.join(", "))
            }
            (many, Dialect::MySql | Dialect::Sqlite) => {
                let cols: Vec<String> = many.iter().map(|c| col(c)).collect();
                format!("JSON_ARRAY({})", cols.join(", "))
            }
        };
        let mut list = format!("CAST(t.{} AS {int}), {ts}, {key}", self.id);
        for c in &self.columns {
            list.push_str(", ");
            let (name, expr) = (d.quote(&c.name), col(&c.name));
            list.push_str(&match c.select {
                Select::Column => expr,
                Select::ToJson => format!("to_json({expr}) AS {name}"),
                Select::Text => format!("CAST({expr} AS CHAR) AS {name}"),
            });
        }
        list
    }

    /// Only rows older than the database's clock minus the lag.
    fn horizon(&self, ts: &str) -> String {
        let lag = self.lag_us;
        match self.dialect {
            Dialect::Postgres => {
                format!("t.{ts} < CURRENT_TIMESTAMP - INTERVAL '{lag} microseconds'")
            }
            Dialect::MySql => format!("t.{ts} < CURRENT_TIMESTAMP(6) - INTERVAL {lag} MICROSECOND"),
            Dialect::Sqlite => {
                let secs = lag as f64 / 1e6;
                format!("t.{ts} < strftime('%Y-%m-%d %H:%M:%f', 'now', '-{secs} seconds')")
            }
        }
    }

    fn cast_ts(&self, n: usize) -> String {
        let p = self.dialect.placeholder(n);
        match &self.ts {
            Some((_, typ)) if self.dialect != Dialect::Sqlite => format!("CAST({p} AS {typ})"),
            _ => p,
        }
    }

    /// The next at most `limit` rows after `after` (from the start when `None`).
    pub fn next(&self, after: Option<&Position>, limit: u64) -> (String, Vec<Bind>) {
        let mut conds = Vec::new();
        let mut binds = Vec::new();
        let id = &self.id;
        let order = match &self.ts {
            Some((ts, _)) => {
                conds.push(self.horizon(ts));
                if let Some(Position { ts: Some(at), id: at_id }) = after {
                    let (a, b, c) = (self.cast_ts(1), self.cast_ts(2), self.dialect.placeholder(3));
                    conds.push(format!("(t.{ts} > {a} OR (t.{ts} = {b} AND t.{id} > {c}))"));
                    binds.extend([
                        Bind::Text(at.clone()),
                        Bind::Text(at.clone()),
                        Bind::Int(*at_id),
                    ]);
                }
                format!("t.{ts}, t.{id}")
            }
            None => {
                if let Some(p) = after {
                    conds.push(format!("t.{id} > {}", self.dialect.placeholder(1)));
                    binds.push(Bind::Int(p.id));
                }
                format!("t.{id}")
            }
        };
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT {} FROM {} t{filter} ORDER BY {order} LIMIT {limit}",
            self.select_list(),
            self.table
        );
        (sql, binds)
    }

    /// The rows of timestamp group `at.ts` after `at.id`, at most `limit`: what completes a
    /// batch the LIMIT cut inside a group.
    pub fn group_rest(&self, at: &Position, limit: u64) -> Option<(String, Vec<Bind>)> {
        let ((ts, _), Some(at_ts)) = (self.ts.as_ref()?, &at.ts) else { return None };
        let id = &self.id;
        let sql = format!(
            "SELECT {} FROM {} t WHERE t.{ts} = {} AND t.{id} > {} ORDER BY t.{id} LIMIT {limit}",
            self.select_list(),
            self.table,
            self.cast_ts(1),
            self.dialect.placeholder(2),
        );
        Some((sql, vec![Bind::Text(at_ts.clone()), Bind::Int(at.id)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(dialect: Dialect, ts: bool) -> PollQuery {
        PollQuery {
            dialect,
            table: dialect.quote("s.t"),
            id: dialect.quote("id"),
            ts: ts.then(|| (dialect.quote("ts"), "timestamptz".to_string())),
            columns: ["id", "ts", "v"]
                .map(|c| MessageColumn {
                    name: c.into(),
                    select: if c == "v" { Select::ToJson } else { Select::Column },
                })
                .to_vec(),
            key: vec!["id".into()],
            lag_us: 5_000_000,
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_another_mode() {
        let p = Position { ts: Some("2026-01-01 00:00:00.5+00".into()), id: 7 };
        let v = p.to_json();
        assert_eq!(Position::from_json(&v, SourceMode::TimestampIncrementing), Ok(p));
        assert!(Position::from_json(&v, SourceMode::Incrementing).is_err());
        let p = Position { ts: None, id: 7 };
        assert_eq!(Position::from_json(&p.to_json(), SourceMode::Incrementing), Ok(p));
        assert!(Position::from_json(&json!({"id": "x"}), SourceMode::Incrementing).is_err());
    }

    #[test]
    fn postgres_reads_after_the_cursor_and_below_the_lag_horizon() {
        let q = query(Dialect::Postgres, true);
        let at = Position { ts: Some("T".into()), id: 3 };
        let (sql, binds) = q.next(Some(&at), 100);
        assert_eq!(
            sql,
            "SELECT CAST(t.\"id\" AS BIGINT), CAST(t.\"ts\" AS TEXT), CAST(t.\"id\" AS TEXT), \
             t.\"id\", t.\"ts\", to_json(t.\"v\") AS \"v\" FROM \"s\".\"t\" t WHERE t.\"ts\" < \
             CURRENT_TIMESTAMP - INTERVAL '5000000 microseconds' AND (t.\"ts\" > CAST($1 AS timestamptz) OR (t.\"ts\" = CAST($2 AS \
             timestamptz) AND t.\"id\" > $3)) ORDER BY t.\"ts\", t.\"id\" LIMIT 100"
        );
        assert_eq!(binds, vec![Bind::Text("T".into()), Bind::Text("T".into()), Bind::Int(3)]);
        let (first, binds) = q.next(None, 100);
        assert!(first.contains("WHERE t.\"ts\" < CURRENT_TIMESTAMP") && binds.is_empty());
    }

    #[test]
    fn mysql_and_incrementing_shapes() {
        let q = query(Dialect::MySql, true);
        let (sql, _) = q.next(None, 10);
        assert!(sql.starts_with("SELECT CAST(t.`id` AS SIGNED), CAST(t.`ts` AS CHAR), "), "{sql}");
        assert!(sql.contains("t.`ts` < CURRENT_TIMESTAMP(6) - INTERVAL 5000000 MICROSECOND"));
        let q = query(Dialect::MySql, false);
        let (sql, binds) = q.next(Some(&Position { ts: None, id: 9 }), 10);
        assert!(sql.ends_with("WHERE t.`id` > ? ORDER BY t.`id` LIMIT 10"), "{sql}");
        assert_eq!(binds, vec![Bind::Int(9)]);
        assert!(q.group_rest(&Position { ts: None, id: 9 }, 10).is_none());
    }

    #[test]
    fn the_rest_of_a_cut_group_is_read_by_id() {
        let q = query(Dialect::Postgres, true);
        let (sql, binds) = q.group_rest(&Position { ts: Some("T".into()), id: 4 }, 50).unwrap();
        assert!(
            sql.ends_with(
                "WHERE t.\"ts\" = CAST($1 AS timestamptz) AND t.\"id\" > $2 ORDER BY t.\"id\" \
                 LIMIT 50"
            ),
            "{sql}"
        );
        assert_eq!(binds, vec![Bind::Text("T".into()), Bind::Int(4)]);
    }
}
