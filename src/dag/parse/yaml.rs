//! YAML text -> `serde_yaml::Value`, tolerant of duplicate keys, and YAML syntax errors worded
//! for users.
//!
//! This file owns the serde_yaml calls. It must not judge content. Why not
//! `serde_yaml::from_str::<Value>`: that refuses a mapping with a duplicate key, which would hide
//! every other problem of the file. Here the first occurrence wins (as in [`Positions`]) and the
//! duplicate is reported by the caller, with the others.
//!
//! [`Positions`]: crate::dag::positions::Positions

use std::fmt;

use serde::de::{
    Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Number, Value};

/// Parses the first document of `src`, applying merge keys (`<<: *defaults`).
pub(super) fn load(src: &str) -> Result<Value, serde_yaml::Error> {
    let Lenient(mut value) = serde_yaml::from_str(src)?;
    value.apply_merge()?;
    Ok(value)
}

/// Line, column and message of a serde_yaml error, the location taken out of the message
/// because the caller shows it in front.
pub(super) fn syntax_error(err: &serde_yaml::Error, src: &str) -> (usize, usize, String) {
    let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    let full = err.to_string();
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
    } else {
        ""
    };
    (line, column, format!("YAML syntax error: {message}{hint}"))
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
        let (line, column, message) = syntax_error(&err, src);
        assert_eq!((line, column), (2, 11));
        assert!(!message.contains("line 2"), "{message}");
        assert!(message.contains("must be quoted"), "{message}");
    }

    #[test]
    fn syntax_errors_get_hints() {
        let cases = [
            ("schedule: */5 * * * *\n", "e.g. schedule: \"*/5 * * * *\""),
            ("a:\n\tb: 1\n", "indent with spaces, not tabs"),
        ];
        for (src, hint) in cases {
            let err = load(src).expect_err(src);
            let (_, _, message) = syntax_error(&err, src);
            assert!(message.ends_with(hint), "{message}");
        }
    }

    #[test]
    fn empty_text_is_null() {
        assert_eq!(load("").ok(), Some(Value::Null));
    }
}
