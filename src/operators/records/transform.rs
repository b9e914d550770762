//! The `transform:` steps of a Kafka task, applied to each record's JSON value in order:
//! `select`, `rename`, `drop`, `filter`, `compute`, `flatten`.
//!
//! Expressions are compiled once per try ([`Program::compile`]) and evaluated per record with
//! the record's fields as names, `record` as the whole record, and the try's template names
//! (`ds`, `params`, `var`...) where the record has no field of that name. Undefined names are
//! Jinja's lenient undefined (a missing field compares unequal and is false), unlike templates,
//! because records of one topic rarely all carry every optional field.
//!
//! Invariant: a step never panics on a record; a record it cannot transform (not an object, an
//! expression that fails on it) is an error naming the step, which a sink sends to the
//! dead-letter topic and a source fails its try with. The per-record path does not go through
//! the template engine for anything but expressions, and an expression reads the record in
//! place (no copy of it into the engine).

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, Expression, Value as Mj};
use serde_json::{Map, Value};

use crate::dag::kinds::Transform;
use crate::operators::OperatorError;

/// The steps of one task and the environment their expressions compile in.
pub struct Program {
    env: Environment<'static>,
    steps: Vec<Transform>,
    globals: Arc<BTreeMap<String, Mj>>,
}

/// A compiled step.
enum Step<'p> {
    Select(Vec<Vec<&'p str>>),
    Rename(Vec<(Vec<&'p str>, Vec<&'p str>)>),
    Drop(Vec<Vec<&'p str>>),
    Filter(Expression<'p, 'static>),
    Compute(Vec<(Vec<&'p str>, Expression<'p, 'static>)>),
    Flatten(&'p str),
}

/// The compiled steps; borrows its [`Program`].
pub struct Pipeline<'p> {
    steps: Vec<Step<'p>>,
    globals: Arc<BTreeMap<String, Mj>>,
}

/// What became of one record.
#[derive(Debug, PartialEq)]
pub enum Applied {
    /// The record, transformed.
    Keep(Value),
    /// A `filter` was false.
    Filtered,
}

impl Program {
    /// `globals` are the try's template names (`Renderer::context`).
    pub fn new(steps: &[Transform], globals: BTreeMap<String, Mj>) -> Program {
        Program { env: Environment::new(), steps: steps.to_vec(), globals: Arc::new(globals) }
    }

    /// The program of a try's task: its steps over the try's template names.
    pub fn for_task(
        ctx: &crate::operators::TaskContext,
        settings: &crate::dag::kinds::RecordSettings,
    ) -> Program {
        Program::new(&settings.transform, ctx.renderer().context().clone())
    }

    /// Compiles every expression; a failure here is the task's error (the load-time check
    /// compiles the same text, so it does not happen with a loaded DAG).
    pub fn compile(&self) -> Result<Pipeline<'_>, OperatorError> {
        fn split(p: &str) -> Vec<&str> {
            p.split('.').collect()
        }
        let expr = |text: &'_ String, what: &str| {
            self.env.compile_expression_owned(text.clone()).map_err(|e| {
                OperatorError::Fatal(format!("transform `{what}`: `{text}` does not compile: {e}"))
            })
        };
        let mut steps = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            steps.push(match step {
                Transform::Select(f) => Step::Select(f.iter().map(|p| split(p)).collect()),
                Transform::Drop(f) => Step::Drop(f.iter().map(|p| split(p)).collect()),
                Transform::Rename(m) => {
                    Step::Rename(m.iter().map(|(a, b)| (split(a), split(b))).collect())
                }
                Transform::Filter(e) => Step::Filter(expr(e, "filter")?),
                Transform::Compute(m) => {
                    let mut out = Vec::with_capacity(m.len());
                    for (field, e) in m {
                        out.push((split(field), expr(e, &format!("compute.{field}"))?));
                    }
                    Step::Compute(out)
                }
                Transform::Flatten(f) => Step::Flatten(f.separator.as_str()),
            });
        }
        Ok(Pipeline { steps, globals: self.globals.clone() })
    }
}

impl Pipeline<'_> {
    /// Whether there is nothing to do (records pass untouched, and need not be parsed).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs every step on `record`; the error names the step (1-based) and what failed.
    pub fn apply(&self, mut record: Value) -> Result<Applied, String> {
        for (i, step) in self.steps.iter().enumerate() {
            let n = i + 1;
            let object = |v: &Value| {
                if v.is_object() {
                    Ok(())
                } else {
                    Err(format!("transform step {n}: the record is not a JSON object"))
                }
            };
            match step {
                Step::Select(paths) => {
                    object(&record)?;
                    let mut out = Value::Object(Map::new());
                    for p in paths {
                        if let Some(v) = take(&mut record, p) {
                            put(&mut out, p, v);
                        }
                    }
                    record = out;
                }
                Step::Rename(pairs) => {
                    object(&record)?;
                    for (from, to) in pairs {
                        if let Some(v) = take(&mut record, from) {
                            put(&mut record, to, v);
                        }
                    }
                }
                Step::Drop(paths) => {
                    object(&record)?;
                    for p in paths {
                        take(&mut record, p);
                    }
                }
                Step::Filter(e) => {
                    let (keep, back) = self
                        .eval(e, record)
                        .map_err(|why| format!("transform step {n} (filter): {why}"))?;
                    record = back;
                    if !keep.is_true() {
                        return Ok(Applied::Filtered);
                    }
                }
                Step::Compute(fields) => {
                    object(&record)?;
                    for (path, e) in fields {
                        let (value, back) = self.eval(e, record).map_err(|why| {
                            format!("transform step {n} (compute.{}): {why}", path.join("."))
                        })?;
                        record = back;
                        let json = if value.is_undefined() {
                            Value::Null
                        } else {
                            serde_json::to_value(&value).map_err(|e| {
                                format!("transform step {n} (compute.{}): {e}", path.join("."))
                            })?
                        };
                        put(&mut record, path, json);
                    }
                }
                Step::Flatten(sep) => {
                    let Value::Object(map) = record else {
                        return Err(format!("transform step {n}: the record is not a JSON object"));
                    };
                    let mut out = Map::with_capacity(map.len());
                    flatten_into(&mut out, String::new(), map, sep);
                    record = Value::Object(out);
                }
            }
        }
        Ok(Applied::Keep(record))
    }

    /// Evaluates `e` over `record` and hands the record back (not copied unless the result
    /// still holds it).
    fn eval(&self, e: &Expression<'_, 'static>, record: Value) -> Result<(Mj, Value), String> {
        let record = Arc::new(record);
        let scope =
            Mj::from_object(Scope { record: record.clone(), globals: self.globals.clone() });
        let result = e.eval(scope).map_err(|e| e.to_string());
        let record = Arc::try_unwrap(record).unwrap_or_else(|shared| (*shared).clone());
        result.map(|r| (r, record))
    }
}

/// The names an expression sees: the record's fields, `record`, then the try's globals.
#[derive(Debug)]
struct Scope {
    record: Arc<Value>,
    globals: Arc<BTreeMap<String, Mj>>,
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &Mj) -> Option<Mj> {
        let k = key.as_str()?;
        if let Some(v) = self.record.get(k) {
            return Some(to_mj(v));
        }
        if k == "record" {
            return Some(to_mj(&self.record));
        }
        self.globals.get(k).cloned()
    }
}

/// A JSON value for the engine: scalars directly, containers copied (only when an expression
/// reads them).
fn to_mj(v: &Value) -> Mj {
    match v {
        Value::Null => Mj::from(()),
        Value::Bool(b) => Mj::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Mj::from(i),
            None => Mj::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Mj::from(s.as_str()),
        Value::Object(_) => Mj::from_object(JsonObject(Arc::new(v.clone()))),
        Value::Array(_) => Mj::from_serialize(v),
    }
}

/// A nested JSON object, read lazily by key.
#[derive(Debug)]
struct JsonObject(Arc<Value>);

impl Object for JsonObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Mj) -> Option<Mj> {
        self.0.get(key.as_str()?).map(to_mj)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.0.as_object() {
            Some(m) => Enumerator::Values(m.keys().map(|k| Mj::from(k.as_str())).collect()),
            None => Enumerator::Empty,
        }
    }
}

/// Removes and returns the value at `path`.
fn take(v: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = v;
    for seg in parents {
        cur = cur.as_object_mut()?.get_mut(*seg)?;
    }
    cur.as_object_mut()?.remove(*last)
}

/// Sets the value at `path`, creating objects on the way (a non-object in the way is replaced).
fn put(v: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut cur = v;
    for seg in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        cur = map.entry(seg.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Value::Object(map) = cur {
        map.insert(last.to_string(), value);
    }
}

fn flatten_into(out: &mut Map<String, Value>, prefix: String, map: Map<String, Value>, sep: &str) {
    for (k, v) in map {
        let key = if prefix.is_empty() { k } else { format!("{prefix}{sep}{k}") };
        match v {
            Value::Object(inner) => flatten_into(out, key, inner, sep),
            other => {
                out.insert(key, other);
            }
        }
    }
}
