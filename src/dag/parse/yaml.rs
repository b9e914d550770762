//! YAML text -> `serde_yaml::Value`, tolerant of duplicate keys, with merge keys applied, and
//! YAML-level errors worded for users and placed at a real line and column.
//!
//! This file owns the serde_yaml calls. It must not judge content. Why not
//! `serde_yaml::from_str::<Value>`: that refuses a mapping with a duplicate key, which would hide
//! every other problem of the file. Here the first occurrence wins (as in [`Positions`]) and the
//! duplicate is reported by the caller, with the others. A leading UTF-8 byte-order mark (which
//! Windows editors write) is skipped: serde_yaml would take it for a second document.
//!
//! [`Positions`]: crate::dag::positions::Positions

use std::fmt;

use serde::de::{
    Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Number, Value};

use super::merge;
use crate::dag::positions::{Pos, Positions};

/// A problem with the YAML itself, at a 1-based line and column.
#[derive(Debug)]
pub(super) struct YamlError {
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) message: String,
}

/// The text of a DAG file: UTF-8, a byte-order mark allowed. Other bytes are refused at the
/// line and column of the first one that is not UTF-8.
pub(super) fn decode(bytes: &[u8]) -> Result<&str, YamlError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        let message = "the file is UTF-16 text; save it as UTF-8".to_string();
        return Err(YamlError { line: 1, column: 1, message });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
        let good = good.strip_prefix('\u{feff}').unwrap_or(good);
        let line = good.matches('\n').count() + 1;
        let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let byte = bytes.get(e.valid_up_to()).copied().unwrap_or_default();
        let message = format!(
            "the file is not UTF-8 text: byte 0x{byte:02X} cannot be read here; save the file \
             as UTF-8"
        );
        YamlError { line, column, message }
    })
}

/// Parses the first document of `src`, applying merge keys (`<<: *defaults`).
pub(super) fn load(src: &str) -> Result<Value, YamlError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let Lenient(mut value) = serde_yaml::from_str(src).map_err(|e| syntax_error(&e, src))?;
    merge::apply(&mut value).map_err(|e| {
        let at = Positions::build(src).nearest(&e.path).key;
        YamlError { line: at.line, column: at.column, message: e.message }
    })?;
    Ok(value)
}

/// A serde_yaml error, the location taken out of the message because the caller shows it in
/// front. An error serde_yaml does not locate is placed where it is: a second document at its
/// start, anything else at the start of the file.
fn syntax_error(err: &serde_yaml::Error, src: &str) -> YamlError {
    let full = err.to_string();
    let (line, column) = match err.location() {
        Some(l) => (l.line(), l.column()),
        None if full.contains("more than one document") => {
            let at = Positions::build(src).second_document().unwrap_or(Pos::START);
            let message = "a DAG file holds one YAML document, and a second one starts here; \
                           remove this `---` (or what follows), or give the second DAG a file \
                           of its own"
                .to_string();
            return YamlError { line: at.line, column: at.column, message };
        }
        None => (Pos::START.line, Pos::START.column),
    };
    let mut message = full.replacen(&format!(" at line {line} column {column}"), "", 1);
    if let Some(rest) = message.strip_suffix(&format!(" at line {line}")) {
        message = rest.to_string();
    }
    let bad_line = src.lines().nth(line.saturating_sub(1)).unwrap_or_default();
    let hint = if bad_line.contains('\t') {
        "; indent with spaces, not tabs"
    } else if message.contains("cannot start any") && bad_line.contains(['@', '`']) {
        "; a value starting with @ or ` must be quoted, e.g. schedule: \"@daily\""
    } else if message.contains("scanning an alias") {
        "; a value starting with * must be quoted, e.g. schedule: \"*/5 * * * *\""
    } else if message.contains("repetition limit") {
        "; the aliases (`*name`) expand to too large a document"
    } else {
        ""
    };
    YamlError { line, column, message: format!("YAML syntax error: {message}{hint}") }
}

/// A `Value` whose mappings keep the first of duplicate keys instead of failing.
struct Lenient(Value);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor).map(Lenient)
    }
}

struct LenientVisitor;

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(Number::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Lenient::deserialize(d).map(|l| l.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Lenient(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        while let Some(Lenient(key)) = map.next_key()? {
            let Lenient(value) = map.next_value()?;
            // The first occurrence wins; the duplicate is reported from the positions index.
            if !out.contains_key(&key) {
                out.insert(key, value);
            }
        }
        Ok(Value::Mapping(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // serde_yaml hands a `!tag value` over as an enum variant named after the tag.
        let (tag, variant): (String, _) = data.variant()?;
        let Lenient(value) = variant.newtype_variant()?;
        Ok(Value::Tagged(Box::new(TaggedValue { tag: Tag::new(tag), value })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_keep_the_first_value() {
        let v = load("a: 1\nb: {x: 1, x: 2}\na: 3\n").expect("loads");
        assert_eq!(v["a"], Value::Number(1.into()));
        assert_eq!(v["b"]["x"], Value::Number(1.into()));
    }

    #[test]
    fn values_round_trip() {
        let src = "s: text\nn: -3\nu: 7\nf: 1.5\nb: true\nz: ~\nl: [1, two]\nt: !custom 5\n";
        let lenient = load(src).expect("loads");
        let strict: Value = serde_yaml::from_str(src).expect("loads");
        assert_eq!(lenient, strict);
    }

    #[test]
    fn merge_keys_are_applied() {
        let v = load("base: &b {retries: 2}\ntask:\n  <<: *b\n  type: bash\n").expect("loads");
        assert_eq!(v["task"]["retries"], Value::Number(2.into()));
    }

    #[test]
    fn syntax_errors_lose_their_location_suffix() {
        let src = "dag_id: x\nschedule: @daily\n";
        let err = load(src).expect_err("bad yaml");
        assert_eq!((err.line, err.column), (2, 11));
        assert!(!err.message.contains("line 2"), "{}", err.message);
        assert!(err.message.contains("must be quoted"), "{}", err.message);
    }

    #[test]
    fn syntax_errors_get_hints() {
        let cases = [
            ("schedule: */5 * * * *\n", "e.g. schedule: \"*/5 * * * *\""),
            ("a:\n\tb: 1\n", "indent with spaces, not tabs"),
        ];
        for (src, hint) in cases {
            let err = load(src).expect_err(src);
            assert!(err.message.ends_with(hint), "{}", err.message);
        }
    }

    #[test]
    fn empty_text_is_null() {
        assert_eq!(load("").ok(), Some(Value::Null));
    }
}
