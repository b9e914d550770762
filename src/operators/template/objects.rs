//! The callable objects of the template context: `ti` (XCom pulls), `var` and `macros`.
//!
//! They hold owned copies of what they need (XCom, variables), read before rendering: an
//! object must not touch the database, because templates are rendered in places (the
//! scheduler's loop) where waiting on I/O per expression would stall everything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use minijinja::value::{Kwargs, Object, from_args};
use minijinja::{Error, State, Value};

use super::{RenderInput, XComIndex, invalid};

/// Airflow's default XCom key: a task's result.
const RETURN_VALUE: &str = "return_value";

/// `ti` / `task_instance`: the running instance and its `xcom_pull`.
#[derive(Debug, Clone)]
pub(super) struct Ti {
    dag_id: String,
    run_id: String,
    task_id: String,
    map_index: i64,
    try_number: i64,
    /// Tasks with `foreach`: pulling from them gives the list of their instances' values.
    mapped: Arc<BTreeSet<String>>,
    xcoms: XComIndex,
}

impl Ti {
    pub(super) fn new(input: &RenderInput<'_>) -> Ti {
        let mapped = input
            .dag
            .tasks
            .values()
            .filter(|t| t.foreach.is_some())
            .map(|t| t.task_id.clone())
            .collect();
        let mut xcoms: BTreeMap<(String, String), BTreeMap<i64, serde_json::Value>> =
            BTreeMap::new();
        for x in input.xcoms {
            xcoms
                .entry((x.task_id.clone(), x.key.clone()))
                .or_default()
                .insert(x.map_index, x.value.clone());
        }
        Ti {
            dag_id: input.run.dag_id.clone(),
            run_id: input.run.run_id.clone(),
            task_id: input.task_id.to_string(),
            map_index: input.map_index,
            try_number: input.try_number,
            mapped: Arc::new(mapped),
            xcoms: Arc::new(xcoms),
        }
    }

    /// `xcom_pull('t')`, `xcom_pull(task_ids='t' | ['a', 'b'], key=..., map_indexes=...,
    /// default=...)`.
    fn xcom_pull(&self, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs): (Option<Value>, Kwargs) = from_args(args)?;
        let task_ids = match positional {
            Some(v) => Some(v),
            None => kwargs.get::<Option<Value>>("task_ids")?,
        };
        let Some(task_ids) = task_ids.filter(|v| !v.is_none() && !v.is_undefined()) else {
            return Err(invalid("xcom_pull needs the task to pull from: xcom_pull('task_id')"));
        };
        let key: Option<String> = kwargs.get("key")?;
        let key = key.unwrap_or_else(|| RETURN_VALUE.to_string());
        let map_index: Option<i64> = kwargs.get("map_indexes")?;
        let default: Option<Value> = kwargs.get("default")?;
        kwargs.assert_all_used()?;
        let one = |task: &str| self.pull_one(task, &key, map_index, default.clone());
        if let Some(task) = task_ids.as_str() {
            return Ok(one(task));
        }
        let Ok(iter) = task_ids.try_iter() else {
            return Err(invalid(format!(
                "xcom_pull: task_ids must be a task id or a list of them, not {task_ids}"
            )));
        };
        let mut values = Vec::new();
        for t in iter {
            let Some(task) = t.as_str() else {
                return Err(invalid(format!("xcom_pull: task id {t} is not a string")));
            };
            values.push(one(task));
        }
        Ok(Value::from(values))
    }

    /// The value of one task: a list ordered by map index for a mapped task (Airflow's
    /// behaviour), unless one map index is asked for; none (or `default`) when absent.
    fn pull_one(
        &self,
        task: &str,
        key: &str,
        map_index: Option<i64>,
        default: Option<Value>,
    ) -> Value {
        let by_index = self.xcoms.get(&(task.to_string(), key.to_string()));
        let missing = || default.clone().unwrap_or(Value::from(()));
        if let Some(i) = map_index {
            return by_index.and_then(|m| m.get(&i)).map_or_else(missing, Value::from_serialize);
        }
        if self.mapped.contains(task) {
            let values: Vec<&serde_json::Value> = match by_index {
                Some(m) => m.iter().filter(|(i, _)| **i >= 0).map(|(_, v)| v).collect(),
                None => Vec::new(),
            };
            return Value::from_serialize(values);
        }
        by_index.and_then(|m| m.get(&-1)).map_or_else(missing, Value::from_serialize)
    }
}

impl Object for Ti {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "dag_id" => Value::from(self.dag_id.as_str()),
            "run_id" => Value::from(self.run_id.as_str()),
            "task_id" => Value::from(self.task_id.as_str()),
            "map_index" => Value::from(self.map_index),
            "try_number" => Value::from(self.try_number),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "xcom_pull" => self.xcom_pull(args),
            other => Err(invalid(format!("ti has no method `{other}`; use ti.xcom_pull"))),
        }
    }
}

/// `var('name')`, `var('name', 'default')`, `var.value.name`, `var.json.name`,
/// `var.value.get('name', default)`. Environment variables (`UPDRAFT_VAR_<NAME>`) win over the
/// database's, like Airflow's secrets backends over its metastore.
#[derive(Debug)]
pub(super) struct Vars {
    env: BTreeMap<String, String>,
    db: BTreeMap<String, String>,
}

impl Vars {
    pub(super) fn new(settings: &crate::config::Settings, db: &BTreeMap<String, String>) -> Vars {
        Vars { env: settings.variables.clone(), db: db.clone() }
    }

    fn lookup(&self, name: &str) -> Option<&String> {
        // Environment names are stored lower-cased by `Settings`.
        self.env.get(&name.to_lowercase()).or_else(|| self.db.get(name))
    }

    fn get(&self, name: &str, default: Option<Value>, json: bool) -> Result<Value, Error> {
        match (self.lookup(name), default) {
            (Some(text), _) if json => {
                let v: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| invalid(format!("variable `{name}` is not valid JSON ({e})")))?;
                Ok(Value::from_serialize(v))
            }
            (Some(text), _) => Ok(Value::from(text.as_str())),
            (None, Some(default)) => Ok(default),
            (None, None) => Err(invalid(format!(
                "variable `{name}` is not defined: set UPDRAFT_VAR_{} or create it in the UI",
                name.to_uppercase()
            ))),
        }
    }
}

/// `var.value` (text) or `var.json` (parsed JSON).
#[derive(Debug)]
struct VarAccess {
    vars: Arc<Vars>,
    json: bool,
}

impl Object for Vars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let json = match key.as_str()? {
            "value" => false,
            "json" => true,
            _ => return None,
        };
        Some(Value::from_object(VarAccess { vars: self.clone(), json }))
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (name, default): (String, Option<Value>) = from_args(args)?;
        self.get(&name, default, false)
    }
}

impl Object for VarAccess {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        // A missing variable becomes an invalid value carrying an error that names it: with
        // `None` the template would only say "undefined value".
        let name = key.as_str()?;
        Some(self.vars.get(name, None, self.json).unwrap_or_else(Value::from))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "get" {
            return Err(invalid(format!("var.value has no method `{method}`; use get")));
        }
        let (name, default): (String, Option<Value>) = from_args(args)?;
        self.vars.get(&name, Some(default.unwrap_or(Value::from(()))), self.json)
    }
}

/// `macros.ds_add(ds, days)` and `macros.ds_format(ds, in_fmt, out_fmt)`, as in Airflow.
#[derive(Debug)]
pub(super) struct Macros;

impl Object for Macros {
    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "ds_add" => {
                let (ds, days): (String, i64) = from_args(args)?;
                let date = NaiveDate::parse_from_str(&ds, "%Y-%m-%d").map_err(|e| {
                    invalid(format!("macros.ds_add: `{ds}` is not YYYY-MM-DD ({e})"))
                })?;
                let out = chrono::Duration::try_days(days)
                    .and_then(|d| date.checked_add_signed(d))
                    .ok_or_else(|| {
                        invalid(format!("macros.ds_add: {days} days is out of range"))
                    })?;
                Ok(Value::from(out.format("%Y-%m-%d").to_string()))
            }
            "ds_format" => {
                let (ds, in_fmt, out_fmt): (String, String, String) = from_args(args)?;
                ds_format(&ds, &in_fmt, &out_fmt).map(Value::from)
            }
            other => Err(invalid(format!("macros has no `{other}`; available: ds_add, ds_format"))),
        }
    }
}

/// Re-formats a date (strftime formats, as Python's): a date-time format first, then a date.
fn ds_format(ds: &str, in_fmt: &str, out_fmt: &str) -> Result<String, Error> {
    let parsed = NaiveDateTime::parse_from_str(ds, in_fmt)
        .or_else(|_| NaiveDate::parse_from_str(ds, in_fmt).map(|d| d.and_time(Default::default())))
        .map_err(|e| {
            invalid(format!("macros.ds_format: `{ds}` does not match `{in_fmt}` ({e})"))
        })?;
    let mut out = String::new();
    // chrono reports a bad output format through fmt::Error rather than panicking only when
    // written with `write!`; `to_string` would panic on it.
    use std::fmt::Write;
    write!(out, "{}", parsed.format(out_fmt))
        .map_err(|_| invalid(format!("macros.ds_format: `{out_fmt}` is not a valid format")))?;
    Ok(out)
}
