//! Avro value -> JSON, the way back of `avro`'s mapping: the forms its module doc lists.
//!
//! Invariant: the output of a decoded value, fed to `Codec::to_avro` with the same schema,
//! encodes to the same datum (the round trip the tests pin).

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, NaiveTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Map, Number, Value as Json};

use super::{Codec, EPOCH, at, push};

impl Codec {
    /// The JSON of a decoded value; `schema` is the one it was read with.
    pub(super) fn to_json(
        &self,
        schema: &Schema,
        value: Avro,
        path: &mut String,
    ) -> Result<Json, String> {
        let schema = self.resolve(schema)?;
        Ok(match (value, schema) {
            (Avro::Null, _) => Json::Null,
            (Avro::Boolean(b), _) => Json::Bool(b),
            (Avro::Int(n), _) => Json::from(n),
            (Avro::Long(n), _) => Json::from(n),
            (Avro::Float(n), _) => Number::from_f64(f64::from(n)).map_or(Json::Null, Json::Number),
            (Avro::Double(n), _) => Number::from_f64(n).map_or(Json::Null, Json::Number),
            (Avro::String(s), _) | (Avro::Enum(_, s), _) => Json::String(s),
            (Avro::Bytes(b), _) | (Avro::Fixed(_, b), _) => Json::String(B64.encode(b)),
            (Avro::Union(i, v), Schema::Union(u)) => {
                let branch = u
                    .variants()
                    .get(i as usize)
                    .ok_or_else(|| format!("{}: no union branch {i}", at(path)))?;
                self.to_json(branch, *v, path)?
            }
            (Avro::Array(items), Schema::Array(a)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let len = push(path, &i.to_string());
                    out.push(self.to_json(&a.items, item, path)?);
                    path.truncate(len);
                }
                Json::Array(out)
            }
            (Avro::Map(m), Schema::Map(ms)) => {
                let mut out = Map::new();
                for (k, v) in m {
                    let len = push(path, &k);
                    let j = self.to_json(&ms.types, v, path)?;
                    path.truncate(len);
                    out.insert(k, j);
                }
                Json::Object(out)
            }
            (Avro::Record(fields), Schema::Record(r)) => {
                let mut out = Map::new();
                for (name, v) in fields {
                    let len = push(path, &name);
                    let field_schema =
                        r.lookup.get(&name).and_then(|i| r.fields.get(*i)).map(|f| &f.schema);
                    let j = match field_schema {
                        Some(s) => self.to_json(s, v, path)?,
                        None => return Err(format!("{}: not in the record schema", at(path))),
                    };
                    path.truncate(len);
                    out.insert(name, j);
                }
                Json::Object(out)
            }
            (Avro::Date(d), _) => match EPOCH.checked_add_signed(TimeDelta::days(d.into())) {
                Some(day) => Json::String(day.format("%Y-%m-%d").to_string()),
                None => return Err(format!("{}: date out of range", at(path))),
            },
            (Avro::TimeMillis(ms), _) => time_out(i64::from(ms) * 1_000_000, 3),
            (Avro::TimeMicros(us), _) => time_out(us * 1_000, 6),
            (Avro::TimestampMillis(t), _) => {
                ts_out(DateTime::from_timestamp_millis(t), SecondsFormat::Millis, true)
            }
            (Avro::TimestampMicros(t), _) => {
                ts_out(DateTime::from_timestamp_micros(t), SecondsFormat::Micros, true)
            }
            (Avro::TimestampNanos(t), _) => {
                ts_out(Some(DateTime::from_timestamp_nanos(t)), SecondsFormat::Nanos, true)
            }
            (Avro::LocalTimestampMillis(t), _) => {
                ts_out(DateTime::from_timestamp_millis(t), SecondsFormat::Millis, false)
            }
            (Avro::LocalTimestampMicros(t), _) => {
                ts_out(DateTime::from_timestamp_micros(t), SecondsFormat::Micros, false)
            }
            (Avro::LocalTimestampNanos(t), _) => {
                ts_out(Some(DateTime::from_timestamp_nanos(t)), SecondsFormat::Nanos, false)
            }
            (Avro::Decimal(d), Schema::Decimal(ds)) => {
                let bytes: Vec<u8> = Vec::try_from(&d).map_err(|e| format!("{}: {e}", at(path)))?;
                Json::String(
                    decimal_text(&bytes, ds.scale)
                        .ok_or_else(|| format!("{}: decimal over 38 digits", at(path)))?,
                )
            }
            (Avro::Uuid(u), _) => Json::String(u.to_string()),
            (Avro::Duration(d), _) => serde_json::json!({
                "months": u32::from(d.months()),
                "days": u32::from(d.days()),
                "millis": u32::from(d.millis()),
            }),
            (v, s) => {
                return Err(format!(
                    "{}: the value {v:?} does not match its schema {s:?}",
                    at(path)
                ));
            }
        })
    }
}

fn time_out(nanos: i64, digits: usize) -> Json {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let t =
        NaiveTime::from_num_seconds_from_midnight_opt(secs as u32, frac as u32).unwrap_or_default();
    let text = t.format("%H:%M:%S%.9f").to_string();
    // `%.9f` writes nine digits; keep the schema's precision.
    Json::String(text[..9 + digits].to_string())
}

fn ts_out(t: Option<DateTime<Utc>>, digits: SecondsFormat, utc: bool) -> Json {
    let Some(t) = t else { return Json::Null };
    let text = t.to_rfc3339_opts(digits, true);
    Json::String(if utc { text } else { text.trim_end_matches('Z').to_string() })
}

/// The text of an unscaled big-endian two's complement value at `scale`.
fn decimal_text(bytes: &[u8], scale: usize) -> Option<String> {
    if bytes.len() > 16 {
        return None;
    }
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - bytes.len()..].copy_from_slice(bytes);
    let n = i128::from_be_bytes(buf);
    let digits = n.unsigned_abs().to_string();
    let sign = if n < 0 { "-" } else { "" };
    if scale == 0 {
        return Some(format!("{sign}{digits}"));
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    Some(format!("{sign}{int}.{frac}"))
}
