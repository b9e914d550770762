//! Typed DAG params and the one check of a run's `conf` against them.
//!
//! A DAG declares each param either by a plain default (`rows: 50`, whose type is inferred:
//! integer) or by Airflow's Param shape, a JSON-Schema subset (`{type: integer, minimum: 1,
//! default: 10}`). [`check_conf`] is the only code that decides whether a conf is acceptable; the
//! API, the trigger form and the CLI all call it (through `actions::trigger`), so they cannot
//! disagree. [`form_conf`] adds what only a form needs: text fields converted to their types.
//!
//! Invariants: pure (no I/O, no clock). A value is accepted only if it has one of the declared
//! types and meets every constraint; JSON input is never converted (the text `"50"` is not an
//! integer), form text is converted once, by the declared type, before the same check. Keys
//! without a declaration are kept, like Airflow's `dag_run.conf`: templates see them as
//! `params.x` and `conf.x`, but no check applies to them.

mod check;
#[cfg(test)]
mod tests;

use indexmap::IndexMap;
use serde_json::{Map, Number, Value};

pub use check::{ConfErrors, ParamError, check_conf, form_conf};

/// The declarations of a DAG's params, in file order.
pub type ParamSpecs = IndexMap<String, ParamSpec>;

/// A JSON-Schema type a param may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Text.
    String,
    /// A whole number (a JSON number without a fractional part).
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON list.
    Array,
    /// A JSON object.
    Object,
    /// `null`, for unions such as `[string, "null"]`.
    Null,
}

impl ParamType {
    /// Every type with its YAML spelling.
    pub const ALL: [(&'static str, ParamType); 7] = [
        ("string", ParamType::String),
        ("integer", ParamType::Integer),
        ("number", ParamType::Number),
        ("boolean", ParamType::Boolean),
        ("array", ParamType::Array),
        ("object", ParamType::Object),
        ("null", ParamType::Null),
    ];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, t)| *t == self).map_or("string", |(s, _)| s)
    }

    /// The type named `name`.
    pub fn parse(name: &str) -> Option<ParamType> {
        Self::ALL.iter().find(|(s, _)| *s == name).map(|(_, t)| *t)
    }

    /// The type a plain default implies; `None` for a null default (any type).
    pub fn of(v: &Value) -> Option<ParamType> {
        match v {
            Value::Null => None,
            Value::Bool(_) => Some(ParamType::Boolean),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(ParamType::Integer),
            Value::Number(_) => Some(ParamType::Number),
            Value::String(_) => Some(ParamType::String),
            Value::Array(_) => Some(ParamType::Array),
            Value::Object(_) => Some(ParamType::Object),
        }
    }

    /// Whether `v` is of this type. An integer is also a number, and `5.0` is an integer, as
    /// in JSON Schema.
    pub fn admits(self, v: &Value) -> bool {
        match (self, v) {
            (ParamType::String, Value::String(_))
            | (ParamType::Number, Value::Number(_))
            | (ParamType::Boolean, Value::Bool(_))
            | (ParamType::Array, Value::Array(_))
            | (ParamType::Object, Value::Object(_))
            | (ParamType::Null, Value::Null) => true,
            (ParamType::Integer, Value::Number(n)) => is_integral(n),
            _ => false,
        }
    }

    /// How a value of this type is named in messages.
    pub fn noun(self) -> &'static str {
        match self {
            ParamType::String => "a string",
            ParamType::Integer => "an integer",
            ParamType::Number => "a number",
            ParamType::Boolean => "true or false",
            ParamType::Array => "a list",
            ParamType::Object => "an object",
            ParamType::Null => "null",
        }
    }
}

/// Whether a JSON number has no fractional part.
fn is_integral(n: &Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.is_finite())
}

/// String formats a param may require (JSON Schema's names; Airflow's form shows pickers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `2026-01-31`.
    Date,
    /// RFC 3339, `2026-01-31T06:00:00Z`.
    DateTime,
    /// `06:00:00` or `06:00`.
    Time,
}

impl Format {
    /// Every format with its spelling.
    pub const ALL: [(&'static str, Format); 3] =
        [("date", Format::Date), ("date-time", Format::DateTime), ("time", Format::Time)];

    /// The spelling.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, f)| *f == self).map_or("date", |(s, _)| s)
    }

    /// Whether `text` is in this format.
    pub fn admits(self, text: &str) -> bool {
        match self {
            Format::Date => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
            Format::DateTime => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            Format::Time => ["%H:%M:%S", "%H:%M"]
                .iter()
                .any(|f| chrono::NaiveTime::parse_from_str(text, f).is_ok()),
        }
    }
}

/// One param: its types, default and constraints.
#[derive(Debug, Clone)]
pub struct ParamSpec {
    /// The types a value may have; empty means any (a plain `null` default).
    pub types: Vec<ParamType>,
    /// The value when a run gives none; `None` makes the param required.
    pub default: Option<Value>,
    /// A label for the trigger form.
    pub title: Option<String>,
    /// Help text for the trigger form.
    pub description: Option<String>,
    /// The only values allowed (`enum:`).
    pub allowed: Option<Vec<Value>>,
    /// A regular expression strings must match somewhere (anchor it with `^...$`).
    pub pattern: Option<regex::Regex>,
    /// A format strings must have.
    pub format: Option<Format>,
    /// Smallest number allowed.
    pub minimum: Option<Number>,
    /// Largest number allowed.
    pub maximum: Option<Number>,
    /// Numbers must be above this.
    pub exclusive_minimum: Option<Number>,
    /// Numbers must be below this.
    pub exclusive_maximum: Option<Number>,
    /// Shortest string allowed, in characters.
    pub min_length: Option<u64>,
    /// Longest string allowed, in characters.
    pub max_length: Option<u64>,
    /// Written with `type:` (a declaration) rather than inferred from a plain default.
    pub declared: bool,
}

impl ParamSpec {
    /// The spec a plain default implies: its own type, no other constraint.
    pub fn inferred(default: Value) -> ParamSpec {
        ParamSpec {
            types: ParamType::of(&default).into_iter().collect(),
            default: Some(default),
            ..ParamSpec::untyped()
        }
    }

    /// Any value, no default; the starting point of a declaration.
    pub fn untyped() -> ParamSpec {
        ParamSpec {
            types: Vec::new(),
            default: None,
            title: None,
            description: None,
            allowed: None,
            pattern: None,
            format: None,
            minimum: None,
            maximum: None,
            exclusive_minimum: None,
            exclusive_maximum: None,
            min_length: None,
            max_length: None,
            declared: false,
        }
    }

    /// Whether `null` is an accepted value.
    pub fn nullable(&self) -> bool {
        self.types.is_empty() || self.types.contains(&ParamType::Null)
    }

    /// Whether the param may take type `t`.
    pub fn allows(&self, t: ParamType) -> bool {
        self.types.is_empty() || self.types.contains(&t)
    }

    /// The value a run gets when it gives none: the default, or null for a nullable param
    /// without one; `None` when the param is required.
    pub fn fallback(&self) -> Option<Value> {
        self.default.clone().or_else(|| (self.declared && self.nullable()).then_some(Value::Null))
    }

    /// The declaration as a JSON Schema object (for the API and the trigger form).
    pub fn schema(&self) -> Value {
        let mut s = Map::new();
        let types: Vec<Value> = self.types.iter().map(|t| Value::from(t.as_str())).collect();
        match types.as_slice() {
            [] => {}
            [one] => {
                s.insert("type".into(), one.clone());
            }
            _ => {
                s.insert("type".into(), Value::Array(types));
            }
        }
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                s.insert(k.into(), v);
            }
        };
        put("default", self.default.clone());
        put("title", self.title.clone().map(Value::from));
        put("description", self.description.clone().map(Value::from));
        put("enum", self.allowed.clone().map(Value::Array));
        put("pattern", self.pattern.as_ref().map(|p| Value::from(p.as_str())));
        put("format", self.format.map(|f| Value::from(f.as_str())));
        put("minimum", self.minimum.clone().map(Value::Number));
        put("maximum", self.maximum.clone().map(Value::Number));
        put("exclusiveMinimum", self.exclusive_minimum.clone().map(Value::Number));
        put("exclusiveMaximum", self.exclusive_maximum.clone().map(Value::Number));
        put("minLength", self.min_length.map(Value::from));
        put("maxLength", self.max_length.map(Value::from));
        Value::Object(s)
    }
}

/// The resolved defaults templates see: every param with a default (or a nullable one).
pub fn defaults(specs: &ParamSpecs) -> Map<String, Value> {
    specs.iter().filter_map(|(k, s)| s.fallback().map(|v| (k.clone(), v))).collect()
}
