//! Jinja templating of task fields (minijinja), with Airflow's context names.
//!
//! This file owns the template context of one task instance (`ds`, `params`, `ti.xcom_pull`,
//! `var`, `macros`, ...) and how templates render to strings, JSON values and `foreach` lists.
//! The context objects themselves live in `template/objects.rs`; escaping by context (a value
//! in a bash command is quoted for the shell state where it lands; `| raw` opts out) in
//! `template/escape.rs` and `template/shell.rs`.
//!
//! Invariants: an undefined name is an error (`UndefinedBehavior::Strict`, like Airflow's
//! `StrictUndefined`): a typo must fail the task, not send an empty string to a user system.
//! Rendering does no I/O: everything the context needs (XCom, variables) is read beforehand and
//! passed in, so the scheduler can render `foreach` templates without a running task. A value
//! rendered in an escaping context reaches its target only through that context's escaper.

mod escape;
mod objects;
mod shell;

pub use escape::Escaping;

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

use super::{OperatorError, TaskContext};
use crate::config::Settings;
use crate::dag::Dag;
use crate::store::{RunRow, XComRow};

/// Everything a template context is built from, borrowed.
pub struct RenderInput<'a> {
    /// The DAG: its params, and which tasks are mapped (their XCom pulls are lists).
    pub dag: &'a Dag,
    /// The task whose fields are rendered.
    pub task_id: &'a str,
    /// The run.
    pub run: &'a RunRow,
    /// -1 unless the instance is mapped.
    pub map_index: i64,
    /// The item of a mapped instance (`{{ item }}`).
    pub item: Option<&'a serde_json::Value>,
    /// The current try (1-based).
    pub try_number: i64,
    /// XCom pushed so far in the run.
    pub xcoms: &'a [XComRow],
    /// Settings: variables from the environment.
    pub settings: &'a Settings,
    /// Variables from the metadata database.
    pub db_variables: &'a BTreeMap<String, String>,
    /// The events an asset-triggered run was created for, by asset URI.
    pub triggering_asset_events: Option<&'a serde_json::Value>,
}

/// Renders templates over one task instance's context. Build one per try (or per `foreach`
/// expansion) and reuse it for every field.
#[derive(Debug, Clone)]
pub struct Renderer {
    env: Environment<'static>,
    ctx: BTreeMap<String, Value>,
}

/// Whether `text` contains template syntax. Text without it is returned as is, without
/// building a context: most fields of most tasks are plain.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

impl Renderer {
    /// The template names of this try (`ds`, `params`, `var`...), for code that evaluates
    /// its own expressions over them (the Kafka tasks' transforms).
    pub fn context(&self) -> &BTreeMap<String, Value> {
        &self.ctx
    }

    /// The renderer of a running try.
    pub fn for_task(ctx: &TaskContext) -> Renderer {
        Renderer::new(RenderInput {
            dag: &ctx.dag,
            task_id: &ctx.task.task_id,
            run: &ctx.run,
            map_index: ctx.ti.map_index,
            item: ctx.ti.map_item.as_ref(),
            try_number: ctx.ti.try_number,
            xcoms: &ctx.xcoms,
            settings: &ctx.settings,
            db_variables: &ctx.db_variables,
            triggering_asset_events: Some(&ctx.triggering_asset_events),
        })
    }

    /// A renderer from its parts (the scheduler uses it for `foreach` templates).
    pub fn new(input: RenderInput<'_>) -> Renderer {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Rendering plain text must be the identity (the fast path returns it untouched), so a
        // trailing newline, as YAML block scalars end with, is kept like everything else.
        env.set_keep_trailing_newline(true);
        // In an escaping context values leave the engine marked, to be escaped for where they
        // land; `| raw` pastes one verbatim (and `dags validate` warns about each use).
        env.set_formatter(escape::formatter);
        env.add_filter("raw", escape::raw);
        // Bash XComs are strings; `{{ ti.xcom_pull('t') | fromjson }}` reads JSON printed by a
        // command.
        env.add_filter("fromjson", |s: String| -> Result<Value, Error> {
            let v: serde_json::Value = serde_json::from_str(&s).map_err(|e| {
                Error::new(ErrorKind::InvalidOperation, format!("fromjson: not JSON ({e})"))
            })?;
            Ok(Value::from_serialize(&v))
        });

        let run = input.run;
        let date = run.logical_date;
        let rfc = |t: chrono::DateTime<chrono::Utc>| Value::from(t.to_rfc3339());
        // The run's conf overrides the DAG's params key by key (Airflow's default).
        let mut params = input.dag.params.clone();
        params.extend(run.conf.iter().map(|(k, v)| (k.clone(), v.clone())));
        let conf = Value::from_serialize(&run.conf);

        let mut ctx = BTreeMap::new();
        let mut set = |k: &str, v: Value| {
            ctx.insert(k.to_string(), v);
        };
        set("ds", Value::from(date.format("%Y-%m-%d").to_string()));
        set("ds_nodash", Value::from(date.format("%Y%m%d").to_string()));
        set("ts", rfc(date));
        set("ts_nodash", Value::from(date.format("%Y%m%dT%H%M%S").to_string()));
        set("logical_date", rfc(date));
        set("data_interval_start", rfc(run.data_interval_start));
        set("data_interval_end", rfc(run.data_interval_end));
        set("run_id", Value::from(run.run_id.as_str()));
        set("dag_id", Value::from(run.dag_id.as_str()));
        set("task_id", Value::from(input.task_id));
        set("map_index", Value::from(input.map_index));
        set("try_number", Value::from(input.try_number));
        set("params", Value::from_serialize(&params));
        set("conf", conf.clone());
        set(
            "dag_run",
            Value::from_serialize(serde_json::json!({
                "dag_id": run.dag_id,
                "run_id": run.run_id,
                "run_type": run.run_type.as_str(),
                "logical_date": date.to_rfc3339(),
                "conf": run.conf,
            })),
        );
        if let Some(item) = input.item {
            set("item", Value::from_serialize(item));
        }
        let ti = objects::Ti::new(&input);
        set("ti", Value::from_object(ti.clone()));
        set("task_instance", Value::from_object(ti));
        set("var", Value::from_object(objects::Vars::new(input.settings, input.db_variables)));
        set("macros", Value::from_object(objects::Macros));
        let events =
            input.triggering_asset_events.cloned().unwrap_or_else(|| serde_json::json!({}));
        set("triggering_asset_events", Value::from_serialize(&events));
        Renderer { env, ctx }
    }

    /// Adds (or replaces) a context variable, e.g. `response` for an http sensor's check.
    pub fn set(&mut self, name: &str, value: &serde_json::Value) {
        self.ctx.insert(name.to_string(), Value::from_serialize(value));
    }

    /// Renders `text` with values written as they print. Text without template syntax comes
    /// back as is.
    pub fn render(&self, text: &str) -> Result<String, OperatorError> {
        self.render_as(Escaping::Text, text)
    }

    /// Renders `text` for `escaping`: each value is escaped for the spot of the output it
    /// lands in (see `template/escape.rs`). Text without template syntax comes back as is.
    pub fn render_as(&self, escaping: Escaping, text: &str) -> Result<String, OperatorError> {
        if !is_template(text) {
            return Ok(text.to_string());
        }
        if escaping == Escaping::Text {
            return self.env.render_str(text, &self.ctx).map_err(|e| template_error(e, text));
        }
        let (key, rendered) = escape::Key::with_fresh(|| {
            self.env.render_named_str(escaping.template_name(), text, &self.ctx)
        });
        let rendered = rendered.map_err(|e| template_error(e, text))?;
        escape::finish(escaping, key, &rendered).map_err(|e| template_error(e, text))
    }

    /// Renders a SQL statement: the text with each value's spot marked by a sentinel, and the
    /// values in order, to be bound as parameters (`operators::sql`); `| raw` values are part
    /// of the text. Text without template syntax comes back as is, with no values.
    pub fn render_sql(&self, text: &str) -> Result<(String, Vec<String>), OperatorError> {
        if !is_template(text) {
            return Ok((text.to_string(), Vec::new()));
        }
        let (key, rendered) = escape::Key::with_fresh(|| {
            self.env.render_named_str(Escaping::Sql.template_name(), text, &self.ctx)
        });
        let rendered = rendered.map_err(|e| template_error(e, text))?;
        escape::sql_values(key, &rendered).map_err(|e| template_error(e, text))
    }

    /// Renders every string inside a JSON value (object keys stay as written).
    pub fn render_json(
        &self,
        value: &serde_json::Value,
    ) -> Result<serde_json::Value, OperatorError> {
        use serde_json::Value as J;
        Ok(match value {
            J::String(s) => J::String(self.render(s)?),
            J::Array(items) => {
                J::Array(items.iter().map(|v| self.render_json(v)).collect::<Result<_, _>>()?)
            }
            J::Object(map) => {
                J::Object(
                    map.iter()
                        .map(|(k, v)| Ok((k.clone(), self.render_json(v)?)))
                        .collect::<Result<_, OperatorError>>()?,
                )
            }
            other => other.clone(),
        })
    }

    /// Renders a `foreach` template to its list of items.
    ///
    /// A lone `{{ expr }}` is evaluated as an expression, so a list XCom stays a list with its
    /// types instead of going through its printed form. Anything else is rendered and parsed
    /// as JSON, then YAML. A string result holding a JSON list (bash XComs are strings) is
    /// parsed too. Anything but a list is an error.
    pub fn render_list(&self, text: &str) -> Result<Vec<serde_json::Value>, OperatorError> {
        let value = match lone_expression(text) {
            Some(expr) => {
                let fail = |e| template_error(e, expr);
                let compiled = self.env.compile_expression_owned(expr.to_string()).map_err(fail)?;
                let v = compiled.eval(&self.ctx).map_err(fail)?;
                // An expression's result is not printed, so strict mode does not catch an
                // undefined one; do it here.
                if v.is_undefined() {
                    return Err(OperatorError::Fatal(format!(
                        "template error: undefined value: `{expr}`"
                    )));
                }
                serde_json::to_value(&v).map_err(|e| {
                    OperatorError::Fatal(format!("foreach: the value is not JSON-like ({e})"))
                })?
            }
            None => serde_json::Value::String(self.render(text)?),
        };
        let value = match value {
            serde_json::Value::String(s) => parse_list_text(&s)?,
            other => other,
        };
        match value {
            serde_json::Value::Array(items) => Ok(items),
            other => Err(OperatorError::Fatal(format!(
                "foreach must give a list, got {}",
                short(&other.to_string())
            ))),
        }
    }
}

/// The expression of a template that is exactly one `{{ ... }}` (with optional `-` trim marks).
fn lone_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    Some(inner.trim())
}

/// Parses rendered `foreach` text: JSON first (what XComs print), then YAML (what users write).
fn parse_list_text(text: &str) -> Result<serde_json::Value, OperatorError> {
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    serde_yaml::from_str(text).map_err(|e| {
        OperatorError::Fatal(format!(
            "foreach: `{}` is neither a JSON nor a YAML list ({e})",
            short(text)
        ))
    })
}

/// The first 200 characters of `text`, for messages.
fn short(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// A template failure is fatal: rendering again gives the same result. The message names the
/// problem, the line and the failing expression, so the author can find it in the YAML.
fn template_error(e: Error, source: &str) -> OperatorError {
    let mut msg = format!("template error: {}", e.kind());
    if let Some(detail) = e.detail() {
        msg.push_str(&format!(": {detail}"));
    }
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (line {line}"));
        if let Some(snippet) = e.range().and_then(|r| source.get(r)) {
            msg.push_str(&format!(": `{}`", short(snippet)));
        }
        msg.push(')');
    }
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        msg.push_str(&format!(": {c}"));
        cause = c.source();
    }
    OperatorError::Fatal(msg)
}

/// Shared by the context objects: an error naming the problem for the template author.
fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// The XCom values of a run, ready for `xcom_pull`: per (task, key), values by map index.
type XComIndex = Arc<BTreeMap<(String, String), BTreeMap<i64, serde_json::Value>>>;

#[cfg(test)]
#[path = "template/tests.rs"]
mod tests;
