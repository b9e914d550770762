//! `schedule:` written as a mapping (assets, optionally with a cron), a task's `outlets:` and
//! `inlets:`, and an asset's `watch:`.
//!
//! ```yaml
//! schedule:
//!   cron: "@daily"            # optional: runs by the clock as well
//!   assets:                   # or `any:` — a run when one of them has a new event
//!     - postgres://mart/top_destinations
//!     - uri: kafka://flights
//!       watch: { type: kafka, connection: kafka_default, topic: flights }
//! ```

use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::ctx::{Ctx, child, did_you_mean, unknown_field};
use crate::dag::Schedule;
use crate::dag::assets::{AssetMode, AssetRef, AssetSchedule, Watch, check_uri};

const SCHEDULE_KEYS: [&str; 4] = ["cron", "assets", "any", "each_event"];
const REF_KEYS: [&str; 2] = ["uri", "watch"];
const KAFKA_KEYS: [&str; 4] = ["type", "connection", "topic", "group_id"];
const S3_KEYS: [&str; 4] = ["type", "connection", "prefix", "poke_interval"];

/// The default pause between two listings of an S3 prefix.
const DEFAULT_S3_POKE: Duration = Duration::from_secs(30);

/// `schedule:` as a mapping: the cron part (None when absent) and the asset part.
pub(super) fn parse_schedule_map(
    cx: &mut Ctx,
    map: &Mapping,
    path: &[String],
) -> (Option<Schedule>, Option<AssetSchedule>) {
    let mut cron = None;
    let mut assets: Option<AssetSchedule> = None;
    let mut unknown = false;
    let mut each_event = false;
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            cx.wrong(path, "a mapping with text keys", k);
            continue;
        };
        let p = child(path, key);
        match key {
            "cron" => match cx.string(v, &p).map(|s| Schedule::parse(&s)) {
                Some(Ok(Schedule::Cron { expr, fires })) => {
                    cron = Some(Schedule::Cron { expr, fires })
                }
                Some(Ok(_)) => cx.at_value(
                    &p,
                    "`cron` must be a cron expression or a preset such as \"@daily\"",
                ),
                Some(Err(why)) => cx.at_value(&p, why),
                None => {}
            },
            "each_event" => each_event = cx.bool(v, &p).unwrap_or(false),
            "assets" | "any" => {
                let mode = if key == "any" { AssetMode::Any } else { AssetMode::All };
                if let Some(first) = &assets {
                    let msg = format!(
                        "`schedule` has both `{}` and `{key}`; use `assets` (every one) or `any` (one is enough)",
                        first.mode.as_str()
                    );
                    cx.at_key(&p, msg);
                    continue;
                }
                if let Some(list) = parse_refs(cx, v, &p) {
                    assets = Some(AssetSchedule { mode, assets: list, each_event: false });
                }
            }
            _ => {
                unknown_field(cx, &p, key, "`schedule`", &SCHEDULE_KEYS);
                unknown = true;
            }
        }
    }
    if !unknown && !map.contains_key("assets") && !map.contains_key("any") {
        let msg = "a `schedule` mapping needs `assets:` (or `any:`), a list of asset URIs; \
                   a cron alone is written `schedule: \"0 2 * * *\"`";
        cx.at_key(path, msg);
    }
    if let Some(s) = &mut assets {
        s.each_event = each_event;
        if each_event && s.mode == AssetMode::All && s.assets.len() > 1 {
            let msg = "`each_event: true` makes one run per event, which needs `any:` (or one \
                       asset): with `assets:` a run waits for an event of every asset";
            cx.at_value(&child(path, "each_event"), msg);
        }
    }
    (cron, assets)
}

fn parse_refs(cx: &mut Ctx, v: &Value, path: &[String]) -> Option<Vec<AssetRef>> {
    let Value::Sequence(items) = v else {
        cx.wrong(path, "a list of asset URIs", v);
        return None;
    };
    if items.is_empty() {
        cx.at_value(path, "the list of assets is empty; name at least one asset URI");
        return None;
    }
    let mut out: Vec<AssetRef> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = child(path, &i.to_string());
        let Some(r) = parse_ref(cx, item, &p) else {
            ok = false;
            continue;
        };
        if out.iter().any(|o| o.uri == r.uri) {
            cx.at_value(&p, format!("asset `{}` is listed twice", r.uri));
            ok = false;
            continue;
        }
        out.push(r);
    }
    ok.then_some(out)
}

fn parse_ref(cx: &mut Ctx, v: &Value, path: &[String]) -> Option<AssetRef> {
    match v {
        Value::String(uri) => Some(AssetRef { uri: checked_uri(cx, uri, path)?, watch: None }),
        Value::Mapping(m) => {
            let mut uri = None;
            let mut watch = None;
            let mut ok = true;
            for (k, val) in m {
                let key = k.as_str().unwrap_or_default();
                let p = child(path, key);
                match key {
                    "uri" => uri = cx.string(val, &p).and_then(|u| checked_uri(cx, &u, &p)),
                    "watch" => {
                        watch = parse_watch(cx, val, &p);
                        ok &= watch.is_some();
                    }
                    _ => {
                        unknown_field(cx, &p, key, "an asset", &REF_KEYS);
                        ok = false;
                    }
                }
            }
            if !m.contains_key("uri") {
                cx.at_key(path, "an asset written as a mapping needs its `uri`");
            }
            let uri = uri?;
            ok.then_some(AssetRef { uri, watch })
        }
        _ => {
            cx.wrong(path, "an asset URI or a mapping with `uri` and `watch`", v);
            None
        }
    }
}

fn checked_uri(cx: &mut Ctx, uri: &str, path: &[String]) -> Option<String> {
    match check_uri(uri) {
        Ok(()) => Some(uri.to_string()),
        Err(why) => {
            cx.at_value(path, why);
            None
        }
    }
}

fn parse_watch(cx: &mut Ctx, v: &Value, path: &[String]) -> Option<Watch> {
    let Value::Mapping(m) = v else {
        cx.wrong(path, "a mapping such as {type: kafka, topic: flights}", v);
        return None;
    };
    let kind = match m.get("type") {
        Some(t) => cx.string(t, &child(path, "type"))?,
        None => {
            cx.at_key(path, "a `watch` needs a `type`: kafka or s3");
            return None;
        }
    };
    let keys: &[&str] = match kind.as_str() {
        "kafka" => &KAFKA_KEYS,
        "s3" => &S3_KEYS,
        other => {
            let msg = format!(
                "unknown watch type `{other}`{} (valid types: kafka, s3)",
                did_you_mean(other, ["kafka", "s3"])
            );
            cx.at_value(&child(path, "type"), msg);
            return None;
        }
    };
    let before = cx.errors.len();
    let text = |cx: &mut Ctx, key: &str| -> Option<String> {
        m.get(key).and_then(|v| cx.string(v, &child(path, key)))
    };
    for k in m.keys() {
        let key = k.as_str().unwrap_or_default();
        if !keys.contains(&key) {
            unknown_field(cx, &child(path, key), key, &format!("a {kind} watch"), keys);
        }
    }
    let watch = match kind.as_str() {
        "kafka" => {
            let connection = text(cx, "connection").unwrap_or_else(|| "kafka_default".into());
            let Some(topic) = text(cx, "topic") else {
                if !m.contains_key("topic") {
                    cx.at_key(path, "a kafka watch needs its `topic`");
                }
                return None;
            };
            let group_id = text(cx, "group_id").unwrap_or_else(|| format!("updraft-watch-{topic}"));
            Watch::Kafka { connection, topic, group_id }
        }
        _ => {
            let connection = text(cx, "connection").unwrap_or_else(|| "aws_default".into());
            let Some(url) = text(cx, "prefix") else {
                if !m.contains_key("prefix") {
                    cx.at_key(path, "an s3 watch needs its `prefix`, such as s3://lake/incoming/");
                }
                return None;
            };
            let p = child(path, "prefix");
            let Some((bucket, prefix)) =
                url.strip_prefix("s3://").map(|r| r.split_once('/').unwrap_or((r, "")))
            else {
                cx.at_value(&p, format!("`{url}` is not an S3 prefix: write s3://bucket/prefix/"));
                return None;
            };
            if bucket.is_empty() {
                cx.at_value(&p, format!("`{url}` names no bucket"));
                return None;
            }
            let poke_interval = match m.get("poke_interval") {
                Some(v) => cx.duration(v, &child(path, "poke_interval"))?,
                None => DEFAULT_S3_POKE,
            };
            if poke_interval.is_zero() {
                cx.at_value(&child(path, "poke_interval"), "`poke_interval` must be more than 0");
                return None;
            }
            Watch::S3 {
                connection,
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                poke_interval,
            }
        }
    };
    (cx.errors.len() == before).then_some(watch)
}

/// A task's `outlets:` or `inlets:`: a list of asset URIs, each at most once.
pub(super) fn parse_uri_list(cx: &mut Ctx, v: &Value, path: &[String]) -> Option<Vec<String>> {
    let items = cx.string_list(v, path)?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (uri, p) in items {
        match checked_uri(cx, &uri, &p) {
            Some(u) if out.contains(&u) => {
                cx.at_value(&p, format!("asset `{u}` is listed twice"));
                ok = false;
            }
            Some(u) => out.push(u),
            None => ok = false,
        }
    }
    ok.then_some(out)
}
