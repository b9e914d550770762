//! Dotted paths into JSON (`login.uuid`, `results.0.name`) and per-record message keys.
//!
//! This file owns the one path syntax every streaming task type uses (`records:`, `columns:`,
//! `next_link:`, keys). It must stay allocation-light: it runs once per message on the hot path
//! of the sinks, so a key written as a bare path (`{{ record.id }}`) never goes through the
//! template engine.

use serde_json::Value;

use super::{OperatorError, Renderer};

/// The value at `path` (segments separated by `.`; a number indexes an array); `None` when a
/// segment is missing. The empty path is the value itself.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(value);
    }
    let mut cur = value;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(map) => map.get(seg)?,
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Moves the value at `path` out of `value` (leaving null), like [`lookup`] followed by a
/// clone, without the clone.
pub fn take(value: &mut Value, path: &str) -> Option<Value> {
    let mut cur = value;
    if !path.is_empty() {
        for seg in path.split('.') {
            cur = match cur {
                Value::Object(map) => map.get_mut(seg)?,
                Value::Array(items) => items.get_mut(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
    }
    Some(cur.take())
}

/// Whether two paths read disjoint parts of a record: neither is the other or inside it.
pub fn disjoint(a: &str, b: &str) -> bool {
    let inside = |p: &str, q: &str| {
        q.is_empty() || p == q || p.strip_prefix(q).is_some_and(|r| r.starts_with('.'))
    };
    !inside(a, b) && !inside(b, a)
}

/// Where a mapped column's value comes from (`columns:` of the Kafka sinks): a dotted path
/// into the message, or one of the message's own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A dotted path into the JSON payload.
    Path(String),
    /// `$key`: the message key, as text.
    Key,
    /// `$topic`.
    Topic,
    /// `$partition`.
    Partition,
    /// `$offset`.
    Offset,
    /// `$timestamp`: the message's Kafka timestamp.
    Timestamp,
}

impl Source {
    /// The source a column mapping names (the parser accepted only these spellings).
    pub fn of(path: &str) -> Source {
        match path {
            "$key" => Source::Key,
            "$topic" => Source::Topic,
            "$partition" => Source::Partition,
            "$offset" => Source::Offset,
            "$timestamp" => Source::Timestamp,
            p => Source::Path(p.to_string()),
        }
    }
}

/// A JSON value as the text a key or a text column gets: strings unquoted, null as nothing.
pub fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// How a message key is made from a record.
#[derive(Debug, Clone)]
pub enum KeyTemplate {
    /// No key: the producer spreads records over partitions.
    None,
    /// `{{ record.a.b }}`: read directly, without the template engine.
    Path(String),
    /// Any other template, rendered with `record` set.
    Template(String),
}

impl KeyTemplate {
    /// Recognises the bare-path form so that the common case costs a lookup, not a render.
    pub fn compile(text: Option<&str>) -> KeyTemplate {
        let Some(text) = text else { return KeyTemplate::None };
        let inner = text.trim().strip_prefix("{{").and_then(|t| t.strip_suffix("}}"));
        if let Some(rest) = inner.map(str::trim).and_then(|t| t.strip_prefix("record")) {
            let simple = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if rest.is_empty() {
                return KeyTemplate::Path(String::new());
            }
            if let Some(path) = rest.strip_prefix('.')
                && path.split('.').all(|s| !s.is_empty() && simple(s))
            {
                return KeyTemplate::Path(path.to_string());
            }
        }
        KeyTemplate::Template(text.to_string())
    }

    /// The key of `record`; `None` when the path is missing or null, or the template renders
    /// to nothing.
    pub fn key(
        &self,
        renderer: &mut Renderer,
        record: &Value,
    ) -> Result<Option<String>, OperatorError> {
        match self {
            KeyTemplate::None => Ok(None),
            KeyTemplate::Path(p) => Ok(lookup(record, p).and_then(as_text)),
            KeyTemplate::Template(t) => {
                renderer.set("record", record);
                let out = renderer.render(t)?;
                Ok((!out.is_empty()).then_some(out))
            }
        }
    }

    /// The key of `record` as a value, for structured (JSON or Avro) keys: a path gives the
    /// value itself, a template its text, read as JSON when `parse` and it is JSON text.
    pub fn value(
        &self,
        renderer: &mut Renderer,
        record: &Value,
        parse: bool,
    ) -> Result<Option<Value>, OperatorError> {
        match self {
            KeyTemplate::Path(p) if parse => {
                Ok(lookup(record, p).filter(|v| !v.is_null()).cloned())
            }
            _ => Ok(self.key(renderer, record)?.map(|text| {
                let json = if parse { serde_json::from_str(&text).ok() } else { None };
                json.unwrap_or(Value::String(text))
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn take_moves_the_value_out_and_leaves_null() {
        let mut v = json!({"a": {"b": [1, {"c": "x"}]}, "d": 2});
        assert_eq!(take(&mut v, "a.b.1.c"), Some(json!("x")));
        assert_eq!(take(&mut v, "d"), Some(json!(2)));
        assert_eq!(take(&mut v, "a.missing"), None);
        assert_eq!(take(&mut v, "d.e"), None);
        assert_eq!(v, json!({"a": {"b": [1, {"c": null}]}, "d": null}));
        assert_eq!(take(&mut v, ""), Some(json!({"a": {"b": [1, {"c": null}]}, "d": null})));
    }

    #[test]
    fn paths_are_disjoint_unless_one_contains_the_other() {
        assert!(disjoint("a", "b"));
        assert!(disjoint("a.b", "a.c"));
        assert!(disjoint("ab", "a"));
        assert!(!disjoint("a", "a"));
        assert!(!disjoint("a.b", "a"));
        assert!(!disjoint("a", "a.b.c"));
        assert!(!disjoint("", "a"));
    }

    #[test]
    fn paths() {
        let v = json!({"a": {"b": [10, {"c": "x"}]}, "n": null});
        assert_eq!(lookup(&v, "a.b.0"), Some(&json!(10)));
        assert_eq!(lookup(&v, "a.b.1.c"), Some(&json!("x")));
        assert_eq!(lookup(&v, ""), Some(&v));
        assert_eq!(lookup(&v, "a.x"), None);
        assert_eq!(lookup(&v, "a.b.9"), None);
        assert_eq!(lookup(&v, "n"), Some(&Value::Null));
        assert_eq!(as_text(&json!(5)), Some("5".into()));
        assert_eq!(as_text(&json!("s")), Some("s".into()));
        assert_eq!(as_text(&Value::Null), None);
    }

    #[test]
    fn bare_paths_skip_the_template_engine() {
        assert!(matches!(KeyTemplate::compile(Some("{{ record.login.uuid }}")),
            KeyTemplate::Path(p) if p == "login.uuid"));
        assert!(
            matches!(KeyTemplate::compile(Some("{{record}}")), KeyTemplate::Path(p) if p.is_empty())
        );
        assert!(matches!(
            KeyTemplate::compile(Some("{{ record.a | upper }}")),
            KeyTemplate::Template(_)
        ));
        assert!(matches!(KeyTemplate::compile(Some("k-{{ record.a }}")), KeyTemplate::Template(_)));
        assert!(matches!(KeyTemplate::compile(None), KeyTemplate::None));
    }
}
