//! From a task's SQL fields to statements ready to run: render (template values become
//! parameters), split for the dialect, render and bind `parameters:`, check and quote
//! `identifiers:`. Shared by `sql` and `sql_sensor`.
//!
//! Invariant: every error names the task and the field (and the statement's line), and
//! nothing here talks to a database.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Dialect, Slot, quote_identifier, rewrite, split};
use crate::operators::{OperatorError, TaskContext};

/// One statement, ready for `Db::execute`.
pub(crate) struct Ready {
    /// Its line in the field's text.
    pub line: usize,
    /// The statement with the dialect's placeholders.
    pub sql: String,
    /// One value per placeholder.
    pub values: Vec<Value>,
}

impl Ready {
    /// The statement on one line, cut at 160 characters, for the log.
    pub(crate) fn shown(&self) -> String {
        let one_line = self.sql.split_whitespace().collect::<Vec<_>>().join(" ");
        match one_line.char_indices().nth(160) {
            Some((i, _)) => format!("{}...", &one_line[..i]),
            None => one_line,
        }
    }
}

/// The statements of `text` (field `field` of the context's task). With `single`, the text
/// must hold exactly one.
pub(crate) fn prepare(
    ctx: &TaskContext,
    dialect: Dialect,
    field: &str,
    text: &str,
    single: bool,
    parameters: &BTreeMap<String, Value>,
    identifiers: &BTreeMap<String, String>,
) -> Result<Vec<Ready>, OperatorError> {
    let id = &ctx.task.task_id;
    let fatal = |msg: String| OperatorError::Fatal(format!("task `{id}`, `{field}`: {msg}"));
    let renderer = ctx.renderer();
    let (text, template_values) = renderer.render_sql(text)?;
    let statements = split(&text, dialect).map_err(|e| fatal(e.to_string()))?;
    if single && statements.len() != 1 {
        return Err(fatal(match statements.get(1) {
            Some(second) => format!(
                "holds more than one statement for {} (the second starts on line {}); use \
                 `script:` for several",
                dialect.name(),
                second.line
            ),
            None => "holds no statement".to_string(),
        }));
    }
    let mut params = BTreeMap::new();
    for (name, value) in parameters {
        let rendered = renderer
            .render_json(value)
            .map_err(|e| OperatorError::Fatal(format!("task `{id}`, `parameters.{name}`: {e}")))?;
        params.insert(name.clone(), rendered);
    }
    ctx.record("parameters", Value::Object(params.clone().into_iter().collect()));
    let mut idents = BTreeMap::new();
    for (name, template) in identifiers {
        let wrong =
            |e: String| OperatorError::Fatal(format!("task `{id}`, `identifiers.{name}`: {e}"));
        let rendered = renderer.render(template).map_err(|e| wrong(e.to_string()))?;
        let quoted = quote_identifier(&rendered, dialect).map_err(|e| wrong(e.to_string()))?;
        idents.insert(name.clone(), quoted);
    }
    let mut out = Vec::with_capacity(statements.len());
    for (i, stmt) in statements.iter().enumerate() {
        let at = |e: String| fatal(format!("statement {} (line {}): {e}", i + 1, stmt.line));
        let bound = rewrite(&stmt.text, dialect, &|n| params.contains_key(n), &idents)
            .map_err(|e| at(e.to_string()))?;
        let values = bound
            .slots
            .iter()
            .map(|slot| match slot {
                Slot::Param(name) => Ok(params[name].clone()),
                Slot::Value(n) => template_values
                    .get(*n)
                    .map(|v| Value::String(v.clone()))
                    .ok_or_else(|| at("a template value marker without its value".into())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Ready { line: stmt.line, sql: bound.sql, values });
    }
    let shown: Vec<Value> = out.iter().map(|r| Value::String(r.sql.clone())).collect();
    ctx.record(field, Value::Array(shown));
    Ok(out)
}
