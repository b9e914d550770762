//! `params:` of a DAG file -> [`ParamSpecs`]: plain defaults (type inferred) and Airflow-style
//! declarations (`{type: integer, minimum: 1, default: 10}`), every mistake a load error at its
//! line and column.
//!
//! A mapping is a declaration when it has a `type` key; any other mapping is a plain object
//! default. Invariant: a spec that loads is consistent — its default, `enum` values and bounds
//! pass its own checks, and its pattern compiles — so a conf check never meets a broken spec.

use serde_yaml::Value;

use super::ctx::{Ctx, YPath, child, did_you_mean, what};
use crate::dag::params::{Format, ParamSpec, ParamSpecs, ParamType};

/// Keys a declaration may have (JSON Schema's spellings, as Airflow's `Param` takes them).
const KEYS: [&str; 14] = [
    "type",
    "default",
    "title",
    "description",
    "enum",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "examples",
];

/// Reads `params:`; `None` when it is not a mapping (reported).
pub(super) fn parse_params(cx: &mut Ctx, v: &Value, path: &[String]) -> Option<ParamSpecs> {
    let map = match v {
        Value::Null => return Some(ParamSpecs::new()),
        Value::Mapping(m) => m,
        _ => {
            cx.wrong(path, "a mapping of names to default values or declarations", v);
            return None;
        }
    };
    let mut specs = ParamSpecs::new();
    let mut ok = true;
    for (k, v) in map {
        let Some(name) = k.as_str() else {
            cx.wrong(path, "a mapping with text keys (param names)", k);
            ok = false;
            continue;
        };
        let p = child(path, name);
        let spec = match v {
            Value::Mapping(m) if m.contains_key("type") => declaration(cx, m, &p),
            _ => cx.json(v, &p).map(ParamSpec::inferred),
        };
        match spec {
            Some(s) => {
                specs.insert(name.to_string(), s);
            }
            None => ok = false,
        }
    }
    ok.then_some(specs)
}

/// A scheduled run has no conf, so every param must have a value without one (Airflow refuses
/// such a DAG too).
pub(super) fn check_required(cx: &mut Ctx, specs: &ParamSpecs) {
    for (name, spec) in specs {
        if spec.fallback().is_none() {
            let msg = format!(
                "param `{name}` has no default, so a scheduled run would have no value for it: \
                 give it a `default` or make the DAG manual (`schedule: null`)"
            );
            cx.at_key(&["params".to_string(), name.clone()], msg);
        }
    }
}

fn declaration(cx: &mut Ctx, m: &serde_yaml::Mapping, path: &[String]) -> Option<ParamSpec> {
    let mut spec = ParamSpec { declared: true, ..ParamSpec::untyped() };
    let mut ok = true;
    let mut default = None;
    for (k, v) in m {
        let Some(key) = k.as_str() else {
            cx.wrong(path, "a mapping with text keys", k);
            ok = false;
            continue;
        };
        let p = child(path, key);
        let read = match key {
            "type" => types(cx, v, &p).map(|t| spec.types = t),
            "default" => cx.json(v, &p).map(|d| default = Some((d, p.clone()))),
            "title" => cx.string(v, &p).map(|t| spec.title = Some(t)),
            "description" => cx.string(v, &p).map(|t| spec.description = Some(t)),
            "enum" => allowed(cx, v, &p).map(|a| spec.allowed = Some(a)),
            "pattern" => pattern(cx, v, &p).map(|r| spec.pattern = Some(r)),
            "format" => format(cx, v, &p).map(|f| spec.format = Some(f)),
            "minimum" => number(cx, v, &p).map(|n| spec.minimum = Some(n)),
            "maximum" => number(cx, v, &p).map(|n| spec.maximum = Some(n)),
            "exclusiveMinimum" => number(cx, v, &p).map(|n| spec.exclusive_minimum = Some(n)),
            "exclusiveMaximum" => number(cx, v, &p).map(|n| spec.exclusive_maximum = Some(n)),
            "minLength" => length(cx, v, &p).map(|n| spec.min_length = Some(n)),
            "maxLength" => length(cx, v, &p).map(|n| spec.max_length = Some(n)),
            // Documentation only, as in JSON Schema.
            "examples" => Some(()),
            _ => {
                let near = did_you_mean(key, KEYS);
                let hint = if near.is_empty() {
                    format!(" (valid keys: {})", KEYS.join(", "))
                } else {
                    near
                };
                cx.at_key(
                    &p,
                    format!("unknown key `{key}` in the declaration of {}{hint}", what(path)),
                );
                None
            }
        };
        ok &= read.is_some();
    }
    ok &= consistent(cx, &spec, path);
    if let Some((d, p)) = default {
        match spec.check(&d) {
            Ok(()) => spec.default = Some(d),
            Err(why) => {
                cx.at_value(
                    &p,
                    format!("the default of {} does not fit its declaration: {why}", what(path)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(spec)
}

/// Constraints that cannot apply to the declared types, and enum values outside them.
fn consistent(cx: &mut Ctx, spec: &ParamSpec, path: &[String]) -> bool {
    let mut ok = true;
    let numeric = spec.allows(ParamType::Integer) || spec.allows(ParamType::Number);
    let bounds = [
        ("minimum", &spec.minimum),
        ("maximum", &spec.maximum),
        ("exclusiveMinimum", &spec.exclusive_minimum),
        ("exclusiveMaximum", &spec.exclusive_maximum),
    ];
    for (key, bound) in bounds {
        if bound.is_some() && !numeric {
            cx.at_key(
                &child(path, key),
                format!("`{key}` applies to numbers, but {} is not one", what(path)),
            );
            ok = false;
        }
    }
    let texty = [
        ("pattern", spec.pattern.is_some()),
        ("format", spec.format.is_some()),
        ("minLength", spec.min_length.is_some()),
        ("maxLength", spec.max_length.is_some()),
    ];
    for (key, set) in texty {
        if set && !spec.allows(ParamType::String) {
            cx.at_key(
                &child(path, key),
                format!("`{key}` applies to strings, but {} is not one", what(path)),
            );
            ok = false;
        }
    }
    if let (Some(lo), Some(hi)) = (&spec.minimum, &spec.maximum)
        && lo.as_f64() > hi.as_f64()
    {
        cx.at_value(&child(path, "minimum"), format!("`minimum` {lo} is above `maximum` {hi}"));
        ok = false;
    }
    if let Some(allowed) = &spec.allowed {
        // Each value must pass the other constraints, or it could never be chosen.
        let without_enum = ParamSpec { allowed: None, ..spec.clone() };
        for (i, a) in allowed.iter().enumerate() {
            if let Err(why) = without_enum.check(a) {
                cx.at_value(
                    &child(&child(path, "enum"), &i.to_string()),
                    format!("this `enum` value can never be accepted: {why}"),
                );
                ok = false;
            }
        }
    }
    ok
}

fn types(cx: &mut Ctx, v: &Value, path: &YPath) -> Option<Vec<ParamType>> {
    let names: Vec<(String, YPath)> = match v {
        Value::Sequence(items) if !items.is_empty() => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let p = child(path, &i.to_string());
                out.push((cx.string(item, &p)?, p));
            }
            out
        }
        Value::String(s) => vec![(s.clone(), path.clone())],
        _ => {
            cx.wrong(path, "a type name or a list of them", v);
            return None;
        }
    };
    let all = ParamType::ALL.map(|(n, _)| n);
    let mut out = Vec::new();
    for (name, p) in names {
        match ParamType::parse(&name) {
            Some(t) if !out.contains(&t) => out.push(t),
            Some(_) => {}
            None => {
                let near = did_you_mean(&name, all);
                let msg = format!(
                    "unknown param type `{name}`{near} (valid types: {}); a plain object default \
                     with a `type` key is written `{{type: object, default: {{...}}}}`",
                    all.join(", ")
                );
                cx.at_value(&p, msg);
                return None;
            }
        }
    }
    Some(out)
}

fn allowed(cx: &mut Ctx, v: &Value, path: &YPath) -> Option<Vec<serde_json::Value>> {
    match v {
        Value::Sequence(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| cx.json(item, &child(path, &i.to_string())))
            .collect(),
        _ => {
            cx.wrong(path, "a non-empty list of the allowed values", v);
            None
        }
    }
}

fn pattern(cx: &mut Ctx, v: &Value, path: &YPath) -> Option<regex::Regex> {
    let text = cx.string(v, path)?;
    // Bounded compile: a pattern is written by a DAG author, but a huge one should not stall
    // the loader.
    match regex::RegexBuilder::new(&text).size_limit(1 << 20).build() {
        Ok(r) => Some(r),
        Err(e) => {
            let why = e.to_string().lines().last().unwrap_or("invalid").trim().to_string();
            cx.at_value(path, format!("`pattern` is not a valid regular expression: {why}"));
            None
        }
    }
}

fn format(cx: &mut Ctx, v: &Value, path: &YPath) -> Option<Format> {
    let text = cx.string(v, path)?;
    let all = Format::ALL.map(|(n, _)| n);
    match Format::ALL.iter().find(|(n, _)| *n == text) {
        Some((_, f)) => Some(*f),
        None => {
            let msg = format!(
                "unknown format `{text}`{} (valid formats: {})",
                did_you_mean(&text, all),
                all.join(", ")
            );
            cx.at_value(path, msg);
            None
        }
    }
}

fn number(cx: &mut Ctx, v: &Value, path: &YPath) -> Option<serde_json::Number> {
    match cx.json(v, path)? {
        serde_json::Value::Number(n) => Some(n),
        _ => {
            cx.wrong(path, "a number", v);
            None
        }
    }
}

fn length(cx: &mut Ctx, v: &Value, path: &YPath) -> Option<u64> {
    match v.as_u64() {
        Some(n) => Some(n),
        None => {
            cx.wrong(path, "a whole number (0 or more)", v);
            None
        }
    }
}
