//! `deadline:` at the top of a DAG file: one mapping, or a list of them, each
//! `{reference: logical_date | run_start | queued, interval: 2h, notify: [conn, ...]}`.

use serde_yaml::{Mapping, Value};

use super::ctx::{Ctx, child, unknown_field};
use super::task::notifier_list;
use crate::dag::deadline::{Deadline, DeadlineRef};

const KEYS: [&str; 3] = ["reference", "interval", "notify"];

/// The deadlines at `path` (None when any is wrong; each mistake is recorded).
pub(super) fn parse_deadlines(cx: &mut Ctx, v: &Value, path: &[String]) -> Option<Vec<Deadline>> {
    match v {
        Value::Mapping(m) => parse_one(cx, m, path).map(|d| vec![d]),
        Value::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let p = child(path, &i.to_string());
                match item {
                    Value::Mapping(m) => match parse_one(cx, m, &p) {
                        Some(d) => out.push(d),
                        None => ok = false,
                    },
                    _ => {
                        cx.wrong(&p, "a mapping with `reference`, `interval` and `notify`", item);
                        ok = false;
                    }
                }
            }
            ok.then_some(out)
        }
        Value::Null => Some(Vec::new()),
        _ => {
            let expected =
                "a mapping with `reference`, `interval` and `notify` (or a list of them)";
            cx.wrong(path, expected, v);
            None
        }
    }
}

fn parse_one(cx: &mut Ctx, map: &Mapping, path: &[String]) -> Option<Deadline> {
    let (mut reference, mut interval, mut notify) = (None, None, None);
    let mut ok = true;
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            cx.wrong(path, "a mapping with text keys", k);
            ok = false;
            continue;
        };
        let p = child(path, key);
        match key {
            "reference" => match cx.string(v, &p) {
                Some(text) => match DeadlineRef::parse(&text) {
                    Some(r) => reference = Some(r),
                    None => {
                        let valid: Vec<&str> = DeadlineRef::ALL.iter().map(|(s, _)| *s).collect();
                        let msg = format!(
                            "unknown deadline reference `{text}`{} (valid: {}): what the \
                             interval counts from",
                            super::ctx::did_you_mean(&text, valid.iter().copied()),
                            valid.join(", ")
                        );
                        cx.at_value(&p, msg);
                        ok = false;
                    }
                },
                None => ok = false,
            },
            "interval" => match cx.duration(v, &p) {
                Some(d) if d.is_zero() => {
                    cx.at_value(&p, "a deadline's `interval` must be more than zero");
                    ok = false;
                }
                Some(d) => interval = Some(d),
                None => ok = false,
            },
            "notify" => match notifier_list(cx, v, &p) {
                Some(list) if list.is_empty() => {
                    let msg = "a deadline's `notify` must name at least one notifier connection";
                    cx.at_value(&p, msg);
                    ok = false;
                }
                Some(list) => notify = Some(list),
                None => ok = false,
            },
            _ => {
                unknown_field(cx, &p, key, "a `deadline`", &KEYS);
                ok = false;
            }
        }
    }
    for (key, missing) in [
        ("reference", reference.is_none()),
        ("interval", interval.is_none()),
        ("notify", notify.is_none()),
    ] {
        if missing && !map.contains_key(key) {
            let msg = format!(
                "a `deadline` needs `{key}` (it has `reference: logical_date | run_start | \
                 queued`, `interval: 2h` and `notify: [connection, ...]`)"
            );
            cx.at_key(path, msg);
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    Some(Deadline { reference: reference?, interval: interval?, notify: notify? })
}
