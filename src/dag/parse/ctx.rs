//! The error collector of one file, and readers that turn one YAML value into one typed field.
//!
//! This file owns how a problem becomes a [`LoadError`]: where it points (key or value, found
//! through [`Positions`]) and how it is worded. Readers never stop at the first problem: each one
//! records its error and returns `None`, so the caller carries on and every problem is reported.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_yaml::Value;

use crate::dag::kinds::Dur;
use crate::dag::positions::{Pos, Positions};
use crate::dag::{LoadError, TriggerRule};

/// A YAML path; list indexes are written in decimal (see [`Positions`]).
pub(super) type YPath = Vec<String>;

/// `path` with one more segment.
pub(super) fn child(path: &[String], segment: &str) -> YPath {
    let mut p = path.to_vec();
    p.push(segment.to_string());
    p
}

/// An unknown key in `within` ("an asset", "`deadline`"), with the nearest valid one and the
/// list.
pub(super) fn unknown_field(
    cx: &mut Ctx,
    path: &[String],
    key: &str,
    within: &str,
    valid: &[&str],
) {
    let msg = format!(
        "unknown field `{key}` in {within}{} (valid fields: {})",
        did_you_mean(key, valid.iter().copied()),
        valid.join(", ")
    );
    cx.at_key(path, msg);
}

/// Collects the errors of one file.
pub(super) struct Ctx<'a> {
    file: &'a Path,
    /// The folder of the DAG file, for files it names (`schema: {file: x.avsc}`); `None` for
    /// a text parsed without one, where such a file is an error.
    pub(super) dir: Option<&'a Path>,
    pub(super) pos: Positions,
    pub(super) errors: Vec<LoadError>,
    /// The DAG's `timezone`: a date written without an offset is a wall time there.
    pub(super) zone: chrono_tz::Tz,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(file: &'a Path, src: &str) -> Ctx<'a> {
        let pos = Positions::build(src);
        Ctx { file, dir: None, pos, errors: Vec::new(), zone: chrono_tz::Tz::UTC }
    }

    /// Records an error at an explicit position (`line` 0 means the whole file).
    pub(super) fn at(&mut self, line: usize, column: usize, message: impl Into<String>) {
        let file = self.file.to_path_buf();
        self.errors.push(LoadError { file, line, column, message: message.into() });
    }

    fn at_pos(&mut self, pos: Pos, message: impl Into<String>) {
        self.at(pos.line, pos.column, message);
    }

    /// Records an error pointing at the key of `path` (unknown field, missing field).
    pub(super) fn at_key(&mut self, path: &[String], message: impl Into<String>) {
        let pos = self.pos.nearest(path).key;
        self.at_pos(pos, message);
    }

    /// Records an error pointing at the value of `path` (wrong type, bad value).
    pub(super) fn at_value(&mut self, path: &[String], message: impl Into<String>) {
        let pos = self.pos.nearest(path).value;
        self.at_pos(pos, message);
    }

    /// Records that the value at `path` is not what `expected` says.
    pub(super) fn wrong(&mut self, path: &[String], expected: &str, found: &Value) {
        let msg = format!("{} must be {expected}, not {}", what(path), describe(found));
        self.at_value(path, msg);
    }

    /// [`wrong`](Self::wrong), as a reader's `None` result.
    fn bad<T>(&mut self, path: &[String], expected: &str, found: &Value) -> Option<T> {
        self.wrong(path, expected, found);
        None
    }

    /// [`at_value`](Self::at_value), as a reader's `None` result.
    fn bad_value<T>(&mut self, path: &[String], message: String) -> Option<T> {
        self.at_value(path, message);
        None
    }

    pub(super) fn string(&mut self, v: &Value, path: &[String]) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(_) | Value::Bool(_) => {
                let msg = format!(
                    "{} must be a string, not {}; quote it to make it one",
                    what(path),
                    describe(v)
                );
                self.at_value(path, msg);
                None
            }
            _ => self.bad(path, "a string", v),
        }
    }

    pub(super) fn bool(&mut self, v: &Value, path: &[String]) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => self.bad(path, "true or false", v),
        }
    }

    /// A whole number in `min..=u32::MAX`.
    pub(super) fn u32(&mut self, v: &Value, path: &[String], min: u32) -> Option<u32> {
        match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n >= min => Some(n),
            _ => self.bad(path, &format!("a whole number ({min} or more)"), v),
        }
    }

    pub(super) fn i32(&mut self, v: &Value, path: &[String]) -> Option<i32> {
        match v.as_i64().and_then(|n| i32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => self.bad(path, "a whole number", v),
        }
    }

    /// `30s`, `10m`, `1h30m` or a number of seconds.
    pub(super) fn duration(&mut self, v: &Value, path: &[String]) -> Option<Duration> {
        let parsed = match v {
            Value::String(s) => Dur::parse(s),
            Value::Number(n) => Dur::parse(&n.to_string()),
            _ => {
                let expected = "a duration such as 30s, 10m, 1h30m or a number of seconds";
                return self.bad(path, expected, v);
            }
        };
        match parsed {
            Ok(d) => Some(d.0),
            Err(why) => self.bad_value(path, format!("{}: {why}", what(path))),
        }
    }

    /// A date (`2026-01-01`, midnight UTC) or a date-time with or without an offset (UTC when
    /// absent).
    pub(super) fn datetime(&mut self, v: &Value, path: &[String]) -> Option<DateTime<Utc>> {
        let expected = "a date such as 2026-01-01 or a date-time such as 2026-01-01T06:00:00Z";
        let Value::String(text) = v else { return self.bad(path, expected, v) };
        match parse_datetime(text, self.zone) {
            Some(t) => Some(t),
            None => {
                let msg = format!("{}: `{text}` is not {expected}", what(path));
                self.bad_value(path, msg)
            }
        }
    }

    pub(super) fn trigger_rule(&mut self, v: &Value, path: &[String]) -> Option<TriggerRule> {
        let text = self.string(v, path)?;
        if let Some((_, rule)) = TriggerRule::ALL.iter().find(|(name, _)| *name == text) {
            return Some(*rule);
        }
        let names = TriggerRule::ALL.map(|(n, _)| n);
        let msg = format!(
            "unknown trigger rule `{text}` in {}{} (valid rules: {})",
            what(path),
            did_you_mean(&text, names),
            names.join(", ")
        );
        self.bad_value(path, msg)
    }

    /// A list of strings, or a single string standing for a list of one. Each item comes with
    /// its own path so later errors can point at it.
    pub(super) fn string_list(
        &mut self,
        v: &Value,
        path: &[String],
    ) -> Option<Vec<(String, YPath)>> {
        match v {
            Value::String(s) => Some(vec![(s.clone(), path.to_vec())]),
            Value::Null => Some(Vec::new()),
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    let p = child(path, &i.to_string());
                    match self.string(item, &p) {
                        Some(s) => out.push((s, p)),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            _ => self.bad(path, "a list of strings", v),
        }
    }

    /// Any YAML value as JSON (params, foreach items).
    pub(super) fn json(&mut self, v: &Value, path: &[String]) -> Option<serde_json::Value> {
        match serde_json::to_value(v) {
            Ok(j) => Some(j),
            Err(e) => {
                let msg = format!("{} cannot be turned into JSON: {e}", what(path));
                self.bad_value(path, msg)
            }
        }
    }
}

/// Parses the date forms `start_date` and `end_date` accept. One without an offset is a wall
/// time in `zone` (the DAG's `timezone`, as Airflow reads a naive `start_date`); one that falls
/// in a daylight-saving gap is the first instant after it.
pub(super) fn parse_datetime(text: &str, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    let wall = |d: NaiveDateTime| crate::dag::schedule::first_instant_from(zone, d);
    for format in
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
    {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, format) {
            return wall(d);
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(t, format) {
            return Some(d.with_timezone(&Utc));
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(wall)
}

/// An IANA time zone name (`Europe/Paris`, `UTC`), or why not, with the nearest name.
pub(super) fn parse_zone(text: &str) -> Result<chrono_tz::Tz, String> {
    if let Ok(zone) = text.parse::<chrono_tz::Tz>() {
        return Ok(zone);
    }
    let lower = text.to_ascii_lowercase();
    let near = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|z| (strsim::damerau_levenshtein(&lower, &z.name().to_ascii_lowercase()), z.name()))
        .filter(|(d, _)| *d <= (lower.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| format!("; did you mean `{name}`?"))
        .unwrap_or_default();
    Err(format!(
        "unknown time zone `{text}`{near} (an IANA name such as `Europe/Paris`, \
         `America/New_York` or `UTC`)"
    ))
}

/// How a path is named in messages: "`retries` of task `extract`", "`default_args.pool`".
pub(super) fn what(path: &[String]) -> String {
    match path {
        [tasks, id, rest @ ..] if tasks == "tasks" && !rest.is_empty() => {
            format!("`{}` of task `{id}`", join(rest))
        }
        [tasks, id] if tasks == "tasks" => format!("task `{id}`"),
        [] => "the file".to_string(),
        _ => format!("`{}`", join(path)),
    }
}

/// `env.PORT`, `depends_on[1]`.
fn join(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// How a found value is named in messages.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "empty (null)".to_string(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("the text `{s}`"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(t) => format!("a value tagged `{}`", t.tag),
    }
}

/// The candidate closest to `word`, if close enough to be a typo: at most one edit per three
/// characters, so `retires` finds `retries` but `foo` does not find `pool`.
pub(super) fn near_miss<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let lower = word.to_ascii_lowercase();
    let limit = (lower.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "; did you mean `x`?" or nothing.
pub(super) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> String {
    near_miss(word, candidates).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}
