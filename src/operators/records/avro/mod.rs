//! JSON values <-> Avro datums, guided by the schema: the one JSON shape every Updraft task sees
//! for an Avro record, whichever way it travels.
//!
//! The JSON representation (documented in the README, relied on by the sinks' columns):
//! - `date`: `"2026-01-02"`; `time-millis` / `time-micros`: `"03:04:05.123"` /
//!   `"03:04:05.123456"`;
//! - `timestamp-millis` / `-micros` / `-nanos`: RFC 3339 in UTC with that many fraction digits,
//!   `"2026-01-02T03:04:05.123Z"`; `local-timestamp-*` the same without the `Z`;
//! - `decimal`: a string with exactly `scale` decimals, `"12.50"` (no float rounding);
//! - `uuid`: its string; `bytes` and `fixed`: base64 (standard alphabet, padded);
//! - `enum`: its symbol; a union: the bare value of its branch (`null` for null), never
//!   Avro-JSON's `{"type": value}` wrapper; `map`: an object; `duration`: `{months, days,
//!   millis}`.
//!
//! On the way in it is lenient where sources differ: numbers may come as numeric strings,
//! timestamps as epoch numbers in the schema's unit or RFC 3339 with any offset (converted to
//! UTC), decimals as numbers. A missing record field takes its schema default, else null when
//! its type admits null, else it is an error; fields the schema does not name are left out.
//!
//! Invariant: never panics on a value; every error is a sentence naming the field's path
//! (`flight.departure.time`), which becomes the dead-letter reason or the task's error.

mod decode;
mod scalars;

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::RecordSchema;
use apache_avro::types::Value as Avro;
use chrono::NaiveDate;
use serde_json::Value as Json;

use self::scalars::{as_f64, as_i64, base64, decimal_in, time_in, ts_in};

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");

/// A schema with its named types, ready to convert values both ways.
#[derive(Debug, Clone)]
pub struct Codec {
    schema: Schema,
    /// Named types by full name, for `Schema::Ref`s inside the schema.
    names: HashMap<String, Schema>,
}

impl Codec {
    pub fn new(schema: &Schema) -> Codec {
        let mut names = HashMap::new();
        collect_names(schema, &mut names);
        Codec { schema: schema.clone(), names }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The binary datum of a JSON value (without framing).
    pub fn encode(&self, json: &Json) -> Result<Vec<u8>, String> {
        let value = self.to_avro(json)?;
        apache_avro::writer::datum::GenericDatumWriter::builder(&self.schema)
            .build()
            .and_then(|w| w.write_value_to_vec(value))
            .map_err(|e| format!("the record does not fit the schema: {e}"))
    }

    /// A datum written with `writer` (this codec's schema when `reader` is `None`), as JSON.
    pub fn decode(
        writer: &Codec,
        reader: Option<&Codec>,
        mut datum: &[u8],
    ) -> Result<Json, String> {
        let value = apache_avro::reader::datum::GenericDatumReader::builder(&writer.schema)
            .maybe_reader_schema(reader.map(|r| &r.schema))
            .build()
            .and_then(|r| r.read_value(&mut datum))
            .map_err(|e| format!("the message is not an Avro datum of its schema: {e}"))?;
        let out = reader.unwrap_or(writer);
        out.to_json(&out.schema, value, &mut String::new())
    }

    /// The Avro value of `json` under the codec's schema.
    pub fn to_avro(&self, json: &Json) -> Result<Avro, String> {
        self.avro_of(&self.schema, json, &mut String::new())
    }

    fn resolve<'a>(&'a self, schema: &'a Schema) -> Result<&'a Schema, String> {
        match schema {
            Schema::Ref { name } => {
                let full = name.fullname(None);
                self.names.get(&full).ok_or_else(|| format!("unknown named type `{full}`"))
            }
            s => Ok(s),
        }
    }

    fn avro_of(&self, schema: &Schema, json: &Json, path: &mut String) -> Result<Avro, String> {
        let schema = self.resolve(schema)?;
        let fail = |want: &str| Err(mismatch(path, want, json));
        Ok(match schema {
            Schema::Null => match json {
                Json::Null => Avro::Null,
                _ => return fail("null"),
            },
            Schema::Boolean => match json {
                Json::Bool(b) => Avro::Boolean(*b),
                _ => return fail("true or false"),
            },
            Schema::Int => match as_i64(json).and_then(|n| i32::try_from(n).ok()) {
                Some(n) => Avro::Int(n),
                None => return fail("a 32-bit whole number"),
            },
            Schema::Long => match as_i64(json) {
                Some(n) => Avro::Long(n),
                None => return fail("a whole number"),
            },
            Schema::Float => match as_f64(json) {
                Some(n) => Avro::Float(n as f32),
                None => return fail("a number"),
            },
            Schema::Double => match as_f64(json) {
                Some(n) => Avro::Double(n),
                None => return fail("a number"),
            },
            Schema::String => match json {
                Json::String(s) => Avro::String(s.clone()),
                Json::Number(n) => Avro::String(n.to_string()),
                Json::Bool(b) => Avro::String(b.to_string()),
                _ => return fail("a string"),
            },
            Schema::Bytes => {
                Avro::Bytes(base64(json).ok_or_else(|| mismatch(path, "base64 text", json))?)
            }
            Schema::Fixed(f) => match base64(json) {
                Some(b) if b.len() == f.size => Avro::Fixed(f.size, b),
                _ => return fail(&format!("base64 text of {} bytes", f.size)),
            },
            Schema::Enum(e) => {
                match json.as_str().and_then(|s| e.symbols.iter().position(|x| x == s)) {
                    Some(i) => Avro::Enum(i as u32, e.symbols[i].clone()),
                    None => return fail(&format!("one of {}", e.symbols.join(", "))),
                }
            }
            Schema::Array(a) => {
                let Json::Array(items) = json else { return fail("a list") };
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = push(path, &i.to_string());
                    out.push(self.avro_of(&a.items, item, path)?);
                    path.truncate(len);
                }
                Avro::Array(out)
            }
            Schema::Map(m) => {
                let Json::Object(obj) = json else { return fail("an object") };
                let mut out = HashMap::with_capacity(obj.len());
                for (k, v) in obj {
                    let len = push(path, k);
                    out.insert(k.clone(), self.avro_of(&m.types, v, path)?);
                    path.truncate(len);
                }
                Avro::Map(out)
            }
            Schema::Record(r) => self.record(r, json, path)?,
            Schema::Union(u) => {
                let variants = u.variants();
                let null = variants.iter().position(|v| matches!(v, Schema::Null));
                if json.is_null() {
                    return match null {
                        Some(i) => Ok(Avro::Union(i as u32, Box::new(Avro::Null))),
                        None => fail("a value (the field is not nullable)"),
                    };
                }
                let mut first_error = None;
                for (i, v) in
                    variants.iter().enumerate().filter(|(_, v)| !matches!(v, Schema::Null))
                {
                    match self.avro_of(v, json, path) {
                        Ok(value) => return Ok(Avro::Union(i as u32, Box::new(value))),
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                return Err(first_error.unwrap_or_else(|| mismatch(path, "null", json)));
            }
            Schema::Decimal(d) => {
                decimal_in(d, json).map_err(|why| format!("{}: {why}", at(path)))?
            }
            Schema::Uuid(_) => match json.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()) {
                Some(u) => Avro::Uuid(u),
                None => return fail("a UUID"),
            },
            Schema::Date => match json {
                Json::String(s) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                    Ok(d) => Avro::Date((d - EPOCH).num_days() as i32),
                    Err(_) => return fail("a date (YYYY-MM-DD)"),
                },
                _ => match as_i64(json).and_then(|n| i32::try_from(n).ok()) {
                    Some(n) => Avro::Date(n),
                    None => return fail("a date (YYYY-MM-DD)"),
                },
            },
            Schema::TimeMillis => match time_in(json, 1_000) {
                Some(n) => Avro::TimeMillis(n as i32),
                None => return fail("a time of day (HH:MM:SS.fff)"),
            },
            Schema::TimeMicros => match time_in(json, 1_000_000) {
                Some(n) => Avro::TimeMicros(n),
                None => return fail("a time of day (HH:MM:SS.ffffff)"),
            },
            Schema::TimestampMillis => Avro::TimestampMillis(
                ts_in(json, 1_000, true).ok_or_else(|| mismatch(path, TS, json))?,
            ),
            Schema::TimestampMicros => Avro::TimestampMicros(
                ts_in(json, 1_000_000, true).ok_or_else(|| mismatch(path, TS, json))?,
            ),
            Schema::TimestampNanos => Avro::TimestampNanos(
                ts_in(json, 1_000_000_000, true).ok_or_else(|| mismatch(path, TS, json))?,
            ),
            Schema::LocalTimestampMillis => Avro::LocalTimestampMillis(
                ts_in(json, 1_000, false).ok_or_else(|| mismatch(path, LOCAL_TS, json))?,
            ),
            Schema::LocalTimestampMicros => Avro::LocalTimestampMicros(
                ts_in(json, 1_000_000, false).ok_or_else(|| mismatch(path, LOCAL_TS, json))?,
            ),
            Schema::LocalTimestampNanos => Avro::LocalTimestampNanos(
                ts_in(json, 1_000_000_000, false).ok_or_else(|| mismatch(path, LOCAL_TS, json))?,
            ),
            Schema::Duration(_) => {
                let part = |k: &str| {
                    json.get(k).and_then(Json::as_u64).and_then(|n| u32::try_from(n).ok())
                };
                match (part("months"), part("days"), part("millis")) {
                    (Some(m), Some(d), Some(ms)) => Avro::Duration(apache_avro::Duration::new(
                        apache_avro::Months::new(m),
                        apache_avro::Days::new(d),
                        apache_avro::Millis::new(ms),
                    )),
                    _ => return fail("{months, days, millis}"),
                }
            }
            Schema::BigDecimal => {
                return Err(format!("{}: big-decimal is not supported; use decimal", at(path)));
            }
            Schema::Ref { .. } => return Err(format!("{}: unresolved named type", at(path))),
        })
    }

    fn record(&self, r: &RecordSchema, json: &Json, path: &mut String) -> Result<Avro, String> {
        let Json::Object(obj) = json else { return Err(mismatch(path, "an object", json)) };
        let mut fields = Vec::with_capacity(r.fields.len());
        for f in &r.fields {
            let len = push(path, &f.name);
            let value = match (obj.get(&f.name), &f.default) {
                (Some(v), _) => self.avro_of(&f.schema, v, path)?,
                (None, Some(default)) => self.avro_of(&f.schema, default, path)?,
                (None, None) if admits_null(self.resolve(&f.schema)?) => {
                    self.avro_of(&f.schema, &Json::Null, path)?
                }
                (None, None) => {
                    return Err(format!("{} is missing (no default in the schema)", at(path)));
                }
            };
            path.truncate(len);
            fields.push((f.name.clone(), value));
        }
        Ok(Avro::Record(fields))
    }
}

const TS: &str = "a timestamp (RFC 3339, or epoch in the schema's unit)";
const LOCAL_TS: &str = "a local timestamp (YYYY-MM-DDTHH:MM:SS[.fff])";

fn collect_names(schema: &Schema, names: &mut HashMap<String, Schema>) {
    match schema {
        Schema::Record(r) => {
            names.insert(r.name.fullname(None), schema.clone());
            for f in &r.fields {
                collect_names(&f.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.fullname(None), schema.clone());
        }
        Schema::Fixed(f) => {
            names.insert(f.name.fullname(None), schema.clone());
        }
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_names(v, names)),
        _ => {}
    }
}

fn admits_null(schema: &Schema) -> bool {
    match schema {
        Schema::Null => true,
        Schema::Union(u) => u.variants().iter().any(|v| matches!(v, Schema::Null)),
        _ => false,
    }
}

/// Appends a segment to a dotted path, returning the length to truncate back to.
fn push(path: &mut String, segment: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(segment);
    len
}

fn at(path: &str) -> String {
    if path.is_empty() { "the record".into() } else { format!("field `{path}`") }
}

fn mismatch(path: &str, want: &str, found: &Json) -> String {
    let mut shown = found.to_string();
    if shown.len() > 60 {
        shown = format!("{}...", shown.chars().take(60).collect::<String>());
    }
    format!("{} must be {want}, not {shown}", at(path))
}
