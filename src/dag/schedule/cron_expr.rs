//! Checks a classic cron expression field by field and rewrites it for the `cron` crate.
//!
//! This file owns the differences between what users write (Vixie cron / croniter, as in
//! Airflow) and what the `cron` crate reads; it must not compute times. Differences handled:
//! - 5 fields are classic cron; the crate wants seconds first, so `0` is prepended.
//! - Classic day-of-week numbers are 0-6 (7 = Sunday again) with 0 = Sunday; the crate numbers
//!   them 1-7 with 1 = Sunday. Days are handed over as names (SUN..SAT), which mean the same to
//!   both, so `1` stays Monday.
//! - Every field is checked here first, so an error can name the field at fault.

/// One field of the expression: its name for messages, bounds and optional names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names accepted instead of numbers, starting at `min` (JAN = 1, SUN = 0).
    names: &'static [&'static str],
}

const MONTHS: &[&str] =
    &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const SECOND: Field = Field { name: "second", min: 0, max: 59, names: &[] };
const MINUTE: Field = Field { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: Field = Field { name: "hour", min: 0, max: 23, names: &[] };
const DAY_OF_MONTH: Field = Field { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: Field = Field { name: "month", min: 1, max: 12, names: MONTHS };
/// 7 is accepted as a second Sunday, as classic cron does.
const DAY_OF_WEEK: Field = Field { name: "day-of-week", min: 0, max: 7, names: DAYS };

/// Checks `expr` (5 fields, or 6 with seconds first) and returns the equivalent expression for
/// the `cron` crate. The error names the field at fault.
pub(super) fn to_cron_crate(expr: &str) -> Result<String, String> {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    let fields: &[Field] = match parts.len() {
        5 => &[MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        6 => &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        n => {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds \
                 first), found {n}"
            ));
        }
    };
    let mut out = Vec::with_capacity(6);
    if parts.len() == 5 {
        out.push("0".to_string());
    }
    for (text, field) in parts.iter().zip(fields) {
        let values = parse_field(text, field)?;
        out.push(render(text, field, values));
    }
    // Classic cron fires when EITHER day field matches if both are restricted; the `cron` crate
    // requires both. Rather than silently firing on fewer days, refuse the ambiguous form.
    let dom = parts[parts.len() - 3];
    let dow = parts[parts.len() - 1];
    if restricted(dom) && restricted(dow) {
        return Err(format!(
            "day-of-month `{dom}` and day-of-week `{dow}` are both set; classic cron runs when \
             either matches, which Updraft does not support: set one of them to *"
        ));
    }
    Ok(out.join(" "))
}

/// Whether a day field limits the days (classic cron looks at the first character).
fn restricted(text: &str) -> bool {
    !(text.starts_with('*') || text == "?")
}

/// The set of values of one field as a bit mask (bit n = value n).
fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let mut mask = 0u64;
    for part in text.split(',') {
        mask |= parse_part(part, field).map_err(|why| {
            let name = field.name;
            if part == text {
                format!("{name} field `{text}`: {why}")
            } else {
                format!("{name} field `{text}`, part `{part}`: {why}")
            }
        })?;
    }
    Ok(mask)
}

/// One comma-separated part: `*`, `?`, `v`, `a-b`, each optionally followed by `/step`.
fn parse_part(part: &str, field: &Field) -> Result<u64, String> {
    if part.is_empty() {
        return Err("empty value".to_string());
    }
    let (base, step) = match part.split_once('/') {
        Some((base, step)) => {
            let step: u32 =
                step.parse().map_err(|_| format!("step `{step}` is not a whole number"))?;
            if step == 0 {
                return Err("the step after `/` must be at least 1".to_string());
            }
            (base, Some(step))
        }
        None => (part, None),
    };
    let (lo, hi) = if base == "*" || base == "?" {
        if base == "?" && field.name != DAY_OF_MONTH.name && field.name != DAY_OF_WEEK.name {
            return Err("`?` is only allowed in the day fields".to_string());
        }
        // `*` in day-of-week means 0-6: 7 would only repeat Sunday.
        (field.min, if field.max == 7 { 6 } else { field.max })
    } else if let Some((a, b)) = base.split_once('-') {
        let (a, b) = (value(a, field)?, value(b, field)?);
        if a > b {
            return Err(format!("range `{base}` goes backwards"));
        }
        (a, b)
    } else {
        let v = value(base, field)?;
        // `5/15` means from 5 to the end, every 15 (croniter's reading).
        (v, if step.is_some() { field.max } else { v })
    };
    let step = step.unwrap_or(1) as usize;
    Ok((lo..=hi).step_by(step).fold(0u64, |m, v| m | (1u64 << v)))
}

/// One value: a number within bounds or a name.
fn value(text: &str, field: &Field) -> Result<u32, String> {
    if let Ok(n) = text.parse::<u32>() {
        if n < field.min || n > field.max {
            return Err(format!("`{n}` is out of range {}-{}", field.min, field.max));
        }
        return Ok(n);
    }
    let upper = text.to_ascii_uppercase();
    match field.names.iter().position(|n| *n == upper) {
        Some(i) => Ok(field.min + i as u32),
        None if field.names.is_empty() => Err(format!("`{text}` is not a number")),
        None => Err(format!(
            "`{text}` is not a number {}-{} or a name ({})",
            field.min,
            field.max,
            field.names.join(", ")
        )),
    }
}

/// Writes one field for the `cron` crate: `*` stays `*`, anything else becomes an explicit list.
fn render(text: &str, field: &Field, mask: u64) -> String {
    if text == "*" || text == "?" {
        return "*".to_string();
    }
    if field.name == DAY_OF_WEEK.name {
        // 0 and 7 are both Sunday.
        let days = mask | (mask >> 7);
        return (0..7)
            .filter(|d| days & (1 << d) != 0)
            .map(|d| DAYS[d])
            .collect::<Vec<_>>()
            .join(",");
    }
    (field.min..=field.max)
        .filter(|v| mask & (1u64 << v) != 0)
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_for_the_cron_crate() {
        let cases = [
            ("* * * * *", "0 * * * * *"),
            ("0 9 * * 1", "0 0 9 * * MON"),
            ("0 9 * * 0", "0 0 9 * * SUN"),
            ("0 9 * * 7", "0 0 9 * * SUN"),
            ("0 9 * * 1-5", "0 0 9 * * MON,TUE,WED,THU,FRI"),
            ("0 9 * * 5-7", "0 0 9 * * SUN,FRI,SAT"),
            ("0 9 * * */2", "0 0 9 * * SUN,TUE,THU,SAT"),
            ("0 9 * * mon,Wed", "0 0 9 * * MON,WED"),
            ("*/15 0-6/3 1 JAN-MAR *", "0 0,15,30,45 0,3,6 1 1,2,3 *"),
            ("30 5/20 * * ?", "0 30 5 * * *"),
            ("15 0 0 * * *", "15 0 0 * * *"),
        ];
        for (input, want) in cases {
            assert_eq!(to_cron_crate(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("0 25 * * *", "hour field `25`: `25` is out of range 0-23"),
            ("61 * * * *", "minute field `61`"),
            ("0 0 0 * *", "day-of-month field `0`: `0` is out of range 1-31"),
            ("0 0 * 13 *", "month field `13`"),
            ("0 0 * * 8", "day-of-week field `8`"),
            ("0 0 * * MOM", "`MOM` is not a number 0-7 or a name"),
            ("*/0 * * * *", "step after `/` must be at least 1"),
            ("0 5-2 * * *", "range `5-2` goes backwards"),
            ("0 0 * *", "expected 5 fields"),
            ("0 0 1 * 1", "both set"),
            ("0 0 L * *", "day-of-month field `L`: `L` is not a number"),
            ("? * * * *", "only allowed in the day fields"),
            ("0 1,,2 * * *", "part ``: empty value"),
        ];
        for (input, want) in cases {
            let err = to_cron_crate(input).expect_err(input);
            assert!(err.contains(want), "{input}: {err}");
        }
    }
}
