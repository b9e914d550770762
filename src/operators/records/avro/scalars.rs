//! Lenient readers of JSON scalars for `avro`'s encoder: numbers from numeric strings,
//! times, timestamps and decimals from their text forms or numbers.
//!
//! Invariant: each returns `None` (or a reason) for what it cannot read, never a guess: a
//! decimal with more decimals than its scale is refused, not rounded.

use apache_avro::schema::DecimalSchema;
use apache_avro::types::Value as Avro;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, NaiveDateTime, NaiveTime, Timelike};
use serde_json::Value as Json;

pub(super) fn as_i64(json: &Json) -> Option<i64> {
    match json {
        Json::Number(n) => n.as_i64().or_else(|| {
            n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64)
        }),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn as_f64(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn base64(json: &Json) -> Option<Vec<u8>> {
    json.as_str().and_then(|s| B64.decode(s).ok())
}

/// Time of day in `per_sec` units: `HH:MM:SS[.f]` or a number already in those units.
pub(super) fn time_in(json: &Json, per_sec: i64) -> Option<i64> {
    if let Json::String(s) = json
        && let Ok(t) = NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
    {
        let nanos =
            i64::from(t.num_seconds_from_midnight()) * 1_000_000_000 + i64::from(t.nanosecond());
        return Some(nanos / (1_000_000_000 / per_sec));
    }
    as_i64(json).filter(|n| (0..86_400 * per_sec).contains(n))
}

/// Epoch in `per_sec` units from RFC 3339 (`utc`: any offset, converted) or a naive date-time
/// (local timestamps, and UTC ones written without an offset), or a number in those units.
pub(super) fn ts_in(json: &Json, per_sec: i64, utc: bool) -> Option<i64> {
    let Json::String(s) = json else { return as_i64(json) };
    let naive = if utc {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.naive_utc()),
            Err(_) => parse_naive(s),
        }
    } else {
        parse_naive(s)
    };
    let Some(t) = naive else { return s.trim().parse().ok() };
    let t = t.and_utc();
    match per_sec {
        1_000 => Some(t.timestamp_millis()),
        1_000_000 => Some(t.timestamp_micros()),
        _ => t.timestamp_nanos_opt(),
    }
}

pub(super) fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
}

/// A decimal from a string or a number, scaled to the schema's scale and checked against its
/// precision; the unscaled value as big-endian two's complement.
pub(super) fn decimal_in(d: &DecimalSchema, json: &Json) -> Result<Avro, String> {
    let text = match json {
        Json::String(s) => s.trim().to_string(),
        Json::Number(n) => n.to_string(),
        other => {
            return Err(format!("must be a decimal (a string such as \"12.50\"), not {other}"));
        }
    };
    let unscaled = scale_decimal(&text, d.scale)
        .ok_or_else(|| format!("`{text}` is not a decimal with at most {} decimals", d.scale))?;
    let digits = unscaled.unsigned_abs().checked_ilog10().map_or(1, |l| l as usize + 1);
    if digits > d.precision {
        return Err(format!(
            "`{text}` has more than {} digits (the schema's precision)",
            d.precision
        ));
    }
    let bytes = unscaled.to_be_bytes();
    // The shortest two's complement form: drop leading bytes that only repeat the sign.
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    Ok(Avro::Decimal(apache_avro::Decimal::from(&bytes[start..])))
}

/// `"-12.5"` at scale 2 -> -1250; `None` when it is not a number or has too many decimals.
pub(super) fn scale_decimal(text: &str, scale: usize) -> Option<i128> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let frac = frac.trim_end_matches('0');
    if (int.is_empty() && frac.is_empty()) || frac.len() > scale {
        return None;
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits = format!("{int}{frac}");
    digits.extend(std::iter::repeat_n('0', scale - frac.len()));
    let n: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    Some(if neg { -n } else { n })
}
