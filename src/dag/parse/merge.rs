//! Merge keys (`<<: *defaults`) applied to serde_yaml's tree, innermost mapping first.
//!
//! This file owns the merge semantics of a DAG file; `positions` mirrors them (see its
//! invariant). A mapping's own keys win wherever they are written; then the keys of each merged
//! mapping, the first one winning (`<<: [*a, *b]`: `a` over `b`); merged keys take the place of
//! the `<<` entry, so a file's order is kept. A merged mapping has its own `<<` applied first,
//! which `serde_yaml::Value::apply_merge` does not do (it leaves a nested `<<` in place).
//! It must not judge content: a `<<` that is not a mapping or a list of mappings is the only
//! error, located at the `<<`.

use serde_yaml::{Mapping, Value};

use super::ctx::describe;
use crate::dag::positions::MERGE_KEY;

/// A merge key whose value cannot be merged.
#[derive(Debug)]
pub(super) struct MergeError {
    /// Path of the offending value (`[..., "<<"]`, or `[..., "<<", "1"]` for a list item).
    pub(super) path: Vec<String>,
    pub(super) message: String,
}

/// Applies every merge key of `value`.
pub(super) fn apply(value: &mut Value) -> Result<(), MergeError> {
    apply_at(value, &mut Vec::new())
}

fn apply_at(value: &mut Value, path: &mut Vec<String>) -> Result<(), MergeError> {
    match value {
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                apply_at(item, path)?;
                path.pop();
            }
        }
        Value::Tagged(tagged) => apply_at(&mut tagged.value, path)?,
        Value::Mapping(map) => {
            for (k, child) in map.iter_mut() {
                path.push(segment(k));
                apply_at(child, path)?;
                path.pop();
            }
            if map.contains_key(MERGE_KEY) {
                *map = merge(std::mem::take(map), path)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `map` with its `<<` entries replaced by the keys they bring.
fn merge(map: Mapping, path: &[String]) -> Result<Mapping, MergeError> {
    let own: Vec<Value> = map.keys().filter(|k| !is_merge(k)).cloned().collect();
    let mut out = Mapping::with_capacity(map.len());
    for (k, v) in map {
        if !is_merge(&k) {
            out.insert(k, v);
            continue;
        }
        let at = |extra: Option<usize>, found: &Value| {
            let mut p = path.to_vec();
            p.push(MERGE_KEY.to_string());
            p.extend(extra.map(|i| i.to_string()));
            MergeError {
                path: p,
                message: format!(
                    "`<<` (a merge key) takes a mapping or a list of mappings, such as \
                     `<<: *defaults` or `<<: [*a, *b]`, not {}",
                    describe(found)
                ),
            }
        };
        let sources = match v {
            Value::Mapping(source) => vec![source],
            Value::Sequence(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Mapping(source) => Ok(source),
                    other => Err(at(Some(i), &other)),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => return Err(at(None, &other)),
        };
        for source in sources {
            for (mk, mv) in source {
                if !own.contains(&mk) && !out.contains_key(&mk) {
                    out.insert(mk, mv);
                }
            }
        }
    }
    Ok(out)
}

fn is_merge(key: &Value) -> bool {
    key.as_str() == Some(MERGE_KEY)
}

/// The path segment of a mapping key, written as `positions` writes it.
fn segment(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "<complex key>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(src: &str) -> Result<Value, MergeError> {
        let mut v: Value = serde_yaml::from_str(src).expect("valid YAML");
        apply(&mut v).map(|()| v)
    }

    #[test]
    fn own_keys_win_then_the_first_merged_mapping() {
        let src = "\
b: &b {retries: 1, pool: p1}
m: &m {<<: *b, retry_delay: 5s}
t:
  pool: mine
  <<: [*m, {retries: 9, queue: q}]
  type: bash
";
        let v = merged(src).expect("merges");
        let t = &v["t"];
        assert_eq!(t["pool"], "mine");
        assert_eq!(t["retries"], 1, "nested merge applied first, then the first source wins");
        assert_eq!(t["retry_delay"], "5s");
        assert_eq!(t["queue"], "q");
        let keys: Vec<&str> =
            t.as_mapping().expect("map").keys().filter_map(|k| k.as_str()).collect();
        assert_eq!(keys, ["pool", "retries", "retry_delay", "queue", "type"], "merged in place");
        assert!(v["m"].get("<<").is_none() && t.get("<<").is_none());
    }

    #[test]
    fn a_merge_of_a_scalar_is_located_at_the_merge_key() {
        let err = merged("tasks:\n  a:\n    <<: 5\n").expect_err("not mergeable");
        assert_eq!(err.path, ["tasks", "a", "<<"]);
        assert!(err.message.contains("not the number `5`"), "{}", err.message);
        let err = merged("a:\n  <<: [{x: 1}, [y]]\n").expect_err("not mergeable");
        assert_eq!(err.path, ["a", "<<", "1"]);
        assert!(err.message.ends_with("not a list"), "{}", err.message);
    }
}
