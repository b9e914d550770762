//! `type: sql_sensor`: one query per poke, done when the first cell of its first row is
//! truthy.
//!
//! This file owns what "truthy" means for a database value. It must not loop or sleep: a
//! poke connects, asks once and disconnects (no session is held between pokes, which hold no
//! executor slot either); `poke_interval`, `timeout` and `soft_fail` are applied outside.

use serde_json::Value;

use super::sql::Db;
use super::sql::prepare::prepare;
use super::sql::task::{connection, db_error};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::SqlSensorTask;

/// One poke.
pub async fn run(ctx: &TaskContext, task: &SqlSensorTask) -> Result<Outcome, OperatorError> {
    let id = &ctx.task.task_id;
    let conn = connection(ctx, &task.connection)?;
    let dialect = Db::dialect_of(&conn).map_err(|e| db_error(id, &e))?;
    let ready = prepare(ctx, dialect, "sql", &task.sql, true, &task.parameters, &task.identifiers)?;
    let mut db = Db::connect(&conn).await.map_err(|e| db_error(id, &e))?;
    let mut first: Option<Value> = None;
    let stmt = &ready[0];
    let result = db
        .execute(&stmt.sql, &stmt.values, &ctx.cancel, &mut |row| {
            if first.is_none() {
                // The first cell: column 0 of the first row.
                first = Some(if row.is_empty() { Value::Null } else { row.value(0)? });
            }
            Ok(())
        })
        .await;
    db.close().await;
    result.map_err(|e| db_error(id, &e))?;
    match first {
        Some(v) if truthy(&v) => Ok(Outcome::Done(Some(v))),
        Some(v) => Ok(Outcome::NotYet(format!("the first cell is {v}"))),
        None => Ok(Outcome::NotYet("the query returned no row".into())),
    }
}

/// Airflow's `SqlSensor` truth: NULL, false, 0 and empty are not done; so are the strings
/// "0", "false", "f", "no" that databases print for false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => {
            let t = s.trim();
            !(t.is_empty()
                || ["0", "false", "f", "no", "n"].iter().any(|f| t.eq_ignore_ascii_case(f)))
        }
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::truthy;

    #[test]
    fn truth_of_first_cells() {
        for t in [json!(true), json!(1), json!(2.5), json!("yes"), json!("2026-01-02"), json!("t")]
        {
            assert!(truthy(&t), "{t}");
        }
        for f in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!("0"),
            json!("FALSE"),
            json!("f"),
        ] {
            assert!(!truthy(&f), "{f}");
        }
    }
}
