//! The checks: one value against its spec ([`ParamSpec::check`]), a run's conf against a DAG's
//! specs ([`check_conf`]), and a trigger form's fields into a conf ([`form_conf`]).
//!
//! Invariant: every refusal names the param and says what was expected and what was found, in
//! words a user can act on; all problems of one conf are reported together.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Number, Value};

use super::{ParamSpec, ParamSpecs, ParamType};

/// One param a conf gets wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The param's name.
    pub param: String,
    /// What is wrong: expected what, found what.
    pub message: String,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "param `{}`: {}", self.param, self.message)
    }
}

/// Every param a conf gets wrong, in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfErrors(pub Vec<ParamError>);

impl fmt::Display for ConfErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl ConfErrors {
    /// The message about `param`, if any (the form shows it beside the field).
    pub fn about(&self, param: &str) -> Option<&str> {
        self.0.iter().find(|e| e.param == param).map(|e| e.message.as_str())
    }
}

/// Checks `conf` against the DAG's `specs` and returns it unchanged when every declared param
/// given has an accepted value and every required param is given. Keys without a declaration
/// are kept unchecked (Airflow's `dag_run.conf`). Nothing is converted: from JSON, the text
/// `"50"` is not an integer.
pub fn check_conf(
    specs: &ParamSpecs,
    conf: Map<String, Value>,
) -> Result<Map<String, Value>, ConfErrors> {
    let mut errors = Vec::new();
    for (name, spec) in specs {
        match conf.get(name) {
            Some(v) => {
                if let Err(message) = spec.check(v) {
                    errors.push(ParamError { param: name.clone(), message });
                }
            }
            None if spec.fallback().is_none() => errors.push(ParamError {
                param: name.clone(),
                message: format!("required (no default): give {}", spec.expected()),
            }),
            None => {}
        }
    }
    if errors.is_empty() { Ok(conf) } else { Err(ConfErrors(errors)) }
}

/// The conf of a trigger form: `typed` holds the text of each param's own field, converted by
/// the param's type ([`ParamSpec::from_text`]); `extra` is the form's free JSON object, which
/// may only add keys that are not declared params — a declared param set there would silently
/// override its field, so it is refused with a message pointing at the field. The result goes
/// through [`check_conf`].
pub fn form_conf(
    specs: &ParamSpecs,
    typed: &[(String, String)],
    extra: Map<String, Value>,
) -> Result<Map<String, Value>, ConfErrors> {
    let mut errors = Vec::new();
    let mut conf = Map::new();
    for (name, text) in typed {
        let Some(spec) = specs.get(name) else { continue };
        match spec.from_text(text) {
            Ok(Some(v)) => {
                conf.insert(name.clone(), v);
            }
            Ok(None) => {}
            Err(message) => errors.push(ParamError { param: name.clone(), message }),
        }
    }
    for (name, v) in extra {
        if specs.contains_key(&name) {
            let message = "has its own field in the form; set it there, not in the JSON".into();
            errors.push(ParamError { param: name, message });
        } else {
            conf.insert(name, v);
        }
    }
    // Conversion errors first; a param already refused is not reported twice.
    match check_conf(specs, conf) {
        Ok(conf) if errors.is_empty() => Ok(conf),
        Ok(_) => Err(ConfErrors(errors)),
        Err(ConfErrors(more)) => {
            for e in more {
                if !errors.iter().any(|x| x.param == e.param) {
                    errors.push(e);
                }
            }
            Err(ConfErrors(errors))
        }
    }
}

impl ParamSpec {
    /// Whether `v` is acceptable; otherwise what was expected and what `v` is.
    pub fn check(&self, v: &Value) -> Result<(), String> {
        let wrong = || format!("expected {}, got {}", self.expected(), describe(v));
        if !self.types.is_empty() && !self.types.iter().any(|t| t.admits(v)) {
            let mut msg = wrong();
            if let Value::String(s) = v
                && self.types.iter().any(|t| ParamType::from_text(*t, s).is_some())
            {
                msg.push_str(" (send it as a JSON value, not as text)");
            }
            return Err(msg);
        }
        if let Some(allowed) = &self.allowed
            && !allowed.iter().any(|a| same(a, v))
        {
            return Err(wrong());
        }
        if let Value::String(s) = v {
            let chars = s.chars().count() as u64;
            let short = self.min_length.is_some_and(|m| chars < m);
            let long = self.max_length.is_some_and(|m| chars > m);
            let unmatched = self.pattern.as_ref().is_some_and(|p| !p.is_match(s));
            let unformatted = self.format.is_some_and(|f| !f.admits(s));
            if short || long || unmatched || unformatted {
                return Err(wrong());
            }
        }
        if let Value::Number(n) = v {
            let below = |b: &Option<Number>, strict: bool| {
                b.as_ref().is_some_and(|b| match cmp(n, b) {
                    Ordering::Less => true,
                    Ordering::Equal => strict,
                    Ordering::Greater => false,
                })
            };
            let above = |b: &Option<Number>, strict: bool| {
                b.as_ref().is_some_and(|b| match cmp(n, b) {
                    Ordering::Greater => true,
                    Ordering::Equal => strict,
                    Ordering::Less => false,
                })
            };
            if below(&self.minimum, false)
                || below(&self.exclusive_minimum, true)
                || above(&self.maximum, false)
                || above(&self.exclusive_maximum, true)
            {
                return Err(wrong());
            }
        }
        Ok(())
    }

    /// What the param accepts, as a phrase: "an integer from 1 to 1000", "one of `dev`, `prod`".
    pub fn expected(&self) -> String {
        if let Some(allowed) = &self.allowed {
            let list: Vec<String> = allowed.iter().map(|a| format!("`{}`", shown(a))).collect();
            return format!("one of {}", list.join(", "));
        }
        let mut out = match self.types.as_slice() {
            [] => "any value".to_string(),
            types => types.iter().map(|t| t.noun()).collect::<Vec<_>>().join(" or "),
        };
        match (&self.minimum, &self.maximum) {
            (Some(lo), Some(hi)) => out.push_str(&format!(" from {lo} to {hi}")),
            (Some(lo), None) => out.push_str(&format!(" of at least {lo}")),
            (None, Some(hi)) => out.push_str(&format!(" of at most {hi}")),
            (None, None) => {}
        }
        if let Some(lo) = &self.exclusive_minimum {
            out.push_str(&format!(" above {lo}"));
        }
        if let Some(hi) = &self.exclusive_maximum {
            out.push_str(&format!(" below {hi}"));
        }
        match (self.min_length, self.max_length) {
            (Some(lo), Some(hi)) => out.push_str(&format!(" of {lo} to {hi} characters")),
            (Some(lo), None) => out.push_str(&format!(" of at least {lo} characters")),
            (None, Some(hi)) => out.push_str(&format!(" of at most {hi} characters")),
            (None, None) => {}
        }
        if let Some(f) = self.format {
            out.push_str(&format!(" in {} format", f.as_str()));
        }
        if let Some(p) = &self.pattern {
            out.push_str(&format!(" matching `{}`", p.as_str()));
        }
        out
    }

    /// The value a form's text stands for: `Ok(None)` when the field is empty and the param
    /// has a default or is not a string (the run then gets the default, or is refused as
    /// missing); otherwise the text converted by the first declared type it parses as.
    pub fn from_text(&self, text: &str) -> Result<Option<Value>, String> {
        if text.is_empty() {
            return Ok(if self.allows(ParamType::String) && self.default.is_some() {
                Some(Value::String(String::new()))
            } else if self.declared && self.nullable() {
                Some(Value::Null)
            } else {
                None
            });
        }
        if self.types.is_empty() {
            // Any type: JSON when it parses, else the text itself.
            return Ok(Some(serde_json::from_str(text).unwrap_or_else(|_| text.into())));
        }
        self.types
            .iter()
            .find_map(|t| ParamType::from_text(*t, text))
            .map(Some)
            .ok_or_else(|| format!("expected {}, got the text `{}`", self.expected(), clip(text)))
    }
}

impl ParamType {
    /// `text` as a value of this type, if it is one. Strings are taken as typed; numbers and
    /// booleans are trimmed; lists and objects are JSON.
    pub fn from_text(self, text: &str) -> Option<Value> {
        let t = text.trim();
        match self {
            ParamType::String => Some(Value::String(text.to_string())),
            ParamType::Integer => t
                .parse::<i64>()
                .ok()
                .map(Value::from)
                .or_else(|| t.parse::<u64>().ok().map(Value::from)),
            ParamType::Number => match t.parse::<i64>() {
                Ok(i) => Some(Value::from(i)),
                Err(_) => t.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number),
            },
            ParamType::Boolean => match t {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            ParamType::Array => serde_json::from_str(t).ok().filter(Value::is_array),
            ParamType::Object => serde_json::from_str(t).ok().filter(Value::is_object),
            ParamType::Null => (t == "null").then_some(Value::Null),
        }
    }
}

/// Orders two JSON numbers exactly when both are integers, by their float values otherwise.
fn cmp(a: &Number, b: &Number) -> Ordering {
    let int = |n: &Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let (x, y) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}

/// Equality for `enum`, where `5` and `5.0` are the same number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp(x, y) == Ordering::Equal,
        _ => a == b,
    }
}

/// A value as it appears in a message.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => clip(s),
        other => clip(&other.to_string()),
    }
}

/// How a found value is named in messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the text `{}`", clip(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// At most 60 characters, control characters shown escaped: messages echo user input.
fn clip(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().take(60) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}
