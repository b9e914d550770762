//! [`Dur`]: a duration as users write it in DAG files (`30s`, `10m`, `1h30m`, or seconds).
//!
//! Invariant: parsing only; a negative or non-finite number of seconds is refused with a
//! sentence for the user, never clamped.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// A duration written as `30s`, `10m`, `1h30m` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses the text form; the error is a sentence for the user.
    pub fn parse(text: &str) -> Result<Dur, String> {
        let t = text.trim();
        if let Ok(secs) = t.parse::<f64>() {
            return Dur::from_secs_f64(secs);
        }
        humantime::parse_duration(t).map(Dur).map_err(|_| {
            format!("`{text}` is not a duration; write e.g. 30s, 10m, 1h30m or seconds")
        })
    }

    fn from_secs_f64(secs: f64) -> Result<Dur, String> {
        if secs.is_finite() && secs >= 0.0 {
            Ok(Dur(Duration::from_secs_f64(secs)))
        } else {
            Err(format!("`{secs}` is not a duration; it must be zero or more seconds"))
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 10m, 1h30m or a number of seconds")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                Dur::from_secs_f64(v as f64).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Dur::from_secs_f64(v).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}
