//! `type: cql`: statements on Cassandra, one after the other.
//!
//! This file owns running user statements (templated) and turning the last one's rows into a
//! bounded XCom. It must not guess at retries: a statement that failed on the server (syntax,
//! unknown table) is fatal, one that could not reach it (timeout, unavailable) retryable.
//! Schema changes wait for schema agreement, so the next task sees the new table.

use scylla::errors::ExecutionError;
use scylla::value::Row;
use serde_json::{Map, Value, json};

use super::cassandra_client::{session, to_json};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::CqlTask;

/// Runs the statements; the rows of the last one (if it returned any) are the XCom.
pub async fn run(ctx: &TaskContext, task: &CqlTask) -> Result<Outcome, OperatorError> {
    let (session, keyspace) = session(ctx, &task.connection).await?;
    if let Some(ks) = &keyspace {
        session.use_keyspace(ks, false).await.map_err(|e| {
            OperatorError::Fatal(format!("cannot use keyspace `{ks}` of the connection: {e}"))
        })?;
    }
    let mut rendered = Vec::new();
    for s in &task.statements {
        rendered.push(Value::String(ctx.renderer().render(s)?));
    }
    ctx.record("statements", Value::Array(rendered.clone()));
    let mut last = None;
    for (i, stmt) in rendered.iter().filter_map(Value::as_str).enumerate() {
        let result = tokio::select! {
            r = session.query_unpaged(stmt, &[]) => r.map_err(|e| statement_error(i, &e))?,
            () = ctx.cancel.cancelled() => {
                return Err(OperatorError::Retryable(format!("killed during statement {}", i + 1)));
            }
        };
        let schema_change = is_schema_change(stmt);
        if schema_change {
            // A table created here must exist on every node before a downstream task writes.
            let _ = session.await_schema_agreement().await;
        }
        ctx.log.line(format!("statement {} done: {}", i + 1, first_line(stmt)));
        last = Some(result);
    }
    let Some(result) = last else { return Ok(Outcome::Done(None)) };
    let Ok(rows) = result.into_rows_result() else {
        return Ok(Outcome::Done(Some(json!({"statements": task.statements.len()}))));
    };
    let names: Vec<String> = rows.column_specs().iter().map(|c| c.name().to_string()).collect();
    let mut out = Vec::new();
    let iter = rows
        .rows::<Row>()
        .map_err(|e| OperatorError::Fatal(format!("cannot read the rows: {e}")))?;
    for row in iter.take(task.max_rows) {
        let row = row.map_err(|e| OperatorError::Fatal(format!("cannot read a row: {e}")))?;
        let mut obj = Map::new();
        for (name, value) in names.iter().zip(row.columns.iter()) {
            obj.insert(name.clone(), to_json(value.as_ref()));
        }
        out.push(Value::Object(obj));
    }
    ctx.log.line(format!("{} row(s) returned", out.len()));
    Ok(Outcome::Done(Some(Value::Array(out))))
}

fn is_schema_change(stmt: &str) -> bool {
    let head = stmt.trim_start().to_ascii_uppercase();
    ["CREATE", "ALTER", "DROP"].iter().any(|w| head.starts_with(w))
}

fn first_line(stmt: &str) -> String {
    let line = stmt.trim().lines().next().unwrap_or("");
    line.chars().take(120).collect()
}

/// Server-side rejections (syntax, invalid request, unauthorized) are fatal; anything else
/// (timeouts, unavailable, broken connections) may pass.
fn statement_error(i: usize, e: &ExecutionError) -> OperatorError {
    let msg = format!("statement {} failed: {e}", i + 1);
    let text = format!("{e:?}");
    let fatal = ["SyntaxError", "Invalid", "Unauthorized", "AlreadyExists", "ConfigError"]
        .iter()
        .any(|w| text.contains(w));
    if fatal { OperatorError::Fatal(msg) } else { OperatorError::Retryable(msg) }
}
